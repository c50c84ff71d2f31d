#include "braid/cli/local_consent.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <yaml-cpp/yaml.h>

#include "absl/strings/str_cat.h"
#include "braid/core/audit_log.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"
#include "braid/cli/local_runtime.h"

namespace braid::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kMaxTenantsBytes = 4 << 20;
constexpr uint64_t kMaxApprovalBytes = 64 << 10;

// YAML to JSON: quoted scalars stay strings; plain ones become booleans,
// integers or numbers when they read as such (YAML 1.2 core schema).
json ToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : n) out.push_back(ToJson(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : n) out[kv.first.as<std::string>()] = ToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~") return nullptr;
      int64_t i;
      if (YAML::convert<int64_t>::decode(n, i)) return i;
      double d;
      if (YAML::convert<double>::decode(n, d)) return d;
      return s;
    }
    default:
      return nullptr;
  }
}

std::string SafeName(const std::string& tenant) {
  // Tenant names are DNS labels (the spec validates them); keep the file
  // name inside approvals/ whatever comes in.
  std::string out;
  for (char c : tenant) out += (isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
  return out;
}

absl::Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::PermissionDeniedError(absl::StrCat(tmp, ": cannot write"));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(path, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::map<std::string, json>> ReadTenantsFile(const std::string& path) {
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, kMaxTenantsBytes));
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not valid YAML (line ", e.mark.line + 1, "): ", e.msg));
  }
  std::vector<std::pair<int, json>> objects;  // (document's line, object)
  for (const YAML::Node& doc : docs) {
    if (doc.IsNull()) continue;
    const int line = doc.Mark().line + 1;
    json j;
    try {
      j = ToJson(doc);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": line ", e.mark.line + 1, ": ", e.msg));
    }
    if (j.is_object() && j.value("kind", "") == "List" && j.contains("items") &&
        j["items"].is_array()) {
      for (json& item : j["items"]) objects.emplace_back(line, std::move(item));
    } else {
      objects.emplace_back(line, std::move(j));
    }
  }
  std::map<std::string, json> out;
  for (auto& [line, obj] : objects) {
    const std::string where = absl::StrCat(path, ": document at line ", line);
    if (!obj.is_object() || obj.value("kind", "") != "Tenant") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": not a Tenant (expected kind: Tenant, apiVersion: braid.dev/v1alpha1)"));
    }
    const std::string name = obj.value("/metadata/name"_json_pointer, std::string());
    if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": metadata.name is missing"));
    if (out.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": Tenant \"", name, "\" is given twice"));
    }
    const json policy = obj.value("/spec/policy"_json_pointer, json());
    if (!policy.is_null() && !policy.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": spec.policy must be a map"));
    }
    if (policy.is_object()) {
      if (policy.contains("requireApproval") && !policy["requireApproval"].is_boolean()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": spec.policy.requireApproval must be true or false"));
      }
      if (policy.contains("maxRounds") && !policy["maxRounds"].is_number_integer()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": spec.policy.maxRounds must be an integer"));
      }
      if (policy.contains("allowedModels") && !policy["allowedModels"].is_array()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": spec.policy.allowedModels must be a list of model kinds"));
      }
    }
    out[name] = std::move(obj);
  }
  return out;
}

std::vector<control::TenantProblem> LocalPolicyProblems(const spec::JobSpec& job,
                                               const std::map<std::string, json>& tenants) {
  std::vector<control::TenantProblem> out;
  for (const spec::Tenant& t : job.tenants) {
    auto it = tenants.find(t.name);
    if (it == tenants.end()) continue;
    for (control::TenantProblem& p : control::PolicyProblems(job, t.name, it->second)) out.push_back(std::move(p));
  }
  return out;
}

std::string ApprovalsDir(const std::string& workdir) {
  return (fs::path(workdir) / "approvals").string();
}

std::string ConsentFile(const std::string& workdir) {
  return (fs::path(workdir) / "consent.json").string();
}

absl::Status WriteConsentFile(const std::string& workdir, const control::JobRef& job,
                              const std::map<std::string, json>& tenants) {
  std::error_code ec;
  fs::create_directories(ApprovalsDir(workdir), ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(ApprovalsDir(workdir), ": ", ec.message()));
  json t = json::object();
  for (const auto& [name, obj] : tenants) {
    t[name] = json{{"namespace", obj.value("/spec/namespace"_json_pointer, std::string())},
                   {"requireApproval",
                    obj.value("/spec/policy/requireApproval"_json_pointer, false)}};
  }
  const json j{{"job", {{"namespace", job.namespace_}, {"name", job.name}, {"uid", job.uid}}},
               {"tenants", t}};
  return WriteAtomically(ConsentFile(workdir), j.dump(2) + "\n");
}

std::vector<json> ReadApprovals(const std::string& workdir) {
  std::vector<json> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(ApprovalsDir(workdir), ec)) {
    if (entry.path().extension() != ".json") continue;
    absl::StatusOr<std::string> text = ReadSmallFile(entry.path().string(), kMaxApprovalBytes);
    if (!text.ok()) continue;
    json j = json::parse(*text, nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

std::vector<control::TenantConsent> LocalConsent(const spec::JobSpec& job, const control::JobRef& ref,
                                        const std::map<std::string, json>& tenants,
                                        const std::string& workdir) {
  return control::ResolveConsent(job, ref, tenants, ReadApprovals(workdir));
}

absl::StatusOr<json> RecordDecision(const std::string& workdir, const Decision& d) {
  const std::string consent_path = ConsentFile(workdir);
  if (!fs::exists(consent_path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        consent_path, ": not found; approvals are for a `braid run --tenants FILE` using this "
                      "working directory (start it first; it waits for approval)"));
  }
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(consent_path, kMaxApprovalBytes));
  const json consent = json::parse(text, nullptr, false);
  if (!consent.is_object() || !consent.contains("job") || !consent.contains("tenants")) {
    return absl::DataLossError(absl::StrCat(consent_path, ": not a consent file written by braid run"));
  }
  if (!consent["tenants"].contains(d.tenant)) {
    std::string names;
    for (const auto& [name, _] : consent["tenants"].items()) absl::StrAppend(&names, names.empty() ? "" : ", ", name);
    return absl::NotFoundError(absl::StrCat("tenant \"", d.tenant, "\" has no Tenant object in this run (",
                                            names.empty() ? "none" : names, ")"));
  }
  const json& job = consent["job"];
  const json approval{
      {"apiVersion", "braid.dev/v1alpha1"},
      {"kind", "TenantApproval"},
      {"metadata",
       {{"name", job.value("name", "")},
        {"namespace", consent["tenants"][d.tenant].value("namespace", "")}}},
      {"spec",
       {{"tenant", d.tenant},
        {"job", job},
        {"decision", d.approve ? "Approved" : "Refused"},
        {"comment", d.comment.empty() ? "by " + d.by : d.comment + " (by " + d.by + ")"}}}};
  std::error_code ec;
  fs::create_directories(ApprovalsDir(workdir), ec);
  BRAID_RETURN_IF_ERROR(WriteAtomically(
      (fs::path(ApprovalsDir(workdir)) / (SafeName(d.tenant) + ".json")).string(),
      approval.dump(2) + "\n"));
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<audit::AuditLog> log,
                         audit::AuditLog::Open(LocalAuditLogPath(workdir)));
  BRAID_RETURN_IF_ERROR(
      log->Append(d.approve ? audit::kTenantApproved : audit::kTenantRefused, d.by,
                  job.value("namespace", "") + "/" + job.value("name", ""),
                  json{{"tenant", d.tenant}, {"by", d.by}, {"comment", d.comment}})
          .status());
  return approval;
}

}  // namespace braid::cli
