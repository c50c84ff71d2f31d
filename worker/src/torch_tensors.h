// Conversions between braid::Tensor (core, no LibTorch) and torch::Tensor.
// Internal to worker/.
#ifndef BRAID_WORKER_TORCH_TENSORS_H_
#define BRAID_WORKER_TORCH_TENSORS_H_

#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "braid/core/tensor.h"

namespace braid::worker {

// A float32 copy of `t` named `name`, shape and values as `t` (any dtype
// LibTorch can convert to float; the result owns its bytes).
Tensor ToF32Tensor(std::string name, const torch::Tensor& t);

// The torch dtype of F32/F16/BF16; InvalidArgument naming `what` otherwise.
absl::StatusOr<torch::ScalarType> FloatScalarType(DType dtype, const std::string& what);

// A float32 torch tensor holding `t`'s values (F32, F16 or BF16 upcast).
// InvalidArgument naming the tensor for any other dtype or a broken invariant.
absl::StatusOr<torch::Tensor> ToTorchF32(const Tensor& t);

}  // namespace braid::worker

#endif  // BRAID_WORKER_TORCH_TENSORS_H_
