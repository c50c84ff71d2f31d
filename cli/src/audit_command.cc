#include "braid/cli/audit_command.h"

#include "absl/strings/str_format.h"
#include "braid/core/audit_log.h"

namespace braid::cli {
namespace {

using nlohmann::json;

// Details as `k=v` pairs, strings unquoted.
std::string DetailsText(const json& details) {
  std::string out;
  for (const auto& [k, v] : details.items()) {
    if (!out.empty()) out += " ";
    out += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  return out;
}

}  // namespace

int AuditVerify(const std::string& path, std::ostream& out, std::ostream& err) {
  absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(path);
  if (!file.ok()) {
    err << "braid audit: " << file.status().message() << "\n";
    return 2;
  }
  if (!file->verification.ok) {
    err << file->verification.ToString(path) << "\n";
    return 1;
  }
  out << file->verification.ToString(path) << "\n";
  return 0;
}

int AuditShow(const std::string& path, bool as_json, std::ostream& out, std::ostream& err) {
  absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(path);
  if (!file.ok()) {
    err << "braid audit: " << file.status().message() << "\n";
    return 2;
  }
  const audit::Verification& v = file->verification;
  if (as_json) {
    json entries = json::array();
    for (const audit::Entry& e : file->entries) entries.push_back(e.ToJson());
    out << json{{"entries", entries},
                {"verification",
                 {{"ok", v.ok},
                  {"entries", v.entries},
                  {"line", v.line},
                  {"problem", v.problem}}}}
               .dump(2)
        << "\n";
  } else {
    for (const audit::Entry& e : file->entries) {
      out << absl::StrFormat("%4d  %s  %-16s %-12s %s  %s\n", e.seq, e.time, e.kind, e.actor,
                             e.job, DetailsText(e.details));
    }
    (v.ok ? out : err) << v.ToString(path) << "\n";
  }
  return v.ok ? 0 : 1;
}

}  // namespace braid::cli
