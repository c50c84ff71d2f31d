#include "braid/core/pki.h"

#include <sys/stat.h>

#include <memory>
#include <string>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::pki {
namespace {

using ::testing::HasSubstr;

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr Parse(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return cert;
}

// Whether `leaf` verifies against `ca` for `purpose` (and `host`, if given),
// as a TLS peer would check it.
bool Verifies(const KeyPair& ca, const KeyPair& leaf, int purpose, const std::string& host = "",
              const std::string& ip = "") {
  X509Ptr ca_cert = Parse(ca.cert_pem), cert = Parse(leaf.cert_pem);
  if (!ca_cert || !cert) return false;
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca_cert.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx);
  if (!host.empty()) X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  if (!ip.empty()) X509_VERIFY_PARAM_set1_ip_asc(param, ip.c_str());
  const bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

std::string CommonName(const std::string& pem) {
  X509Ptr cert = Parse(pem);
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, buf, sizeof(buf));
  return buf;
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<KeyPair> ca = MakeCa("notes-lora", absl::Hours(1));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *ca;
  }
  KeyPair ca_;
};

TEST_F(PkiTest, ServerCertificateVerifiesForItsNamesOnly) {
  CertRequest req;
  req.common_name = kAggregatorCommonName;
  req.dns_names = {"notes-lora-aggregator.lab.svc"};
  req.ip_addresses = {"127.0.0.1"};
  req.server = true;
  absl::StatusOr<KeyPair> server = Issue(ca_, req);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(Verifies(ca_, *server, X509_PURPOSE_SSL_SERVER, "notes-lora-aggregator.lab.svc"));
  EXPECT_TRUE(Verifies(ca_, *server, X509_PURPOSE_SSL_SERVER, "", "127.0.0.1"));
  EXPECT_FALSE(Verifies(ca_, *server, X509_PURPOSE_SSL_SERVER, "evil.example"));
  EXPECT_FALSE(Verifies(ca_, *server, X509_PURPOSE_SSL_CLIENT)) << "not for client use";
  EXPECT_EQ(CommonName(server->cert_pem), "aggregator");
}

TEST_F(PkiTest, TenantCertificateCarriesTheTenantAndVerifiesOnlyUnderItsCa) {
  CertRequest req;
  req.common_name = TenantCommonName("st-mary");
  req.client = true;
  absl::StatusOr<KeyPair> client = Issue(ca_, req);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE(Verifies(ca_, *client, X509_PURPOSE_SSL_CLIENT));
  EXPECT_EQ(TenantOf(CommonName(client->cert_pem)), "st-mary");

  absl::StatusOr<KeyPair> other_ca = MakeCa("other-job", absl::Hours(1));
  ASSERT_TRUE(other_ca.ok());
  EXPECT_FALSE(Verifies(*other_ca, *client, X509_PURPOSE_SSL_CLIENT))
      << "another job's CA must not vouch for this job's tenants";
  // Nor can a tenant sign certificates of its own: it is not a CA.
  absl::StatusOr<KeyPair> forged = Issue(*client, req);
  ASSERT_TRUE(forged.ok()) << forged.status();
  EXPECT_FALSE(Verifies(ca_, *forged, X509_PURPOSE_SSL_CLIENT));
}

TEST_F(PkiTest, IdentitiesFromCommonNames) {
  EXPECT_EQ(TenantOf("tenant:charite"), "charite");
  EXPECT_EQ(TenantOf("tenant:"), std::nullopt);
  EXPECT_EQ(TenantOf("operator"), std::nullopt);
  EXPECT_EQ(TenantOf("aggregator"), std::nullopt);
}

TEST_F(PkiTest, BadRequestsAndBadCasAreRefused) {
  CertRequest req;
  req.common_name = "x";
  EXPECT_THAT(std::string(Issue(ca_, req).status().message()), HasSubstr("server or client"));
  req.client = true;
  req.common_name = "";
  EXPECT_THAT(std::string(Issue(ca_, req).status().message()), HasSubstr("common name"));
  req.common_name = "x";
  EXPECT_THAT(std::string(Issue(KeyPair{"garbage", ca_.key_pem}, req).status().message()),
              HasSubstr("not a PEM certificate"));
  EXPECT_THAT(std::string(Issue(KeyPair{ca_.cert_pem, "garbage"}, req).status().message()),
              HasSubstr("not a PEM private key"));
}

TEST_F(PkiTest, FilesRoundTripWithAPrivateKey) {
  CertRequest req;
  req.common_name = TenantCommonName("a");
  req.client = true;
  absl::StatusOr<KeyPair> id = Issue(ca_, req);
  ASSERT_TRUE(id.ok());
  const std::string dir = absl::StrCat(::testing::TempDir(), "/pki_", ::getpid());
  absl::StatusOr<TlsFiles> files = WriteTlsFiles(dir, "a", ca_, *id);
  ASSERT_TRUE(files.ok()) << files.status();
  struct stat st {};
  ASSERT_EQ(::stat(files->key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<TlsMaterial> m = ReadTlsFiles(*files);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->ca_pem, ca_.cert_pem);
  EXPECT_EQ(m->key_pem, id->key_pem);

  TlsFiles partial = *files;
  partial.key.clear();
  EXPECT_THAT(std::string(ReadTlsFiles(partial).status().message()), HasSubstr("go together"));
  TlsFiles missing = *files;
  missing.cert = dir + "/nope.crt";
  EXPECT_THAT(std::string(ReadTlsFiles(missing).status().message()), HasSubstr("nope.crt"));
}

CertRequest SiteRequest(const std::string& site) {
  CertRequest req;
  req.common_name = SiteCommonName(site);
  req.client = true;
  req.validity = absl::Hours(24);
  return req;
}

TEST(PkiCsrTest, SignedCsrCertifiesTheRequestersOwnKeyUnderTheCasName) {
  absl::StatusOr<KeyPair> ca = MakeFederationCa("consortium", absl::Hours(1));
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(CommonName(ca->cert_pem), "braid federation consortium CA");
  absl::StatusOr<std::string> key = MakeKey();
  ASSERT_TRUE(key.ok()) << key.status();
  absl::StatusOr<std::string> csr = MakeCsr(*key);
  ASSERT_TRUE(csr.ok()) << csr.status();
  const absl::Time before = absl::Now();
  absl::StatusOr<std::string> cert = SignCsr(*ca, *csr, SiteRequest("st-mary"));
  ASSERT_TRUE(cert.ok()) << cert.status();

  // The CA decided the name, whatever the CSR's subject said.
  EXPECT_EQ(CommonName(*cert), "site:st-mary");
  EXPECT_TRUE(KeyMatchesCert(*key, *cert));
  EXPECT_TRUE(Verifies(*ca, KeyPair{*cert, *key}, X509_PURPOSE_SSL_CLIENT));
  absl::StatusOr<CertInfo> info = InspectCert(*cert);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->common_name, "site:st-mary");
  EXPECT_GE(info->not_after, before + absl::Hours(24) - absl::Seconds(2));
  EXPECT_LE(info->not_after, absl::Now() + absl::Hours(24) + absl::Seconds(2));

  absl::StatusOr<std::string> other_key = MakeKey();
  ASSERT_TRUE(other_key.ok());
  EXPECT_FALSE(KeyMatchesCert(*other_key, *cert));
}

TEST(PkiCsrTest, CsrWithABadSignatureOrGarbageIsRefused) {
  absl::StatusOr<KeyPair> ca = MakeFederationCa("consortium", absl::Hours(1));
  ASSERT_TRUE(ca.ok());
  absl::StatusOr<std::string> key = MakeKey();
  ASSERT_TRUE(key.ok());
  absl::StatusOr<std::string> csr = MakeCsr(*key);
  ASSERT_TRUE(csr.ok());

  // Flip one bit of the signature (the last bytes of the DER, inside the
  // base64 body just before the footer).
  std::string tampered = *csr;
  const size_t footer = tampered.find("-----END");
  ASSERT_NE(footer, std::string::npos);
  size_t pos = footer - 6;  // inside the last base64 line, before "=" padding
  while (tampered[pos] == '=' || tampered[pos] == '\n') --pos;
  tampered[pos] = tampered[pos] == 'A' ? 'B' : 'A';
  absl::StatusOr<std::string> bad = SignCsr(*ca, tampered, SiteRequest("st-mary"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_THAT(std::string(SignCsr(*ca, "garbage", SiteRequest("a")).status().message()),
              HasSubstr("not a PEM CSR"));
  EXPECT_THAT(std::string(SignCsr(*ca, std::string(100 << 10, 'x'), SiteRequest("a"))
                              .status()
                              .message()),
              HasSubstr("more than"));
  EXPECT_THAT(std::string(MakeCsr("garbage").status().message()),
              HasSubstr("not a PEM private key"));
  EXPECT_FALSE(InspectCert("garbage").ok());
}

TEST(PkiCsrTest, CsrSignedByAnotherKeyThanItNamesIsRefused) {
  // A CSR whose public key is A's but whose signature is B's: whoever sent it
  // does not hold A's key.
  absl::StatusOr<KeyPair> ca = MakeFederationCa("consortium", absl::Hours(1));
  ASSERT_TRUE(ca.ok());
  absl::StatusOr<std::string> a = MakeKey(), b = MakeKey();
  ASSERT_TRUE(a.ok() && b.ok());
  BIO* bio_a = BIO_new_mem_buf(a->data(), static_cast<int>(a->size()));
  BIO* bio_b = BIO_new_mem_buf(b->data(), static_cast<int>(b->size()));
  EVP_PKEY* key_a = PEM_read_bio_PrivateKey(bio_a, nullptr, nullptr, nullptr);
  EVP_PKEY* key_b = PEM_read_bio_PrivateKey(bio_b, nullptr, nullptr, nullptr);
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_pubkey(req, key_a);
  X509_REQ_sign(req, key_b, EVP_sha256());
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(out, req);
  char* data = nullptr;
  const long len = BIO_get_mem_data(out, &data);
  const std::string pem(data, static_cast<size_t>(len));
  BIO_free(out);
  X509_REQ_free(req);
  EVP_PKEY_free(key_a);
  EVP_PKEY_free(key_b);
  BIO_free(bio_a);
  BIO_free(bio_b);

  absl::StatusOr<std::string> cert = SignCsr(*ca, pem, SiteRequest("st-mary"));
  ASSERT_FALSE(cert.ok());
  EXPECT_THAT(std::string(cert.status().message()), HasSubstr("does not verify"));
}

TEST(PkiCsrTest, SiteIdentitiesFromCommonNames) {
  EXPECT_EQ(SiteCommonName("st-mary"), "site:st-mary");
  EXPECT_EQ(SiteOf("site:charite"), "charite");
  EXPECT_EQ(SiteOf("site:"), std::nullopt);
  EXPECT_EQ(SiteOf("tenant:charite"), std::nullopt);
  EXPECT_EQ(TenantOf("site:charite"), std::nullopt);
  // Only a Site's name (a DNS-1123 label) is read from a common name.
  for (const char* cn : {"site:St-Mary", "site:-x", "site:a b", "sites:x"}) {
    EXPECT_EQ(SiteOf(cn), std::nullopt) << cn;
  }
  EXPECT_EQ(SiteOf("site:" + std::string(64, 'a')), std::nullopt);
}

TEST(PkiCsrTest, ASiteCertificateNamesTheUidOfItsSiteObject) {
  absl::StatusOr<KeyPair> ca = MakeFederationCa("consortium", absl::Hours(1));
  ASSERT_TRUE(ca.ok()) << ca.status();
  CertRequest req = SiteRequest("st-mary");
  req.uris = {SiteUidUri("5f0c1e2a-7b7d-4c1e-9d2b-0a1b2c3d4e5f")};
  absl::StatusOr<std::string> cert = SignCsr(*ca, *MakeCsr(*MakeKey()), req);
  ASSERT_TRUE(cert.ok()) << cert.status();
  absl::StatusOr<CertInfo> info = InspectCert(*cert);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(SiteUidOf(*info), "5f0c1e2a-7b7d-4c1e-9d2b-0a1b2c3d4e5f");

  // None, or two, name no uid.
  absl::StatusOr<std::string> bare = SignCsr(*ca, *MakeCsr(*MakeKey()), SiteRequest("st-mary"));
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(SiteUidOf(*InspectCert(*bare)), "");
  req.uris = {SiteUidUri("a"), SiteUidUri("b")};
  absl::StatusOr<std::string> two = SignCsr(*ca, *MakeCsr(*MakeKey()), req);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(SiteUidOf(*InspectCert(*two)), "");

  // A URI that would smuggle another subjectAltName entry is refused.
  req.uris = {SiteUidUri("x,DNS:aggregator")};
  EXPECT_EQ(SignCsr(*ca, *MakeCsr(*MakeKey()), req).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace braid::pki
