// Whole rounds of secure aggregation, clients and server in one process,
// every message encoded and decoded on the way as it would travel.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "braid/core/secagg/client.h"
#include "braid/core/secagg/quantize.h"
#include "braid/core/secagg/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_format.h"

namespace braid::secagg {
namespace {

using ::testing::HasSubstr;

struct Dropouts {
  std::set<ClientId> after_advertise;  // advertise keys, then vanish
  std::set<ClientId> after_share;      // share keys, then vanish
  std::set<ClientId> after_mask;       // send a masked input, then vanish
};

RoundConfig MakeConfig(uint32_t n, uint32_t t, uint64_t m, uint32_t k = 0) {
  RoundConfig c;
  c.round_id = 42;
  for (uint32_t i = 1; i <= n; ++i) c.clients.push_back(i * 3 + 1);  // ids need not be 1..n
  c.threshold = t;
  c.neighbours = k;
  c.graph_seed = 7;
  c.vector_length = m;
  c.quantization.clip = 2.0;
  c.quantization.max_summands = n;
  return c;
}

std::map<ClientId, std::vector<float>> RandomInputs(const RoundConfig& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.5f, 2.5f);  // some values get clipped
  std::map<ClientId, std::vector<float>> inputs;
  for (ClientId id : c.clients) {
    auto& v = inputs[id];
    v.resize(c.vector_length);
    for (float& x : v) x = dist(rng);
  }
  return inputs;
}

// Runs a round; messages go through Encode/Decode as on the wire.
absl::StatusOr<AggregateResult> RunRound(const RoundConfig& config,
                                         const std::map<ClientId, std::vector<float>>& inputs,
                                         const Dropouts& drop,
                                         const ServerOptions& options = {}) {
  auto server_or = Server::Create(config, options);
  if (!server_or.ok()) return server_or.status();
  Server& server = **server_or;
  std::map<ClientId, std::unique_ptr<Client>> clients;
  for (ClientId id : config.clients) {
    auto c = Client::Create(config, id);
    if (!c.ok()) return c.status();
    clients[id] = std::move(*c);
  }
  for (auto& [id, c] : clients) {
    auto keys = c->AdvertiseKeys();
    if (!keys.ok()) return keys.status();
    auto decoded = DecodePublicKeys(Encode(*keys));
    if (!decoded.ok()) return decoded.status();
    if (absl::Status s = server.AddPublicKeys(*decoded); !s.ok()) return s;
  }
  auto dirs = server.CloseAdvertiseKeys();
  if (!dirs.ok()) return dirs.status();
  for (auto& [id, dir] : *dirs) {
    if (drop.after_advertise.count(id)) continue;
    auto shares = clients[id]->ShareKeys(*DecodeKeyDirectory(Encode(dir)));
    if (!shares.ok()) return shares.status();
    if (absl::Status s = server.AddEncryptedShares(*DecodeEncryptedShares(Encode(*shares)));
        !s.ok()) {
      return s;
    }
  }
  auto fwd = server.CloseShareKeys();
  if (!fwd.ok()) return fwd.status();
  for (auto& [id, f] : *fwd) {
    if (drop.after_share.count(id)) continue;
    auto masked = clients[id]->MaskInput(*DecodeForwardedShares(Encode(f)), inputs.at(id));
    if (!masked.ok()) return masked.status();
    if (absl::Status s = server.AddMaskedInput(*DecodeMaskedInput(Encode(*masked))); !s.ok()) {
      return s;
    }
  }
  auto request = server.CloseMaskedInput();
  if (!request.ok()) return request.status();
  for (ClientId id : request->survivors) {
    if (drop.after_mask.count(id)) continue;
    auto response = clients[id]->Unmask(*DecodeUnmaskRequest(Encode(*request)));
    if (!response.ok()) return response.status();
    if (absl::Status s = server.AddUnmaskResponse(*DecodeUnmaskResponse(Encode(*response)));
        !s.ok()) {
      return s;
    }
  }
  return server.Finish();
}

// Asserts the decoded sum is the plaintext sum of the survivors' clipped
// inputs within the documented bound k * step / 2 + |sum| * 2^-24.
void ExpectSumOfSurvivors(const RoundConfig& config,
                          const std::map<ClientId, std::vector<float>>& inputs,
                          const AggregateResult& result, const std::set<ClientId>& survivors) {
  ASSERT_EQ(std::set<ClientId>(result.contributors.begin(), result.contributors.end()), survivors);
  ASSERT_EQ(result.sum.size(), config.vector_length);
  const double c = config.quantization.clip;
  const double step = QuantizationStep(config.quantization);
  const size_t k = survivors.size();
  for (size_t i = 0; i < config.vector_length; ++i) {
    double want = 0;
    for (ClientId id : survivors) want += std::clamp<double>(inputs.at(id)[i], -c, c);
    const double bound = k * step / 2 + std::fabs(want) * 0x1.0p-24 + 1e-12;
    ASSERT_LE(std::fabs(result.sum[i] - want), bound) << "element " << i;
  }
}

std::set<ClientId> AllBut(const RoundConfig& c, const std::set<ClientId>& gone) {
  std::set<ClientId> out;
  for (ClientId id : c.clients) {
    if (!gone.count(id)) out.insert(id);
  }
  return out;
}

TEST(SecAggRound, SumEqualsPlaintextSumWithinQuantizationBound) {
  for (auto [n, m] : std::vector<std::pair<uint32_t, uint64_t>>{{2, 1}, {3, 100}, {10, 1000},
                                                                 {25, 4097}}) {
    SCOPED_TRACE(absl::StrFormat("n=%u m=%u", n, m));
    const RoundConfig config = MakeConfig(n, n / 2 + 1, m);
    const auto inputs = RandomInputs(config, n);
    auto result = RunRound(config, inputs, {});
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectSumOfSurvivors(config, inputs, *result, AllBut(config, {}));
  }
}

TEST(SecAggRound, SurvivesDropoutAtEachStage) {
  const RoundConfig config = MakeConfig(10, 5, 513);
  const auto inputs = RandomInputs(config, 1);
  const ClientId a = config.clients[1], b = config.clients[4], c = config.clients[7];
  {
    SCOPED_TRACE("two drop after AdvertiseKeys");
    auto r = RunRound(config, inputs, {{a, b}, {}, {}});
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectSumOfSurvivors(config, inputs, *r, AllBut(config, {a, b}));
  }
  {
    SCOPED_TRACE("two drop after ShareKeys (their masks must be rebuilt)");
    auto r = RunRound(config, inputs, {{}, {a, b}, {}});
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectSumOfSurvivors(config, inputs, *r, AllBut(config, {a, b}));
  }
  {
    SCOPED_TRACE("two drop after MaskedInput: their inputs still count");
    auto r = RunRound(config, inputs, {{}, {}, {a, b}});
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectSumOfSurvivors(config, inputs, *r, AllBut(config, {}));
  }
  {
    SCOPED_TRACE("one at each stage");
    auto r = RunRound(config, inputs, {{a}, {b}, {c}});
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectSumOfSurvivors(config, inputs, *r, AllBut(config, {a, b}));
  }
}

TEST(SecAggRound, FailsWithAbortedWhenFewerThanThresholdRemain) {
  const RoundConfig config = MakeConfig(6, 4, 16);
  const auto inputs = RandomInputs(config, 2);
  const auto& ids = config.clients;
  auto r = RunRound(config, inputs, {{ids[0], ids[1], ids[2]}, {}, {}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(r.status().message(), HasSubstr("failed at ShareKeys: only 3 of 6 clients remain, "
                                              "threshold is 4"));
  r = RunRound(config, inputs, {{}, {ids[0], ids[1], ids[2]}, {}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(r.status().message(), HasSubstr("failed at MaskedInput: only 3 of 6"));
  // Four sent inputs, but only three answer the unmasking: nothing can be rebuilt.
  r = RunRound(config, inputs, {{}, {ids[0], ids[1]}, {ids[2]}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(r.status().message(), HasSubstr("failed at Unmasking: only 3 holders revealed"));
  // Exactly the threshold left: completes.
  r = RunRound(config, inputs, {{}, {ids[0], ids[1]}, {}});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSumOfSurvivors(config, inputs, *r, AllBut(config, {ids[0], ids[1]}));
}

TEST(SecAggRound, ServerUnmaskingThreadsGiveTheSameSum) {
  // 3 threads split 3 x 4096 + 1 elements into ranges that start mid-stream.
  const RoundConfig config = MakeConfig(8, 5, 3 * 4096 + 1);
  const auto inputs = RandomInputs(config, 4);
  const std::set<ClientId> gone = {config.clients[2], config.clients[5]};
  ServerOptions options;
  options.unmask_threads = 3;
  auto r = RunRound(config, inputs, {{}, gone, {}}, options);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSumOfSurvivors(config, inputs, *r, AllBut(config, gone));
  options.unmask_threads = 0;
  EXPECT_EQ(Server::Create(config, options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SecAggRound, GraphModeGivesTheSameSum) {
  // SecAgg+: 30 clients, 8 neighbours each, threshold 5 of 9 holders.
  const RoundConfig complete = MakeConfig(30, 16, 300);
  const RoundConfig graph = MakeConfig(30, 5, 300, /*k=*/8);
  const auto inputs = RandomInputs(graph, 3);
  auto full = RunRound(complete, inputs, {});
  auto sparse = RunRound(graph, inputs, {});
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_TRUE(sparse.ok()) << sparse.status();
  ExpectSumOfSurvivors(graph, inputs, *sparse, AllBut(graph, {}));
  for (size_t i = 0; i < full->sum.size(); ++i) {
    EXPECT_NEAR(full->sum[i], sparse->sum[i], 30 * QuantizationStep(graph.quantization));
  }
  // And with clients dropping after ShareKeys (their neighbours' masks rebuilt).
  const std::set<ClientId> gone = {graph.clients[3], graph.clients[17], graph.clients[22]};
  auto dropped = RunRound(graph, inputs, {{}, gone, {}});
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  ExpectSumOfSurvivors(graph, inputs, *dropped, AllBut(graph, gone));
}

TEST(SecAggGraph, IsKRegularAndSymmetric) {
  const RoundConfig config = MakeConfig(30, 5, 1, 8);
  NeighbourGraph g(config);
  for (ClientId u : config.clients) {
    ASSERT_EQ(g.Neighbours(u).size(), 8u);
    for (ClientId v : g.Neighbours(u)) {
      EXPECT_NE(u, v);
      EXPECT_TRUE(g.AreNeighbours(v, u));
    }
  }
}

// A server that deviates from the protocol, against honest clients.
class MaliciousServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = MakeConfig(5, 3, 8);
    server_ = *Server::Create(config_);
    for (ClientId id : config_.clients) clients_[id] = *Client::Create(config_, id);
    for (auto& [id, c] : clients_) ASSERT_TRUE(server_->AddPublicKeys(*c->AdvertiseKeys()).ok());
    auto dirs = *server_->CloseAdvertiseKeys();
    for (auto& [id, dir] : dirs) {
      ASSERT_TRUE(server_->AddEncryptedShares(*clients_[id]->ShareKeys(dir)).ok());
    }
    auto fwd = *server_->CloseShareKeys();
    std::vector<float> update(8, 0.5f);
    for (auto& [id, f] : fwd) {
      ASSERT_TRUE(server_->AddMaskedInput(*clients_[id]->MaskInput(f, update)).ok());
    }
    request_ = *server_->CloseMaskedInput();
  }
  RoundConfig config_;
  UnmaskRequest request_;
  std::unique_ptr<Server> server_;
  std::map<ClientId, std::unique_ptr<Client>> clients_;
};

TEST_F(MaliciousServerTest, RefusesToRevealBothSharesOfOneClient) {
  const ClientId victim = config_.clients[0];
  UnmaskRequest both;
  both.survivors = config_.clients;
  both.dropped = {victim};
  for (ClientId id : config_.clients) {
    if (id == victim) continue;
    auto r = clients_[id]->Unmask(both);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(r.status().message(),
                HasSubstr(absl::StrFormat("both the mask-seed share and the key share of client %u",
                                          victim)));
  }
}

TEST_F(MaliciousServerTest, RefusesASecondRequestThatFlipsASurvivorToDropped) {
  const ClientId victim = config_.clients[0], asked = config_.clients[1];
  UnmaskRequest honest;
  honest.survivors = config_.clients;
  auto first = clients_[asked]->Unmask(honest);
  ASSERT_TRUE(first.ok()) << first.status();
  bool revealed_b = false;
  for (const auto& s : first->self_mask_shares) revealed_b |= s.owner == victim;
  EXPECT_TRUE(revealed_b);
  UnmaskRequest flipped;
  for (ClientId id : config_.clients) {
    (id == victim ? flipped.dropped : flipped.survivors).push_back(id);
  }
  auto second = clients_[asked]->Unmask(flipped);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(second.status().message(), HasSubstr("second unmask request"));
}

TEST_F(MaliciousServerTest, HonestServerRefusesAResponseRepeatingAShare) {
  const ClientId id = config_.clients[0];
  auto response = clients_[id]->Unmask(request_);
  ASSERT_TRUE(response.ok()) << response.status();
  UnmaskResponse doubled = *response;
  doubled.self_mask_shares.push_back(doubled.self_mask_shares.back());
  EXPECT_EQ(server_->AddUnmaskResponse(doubled).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(server_->AddUnmaskResponse(*response).ok());
}

TEST_F(MaliciousServerTest, RefusesWhenToldItDropped) {
  const ClientId me = config_.clients[2];
  UnmaskRequest lie;
  for (ClientId id : config_.clients) (id == me ? lie.dropped : lie.survivors).push_back(id);
  auto r = clients_[me]->Unmask(lie);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(SecAggClient, RejectsTamperedShares) {
  const RoundConfig config = MakeConfig(3, 2, 4);
  auto server = *Server::Create(config);
  std::map<ClientId, std::unique_ptr<Client>> clients;
  for (ClientId id : config.clients) clients[id] = *Client::Create(config, id);
  for (auto& [id, c] : clients) ASSERT_TRUE(server->AddPublicKeys(*c->AdvertiseKeys()).ok());
  auto dirs = *server->CloseAdvertiseKeys();
  for (auto& [id, dir] : dirs) {
    ASSERT_TRUE(server->AddEncryptedShares(*clients[id]->ShareKeys(dir)).ok());
  }
  auto fwd = *server->CloseShareKeys();
  ForwardedShares& f = fwd.begin()->second;
  f.shares[0].ciphertext[30] ^= 1;
  auto r = clients[f.to]->MaskInput(f, std::vector<float>(4, 0));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(), HasSubstr("failed authentication"));
}

TEST(SecAggClient, EnforcesStageOrderAndInputLength) {
  const RoundConfig config = MakeConfig(3, 2, 4);
  auto client = *Client::Create(config, config.clients[0]);
  EXPECT_EQ(client->ShareKeys({}).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(client->AdvertiseKeys().ok());
  EXPECT_EQ(client->AdvertiseKeys().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Client::Create(config, 999).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SecAggConfig, RejectsBadParametersWithTheirField) {
  RoundConfig c = MakeConfig(5, 3, 4);
  c.threshold = 6;
  EXPECT_THAT(ValidateRoundConfig(c).message(), HasSubstr("secagg.threshold"));
  c = MakeConfig(5, 3, 4, 3);
  EXPECT_THAT(ValidateRoundConfig(c).message(), HasSubstr("secagg.neighbours"));
  c = MakeConfig(5, 3, 4);
  c.quantization.max_summands = 4;
  EXPECT_THAT(ValidateRoundConfig(c).message(), HasSubstr("max_summands"));
  c = MakeConfig(5, 3, 4);
  c.clients.push_back(c.clients[0]);
  EXPECT_THAT(ValidateRoundConfig(c).message(), HasSubstr("appears twice"));
}

}  // namespace
}  // namespace braid::secagg
