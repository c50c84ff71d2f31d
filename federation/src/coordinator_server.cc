#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/strings/str_cat.h"
#include "braid/federation/coordinator_service.h"

namespace braid::federation {
namespace {

class GrpcCoordinatorServer final : public CoordinatorServer {
 public:
  GrpcCoordinatorServer(std::unique_ptr<CoordinatorService> service,
                        std::unique_ptr<grpc::Server> server, int port)
      : service_(std::move(service)), server_(std::move(server)), port_(port) {}
  ~GrpcCoordinatorServer() override { Shutdown(); }
  GrpcCoordinatorServer(const GrpcCoordinatorServer&) = delete;
  GrpcCoordinatorServer& operator=(const GrpcCoordinatorServer&) = delete;

  int port() const override { return port_; }
  CoordinatorService& service() override { return *service_; }

  void Shutdown() override {
    if (server_ == nullptr) return;
    service_->Shutdown();
    // Calls still running after a second are cancelled.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
    server_.reset();
  }

 private:
  std::unique_ptr<CoordinatorService> service_;  // outlives server_
  std::unique_ptr<grpc::Server> server_;
  const int port_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorServer>> StartCoordinatorServer(
    CoordinatorServerOptions options, SiteRegistry* registry, InvitationBoard* board,
    Clock* clock) {
  if (options.server.cert_pem.empty() || options.server.key_pem.empty()) {
    return absl::InvalidArgumentError("server: the coordinator's certificate and key are required");
  }
  if (options.service.ca.cert_pem.empty() || options.service.ca.key_pem.empty()) {
    return absl::InvalidArgumentError(
        "service.ca: the federation CA's certificate and key are required");
  }
  if (options.service.keepalive_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("service.keepalive_interval: must be positive");
  }
  // Client certificates are verified against the federation CA when given;
  // Enroll comes without one, and every other call checks for it itself.
  grpc::SslServerCredentialsOptions tls(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  tls.pem_root_certs = options.service.ca.cert_pem;
  tls.pem_key_cert_pairs.push_back({options.server.key_pem, options.server.cert_pem});

  const int max_receive = options.service.max_receive_bytes;
  const int keepalive_ms =
      static_cast<int>(absl::ToInt64Milliseconds(options.service.keepalive_interval));
  auto service = std::make_unique<CoordinatorService>(std::move(options.service), registry,
                                                      board, clock);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.address, grpc::SslServerCredentials(tls), &port);
  builder.RegisterService(service.get());
  builder.SetMaxReceiveMessageSize(max_receive);
  // HTTP/2 pings find a dead connection (a site whose network vanished)
  // within about two keepalive intervals.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, keepalive_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A site's calls: Enroll, Renew and one Sync stream; a few in flight.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 8);
  // A connection with no call (a caller that enrolled, or never called)
  // is closed after two minutes.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 120000);
  // Enroll and Renew run on gRPC's sync threads: a bounded pool, so a flood
  // of calls queues instead of making threads (the streams are callbacks).
  grpc::ResourceQuota quota("braid-federation");
  quota.SetMaxThreads(16);
  builder.SetResourceQuota(quota);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.address));
  }
  return std::unique_ptr<CoordinatorServer>(
      new GrpcCoordinatorServer(std::move(service), std::move(server), port));
}

}  // namespace braid::federation
