#include "braid/cli/local_pki.h"

#include "braid/core/status_macros.h"

namespace braid::cli {

absl::StatusOr<LocalPki> MakeLocalPki(const std::string& dir, const spec::JobSpec& job) {
  const absl::Duration validity = absl::Hours(24 * 30);
  BRAID_ASSIGN_OR_RETURN(pki::KeyPair ca, pki::MakeCa(job.name, validity));
  LocalPki out;
  pki::CertRequest server;
  server.common_name = pki::kAggregatorCommonName;
  server.ip_addresses = {"127.0.0.1"};
  server.dns_names = {"localhost"};
  server.server = true;
  server.validity = validity;
  BRAID_ASSIGN_OR_RETURN(pki::KeyPair aggregator, pki::Issue(ca, server));
  BRAID_ASSIGN_OR_RETURN(out.aggregator, pki::WriteTlsFiles(dir, "aggregator", ca, aggregator));

  pki::CertRequest client;
  client.client = true;
  client.validity = validity;
  client.common_name = pki::kOperatorCommonName;
  BRAID_ASSIGN_OR_RETURN(pki::KeyPair cli, pki::Issue(ca, client));
  BRAID_ASSIGN_OR_RETURN(out.cli, pki::WriteTlsFiles(dir, "cli", ca, cli));
  for (const spec::Tenant& t : job.tenants) {
    client.common_name = pki::TenantCommonName(t.name);
    BRAID_ASSIGN_OR_RETURN(pki::KeyPair id, pki::Issue(ca, client));
    BRAID_ASSIGN_OR_RETURN(out.tenants[t.name],
                           pki::WriteTlsFiles(dir, "tenant-" + t.name, ca, id));
  }
  return out;
}

std::vector<std::string> TlsFlags(const pki::TlsFiles& files) {
  if (!files.enabled()) return {};
  return {"--tls-ca", files.ca, "--tls-cert", files.cert, "--tls-key", files.key};
}

}  // namespace braid::cli
