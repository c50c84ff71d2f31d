// Issue 18, "Transport": an upload or a weights download that breaks off
// mid-stream resumes from the last byte the aggregator acknowledged
// instead of starting over. Real braid-aggregator processes; the worker is
// the real braid-worker behind a proxy that cuts its connection half-way
// through its upload, or a test client on the wire contract that abandons
// its streams on purpose (for exact numbers and hostile resumes).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "braid/cli/subprocess.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/pki.h"
#include "braid/core/safetensors.h"
#include "braid/core/wire_limits.h"
#include "braid/v1/federation.grpc.pb.h"
#include "braid/worker/federation_client.h"
#include "tests/e2e/harness.h"
#include "tests/k8s/tcp_proxy.h"

namespace braid::e2e {
namespace {

std::string Sha256(const std::string& bytes) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), out, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(out), n);
}

// The aggregator's Prometheus samples (name{labels} -> value), or an empty
// map if /metrics cannot be read.
std::map<std::string, double> Metrics(int port) {
  std::map<std::string, double> out;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return out;
  }
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string response;
  char buf[8192];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
  ::close(fd);
  for (absl::string_view line : absl::StrSplit(response, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    double v = 0;
    if (!absl::SimpleAtod(line.substr(space + 1), &v)) continue;
    std::string name(line.substr(0, space));
    if (const size_t brace = name.find('{'); brace != std::string::npos) name.resize(brace);
    out[name] += v;
  }
  return out;
}

// Polls `pred` until it holds or `timeout` passes.
bool WaitFor(absl::Duration timeout, const std::function<bool()>& pred) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(50));  // polling a condition, with a deadline
  }
  return pred();
}

int ReadPort(const std::string& path) {
  int port = 0;
  WaitFor(absl::Seconds(10), [&] { return absl::SimpleAtoi(ReadFile(path), &port) && port > 0; });
  return port;
}

// A tabular job of one round that starts with one worker (st-mary), its MLP
// wide enough that its update spans `hidden`-dependent megabytes.
std::string WriteWideJob(const std::string& dir, int hidden) {
  const std::string path = WriteTabularJob(
      dir, "{name: fedavg, rounds: 1, minClients: 1, minTenants: 1, fractionFit: 1.0, "
           "roundTimeout: 2m}");
  std::string yaml = ReadFile(path);
  EXPECT_NE(yaml.find("hidden: [32, 32]"), std::string::npos);
  EXPECT_NE(yaml.find("localEpochs: 2"), std::string::npos);
  yaml = absl::StrReplaceAll(yaml, {{"hidden: [32, 32]", absl::StrCat("hidden: [", hidden, ", ",
                                                                     hidden, "]")},
                                    {"localEpochs: 2", "localEpochs: 1"}});
  WriteFile(path, yaml);
  return path;
}

// The real worker's upload is cut when half of it has gone through the
// proxy; the worker resumes, and the aggregator receives the update's bytes
// about once: at most its size plus one chunk.
TEST(Resume, ARealWorkersUploadCutAtHalfResumesAndSendsOnlyTheRest) {
  const std::string dir = FreshDir("resume-worker");
  const std::string job = WriteWideJob(dir, 1536);
  auto init = cli::RunForOutput(
      {Binary("braid-worker"), "init", "--job", job, "--out", dir + "/init.safetensors"},
      dir + "/init.log", absl::Seconds(60));
  ASSERT_TRUE(init.ok()) << init.status();
  absl::StatusOr<safetensors::Index> index = safetensors::ReadIndex(dir + "/init.safetensors");
  ASSERT_TRUE(index.ok()) << index.status();
  uint64_t model_bytes = 0;
  for (const safetensors::Entry& e : index->entries) model_bytes += e.nbytes;
  ASSERT_GT(model_bytes, 8 * kChunkDataBytes) << "the update should span several chunks";

  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", 0,
                             {"--expected-clients=1", "--metrics-listen=127.0.0.1:0",
                              "--metrics-port-file=" + dir + "/metrics.port"});
  ASSERT_TRUE(agg.ok()) << agg.status();
  const int metrics_port = ReadPort(dir + "/metrics.port");
  ASSERT_GT(metrics_port, 0);
  // What the worker sends before its upload (join, task requests,
  // heartbeats, flow control for the weights it downloads) is small: the
  // cut falls in the upload, about half-way.
  k8s::TcpProxy proxy("127.0.0.1", agg->port);
  proxy.CutAfter(model_bytes / 2, k8s::TcpProxy::Direction::kUp);
  auto worker = cli::Subprocess::Start({Binary("braid-worker"), "run", "--job", job, "--tenant",
                                        "st-mary", "--aggregator", absl::StrCat("127.0.0.1:", proxy.port())},
                                       dir + "/worker.log");
  ASSERT_TRUE(worker.ok()) << worker.status();

  auto done = WaitForStatus(agg->address(), absl::Seconds(90), [](const v1::JobStatus& s) {
    return s.phase() == "Succeeded" || s.phase() == "Failed";
  });
  ASSERT_TRUE(done.ok()) << done.status() << "\n" << ReadFile(dir + "/worker.log");
  ASSERT_EQ(done->phase(), "Succeeded") << done->message();
  ASSERT_EQ(done->rounds_size(), 1);
  EXPECT_EQ(done->rounds(0).participants(), 1);
  EXPECT_TRUE(proxy.cut()) << "the proxy never cut the connection";

  const std::map<std::string, double> m = Metrics(metrics_port);
  const double streamed = m.count("braid_aggregator_upload_stream_bytes_total")
                              ? m.at("braid_aggregator_upload_stream_bytes_total")
                              : -1;
  const double kept = m.count("braid_aggregator_upload_resumed_bytes_total")
                          ? m.at("braid_aggregator_upload_resumed_bytes_total")
                          : -1;
  EXPECT_EQ(m.count("braid_aggregator_uploads_resumed_total")
                ? m.at("braid_aggregator_uploads_resumed_total")
                : -1,
            1);
  // Every byte the aggregator read of the update, over both streams: the
  // update once, plus at most the chunk in flight at the cut.
  EXPECT_GE(streamed, static_cast<double>(model_bytes));
  EXPECT_LE(streamed, static_cast<double>(model_bytes + kChunkDataBytes));
  EXPECT_GT(kept, static_cast<double>(model_bytes) / 4) << "little of the first half was kept";
  const std::string log = ReadFile(dir + "/worker.log");
  EXPECT_NE(log.find("resumed at byte"), std::string::npos) << log;
  std::cout << "[ measured ] update " << model_bytes << " bytes; the aggregator read "
            << static_cast<uint64_t>(streamed) << " over both streams; "
            << static_cast<uint64_t>(kept) << " were kept from the cut stream, so "
            << static_cast<uint64_t>(streamed) - static_cast<uint64_t>(kept)
            << " went in the resumed one (the update restarted from zero: "
            << static_cast<uint64_t>(kept) + model_bytes << "); through the proxy: "
            << proxy.bytes_up() << " bytes from the worker in all\n";
  EXPECT_EQ(worker->Wait(absl::Seconds(30)), 0) << log;

  // The right result: the same job, seeded alike, with no cut gives the
  // same model byte for byte.
  const std::string ref = FreshDir("resume-worker-reference");
  const std::string ref_job = WriteWideJob(ref, 1536);
  auto ref_agg = StartAggregator(ref_job, ref, dir + "/init.safetensors", 0, {"--expected-clients=1"});
  ASSERT_TRUE(ref_agg.ok()) << ref_agg.status();
  auto ref_worker = cli::Subprocess::Start({Binary("braid-worker"), "run", "--job", ref_job,
                                            "--tenant", "st-mary", "--aggregator",
                                            ref_agg->address()},
                                           ref + "/worker.log");
  ASSERT_TRUE(ref_worker.ok()) << ref_worker.status();
  auto ref_done = WaitForStatus(ref_agg->address(), absl::Seconds(60), [](const v1::JobStatus& s) {
    return s.phase() == "Succeeded" || s.phase() == "Failed";
  });
  ASSERT_TRUE(ref_done.ok()) << ref_done.status();
  ASSERT_EQ(ref_done->phase(), "Succeeded") << ref_done->message();
  EXPECT_EQ(ref_worker->Wait(absl::Seconds(30)), 0);
  absl::StatusOr<safetensors::File> cut = safetensors::Read(dir + "/checkpoint/model.safetensors");
  absl::StatusOr<safetensors::File> whole = safetensors::Read(ref + "/checkpoint/model.safetensors");
  ASSERT_TRUE(cut.ok() && whole.ok());
  ASSERT_EQ(cut->tensors.size(), whole->tensors.size());
  for (size_t i = 0; i < cut->tensors.size(); ++i) {
    EXPECT_EQ(cut->tensors[i].name, whole->tensors[i].name);
    EXPECT_TRUE(cut->tensors[i].data == whole->tensors[i].data)
        << "tensor " << cut->tensors[i].name << " differs from the run without a cut";
  }
  absl::StatusOr<safetensors::File> initial = safetensors::Read(dir + "/init.safetensors");
  ASSERT_TRUE(initial.ok());
  EXPECT_FALSE(cut->tensors[0].data == initial->tensors[0].data) << "the round changed nothing";
}

// The real worker's weights download is cut half-way: it asks for the rest
// by digest and offset, checks the whole, trains, and the job succeeds.
TEST(Resume, ARealWorkersWeightsDownloadCutAtHalfResumes) {
  const std::string dir = FreshDir("resume-download");
  const std::string job = WriteWideJob(dir, 1536);
  auto init = cli::RunForOutput(
      {Binary("braid-worker"), "init", "--job", job, "--out", dir + "/init.safetensors"},
      dir + "/init.log", absl::Seconds(60));
  ASSERT_TRUE(init.ok()) << init.status();
  absl::StatusOr<safetensors::Index> index = safetensors::ReadIndex(dir + "/init.safetensors");
  ASSERT_TRUE(index.ok()) << index.status();
  uint64_t model_bytes = 0;
  for (const safetensors::Entry& e : index->entries) model_bytes += e.nbytes;
  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", 0, {"--expected-clients=1"});
  ASSERT_TRUE(agg.ok()) << agg.status();
  k8s::TcpProxy proxy("127.0.0.1", agg->port);
  proxy.CutAfter(model_bytes / 2, k8s::TcpProxy::Direction::kDown);
  auto worker = cli::Subprocess::Start({Binary("braid-worker"), "run", "--job", job, "--tenant",
                                        "st-mary", "--aggregator", absl::StrCat("127.0.0.1:", proxy.port())},
                                       dir + "/worker.log");
  ASSERT_TRUE(worker.ok()) << worker.status();
  auto done = WaitForStatus(agg->address(), absl::Seconds(90), [](const v1::JobStatus& s) {
    return s.phase() == "Succeeded" || s.phase() == "Failed";
  });
  ASSERT_TRUE(done.ok()) << done.status() << "\n" << ReadFile(dir + "/worker.log");
  ASSERT_EQ(done->phase(), "Succeeded") << done->message();
  EXPECT_EQ(done->rounds(0).participants(), 1);
  EXPECT_TRUE(proxy.cut());
  const std::string log = ReadFile(dir + "/worker.log");
  EXPECT_NE(log.find("weights download of round 1 resumed at byte"), std::string::npos) << log;
  EXPECT_EQ(log.find("from the start"), std::string::npos) << log;
  // Two downloads (FIT, EVALUATE) and what was in flight at the cut: far
  // less than a download started over would add.
  std::cout << "[ measured ] weights " << model_bytes << " bytes; through the proxy to the worker: "
            << proxy.bytes_down() << " bytes for two downloads, one cut at about half\n";
  EXPECT_LT(proxy.bytes_down(), 2 * model_bytes + model_bytes / 4)
      << "the cut download was sent again from the start";
  EXPECT_EQ(worker->Wait(absl::Seconds(30)), 0) << log;
}

// A test client on the wire contract, against a real aggregator: two
// clients of a two-client round over a 4.5 MiB model of ones.
class ResumeWire : public ::testing::Test {
 protected:
  static constexpr int kFloats = (9 << 20) / 8;  // 4.5 MiB of float32
  static constexpr int64_t kBytes = int64_t{kFloats} * 4;

  void SetUp() override { Begin(/*mtls=*/false); }

  // Starts the aggregator (with `mtls`: serving mTLS, each tenant with its
  // own certificate from the job's CA), joins st-mary and charite and
  // gives them their FIT tasks.
  void Begin(bool mtls) {
    dir_ = FreshDir(mtls ? "resume-wire-mtls" : "resume-wire");
    const std::string job = WriteTabularJob(
        dir_, "{name: fedavg, rounds: 1, minClients: 2, fractionFit: 1.0, roundTimeout: 2m}");
    ASSERT_TRUE(safetensors::Write(dir_ + "/init.safetensors",
                                   {Tensor::F32("w", {kFloats}, std::vector<float>(kFloats, 1))})
                    .ok());
    std::vector<std::string> flags = {"--expected-clients=2", "--heartbeat-timeout=10m",
                                      // A partial upload keeps its slot (for its
                                      // grace): the other client uses the second.
                                      "--upload-slots=2", "--metrics-listen=127.0.0.1:0",
                                      "--metrics-port-file=" + dir_ + "/metrics.port"};
    std::vector<std::optional<pki::TlsMaterial>> tls(2);
    if (mtls) {
      absl::StatusOr<pki::KeyPair> ca = pki::MakeCa("tabular-demo", absl::Hours(1));
      ASSERT_TRUE(ca.ok()) << ca.status();
      pki::CertRequest server;
      server.common_name = pki::kAggregatorCommonName;
      server.ip_addresses = {"127.0.0.1"};
      server.server = true;
      const pki::TlsFiles agg_files = Files(*ca, "aggregator", server);
      flags.insert(flags.end(), {"--tls-ca=" + agg_files.ca, "--tls-cert=" + agg_files.cert,
                                 "--tls-key=" + agg_files.key});
      const char* tenants[] = {"st-mary", "charite"};
      for (int i = 0; i < 2; ++i) {
        pki::CertRequest client;
        client.common_name = pki::TenantCommonName(tenants[i]);
        client.client = true;
        absl::StatusOr<pki::TlsMaterial> m = pki::ReadTlsFiles(Files(*ca, tenants[i], client));
        ASSERT_TRUE(m.ok()) << m.status();
        tls[i] = *m;
      }
    }
    auto agg = StartAggregator(job, dir_, dir_ + "/init.safetensors", 0, flags);
    ASSERT_TRUE(agg.ok()) << agg.status();
    agg_ = std::make_unique<Aggregator>(*std::move(agg));
    metrics_port_ = ReadPort(dir_ + "/metrics.port");
    const char* tenants[] = {"st-mary", "charite"};
    for (int i = 0; i < 2; ++i) {
      clients_.push_back(std::make_unique<worker::FederationClient>(agg_->address(), tls[i]));
      grpc::ChannelArguments args;
      if (tls[i].has_value() && !tls[i]->server_name.empty()) {
        args.SetSslTargetNameOverride(tls[i]->server_name);
      }
      stubs_.push_back(v1::Federation::NewStub(
          grpc::CreateCustomChannel(agg_->address(), ChannelCredentials(tls[i]), args)));
      absl::StatusOr<worker::JoinResult> j = clients_[i]->Join("tabular-demo", tenants[i], 0, 100);
      ASSERT_TRUE(j.ok()) << j.status();
      ids_.push_back(j->client_id);
    }
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<worker::ReceivedTask> task = clients_[i]->GetTask(ids_[i], absl::Seconds(20));
      ASSERT_TRUE(task.ok()) << task.status();
      ASSERT_EQ(task->header.kind(), v1::TASK_KIND_FIT);
      ASSERT_EQ(task->header.weights_digest().size(), 32u);
    }
    client_ = clients_[0].get();
    stub_ = stubs_[0].get();
  }

  pki::TlsFiles Files(const pki::KeyPair& ca, const std::string& name,
                      const pki::CertRequest& request) {
    absl::StatusOr<pki::KeyPair> id = pki::Issue(ca, request);
    EXPECT_TRUE(id.ok()) << id.status();
    absl::StatusOr<pki::TlsFiles> files = pki::WriteTlsFiles(dir_ + "/tls", name, ca, *id);
    EXPECT_TRUE(files.ok()) << files.status();
    return *files;
  }
  void TearDown() override {
    if (agg_) agg_->proc.Signal(SIGTERM);
  }

  static std::string Update(float value) {
    std::vector<float> v(kFloats, value);
    return std::string(reinterpret_cast<const char*>(v.data()), kBytes);
  }

  // One PutUpdate call of client `i`: the header (with `digest`), then
  // `bytes` from the offset the aggregator names, in 1 MiB chunks, at most
  // `limit` bytes of them; if `abandon`, cancelled once the aggregator has
  // read what was sent. Returns the call's status; *offset is where the
  // aggregator said to start (-1: no metadata) and *sent the bytes sent.
  // The call goes over client `via`'s channel (its certificate under
  // mTLS; -1: client i's).
  grpc::Status Put(int i, const std::string& digest, const std::string& bytes, bool abandon,
                   uint64_t limit, int64_t* offset, uint64_t* sent, int via = -1) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::UpdateAck ack;
    auto writer = stubs_[via < 0 ? i : via]->PutUpdate(&ctx, &ack);
    v1::UpdateMessage header;
    v1::UpdateHeader* h = header.mutable_header();
    h->set_client_id(ids_[i]);
    h->set_round(1);
    h->set_kind(v1::TASK_KIND_FIT);
    h->set_encoding(v1::ENCODING_FP32);
    h->set_total_bytes(kBytes);
    h->set_num_examples(100);
    h->set_digest(digest);
    *offset = -1;
    *sent = 0;
    const double read_before = Metric("braid_aggregator_upload_stream_bytes_total");
    if (!writer->Write(header)) return writer->Finish();
    writer->WaitForInitialMetadata();
    const auto& md = ctx.GetServerInitialMetadata();
    auto it = md.find("braid-upload-offset");
    if (it == md.end()) return writer->Finish();
    EXPECT_TRUE(absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), offset));
    for (uint64_t at = static_cast<uint64_t>(*offset); at < bytes.size() && *sent < limit;
         at += kChunkDataBytes) {
      v1::UpdateMessage chunk;
      chunk.mutable_chunk()->set_offset(static_cast<int64_t>(at));
      chunk.mutable_chunk()->set_data(bytes.substr(at, kChunkDataBytes));
      if (!writer->Write(chunk)) break;
      *sent += chunk.chunk().data().size();
    }
    if (abandon) {
      // Abandoned, not ended: the aggregator sees the call cancelled, as
      // when the connection drops (after it has read what was sent, so
      // the numbers below are exact).
      EXPECT_TRUE(WaitFor(absl::Seconds(20), [&] {
        return Metric("braid_aggregator_upload_stream_bytes_total") >=
               read_before + static_cast<double>(*sent);
      }));
      ctx.TryCancel();
      return writer->Finish();
    }
    writer->WritesDone();
    return writer->Finish();
  }

  double Metric(const std::string& name) {
    const std::map<std::string, double> m = Metrics(metrics_port_);
    return m.count(name) ? m.at(name) : -1;
  }
  bool AwaitPartials(int n) {
    return WaitFor(absl::Seconds(20),
                   [&] { return Metric("braid_aggregator_partial_uploads") == n; });
  }

  std::string dir_;
  std::unique_ptr<Aggregator> agg_;
  int metrics_port_ = 0;
  std::vector<std::unique_ptr<worker::FederationClient>> clients_;
  std::vector<std::unique_ptr<v1::Federation::Stub>> stubs_;
  worker::FederationClient* client_ = nullptr;  // clients_[0]
  v1::Federation::Stub* stub_ = nullptr;        // stubs_[0]
  std::vector<std::string> ids_;
};

// Cut at half, resumed: the client sends the update's bytes once in all,
// others naming its digest get none of them, a resume whose rest does not
// match the digest is refused with nothing folded, and the round's result
// is exactly the mean of the two updates.
TEST_F(ResumeWire, AnUploadAbandonedAtHalfResumesAndOnlyItsOwnerCanResumeIt) {
  const std::string a = Update(3), b = Update(5);
  const std::string digest_a = Sha256(a);
  int64_t offset = 0;
  uint64_t sent = 0, sent_total = 0;
  grpc::Status s = Put(0, digest_a, a, /*abandon=*/true, kBytes / 2, &offset, &sent);
  EXPECT_EQ(offset, 0);
  sent_total += sent;
  ASSERT_TRUE(AwaitPartials(1)) << ReadFile(dir_ + "/aggregator.log");

  // Another client naming st-mary's digest starts at 0: it gets nothing of
  // st-mary's bytes, which stay kept.
  s = Put(1, digest_a, a, /*abandon=*/true, /*limit=*/0, &offset, &sent);
  EXPECT_EQ(offset, 0);
  EXPECT_EQ(Metric("braid_aggregator_partial_uploads"), 1);

  // st-mary resumes where its bytes end and sends only the rest.
  s = Put(0, digest_a, a, /*abandon=*/false, kBytes, &offset, &sent);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(offset, static_cast<int64_t>(sent_total));
  sent_total += sent;
  EXPECT_EQ(sent_total, static_cast<uint64_t>(kBytes)) << "bytes sent again";
  EXPECT_EQ(Metric("braid_aggregator_uploads_resumed_total"), 1);

  // charite: cut at half, then a rest of another update under the same
  // digest: refused before the fold.
  const std::string digest_b = Sha256(b);
  s = Put(1, digest_b, b, /*abandon=*/true, kBytes / 2, &offset, &sent);
  ASSERT_TRUE(AwaitPartials(1));
  s = Put(1, digest_b, a, /*abandon=*/false, kBytes, &offset, &sent);
  EXPECT_GT(offset, 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("not the digest its header announced"), std::string::npos)
      << s.error_message();
  // A resume under another digest starts over; charite's real update, whole,
  // is taken.
  ASSERT_TRUE(clients_[1]->PutFit(ids_[1], 1, {Tensor::F32("w", {kFloats}, std::vector<float>(kFloats, 5))},
                              100, {})
                  .ok());
  EXPECT_EQ(clients_[1]->last_upload().resumed_at, 0);
  // Both evaluate the new global (downloaded whole, digest checked).
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<worker::ReceivedTask> eval = clients_[i]->GetTask(ids_[i], absl::Seconds(20));
    ASSERT_TRUE(eval.ok()) << eval.status();
    ASSERT_EQ(eval->header.kind(), v1::TASK_KIND_EVALUATE);
    ASSERT_TRUE(clients_[i]->PutEval(ids_[i], 1, {0.5, 0.5, 10}).ok());
  }

  auto done = WaitForStatus(agg_->address(), absl::Seconds(60), [](const v1::JobStatus& st) {
    return st.phase() == "Succeeded" || st.phase() == "Failed";
  });
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->phase(), "Succeeded") << done->message();
  EXPECT_EQ(done->rounds(0).participants(), 2);
  absl::StatusOr<safetensors::File> model = safetensors::Read(dir_ + "/checkpoint/model.safetensors");
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> w(kFloats);
  std::memcpy(w.data(), model->tensors.at(0).data.data(), kBytes);
  EXPECT_EQ(w, std::vector<float>(kFloats, 1 + (3 + 5) / 2.0f));
}

// A weights download that broke off asks for the rest by digest and
// offset; with a stale digest it gets the weights from the start.
TEST_F(ResumeWire, AWeightsDownloadResumesFromTheBytesItHas) {
  auto read_all = [&](const std::string& digest, int64_t from, v1::TaskHeader* header,
                      std::string* data, int max_chunks) {
    grpc::ClientContext ctx;
    v1::TaskRequest req;
    req.set_client_id(ids_[0]);
    req.set_resume_digest(digest);
    req.set_resume_offset(from);
    auto reader = stub_->GetTask(&ctx, req);
    v1::TaskMessage msg;
    if (!reader->Read(&msg) || !msg.has_header()) return reader->Finish();
    *header = msg.header();
    for (int n = 0; n < max_chunks; ++n) {
      if (!reader->Read(&msg)) return reader->Finish();
      EXPECT_EQ(msg.chunk().offset(), header->offset() + static_cast<int64_t>(data->size()));
      data->append(msg.chunk().data());
    }
    ctx.TryCancel();  // abandoned mid-stream
    return reader->Finish();
  };
  v1::TaskHeader h;
  std::string first;
  (void)read_all("", 0, &h, &first, /*max_chunks=*/2);  // then the stream is abandoned
  ASSERT_EQ(first.size(), 2 * kChunkDataBytes);
  EXPECT_EQ(h.offset(), 0);
  const std::string digest = h.weights_digest();
  std::string rest;
  ASSERT_TRUE(read_all(digest, static_cast<int64_t>(first.size()), &h, &rest, 1000).ok());
  EXPECT_EQ(h.offset(), static_cast<int64_t>(first.size()));
  EXPECT_EQ(first.size() + rest.size(), static_cast<size_t>(kBytes));
  EXPECT_EQ(Sha256(first + rest), digest);
  // Weights it does not have (another digest): from the start.
  std::string all;
  ASSERT_TRUE(read_all(Sha256("other weights"), static_cast<int64_t>(first.size()), &h, &all,
                       1000).ok());
  EXPECT_EQ(h.offset(), 0);
  EXPECT_EQ(all.size(), static_cast<size_t>(kBytes));
  // An offset past the weights is refused.
  std::string none;
  grpc::Status bad = read_all(digest, kBytes + 1, &h, &none, 1);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.error_message();
}

// Under mTLS the partial upload is bound to the client's tenant: charite's
// certificate naming st-mary's client id and digest is refused before any
// byte is offered, and st-mary still resumes.
class ResumeWireMtls : public ResumeWire {
 protected:
  void SetUp() override { Begin(/*mtls=*/true); }
};

TEST_F(ResumeWireMtls, AnotherTenantsCertificateCannotResumeTheUpload) {
  const std::string a = Update(3);
  const std::string digest = Sha256(a);
  int64_t offset = 0;
  uint64_t sent = 0, first = 0;
  (void)Put(0, digest, a, /*abandon=*/true, kBytes / 2, &offset, &first);
  ASSERT_TRUE(AwaitPartials(1)) << ReadFile(dir_ + "/aggregator.log");
  grpc::Status s = Put(0, digest, a, /*abandon=*/false, kBytes, &offset, &sent, /*via=*/1);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_EQ(offset, -1) << "the impostor was told an offset";
  EXPECT_EQ(sent, 0u);
  EXPECT_EQ(Metric("braid_aggregator_partial_uploads"), 1);
  s = Put(0, digest, a, /*abandon=*/false, kBytes, &offset, &sent);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(offset, static_cast<int64_t>(first));
  EXPECT_EQ(first + sent, static_cast<uint64_t>(kBytes));
}

}  // namespace
}  // namespace braid::e2e
