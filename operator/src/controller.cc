#include "braid/operator/controller.h"


#include "absl/strings/str_cat.h"
#include "braid/core/log.h"

namespace braid::op {
namespace {

using nlohmann::json;

kube::InformerOptions Follow(const kube::ResourceRef& ref, const std::string& selector = "") {
  kube::InformerOptions options;
  options.ref = ref;
  options.label_selector = selector;
  return options;
}

kube::InformerHandlers OnChange(std::function<void(const json&)> handler) {
  kube::InformerHandlers handlers;
  handlers.on_upsert = handler;
  handlers.on_delete = handler;
  return handlers;
}

std::string JobKeyOf(const json& obj) {
  return obj["metadata"].value("namespace", "") + "/" + obj["metadata"].value("name", "");
}

}  // namespace

Controller::Controller(kube::Client* client, AggregatorStatusSource* status_source,
                       OperatorMetrics* metrics, ControllerOptions options)
    : client_(client),
      metrics_(metrics),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock()),
      events_(client, "braid-operator"),
      queue_(clock_) {
  auto enqueue_job = [this](const json& obj) { queue_.Add(JobKeyOf(obj)); };
  jobs_ = std::make_unique<kube::Informer>(client_, Follow(kube::kFederatedJob),
                                           OnChange(enqueue_job));
  auto tenant_changed = [this](const json& obj) {
    EnqueueJobsOfTenant(obj["metadata"].value("name", ""));
  };
  tenants_ = std::make_unique<kube::Informer>(client_, Follow(kube::kTenant),
                                              OnChange(tenant_changed));
  // A decision names its job: requeue it.
  auto approval_changed = [this](const json& obj) {
    const std::string ns = obj.value("/spec/job/namespace"_json_pointer, std::string());
    const std::string name = obj.value("/spec/job/name"_json_pointer, std::string());
    if (!ns.empty() && !name.empty()) queue_.Add(ns + "/" + name);
  };
  approvals_ = std::make_unique<kube::Informer>(client_, Follow(kube::kTenantApproval),
                                                OnChange(approval_changed));
  // A Deployment's readiness changes the job's status: requeue its job.
  auto deployment_changed = [this](const json& obj) {
    const json labels = obj["metadata"].value("labels", json::object());
    if (labels.contains("braid.dev/job") && labels.contains("braid.dev/job-namespace")) {
      queue_.Add(labels["braid.dev/job-namespace"].get<std::string>() + "/" +
                 labels["braid.dev/job"].get<std::string>());
    }
  };
  deployments_ = std::make_unique<kube::Informer>(
      client_, Follow(kube::kDeployment, "app.kubernetes.io/managed-by=braid-operator"),
      OnChange(deployment_changed));

  ClusterView view;
  view.tenants = [this] {
    std::map<std::string, json> out;
    for (json& t : tenants_->Snapshot()) {
      // Named first: json's operator= takes its argument by value, so
      // moving `t` in the same expression would empty it before the name
      // is read.
      std::string name = t.value("/metadata/name"_json_pointer, std::string());
      out[std::move(name)] = std::move(t);
    }
    return out;
  };
  view.approvals = [this] { return approvals_->Snapshot(); };
  view.deployment = [this](const std::string& ns, const std::string& name) {
    std::optional<json> d = deployments_->Get(ns, name);
    return d.has_value() ? *d : json();
  };
  ReconcilerOptions reconciler_options = options_.reconciler;
  if (reconciler_options.clock == nullptr) reconciler_options.clock = clock_;
  reconciler_ = std::make_unique<Reconciler>(client_, std::move(view), status_source, &events_,
                                             std::move(reconciler_options));
}

Controller::~Controller() { Stop(); }

void Controller::EnqueueJobsOfTenant(const std::string& tenant) {
  for (const json& job : jobs_->Snapshot()) {
    for (const json& t : job.value("/spec/tenants"_json_pointer, json::array())) {
      if (t.is_object() && t.value("name", "") == tenant) queue_.Add(JobKeyOf(job));
    }
  }
}

void Controller::Start() {
  if (started_) return;
  started_ = true;
  // Tenants and Deployments first, so the first reconciles see them.
  tenants_->Start();
  approvals_->Start();
  deployments_->Start();
  while (!tenants_->HasSynced() || !approvals_->HasSynced() || !deployments_->HasSynced()) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  jobs_->Start();
  for (int i = 0; i < std::max(1, options_.workers); ++i) threads_.emplace_back([this] { Work(); });
}

void Controller::Stop() {
  if (!started_) return;
  started_ = false;
  queue_.ShutDown();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  jobs_->Stop();
  deployments_->Stop();
  approvals_->Stop();
  tenants_->Stop();
}

void Controller::UpdateMetrics() {
  std::map<std::string, int> by_phase;
  for (const auto& [key, phase] : reconciler_->Phases()) ++by_phase[phase];
  metrics_->SetJobsByPhase(by_phase);
  metrics_->SetWatchRestarts("federatedjobs", jobs_->watch_restarts());
  metrics_->SetWatchRestarts("tenants", tenants_->watch_restarts());
  metrics_->SetWatchRestarts("deployments", deployments_->watch_restarts());
  metrics_->SetWatchRestarts("tenantapprovals", approvals_->watch_restarts());
}

void Controller::Work() {
  // Consecutive failures per key, as this worker thread saw them (a key
  // retried by another worker starts its backoff afresh there).
  std::map<std::string, int> failures;
  while (std::optional<std::string> key = queue_.Get()) {
    const size_t slash = key->find('/');
    const absl::Time start = clock_->Now();
    absl::StatusOr<absl::Duration> next =
        reconciler_->Reconcile(key->substr(0, slash), key->substr(slash + 1));
    metrics_->Reconciled(absl::ToDoubleSeconds(clock_->Now() - start), next.ok());
    if (next.ok()) {
      failures.erase(*key);
      queue_.AddAfter(*key, std::min(*next, options_.resync));
    } else {
      // Conflicts are routine (someone wrote first): retry at once, quietly.
      const int n = ++failures[*key];
      if (!absl::IsAborted(next.status())) {
        LogWarning(absl::StrCat("braid-operator: reconcile ", *key, ": ", next.status().message()));
      }
      queue_.AddAfter(*key, std::min(absl::Milliseconds(100) * (1 << std::min(n, 9)),
                                     absl::Seconds(30)));
    }
    queue_.Done(*key);
    UpdateMetrics();
  }
}

}  // namespace braid::op
