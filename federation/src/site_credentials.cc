#include "site_credentials.h"

#include "absl/strings/str_cat.h"
#include "braid/core/status_macros.h"

namespace braid::federation {

std::shared_ptr<grpc::Channel> DialCoordinator(const SiteLinkOptions& options,
                                               const SiteIdentity* identity) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = options.ca_bundle_pem;
  if (identity != nullptr) {
    tls.pem_private_key = identity->key_pem;
    tls.pem_cert_chain = identity->cert_pem;
  }
  grpc::ChannelArguments args;
  if (!options.server_name.empty()) args.SetSslTargetNameOverride(options.server_name);
  args.SetMaxReceiveMessageSize(options.max_receive_bytes);
  // A connection of its own per session: a new identity means a new handshake.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(options.coordinator_address, grpc::SslCredentials(tls), args);
}

absl::StatusOr<KeyAndCsr> NewKeyAndCsr() {
  KeyAndCsr out;
  BRAID_ASSIGN_OR_RETURN(out.key_pem, pki::MakeKey());
  BRAID_ASSIGN_OR_RETURN(out.csr_pem, pki::MakeCsr(out.key_pem));
  return out;
}

absl::StatusOr<SiteIdentity> IdentityFrom(const std::string& site, KeyAndCsr key,
                                          const v1::Certificate& cert) {
  absl::StatusOr<pki::CertInfo> info = pki::InspectCert(cert.cert_pem());
  if (!info.ok()) {
    return absl::InternalError(
        absl::StrCat("the coordinator's certificate: ", info.status().message()));
  }
  if (info->common_name != pki::SiteCommonName(site) ||
      !pki::KeyMatchesCert(key.key_pem, cert.cert_pem())) {
    return absl::InternalError(absl::StrCat("the coordinator returned a certificate for \"",
                                            info->common_name, "\", not for this site's key"));
  }
  return SiteIdentity{std::move(key.key_pem), cert.cert_pem(), cert.ca_pem()};
}

absl::StatusOr<pki::CertInfo> UsableIdentity(const SiteIdentity& identity,
                                             const std::string& site, absl::Time now) {
  BRAID_ASSIGN_OR_RETURN(pki::CertInfo info, pki::InspectCert(identity.cert_pem));
  if (info.common_name != pki::SiteCommonName(site)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the stored certificate is for \"", info.common_name, "\""));
  }
  if (now >= info.not_after) {
    return absl::FailedPreconditionError("the stored certificate has expired");
  }
  if (!pki::KeyMatchesCert(identity.key_pem, identity.cert_pem)) {
    return absl::FailedPreconditionError("the stored key is not the certificate's");
  }
  return info;
}

}  // namespace braid::federation
