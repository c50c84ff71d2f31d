#include "braid/worker/tabular_data.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::worker {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Writes `content` to a file in the test's temp dir and returns its path.
std::string WriteFile(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return path;
}

spec::DataSchema Schema(std::vector<std::string> features, std::string label = "label") {
  spec::DataSchema schema;
  schema.features = std::move(features);
  schema.label = std::move(label);
  return schema;
}

std::vector<float> Floats(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::vector<int64_t> Longs(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Data whose single feature is the row's index, so rows can be told apart.
TabularData RowIds(int64_t n) {
  TabularData data;
  data.features = torch::arange(n, torch::kFloat).reshape({n, 1});
  data.labels = torch::arange(n, torch::kLong).remainder(2);
  return data;
}

std::vector<int64_t> Ids(const TabularData& data) {
  if (data.size() == 0) return {};
  return Longs(data.features.select(1, 0).to(torch::kLong));
}

TEST(ReadCsvTest, ReadsNamedColumnsInSchemaOrder) {
  const std::string path = WriteFile("good.csv",
                                     "id,b,a,label,note\n"
                                     "7,2.5,-1,0,x\n"
                                     "8,1e-3,+4,2,y\n"
                                     "9, .5 ,3,1,z\n");
  auto data = ReadCsv(path, Schema({"a", "b"}), 3);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 3);
  EXPECT_EQ(data->features.sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(data->features.scalar_type(), torch::kFloat);
  EXPECT_EQ(data->labels.scalar_type(), torch::kLong);
  EXPECT_THAT(Floats(data->features), ElementsAre(-1.0f, 2.5f, 4.0f, 1e-3f, 3.0f, 0.5f));
  EXPECT_THAT(Longs(data->labels), ElementsAre(0, 2, 1));
}

TEST(ReadCsvTest, CrlfNoTrailingNewlineAndBlankTrailingLines) {
  const char* kBodies[] = {
      "a,label\r\n1,0\r\n2,1\r\n",
      "a,label\r\n1,0\r\n2,1",
      "a,label\n1,0\n2,1\n\n\r\n  \n",
      "\xEF\xBB\xBF" "a,label\r\n1,0\r\n2,1\r\n\r\n",  // UTF-8 BOM, as Excel writes
  };
  int i = 0;
  for (const char* body : kBodies) {
    const std::string path = WriteFile("crlf" + std::to_string(i++) + ".csv", body);
    auto data = ReadCsv(path, Schema({"a"}), 2);
    ASSERT_TRUE(data.ok()) << body << ": " << data.status();
    EXPECT_THAT(Floats(data->features), ElementsAre(1.0f, 2.0f)) << body;
    EXPECT_THAT(Longs(data->labels), ElementsAre(0, 1)) << body;
  }
}

TEST(ReadCsvTest, MissingColumnsAreAllNamedWithThePath) {
  const std::string path = WriteFile("missing.csv", "a,b,label\n1,2,0\n");
  auto data = ReadCsv(path, Schema({"a", "x3", "b", "x4"}, "target"), 2);
  ASSERT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()),
              AllOf(HasSubstr(path), HasSubstr("'x3'"), HasSubstr("'x4'"), HasSubstr("'target'"),
                    HasSubstr("in a header of 3 columns")));
}

TEST(ReadCsvTest, BadNumberNamesFileLineAndColumn) {
  const std::string path = WriteFile("bad.csv", "a,b,label\n1,2,0\n3,abc,1\n");
  auto data = ReadCsv(path, Schema({"a", "b"}), 2);
  ASSERT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()),
              HasSubstr(path + ":3: column 2 ('b'): the value (3 bytes) is not a number"));
  EXPECT_THAT(std::string(data.status().message()), Not(HasSubstr("abc")));
}

TEST(ReadCsvTest, RefusesValuesThatAreNotCompleteFiniteNumbers) {
  for (const std::string bad : {"1.2.3", "12abc", "1e", "", "nan", "inf", "-inf", "0x10", "--1",
                                "+-1", "1e999", "\"1\"", "1 2"}) {
    const std::string path = WriteFile("badvalue.csv", "a,label\n1,0\n" + bad + ",1\n");
    auto data = ReadCsv(path, Schema({"a"}), 2);
    EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument) << "'" << bad << "'";
    EXPECT_THAT(std::string(data.status().message()), HasSubstr(path + ":3: column 1 ('a'): "))
        << "'" << bad << "'";
  }
}

TEST(ReadCsvTest, LabelMustBeAClassIndex) {
  struct Case {
    std::string label;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{{"3", "class label 3 is outside [0, 3)"},
                                         {"-1", "class label -1 is outside [0, 3)"},
                                         {"1.5", "the value (3 bytes) is not an integer class label"},
                                         {"cat", "the value (3 bytes) is not an integer class label"},
                                         {"", "empty value"}}) {
    const std::string path = WriteFile("label.csv", "a,label\n1,0\n2," + c.label + "\n");
    auto data = ReadCsv(path, Schema({"a"}), 3);
    ASSERT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument) << c.label;
    EXPECT_THAT(std::string(data.status().message()),
                HasSubstr(path + ":3: column 2 ('label'): " + c.message));
  }
  // Integral values written as floats are class indices too.
  const std::string path = WriteFile("label_float.csv", "a,label\n1,2.0\n");
  auto data = ReadCsv(path, Schema({"a"}), 3);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_THAT(Longs(data->labels), ElementsAre(2));
}

TEST(ReadCsvTest, StructuralErrors) {
  struct Case {
    std::string body;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"", ": empty file"},
           {"\n\r\n", ": empty file"},
           {"a,label\n", ": no data rows"},
           {"a,label\n1,0\n2,1,9\n", ":3: expected 2 fields as in the header, found 3"},
           {"a,label\n1,0\n2\n", ":3: expected 2 fields as in the header, found 1"},
           {"a,label\n1,0\n\n2,1\n", ":3: blank line inside the data"},
           {"a,a,label\n1,2,0\n", ":1: column 'a' appears more than once"},
       }) {
    const std::string path = WriteFile("structure.csv", c.body);
    auto data = ReadCsv(path, Schema({"a"}), 2);
    ASSERT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_THAT(std::string(data.status().message()), HasSubstr(path + c.message)) << c.body;
  }
}

// Issue 17, finding 8: a small file must not make the reader allocate
// without bound (779 KB of blank lines under 65536 features asked for
// 200 GB and aborted with std::bad_alloc).
TEST(ReadCsvTest, ManyBlankLinesUnderManyFeaturesCostMemoryInProportionToTheFile) {
  std::vector<std::string> names;
  std::string header;
  for (int i = 0; i < 65536; ++i) {
    names.push_back("x" + std::to_string(i));
    header += names.back() + ",";
  }
  header += "label\n";
  const std::string path = WriteFile("blank_lines.csv", header + std::string(779 * 1000, '\n'));
  auto data = ReadCsv(path, Schema(names), 2);
  ASSERT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument) << data.status();
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(path + ": no data rows"));
}

TEST(ReadCsvTest, AGiganticLineIsRefusedWithItsSize) {
  const std::string path =
      WriteFile("gigantic.csv", "a,label\n" + std::string((32 << 20) + 1, '7') + "\n");
  auto data = ReadCsv(path, Schema({"a"}), 2);
  ASSERT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()),
              HasSubstr(path + ":2: the row is 33554433 bytes; a row is at most 33554432"));
  const std::string commas = WriteFile("commas.csv", std::string(3 << 20, ',') + "\n1\n");
  data = ReadCsv(commas, Schema({"a"}), 2);
  ASSERT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(":1: the header row has more than"));
}

// Issue 17, finding 9: errors name where, never what the file holds.
TEST(ReadCsvTest, ErrorsNeverEchoTheFilesText) {
  const std::string secret = "root:$6$SECRETHASH:19000:0:99999:7:::";
  for (const std::string& body :
       {secret + "\n", "a,label\n" + secret + ",1\n", "a,label\n1," + secret + "\n",
        "a,label\n\"" + secret + "\",1\n"}) {
    const std::string path = WriteFile("secret.csv", body);
    auto data = ReadCsv(path, Schema({"a"}), 2);
    ASSERT_FALSE(data.ok());
    EXPECT_THAT(std::string(data.status().message()), Not(HasSubstr("SECRET"))) << body;
    EXPECT_THAT(std::string(data.status().message()), HasSubstr(path)) << body;
  }
}

TEST(ReadCsvTest, MissingFileIsNotFound) {
  const std::string path = ::testing::TempDir() + "/no_such_file.csv";
  auto data = ReadCsv(path, Schema({"a"}), 2);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(path));
}

TEST(ReadCsvTest, ReadsAHundredThousandRows) {
  constexpr int kRows = 100000;
  std::string body = "x0,x1,x2,x3,x4,x5,x6,x7,label\n";
  body.reserve(kRows * 48);
  for (int i = 0; i < kRows; ++i) {
    for (int j = 0; j < 8; ++j) body += std::to_string((i + j) % 1000) + ".25,";
    body += std::to_string(i % 4) + "\n";
  }
  const std::string path = WriteFile("big.csv", body);
  auto data = ReadCsv(path, Schema({"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"}), 4);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->size(), kRows);
  EXPECT_EQ(data->features.sizes(), (std::vector<int64_t>{kRows, 8}));
  EXPECT_FLOAT_EQ(data->features[kRows - 1][7].item<float>(), (kRows - 1 + 7) % 1000 + 0.25f);
  EXPECT_EQ(data->labels[kRows - 1].item<int64_t>(), (kRows - 1) % 4);
}

TEST(ShardTest, ReplicasPartitionTheRows) {
  const TabularData data = RowIds(10);
  std::vector<int64_t> all;
  for (int r = 0; r < 3; ++r) {
    const TabularData shard = Shard(data, r, 3);
    for (int64_t id : Ids(shard)) {
      EXPECT_EQ(id % 3, r);
      all.push_back(id);
    }
    EXPECT_TRUE(torch::equal(shard.labels,
                             shard.features.select(1, 0).to(torch::kLong).remainder(2)));
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, Ids(data));
  EXPECT_EQ(Ids(Shard(data, 0, 1)), Ids(data));
  EXPECT_EQ(Shard(RowIds(2), 2, 3).size(), 0);  // more replicas than rows
}

TEST(SplitForEvalTest, PartitionsTheRowsDeterministically) {
  const TabularData data = RowIds(101);
  const Split split = SplitForEval(data, 0.2, 7);
  EXPECT_EQ(split.eval.size(), 20);
  EXPECT_EQ(split.train.size(), 81);
  std::vector<int64_t> all = Ids(split.train);
  const std::vector<int64_t> eval = Ids(split.eval);
  all.insert(all.end(), eval.begin(), eval.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, Ids(data));  // nothing lost, nothing duplicated
  // Labels travel with their rows.
  EXPECT_TRUE(torch::equal(split.eval.labels,
                           split.eval.features.select(1, 0).to(torch::kLong).remainder(2)));

  const Split again = SplitForEval(data, 0.2, 7);
  EXPECT_EQ(Ids(again.eval), eval);
  EXPECT_EQ(Ids(again.train), Ids(split.train));
  EXPECT_NE(Ids(SplitForEval(data, 0.2, 8).eval), eval);
}

TEST(SplitForEvalTest, SmallSets) {
  Split two = SplitForEval(RowIds(2), 0.1, 1);
  EXPECT_EQ(two.eval.size(), 1);
  EXPECT_EQ(two.train.size(), 1);
  Split many = SplitForEval(RowIds(3), 0.9, 1);
  EXPECT_EQ(many.eval.size(), 2);
  EXPECT_EQ(many.train.size(), 1);
  Split one = SplitForEval(RowIds(1), 0.5, 1);
  EXPECT_EQ(one.eval.size(), 0);
  EXPECT_EQ(one.train.size(), 1);
  Split none = SplitForEval(TabularData{}, 0.5, 1);
  EXPECT_EQ(none.eval.size(), 0);
  EXPECT_EQ(none.train.size(), 0);
}

TEST(SeededPermutationTest, IsAStablePermutation) {
  std::vector<int64_t> p = SeededPermutation(1000, 42);
  EXPECT_EQ(p, SeededPermutation(1000, 42));
  EXPECT_NE(p, SeededPermutation(1000, 43));
  std::sort(p.begin(), p.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(p[i], i);
  EXPECT_TRUE(SeededPermutation(0, 1).empty());
  // Pinned: every worker, on every machine and build, must shuffle alike.
  EXPECT_THAT(SeededPermutation(8, 2024), ElementsAre(2, 7, 5, 3, 6, 1, 0, 4));
}

}  // namespace
}  // namespace braid::worker
