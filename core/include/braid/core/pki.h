// The certificates of one job's mTLS: a per-job CA, the aggregator's server
// certificate, and one client certificate per tenant (and one for the
// operator, which polls the aggregator's status). Made with OpenSSL's
// libcrypto; keys are ECDSA P-256, signatures SHA-256.
//
// Identity lives in the subject's common name, which the aggregator reads
// from the verified peer certificate (gRPC's x509_common_name):
//   "tenant:<name>"  a worker of tenant <name>
//   "operator"       braid-operator or `braid run` (status only)
//   "aggregator"     the server
// A worker's certificate is what lets it speak for its tenant; the
// aggregator refuses a Join (and any later call) for another tenant.
#ifndef BRAID_CORE_PKI_H_
#define BRAID_CORE_PKI_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace braid::pki {

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8, unencrypted: store it 0600 or in a Secret
};

// A self-signed CA certificate (CN "braid job <job> CA"), valid from one
// minute ago for `validity`.
absl::StatusOr<KeyPair> MakeCa(const std::string& job, absl::Duration validity);

// A self-signed CA certificate for a federation of sites (CN "braid
// federation <federation> CA"), otherwise as MakeCa.
absl::StatusOr<KeyPair> MakeFederationCa(const std::string& federation,
                                         absl::Duration validity);

struct CertRequest {
  std::string common_name;               // see the identities above
  std::vector<std::string> dns_names;    // subjectAltName DNS entries (server)
  std::vector<std::string> ip_addresses; // subjectAltName IP entries (server), e.g. 127.0.0.1
  // subjectAltName URI entries, e.g. SiteUidUri(uid); only the characters
  // of RFC 3986's unreserved set and ':' '/' (InvalidArgument otherwise).
  std::vector<std::string> uris;
  bool server = false;                   // extendedKeyUsage serverAuth
  bool client = false;                   // extendedKeyUsage clientAuth
  absl::Duration validity = absl::Hours(24 * 30);
};

// A certificate for `request` signed by `ca`. InvalidArgument if `ca` does
// not parse or the request names neither server nor client use or has an
// empty common name; Internal if OpenSSL fails.
absl::StatusOr<KeyPair> Issue(const KeyPair& ca, const CertRequest& request);

// A new private key (ECDSA P-256, as every key here), PKCS#8 PEM.
absl::StatusOr<std::string> MakeKey();

// A PKCS#10 certificate signing request for `key_pem`, self-signed with it.
// Its subject says nothing the signer trusts (SignCsr ignores it).
// InvalidArgument if the key does not parse.
absl::StatusOr<std::string> MakeCsr(const std::string& key_pem);

// A certificate for the public key of the CSR `csr_pem`, signed by `ca`, as
// Issue would make it for `request` (the CA decides the name: the CSR's
// subject and extensions are ignored). Returns the certificate's PEM.
// InvalidArgument (for a party's bad input) when the CSR is larger than
// 64 KiB, does not parse, its self-signature does not verify (whoever sent
// it does not hold the key), or its key is not ECDSA P-256; otherwise as
// Issue.
absl::StatusOr<std::string> SignCsr(const KeyPair& ca, const std::string& csr_pem,
                                    const CertRequest& request);

// What a certificate says about itself (not whether anyone vouches for it).
struct CertInfo {
  std::string common_name;
  std::vector<std::string> uris;  // subjectAltName URI entries
  absl::Time not_before;
  absl::Time not_after;
};
// InvalidArgument if `cert_pem` does not parse.
absl::StatusOr<CertInfo> InspectCert(const std::string& cert_pem);

// Whether `key_pem` is the private key of `cert_pem` (false if either does
// not parse).
bool KeyMatchesCert(const std::string& key_pem, const std::string& cert_pem);

// The common names of the identities.
std::string TenantCommonName(const std::string& tenant);  // "tenant:<tenant>"
inline constexpr char kOperatorCommonName[] = "operator";
inline constexpr char kAggregatorCommonName[] = "aggregator";

// The tenant a common name speaks for, if it is a tenant's.
std::optional<std::string> TenantOf(const std::string& common_name);

std::string SiteCommonName(const std::string& site);  // "site:<site>"
// The site a common name speaks for: "site:<s>" -> <s> when <s> is a
// DNS-1123 label (a Site's name); nullopt otherwise.
std::optional<std::string> SiteOf(const std::string& common_name);

// A site's certificate also names the uid of the Site object it was issued
// for (a subjectAltName URI "urn:braid:site-uid:<uid>"), so that a Site
// deleted and made again under the same name does not admit the
// certificates of the old one.
std::string SiteUidUri(const std::string& uid);
// The uid of the one such URI in `info`; "" when it has none or several.
std::string SiteUidOf(const CertInfo& info);

// Files of one identity, as braid-worker and braid-aggregator take them
// (--tls-ca, --tls-cert, --tls-key).
struct TlsFiles {
  std::string ca;
  std::string cert;
  std::string key;
  bool enabled() const { return !ca.empty(); }
};

// The three files' contents. InvalidArgument naming the flag when only some
// are given; NotFound/InvalidArgument naming the file when one cannot be read.
struct TlsMaterial {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  // Client side only: the name the server's certificate must carry when it
  // differs from the host being dialled (empty: that host). Never read from
  // the files; set from a flag such as braid-worker's --tls-server-name.
  std::string server_name;
};
absl::StatusOr<TlsMaterial> ReadTlsFiles(const TlsFiles& files);

// Writes `ca.crt` (the CA certificate only), `<name>.crt` and `<name>.key`
// (mode 0600) under `dir`, returning their paths.
absl::StatusOr<TlsFiles> WriteTlsFiles(const std::string& dir, const std::string& name,
                                       const KeyPair& ca, const KeyPair& identity);

}  // namespace braid::pki

#endif  // BRAID_CORE_PKI_H_
