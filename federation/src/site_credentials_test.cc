#include "site_credentials.h"

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::federation {
namespace {

using ::testing::HasSubstr;

class SiteCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = *pki::MakeFederationCa("test", absl::Hours(1));
    key_ = *NewKeyAndCsr();
  }
  v1::Certificate Signed(const std::string& csr_pem, const std::string& site) {
    pki::CertRequest req;
    req.common_name = pki::SiteCommonName(site);
    req.client = true;
    req.validity = absl::Hours(1);
    v1::Certificate cert;
    cert.set_cert_pem(*pki::SignCsr(ca_, csr_pem, req));
    cert.set_ca_pem(ca_.cert_pem);
    return cert;
  }
  pki::KeyPair ca_;
  KeyAndCsr key_;
};

TEST_F(SiteCredentialsTest, ACertificateForThisSitesKeyMakesAUsableIdentity) {
  absl::StatusOr<SiteIdentity> id = IdentityFrom("st-mary", key_, Signed(key_.csr_pem, "st-mary"));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->ca_pem, ca_.cert_pem);
  EXPECT_TRUE(UsableIdentity(*id, "st-mary", absl::Now()).ok());
  EXPECT_THAT(std::string(UsableIdentity(*id, "charite", absl::Now()).status().message()),
              HasSubstr("site:st-mary"));
  EXPECT_THAT(std::string(
                  UsableIdentity(*id, "st-mary", absl::Now() + absl::Hours(2)).status().message()),
              HasSubstr("expired"));
  SiteIdentity swapped = *id;
  swapped.key_pem = *pki::MakeKey();
  EXPECT_THAT(std::string(UsableIdentity(swapped, "st-mary", absl::Now()).status().message()),
              HasSubstr("not the certificate's"));
}

TEST_F(SiteCredentialsTest, ACoordinatorReturningAnotherSitesOrKeysCertificateIsCaught) {
  EXPECT_FALSE(IdentityFrom("st-mary", key_, Signed(key_.csr_pem, "charite")).ok());
  KeyAndCsr other = *NewKeyAndCsr();
  absl::StatusOr<SiteIdentity> wrong_key =
      IdentityFrom("st-mary", key_, Signed(other.csr_pem, "st-mary"));
  ASSERT_FALSE(wrong_key.ok());
  EXPECT_THAT(std::string(wrong_key.status().message()), HasSubstr("not for this site's key"));
  v1::Certificate garbage;
  garbage.set_cert_pem("garbage");
  EXPECT_FALSE(IdentityFrom("st-mary", key_, garbage).ok());
}

}  // namespace
}  // namespace braid::federation
