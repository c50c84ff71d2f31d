#include "braid/core/tensor.h"

#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace braid {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2}, {DType::kBF16, "BF16", 2},
    {DType::kF64, "F64", 8}, {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},
    {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},
};

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

const DTypeInfo* Find(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return &info;
  }
  return nullptr;
}

// Product of `shape` into *out; false if a dim is negative or the product
// overflows int64. A zero dim makes the product 0 whatever the others are.
bool CheckedProduct(const std::vector<int64_t>& shape, int64_t* out) {
  bool has_zero = false;
  for (int64_t dim : shape) {
    if (dim < 0) return false;
    has_zero = has_zero || dim == 0;
  }
  int64_t product = 1;
  if (has_zero) {
    product = 0;
  } else {
    for (int64_t dim : shape) {
      if (__builtin_mul_overflow(product, dim, &product)) return false;
    }
  }
  *out = product;
  return true;
}

}  // namespace

size_t DTypeSize(DType dtype) {
  const DTypeInfo* info = Find(dtype);
  return info == nullptr ? 0 : info->size;
}

std::string_view DTypeName(DType dtype) {
  const DTypeInfo* info = Find(dtype);
  return info == nullptr ? std::string_view("?") : info->name;
}

absl::StatusOr<DType> DTypeFromName(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  std::vector<absl::string_view> known;
  for (const DTypeInfo& info : kDTypes) known.push_back(Sv(info.name));
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", Sv(name), "' (supported: ",
                                                 absl::StrJoin(known, ", "), ")"));
}

int64_t Tensor::NumElements() const {
  int64_t n = 0;
  return CheckedProduct(shape, &n) ? n : -1;
}

absl::Status Tensor::Validate() const {
  const std::string where = absl::StrCat("tensor '", name, "'");
  if (Find(dtype) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": invalid dtype value ", static_cast<int>(dtype)));
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": shape[", i, "] is negative (", shape[i], ")"));
    }
  }
  int64_t elements = 0;
  int64_t nbytes = 0;
  if (!CheckedProduct(shape, &elements) ||
      __builtin_mul_overflow(elements, static_cast<int64_t>(DTypeSize(dtype)), &nbytes)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": shape [", absl::StrJoin(shape, ", "),
                                                   "] overflows a 64-bit byte count"));
  }
  if (static_cast<uint64_t>(nbytes) != data.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", Sv(DTypeName(dtype)), " [", absl::StrJoin(shape, ", "), "] needs ", nbytes,
        " bytes but data holds ", data.size()));
  }
  return absl::OkStatus();
}

Tensor Tensor::F32(std::string name, std::vector<int64_t> shape, std::vector<float> values) {
  Tensor t;
  t.name = std::move(name);
  t.dtype = DType::kF32;
  t.shape = std::move(shape);
  t.data.resize(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

size_t TotalBytes(const TensorList& tensors) {
  size_t total = 0;
  for (const Tensor& t : tensors) total += t.data.size();
  return total;
}

}  // namespace braid
