// Site certificates (multi-site) at the aggregator, with real certificates:
// a job CA issues the tenants' and the aggregator's certificates, a
// federation CA the sites'. First the binding as a function, then over gRPC
// with mTLS, as braid-aggregator --tls-client-ca-extra serves it.
#include "braid/aggregator/peer_binding.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/federation_service.h"
#include "braid/aggregator/round_engine.h"
#include "braid/aggregator/site_admission.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/pki.h"
#include "braid/core/spec.h"
#include "braid/v1/federation.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

// Tenant "local" (this cluster), "st-mary" at site st-mary-london, and
// "charite" at site charite.
spec::JobSpec Job() {
  spec::ParseOptions options;
  options.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n"
      "metadata: {name: job}\n"
      "spec:\n"
      "  data: {features: [x0, x1]}\n"
      "  tenants:\n"
      "  - {name: local, data: {persistentVolumeClaim: {claimName: d, subPath: a.csv}}}\n"
      "  - {name: st-mary, site: st-mary-london, dataset: notes}\n"
      "  - {name: charite, site: charite, dataset: notes}\n",
      "", options);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : spec::JobSpec();
}

pki::KeyPair Ca(const std::string& name) {
  absl::StatusOr<pki::KeyPair> ca = pki::MakeCa(name, absl::Hours(1));
  EXPECT_TRUE(ca.ok()) << ca.status();
  return ca.ok() ? *ca : pki::KeyPair();
}

// A client certificate for `cn`, naming Site uid `uid` when given.
pki::KeyPair Client(const pki::KeyPair& ca, const std::string& cn, const std::string& uid = "") {
  pki::CertRequest r;
  r.common_name = cn;
  r.client = true;
  if (!uid.empty()) r.uris = {pki::SiteUidUri(uid)};
  r.validity = absl::Hours(1);
  absl::StatusOr<pki::KeyPair> id = pki::Issue(ca, r);
  EXPECT_TRUE(id.ok()) << id.status();
  return id.ok() ? *id : pki::KeyPair();
}

// Writes `text` to `path` as the kubelet updates a mounted ConfigMap: a
// new file renamed over the old one.
void Publish(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
  }
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0) << path;
}

// The admission list naming `sites` with their uids (as `uid_` gives them).
std::string AdmissionList(const std::map<std::string, std::string>& sites) {
  nlohmann::json list = {{"sites", nlohmann::json::object()}};
  for (const auto& [site, uid] : sites) list["sites"][site] = {{"uid", uid}};
  return list.dump();
}

class PeerBindingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One file per test and process: ctest runs the tests in parallel.
    admission_path_ = absl::StrCat(
        ::testing::TempDir(), "/peer_binding_sites_",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_", getpid(), ".json");
    ASSERT_NO_FATAL_FAILURE(Publish(admission_path_, AdmissionList(uid_)));
    absl::StatusOr<std::unique_ptr<SiteAdmission>> admission =
        SiteAdmission::Open(admission_path_);
    ASSERT_TRUE(admission.ok()) << admission.status();
    absl::StatusOr<PeerBinding> b = PeerBinding::Create(Job(), job_ca_.cert_pem, fed_ca_.cert_pem,
                                                        *std::move(admission));
    ASSERT_TRUE(b.ok()) << b.status();
    binding_ = *std::move(b);
  }
  // A client certificate for `cn` from `ca`; a site's names its Site's uid.
  pki::KeyPair Cert(const pki::KeyPair& ca, const std::string& cn) const {
    std::optional<std::string> site = pki::SiteOf(cn);
    auto uid = site.has_value() ? uid_.find(*site) : uid_.end();
    return Client(ca, cn, uid == uid_.end() ? "" : uid->second);
  }
  // What a peer with a certificate for `cn` from `ca` speaks for.
  absl::StatusOr<std::string> As(const pki::KeyPair& ca, const std::string& cn) const {
    return binding_.TenantOf(cn, Cert(ca, cn).cert_pem);
  }

  const pki::KeyPair job_ca_ = Ca("job");
  const pki::KeyPair fed_ca_ = Ca("federation");
  // The sites the coordinator admits, with their Site objects' uids.
  std::map<std::string, std::string> uid_ = {
      {"st-mary-london", "uid-mary"}, {"charite", "uid-charite"}, {"karolinska", "uid-karo"}};
  std::string admission_path_;
  PeerBinding binding_;
};

TEST_F(PeerBindingTest, ASiteCertificateSpeaksForTheTenantThatNamesItsSite) {
  absl::StatusOr<std::string> t = As(fed_ca_, "site:st-mary-london");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "st-mary");
  t = As(fed_ca_, "site:charite");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "charite");
  // Tenants of this cluster keep their job-CA certificates.
  t = As(job_ca_, "tenant:local");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "local");
}

TEST_F(PeerBindingTest, ASiteNotInTheJobIsRefused) {
  absl::StatusOr<std::string> t = As(fed_ca_, "site:karolinska");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("not a tenant of this job"));
}

TEST_F(PeerBindingTest, AFederationCertificateIsOnlyEverASites) {
  // The federation CA issuing a tenant's (or the operator's) name does not
  // make its holder that tenant.
  for (const char* cn : {"tenant:local", "operator", "tenant:st-mary"}) {
    EXPECT_EQ(As(fed_ca_, cn).status().code(), absl::StatusCode::kPermissionDenied) << cn;
  }
}

TEST_F(PeerBindingTest, ATenantCertificateNeverSpeaksForASiteTenant) {
  // The job CA's certificate for the site tenant's name: the coordinator's
  // cluster cannot stand in for a site.
  absl::StatusOr<std::string> t = As(job_ca_, "tenant:st-mary");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("site 'st-mary-london'"));
  // Nor does a site's name on a job-CA certificate make it a site.
  EXPECT_EQ(As(job_ca_, "site:st-mary-london").status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(PeerBindingTest, WithoutTheFederationCaNoSiteIsAdmitted) {
  absl::StatusOr<PeerBinding> plain = PeerBinding::Create(Job(), job_ca_.cert_pem, "");
  ASSERT_TRUE(plain.ok()) << plain.status();
  const std::string cn = "site:st-mary-london";
  EXPECT_EQ(plain->TenantOf(cn, Cert(fed_ca_, cn).cert_pem).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(plain->TenantOf("tenant:local", "").ok());
}

TEST_F(PeerBindingTest, OnlyTheJobsSitesReadItsStatus) {
  auto may_read = [&](const pki::KeyPair& ca, const std::string& cn) {
    return binding_.MayReadStatus(cn, Cert(ca, cn).cert_pem);
  };
  EXPECT_TRUE(may_read(job_ca_, "operator").ok());
  EXPECT_TRUE(may_read(job_ca_, "tenant:local").ok());
  EXPECT_TRUE(may_read(fed_ca_, "site:charite").ok());
  // Every enrolled site can reach this aggregator; one the job does not
  // name learns nothing of it.
  EXPECT_EQ(may_read(fed_ca_, "site:karolinska").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(may_read(fed_ca_, "operator").code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(PeerBindingTest, ARevokedOrDeletedSiteIsRefusedAtItsNextCallAndAdmittedWhenBack) {
  ASSERT_TRUE(As(fed_ca_, "site:charite").ok());
  // The coordinator no longer lists charite (revoked, or its Site deleted).
  ASSERT_NO_FATAL_FAILURE(Publish(admission_path_, AdmissionList({{"st-mary-london", "uid-mary"}})));
  absl::StatusOr<std::string> t = As(fed_ca_, "site:charite");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("revoked or deleted"));
  EXPECT_EQ(binding_.MayReadStatus("site:charite", Cert(fed_ca_, "site:charite").cert_pem).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(As(fed_ca_, "site:st-mary-london").ok()) << "the other site stays";
  ASSERT_NO_FATAL_FAILURE(Publish(admission_path_, AdmissionList(uid_)));
  EXPECT_TRUE(As(fed_ca_, "site:charite").ok());
}

TEST_F(PeerBindingTest, ACertificateOfAnEarlierSiteOfTheSameNameIsRefused) {
  const std::string cn = "site:charite";
  for (const std::string& uid : {std::string("uid-charite-before"), std::string()}) {
    absl::StatusOr<std::string> t = binding_.TenantOf(cn, Client(fed_ca_, cn, uid).cert_pem);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kPermissionDenied) << uid;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr("earlier Site 'charite'"));
  }
}

TEST_F(PeerBindingTest, WhileTheListCannotBeReadNoSiteIsAdmitted) {
  ASSERT_NO_FATAL_FAILURE(Publish(admission_path_, "{\"sites\": [}"));
  EXPECT_EQ(As(fed_ca_, "site:charite").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(As(job_ca_, "tenant:local").ok()) << "this cluster's tenants do not depend on it";
  ASSERT_NO_FATAL_FAILURE(Publish(admission_path_, AdmissionList(uid_)));
  EXPECT_TRUE(As(fed_ca_, "site:charite").ok());
}

TEST(SiteAdmissionTest, ABadListIsRefusedWithThePathOfWhatIsWrong) {
  const std::string path = ::testing::TempDir() + "/bad_sites.json";
  ASSERT_NO_FATAL_FAILURE(Publish(path, R"({"sites": {"charite": {"uid": 7}}})"));
  absl::StatusOr<std::unique_ptr<SiteAdmission>> a = SiteAdmission::Open(path);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(a.status().message()), HasSubstr(path + ": sites.charite.uid"));
  EXPECT_THAT(std::string(ParseSiteAdmission(R"({"sites": {"Not A Site": {"uid": "u"}}})", "f")
                              .status()
                              .message()),
              HasSubstr("f: sites.Not A Site: not a Site name"));
  EXPECT_FALSE(ParseSiteAdmission("[]", "f").ok());
  EXPECT_FALSE(SiteAdmission::Open(path + ".missing").ok());
}

TEST(PeerBindingCreate, AFederationCaNeedsTheSitesAdmissionList) {
  const pki::KeyPair job_ca = Ca("job");
  const pki::KeyPair fed_ca = Ca("federation");
  absl::StatusOr<PeerBinding> b = PeerBinding::Create(Job(), job_ca.cert_pem, fed_ca.cert_pem);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("--site-admission"));
}

TEST(PeerBindingCreate, TheJobsOwnCaIsNotAFederationCa) {
  const pki::KeyPair job_ca = Ca("job");
  absl::StatusOr<PeerBinding> b = PeerBinding::Create(Job(), job_ca.cert_pem, job_ca.cert_pem);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PeerBinding::Create(Job(), job_ca.cert_pem, "not a certificate").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Over gRPC with mTLS: the aggregator trusts the job CA and, for client
// certificates, the federation CA; workers Join with their certificates.
class SiteCertificateOverGrpcTest : public PeerBindingTest {
 protected:
  void SetUp() override {
    PeerBindingTest::SetUp();
    absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("peer_binding", 4);
    ASSERT_TRUE(cp.ok()) << cp.status();
    cp_ = *std::move(cp);
    EngineOptions options;
    options.job = "job";
    options.tenants = {{"local", 1}, {"st-mary", 1}, {"charite", 1}};
    options.expected_clients = 3;
    engine_ = std::make_unique<RoundEngine>(options, cp_.checkpoint.get(), nullptr);
    service_ = std::make_unique<FederationService>("job", engine_.get(), nullptr,
                                                   absl::Seconds(2), 4,
                                                   /*require_identity=*/true, ServiceLimits{},
                                                   binding_);
    pki::CertRequest server;
    server.common_name = pki::kAggregatorCommonName;
    server.ip_addresses = {"127.0.0.1"};
    server.server = true;
    absl::StatusOr<pki::KeyPair> server_id = pki::Issue(job_ca_, server);
    ASSERT_TRUE(server_id.ok()) << server_id.status();
    pki::TlsMaterial tls;
    tls.ca_pem = job_ca_.cert_pem + "\n" + fed_ca_.cert_pem;  // as --tls-client-ca-extra does
    tls.cert_pem = server_id->cert_pem;
    tls.key_pem = server_id->key_pem;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", ServerCredentials(tls), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // Join as `tenant` with a certificate for `cn` from `ca`.
  grpc::Status Join(const pki::KeyPair& ca, const std::string& cn, const std::string& tenant) {
    const pki::KeyPair id = Cert(ca, cn);
    pki::TlsMaterial tls{job_ca_.cert_pem, id.cert_pem, id.key_pem, ""};
    auto stub = v1::Federation::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), ChannelCredentials(tls)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::JoinRequest req;
    req.set_job("job");
    req.set_tenant(tenant);
    req.set_replica(0);
    req.set_num_examples(10);
    v1::JoinResponse resp;
    return stub->Join(&ctx, req, &resp);
  }

  TestCheckpoint cp_;
  std::unique_ptr<RoundEngine> engine_;
  std::unique_ptr<FederationService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(SiteCertificateOverGrpcTest, ASiteJoinsAsItsTenantAndAsNoOther) {
  grpc::Status s = Join(fed_ca_, "site:st-mary-london", "st-mary");
  EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();

  s = Join(fed_ca_, "site:st-mary-london", "charite");  // another site's tenant
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("speaks for tenant 'st-mary', not 'charite'"));
  s = Join(fed_ca_, "site:st-mary-london", "local");  // this cluster's tenant
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();

  s = Join(job_ca_, "tenant:st-mary", "st-mary");  // the job CA cannot stand in for the site
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  s = Join(fed_ca_, "tenant:local", "local");  // the federation CA issues only sites
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();

  s = Join(job_ca_, "tenant:local", "local");
  EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
}

TEST_F(SiteCertificateOverGrpcTest, ASiteTheJobDoesNotNameCannotReadItsStatus) {
  auto status = [&](const pki::KeyPair& ca, const std::string& cn) {
    const pki::KeyPair id = Cert(ca, cn);
    pki::TlsMaterial tls{job_ca_.cert_pem, id.cert_pem, id.key_pem, ""};
    auto stub = v1::Federation::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), ChannelCredentials(tls)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::JobStatus resp;
    grpc::Status s = stub->GetStatus(&ctx, v1::StatusRequest(), &resp);
    return s.ok() ? resp.job() : absl::StrCat("denied ", s.error_code());
  };
  EXPECT_EQ(status(fed_ca_, "site:st-mary-london"), "job");
  EXPECT_EQ(status(job_ca_, "operator"), "job");
  EXPECT_EQ(status(fed_ca_, "site:karolinska"),
            absl::StrCat("denied ", grpc::StatusCode::PERMISSION_DENIED));
}

TEST_F(SiteCertificateOverGrpcTest, ACertificateFromAnUntrustedCaIsRefusedAtTheHandshake) {
  const pki::KeyPair other = Ca("other");
  const grpc::Status s = Join(other, "site:st-mary-london", "st-mary");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

}  // namespace
}  // namespace braid::aggregator
