#include "braid/operator/reconciler.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "braid/control/desired_set.h"
#include "braid/control/job_status.h"
#include "braid/control/tenant_approval.h"
#include "braid/control/tenant_resolution.h"
#include "braid/core/log.h"
#include "braid/core/spec.h"
#include "braid/core/status_macros.h"
#include "braid/operator/job_objects.h"
#include "braid/operator/job_tls.h"

namespace braid::op {
namespace {

using control::AggregatorReport;
using control::ObservedJob;
using control::TenantConsent;
using control::WorkerCounts;
using nlohmann::json;

// Every kind the operator creates for a job, for apply and clean-up.
const kube::ResourceRef* RefForKind(const std::string& kind) {
  if (kind == "ConfigMap") return &kube::kConfigMap;
  if (kind == "Service") return &kube::kService;
  if (kind == "NetworkPolicy") return &kube::kNetworkPolicy;
  if (kind == "Deployment") return &kube::kDeployment;
  if (kind == "TLSRoute") return &kube::kTlsRoute;
  return nullptr;
}
const kube::ResourceRef* const kOwnedKinds[] = {&kube::kDeployment, &kube::kService,
                                                &kube::kNetworkPolicy, &kube::kConfigMap,
                                                &kube::kSecret};

bool HasFinalizer(const json& job) {
  for (const json& f : job["metadata"].value("finalizers", json::array())) {
    if (f == kFinalizer) return true;
  }
  return false;
}

int ReadyReplicas(const json& deployment) {
  if (!deployment.is_object()) return 0;
  return deployment.value("/status/readyReplicas"_json_pointer, 0);
}

std::string Key(const std::string& ns, const std::string& name) { return ns + "/" + name; }

// The --expected-clients the aggregator Deployment `deployment` runs with:
// its flag, or the job's total replicas without one. nullopt when it does
// not run (absent, or scaled to 0 while suspended): then a new count
// restarts nothing.
std::optional<int> RunningExpectedClients(const json& deployment, const spec::JobSpec& job) {
  if (!deployment.is_object()) return std::nullopt;
  if (deployment.value("/spec/replicas"_json_pointer, 1) == 0) return std::nullopt;
  const json containers =
      deployment.value("/spec/template/spec/containers"_json_pointer, json::array());
  for (const json& c : containers) {
    if (c.value("name", "") != "aggregator") continue;
    for (const json& arg : c.value("args", json::array())) {
      const std::string a = arg.is_string() ? arg.get<std::string>() : "";
      constexpr char kFlag[] = "--expected-clients=";
      if (a.rfind(kFlag, 0) == 0) return std::atoi(a.c_str() + sizeof(kFlag) - 1);
    }
  }
  return job.TotalReplicas();
}

// What the job's status shows for a site tenant.
std::string SiteState(const SiteJobView& view) {
  if (!view.member) return "Revoked";
  if (!view.connected) return "Disconnected";
  return view.state.has_value() && !view.state->state().empty() ? view.state->state() : "Invited";
}

// The phase `tenant` had in the job's status `status`; "" when not shown.
std::string PreviousTenantPhase(const json& status, const std::string& tenant) {
  for (const json& t : status.value("tenants", json::array())) {
    if (t.value("name", "") == tenant) return t.value("phase", "");
  }
  return "";
}

}  // namespace

std::string JobFileText(const json& job) {
  json file = {{"apiVersion", job.value("apiVersion", "")},
               {"kind", job.value("kind", "")},
               {"metadata",
                {{"name", job["metadata"].value("name", "")},
                 {"namespace", job["metadata"].value("namespace", "")}}}};
  if (job.contains("spec")) file["spec"] = job["spec"];
  return file.dump(2);
}


Reconciler::Reconciler(kube::Client* client, ClusterView view,
                       AggregatorStatusSource* status_source, kube::EventRecorder* events,
                       ReconcilerOptions options)
    : client_(client),
      view_(std::move(view)),
      status_source_(status_source),
      events_(events),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()) {}

std::map<std::string, std::string> Reconciler::Phases() const {
  absl::MutexLock lock(&mu_);
  return phases_;
}

std::string Reconciler::StatusAddress(const std::string& ns, const std::string& name,
                                      const std::string& in_cluster) const {
  if (options_.aggregator_address_template.empty()) return in_cluster;
  return absl::StrReplaceAll(options_.aggregator_address_template,
                             {{"{name}", name}, {"{namespace}", ns}});
}

absl::Status Reconciler::ApplyAll(const std::string& uid, const std::vector<json>& objects) {
  std::string all;
  for (const json& o : objects) all += o.dump();
  const size_t hash = std::hash<std::string>{}(all);
  bool all_present = true;
  for (const json& o : objects) {
    if (o["kind"] == "Deployment" &&
        view_.deployment(o["metadata"]["namespace"], o["metadata"]["name"]).is_null()) {
      all_present = false;
    }
  }
  const absl::Time now = clock_->Now();
  {
    absl::MutexLock lock(&mu_);
    auto it = applied_.find(uid);
    if (all_present && it != applied_.end() && it->second.hash == hash &&
        now - it->second.at < options_.reapply_interval) {
      return absl::OkStatus();
    }
  }
  for (const json& o : objects) {
    const kube::ResourceRef* ref = RefForKind(o["kind"]);
    const std::string ns = o["metadata"]["namespace"];
    const std::string name = o["metadata"]["name"];
    // Names join job, namespace and tenant with '-', which the parts may
    // contain too; never take over an object another job made.
    absl::StatusOr<json> existing = client_->Get(*ref, ns, name);
    if (existing.ok()) {
      const std::string owner =
          (*existing)["metadata"].value("labels", json::object()).value(kJobUidLabel, "");
      if (owner != uid) {
        const json labels = (*existing)["metadata"].value("labels", json::object());
        return absl::FailedPreconditionError(absl::StrCat(
            "NameConflict: ", o["kind"].get<std::string>(), " ", ns, "/", name,
            " already exists and belongs to ",
            owner.empty() ? std::string("no Braid job")
                          : "job " + labels.value("braid.dev/job-namespace", std::string()) +
                                "/" + labels.value("braid.dev/job", std::string()),
            "; rename the job or delete that object"));
      }
    } else if (!absl::IsNotFound(existing.status())) {
      return existing.status();
    }
    absl::StatusOr<json> applied = client_->Apply(*ref, o, kFieldManager, /*force=*/true);
    if (!applied.ok()) {
      return absl::Status(applied.status().code(),
                          absl::StrCat("apply ", o["kind"].get<std::string>(), " ",
                                       o["metadata"]["namespace"].get<std::string>(), "/",
                                       o["metadata"]["name"].get<std::string>(), ": ",
                                       applied.status().message()));
    }
  }
  absl::MutexLock lock(&mu_);
  applied_[uid] = Applied{hash, now};
  return absl::OkStatus();
}

absl::StatusOr<json> Reconciler::GetOrCreateSecret(
    const spec::JobSpec& job, const JobObjectsContext& context, const std::string& ns,
    const std::string& name,
    const std::function<absl::StatusOr<std::vector<std::pair<std::string, std::string>>>()>&
        make) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<json> got = client_->Get(kube::kSecret, ns, name);
    if (got.ok()) {
      const std::string owner =
          (*got)["metadata"].value("labels", json::object()).value(kJobUidLabel, "");
      if (owner != context.job_uid) {
        return absl::FailedPreconditionError(absl::StrCat(
            "NameConflict: Secret ", ns, "/", name, " already exists and is not this job's; "
            "rename the job or delete that Secret"));
      }
      return got;
    }
    if (!absl::IsNotFound(got.status())) return got.status();
    BRAID_ASSIGN_OR_RETURN(auto files, make());
    absl::StatusOr<json> created = client_->Create(kube::kSecret, TlsSecret(job, context, name, ns, files));
    if (created.ok()) return created;
    // Another reconcile (an operator that lost its lease) created it first.
    if (!absl::IsAlreadyExists(created.status())) {
      return absl::Status(created.status().code(),
                          absl::StrCat("create Secret ", ns, "/", name, ": ",
                                       created.status().message()));
    }
  }
  return absl::AbortedError(absl::StrCat("Secret ", ns, "/", name, " keeps changing; retrying"));
}

absl::StatusOr<pki::KeyPair> Reconciler::EnsureCa(const spec::JobSpec& job,
                                                  const JobObjectsContext& context) {
  BRAID_ASSIGN_OR_RETURN(
      json ca_secret,
      GetOrCreateSecret(job, context, job.namespace_, CaSecretName(job),
                        [&]() -> absl::StatusOr<std::vector<std::pair<std::string, std::string>>> {
                          BRAID_ASSIGN_OR_RETURN(pki::KeyPair ca,
                                                 pki::MakeCa(job.name, absl::Hours(24 * 3650)));
                          return std::vector<std::pair<std::string, std::string>>{
                              {"ca.crt", ca.cert_pem}, {"ca.key", ca.key_pem}};
                        }));
  pki::KeyPair ca;
  BRAID_ASSIGN_OR_RETURN(ca.cert_pem, SecretFile(ca_secret, "ca.crt"));
  BRAID_ASSIGN_OR_RETURN(ca.key_pem, SecretFile(ca_secret, "ca.key"));
  return ca;
}

void Reconciler::InviteSites(const spec::JobSpec& job, const std::string& uid,
                             const std::string& job_file, const std::string& aggregator_ca_pem) {
  std::map<std::string, v1::Invitation> by_site;
  const std::string address =
      absl::StrReplaceAll(options_.site_aggregator_address_template,
                          {{"{name}", job.name}, {"{namespace}", job.namespace_}});
  for (const spec::Tenant& t : job.tenants) {
    if (t.site.empty()) continue;
    v1::Invitation& inv = by_site[t.site];
    inv.set_job_uid(uid);
    inv.set_job_namespace(job.namespace_);
    inv.set_job_name(job.name);
    inv.set_tenant(t.name);
    inv.set_dataset(t.dataset);
    inv.set_job_yaml(job_file);
    inv.set_aggregator_address(address);
    inv.set_aggregator_server_name(AggregatorServerName(job));
    inv.set_aggregator_ca_pem(aggregator_ca_pem);
    inv.set_coordinator(options_.coordinator_name);
    inv.set_worker_image(options_.worker_image);
  }
  options_.federation->Invite(uid, by_site);
}

absl::StatusOr<TlsTarget> Reconciler::EnsureTls(const spec::JobSpec& job,
                                                const JobObjectsContext& context) {
  const absl::Time now = clock_->Now();
  {
    absl::MutexLock lock(&mu_);
    auto it = tls_.find(context.job_uid);
    if (it != tls_.end() && now - it->second.checked < options_.reapply_interval) {
      return it->second.target;
    }
  }
  BRAID_ASSIGN_OR_RETURN(const pki::KeyPair ca, EnsureCa(job, context));
  auto issue = [&](pki::CertRequest request) {
    return [&ca, request]() -> absl::StatusOr<std::vector<std::pair<std::string, std::string>>> {
      BRAID_ASSIGN_OR_RETURN(pki::KeyPair id, pki::Issue(ca, request));
      return std::vector<std::pair<std::string, std::string>>{
          {"ca.crt", ca.cert_pem}, {"tls.crt", id.cert_pem}, {"tls.key", id.key_pem}};
    };
  };
  const absl::Duration validity = absl::Hours(24 * 3650);  // the job's lifetime
  pki::CertRequest server;
  server.common_name = pki::kAggregatorCommonName;
  server.dns_names = AggregatorDnsNames(job);
  server.server = true;
  server.validity = validity;
  BRAID_RETURN_IF_ERROR(GetOrCreateSecret(job, context, job.namespace_,
                                          AggregatorTlsSecretName(job), issue(server))
                            .status());
  for (const spec::Tenant& t : job.tenants) {
    if (!t.site.empty()) continue;  // its workers use their site's own certificate
    pki::CertRequest client;
    client.common_name = pki::TenantCommonName(t.name);
    client.client = true;
    client.validity = validity;
    const std::string ns = TenantNamespace(context, t.name);
    BRAID_RETURN_IF_ERROR(GetOrCreateSecret(job, context, ns, WorkerTlsSecretName(job, ns, t.name),
                                            issue(client))
                              .status());
  }
  TlsTarget target;
  {
    absl::MutexLock lock(&mu_);
    auto it = tls_.find(context.job_uid);
    if (it != tls_.end() && it->second.target.material.ca_pem == ca.cert_pem) {
      target = it->second.target;  // keep the operator's certificate
    }
  }
  if (target.material.cert_pem.empty()) {
    pki::CertRequest op;
    op.common_name = pki::kOperatorCommonName;
    op.client = true;
    op.validity = absl::Hours(24 * 30);
    BRAID_ASSIGN_OR_RETURN(pki::KeyPair id, pki::Issue(ca, op));
    target.material = {ca.cert_pem, id.cert_pem, id.key_pem};
    target.server_name = AggregatorServerName(job);
  }
  absl::MutexLock lock(&mu_);
  tls_[context.job_uid] = Tls{target, now};
  return target;
}

absl::StatusOr<absl::Duration> Reconciler::Finalize(const json& job) {
  const std::string ns = job["metadata"]["namespace"];
  const std::string name = job["metadata"]["name"];
  const std::string uid = job["metadata"]["uid"];
  if (options_.federation != nullptr) options_.federation->Invite(uid, {});
  if (!HasFinalizer(job)) return absl::InfiniteDuration();
  // Everything labelled with the job's uid, in every namespace: the
  // tenants' objects have no owner reference to collect them.
  std::vector<const kube::ResourceRef*> kinds(std::begin(kOwnedKinds), std::end(kOwnedKinds));
  // Listed only when made: without the Gateway API's CRDs the kind is unknown.
  if (options_.site_aggregator_gateway.has_value()) kinds.push_back(&kube::kTlsRoute);
  for (const kube::ResourceRef* ref : kinds) {
    kube::ListOptions list_options;
    list_options.label_selector = JobSelector(uid);
    BRAID_ASSIGN_OR_RETURN(json list, client_->List(*ref, "", list_options));
    for (const json& item : list.value("items", json::array())) {
      absl::Status deleted = client_->Delete(*ref, item["metadata"].value("namespace", ""),
                                             item["metadata"]["name"]);
      if (!deleted.ok() && !absl::IsNotFound(deleted)) return deleted;
    }
  }
  json finalizers = json::array();
  for (const json& f : job["metadata"].value("finalizers", json::array())) {
    if (f != kFinalizer) finalizers.push_back(f);
  }
  json patch = {{"metadata",
                 {{"finalizers", finalizers},
                  {"resourceVersion", job["metadata"]["resourceVersion"]}}}};
  absl::StatusOr<json> patched = client_->MergePatch(kube::kFederatedJob, ns, name, patch);
  if (!patched.ok() && !absl::IsNotFound(patched.status())) return patched.status();
  {
    absl::MutexLock lock(&mu_);
    applied_.erase(uid);
    tls_.erase(uid);
    phases_.erase(Key(ns, name));
  }
  return absl::InfiniteDuration();
}

absl::StatusOr<absl::Duration> Reconciler::Reconcile(const std::string& ns,
                                                     const std::string& name) {
  absl::StatusOr<json> got = client_->Get(kube::kFederatedJob, ns, name);
  if (absl::IsNotFound(got.status())) {
    absl::MutexLock lock(&mu_);
    phases_.erase(Key(ns, name));
    return absl::InfiniteDuration();
  }
  BRAID_RETURN_IF_ERROR(got.status());
  json job = std::move(*got);
  if (job["metadata"].contains("deletionTimestamp")) return Finalize(job);

  if (!HasFinalizer(job)) {
    json finalizers = job["metadata"].value("finalizers", json::array());
    finalizers.push_back(kFinalizer);
    json patch = {{"metadata",
                   {{"finalizers", finalizers},
                    {"resourceVersion", job["metadata"]["resourceVersion"]}}}};
    BRAID_ASSIGN_OR_RETURN(job, client_->MergePatch(kube::kFederatedJob, ns, name, patch));
  }
  const std::string uid = job["metadata"]["uid"];
  const json previous = job.value("status", json::object());

  ObservedJob observed;
  observed.generation = job["metadata"].value("generation", int64_t{0});
  const std::string job_file = JobFileText(job);
  spec::ParseOptions parse_options;
  parse_options.check_files = false;  // data lives in the tenants' claims
  // Parsed once; only an invalid spec is parsed again, for its error list.
  absl::StatusOr<spec::JobSpec> parsed = spec::ParseJobYaml(job_file, "", parse_options);
  if (!parsed.ok()) {
    observed.spec_errors = spec::ValidateJobYaml(job_file, "", parse_options);
  } else {
    const spec::JobSpec& spec = *parsed;
    observed.suspended = spec.suspend;
    observed.rounds = spec.strategy.rounds;
    const std::map<std::string, json> tenant_objects = view_.tenants();
    // A site tenant's workers, policy and consent live at its site, which
    // answers through the federation; here only its Site object counts.
    std::map<std::string, json> site_objects;
    if (options_.federation != nullptr) site_objects = options_.federation->Sites();
    control::TenantResolution tenants =
        control::ResolveTenants(spec, tenant_objects,
                                options_.federation != nullptr ? &site_objects : nullptr,
                                control::WasAdmitted(previous));
    // The sites the job's aggregator admits now (aggregator/site_admission.h).
    json admitted_sites = json::object();
    bool has_site_tenants = false;
    std::map<std::string, SiteJobView> site_views;
    std::map<std::string, control::SiteReport> site_reports;
    for (size_t i = 0; i < spec.tenants.size(); ++i) {
      const spec::Tenant& t = spec.tenants[i];
      if (t.site.empty()) continue;
      has_site_tenants = true;
      if (options_.federation == nullptr) continue;  // SitesNeedCoordinator
      if (!options_.tls) {
        tenants.problems.push_back(
            {absl::StrCat("spec.tenants[", i, "].site"), "NeedsTls",
             "a tenant at a site needs mTLS; this braid-operator runs --tls=false"});
        continue;
      }
      const SiteJobView view = options_.federation->SiteJob(t.site, uid);
      site_views[t.name] = view;
      if (view.state.has_value()) {
        site_reports[t.name] = {view.state->state(), view.state->reason(), view.state->message()};
      }
      const std::string at = absl::StrCat("spec.tenants[", i, "].site");
      for (const control::TenantProblem& p : tenants.departed) {
        // Its Site left the federation: the coordinator refuses for it, and
        // says so once in the job's events.
        if (p.path != at) continue;
        site_reports[t.name] = {"Refused", p.reason, p.message};
        if (events_ != nullptr && PreviousTenantPhase(previous, t.name) != "Revoked") {
          (void)events_->Record(job, kube::EventType::kWarning, p.reason, p.message);
        }
      }
      if (auto site = site_objects.find(t.site); view.member && site != site_objects.end()) {
        admitted_sites[t.site] = {
            {"uid", site->second.value("/metadata/uid"_json_pointer, std::string())}};
      }
    }
    observed.tenant_problems = tenants.problems;
    if (tenants.problems.empty()) {
      observed.consent = control::ResolveConsent(
          spec, control::JobRef{ns, name, uid}, tenant_objects,
          view_.approvals ? view_.approvals() : std::vector<json>{}, site_reports);
      observed.admission = control::DecideAdmission(spec, observed.consent);
      observed.admitted = control::WasAdmitted(previous) || observed.admission.admit;
    }
    if (tenants.problems.empty() && has_site_tenants) {
      // The sites see the job from the start (they approve before it is
      // admitted) until it ends or is suspended.
      if (spec.suspend || control::EndedByAggregator(previous)) {
        options_.federation->Invite(uid, {});
      } else {
        JobObjectsContext ca_context;
        ca_context.job_uid = uid;
        BRAID_ASSIGN_OR_RETURN(pki::KeyPair ca, EnsureCa(spec, ca_context));
        InviteSites(spec, uid, job_file, ca.cert_pem);
      }
    }
    if (tenants.problems.empty() && !observed.admitted) {
      // Nothing is created, so nothing touches any tenant's data.
      for (const spec::Tenant& t : spec.tenants) {
        WorkerCounts& counts = observed.workers[t.name];
        counts.namespace_ = tenants.namespaces[t.name];
        if (!t.site.empty()) {
          counts.site = t.site;
          counts.site_state = SiteState(site_views[t.name]);
        }
      }
    } else if (tenants.problems.empty()) {
      JobObjectsContext context;
      context.job_uid = uid;
      context.job_yaml = job_file;
      context.admission_json = control::AdmissionJson(job, observed.consent);
      context.aggregator_image = options_.aggregator_image;
      context.worker_image = options_.worker_image;
      context.image_pull_policy = options_.image_pull_policy;
      context.operator_namespace = options_.operator_namespace;
      context.tenant_namespaces = tenants.namespaces;
      const bool ended = control::EndedByAggregator(previous);
      const std::string aggregator = ObjectName(spec, ns, "aggregator");
      const json aggregator_deployment = view_.deployment(ns, aggregator);
      context.run.suspended = spec.suspend;
      context.run.ended = ended;
      context.run.consent = observed.consent;
      context.run.running_expected_clients = RunningExpectedClients(aggregator_deployment, spec);
      context.tls = options_.tls;
      std::optional<TlsTarget> tls;
      if (context.tls) {
        BRAID_ASSIGN_OR_RETURN(tls, EnsureTls(spec, context));
      }
      if (has_site_tenants) {
        context.federation_ca_secret = ObjectName(spec, ns, "federation-ca");
        context.site_admission_json = json{{"sites", admitted_sites}}.dump();
        context.aggregator_gateway = options_.site_aggregator_gateway;
        const std::string ca_pem = options_.federation->CaPem();
        BRAID_RETURN_IF_ERROR(
            GetOrCreateSecret(
                spec, context, ns, context.federation_ca_secret,
                [&]() -> absl::StatusOr<std::vector<std::pair<std::string, std::string>>> {
                  return std::vector<std::pair<std::string, std::string>>{{"ca.crt", ca_pem}};
                })
                .status());
      }
      BRAID_RETURN_IF_ERROR(ApplyAll(uid, DesiredObjects(spec, context)));

      observed.aggregator_ready = ReadyReplicas(aggregator_deployment);
      observed.aggregator_endpoint = AggregatorAddress(spec);
      for (const control::Workload& w : control::ComputeDesiredSet(spec, context.run).workloads) {
        if (w.role != control::Workload::Role::kWorker) continue;
        WorkerCounts& counts = observed.workers[w.tenant];
        counts.desired += w.run ? 1 : 0;
        if (auto site = site_views.find(w.tenant); site != site_views.end()) {
          // Its workers run at its site, which counts them.
          counts.site = w.site;
          counts.site_state = SiteState(site->second);
          const int at_site =
              site->second.state.has_value() ? site->second.state->workers_ready() : 0;
          counts.ready = std::clamp(at_site, 0, counts.desired);
          continue;
        }
        counts.namespace_ = TenantNamespace(context, w.tenant);
        counts.ready += ReadyReplicas(view_.deployment(
            counts.namespace_,
            ObjectName(spec, counts.namespace_, absl::StrCat(w.tenant, "-", w.replica))));
      }
      if (!spec.suspend && !ended && observed.aggregator_ready > 0) {
        const std::string address = StatusAddress(ns, name, observed.aggregator_endpoint);
        absl::StatusOr<control::AggregatorReport> report =
            status_source_->Poll(address, options_.status_timeout, tls);
        // An address that leads to another job's aggregator (a stale
        // Service, a wrong template) must not lend this job its progress.
        if (!report.ok()) observed.poll_error = std::string(report.status().message());
        if (report.ok() && report->job == name) {
          observed.report = *std::move(report);
        } else if (report.ok()) {
          LogWarning(absl::StrCat("braid-operator: ", ns, "/", name, ": the aggregator at ",
                                  address, " runs job ", report->job, "; ignoring its status"));
        }
      }
    }
  }

  json status = control::ComputeStatus(observed, previous, control::Rfc3339(clock_->Now()));
  const std::string phase = status["phase"];
  if (status != previous) {
    json patch = {{"apiVersion", job["apiVersion"]},
                  {"kind", job["kind"]},
                  {"metadata", {{"name", name}, {"namespace", ns}}},
                  {"status", status}};
    BRAID_RETURN_IF_ERROR(
        client_->ApplyStatus(kube::kFederatedJob, patch, kFieldManager, /*force=*/true).status());
    const bool changed = previous.value("phase", "") != phase ||
                         previous.value("reason", "") != status.value("reason", "");
    if (changed && events_ != nullptr) {
      const bool bad = phase == "Failed" || (phase == "Pending" && status["reason"] != "WaitingForAggregator" &&
                                             status["reason"] != "WaitingForWorkers");
      // Best effort: a lost event must not fail the reconcile.
      (void)events_->Record(job, bad ? kube::EventType::kWarning : kube::EventType::kNormal,
                            status["reason"], status["message"]);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    phases_[Key(ns, name)] = phase;
  }
  if (control::IsFinalPhase(phase) || phase == "Suspended") return absl::InfiniteDuration();
  return options_.status_interval;
}

}  // namespace braid::op
