// mTLS between workers and the aggregator: real braid-aggregator and
// braid-worker processes with certificates from one job's CA. A worker can
// speak only for the tenant its certificate names; a client without a
// certificate of this job's CA cannot even connect.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/pki.h"
#include "braid/worker/federation_client.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir("mtls");
    job_ = WriteTabularJob(dir_, "{rounds: 2, minClients: 3, roundTimeout: 2m}");
    absl::StatusOr<pki::KeyPair> ca = pki::MakeCa("tabular-demo", absl::Hours(1));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *ca;
    pki::CertRequest server;
    server.common_name = pki::kAggregatorCommonName;
    server.ip_addresses = {"127.0.0.1"};
    server.server = true;
    aggregator_tls_ = Files("aggregator", server);
    for (const char* t : {"st-mary", "charite", "karolinska"}) tenant_tls_[t] = Files(t, Client(pki::TenantCommonName(t)));
    operator_tls_ = Files("operator", Client(pki::kOperatorCommonName));

    const std::string model = dir_ + "/initial.safetensors";
    cli::Subprocess init = *cli::Subprocess::Start(
        {Binary("braid-worker"), "init", "--job=" + job_, "--out=" + model}, dir_ + "/init.log");
    ASSERT_EQ(init.Wait(absl::Minutes(2)), 0);
    absl::StatusOr<Aggregator> agg =
        StartAggregator(job_, dir_, model, 0,
                        {"--tls-ca=" + aggregator_tls_.ca, "--tls-cert=" + aggregator_tls_.cert,
                         "--tls-key=" + aggregator_tls_.key});
    ASSERT_TRUE(agg.ok()) << agg.status();
    aggregator_ = std::make_unique<Aggregator>(*std::move(agg));
  }

  static pki::CertRequest Client(const std::string& cn) {
    pki::CertRequest r;
    r.common_name = cn;
    r.client = true;
    return r;
  }

  pki::TlsFiles Files(const std::string& name, const pki::CertRequest& request) {
    absl::StatusOr<pki::KeyPair> id = pki::Issue(ca_, request);
    EXPECT_TRUE(id.ok()) << id.status();
    absl::StatusOr<pki::TlsFiles> files = pki::WriteTlsFiles(dir_ + "/tls", name, ca_, *id);
    EXPECT_TRUE(files.ok()) << files.status();
    return *files;
  }

  static std::optional<pki::TlsMaterial> Material(const pki::TlsFiles& files) {
    absl::StatusOr<pki::TlsMaterial> m = pki::ReadTlsFiles(files);
    EXPECT_TRUE(m.ok()) << m.status();
    return *m;
  }

  std::vector<std::string> WorkerArgs(const std::string& tenant, const pki::TlsFiles& tls) {
    return {Binary("braid-worker"), "run", "--job=" + job_, "--tenant=" + tenant, "--replica=0",
            "--aggregator=" + aggregator_->address(), "--tls-ca=" + tls.ca,
            "--tls-cert=" + tls.cert, "--tls-key=" + tls.key, "--give-up=20s"};
  }

  std::string dir_, job_;
  pki::KeyPair ca_;
  pki::TlsFiles aggregator_tls_, operator_tls_;
  std::map<std::string, pki::TlsFiles> tenant_tls_;
  std::unique_ptr<Aggregator> aggregator_;
};

TEST_F(MtlsTest, WorkersWithTheirTenantsCertificatesRunTheJob) {
  std::vector<cli::Subprocess> workers;
  for (const auto& [tenant, tls] : tenant_tls_) {
    workers.push_back(*cli::Subprocess::Start(WorkerArgs(tenant, tls), dir_ + "/" + tenant + ".log"));
  }
  for (cli::Subprocess& w : workers) EXPECT_EQ(w.Wait(absl::Minutes(3)), 0);
  worker::FederationClient status(aggregator_->address(), Material(operator_tls_));
  absl::StatusOr<v1::JobStatus> s = status.GetStatus();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase(), "Succeeded");
  EXPECT_EQ(s->round(), 2);
}

TEST_F(MtlsTest, AWorkerCannotSpeakForAnotherTenant) {
  // charite's certificate, claiming st-mary: the worker exits at Join.
  cli::Subprocess impostor = *cli::Subprocess::Start(
      WorkerArgs("st-mary", tenant_tls_["charite"]), dir_ + "/impostor.log");
  EXPECT_NE(impostor.Wait(absl::Minutes(1)), 0);
  const std::string log = ReadFile(dir_ + "/impostor.log");
  EXPECT_NE(log.find("speaks for tenant 'charite', not 'st-mary'"), std::string::npos) << log;

  // Nor can it act for a client id that st-mary's worker holds.
  worker::FederationClient mary(aggregator_->address(), Material(tenant_tls_["st-mary"]));
  absl::StatusOr<worker::JoinResult> joined = mary.Join("tabular-demo", "st-mary", 0, 100);
  ASSERT_TRUE(joined.ok()) << joined.status();
  worker::FederationClient charite(aggregator_->address(), Material(tenant_tls_["charite"]));
  const absl::Status heartbeat = charite.Heartbeat(joined->client_id);
  EXPECT_EQ(heartbeat.code(), absl::StatusCode::kPermissionDenied) << heartbeat;
  absl::StatusOr<worker::ReceivedTask> task =
      charite.GetTask(joined->client_id, absl::ZeroDuration());
  EXPECT_EQ(task.status().code(), absl::StatusCode::kPermissionDenied) << task.status();
  const absl::Status put = charite.PutEval(joined->client_id, 1, {0.1, 0.9, 10});
  EXPECT_EQ(put.code(), absl::StatusCode::kPermissionDenied) << put;
  // The operator's certificate reads the status but is no tenant.
  worker::FederationClient op(aggregator_->address(), Material(operator_tls_));
  EXPECT_TRUE(op.GetStatus().ok());
  EXPECT_EQ(op.Join("tabular-demo", "st-mary", 1, 100).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(MtlsTest, ClientsWithoutThisJobsCertificateCannotConnect) {
  worker::FederationClient plaintext(aggregator_->address());
  EXPECT_FALSE(plaintext.GetStatus(absl::Seconds(3)).ok());
  absl::StatusOr<pki::KeyPair> other_ca = pki::MakeCa("other", absl::Hours(1));
  ASSERT_TRUE(other_ca.ok());
  absl::StatusOr<pki::KeyPair> stranger = pki::Issue(*other_ca, Client(pki::TenantCommonName("st-mary")));
  ASSERT_TRUE(stranger.ok());
  pki::TlsMaterial m{ca_.cert_pem, stranger->cert_pem, stranger->key_pem};
  worker::FederationClient foreign(aggregator_->address(), m);
  const absl::StatusOr<worker::JoinResult> joined = foreign.Join("tabular-demo", "st-mary", 0, 100);
  EXPECT_FALSE(joined.ok()) << "a certificate from another CA was accepted";
}

}  // namespace
}  // namespace braid::e2e
