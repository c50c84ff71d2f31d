// Reading and verifying an audit log (see audit_log.h for the format).
#include <string_view>

#include "absl/strings/str_cat.h"
#include "braid/core/audit_log.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"

namespace braid::audit {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxLogBytes = uint64_t{1} << 30;

}  // namespace

absl::StatusOr<Entry> ParseEntry(std::string_view line) {
  const json j = json::parse(line, nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object (garbage in the log)");
  auto field = [&](const char* name, json::value_t type) -> absl::Status {
    const auto it = j.find(name);
    const bool ok = it != j.end() &&
                    (it->type() == type || (type == json::value_t::number_integer &&
                                            it->type() == json::value_t::number_unsigned));
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("missing or mistyped field '", name, "'"));
    return absl::OkStatus();
  };
  BRAID_RETURN_IF_ERROR(field("seq", json::value_t::number_integer));
  for (const char* name : {"time", "kind", "actor", "job", "prev_hash", "hash"}) {
    BRAID_RETURN_IF_ERROR(field(name, json::value_t::string));
  }
  BRAID_RETURN_IF_ERROR(field("details", json::value_t::object));
  if (j.size() != 8) return absl::InvalidArgumentError("unexpected extra fields");
  Entry e;
  e.seq = j["seq"].get<int64_t>();
  e.time = j["time"].get<std::string>();
  e.kind = j["kind"].get<std::string>();
  e.actor = j["actor"].get<std::string>();
  e.job = j["job"].get<std::string>();
  e.details = j["details"];
  e.prev_hash = j["prev_hash"].get<std::string>();
  e.hash = j["hash"].get<std::string>();
  return e;
}

json Anchor::ToJson() const { return json{{"entries", entries}, {"head", head}}; }

absl::StatusOr<Anchor> AnchorFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, ": not an object"));
  const auto entries = j.find("entries");
  if (entries == j.end() || !entries->is_number_integer() || entries->get<int64_t>() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".entries: missing or not a count of entries"));
  }
  const auto head = j.find("head");
  if (head == j.end() || !head->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".head: missing or not a string"));
  }
  Anchor a{entries->get<int64_t>(), head->get<std::string>()};
  const bool hex64 = a.head.size() == 64 && a.head.find_first_not_of("0123456789abcdef") ==
                                                std::string::npos;
  if (a.entries == 0 ? !a.head.empty() : !hex64) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ".head: '", a.head.substr(0, 80), "' is not ",
        a.entries == 0 ? "\"\" (the anchor counts 0 entries)" : "64 lowercase hex digits"));
  }
  return a;
}

AnchorCheck CheckAnchor(const AuditFile& file, const Anchor& anchor) {
  AnchorCheck c;
  const int64_t have = static_cast<int64_t>(file.entries.size());
  const std::string says =
      absl::StrCat("the anchor says ", anchor.entries, " entries (head ", anchor.head, ")");
  if (have < anchor.entries) {
    c.missing = anchor.entries - have;
    c.problem = absl::StrCat(c.missing, c.missing == 1 ? " entry" : " entries",
                             " missing: ", says, ", the log has ", have,
                             file.verification.ok ? " (its tail was cut)"
                                                  : " before the break reported above");
    return c;
  }
  if (anchor.entries > 0 && file.entries[anchor.entries - 1].hash != anchor.head) {
    c.problem = absl::StrCat("entry ", anchor.entries, " has hash ",
                             file.entries[anchor.entries - 1].hash, ", ", says,
                             " (the log was rewritten)");
    return c;
  }
  c.ok = true;
  c.after = have - anchor.entries;
  return c;
}

std::string Verification::ToString(const std::string& path) const {
  if (ok) return absl::StrCat(path, ": ok, ", entries, " entries, chain verified");
  return absl::StrCat(path, ":", line, ": ", problem);
}

absl::StatusOr<AuditFile> ReadAuditLog(const std::string& path) {
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, kMaxLogBytes));
  AuditFile file;
  Verification& v = file.verification;
  std::string prev_hash(64, '0');
  int64_t line_no = 0;
  size_t pos = 0;
  auto broken = [&](std::string problem) {
    v.ok = false;
    v.line = line_no;
    v.problem = std::move(problem);
    return file;
  };
  while (pos < text.size()) {
    ++line_no;
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      absl::StatusOr<Entry> e = ParseEntry(std::string_view(text).substr(pos));
      if (e.ok() && EntryHash(*e) == e->hash && e->prev_hash == prev_hash &&
          e->seq == static_cast<int64_t>(file.entries.size()) + 1) {
        // The entry is whole and chains: counted (an anchor may name it),
        // but the file is not as its writer left it.
        file.entries.push_back(*std::move(e));
        v.entries = static_cast<int64_t>(file.entries.size());
        return broken("last entry without its newline (a crash before the newline was written, "
                      "or the newline was removed); the next append completes it");
      }
      return broken("truncated entry (torn last line: the writer crashed mid-append or the file "
                    "was cut)");
    }
    const std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    absl::StatusOr<Entry> e = ParseEntry(line);
    if (!e.ok()) return broken(std::string(e.status().message()));
    if (EntryHash(*e) != e->hash) return broken("hash mismatch (entry altered)");
    const int64_t expected = static_cast<int64_t>(file.entries.size()) + 1;
    if (e->seq != expected) {
      return broken(absl::StrCat("seq gap (expected ", expected, ", found ", e->seq,
                                 ": entries removed or reordered)"));
    }
    if (e->prev_hash != prev_hash) {
      return broken(expected == 1
                        ? std::string("prev_hash of the first entry is not the genesis value "
                                      "(entries removed from the start)")
                        : absl::StrCat("prev_hash does not match entry ", expected - 1));
    }
    prev_hash = e->hash;
    file.entries.push_back(*std::move(e));
    v.entries = static_cast<int64_t>(file.entries.size());
  }
  v.ok = true;
  return file;
}

}  // namespace braid::audit
