#include "braid/cli/dashboard_local.h"

#include "absl/strings/str_cat.h"
#include "braid/core/status_macros.h"
#include "braid/core/audit_log.h"
#include "braid/cli/local_consent.h"

namespace braid::cli {
namespace {

using nlohmann::json;

// The spec's privacy budget, or null without differential privacy.
json SpecMaxEpsilon(const spec::JobSpec& job) {
  return job.privacy.differential_privacy ? json(job.privacy.dp.max_epsilon) : json(nullptr);
}

// The phase of an on_status payload.
std::string PhaseOf(const json& update) {
  return update.value("/status/phase"_json_pointer, std::string("Pending"));
}

}  // namespace

LocalDashboardSource::LocalDashboardSource(const spec::JobSpec& job, std::string audit_path,
                                           dashboard::EventFeed* feed, LocalTenancy tenancy)
    : job_(job),
      tenancy_(std::move(tenancy)),
      ns_(job.namespace_),
      name_(job.name),
      spec_(dashboard::SpecSummary(job)),
      audit_path_(std::move(audit_path)),
      feed_(feed),
      status_(json{{"status", {{"phase", "Pending"}}}, {"rounds", json::array()}}) {}

void LocalDashboardSource::Update(const json& update) {
  json event;
  {
    absl::MutexLock lock(&mu_);
    const size_t before = status_["rounds"].size();
    const std::string phase_before = PhaseOf(status_);
    const std::string message_before =
        status_.value("/status/message"_json_pointer, std::string());
    status_ = update;
    if (!status_.contains("status") || !status_["status"].is_object()) {
      status_["status"] = json::object();
    }
    if (!status_.contains("rounds") || !status_["rounds"].is_array()) status_["rounds"] = json::array();
    const size_t after = status_["rounds"].size();
    const std::string phase = PhaseOf(status_);
    if (after != before || phase != phase_before ||
        (phase == "AwaitingApproval" &&
         status_["status"].value("message", "") != message_before)) {
      event = json{{"type", phase != phase_before ? "phase" : "round"},
                   {"namespace", ns_},
                   {"name", name_},
                   {"phase", phase},
                   {"round", after}};
    }
  }
  if (!event.is_null() && feed_ != nullptr) feed_->Publish(std::move(event));
}

bool LocalDashboardSource::IsThisJob(const std::string& ns, const std::string& name) const {
  return ns == ns_ && name == name_;
}

json LocalDashboardSource::RowLocked() const {
  return dashboard::JobRow(ns_, name_, status_["status"], job_.strategy.rounds,
                           SpecMaxEpsilon(job_));
}

json LocalDashboardSource::Jobs() const {
  absl::ReaderMutexLock lock(&mu_);
  return json{{"jobs", json::array({RowLocked()})}};
}

absl::StatusOr<json> LocalDashboardSource::Job(const std::string& ns,
                                               const std::string& name) const {
  if (!IsThisJob(ns, name)) {
    return absl::NotFoundError(absl::StrCat("no job ", ns, "/", name, " here"));
  }
  absl::ReaderMutexLock lock(&mu_);
  json out = RowLocked();
  out["spec"] = spec_;
  out["rounds"] = status_["rounds"];
  json consent = json::array();
  for (const control::TenantConsent& c : ConsentOfTenants()) {
    consent.push_back(json{{"tenant", c.tenant},
                           {"namespace", TenantNamespace(c.tenant).value_or("")},
                           {"consent", control::ConsentName(c.consent)},
                           {"comment", c.comment}});
  }
  out["consent"] = consent;
  return out;
}

absl::StatusOr<json> LocalDashboardSource::Audit(const std::string& ns,
                                                 const std::string& name) const {
  if (!IsThisJob(ns, name)) {
    return absl::NotFoundError(absl::StrCat("no job ", ns, "/", name, " here"));
  }
  absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(audit_path_);
  if (!file.ok()) return file.status();
  json entries = json::array();
  for (const audit::Entry& e : file->entries) entries.push_back(e.ToJson());
  const audit::Verification& v = file->verification;
  return json{{"path", audit_path_},
              {"entries", entries},
              {"verification",
               {{"ok", v.ok},
                {"entries", v.entries},
                {"line", v.line},
                {"problem", v.problem},
                {"text", v.ToString(audit::kFileName)}}}};
}

std::vector<control::TenantConsent> LocalDashboardSource::ConsentOfTenants() const {
  if (tenancy_.tenants.empty()) return control::ResolveConsent(job_, {}, {}, {});
  return LocalConsent(job_, control::JobRef{ns_, name_, tenancy_.job_uid}, tenancy_.tenants,
                      tenancy_.workdir);
}

json LocalDashboardSource::Tenants() const {
  const std::vector<control::TenantConsent> consent = ConsentOfTenants();
  json out = json::array();
  for (size_t i = 0; i < job_.tenants.size(); ++i) {
    const spec::Tenant& t = job_.tenants[i];
    auto obj = tenancy_.tenants.find(t.name);
    const json policy = obj == tenancy_.tenants.end()
                            ? json(nullptr)
                            : obj->second.value("/spec/policy"_json_pointer, json(nullptr));
    const control::Consent c = i < consent.size() ? consent[i].consent : control::Consent::kNotRequired;
    out.push_back(json{{"name", t.name},
                       {"namespace", TenantNamespace(t.name).value_or(ns_)},
                       {"jobs", json::array({ns_ + "/" + name_})},
                       {"replicas", t.replicas},
                       {"policy", policy},
                       {"approval", c == control::Consent::kNotRequired
                                        ? std::string("not required")
                                        : absl::StrCat(ns_, "/", name_, ": ", control::ConsentName(c))}});
  }
  return json{{"tenants", out}};
}

absl::StatusOr<std::string> LocalDashboardSource::TenantNamespace(const std::string& tenant) const {
  for (const spec::Tenant& t : job_.tenants) {
    if (t.name != tenant) continue;
    auto obj = tenancy_.tenants.find(tenant);
    std::string ns = obj == tenancy_.tenants.end()
                         ? std::string()
                         : obj->second.value("/spec/namespace"_json_pointer, std::string());
    if (ns.empty()) ns = t.namespace_.empty() ? ns_ : t.namespace_;
    return ns;
  }
  return absl::NotFoundError(absl::StrCat("job ", ns_, "/", name_, " has no tenant \"", tenant, "\""));
}

absl::StatusOr<json> LocalDashboardSource::Decide(const std::string& ns, const std::string& name,
                                                  const std::string& tenant, bool approve,
                                                  const std::string& comment,
                                                  const std::string& by) {
  if (!IsThisJob(ns, name)) {
    return absl::NotFoundError(absl::StrCat("no job ", ns, "/", name, " here"));
  }
  if (absl::Status s = TenantNamespace(tenant).status(); !s.ok()) return s;
  if (tenancy_.tenants.empty()) {
    return absl::FailedPreconditionError(
        "no tenant of this run requires approval (braid run --tenants FILE gives Tenant objects)");
  }
  BRAID_ASSIGN_OR_RETURN(json approval,
                         RecordDecision(tenancy_.workdir, Decision{tenant, approve, comment, by}));
  if (feed_ != nullptr) {
    absl::ReaderMutexLock lock(&mu_);
    feed_->Publish(json{{"type", "consent"},
                        {"namespace", ns_},
                        {"name", name_},
                        {"tenant", tenant},
                        {"phase", PhaseOf(status_)},
                        {"round", status_["rounds"].size()}});
  }
  return approval;
}

}  // namespace braid::cli
