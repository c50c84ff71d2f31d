#include "braid/core/port_file.h"

#include <filesystem>
#include <fstream>

#include "braid/core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid {
namespace {

std::string Write(const std::string& name, const std::string& text) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) / name).string();
  std::ofstream(path) << text;
  return path;
}

TEST(PortFileTest, ReadsThePortAServerWrote) {
  EXPECT_EQ(ReadPortFile(Write("port-ok", "43775\n")), 43775);
}

TEST(PortFileTest, NothingYetWhileTheFileIsMissingEmptyOrNotAPort) {
  EXPECT_EQ(ReadPortFile((std::filesystem::path(::testing::TempDir()) / "no-such").string()),
            std::nullopt);
  EXPECT_EQ(ReadPortFile(Write("port-empty", "")), std::nullopt);
  EXPECT_EQ(ReadPortFile(Write("port-zero", "0\n")), std::nullopt);
  EXPECT_EQ(ReadPortFile(Write("port-big", "70000\n")), std::nullopt);
  EXPECT_EQ(ReadPortFile(Write("port-text", "listening\n")), std::nullopt);
}

TEST(PortFileTest, AwaitReturnsThePortOnceWritten) {
  FakeClock clock;
  const std::string path = Write("port-await", "8080\n");
  EXPECT_EQ(AwaitPortFile(path, absl::Seconds(1), &clock).value_or(0), 8080);
}

TEST(PortFileTest, AwaitGivesUpAfterTheTimeoutNamingTheFile) {
  FakeClock clock;
  const std::string path = (std::filesystem::path(::testing::TempDir()) / "never").string();
  const absl::Time start = clock.Now();
  absl::StatusOr<int> port = AwaitPortFile(path, absl::Seconds(2), &clock);
  EXPECT_EQ(port.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(port.status().message()), ::testing::HasSubstr(path));
  EXPECT_GE(clock.Now() - start, absl::Seconds(2));
  EXPECT_LT(clock.Now() - start, absl::Seconds(2) + absl::Milliseconds(21));
}

}  // namespace
}  // namespace braid
