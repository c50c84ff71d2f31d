// Small, careful file helpers: bounded reads and atomic replacement.
#ifndef BRAID_CORE_FILE_IO_H_
#define BRAID_CORE_FILE_IO_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace braid {

// Reads the whole of `path`. NotFound if it does not exist, InvalidArgument
// if it is not a regular file or larger than `max_bytes` (checked before
// reading). Messages name the path.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, uint64_t max_bytes);

// Reads exactly `len` bytes at `offset` into `out`; DataLoss if the file is
// shorter.
absl::Status ReadFileInto(const std::string& path, uint64_t offset, void* out, uint64_t len);
absl::StatusOr<std::string> ReadFileRange(const std::string& path, uint64_t offset, uint64_t len);

// A file opened once for positional reads; later renames over its path do
// not affect it. Movable, not copyable.
class FileReader {
 public:
  static absl::StatusOr<FileReader> Open(const std::string& path);
  FileReader(FileReader&& other) noexcept;
  FileReader& operator=(FileReader&& other) noexcept;
  ~FileReader();
  // Exactly `len` bytes at `offset`; DataLoss if the file is shorter.
  absl::Status ReadAt(uint64_t offset, void* out, uint64_t len) const;

 private:
  FileReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

// Writes the concatenation of `parts` to `path` atomically: a temporary file
// beside it, fsync, rename over `path`, fsync of the directory. Readers see
// the old or the new content, never a mix; a crash leaves the old one.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::vector<std::string_view>& parts);

// Copies `from` to `to` in bounded chunks, with WriteFileAtomically's
// guarantees for `to`.
absl::Status CopyFileAtomically(const std::string& from, const std::string& to);

}  // namespace braid

#endif  // BRAID_CORE_FILE_IO_H_
