// Tensors as named flat buffers: the unit that travels between aggregator and
// workers and that checkpoints hold. No LibTorch here; the aggregator and the
// operator link this without it.
#ifndef BRAID_CORE_TENSOR_H_
#define BRAID_CORE_TENSOR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace braid {

// Element types, named as safetensors names them ("F32", "F16", ...).
enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI8, kU8 };

size_t DTypeSize(DType dtype);
std::string_view DTypeName(DType dtype);                // "F32"
absl::StatusOr<DType> DTypeFromName(std::string_view);  // InvalidArgument if unknown

// One tensor: a name, a dtype, a shape and its bytes in row-major order,
// little-endian. Invariant (checked by Validate): data.size() ==
// NumElements() * DTypeSize(dtype).
struct Tensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  int64_t NumElements() const;  // product of shape; 1 for a scalar
                                // (-1 if a dim is negative or the product
                                // overflows int64; Validate says which)
  absl::Status Validate() const;

  // Views of the bytes as floats; precondition dtype == kF32.
  float* f32() { return reinterpret_cast<float*>(data.data()); }
  const float* f32() const { return reinterpret_cast<const float*>(data.data()); }

  static Tensor F32(std::string name, std::vector<int64_t> shape, std::vector<float> values);
};

// A model's (or an update's) parameters in a fixed order. The order is the
// layout used on the wire: the flat byte stream of a model is the
// concatenation of its tensors' data in this order.
using TensorList = std::vector<Tensor>;

// Total bytes of all tensors' data.
size_t TotalBytes(const TensorList& tensors);

}  // namespace braid

#endif  // BRAID_CORE_TENSOR_H_
