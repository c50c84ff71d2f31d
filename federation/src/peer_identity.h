// The site a call speaks for: from the verified peer certificate in gRPC's
// auth context, never from a message.
#ifndef BRAID_FEDERATION_SRC_PEER_IDENTITY_H_
#define BRAID_FEDERATION_SRC_PEER_IDENTITY_H_

#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"

namespace braid::federation {

struct PeerSite {
  std::string site;
  std::string uid;       // of the Site object it was issued for (pki::SiteUidOf)
  absl::Time not_after;  // of the certificate the connection was made with
};

// The site of the caller's certificate when the TLS layer verified one
// against the federation CA and its common name is "site:<s>" with <s> a
// valid site name; nullopt otherwise (no certificate, another identity).
std::optional<PeerSite> SiteOfPeer(const grpc::ServerContextBase& context);

// PERMISSION_DENIED for a call of `site` whose certificate its Site does
// not admit (SiteRecord::Admits).
grpc::Status NotAMember(const std::string& site);

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_SRC_PEER_IDENTITY_H_
