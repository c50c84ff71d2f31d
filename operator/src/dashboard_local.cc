#include "braid/operator/dashboard_local.h"

#include "absl/strings/str_cat.h"
#include "braid/core/status_macros.h"
#include "braid/core/audit_log.h"
#include "braid/operator/local_consent.h"

namespace braid::op {
namespace {

using nlohmann::json;

// The last round's value of `key`, or null.
json Last(const json& rounds, const char* key) {
  if (!rounds.is_array() || rounds.empty()) return nullptr;
  const json& r = rounds.back();
  return r.contains(key) ? r[key] : json(nullptr);
}

}  // namespace

json SpecSummary(const spec::JobSpec& job) {
  json tenants = json::array();
  for (const spec::Tenant& t : job.tenants) {
    tenants.push_back(json{{"name", t.name}, {"replicas", t.replicas}});
  }
  return json{{"model",
               {{"kind", job.model.kind},
                {"hidden", job.model.mlp.hidden},
                {"num_classes", job.model.mlp.num_classes}}},
              {"strategy",
               {{"name", job.strategy.name},
                {"rounds", job.strategy.rounds},
                {"min_clients", job.strategy.min_clients},
                {"fraction_fit", job.strategy.fraction_fit},
                {"round_timeout_seconds", job.strategy.round_timeout_seconds}}},
              {"training",
               {{"local_epochs", job.training.local_epochs},
                {"batch_size", job.training.batch_size},
                {"learning_rate", job.training.learning_rate},
                {"optimizer", job.training.optimizer}}},
              {"tenants", tenants},
              {"privacy", nullptr}};
}

LocalDashboardSource::LocalDashboardSource(const spec::JobSpec& job, std::string audit_path,
                                           EventFeed* feed, LocalTenancy tenancy)
    : job_(job),
      tenancy_(std::move(tenancy)),
      ns_(job.namespace_),
      name_(job.name),
      spec_(SpecSummary(job)),
      audit_path_(std::move(audit_path)),
      feed_(feed),
      status_(json{{"phase", "Pending"},
                   {"reason", ""},
                   {"message", ""},
                   {"total_rounds", job.strategy.rounds},
                   {"rounds", json::array()}}) {}

void LocalDashboardSource::Update(const json& status) {
  json event;
  {
    absl::MutexLock lock(&mu_);
    const size_t before = status_["rounds"].size();
    const std::string phase_before = status_["phase"];
    const std::string message_before = status_.value("message", "");
    status_ = status;
    if (!status_.contains("rounds") || !status_["rounds"].is_array()) status_["rounds"] = json::array();
    const size_t after = status_["rounds"].size();
    const std::string phase = status_.value("phase", "Pending");
    if (after != before || phase != phase_before ||
        (phase == "AwaitingApproval" && status_.value("message", "") != message_before)) {
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
  const json& rounds = status_["rounds"];
  return json{{"namespace", ns_},
              {"name", name_},
              {"phase", status_.value("phase", "Pending")},
              {"reason", status_.value("reason", "")},
              {"message", status_.value("message", "")},
              {"round", rounds.size()},
              {"total_rounds", status_.value("total_rounds", 0)},
              {"train_loss", Last(rounds, "train_loss")},
              {"eval_loss", Last(rounds, "eval_loss")},
              {"eval_accuracy", Last(rounds, "eval_accuracy")},
              {"epsilon", Last(rounds, "epsilon")},
              {"max_epsilon", nullptr}};
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
  for (const TenantConsent& c : ConsentOfTenants()) {
    consent.push_back(json{{"tenant", c.tenant},
                           {"namespace", TenantNamespace(c.tenant).value_or("")},
                           {"consent", ConsentName(c.consent)},
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

std::vector<TenantConsent> LocalDashboardSource::ConsentOfTenants() const {
  if (tenancy_.tenants.empty()) return ResolveConsent(job_, {}, {}, {});
  return LocalConsent(job_, JobRef{ns_, name_, tenancy_.job_uid}, tenancy_.tenants,
                      tenancy_.workdir);
}

json LocalDashboardSource::Tenants() const {
  const std::vector<TenantConsent> consent = ConsentOfTenants();
  json out = json::array();
  for (size_t i = 0; i < job_.tenants.size(); ++i) {
    const spec::Tenant& t = job_.tenants[i];
    auto obj = tenancy_.tenants.find(t.name);
    const json policy = obj == tenancy_.tenants.end()
                            ? json(nullptr)
                            : obj->second.value("/spec/policy"_json_pointer, json(nullptr));
    const Consent c = i < consent.size() ? consent[i].consent : Consent::kNotRequired;
    out.push_back(json{{"name", t.name},
                       {"namespace", TenantNamespace(t.name).value_or(ns_)},
                       {"jobs", json::array({ns_ + "/" + name_})},
                       {"replicas", t.replicas},
                       {"policy", policy},
                       {"approval", c == Consent::kNotRequired
                                        ? std::string("not required")
                                        : absl::StrCat(ns_, "/", name_, ": ", ConsentName(c))}});
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
                        {"phase", status_.value("phase", "Pending")},
                        {"round", status_["rounds"].size()}});
  }
  return approval;
}

}  // namespace braid::op
