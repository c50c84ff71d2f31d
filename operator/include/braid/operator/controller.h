// The FederatedJob controller: informers on FederatedJobs, Tenants and the
// operator's Deployments feed a work queue of job keys; `workers` threads
// run the Reconciler on them. One controller per process, started when this
// replica leads.
#ifndef BRAID_OPERATOR_CONTROLLER_H_
#define BRAID_OPERATOR_CONTROLLER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "braid/core/clock.h"
#include "braid/kube/client.h"
#include "braid/kube/events.h"
#include "braid/kube/informer.h"
#include "braid/operator/aggregator_status.h"
#include "braid/operator/operator_metrics.h"
#include "braid/operator/reconciler.h"
#include "braid/operator/work_queue.h"

namespace braid::op {

struct ControllerOptions {
  ReconcilerOptions reconciler;
  int workers = 2;  // jobs reconciled at once
  // Every job is looked at again at least this often, even without events
  // (re-applies what might have been changed by hand).
  absl::Duration resync = absl::Minutes(10);
  // The work queue's and (unless reconciler.clock is set) the reconciler's
  // time. Not owned; null: braid::RealClock().
  Clock* clock = nullptr;
};

class Controller {
 public:
  // `client`, `status_source` and `metrics` must outlive the controller.
  Controller(kube::Client* client, AggregatorStatusSource* status_source,
             OperatorMetrics* metrics, ControllerOptions options);
  ~Controller();  // Stop()s
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Starts the informers and workers; returns at once.
  void Start();
  // Stops workers and informers; in-flight reconciles finish first.
  void Stop();

 private:
  void Work();
  void EnqueueJobsOfTenant(const std::string& tenant);
  void UpdateMetrics();

  kube::Client* const client_;
  OperatorMetrics* const metrics_;
  const ControllerOptions options_;
  Clock* const clock_;
  kube::EventRecorder events_;
  WorkQueue queue_;
  std::unique_ptr<kube::Informer> jobs_;
  std::unique_ptr<kube::Informer> tenants_;
  std::unique_ptr<kube::Informer> approvals_;  // TenantApprovals, all namespaces
  std::unique_ptr<kube::Informer> deployments_;
  std::unique_ptr<Reconciler> reconciler_;
  std::vector<std::thread> threads_;
  bool started_ = false;
};

}  // namespace braid::op

#endif  // BRAID_OPERATOR_CONTROLLER_H_
