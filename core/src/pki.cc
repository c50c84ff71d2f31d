#include "braid/core/pki.h"

#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <memory>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "braid/core/dns_name.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"

namespace braid::pki {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

constexpr uint64_t kMaxPemBytes = 64 << 10;

// The last OpenSSL error, for messages.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

absl::Status Internal(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", OpenSslError()));
}

absl::StatusOr<std::string> BioString(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  if (len < 0) return Internal("reading a memory BIO");
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<Owned<EVP_PKEY>> NewKey() {
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) return Internal("generating a P-256 key");
  return key;
}

absl::StatusOr<KeyPair> Pem(X509* cert, EVP_PKEY* key) {
  Owned<BIO> cert_bio(BIO_new(BIO_s_mem()));
  Owned<BIO> key_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Internal("writing PEM");
  }
  KeyPair out;
  BRAID_ASSIGN_OR_RETURN(out.cert_pem, BioString(cert_bio.get()));
  BRAID_ASSIGN_OR_RETURN(out.key_pem, BioString(key_bio.get()));
  return out;
}

// A new certificate for `key` with subject CN `cn`, a random 127-bit serial
// and validity [now - 1 min, now + validity].
absl::StatusOr<Owned<X509>> NewCert(EVP_PKEY* key, const std::string& cn,
                                    absl::Duration validity) {
  Owned<X509> cert(X509_new());
  Owned<BIGNUM> serial(BN_new());
  if (!cert || !serial || X509_set_version(cert.get(), 2) != 1 ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                      static_cast<long>(absl::ToInt64Seconds(validity))) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return Internal("making a certificate");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("braid"), -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1) {
    return Internal(absl::StrCat("setting the subject CN=", cn));
  }
  return cert;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Owned<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Internal(absl::StrCat("adding the extension ", OBJ_nid2sn(nid), " = ", value));
  }
  return absl::OkStatus();
}

absl::StatusOr<Owned<X509>> ParseCert(const std::string& pem) {
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Owned<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return absl::InvalidArgumentError(absl::StrCat("not a PEM certificate: ", OpenSslError()));
  }
  return cert;
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Internal("writing a key's PEM");
  }
  return BioString(bio.get());
}

absl::StatusOr<Owned<EVP_PKEY>> ParseKey(const std::string& pem) {
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Owned<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(absl::StrCat("not a PEM private key: ", OpenSslError()));
  }
  return key;
}

absl::StatusOr<Owned<X509_REQ>> ParseCsr(const std::string& pem) {
  if (pem.size() > kMaxPemBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the CSR has ", pem.size(), " bytes, more than ", kMaxPemBytes));
  }
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Owned<X509_REQ> req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) {
    return absl::InvalidArgumentError(absl::StrCat("not a PEM CSR: ", OpenSslError()));
  }
  return req;
}

// Whether `key` is ECDSA P-256, the one kind of key this PKI signs for.
bool IsP256(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC") != 1) return false;
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) return false;
  return std::string(group, len) == "prime256v1" || std::string(group, len) == "P-256";
}

absl::StatusOr<KeyPair> MakeCaNamed(const std::string& common_name, absl::Duration validity) {
  BRAID_ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, NewKey());
  BRAID_ASSIGN_OR_RETURN(Owned<X509> cert, NewCert(key.get(), common_name, validity));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1) {
    return Internal("setting the CA's issuer");
  }
  BRAID_RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_basic_constraints,
                                     "critical,CA:TRUE,pathlen:0"));
  BRAID_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  BRAID_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return Internal("signing the CA");
  return Pem(cert.get(), key.get());
}

absl::Status CheckRequest(const CertRequest& request) {
  if (request.common_name.empty()) {
    return absl::InvalidArgumentError("a certificate needs a common name");
  }
  if (!request.server && !request.client) {
    return absl::InvalidArgumentError("a certificate must be for server or client use");
  }
  for (const std::string& uri : request.uris) {
    // Joined into OpenSSL's extension text, where ',' would start another
    // entry: only URI characters that cannot.
    const bool plain = !uri.empty() && std::all_of(uri.begin(), uri.end(), [](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
             absl::string_view("-._~:/").find(c) != absl::string_view::npos;
    });
    if (!plain) return absl::InvalidArgumentError("a subjectAltName URI holds a character it may not");
  }
  return absl::OkStatus();
}

// A certificate for `key` (a public key; the private half may be elsewhere)
// as `request` says, signed by the CA `ca`.
absl::StatusOr<Owned<X509>> SignFor(const KeyPair& ca, EVP_PKEY* key,
                                    const CertRequest& request) {
  BRAID_ASSIGN_OR_RETURN(Owned<X509> ca_cert, ParseCert(ca.cert_pem));
  BRAID_ASSIGN_OR_RETURN(Owned<EVP_PKEY> ca_key, ParseKey(ca.key_pem));
  BRAID_ASSIGN_OR_RETURN(Owned<X509> cert, NewCert(key, request.common_name, request.validity));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) != 1) {
    return Internal("setting the issuer");
  }
  BRAID_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  BRAID_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_key_usage,
                                     "critical,digitalSignature,keyAgreement"));
  std::vector<std::string> usage;
  if (request.server) usage.push_back("serverAuth");
  if (request.client) usage.push_back("clientAuth");
  BRAID_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_ext_key_usage, absl::StrJoin(usage, ",")));
  std::vector<std::string> sans;
  for (const std::string& d : request.dns_names) sans.push_back("DNS:" + d);
  for (const std::string& ip : request.ip_addresses) sans.push_back("IP:" + ip);
  for (const std::string& uri : request.uris) sans.push_back("URI:" + uri);
  if (!sans.empty()) {
    BRAID_RETURN_IF_ERROR(
        AddExtension(cert.get(), ca_cert.get(), NID_subject_alt_name, absl::StrJoin(sans, ",")));
  }
  BRAID_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_subject_key_identifier, "hash"));
  BRAID_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0) {
    return Internal(absl::StrCat("signing the certificate for ", request.common_name));
  }
  return cert;
}

absl::Time Asn1Time(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromUnixSeconds(static_cast<int64_t>(timegm(&tm)));
}

}  // namespace

absl::StatusOr<KeyPair> MakeCa(const std::string& job, absl::Duration validity) {
  return MakeCaNamed(absl::StrCat("braid job ", job, " CA"), validity);
}

absl::StatusOr<KeyPair> MakeFederationCa(const std::string& federation,
                                         absl::Duration validity) {
  return MakeCaNamed(absl::StrCat("braid federation ", federation, " CA"), validity);
}

absl::StatusOr<KeyPair> Issue(const KeyPair& ca, const CertRequest& request) {
  BRAID_RETURN_IF_ERROR(CheckRequest(request));
  BRAID_ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, NewKey());
  BRAID_ASSIGN_OR_RETURN(Owned<X509> cert, SignFor(ca, key.get(), request));
  return Pem(cert.get(), key.get());
}

absl::StatusOr<std::string> MakeKey() {
  BRAID_ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, NewKey());
  return KeyPem(key.get());
}

absl::StatusOr<std::string> MakeCsr(const std::string& key_pem) {
  BRAID_ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, ParseKey(key_pem));
  Owned<X509_REQ> req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 ||
      X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("braid site key"), -1,
                                 -1, 0) != 1 ||
      X509_REQ_sign(req.get(), key.get(), EVP_sha256()) == 0) {
    return Internal("making a CSR");
  }
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return Internal("writing the CSR's PEM");
  }
  return BioString(bio.get());
}

absl::StatusOr<std::string> SignCsr(const KeyPair& ca, const std::string& csr_pem,
                                    const CertRequest& request) {
  BRAID_RETURN_IF_ERROR(CheckRequest(request));
  BRAID_ASSIGN_OR_RETURN(Owned<X509_REQ> req, ParseCsr(csr_pem));
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());  // owned by req
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("the CSR has no usable public key: ",
                                                   OpenSslError()));
  }
  if (X509_REQ_verify(req.get(), key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "the CSR's signature does not verify with its own key: sign it with the key it names");
  }
  if (!IsP256(key)) {
    return absl::InvalidArgumentError("the CSR's key must be ECDSA P-256");
  }
  BRAID_ASSIGN_OR_RETURN(Owned<X509> cert, SignFor(ca, key, request));
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert.get()) != 1) {
    return Internal("writing the certificate's PEM");
  }
  return BioString(bio.get());
}

absl::StatusOr<CertInfo> InspectCert(const std::string& cert_pem) {
  if (cert_pem.size() > kMaxPemBytes) {
    return absl::InvalidArgumentError("the certificate is larger than 64 KiB");
  }
  BRAID_ASSIGN_OR_RETURN(Owned<X509> cert, ParseCert(cert_pem));
  CertInfo info;
  char cn[256] = {0};
  const int len =
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof(cn));
  if (len > 0) info.common_name.assign(cn, static_cast<size_t>(len));
  info.not_before = Asn1Time(X509_get0_notBefore(cert.get()));
  info.not_after = Asn1Time(X509_get0_notAfter(cert.get()));
  Owned<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    info.uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                           static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  ERR_clear_error();  // a certificate without the extension
  return info;
}

std::string SiteUidUri(const std::string& uid) { return "urn:braid:site-uid:" + uid; }

std::string SiteUidOf(const CertInfo& info) {
  constexpr absl::string_view kPrefix = "urn:braid:site-uid:";
  std::string uid;
  int found = 0;
  for (const std::string& uri : info.uris) {
    if (!absl::StartsWith(uri, kPrefix) || uri.size() == kPrefix.size()) continue;
    uid = uri.substr(kPrefix.size());
    ++found;
  }
  return found == 1 ? uid : "";
}

bool KeyMatchesCert(const std::string& key_pem, const std::string& cert_pem) {
  absl::StatusOr<Owned<X509>> cert = ParseCert(cert_pem);
  absl::StatusOr<Owned<EVP_PKEY>> key = ParseKey(key_pem);
  if (!cert.ok() || !key.ok()) return false;
  const bool match = X509_check_private_key(cert->get(), key->get()) == 1;
  ERR_clear_error();
  return match;
}

std::string TenantCommonName(const std::string& tenant) { return "tenant:" + tenant; }

std::optional<std::string> TenantOf(const std::string& common_name) {
  if (!absl::StartsWith(common_name, "tenant:") || common_name.size() == 7) return std::nullopt;
  return common_name.substr(7);
}

std::string SiteCommonName(const std::string& site) { return "site:" + site; }

std::optional<std::string> SiteOf(const std::string& common_name) {
  if (!absl::StartsWith(common_name, "site:")) return std::nullopt;
  std::string site = common_name.substr(5);
  if (!IsDns1123Label(site)) return std::nullopt;
  return site;
}

absl::StatusOr<TlsMaterial> ReadTlsFiles(const TlsFiles& files) {
  const int given = !files.ca.empty() + !files.cert.empty() + !files.key.empty();
  if (given != 3) {
    return absl::InvalidArgumentError(
        "--tls-ca, --tls-cert and --tls-key go together: give all three or none");
  }
  TlsMaterial m;
  BRAID_ASSIGN_OR_RETURN(m.ca_pem, ReadSmallFile(files.ca, kMaxPemBytes));
  BRAID_ASSIGN_OR_RETURN(m.cert_pem, ReadSmallFile(files.cert, kMaxPemBytes));
  BRAID_ASSIGN_OR_RETURN(m.key_pem, ReadSmallFile(files.key, kMaxPemBytes));
  return m;
}

absl::StatusOr<TlsFiles> WriteTlsFiles(const std::string& dir, const std::string& name,
                                       const KeyPair& ca, const KeyPair& identity) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  ::chmod(dir.c_str(), 0700);
  TlsFiles files{dir + "/ca.crt", dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  BRAID_RETURN_IF_ERROR(WriteFileAtomically(files.ca, {ca.cert_pem}));
  BRAID_RETURN_IF_ERROR(WriteFileAtomically(files.cert, {identity.cert_pem}));
  BRAID_RETURN_IF_ERROR(WriteFileAtomically(files.key, {identity.key_pem}));
  if (::chmod(files.key.c_str(), 0600) != 0) {
    return absl::InternalError(absl::StrCat("cannot make ", files.key, " private"));
  }
  return files;
}

}  // namespace braid::pki
