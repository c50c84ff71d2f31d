#include "braid/aggregator/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <thread>

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
  job_ = job;
  claims_capped_ = &BuildCounter()
                        .Name("braid_aggregator_claims_capped_total")
                        .Help("Updates whose claimed example count was capped, by tenant and "
                              "reason: join_claim (above what the worker joined with), "
                              "max_examples (above the tenant's maxExamples), other_tenants "
                              "(the tenant would outweigh the heaviest other tenant)")
                        .Register(*registry_);
  claims_refused_ = &BuildCounter()
                         .Name("braid_aggregator_claims_refused_total")
                         .Help("Numbers a client reported that were refused, by tenant and "
                               "reason: num_examples (out of range), train_metrics, "
                               "eval_metrics (not finite or out of range)")
                         .Register(*registry_);
}

namespace {

// Opens and closes one TCP connection to host:port (IPv4 or IPv6 literal).
void Knock(const std::string& host, int port) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    return;
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  ::close(fd);
}

// The host to connect to for a listener bound to `address` ("host:port",
// "[v6]:port"); a wildcard is reached on loopback.
std::string LoopbackFor(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") return "127.0.0.1";
  if (host == "::") return "::1";
  if (host == "localhost") return "127.0.0.1";
  return host;
}

}  // namespace

// prometheus::Exposer's destructor stops civetweb, whose accept loop looks
// at its stop flag only when poll() returns: on a connection, or every 2 s
// when idle. Every process exit waited for that. A knock on the port while
// the destructor waits wakes the loop at once.
AggregatorMetrics::~AggregatorMetrics() {
  if (!exposer_) return;
  const std::vector<int> ports = exposer_->GetListeningPorts();
  std::atomic<bool> stopped{false};
  std::thread knocker([&] {
    while (!stopped.load()) {
      for (int port : ports) Knock(exposer_host_, port);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped = true;
  knocker.join();
}

absl::StatusOr<int> AggregatorMetrics::Serve(const std::string& address) {
  exposer_host_ = LoopbackFor(address);
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
// Family::Add is thread-safe and returns the existing child for known labels;
// the label values are bounded by the caller (a job's tenants, or "other").
void AggregatorMetrics::ClaimCapped(const std::string& tenant, const std::string& reason) {
  claims_capped_->Add({{"job", job_}, {"tenant", tenant}, {"reason", reason}}).Increment();
}
void AggregatorMetrics::ClaimRefused(const std::string& tenant, const std::string& reason) {
  claims_refused_->Add({{"job", job_}, {"tenant", tenant}, {"reason", reason}}).Increment();
}
void AggregatorMetrics::SetClients(int n) { clients_->Set(n); }
void AggregatorMetrics::SetRound(int round) { round_->Set(round); }
void AggregatorMetrics::SetPrivacyEpsilon(double epsilon) { epsilon_->Set(epsilon); }

}  // namespace braid::aggregator
