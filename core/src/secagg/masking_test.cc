// What the server receives from one client looks uniformly random in
// Z_{2^32} without the other clients' masks; the same statistics flag an
// unmasked or weakly masked vector, so the test can fail.
#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "braid/core/secagg/client.h"
#include "braid/core/secagg/quantize.h"
#include "braid/core/secagg/server.h"
#include "crypto.h"
#include "gtest/gtest.h"

namespace braid::secagg {
namespace {

constexpr size_t kLength = 1 << 16;

// Largest chi-square statistic over the four bytes of each ring element,
// 256 buckets each (255 degrees of freedom).
double WorstByteChiSquare(const std::vector<uint32_t>& v) {
  double worst = 0;
  for (int byte = 0; byte < 4; ++byte) {
    std::vector<double> counts(256, 0);
    for (uint32_t x : v) counts[(x >> (8 * byte)) & 0xff] += 1;
    const double expected = v.size() / 256.0;
    double chi2 = 0;
    for (double c : counts) chi2 += (c - expected) * (c - expected) / expected;
    worst = std::max(worst, chi2);
  }
  return worst;
}

// Chi-square(255) quantile at z = 6 sigma (Wilson-Hilferty): a uniform
// vector exceeds it with probability ~1e-9 per byte.
double Critical() {
  const double df = 255, z = 6;
  const double a = 2.0 / (9 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

// Mean and variance of the elements as fractions of 2^32: 1/2 and 1/12 if uniform.
void ExpectUniformMoments(const std::vector<uint32_t>& v) {
  double mean = 0, var = 0;
  for (uint32_t x : v) mean += x / 4294967296.0;
  mean /= v.size();
  for (uint32_t x : v) var += std::pow(x / 4294967296.0 - mean, 2);
  var /= v.size();
  // Standard errors: sqrt(1/12/N) ~ 0.0011 for the mean, ~0.0003 for the variance.
  EXPECT_NEAR(mean, 0.5, 6 * std::sqrt(1.0 / 12 / v.size()));
  EXPECT_NEAR(var, 1.0 / 12, 6 * std::sqrt(1.0 / 180 / v.size()));
}

RoundConfig Config() {
  RoundConfig c;
  c.round_id = 9;
  c.clients = {1, 2, 3};
  c.threshold = 2;
  c.vector_length = kLength;
  c.quantization.clip = 1.0;
  c.quantization.max_summands = 3;
  return c;
}

// A highly structured update: a constant, which unmasked is one ring value.
std::vector<float> Structured() { return std::vector<float>(kLength, 0.25f); }

MaskedInput MaskedInputOfClient1() {
  const RoundConfig config = Config();
  auto server = *Server::Create(config);
  std::map<ClientId, std::unique_ptr<Client>> clients;
  for (ClientId id : config.clients) clients[id] = *Client::Create(config, id);
  for (auto& [id, c] : clients) EXPECT_TRUE(server->AddPublicKeys(*c->AdvertiseKeys()).ok());
  auto dirs = *server->CloseAdvertiseKeys();
  for (auto& [id, dir] : dirs) {
    EXPECT_TRUE(server->AddEncryptedShares(*clients[id]->ShareKeys(dir)).ok());
  }
  auto fwd = *server->CloseShareKeys();
  return *clients[1]->MaskInput(fwd[1], Structured());
}

TEST(SecAggMasking, OneMaskedInputLooksUniform) {
  const MaskedInput masked = MaskedInputOfClient1();
  ASSERT_EQ(masked.values.size(), kLength);
  EXPECT_LT(WorstByteChiSquare(masked.values), Critical());
  ExpectUniformMoments(masked.values);
}

TEST(SecAggMasking, TheSameTestsFlagUnmaskedAndWeaklyMaskedInputs) {
  const RoundConfig config = Config();
  std::vector<uint32_t> plain;
  ASSERT_TRUE(Quantize(config.quantization, Structured(), &plain).ok());
  EXPECT_GT(WorstByteChiSquare(plain), Critical()) << "unmasked input passed as uniform";

  // Weak masking: only the low 16 bits are masked (e.g. a too-short PRG word).
  const MaskedInput strong = MaskedInputOfClient1();
  std::vector<uint32_t> weak(kLength);
  for (size_t i = 0; i < kLength; ++i) weak[i] = plain[i] + (strong.values[i] & 0xffff);
  EXPECT_GT(WorstByteChiSquare(weak), Critical()) << "weakly masked input passed as uniform";
}

// The PRG is AES-128-CTR, keyed by the seed's first 16 bytes, counter from
// 0, read as little-endian words: the expected words are OpenSSL's command
// line on the same key (a reference outside this code), at the start and
// right after the first 16 KiB slice, where the expansion continues the
// counter in a new slice:
//   head -c 16400 /dev/zero | openssl enc -aes-128-ctr -nosalt
//     -K 000102030405060708090a0b0c0d0e0f -iv 0 | od -A d -t x4
// (one command line).
TEST(SecAggMasking, MaskIsTheAes128CtrKeystreamOfTheSeed) {
  Key32 seed;
  for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<unsigned char>(i);
  std::vector<uint32_t> mask(4100, 0);
  AddMask(seed, +1, absl::MakeSpan(mask));
  EXPECT_EQ(mask[0], 0x373ba1c6u);
  EXPECT_EQ(mask[1], 0x825b8f87u);
  EXPECT_EQ(mask[2], 0x62814f6fu);
  EXPECT_EQ(mask[3], 0x79d8c8a1u);
  EXPECT_EQ(mask[4096], 0xc0a01eb0u);
  EXPECT_EQ(mask[4099], 0x59d9efeeu);

  // Two threads split the vector mid-stream and give the same words;
  // sign -1 subtracts them.
  std::vector<uint32_t> split(mask.size(), 0);
  const SignedSeed one{seed, +1};
  AddMasks(absl::MakeConstSpan(&one, 1), absl::MakeSpan(split), /*threads=*/2);
  EXPECT_EQ(split, mask);
  AddMask(seed, -1, absl::MakeSpan(split));
  EXPECT_EQ(split, std::vector<uint32_t>(mask.size(), 0));
}

}  // namespace
}  // namespace braid::secagg
