#include "braid/operator/site_role.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "braid/control/site_invitation.h"
#include "braid/control/tenant_approval.h"
#include "braid/core/dns_name.h"
#include "braid/core/log.h"
#include "braid/core/spec.h"
#include "braid/core/status_macros.h"
#include "braid/operator/job_objects.h"
#include "braid/operator/job_tls.h"

namespace braid::op {
namespace {

using nlohmann::json;

constexpr char kInvitationLabel[] = "braid.dev/invitation";

// The invitation's object name in the tenant's namespace: one per
// coordinator job (namespace/name), stable across reconciles.
std::string InvitationName(const v1::Invitation& inv) {
  return DnsLabel(inv.job_namespace() + "-" + inv.job_name());
}

// Characters allowed in a label value, so a hostile uid cannot break the
// label selectors built from it.
bool IsSafeUid(const std::string& uid) {
  if (uid.empty() || uid.size() > 63) return false;
  return std::all_of(uid.begin(), uid.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// The most invitations one snapshot may make objects for; the rest are
// refused, so a coordinator cannot fill the site's API server.
constexpr int kMaxInvitations = 64;

// Why an invitation cannot even be shown as an object (the CRD's bounds),
// or "" when it can. Checked before anything is written, so one malformed
// invitation never blocks the others.
std::string MalformedField(const v1::Invitation& inv) {
  if (!IsDns1123Label(inv.job_namespace())) return "job_namespace";
  if (!IsDns1123Label(inv.job_name())) return "job_name";
  if (!IsDns1123Label(inv.tenant())) return "tenant";
  if (inv.dataset().empty() || inv.dataset().size() > 253) return "dataset";
  if (inv.job_yaml().size() > (1 << 20)) return "job_yaml";
  if (inv.coordinator().size() > 253) return "coordinator";
  if (inv.worker_image().size() > 1024) return "worker_image";
  if (inv.aggregator_address().empty() || inv.aggregator_address().size() > 1024) {
    return "aggregator_address";
  }
  if (inv.aggregator_server_name().size() > 253) return "aggregator_server_name";
  return "";
}

v1::InvitationState State(const v1::Invitation& inv, const std::string& state,
                          const std::string& reason, const std::string& message,
                          int workers_ready = 0) {
  v1::InvitationState s;
  s.set_job_uid(inv.job_uid());
  s.set_state(state);
  s.set_reason(reason);
  s.set_message(message);
  s.set_workers_ready(workers_ready);
  return s;
}

json InvitationObject(const v1::Invitation& inv, const std::string& ns,
                      const spec::JobSpec* job) {
  json spec = {{"jobUid", inv.job_uid()},
               {"coordinator", inv.coordinator()},
               {"job", {{"namespace", inv.job_namespace()}, {"name", inv.job_name()}}},
               {"tenant", inv.tenant()},
               {"dataset", inv.dataset()},
               {"workerImage", inv.worker_image()},
               {"aggregatorAddress", inv.aggregator_address()},
               {"jobFile", inv.job_yaml()}};
  if (job != nullptr) {
    spec["model"] = {{"kind", job->model.kind}};
    spec["rounds"] = job->strategy.rounds;
    json privacy = {{"enabled", job->privacy.differential_privacy},
                    {"secureAggregation", job->privacy.secure_aggregation}};
    if (job->privacy.differential_privacy) {
      privacy["maxEpsilon"] = job->privacy.dp.max_epsilon;
      privacy["delta"] = job->privacy.dp.delta;
    }
    spec["privacy"] = privacy;
  } else {
    spec["model"] = {{"kind", "mlp"}};  // the job did not parse; shown as refused
    spec["rounds"] = 1;
  }
  return {{"apiVersion", kFederatedInvitation.api_version},
          {"kind", kFederatedInvitation.kind},
          {"metadata",
           {{"name", InvitationName(inv)},
            {"namespace", ns},
            {"labels", {{kInvitationLabel, "true"}, {kJobUidLabel, inv.job_uid()}}}}},
          {"spec", spec}};
}

}  // namespace

SiteReconciler::SiteReconciler(kube::Client* client, SiteRoleOptions options)
    : client_(client), options_(std::move(options)) {}

absl::Status SiteReconciler::RemoveWorkers(const std::string& ns, const std::string& job_uid) {
  applied_.erase(job_uid);  // applied again in full if they are to run again
  kube::ListOptions list;
  list.label_selector = JobSelector(job_uid);
  for (const kube::ResourceRef* ref :
       {&kube::kDeployment, &kube::kNetworkPolicy, &kube::kConfigMap, &kube::kSecret}) {
    BRAID_ASSIGN_OR_RETURN(json items, client_->List(*ref, ns, list));
    for (const json& item : items.value("items", json::array())) {
      absl::Status deleted = client_->Delete(*ref, ns, item["metadata"]["name"]);
      if (!deleted.ok() && !absl::IsNotFound(deleted)) return deleted;
    }
  }
  return absl::OkStatus();
}

absl::Status SiteReconciler::StopWorkers(const json& object) {
  const std::string was = object.value("/status/phase"_json_pointer, std::string());
  if (was == "Refused" || was == "AwaitingApproval" || was == "Withdrawn") {
    applied_.erase(object.value("/spec/jobUid"_json_pointer, std::string()));
    return absl::OkStatus();
  }
  return RemoveWorkers(object["metadata"]["namespace"], object["spec"]["jobUid"]);
}

absl::StatusOr<int> SiteReconciler::ApplyWorkers(const std::string& ns, const std::string& job_uid,
                                                 const std::vector<json>& objects) {
  const absl::Time now = absl::Now();
  const size_t hash = std::hash<std::string>()(json(objects).dump());
  auto it = applied_.find(job_uid);
  if (it == applied_.end() || it->second.hash != hash ||
      now - it->second.at >= kSiteReapplyInterval) {
    for (const json& o : objects) {
      const std::string kind = o.value("kind", "");
      const kube::ResourceRef* ref = kind == "Deployment"      ? &kube::kDeployment
                                     : kind == "NetworkPolicy" ? &kube::kNetworkPolicy
                                     : kind == "Secret"        ? &kube::kSecret
                                                               : &kube::kConfigMap;
      BRAID_RETURN_IF_ERROR(client_->Apply(*ref, o, kFieldManager, true).status());
    }
    applied_[job_uid] = Applied{hash, now};
  }
  kube::ListOptions list;
  list.label_selector = JobSelector(job_uid);
  BRAID_ASSIGN_OR_RETURN(json deployments, client_->List(kube::kDeployment, ns, list));
  int ready = 0;
  for (const json& d : deployments["items"]) {
    const json status = d.value("status", json::object());  // null until a controller writes it
    if (status.is_object()) ready += status.value("readyReplicas", 0);
  }
  return ready;
}

absl::Status SiteReconciler::WriteStatus(const json& object, const v1::InvitationState& state) {
  json status = {{"phase", state.state()},
                 {"reason", state.reason()},
                 {"message", state.message()},
                 {"workersReady", state.workers_ready()}};
  if (object.value("status", json::object()) == status) return absl::OkStatus();
  json patch = {{"apiVersion", kFederatedInvitation.api_version},
                {"kind", kFederatedInvitation.kind},
                {"metadata",
                 {{"name", object["metadata"]["name"]},
                  {"namespace", object["metadata"]["namespace"]}}},
                {"status", status}};
  return client_->ApplyStatus(kFederatedInvitation, patch, kFieldManager, true).status();
}

absl::StatusOr<v1::InvitationState> SiteReconciler::ReconcileOne(
    const v1::Invitation& inv, const federation::SiteIdentity& identity, const json& tenant_object,
    const std::vector<json>& approvals, const json* existing) {
  const std::string ns = tenant_object.value("/spec/namespace"_json_pointer, std::string());
  spec::ParseOptions parse;
  parse.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(inv.job_yaml(), "", parse);

  // The invitation as a local object, so the site's people see what it asks
  // for (kubectl get fedinv) whatever the decision; written when it changed.
  const json desired = InvitationObject(inv, ns, job.ok() ? &*job : nullptr);
  json object;
  if (existing != nullptr && existing->value("spec", json()) == desired["spec"]) {
    object = *existing;
  } else {
    BRAID_ASSIGN_OR_RETURN(object, client_->Apply(kFederatedInvitation, desired, kFieldManager,
                                                  /*force=*/true));
  }
  auto refuse = [&](const std::string& reason,
                    const std::string& message) -> absl::StatusOr<v1::InvitationState> {
    BRAID_RETURN_IF_ERROR(StopWorkers(object));
    v1::InvitationState state = State(inv, "Refused", reason, message);
    BRAID_RETURN_IF_ERROR(WriteStatus(object, state));
    return state;
  };
  if (!job.ok()) return refuse("InvalidJob", std::string(job.status().message()));
  if (job->namespace_ != inv.job_namespace() || job->name != inv.job_name()) {
    return refuse("InvalidJob", "the job file names another job than the invitation");
  }
  const control::SiteInvitationView view =
      control::ResolveSiteInvitation(*job, options_.site, inv.tenant(), tenant_object);
  if (!view.problems.empty()) {
    const control::TenantProblem& p = view.problems.front();
    return refuse(p.reason, p.path + ": " + p.message);
  }
  const control::TenantConsent consent = control::ResolveSiteConsent(
      *job, control::JobRef{inv.job_namespace(), inv.job_name(), inv.job_uid()}, inv.tenant(),
      tenant_object, approvals);
  if (consent.consent == control::Consent::kRefused) {
    return refuse("RefusedByTenant", absl::StrCat("refused by TenantApproval ", consent.approval,
                                                  consent.comment.empty() ? "" : ": ",
                                                  consent.comment));
  }
  if (consent.consent == control::Consent::kPending) {
    BRAID_RETURN_IF_ERROR(StopWorkers(object));
    v1::InvitationState state =
        State(inv, "AwaitingApproval", "AwaitingApproval",
              absl::StrCat("a TenantApproval in namespace ", ns, " naming tenant ", inv.tenant(),
                           " and job ", inv.job_namespace(), "/", inv.job_name(), " is needed"));
    BRAID_RETURN_IF_ERROR(WriteStatus(object, state));
    return state;
  }

  // The job as this site runs it: only its own tenant, reading the claim
  // its Tenant maps the dataset to.
  spec::JobSpec local = *job;
  local.tenants.clear();
  for (const spec::Tenant& t : job->tenants) {
    if (t.name != inv.tenant()) continue;
    spec::Tenant mine = t;
    mine.site.clear();
    mine.dataset.clear();
    mine.namespace_ = ns;
    mine.data.claim_name = view.claim_name;
    mine.data.sub_path = view.sub_path;
    local.tenants.push_back(mine);
  }
  JobObjectsContext context;
  context.job_uid = inv.job_uid();
  context.job_yaml = inv.job_yaml();
  context.worker_image = options_.worker_image;
  context.image_pull_policy = options_.image_pull_policy;
  context.tenant_namespaces = {{inv.tenant(), ns}};
  const std::string tls_secret = DnsLabel(InvitationName(inv) + "-site-tls");
  context.remote_aggregator =
      JobObjectsContext::RemoteAggregator{inv.aggregator_address(), inv.aggregator_server_name(),
                                          tls_secret};
  context.owner_reference = {{"apiVersion", kFederatedInvitation.api_version},
                             {"kind", kFederatedInvitation.kind},
                             {"name", object["metadata"]["name"]},
                             {"uid", object["metadata"]["uid"]},
                             {"controller", true},
                             {"blockOwnerDeletion", true}};
  // The aggregator's CA (from the invitation) and the site's own
  // certificate: the one Secret the site's workers mount.
  json secret = TlsSecret(local, context, tls_secret, ns,
                          {{"ca.crt", inv.aggregator_ca_pem()},
                           {"tls.crt", identity.cert_pem},
                           {"tls.key", identity.key_pem}});
  secret["metadata"]["ownerReferences"] = json::array({context.owner_reference});
  std::vector<json> objects = DesiredObjects(local, context);
  objects.insert(objects.begin(), std::move(secret));
  BRAID_ASSIGN_OR_RETURN(const int ready, ApplyWorkers(ns, inv.job_uid(), objects));
  v1::InvitationState state = State(inv, "Running", "WorkersCreated",
                                    absl::StrCat(ready, " of ", local.TotalReplicas(),
                                                 " workers ready"),
                                    ready);
  BRAID_RETURN_IF_ERROR(WriteStatus(object, state));
  return state;
}

absl::StatusOr<v1::SiteReport> SiteReconciler::Reconcile(
    const std::vector<v1::Invitation>& invitations, const federation::SiteIdentity& identity) {
  absl::StatusOr<json> tenant = client_->Get(kube::kTenant, "", options_.tenant);
  if (!tenant.ok() && !absl::IsNotFound(tenant.status())) return tenant.status();
  const std::string ns =
      tenant.ok() ? tenant->value("/spec/namespace"_json_pointer, std::string()) : "";
  BRAID_ASSIGN_OR_RETURN(json approval_list, client_->List(kube::kTenantApproval, ns));
  const std::vector<json> approvals =
      approval_list.value("items", json::array()).get<std::vector<json>>();

  // The invitations' objects as they are, by job uid.
  std::map<std::string, json> existing;
  if (!ns.empty()) {
    kube::ListOptions mine;
    mine.label_selector = std::string(kInvitationLabel) + "=true";
    BRAID_ASSIGN_OR_RETURN(json list, client_->List(kFederatedInvitation, ns, mine));
    for (json& object : list["items"]) {
      const std::string uid = object.value("/spec/jobUid"_json_pointer, std::string());
      existing[uid] = std::move(object);
    }
  }

  v1::SiteReport report;
  std::set<std::string> invited;
  absl::Status first_error;
  for (const v1::Invitation& inv : invitations) {
    // A uid that cannot be a label value cannot be tracked (or cleaned up):
    // refused without touching the cluster.
    if (!IsSafeUid(inv.job_uid())) continue;
    if (!invited.insert(inv.job_uid()).second) continue;  // the first of duplicates
    if (invited.size() > kMaxInvitations) {
      *report.add_jobs() = State(inv, "Refused", "TooManyInvitations",
                                 absl::StrCat("this site takes at most ", kMaxInvitations,
                                              " invitations at once"));
      continue;
    }
    if (const std::string field = MalformedField(inv); !field.empty()) {
      *report.add_jobs() =
          State(inv, "Refused", "InvalidInvitation", "the invitation's " + field + " is malformed");
      continue;
    }
    if (ns.empty()) {
      *report.add_jobs() = State(inv, "Refused", "TenantNotFound",
                                 absl::StrCat("this site has no Tenant ", options_.tenant,
                                              " with a spec.namespace"));
      continue;
    }
    // An API error for one invitation leaves the others' decisions intact;
    // it is retried at the next reconcile.
    auto found = existing.find(inv.job_uid());
    absl::StatusOr<v1::InvitationState> state = ReconcileOne(
        inv, identity, *tenant, approvals, found == existing.end() ? nullptr : &found->second);
    if (!state.ok()) {
      if (first_error.ok()) first_error = state.status();
      continue;
    }
    *report.add_jobs() = *std::move(state);
  }

  // Invitations the coordinator no longer sends: their workers go.
  for (const auto& [uid, object] : existing) {
    if (invited.count(uid) > 0) continue;
    if (object.value("/status/phase"_json_pointer, std::string()) != "Withdrawn") {
      BRAID_RETURN_IF_ERROR(StopWorkers(object));
      v1::Invitation gone;
      gone.set_job_uid(uid);
      BRAID_RETURN_IF_ERROR(WriteStatus(
          object, State(gone, "Withdrawn", "Withdrawn",
                        "the coordinator no longer invites this site to the job")));
    }
  }
  if (!first_error.ok()) {
    LogWarning(absl::StrCat("braid-operator: invitations: ", first_error.message()));
  }
  return report;
}

// --- identity in a Secret ---------------------------------------------------

namespace {

class SecretIdentityStore final : public federation::IdentityStore {
 public:
  SecretIdentityStore(kube::Client* client, std::string ns, std::string name)
      : client_(client), ns_(std::move(ns)), name_(std::move(name)) {}

  absl::StatusOr<std::optional<federation::SiteIdentity>> Load() override {
    absl::StatusOr<json> secret = client_->Get(kube::kSecret, ns_, name_);
    if (absl::IsNotFound(secret.status())) return std::optional<federation::SiteIdentity>();
    if (!secret.ok()) return secret.status();
    federation::SiteIdentity id;
    BRAID_ASSIGN_OR_RETURN(id.key_pem, SecretFile(*secret, "site.key"));
    BRAID_ASSIGN_OR_RETURN(id.cert_pem, SecretFile(*secret, "site.crt"));
    BRAID_ASSIGN_OR_RETURN(id.ca_pem, SecretFile(*secret, "ca.crt"));
    return std::optional<federation::SiteIdentity>(std::move(id));
  }

  absl::Status Save(const federation::SiteIdentity& id) override {
    json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata",
                    {{"name", name_},
                     {"namespace", ns_},
                     {"labels", {{"app.kubernetes.io/part-of", "braid"}}}}},
                   {"type", "Opaque"},
                   {"data",
                    {{"site.key", absl::Base64Escape(id.key_pem)},
                     {"site.crt", absl::Base64Escape(id.cert_pem)},
                     {"ca.crt", absl::Base64Escape(id.ca_pem)}}}};
    return client_->Apply(kube::kSecret, secret, kFieldManager, true).status();
  }

 private:
  kube::Client* const client_;
  const std::string ns_;
  const std::string name_;
};

}  // namespace

std::unique_ptr<federation::IdentityStore> NewSecretIdentityStore(kube::Client* client,
                                                                  std::string ns,
                                                                  std::string name) {
  return std::make_unique<SecretIdentityStore>(client, std::move(ns), std::move(name));
}

}  // namespace braid::op
