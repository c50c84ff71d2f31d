// libFuzzer target: an audit log file of arbitrary bytes, as a hand edit, a
// crash or an attacker with write access could leave it. Reading it never
// crashes; a log that verifies holds the anchor of its own head and not one
// entry more; and an append to it never removes or changes a complete line
// (only a torn prefix after the last newline may be cut).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "braid/core/audit_log.h"

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace audit = braid::audit;
  static const std::string path =
      (std::filesystem::temp_directory_path() /
       ("braid-audit-fuzz-" + std::to_string(::getpid()) + ".jsonl"))
          .string();
  const std::string before(reinterpret_cast<const char*>(data), size);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << before;

  absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(path);
  if (!file.ok()) std::abort();  // a small regular file always reads
  if (file->verification.ok) {
    audit::Anchor head;
    if (!file->entries.empty()) head = {file->entries.back().seq, file->entries.back().hash};
    if (!audit::CheckAnchor(*file, head).ok) std::abort();
    audit::Anchor beyond{head.entries + 1, std::string(64, 'a')};
    if (audit::CheckAnchor(*file, beyond).ok) std::abort();
  }

  auto log = audit::AuditLog::Open(path);
  if (!log.ok()) std::abort();
  absl::StatusOr<audit::Entry> e =
      (*log)->Append(audit::kJobStarted, "fuzz", "default/fuzz", nlohmann::json::object());
  const std::string after = Slurp(path);
  const size_t last_nl = before.rfind('\n');
  const std::string complete = last_nl == std::string::npos ? "" : before.substr(0, last_nl + 1);
  if (after.compare(0, complete.size(), complete) != 0) std::abort();  // a complete line lost
  if (!e.ok() && after != before) std::abort();  // a refused append changes nothing
  return 0;
}
