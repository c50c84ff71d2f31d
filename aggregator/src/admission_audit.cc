#include "braid/aggregator/admission_audit.h"

#include <filesystem>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"

namespace braid::aggregator {
namespace {

using nlohmann::json;

constexpr char kActor[] = "operator";
constexpr uint64_t kMaxFileBytes = 1 << 20;

std::string Key(const std::string& decision, const std::string& approval,
                const std::string& comment) {
  return absl::StrCat(decision, "|", approval, "|", comment);
}

std::string Str(const json& obj, const char* field) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

AdmissionAudit::AdmissionAudit(std::string path, audit::AuditLog* log, std::string job)
    : path_(std::move(path)), log_(log), job_(std::move(job)) {}

absl::Status AdmissionAudit::LoadLogged() {
  BRAID_ASSIGN_OR_RETURN(audit::AuditFile file, audit::ReadAuditLog(log_->path()));
  for (const audit::Entry& e : file.entries) {
    if (e.actor != kActor || e.job != job_) continue;
    if (e.kind == audit::kJobCreated) created_uids_.insert(Str(e.details, "uid"));
    if (e.kind == audit::kTenantApproved || e.kind == audit::kTenantRefused) {
      last_[Str(e.details, "tenant")] =
          Key(Str(e.details, "decision"), Str(e.details, "approval"), Str(e.details, "comment"));
    }
  }
  loaded_ = true;
  return absl::OkStatus();
}

absl::Status AdmissionAudit::Poll() {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return absl::OkStatus();
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path_, kMaxFileBytes));
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", what));
  };
  if (!doc.is_object()) return bad("not a JSON object");
  const json job = doc.value("job", json::object());
  const json tenants = doc.value("tenants", json::array());
  if (!job.is_object()) return bad("job: not an object");
  if (!tenants.is_array()) return bad("tenants: not an array");
  for (size_t i = 0; i < tenants.size(); ++i) {
    if (!tenants[i].is_object() || Str(tenants[i], "tenant").empty()) {
      return bad(absl::StrCat("tenants[", i, "]: not an object with a tenant name"));
    }
  }
  if (!loaded_) BRAID_RETURN_IF_ERROR(LoadLogged());

  const std::string uid = Str(job, "uid");
  if (!uid.empty() && created_uids_.insert(uid).second) {
    BRAID_RETURN_IF_ERROR(
        log_->Append(audit::kJobCreated, kActor, job_,
                     json{{"uid", uid}, {"created", Str(job, "created")}})
            .status());
  }
  for (const json& t : tenants) {
    const std::string tenant = Str(t, "tenant");
    const std::string consent = Str(t, "consent");
    std::string decision = consent;
    std::string approval = Str(t, "approval");
    std::string comment = Str(t, "comment");
    if (consent == "Pending") {
      // Pending after an approval: the approval was deleted.
      auto it = last_.find(tenant);
      if (it == last_.end() || it->second.rfind("Approved|", 0) != 0) continue;
      decision = "Revoked";
      comment = "the approval was deleted";
    } else if (consent != "Approved" && consent != "Refused") {
      continue;  // NotRequired, or not decided yet
    }
    const std::string key = Key(decision, approval, comment);
    if (last_[tenant] == key) continue;
    BRAID_RETURN_IF_ERROR(log_->Append(decision == "Approved" ? audit::kTenantApproved
                                                              : audit::kTenantRefused,
                                       kActor, job_,
                                       json{{"tenant", tenant},
                                            {"decision", decision},
                                            {"approval", approval},
                                            {"comment", comment}})
                              .status());
    last_[tenant] = key;
  }
  return absl::OkStatus();
}

}  // namespace braid::aggregator
