#include "braid/worker/lm_data.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test_byte_tokenizer.h"

namespace braid::worker {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using nlohmann::json;

constexpr int32_t kEos = kTestEos;
constexpr int32_t kBos = kTestBos;

// A byte-level tokenizer with one token per byte (id = byte value), EOS
// <|endoftext|> and a template that adds <s> as BOS, so expected ids can be
// written down from the text itself.
std::unique_ptr<Tokenizer> ByteTokenizer() {
  const json tok = ByteTokenizerJson();
  // Per test: ctest runs the tests as parallel processes.
  const fs::path path =
      fs::path(::testing::TempDir()) /
      (std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
       "_byte_tokenizer.json");
  std::ofstream(path) << tok.dump();
  absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = LoadHfTokenizerJson(path.string());
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->special().eos, kEos);
  EXPECT_EQ((*loaded)->special().bos, kBos);
  return std::move(*loaded);
}

std::vector<int32_t> Bytes(const std::string& s) {
  std::vector<int32_t> ids;
  for (unsigned char c : s) ids.push_back(c);
  return ids;
}

std::vector<int32_t> Concat(std::vector<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

class LmDataTest : public ::testing::Test {
 protected:
  void SetUp() override { tok_ = ByteTokenizer(); }

  std::string Write(const std::string& content) {
    const fs::path path = fs::path(::testing::TempDir()) /
                          (std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
                           ".jsonl");
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  absl::StatusOr<LmDataset> Read(const std::string& content, LmDataOptions options = {}) {
    options.eval_fraction = eval_fraction_;
    return ReadLmJsonl(Write(content), *tok_, options);
  }

  std::unique_ptr<Tokenizer> tok_;
  double eval_fraction_ = 0;  // most tests look at every record in train
};

TEST_F(LmDataTest, TextRecordTrainsOnEveryTokenAndEndsWithEos) {
  absl::StatusOr<LmDataset> data = Read("{\"text\": \"héllo\"}\n");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->train.size(), 1u);
  const std::vector<int32_t> want = Concat({{kBos}, Bytes("héllo"), {kEos}});
  EXPECT_EQ(data->train[0].input_ids, want);
  EXPECT_EQ(data->train[0].labels, want);
  EXPECT_EQ(data->train[0].line, 1);
  EXPECT_EQ(data->report.text_records, 1u);
  EXPECT_EQ(data->report.skipped, 0u);
}

TEST_F(LmDataTest, InstructionRecordsTrainOnTheResponseOnly) {
  absl::StatusOr<LmDataset> data = Read(
      "{\"instruction\": \"Add.\", \"input\": \"1+1\", \"output\": \"2\"}\n"
      "{\"instruction\": \"Greet.\", \"output\": \"Hi\", \"id\": 7}\n"
      "{\"prompt\": \"Q: why?\\nA:\", \"response\": \" because\"}\n");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->train.size(), 3u);
  EXPECT_EQ(data->report.instruction_records, 3u);
  const std::string with_input = absl::StrReplaceAll(
      kInstructionWithInputTemplate, {{"{instruction}", "Add."}, {"{input}", "1+1"}});
  const std::string without_input =
      absl::StrReplaceAll(kInstructionTemplate, {{"{instruction}", "Greet."}});
  const std::vector<std::pair<std::string, std::string>> want = {
      {with_input, "2"}, {without_input, "Hi"}, {"Q: why?\nA:", " because"}};
  for (size_t i = 0; i < want.size(); ++i) {
    const LmExample& e = data->train[i];
    const std::vector<int32_t> prompt = Concat({{kBos}, Bytes(want[i].first)});
    const std::vector<int32_t> answer = Concat({Bytes(want[i].second), {kEos}});
    EXPECT_EQ(e.input_ids, Concat({prompt, answer})) << i;
    std::vector<int32_t> labels(prompt.size(), kIgnoreLabel);
    labels.insert(labels.end(), answer.begin(), answer.end());
    EXPECT_EQ(e.labels, labels) << i;
  }
}

TEST_F(LmDataTest, MalformedLinesAreReportedWithFileAndLineAndSkipped) {
  LmDataOptions options;
  options.max_length = 64;
  options.max_line_bytes = 200;
  const std::string deep = std::string(40, '[') + std::string(40, ']');
  const std::string content = absl::StrCat(
      "{\"text\": \"good one\"}\n",                              // 1
      "not json at all\n",                                       // 2
      "[\"a\", \"list\"]\n",                                     // 3
      "{\"text\": 42}\n",                                        // 4
      "{\"instruction\": \"x\"}\n",                              // 5
      "\n",                                                      // 6
      "{\"text\": \"bad \xff byte\"}\n",                         // 7
      "{\"text\": \"", std::string(300, 'x'), "\"}\n",           // 8
      "{\"text\": \"a\", \"prompt\": \"b\", \"response\": \"c\"}\n",  // 9
      deep, "\n",                                                // 10
      "{\"prompt\": \"", std::string(100, 'p'), "\", \"response\": \"r\"}\n",  // 11
      "{\"text\": \"\"}\n",                                      // 12
      "{\"meta\": 1}\n",                                         // 13
      "{\"prompt\": \"ok\", \"response\": \"fine\"}");           // 14, no final newline
  const std::string file = Write(content);
  absl::StatusOr<LmDataset> data = ReadLmJsonl(file, *tok_, [&] {
    LmDataOptions o = options;
    o.eval_fraction = 0;
    return o;
  }());
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->report.lines, 14u);
  EXPECT_EQ(data->report.records, 2u);
  EXPECT_EQ(data->report.skipped, 12u);
  ASSERT_EQ(data->train.size(), 2u);
  EXPECT_EQ(data->train[0].line, 1);
  EXPECT_EQ(data->train[1].line, 14);
  const std::vector<std::string> want = {
      ":2: not valid JSON",
      ":3: must be a JSON object, got a list",
      ":4: \"text\" must be a string, got a number",
      ":5: missing \"output\"",
      ":6: empty line",
      ":7: not valid UTF-8",
      ":8: line is longer than 200 bytes",
      ":9: mixes record kinds",
      ":10: JSON nested deeper than 32 levels",
      ":11: the prompt alone is 101 tokens, which leaves no response token within maxLength 64",
      ":12: \"text\" is empty",
      ":13: has none of \"text\"",
  };
  ASSERT_EQ(data->report.problems.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_THAT(data->report.problems[i], AllOf(::testing::StartsWith(file + ":"),
                                                HasSubstr(want[i])));
  }
}

TEST_F(LmDataTest, FileWhereEveryLineIsBadIsAnError) {
  absl::StatusOr<LmDataset> data = Read("nope\n{\"text\": 1}\n");
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()),
              AllOf(HasSubstr("no usable record in 2 lines"), HasSubstr(":1: not valid JSON"),
                    HasSubstr(":2: \"text\" must be a string")));
  EXPECT_EQ(Read("").status().code(), absl::StatusCode::kInvalidArgument);
}

// Issue 17, finding 9: a file that is not JSONL (a path to a secret) is
// refused naming lines and columns, never quoting them.
TEST_F(LmDataTest, ErrorsNeverEchoTheFilesText) {
  absl::StatusOr<LmDataset> data =
      Read("root:$6$SECRETHASH:19000:0:99999:7:::\n{\"text\": SECRET2}\n");
  ASSERT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(data.status().message());
  EXPECT_THAT(message, AllOf(HasSubstr(":1: not valid JSON (column 1)"),
                             HasSubstr(":2: not valid JSON (column")));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("SECRET")));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("root")));
}

// Issue 17, finding 8: 779 KB of blank lines is a clear error, not an abort.
TEST_F(LmDataTest, AFileOfBlankLinesIsAClearError) {
  absl::StatusOr<LmDataset> data = Read(std::string(779 * 1000, '\n'));
  ASSERT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()),
              AllOf(HasSubstr("no usable record in 779000 lines"), HasSubstr(":1: empty line")));
}

TEST_F(LmDataTest, MissingFileIsNotFoundNamingIt) {
  absl::StatusOr<LmDataset> data =
      ReadLmJsonl("/nonexistent/tenant.jsonl", *tok_, LmDataOptions{});
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("/nonexistent/tenant.jsonl"));
}

TEST_F(LmDataTest, LongRecordsAreTruncatedToMaxLengthAndCounted) {
  LmDataOptions options;
  options.max_length = 8;
  absl::StatusOr<LmDataset> data =
      Read("{\"text\": \"abcdefghijkl\"}\n{\"text\": \"ab\"}\n"
           "{\"prompt\": \"p\", \"response\": \"0123456789\"}\n",
           options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->report.truncated, 2u);
  ASSERT_EQ(data->train.size(), 3u);
  EXPECT_EQ(data->train[0].input_ids, Concat({{kBos}, Bytes("abcdefg")}));
  EXPECT_EQ(data->train[1].input_ids, Concat({{kBos}, Bytes("ab"), {kEos}}));
  EXPECT_THAT(data->train[2].labels, ElementsAre(kIgnoreLabel, kIgnoreLabel, '0', '1', '2', '3',
                                                 '4', '5'));
}

TEST_F(LmDataTest, PackingConcatenatesRecordsIntoMaxLengthBlocks) {
  LmDataOptions options;
  options.max_length = 8;
  options.packing = true;
  absl::StatusOr<LmDataset> data = Read(
      "{\"text\": \"abcdefghijkl\"}\n{\"prompt\": \"p\", \"response\": \"r\"}\n{\"text\": \"z\"}\n",
      options);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->report.truncated, 0u);
  const std::vector<int32_t> stream = Concat({{kBos}, Bytes("abcdefghijkl"), {kEos}, {kBos},
                                              Bytes("p"), Bytes("r"), {kEos}, {kBos}, Bytes("z"),
                                              {kEos}});
  std::vector<int32_t> labels = stream;
  labels[14] = labels[15] = kIgnoreLabel;  // <s> p of the prompt
  ASSERT_EQ(data->train.size(), 3u);  // 21 tokens: 8 + 8 + 5
  std::vector<int32_t> got_ids, got_labels;
  for (const LmExample& block : data->train) {
    EXPECT_LE(block.input_ids.size(), 8u);
    got_ids.insert(got_ids.end(), block.input_ids.begin(), block.input_ids.end());
    got_labels.insert(got_labels.end(), block.labels.begin(), block.labels.end());
  }
  EXPECT_EQ(data->train[0].input_ids.size(), 8u);
  EXPECT_EQ(data->train[1].input_ids.size(), 8u);
  EXPECT_EQ(got_ids, stream);
  EXPECT_EQ(got_labels, labels);
}

TEST_F(LmDataTest, EvalSplitIsSeededExactAndStableWhenAnotherLineBreaks) {
  eval_fraction_ = 0.25;
  std::string content, broken;
  for (int i = 1; i <= 40; ++i) {
    const std::string line = absl::StrCat("{\"text\": \"record ", i, "\"}\n");
    content += line;
    broken += (i == 7 ? std::string("{oops\n") : line);
  }
  const auto eval_lines = [&](const std::string& text, uint64_t seed) {
    LmDataOptions options;
    options.seed = seed;
    absl::StatusOr<LmDataset> data = Read(text, options);
    EXPECT_TRUE(data.ok()) << data.status();
    std::set<int64_t> lines;
    for (const LmExample& e : data->eval) lines.insert(e.line);
    EXPECT_EQ(data->train.size() + data->eval.size(), data->report.records);
    for (const LmExample& e : data->train) EXPECT_EQ(lines.count(e.line), 0u);
    return lines;
  };
  const std::set<int64_t> a = eval_lines(content, 1);
  EXPECT_EQ(a.size(), 10u);  // round(40 x 0.25)
  EXPECT_EQ(eval_lines(content, 1), a);
  EXPECT_NE(eval_lines(content, 2), a);
  // Breaking line 7 changes which records exist, not how the others split:
  // every other eval record stays in eval (39 records still give 10).
  const std::set<int64_t> b = eval_lines(broken, 1);
  EXPECT_EQ(b.size(), 10u);
  EXPECT_EQ(b.count(7), 0u);
  for (int64_t line : a) {
    if (line != 7) {
      EXPECT_EQ(b.count(line), 1u) << line;
    }
  }
}

TEST_F(LmDataTest, BatchesArePaddedOnTheRightAndMasked) {
  std::vector<LmExample> examples(3);
  examples[0].input_ids = {1, 2, 3};
  examples[0].labels = {kIgnoreLabel, 2, 3};
  examples[1].input_ids = {4};
  examples[1].labels = {4};
  examples[2].input_ids = {5, 6};
  examples[2].labels = {5, 6};
  std::vector<LmBatch> batches = MakeLmBatches(examples, 2, /*pad_id=*/99, false, 0);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].rows, 2);
  EXPECT_EQ(batches[0].cols, 3);
  EXPECT_THAT(batches[0].input_ids, ElementsAre(1, 2, 3, 4, 99, 99));
  EXPECT_THAT(batches[0].attention_mask, ElementsAre(1, 1, 1, 1, 0, 0));
  EXPECT_THAT(batches[0].labels, ElementsAre(kIgnoreLabel, 2, 3, 4, kIgnoreLabel, kIgnoreLabel));
  EXPECT_EQ(batches[1].rows, 1);
  EXPECT_EQ(batches[1].cols, 2);
  EXPECT_THAT(batches[1].input_ids, ElementsAre(5, 6));
  EXPECT_EQ(PadId(*tok_), kEos);  // no pad token: EOS pads
}

TEST_F(LmDataTest, ShuffledBatchesAreASeededPermutation) {
  std::vector<LmExample> examples(50);
  for (int i = 0; i < 50; ++i) {
    examples[i].input_ids = {i};
    examples[i].labels = {i};
  }
  const auto order = [&](uint64_t seed) {
    std::vector<int64_t> ids;
    for (const LmBatch& b : MakeLmBatches(examples, 8, 0, true, seed)) {
      ids.insert(ids.end(), b.input_ids.begin(), b.input_ids.end());
    }
    return ids;
  };
  const std::vector<int64_t> a = order(3);
  EXPECT_EQ(a, order(3));
  EXPECT_NE(a, order(4));
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(50);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);
  std::vector<int64_t> in_order(50);
  std::iota(in_order.begin(), in_order.end(), 0);
  EXPECT_NE(a, in_order);
}

TEST_F(LmDataTest, OptionsOutOfRangeAreRefused) {
  LmDataOptions options;
  options.max_length = 1;
  EXPECT_EQ(ReadLmJsonl(Write("{\"text\": \"a\"}\n"), *tok_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.max_length = 16;
  options.eval_fraction = 1.0;
  EXPECT_EQ(ReadLmJsonl(Write("{\"text\": \"a\"}\n"), *tok_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LmDataOptionsTest, TakenFromTheJobSpec) {
  spec::ParseOptions kubernetes;
  kubernetes.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: j}\nspec:\n"
      "  model: {kind: llama, base: {path: models/base}}\n"
      "  data: {maxLength: 64, packing: true, evalFraction: 0.3}\n"
      "  training: {seed: 11}\n"
      "  tenants: [{name: a, data: {path: data/a.jsonl}}]\n",
      "", kubernetes);
  ASSERT_TRUE(job.ok()) << job.status();
  const LmDataOptions options = LmDataOptionsFromJob(*job);
  EXPECT_EQ(options.max_length, 64);
  EXPECT_TRUE(options.packing);
  EXPECT_DOUBLE_EQ(options.eval_fraction, 0.3);
  EXPECT_EQ(options.seed, 11u);
}

TEST_F(LmDataTest, TooManyTokensIsAnErrorNotUnboundedMemory) {
  LmDataOptions options;
  options.max_total_tokens = 20;
  std::string content;
  for (int i = 0; i < 10; ++i) content += "{\"text\": \"abcdef\"}\n";
  absl::StatusOr<LmDataset> data = Read(content, options);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("more than 20 tokens"));
}

}  // namespace
}  // namespace braid::worker
