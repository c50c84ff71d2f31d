#include "braid/core/secagg/messages.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::secagg {
namespace {

using ::testing::HasSubstr;

Bytes32 Fill(unsigned char b) {
  Bytes32 k;
  k.fill(b);
  return k;
}

TEST(SecAggMessages, RoundTrip) {
  PublicKeys pk{7, Fill(1), Fill(2)};
  auto pk2 = DecodePublicKeys(Encode(pk));
  ASSERT_TRUE(pk2.ok()) << pk2.status();
  EXPECT_EQ(pk2->id, 7u);
  EXPECT_EQ(pk2->masking_key, Fill(2));
  EXPECT_EQ(Encode(pk).size(), 73u);

  KeyDirectory dir{{pk, PublicKeys{9, Fill(3), Fill(4)}}};
  EXPECT_EQ(DecodeKeyDirectory(Encode(dir))->keys[1].encryption_key, Fill(3));

  EncryptedShares es{7, {{7, 9, "abc"}, {7, 11, std::string(80, 'x')}}};
  auto es2 = DecodeEncryptedShares(Encode(es));
  ASSERT_TRUE(es2.ok());
  EXPECT_EQ(es2->shares[1].to, 11u);
  EXPECT_EQ(es2->shares[1].ciphertext, std::string(80, 'x'));

  ForwardedShares fs{9, {{7, 9, "abc"}}};
  EXPECT_EQ(DecodeForwardedShares(Encode(fs))->shares[0].ciphertext, "abc");

  MaskedInput mi{7, {1, 2, 0xffffffffu}};
  EXPECT_EQ(DecodeMaskedInput(Encode(mi))->values, mi.values);
  EXPECT_EQ(Encode(mi).size(), 13u + 4 * 3);

  UnmaskRequest ur{{1, 2, 3}, {4}};
  EXPECT_EQ(DecodeUnmaskRequest(Encode(ur))->dropped, std::vector<ClientId>{4});

  UnmaskResponse resp{7, {{1, Fill(5)}}, {{4, Fill(6)}}};
  auto resp2 = DecodeUnmaskResponse(Encode(resp));
  ASSERT_TRUE(resp2.ok());
  EXPECT_EQ(resp2->key_shares[0].share, Fill(6));
}

TEST(SecAggMessages, MalformedBytesAreInvalidArgumentNeverACrash) {
  const std::string good = Encode(MaskedInput{7, {1, 2, 3}});
  for (size_t len = 0; len < good.size(); ++len) {
    auto r = DecodeMaskedInput(good.substr(0, len));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << "length " << len;
  }
  EXPECT_THAT(DecodeMaskedInput(good + "x").status().message(), HasSubstr("trailing bytes"));
  EXPECT_THAT(DecodePublicKeys(good).status().message(), HasSubstr("wrong message kind"));
  std::string huge = Encode(EncryptedShares{7, {}});
  huge[huge.size() - 1] = '\x7f';  // count of 2^31 shares with no bytes behind it
  EXPECT_THAT(DecodeEncryptedShares(huge).status().message(), HasSubstr("truncated"));
}

// The fuzzer's seeds (core/testdata/secagg_fuzz, one file per kind, named
// after it) must stay valid messages: each decodes with its decoder and
// encodes back to the same bytes.
TEST(SecAggMessages, FuzzSeedsAreValidCanonicalMessages) {
  namespace fs = std::filesystem;
  const std::string dir = std::string(BRAID_CORE_TESTDATA) + "/secagg_fuzz";
  std::map<std::string, std::string> seeds;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    seeds[entry.path().filename().string()] = text.str();
  }
  ASSERT_EQ(seeds.size(), 7u) << "one seed per message kind in " << dir;
  auto check = [&](const std::string& name, auto decode) {
    auto m = decode(seeds[name]);
    ASSERT_TRUE(m.ok()) << name << ": " << m.status();
    EXPECT_EQ(Encode(*m), seeds[name]) << name;
  };
  check("public_keys", DecodePublicKeys);
  check("key_directory", DecodeKeyDirectory);
  check("encrypted_shares", DecodeEncryptedShares);
  check("forwarded_shares", DecodeForwardedShares);
  check("masked_input", DecodeMaskedInput);
  check("unmask_request", DecodeUnmaskRequest);
  check("unmask_response", DecodeUnmaskResponse);
}

}  // namespace
}  // namespace braid::secagg
