// libFuzzer target: the safetensors reader on arbitrary bytes. A file it
// accepts must serialize again and parse back to the same tensors (names,
// dtypes, shapes, bytes).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "braid/core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto file = braid::safetensors::Parse(bytes, "fuzz");
  if (!file.ok()) return 0;
  const auto again = braid::safetensors::Serialize(file->tensors, file->metadata);
  if (!again.ok()) return 0;  // e.g. names that are not unique are refused on write
  const auto reparsed = braid::safetensors::Parse(*again, "fuzz (re-serialized)");
  if (!reparsed.ok() || reparsed->tensors.size() != file->tensors.size()) std::abort();
  for (size_t i = 0; i < file->tensors.size(); ++i) {
    const braid::Tensor& a = file->tensors[i];
    const braid::Tensor& b = reparsed->tensors[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.data != b.data) {
      std::abort();
    }
  }
  return 0;
}
