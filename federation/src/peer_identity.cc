#include "peer_identity.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

#include "braid/core/pki.h"
#include "braid/core/dns_name.h"

namespace braid::federation {
namespace {

// The one value of `property`, or "" when it has none or several.
std::string OnlyValue(const grpc::AuthContext& auth, const char* property) {
  std::vector<grpc::string_ref> values = auth.FindPropertyValues(property);
  if (values.size() != 1) return "";
  return std::string(values[0].data(), values[0].size());
}

}  // namespace

std::optional<PeerSite> SiteOfPeer(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return std::nullopt;
  std::optional<std::string> site =
      pki::SiteOf(OnlyValue(*auth, GRPC_X509_CN_PROPERTY_NAME));
  if (!site.has_value() || !IsDns1123Label(*site)) return std::nullopt;
  absl::StatusOr<pki::CertInfo> info =
      pki::InspectCert(OnlyValue(*auth, GRPC_X509_PEM_CERT_PROPERTY_NAME));
  if (!info.ok()) return std::nullopt;
  return PeerSite{*site, pki::SiteUidOf(*info), info->not_after};
}

grpc::Status NotAMember(const std::string& site) {
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      "site " + site +
                          " is not a member of this federation: its Site object is gone or "
                          "revoked, or was made again after this certificate was issued (enroll "
                          "with the new Site's token)");
}

}  // namespace braid::federation
