#include "braid/aggregator/metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace braid::aggregator {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

AggregatorMetrics::AggregatorMetrics(const std::string& job)
    : registry_(std::make_shared<prometheus::Registry>()) {
  const std::map<std::string, std::string> labels = {{"job", job}};
  rounds_ = &BuildCounter()
                 .Name("braid_aggregator_rounds_total")
                 .Help("Rounds whose updates were aggregated")
                 .Register(*registry_)
                 .Add(labels);
  participants_ = &BuildGauge()
                       .Name("braid_aggregator_round_participants")
                       .Help("Clients whose update was folded into the last round")
                       .Register(*registry_)
                       .Add(labels);
  clients_ = &BuildGauge()
                  .Name("braid_aggregator_clients")
                  .Help("Clients currently joined and alive")
                  .Register(*registry_)
                  .Add(labels);
  epsilon_ = &BuildGauge()
                  .Name("braid_aggregator_privacy_epsilon")
                  .Help("Differential privacy: epsilon spent by the rounds aggregated so far, at "
                        "the job's delta (0 without differentialPrivacy)")
                  .Register(*registry_)
                  .Add(labels);
  round_ = &BuildGauge()
                .Name("braid_aggregator_round")
                .Help("The round in progress (1-based)")
                .Register(*registry_)
                .Add(labels);
  bytes_in_ = &BuildCounter()
                   .Name("braid_aggregator_received_bytes_total")
                   .Help("Update bytes received from workers")
                   .Register(*registry_)
                   .Add(labels);
  bytes_out_ = &BuildCounter()
                    .Name("braid_aggregator_sent_bytes_total")
                    .Help("Model bytes sent to workers")
                    .Register(*registry_)
                    .Add(labels);
  updates_ = &BuildCounter()
                  .Name("braid_aggregator_updates_total")
                  .Help("Updates accepted and folded into a round")
                  .Register(*registry_)
                  .Add(labels);
  auto& rejected = BuildCounter()
                       .Name("braid_aggregator_updates_rejected_total")
                       .Help("Updates refused, by reason: malformed (bad stream, size, value not "
                             "finite), unknown_client, late (wrong round or duplicate), busy, "
                             "cancelled, ended, other")
                       .Register(*registry_);
  for (const char* reason :
       {"malformed", "unknown_client", "late", "busy", "cancelled", "ended", "other"}) {
    rejected_[reason] = &rejected.Add({{"job", job}, {"reason", reason}});
  }
  round_seconds_ = &BuildHistogram()
                        .Name("braid_aggregator_round_duration_seconds")
                        .Help("Seconds from a round's start to its evaluation")
                        .Register(*registry_)
                        .Add(labels, Histogram::BucketBoundaries{0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                                                 30, 60, 120, 300, 600, 1800});
  update_norm_ = &BuildHistogram()
                      .Name("braid_aggregator_update_norm")
                      .Help("L2 norm of each accepted update (delta from the global model)")
                      .Register(*registry_)
                      .Add(labels, Histogram::BucketBoundaries{0.001, 0.01, 0.1, 0.5, 1, 2, 5,
                                                               10, 50, 100, 1000});
}

absl::StatusOr<int> AggregatorMetrics::Serve(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", address, ": ",
                                               e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void AggregatorMetrics::RoundCompleted(double seconds, int participants) {
  rounds_->Increment();
  participants_->Set(participants);
  round_seconds_->Observe(seconds);
}
void AggregatorMetrics::UpdateReceived(double bytes, double l2_norm) {
  updates_->Increment();
  bytes_in_->Increment(bytes);
  update_norm_->Observe(l2_norm);
}
void AggregatorMetrics::UpdateRejected(absl::StatusCode code) {
  const char* reason = "other";
  switch (code) {
    case absl::StatusCode::kInvalidArgument: reason = "malformed"; break;
    case absl::StatusCode::kNotFound: reason = "unknown_client"; break;
    case absl::StatusCode::kAborted: reason = "late"; break;
    case absl::StatusCode::kUnavailable: reason = "busy"; break;
    case absl::StatusCode::kCancelled: reason = "cancelled"; break;
    case absl::StatusCode::kFailedPrecondition: reason = "ended"; break;
    default: break;
  }
  rejected_.at(reason)->Increment();
}
void AggregatorMetrics::BytesSent(double bytes) { bytes_out_->Increment(bytes); }
void AggregatorMetrics::SetClients(int n) { clients_->Set(n); }
void AggregatorMetrics::SetRound(int round) { round_->Set(round); }
void AggregatorMetrics::SetPrivacyEpsilon(double epsilon) { epsilon_->Set(epsilon); }

}  // namespace braid::aggregator
