// braid-operator's Prometheus metrics, served on /metrics with /healthz and
// /readyz beside them. Families are built once; label values are bounded
// (result, phase, resource).
#ifndef BRAID_OPERATOR_OPERATOR_METRICS_H_
#define BRAID_OPERATOR_OPERATOR_METRICS_H_

#include <map>
#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/status/statusor.h"

namespace braid::op {

class OperatorMetrics {
 public:
  OperatorMetrics();

  // Serves on `address` ("0.0.0.0:9090"; port 0 picks one). Returns the
  // bound port; Unavailable if it cannot bind.
  absl::StatusOr<int> Serve(const std::string& address);

  // One reconcile that took `seconds`; `ok` false counts an error.
  void Reconciled(double seconds, bool ok);
  // Jobs by phase, replacing the previous figures (phases absent count 0).
  void SetJobsByPhase(const std::map<std::string, int>& counts);
  // Raises braid_operator_watch_restarts_total{resource} to `total` (the
  // informer's own monotonic count).
  void SetWatchRestarts(const std::string& resource, double total);
  void SetLeader(bool leader);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Registry> health_;  // empty: 200 on /healthz, /readyz
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Counter* reconciles_ok_;
  prometheus::Counter* reconciles_error_;
  prometheus::Histogram* reconcile_seconds_;
  prometheus::Family<prometheus::Gauge>* jobs_;
  prometheus::Family<prometheus::Counter>* watch_restarts_;
  prometheus::Gauge* leader_;
};

}  // namespace braid::op

#endif  // BRAID_OPERATOR_OPERATOR_METRICS_H_
