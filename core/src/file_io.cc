#include "braid/core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace braid {
namespace {

absl::Status ErrnoStatus(const std::string& path, const char* what) {
  const int err = errno;
  std::string msg = absl::StrCat(path, ": ", what, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  return absl::UnavailableError(msg);
}

// Closes the descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

absl::Status PreadFully(int fd, const std::string& path, uint64_t offset, void* out,
                        uint64_t len) {
  auto* p = static_cast<char*>(out);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(path, "read");
    }
    if (n == 0) {
      return absl::DataLossError(absl::StrCat(path, ": file ends at byte ", offset, ", ",
                                              len, " more bytes expected"));
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    len -= static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, uint64_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(path, "cannot open");
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(path, "cannot stat");
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(path + ": not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", size, " bytes is more than the limit of ", max_bytes));
  }
  std::string out(size, '\0');
  if (absl::Status s = PreadFully(fd.get(), path, 0, out.data(), size); !s.ok()) return s;
  return out;
}

absl::Status ReadFileInto(const std::string& path, uint64_t offset, void* out, uint64_t len) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(path, "cannot open");
  return PreadFully(fd.get(), path, offset, out, len);
}

absl::StatusOr<std::string> ReadFileRange(const std::string& path, uint64_t offset,
                                          uint64_t len) {
  std::string out(len, '\0');
  if (absl::Status s = ReadFileInto(path, offset, out.data(), len); !s.ok()) return s;
  return out;
}

absl::StatusOr<FileReader> FileReader::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(path, "cannot open");
  return FileReader(fd, path);
}

FileReader::FileReader(FileReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

FileReader& FileReader::operator=(FileReader&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

FileReader::~FileReader() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status FileReader::ReadAt(uint64_t offset, void* out, uint64_t len) const {
  return PreadFully(fd_, path_, offset, out, len);
}

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::vector<std::string_view>& parts) {
  const std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return ErrnoStatus(tmp, "cannot create");
    // At most 4 MiB per write(): one model-sized write() to a fresh file
    // can stall for many times as long as the same bytes in pieces
    // (docs/benchmarks.md, section (b)'s reading).
    constexpr size_t kMaxWrite = size_t{4} << 20;
    for (std::string_view part : parts) {
      const char* p = part.data();
      size_t left = part.size();
      while (left > 0) {
        ssize_t n = ::write(fd.get(), p, std::min(left, kMaxWrite));
        if (n < 0) {
          if (errno == EINTR) continue;
          absl::Status s = ErrnoStatus(tmp, "write");
          ::unlink(tmp.c_str());
          return s;
        }
        p += n;
        left -= static_cast<size_t>(n);
      }
    }
    if (::fsync(fd.get()) != 0) return ErrnoStatus(tmp, "fsync");
    if (::close(fd.release()) != 0) return ErrnoStatus(tmp, "close");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(path, "rename");
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) ::fsync(dfd.get());
  return absl::OkStatus();
}

absl::Status CopyFileAtomically(const std::string& from, const std::string& to) {
  Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return ErrnoStatus(from, "cannot open");
  const std::string tmp = to + ".tmp";
  {
    Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (out.get() < 0) return ErrnoStatus(tmp, "cannot create");
    std::string buf(1 << 20, '\0');
    while (true) {
      ssize_t n = ::read(in.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(from, "read");
      if (n == 0) break;
      for (ssize_t done = 0; done < n;) {
        ssize_t w = ::write(out.get(), buf.data() + done, static_cast<size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return ErrnoStatus(tmp, "write");
        done += w;
      }
    }
    if (::fsync(out.get()) != 0) return ErrnoStatus(tmp, "fsync");
  }
  if (::rename(tmp.c_str(), to.c_str()) != 0) return ErrnoStatus(to, "rename");
  return absl::OkStatus();
}

}  // namespace braid
