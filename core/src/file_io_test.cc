#include "braid/core/file_io.h"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace braid {
namespace {

namespace fs = std::filesystem;

// A part larger than one write() (4 MiB) and not a multiple of it, between
// two small ones, arrives whole and in order, and replaces the old file.
TEST(WriteFileAtomicallyTest, LargePartsArriveWholeAndReplaceTheFile) {
  const fs::path dir = fs::temp_directory_path() / ("braid-file-io-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "model.bin").string();
  ASSERT_TRUE(WriteFileAtomically(path, {"old"}).ok());

  std::string big((9 << 20) + 3, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + i / 4096) % 251);
  ASSERT_TRUE(WriteFileAtomically(path, {"head", big, "tail"}).ok());

  absl::StatusOr<std::string> back = ReadSmallFile(path, 64 << 20);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->size(), 4 + big.size() + 4);
  EXPECT_EQ(*back, "head" + big + "tail");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace braid
