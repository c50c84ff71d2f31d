#include "braid/core/audit_log.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "braid/core/status_macros.h"

namespace braid::audit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kGenesis[] = "0000000000000000000000000000000000000000000000000000000000000000";
constexpr uint64_t kMaxEntryBytes = 16 << 20;  // the tail read never looks further back
constexpr size_t kMaxDroppedText = 4096;        // of a cut torn line, kept in log_recovered

void InitSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();  // cannot happen on Linux; no safe hashing without it
  });
}

std::string Hex(const unsigned char* digest) {
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, crypto_hash_sha256_BYTES);
  return hex;
}

std::string ErrnoText() { return std::strerror(errno); }

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat(path, ": write: ", ErrnoText()));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadAt(int fd, uint64_t offset, uint64_t len, const std::string& path) {
  std::string out(len, '\0');
  uint64_t got = 0;
  while (got < len) {
    const ssize_t n = ::pread(fd, out.data() + got, len - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat(path, ": read: ", ErrnoText()));
    if (n == 0) return absl::DataLossError(absl::StrCat(path, ": shrank while being read"));
    got += static_cast<uint64_t>(n);
  }
  return out;
}

// The file's last complete line and the bytes after it (a torn line).
struct Tail {
  std::string last_line;      // "" when the file holds no complete line
  uint64_t complete_end = 0;  // offset just past the last '\n'
  std::string torn;           // bytes after it
};

absl::StatusOr<Tail> ReadTail(int fd, uint64_t size, const std::string& path) {
  Tail tail;
  uint64_t window = std::min<uint64_t>(size, 64 << 10);
  while (true) {
    BRAID_ASSIGN_OR_RETURN(std::string buf, ReadAt(fd, size - window, window, path));
    const size_t last_nl = buf.rfind('\n');
    const bool whole_file = window == size;
    if (last_nl != std::string::npos) {
      const size_t prev_nl = last_nl == 0 ? std::string::npos : buf.rfind('\n', last_nl - 1);
      if (prev_nl != std::string::npos || whole_file) {
        const size_t begin = prev_nl == std::string::npos ? 0 : prev_nl + 1;
        tail.last_line = buf.substr(begin, last_nl - begin);
        tail.complete_end = size - window + last_nl + 1;
        tail.torn = buf.substr(last_nl + 1);
        return tail;
      }
    } else if (whole_file) {
      tail.torn = buf;  // no complete line at all
      return tail;
    }
    if (window >= kMaxEntryBytes) {
      return absl::DataLossError(
          absl::StrCat(path, ": the last entry is longer than 16 MiB; run `braid audit verify`"));
    }
    window = std::min<uint64_t>(size, window * 4);
  }
}

enum class Unterminated { kNextEntry, kTornPrefix, kOther };

// Classifies the bytes after a log's last newline, `prev` being the last
// complete entry (seq 0 and the genesis hash for none). Our writer writes
// each entry whole with one write: a crash leaves a prefix of an entry's
// JSON, which fails to parse only at its end.
Unterminated ClassifyUnterminated(const std::string& torn, const Entry& prev) {
  absl::StatusOr<Entry> e = ParseEntry(torn);
  if (e.ok()) {
    return EntryHash(*e) == e->hash && e->seq == prev.seq + 1 && e->prev_hash == prev.hash
               ? Unterminated::kNextEntry
               : Unterminated::kOther;
  }
  if (torn.front() != '{') return Unterminated::kOther;
  try {
    (void)json::parse(torn);
    return Unterminated::kOther;  // whole JSON, not an entry
  } catch (const json::parse_error& err) {
    // Unexpected end of input: the error is at the byte after the last.
    return err.byte >= torn.size() ? Unterminated::kTornPrefix : Unterminated::kOther;
  } catch (const json::exception&) {
    return Unterminated::kOther;
  }
}

}  // namespace

json Entry::ToJson() const {
  json j{{"seq", seq},           {"time", time}, {"kind", kind},           {"actor", actor},
         {"job", job},           {"details", details}, {"prev_hash", prev_hash}};
  j["hash"] = hash;
  return j;
}

std::string CanonicalForm(const Entry& e) {
  json j = e.ToJson();
  j.erase("hash");
  // Keys are sorted (json objects are std::maps); invalid UTF-8 is replaced
  // rather than thrown on, so any details can be logged.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string EntryHash(const Entry& e) { return Sha256Hex(CanonicalForm(e)); }

std::string Sha256Hex(std::string_view bytes) {
  InitSodium();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return Hex(digest);
}

absl::StatusOr<std::string> FileSha256Hex(const std::string& path) {
  InitSodium();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? absl::NotFoundError(absl::StrCat(path, ": not found"))
                           : absl::PermissionDeniedError(absl::StrCat(path, ": ", ErrnoText()));
  }
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  std::string buf(1 << 20, '\0');
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = ErrnoText();
      ::close(fd);
      return absl::InternalError(absl::StrCat(path, ": read: ", why));
    }
    if (n == 0) break;
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(buf.data()),
                              static_cast<size_t>(n));
  }
  ::close(fd);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  return Hex(digest);
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return errno == ENOENT ? absl::NotFoundError(absl::StrCat(path, ": ", ErrnoText()))
                           : absl::PermissionDeniedError(absl::StrCat(path, ": ", ErrnoText()));
  }
  // Make the file's creation durable too.
  const int dir_fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return std::unique_ptr<AuditLog>(new AuditLog(fd, path));
}

AuditLog::~AuditLog() { ::close(fd_); }

absl::StatusOr<Entry> AuditLog::Append(const std::string& kind, const std::string& actor,
                                       const std::string& job, json details) {
  absl::MutexLock lock(&mu_);
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) return absl::InternalError(absl::StrCat(path_, ": flock: ", ErrnoText()));
  }
  absl::StatusOr<Entry> entry = AppendLocked(kind, actor, job, std::move(details));
  ::flock(fd_, LOCK_UN);
  return entry;
}

absl::StatusOr<Entry> AuditLog::AppendLocked(const std::string& kind, const std::string& actor,
                                             const std::string& job, json details) {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return absl::InternalError(absl::StrCat(path_, ": ", ErrnoText()));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  Tail tail;
  if (size > 0) {
    BRAID_ASSIGN_OR_RETURN(tail, ReadTail(fd_, size, path_));
  }

  Entry prev;
  prev.hash = kGenesis;
  if (!tail.last_line.empty()) {
    const json j = json::parse(tail.last_line, nullptr, false);
    if (!j.is_object() || !j.contains("seq") || !j["seq"].is_number_integer() ||
        !j.contains("hash") || !j["hash"].is_string()) {
      return absl::DataLossError(absl::StrCat(
          path_, ": the last line is not an audit entry; the chain cannot be continued (run "
                 "`braid audit verify ",
          path_, "`)"));
    }
    prev.seq = j["seq"].get<int64_t>();
    prev.hash = j["hash"].get<std::string>();
  }
  // What follows the last newline: the next entry whole (only its newline
  // missing: keep it), a torn prefix of one (cut it, below), or something
  // else that no crash of ours leaves (refuse: cutting it could hide a
  // whole entry someone edited).
  bool torn_is_entry = false;
  if (!tail.torn.empty()) {
    switch (ClassifyUnterminated(tail.torn, prev)) {
      case Unterminated::kNextEntry:
        torn_is_entry = true;
        break;
      case Unterminated::kTornPrefix:
        break;
      case Unterminated::kOther:
        return absl::DataLossError(absl::StrCat(
            path_, ": the last line has no newline and is neither the next entry nor a torn "
                   "write; the chain cannot be continued (run `braid audit verify ",
            path_, "`)"));
    }
  }

  std::string out;
  auto add = [&](const std::string& k, const std::string& a, json d) {
    Entry e;
    e.seq = prev.seq + 1;
    e.time = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
    e.kind = k;
    e.actor = a;
    e.job = job;
    e.details = d.is_object() ? std::move(d) : json{{"value", std::move(d)}};
    e.prev_hash = prev.hash;
    e.hash = EntryHash(e);
    out += e.ToJson().dump(-1, ' ', false, json::error_handler_t::replace);
    out += '\n';
    prev = e;
  };
  if (torn_is_entry) {
    // A whole entry lacking only its newline: complete it and chain on.
    absl::StatusOr<Entry> whole = ParseEntry(tail.torn);
    if (!whole.ok()) return absl::InternalError("unterminated entry no longer parses");
    out += '\n';
    prev = *std::move(whole);
  } else if (!tail.torn.empty()) {
    // A crash mid-append left a partial line: cut it off and say so.
    if (::ftruncate(fd_, static_cast<off_t>(tail.complete_end)) != 0) {
      return absl::InternalError(absl::StrCat(path_, ": truncate torn tail: ", ErrnoText()));
    }
    add(kLogRecovered, actor,
        json{{"dropped_bytes", tail.torn.size()},
             {"dropped_sha256", Sha256Hex(tail.torn)},
             {"dropped_text", tail.torn.substr(0, kMaxDroppedText)}});
  }
  add(kind, actor, std::move(details));
  BRAID_RETURN_IF_ERROR(WriteAll(fd_, out, path_));
  if (::fsync(fd_) != 0) return absl::InternalError(absl::StrCat(path_, ": fsync: ", ErrnoText()));
  if (on_append_) on_append_(prev);
  return prev;
}

}  // namespace braid::audit
