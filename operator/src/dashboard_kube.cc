#include "braid/operator/dashboard_kube.h"

#include "absl/strings/str_cat.h"
#include "braid/core/spec.h"
#include "braid/core/status_macros.h"
#include "braid/operator/reconciler.h"
#include "braid/control/tenant_approval.h"
#include "braid/dashboard/source.h"

namespace braid::op {
namespace {

using control::ConsentName;
using control::JobRef;
using control::ResolveConsent;
using control::TenantConsent;
using dashboard::Access;
using dashboard::Caller;
using dashboard::EventFeed;
using dashboard::SpecSummary;

using nlohmann::json;

const kube::ResourceRef kTokenReview{"authentication.k8s.io/v1", "TokenReview", "tokenreviews",
                                     false};
const kube::ResourceRef kSubjectAccessReview{"authorization.k8s.io/v1", "SubjectAccessReview",
                                             "subjectaccessreviews", false};
constexpr char kDashboardFieldManager[] = "braid-dashboard";

json Ptr(const json& obj, const char* pointer) {
  const json::json_pointer p(pointer);
  return obj.contains(p) ? obj.at(p) : json(nullptr);
}

std::string Str(const json& obj, const char* pointer) {
  const json v = Ptr(obj, pointer);
  return v.is_string() ? v.get<std::string>() : "";
}

json Row(const json& job) {
  return dashboard::JobRow(Str(job, "/metadata/namespace"), Str(job, "/metadata/name"),
                           job.value("status", json::object()),
                           Ptr(job, "/spec/strategy/rounds"),
                           Ptr(job, "/spec/privacy/differentialPrivacy/maxEpsilon"));
}

absl::StatusOr<spec::JobSpec> ParseJob(const json& job) {
  spec::ParseOptions options;
  options.check_files = false;
  return spec::ParseJobYaml(JobFileText(job), "", options);
}

// The names of the tenants `job` lists.
std::vector<std::string> TenantNames(const json& job) {
  std::vector<std::string> out;
  for (const json& t : Ptr(job, "/spec/tenants").is_array() ? job["spec"]["tenants"] : json::array()) {
    if (t.is_object() && t.contains("name") && t["name"].is_string()) out.push_back(t["name"]);
  }
  return out;
}

}  // namespace

KubeDashboardSource::KubeDashboardSource(kube::Client* client, EventFeed* feed)
    : client_(client), feed_(feed) {
  kube::InformerHandlers job_handlers;
  job_handlers.on_upsert = [this](const json& job) { OnJob(job); };
  jobs_ = std::make_unique<kube::Informer>(client, kube::InformerOptions{kube::kFederatedJob},
                                           job_handlers);
  tenants_ = std::make_unique<kube::Informer>(client, kube::InformerOptions{kube::kTenant},
                                              kube::InformerHandlers{});
  kube::InformerHandlers approval_handlers;
  approval_handlers.on_upsert = [this](const json& a) {
    feed_->Publish(json{{"type", "consent"},
                        {"namespace", Str(a, "/spec/job/namespace")},
                        {"name", Str(a, "/spec/job/name")},
                        {"tenant", Str(a, "/spec/tenant")}});
  };
  approval_handlers.on_delete = approval_handlers.on_upsert;
  approvals_ = std::make_unique<kube::Informer>(
      client, kube::InformerOptions{kube::kTenantApproval}, approval_handlers);
  jobs_->Start();
  tenants_->Start();
  approvals_->Start();
}

KubeDashboardSource::~KubeDashboardSource() {
  jobs_->Stop();
  tenants_->Stop();
  approvals_->Stop();
}

bool KubeDashboardSource::HasSynced() const {
  return jobs_->HasSynced() && tenants_->HasSynced() && approvals_->HasSynced();
}

void KubeDashboardSource::OnJob(const json& job) {
  const json row = Row(job);
  const std::string key = row["namespace"].get<std::string>() + "/" + row["name"].get<std::string>();
  const std::string phase = row["phase"];
  const int round = row["round"].is_number_integer() ? row["round"].get<int>() : 0;
  std::string type;
  {
    absl::MutexLock lock(&mu_);
    auto it = seen_.find(key);
    if (it == seen_.end() || it->second.first != phase) {
      type = "phase";
    } else if (it->second.second != round) {
      type = "round";
    }
    seen_[key] = {phase, round};
  }
  if (!type.empty()) {
    feed_->Publish(json{{"type", type},
                        {"namespace", row["namespace"]},
                        {"name", row["name"]},
                        {"phase", phase},
                        {"round", round}});
  }
}

std::map<std::string, json> KubeDashboardSource::TenantObjects() const {
  std::map<std::string, json> out;
  for (json& t : tenants_->Snapshot()) {
    // Not in one expression: json's operator= takes its argument by value,
    // which would move `t` before the key is read.
    const std::string name = Str(t, "/metadata/name");
    out[name] = std::move(t);
  }
  return out;
}

json KubeDashboardSource::Jobs() const {
  json rows = json::array();
  for (const json& job : jobs_->Snapshot()) rows.push_back(Row(job));
  return json{{"jobs", rows}};
}

absl::StatusOr<json> KubeDashboardSource::Job(const std::string& ns,
                                              const std::string& name) const {
  std::optional<json> job = jobs_->Get(ns, name);
  if (!job) return absl::NotFoundError(absl::StrCat("no FederatedJob ", ns, "/", name));
  json out = Row(*job);
  json round = json::array();
  const json metrics = Ptr(*job, "/status/metrics");
  if (out["round"].is_number_integer() && out["round"].get<int>() > 0 && metrics.is_object()) {
    round.push_back(json{{"round", out["round"]},
                         {"participants", metrics.value("participants", 0)},
                         {"sampled", metrics.value("participants", 0)},
                         {"tenants", json::array()},
                         {"train_loss", metrics.value("trainLoss", 0.0)},
                         {"eval_loss", metrics.value("evalLoss", 0.0)},
                         {"eval_accuracy", metrics.value("evalAccuracy", 0.0)},
                         {"seconds", 0.0},
                         {"bytes_up", 0},
                         {"bytes_down", 0}});
  }
  out["rounds"] = round;
  json consent = json::array();
  absl::StatusOr<spec::JobSpec> spec = ParseJob(*job);
  if (spec.ok()) {
    out["spec"] = SpecSummary(*spec);
    const std::map<std::string, json> tenants = TenantObjects();
    for (const TenantConsent& c :
         ResolveConsent(*spec, JobRef{ns, name, Str(*job, "/metadata/uid")}, tenants,
                        approvals_->Snapshot())) {
      auto t = tenants.find(c.tenant);
      consent.push_back(json{{"tenant", c.tenant},
                             {"namespace", t == tenants.end() ? "" : Str(t->second, "/spec/namespace")},
                             {"consent", ConsentName(c.consent)},
                             {"comment", c.comment}});
    }
  } else {
    out["spec"] = nullptr;
  }
  out["consent"] = consent;
  return out;
}

absl::StatusOr<json> KubeDashboardSource::Audit(const std::string& ns,
                                                const std::string& name) const {
  if (!jobs_->Get(ns, name)) return absl::NotFoundError(absl::StrCat("no FederatedJob ", ns, "/", name));
  return absl::NotFoundError(absl::StrCat(
      "the audit log of ", ns, "/", name,
      " lives on the aggregator's checkpoint volume (checkpoint/audit.jsonl); read it with "
      "`kubectl exec -n ",
      ns, " deploy/", name, "-aggregator -- braid audit show /checkpoint/audit.jsonl`"));
}

json KubeDashboardSource::Tenants() const {
  const std::vector<json> jobs = jobs_->Snapshot();
  const std::vector<json> approvals = approvals_->Snapshot();
  const std::map<std::string, json> tenants = TenantObjects();
  json out = json::array();
  for (const auto& [name, t] : tenants) {
    json job_keys = json::array();
    int replicas = 0;
    std::vector<std::string> decisions;
    const bool required = Ptr(t, "/spec/policy/requireApproval") == json(true);
    for (const json& job : jobs) {
      const std::vector<std::string> names = TenantNames(job);
      if (std::find(names.begin(), names.end(), name) == names.end()) continue;
      const std::string key = Str(job, "/metadata/namespace") + "/" + Str(job, "/metadata/name");
      job_keys.push_back(key);
      for (const json& jt : job["spec"]["tenants"]) {
        if (jt.value("name", "") == name) replicas += jt.value("replicas", 1);
      }
      if (!required) continue;
      absl::StatusOr<spec::JobSpec> spec = ParseJob(job);
      if (!spec.ok()) continue;
      for (const TenantConsent& c :
           ResolveConsent(*spec,
                          JobRef{Str(job, "/metadata/namespace"), Str(job, "/metadata/name"),
                                 Str(job, "/metadata/uid")},
                          tenants, approvals)) {
        if (c.tenant == name) decisions.push_back(absl::StrCat(key, ": ", ConsentName(c.consent)));
      }
    }
    std::string approval = required ? "required" : "not required";
    if (!decisions.empty()) {
      approval.clear();
      for (const std::string& d : decisions) absl::StrAppend(&approval, approval.empty() ? "" : "; ", d);
    }
    out.push_back(json{{"name", name},
                       {"namespace", Str(t, "/spec/namespace")},
                       {"jobs", job_keys},
                       {"replicas", replicas},
                       {"policy", Ptr(t, "/spec/policy")},
                       {"approval", approval}});
  }
  return json{{"tenants", out}};
}

absl::StatusOr<std::string> KubeDashboardSource::TenantNamespace(const std::string& tenant) const {
  std::optional<json> t = tenants_->Get("", tenant);
  if (!t) return absl::NotFoundError(absl::StrCat("no Tenant \"", tenant, "\""));
  const std::string ns = Str(*t, "/spec/namespace");
  if (ns.empty()) return absl::FailedPreconditionError(absl::StrCat("Tenant \"", tenant, "\" has no spec.namespace"));
  return ns;
}

absl::StatusOr<json> KubeDashboardSource::Decide(const std::string& ns, const std::string& name,
                                                 const std::string& tenant, bool approve,
                                                 const std::string& comment,
                                                 const std::string& by) {
  std::optional<json> job = jobs_->Get(ns, name);
  if (!job) return absl::NotFoundError(absl::StrCat("no FederatedJob ", ns, "/", name));
  const std::vector<std::string> names = TenantNames(*job);
  if (std::find(names.begin(), names.end(), tenant) == names.end()) {
    return absl::NotFoundError(absl::StrCat("job ", ns, "/", name, " has no tenant \"", tenant, "\""));
  }
  BRAID_ASSIGN_OR_RETURN(std::string tenant_ns, TenantNamespace(tenant));
  const json approval{
      {"apiVersion", kube::kTenantApproval.api_version},
      {"kind", kube::kTenantApproval.kind},
      {"metadata",
       {{"name", absl::StrCat(ns, ".", name)},
        {"namespace", tenant_ns},
        {"labels", {{"app.kubernetes.io/managed-by", "braid-dashboard"}}}}},
      {"spec",
       {{"tenant", tenant},
        {"job", {{"namespace", ns}, {"name", name}, {"uid", Str(*job, "/metadata/uid")}}},
        {"decision", approve ? "Approved" : "Refused"},
        {"comment", comment.empty() ? absl::StrCat("by ", by, " (dashboard)")
                                    : absl::StrCat(comment, " (by ", by, ", dashboard)")}}}};
  return client_->Apply(kube::kTenantApproval, approval, kDashboardFieldManager, /*force=*/true);
}

absl::StatusOr<Caller> KubeDashboardAuthorizer::Authenticate(const std::string& token) {
  if (token.empty()) return absl::UnauthenticatedError("no bearer token");
  const json review{{"apiVersion", kTokenReview.api_version},
                    {"kind", kTokenReview.kind},
                    {"spec", {{"token", token}}}};
  absl::StatusOr<json> answer = client_->Create(kTokenReview, review);
  if (!answer.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot review the token with the API server: ", answer.status().message()));
  }
  if (Ptr(*answer, "/status/authenticated") != json(true)) {
    const std::string why = Str(*answer, "/status/error");
    return absl::UnauthenticatedError(
        absl::StrCat("the token is not valid", why.empty() ? "" : ": ", why));
  }
  Caller c;
  c.user = Str(*answer, "/status/user/username");
  c.uid = Str(*answer, "/status/user/uid");
  const json groups = Ptr(*answer, "/status/user/groups");
  if (groups.is_array()) {
    for (const json& g : groups) {
      if (g.is_string()) c.groups.push_back(g);
    }
  }
  return c;
}

absl::StatusOr<bool> KubeDashboardAuthorizer::Allowed(const Caller& caller, const Access& a) {
  json spec{{"user", caller.user},
            {"groups", caller.groups},
            {"resourceAttributes",
             {{"namespace", a.ns}, {"verb", a.verb}, {"group", a.group}, {"resource", a.resource}}}};
  if (!caller.uid.empty()) spec["uid"] = caller.uid;
  const json review{{"apiVersion", kSubjectAccessReview.api_version},
                    {"kind", kSubjectAccessReview.kind},
                    {"spec", spec}};
  absl::StatusOr<json> answer = client_->Create(kSubjectAccessReview, review);
  if (!answer.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot ask the API server for access: ", answer.status().message()));
  }
  return Ptr(*answer, "/status/allowed") == json(true);
}

}  // namespace braid::op
