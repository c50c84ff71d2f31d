// gRPC credentials from a job's TLS material (see pki.h): the aggregator
// requires and verifies a client certificate from the job's CA; clients
// verify the aggregator's certificate against the same CA. Without material
// both sides fall back to plaintext (tests and `braid run --insecure`).
#ifndef BRAID_CORE_GRPC_TLS_H_
#define BRAID_CORE_GRPC_TLS_H_

#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "braid/core/pki.h"

namespace braid {

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(
    const std::optional<pki::TlsMaterial>& tls);
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(
    const std::optional<pki::TlsMaterial>& tls);

// The common name of the peer's verified certificate; "" over plaintext.
std::string PeerCommonName(const grpc::ServerContext& ctx);

// Reads --tls-ca/--tls-cert/--tls-key: nullopt when none is given, the
// material when all three are, an error naming the flag or file otherwise.
absl::StatusOr<std::optional<pki::TlsMaterial>> LoadTls(const pki::TlsFiles& files);

}  // namespace braid

#endif  // BRAID_CORE_GRPC_TLS_H_
