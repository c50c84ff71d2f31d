#include "braid/core/log.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(LogTest, ASinkReceivesEachLineWithItsSeverityAndCanBeRestored) {
  std::vector<std::pair<LogSeverity, std::string>> seen;
  LogSink previous = SetLogSink([&](LogSeverity s, std::string_view line) {
    seen.emplace_back(s, std::string(line));
  });
  LogInfo("one");
  LogWarning("two");
  LogError("three");
  SetLogSink(std::move(previous));
  LogInfo("not captured");
  EXPECT_THAT(seen, ElementsAre(Pair(LogSeverity::kInfo, "one"), Pair(LogSeverity::kWarning, "two"),
                                Pair(LogSeverity::kError, "three")));
}

TEST(LogTest, TheDefaultSinkWritesTheLineToStderr) {
  ::testing::internal::CaptureStderr();
  LogWarning("disk almost full");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "disk almost full\n");
}

}  // namespace
}  // namespace braid
