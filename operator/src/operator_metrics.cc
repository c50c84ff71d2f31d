#include "braid/operator/operator_metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace braid::op {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

namespace {
constexpr const char* kPhases[] = {"Pending", "Running", "Succeeded", "Failed", "Suspended"};
}

OperatorMetrics::OperatorMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      health_(std::make_shared<prometheus::Registry>()) {
  auto& reconciles = BuildCounter()
                         .Name("braid_operator_reconciles_total")
                         .Help("FederatedJob reconciles, by result (ok | error)")
                         .Register(*registry_);
  reconciles_ok_ = &reconciles.Add({{"result", "ok"}});
  reconciles_error_ = &reconciles.Add({{"result", "error"}});
  reconcile_seconds_ = &BuildHistogram()
                            .Name("braid_operator_reconcile_duration_seconds")
                            .Help("Seconds one FederatedJob reconcile took")
                            .Register(*registry_)
                            .Add({}, prometheus::Histogram::BucketBoundaries{
                                         0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  jobs_ = &BuildGauge()
               .Name("braid_operator_jobs")
               .Help("FederatedJobs by status.phase")
               .Register(*registry_);
  for (const char* phase : kPhases) jobs_->Add({{"phase", phase}});
  watch_restarts_ = &BuildCounter()
                         .Name("braid_operator_watch_restarts_total")
                         .Help("Watches re-established after an error, a 410 Gone or a timeout")
                         .Register(*registry_);
  leader_ = &BuildGauge()
                 .Name("braid_operator_leader")
                 .Help("1 while this replica holds the leader lease")
                 .Register(*registry_)
                 .Add({});
}

absl::StatusOr<int> OperatorMetrics::Serve(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(health_, "/healthz");
  exposer_->RegisterCollectable(health_, "/readyz");
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void OperatorMetrics::Reconciled(double seconds, bool ok) {
  (ok ? reconciles_ok_ : reconciles_error_)->Increment();
  reconcile_seconds_->Observe(seconds);
}

void OperatorMetrics::SetJobsByPhase(const std::map<std::string, int>& counts) {
  for (const char* phase : kPhases) {
    auto it = counts.find(phase);
    jobs_->Add({{"phase", phase}}).Set(it == counts.end() ? 0 : it->second);
  }
}

void OperatorMetrics::SetWatchRestarts(const std::string& resource, double total) {
  prometheus::Counter& counter = watch_restarts_->Add({{"resource", resource}});
  if (total > counter.Value()) counter.Increment(total - counter.Value());
}

void OperatorMetrics::SetLeader(bool leader) { leader_->Set(leader ? 1 : 0); }

}  // namespace braid::op
