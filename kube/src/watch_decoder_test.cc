#include "watch_decoder.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::kube {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> FeedAll(WatchDecoder& d, const std::vector<std::string>& chunks,
                                 absl::Status* status = nullptr) {
  std::vector<std::string> out;
  for (const std::string& c : chunks) {
    bool keep = true;
    absl::Status s = d.Feed(c, [&](std::string_view o) { out.emplace_back(o); return true; }, &keep);
    if (!s.ok()) {
      if (status != nullptr) *status = s;
      break;
    }
  }
  return out;
}

TEST(WatchDecoderTest, EverySplitPointYieldsTheSameObjects) {
  const std::string a = R"({"type":"ADDED","object":{"s":"}{\"\\","a":[1,{"b":"]"}]}})";
  const std::string b = R"({"type":"DELETED","object":{}})";
  const std::string stream = a + "\n" + b + "\n";
  for (size_t i = 0; i <= stream.size(); ++i) {
    for (size_t j = i; j <= stream.size(); ++j) {
      WatchDecoder d;
      const auto out = FeedAll(d, {stream.substr(0, i), stream.substr(i, j - i), stream.substr(j)});
      ASSERT_THAT(out, ElementsAre(a, b)) << i << "," << j;
      EXPECT_FALSE(d.pending());
    }
  }
}

TEST(WatchDecoderTest, ObjectsWithoutNewlinesAndPartialTail) {
  WatchDecoder d;
  EXPECT_THAT(FeedAll(d, {R"({"a":1}{"b":2} {"c":)"}), ElementsAre(R"({"a":1})", R"({"b":2})"));
  EXPECT_TRUE(d.pending());
  EXPECT_THAT(FeedAll(d, {"3}"}), ElementsAre(R"({"c":3})"));
  EXPECT_FALSE(d.pending());
}

TEST(WatchDecoderTest, RejectsGarbageAndOversizedEvents) {
  WatchDecoder d;
  absl::Status s;
  FeedAll(d, {"[1]"}, &s);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);

  WatchDecoder small(16);
  s = absl::OkStatus();
  FeedAll(small, {R"({"a":")", std::string(20, 'x')}, &s);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
}

TEST(WatchDecoderTest, StopsWhenTheCallbackSaysSo) {
  WatchDecoder d;
  int n = 0;
  bool keep = true;
  ASSERT_TRUE(d.Feed(R"({"a":1}{"b":2})", [&](std::string_view) { return ++n < 1; }, &keep).ok());
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(keep);
}

}  // namespace
}  // namespace braid::kube
