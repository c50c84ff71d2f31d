#include "braid/operator/aggregator_status.h"

#include <map>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "braid/control/aggregator_report.h"
#include "braid/core/grpc_tls.h"
#include "braid/v1/federation.grpc.pb.h"

namespace braid::op {
namespace {

using control::AggregatorReport;


class GrpcAggregatorStatusSource final : public AggregatorStatusSource {
 public:
  absl::StatusOr<control::AggregatorReport> Poll(const std::string& address, absl::Duration timeout,
                                        const std::optional<TlsTarget>& tls) override {
    braid::v1::Federation::Stub* stub = StubFor(address, tls);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    braid::v1::StatusRequest request;
    braid::v1::JobStatus reply;
    grpc::Status status = stub->GetStatus(&context, request, &reply);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          "aggregator " + address + ": " + status.error_message());
    }
    return control::ReportFromStatus(reply);
  }

 private:
  braid::v1::Federation::Stub* StubFor(const std::string& address,
                                       const std::optional<TlsTarget>& tls) {
    // A new certificate (a re-created job) gets a new channel.
    const std::string key = tls.has_value() ? absl::StrCat(address, "|", tls->server_name, "|",
                                                            tls->material.cert_pem)
                                            : address;
    absl::MutexLock lock(&mu_);
    auto& stub = stubs_[key];
    if (stub == nullptr) {
      // gRPC's default reconnect backoff grows to two minutes; an aggregator
      // that starts (or restarts) after the first polls would then stay
      // "unreachable" that long and its rounds go unseen. Retry within 1 s.
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
      // Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also takes it as the
      // minimum connect timeout, and 200 ms cuts off a TLS handshake.
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      std::optional<pki::TlsMaterial> material;
      if (tls.has_value()) {
        material = tls->material;
        args.SetSslTargetNameOverride(tls->server_name);
      }
      stub = braid::v1::Federation::NewStub(
          grpc::CreateCustomChannel(address, ChannelCredentials(material), args));
    }
    return stub.get();
  }

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<braid::v1::Federation::Stub>> stubs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<AggregatorStatusSource> NewGrpcAggregatorStatusSource() {
  return std::make_unique<GrpcAggregatorStatusSource>();
}

}  // namespace braid::op
