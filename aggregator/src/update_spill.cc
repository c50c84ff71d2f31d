#include "update_spill.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace braid::aggregator {
namespace {

// Written and marked consumed this many bytes at a time.
constexpr uint64_t kPieceBytes = 1 << 20;

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::AbortedError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

UpdateSpill::~UpdateSpill() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

absl::Status UpdateSpill::Reset(uint64_t floats) {
  if (fd_ < 0) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) return absl::AbortedError(absl::StrCat("creating ", dir_, ": ", ec.message()));
    path_ = dir_ + "/round-updates.spill";
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) return Errno("opening", path_);
  } else if (::ftruncate(fd_, 0) != 0) {
    return Errno("emptying", path_);
  }
  floats_ = floats;
  count_ = 0;
  return absl::OkStatus();
}

absl::Status UpdateSpill::Append(Upload& update) {
  const uint64_t bytes = floats_ * sizeof(float);
  const off_t base = static_cast<off_t>(static_cast<uint64_t>(count_) * bytes);
  const char* data = reinterpret_cast<const char*>(update.data());
  for (uint64_t at = 0; at < bytes;) {
    const uint64_t n = std::min(kPieceBytes, bytes - at);
    const ssize_t wrote = ::pwrite(fd_, data + at, n, base + static_cast<off_t>(at));
    if (wrote <= 0) {
      if (wrote < 0 && errno == EINTR) continue;
      return Errno("writing an update to", path_);
    }
    at += static_cast<uint64_t>(wrote);
    update.Consumed(at);
  }
  ++count_;
  return absl::OkStatus();
}

absl::Status UpdateSpill::Read(int k, uint64_t at, uint64_t n, float* out) const {
  const uint64_t bytes = n * sizeof(float);
  const off_t base = static_cast<off_t>((static_cast<uint64_t>(k) * floats_ + at) * sizeof(float));
  char* dst = reinterpret_cast<char*>(out);
  for (uint64_t done = 0; done < bytes;) {
    const ssize_t got = ::pread(fd_, dst + done, bytes - done, base + static_cast<off_t>(done));
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      return got == 0 ? absl::DataLossError(absl::StrCat(path_, " ends early"))
                      : Errno("reading an update from", path_);
    }
    done += static_cast<uint64_t>(got);
  }
  return absl::OkStatus();
}

}  // namespace braid::aggregator
