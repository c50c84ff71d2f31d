#include "braid/cli/audit_command.h"

#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "braid/core/audit_log.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"

namespace braid::cli {
namespace {

namespace fs = std::filesystem;
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

struct NamedAnchor {
  std::string source;  // where it was read, for messages
  audit::Anchor anchor;
};

absl::StatusOr<json> ReadJsonFile(const std::string& path) {
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 64 << 20));
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  return j;
}

// The anchors `options` names, or else those found beside the log.
absl::StatusOr<std::vector<NamedAnchor>> FindAnchors(const std::string& log,
                                                     const AuditVerifyOptions& options) {
  std::vector<NamedAnchor> out;
  const bool expect = options.expect_entries >= 0 || !options.expect_head.empty();
  if (expect) {
    if (options.expect_entries < 0 || options.expect_head.empty()) {
      return absl::InvalidArgumentError(
          "--expect-entries and --expect-head go together (the job's status.audit.entries and "
          "status.audit.head)");
    }
    BRAID_ASSIGN_OR_RETURN(
        audit::Anchor a,
        audit::AnchorFromJson(
            json{{"entries", options.expect_entries}, {"head", options.expect_head}}, "--expect"));
    out.push_back({"--expect-entries/--expect-head", std::move(a)});
  }
  if (!options.summary.empty()) {
    BRAID_ASSIGN_OR_RETURN(json j, ReadJsonFile(options.summary));
    if (!j.contains("audit")) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.summary, ": no \"audit\" (the run ended before its audit log had a head)"));
    }
    BRAID_ASSIGN_OR_RETURN(audit::Anchor a,
                           audit::AnchorFromJson(j["audit"], options.summary + ": audit"));
    out.push_back({options.summary, std::move(a)});
  }
  if (expect || !options.summary.empty()) return out;

  // Beside the log: the aggregator's checkpoint state, and the summary of
  // the `braid run` whose log this is.
  const fs::path dir = fs::absolute(log).parent_path();
  const fs::path state = dir / "state.json";
  if (fs::exists(state)) {
    BRAID_ASSIGN_OR_RETURN(json j, ReadJsonFile(state.string()));
    if (j.contains("audit")) {
      BRAID_ASSIGN_OR_RETURN(audit::Anchor a,
                             audit::AnchorFromJson(j["audit"], state.string() + ": audit"));
      out.push_back({state.string(), std::move(a)});
    }
  }
  const fs::path summary = dir.parent_path() / "summary.json";
  if (fs::exists(summary)) {
    absl::StatusOr<json> j = ReadJsonFile(summary.string());
    std::error_code ec;
    if (j.ok() && j->contains("audit") && (*j)["audit"].is_object() &&
        (*j)["audit"].value("log", "") != "" &&
        fs::equivalent((*j)["audit"].value("log", ""), log, ec)) {
      BRAID_ASSIGN_OR_RETURN(audit::Anchor a,
                             audit::AnchorFromJson((*j)["audit"], summary.string() + ": audit"));
      out.push_back({summary.string(), std::move(a)});
    }
  }
  return out;
}

}  // namespace

int AuditVerify(const std::string& path, const AuditVerifyOptions& options, std::ostream& out,
                std::ostream& err) {
  absl::StatusOr<std::vector<NamedAnchor>> anchors = FindAnchors(path, options);
  if (!anchors.ok()) {
    err << "braid audit: " << anchors.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(path);
  if (!file.ok()) {
    err << "braid audit: " << file.status().message() << "\n";
    return 2;
  }
  bool ok = file->verification.ok;
  if (!ok) err << file->verification.ToString(path) << "\n";
  std::vector<std::string> held;
  for (const NamedAnchor& a : *anchors) {
    const audit::AnchorCheck check = audit::CheckAnchor(*file, a.anchor);
    if (!check.ok) {
      err << path << ": " << check.problem << "; anchor from " << a.source << "\n";
      ok = false;
      continue;
    }
    held.push_back(absl::StrCat("holds the anchor of ", a.source, " (", a.anchor.entries,
                                " entries, head ", a.anchor.head.substr(0, 12), "…",
                                check.after > 0 ? absl::StrCat("; ", check.after, " after it")
                                                : std::string(),
                                ")"));
  }
  for (const audit::Entry& e : file->entries) {
    if (e.kind != audit::kAnchorMismatch) continue;
    err << path << ":" << e.seq << ": the aggregator found this log cut or rewritten when it "
        << "restarted (" << e.details.value("problem", std::string()) << ")\n";
    ok = false;
  }
  if (!ok) return 1;
  out << file->verification.ToString(path);
  for (const std::string& h : held) out << "; " << h;
  out << "\n";
  if (anchors->empty()) {
    err << path << ": no anchor found beside it: entries cut from its end cannot be detected "
        << "(pass --summary FILE, or --expect-entries N --expect-head HASH from the job's "
        << "status.audit)\n";
  }
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
