// The aggregator's Prometheus metrics, served on /metrics. Families are
// built once at start-up; label values are bounded (job; the claim
// counters also tenant, one of the job's or "other", and reason).
#ifndef BRAID_AGGREGATOR_METRICS_H_
#define BRAID_AGGREGATOR_METRICS_H_

#include <map>
#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace braid::aggregator {

class AggregatorMetrics {
 public:
  explicit AggregatorMetrics(const std::string& job);
  // Stops serving at once (see metrics.cc for why that needs doing).
  ~AggregatorMetrics();
  AggregatorMetrics(const AggregatorMetrics&) = delete;
  AggregatorMetrics& operator=(const AggregatorMetrics&) = delete;

  // Serves /metrics on `address` ("127.0.0.1:0" picks a free port). Returns
  // the bound port. Unavailable if the address cannot be bound.
  absl::StatusOr<int> Serve(const std::string& address);

  void RoundCompleted(double seconds, int participants);
  void UpdateReceived(double bytes, double l2_norm);
  // An update refused with `code`: counted under the label reason =
  // malformed (InvalidArgument), unknown_client (NotFound), late (Aborted:
  // not the client's round, or a duplicate), busy (Unavailable), cancelled,
  // ended (FailedPrecondition) or other.
  void UpdateRejected(absl::StatusCode code);
  void BytesSent(double bytes);
  // A client's claimed example count was capped (braid_aggregator_claims_capped_total)
  // or a number it reported refused (braid_aggregator_claims_refused_total),
  // by tenant (a tenant of the job, or "other") and reason (claims.h).
  void ClaimCapped(const std::string& tenant, const std::string& reason);
  void ClaimRefused(const std::string& tenant, const std::string& reason);
  void SetClients(int n);
  void SetRound(int round);
  // Epsilon spent so far (differential privacy), braid_aggregator_privacy_epsilon.
  void SetPrivacyEpsilon(double epsilon);

  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string exposer_host_;  // where to connect to wake the exposer (see ~AggregatorMetrics)
  prometheus::Counter* rounds_;
  prometheus::Gauge* participants_;
  prometheus::Gauge* clients_;
  prometheus::Gauge* round_;
  prometheus::Gauge* epsilon_;
  prometheus::Counter* bytes_in_;
  prometheus::Counter* bytes_out_;
  prometheus::Counter* updates_;
  std::map<std::string, prometheus::Counter*> rejected_;  // reason -> child
  std::string job_;
  prometheus::Family<prometheus::Counter>* claims_capped_;
  prometheus::Family<prometheus::Counter>* claims_refused_;
  prometheus::Histogram* round_seconds_;
  prometheus::Histogram* update_norm_;
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_METRICS_H_
