#include "torch_tensors.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "braid/core/status_macros.h"

namespace braid::worker {

Tensor ToF32Tensor(std::string name, const torch::Tensor& t) {
  torch::NoGradGuard no_grad;
  const torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
  Tensor out;
  out.name = std::move(name);
  out.dtype = DType::kF32;
  out.shape = c.sizes().vec();
  out.data.resize(c.numel() * sizeof(float));
  if (c.numel() > 0) std::memcpy(out.data.data(), c.data_ptr<float>(), out.data.size());
  return out;
}

absl::StatusOr<torch::ScalarType> FloatScalarType(DType dtype, const std::string& what) {
  switch (dtype) {
    case DType::kF32:
      return torch::kFloat;
    case DType::kF16:
      return torch::kHalf;
    case DType::kBF16:
      return torch::kBFloat16;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": dtype ", std::string(DTypeName(dtype)), " is not supported (F32, F16 or BF16)"));
  }
}

absl::StatusOr<torch::Tensor> ToTorchF32(const Tensor& t) {
  BRAID_RETURN_IF_ERROR(t.Validate());
  BRAID_ASSIGN_OR_RETURN(torch::ScalarType type, FloatScalarType(t.dtype, absl::StrCat("tensor '", t.name, "'")));
  torch::Tensor raw = torch::empty(t.shape, torch::TensorOptions().dtype(type));
  if (!t.data.empty()) std::memcpy(raw.data_ptr(), t.data.data(), t.data.size());
  return raw.to(torch::kFloat);
}

}  // namespace braid::worker
