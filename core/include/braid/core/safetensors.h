// Reading and writing Hugging Face's safetensors format.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"k": "v"}}
// then the data section; offsets are relative to its start. This reader
// checks everything against the file: header length within the file and at
// most kMaxHeaderBytes, JSON well formed, every dtype known, shape entries
// non-negative and their product not overflowing, end - begin equal to
// elements * dtype size, offsets inside the data section, no two tensors
// overlapping, no gap or trailing bytes (as Hugging Face's reader does).
// Errors are InvalidArgument/DataLoss messages that name the file and the
// tensor, e.g. "model.safetensors: tensor 'fc1.weight': data_offsets
// [0, 400) exceed the 256-byte data section".
#ifndef BRAID_CORE_SAFETENSORS_H_
#define BRAID_CORE_SAFETENSORS_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "braid/core/tensor.h"

namespace braid::safetensors {

inline constexpr size_t kMaxHeaderBytes = 100 << 20;  // as Hugging Face's reader

struct File {
  TensorList tensors;  // in data-offset order (the order they were written)
  std::map<std::string, std::string> metadata;
};

// Tensor names, dtypes and shapes of a file, plus where each tensor's bytes
// start in the file, without reading the data section.
struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t file_offset;  // absolute offset of the first byte in the file
  uint64_t nbytes;
};
struct Index {
  std::vector<Entry> entries;  // in data-offset order
  std::map<std::string, std::string> metadata;
  uint64_t data_begin;         // absolute offset of the data section
};

// Parses bytes of a whole file. `what` names the source in error messages.
absl::StatusOr<File> Parse(std::string_view bytes, std::string_view what = "safetensors");
// Reads and parses `path`.
absl::StatusOr<File> Read(const std::string& path);
// Reads only the header of `path` and validates it against the file size.
absl::StatusOr<Index> ReadIndex(const std::string& path);

// Serializes tensors (written in the given order, names must be unique).
absl::StatusOr<std::string> Serialize(const TensorList& tensors,
                                      const std::map<std::string, std::string>& metadata = {});
// Writes atomically: to `path`.tmp, fsync, then rename over `path`.
absl::Status Write(const std::string& path, const TensorList& tensors,
                   const std::map<std::string, std::string>& metadata = {});

}  // namespace braid::safetensors

#endif  // BRAID_CORE_SAFETENSORS_H_
