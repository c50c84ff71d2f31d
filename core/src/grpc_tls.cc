#include "braid/core/grpc_tls.h"

#include <grpcpp/security/auth_context.h>

namespace braid {

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(
    const std::optional<pki::TlsMaterial>& tls) {
  if (!tls.has_value()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls->ca_pem;
  options.pem_key_cert_pairs.push_back({tls->key_pem, tls->cert_pem});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(
    const std::optional<pki::TlsMaterial>& tls) {
  if (!tls.has_value()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls->ca_pem;
  options.pem_private_key = tls->key_pem;
  options.pem_cert_chain = tls->cert_pem;
  return grpc::SslCredentials(options);
}

std::string PeerCommonName(const grpc::ServerContext& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return "";
  for (const grpc::string_ref& v : auth->FindPropertyValues("x509_common_name")) {
    return std::string(v.data(), v.size());
  }
  return "";
}

absl::StatusOr<std::optional<pki::TlsMaterial>> LoadTls(const pki::TlsFiles& files) {
  if (files.ca.empty() && files.cert.empty() && files.key.empty()) return std::nullopt;
  absl::StatusOr<pki::TlsMaterial> material = pki::ReadTlsFiles(files);
  if (!material.ok()) return material.status();
  return std::optional<pki::TlsMaterial>(*std::move(material));
}

}  // namespace braid
