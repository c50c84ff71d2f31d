#include "braid/worker/tokenizer.h"

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace braid::worker {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using nlohmann::json;

struct CommandResult {
  int code;
  std::string out;
};

// Runs a shell command, stdout and stderr together.
CommandResult RunShell(const std::string& command) {
  CommandResult r{-1, ""};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.out.append(buf, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The reference tokenizers and their Hugging Face ids, made once per test
// binary by worker/testdata/make_reference_tokenizers.py with the pinned
// reference stack. Fails (never skips) when the stack is missing.
class ReferenceTokenizers : public ::testing::Test {
 protected:
  // ctest runs every test in its own process, in parallel: the tokenizers
  // are made once per (script, text, interpreter) into the build tree, in a
  // private directory renamed into place, so concurrent runs never see a
  // half-written set.
  static void SetUpTestSuite() {
    const std::string source = BRAID_SOURCE_DIR;
    CommandResult py = RunShell("bash " + source + "/scripts/pyref.sh");
    if (py.code != 0) {
      setup_error_ = "the reference stack (scripts/pyref.sh) is not available:\n" + py.out;
      return;
    }
    std::string python = py.out;
    while (!python.empty() && (python.back() == '\n' || python.back() == '\r')) python.pop_back();
    python = python.substr(python.rfind('\n') + 1);  // the last line is the interpreter
    const std::string script = source + "/worker/testdata/make_reference_tokenizers.py";
    const std::string text = source + "/worker/testdata/text";
    const size_t key = std::hash<std::string>()(ReadText(script) + ReadText(text + "/train.txt") +
                                                ReadText(text + "/heldout.txt") + python);
    dir_ = fs::path(BRAID_BUILD_DIR) / "testdata" / ("reference_tokenizers-" + std::to_string(key));
    std::error_code ec;
    if (fs::exists(dir_ / "gpt2" / "expected.json", ec)) return;
    const fs::path tmp = dir_.string() + ".tmp." + std::to_string(getpid());
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp.parent_path(), ec);
    CommandResult made = RunShell(python + " " + script + " " + text + " " + tmp.string());
    if (made.code != 0) {
      setup_error_ = "make_reference_tokenizers.py failed:\n" + made.out;
      fs::remove_all(tmp, ec);
      return;
    }
    fs::rename(tmp, dir_, ec);  // fails harmlessly when another run got there first
    if (ec) fs::remove_all(tmp, ec);
  }

  // Compares Braid with Hugging Face on every sample of `name`.
  void ExpectSameAsHuggingFace(const std::string& name) {
    ASSERT_EQ(setup_error_, "") << setup_error_;
    const fs::path folder = dir_ / name;
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(folder.string());
    ASSERT_TRUE(tok.ok()) << tok.status();
    const json expected = json::parse(ReadText(folder / "expected.json"));
    const json& special = expected["special"];
    EXPECT_EQ((*tok)->special().bos, special["bos"].get<int>()) << name << " bos";
    EXPECT_EQ((*tok)->special().eos, special["eos"].get<int>()) << name << " eos";
    EXPECT_EQ((*tok)->special().pad, special["pad"].get<int>()) << name << " pad";
    EXPECT_EQ((*tok)->special().unk, special["unk"].get<int>()) << name << " unk";
    int compared = 0, mismatched = 0;
    for (const json& sample : expected["samples"]) {
      const std::string text = sample["text"].get<std::string>();
      const auto want = sample["ids"].get<std::vector<int32_t>>();
      const auto want_plain = sample["ids_no_special"].get<std::vector<int32_t>>();
      absl::StatusOr<std::vector<int32_t>> got = (*tok)->Encode(text, true);
      absl::StatusOr<std::vector<int32_t>> got_plain = (*tok)->Encode(text, false);
      ASSERT_TRUE(got.ok() && got_plain.ok()) << got.status() << got_plain.status();
      ++compared;
      if (*got != want || *got_plain != want_plain) {
        if (++mismatched <= 5) {
          ADD_FAILURE() << name << ": ids differ from Hugging Face's for " << json(text).dump()
                        << "\n  braid: " << json(*got).dump() << "\n  hf:    " << json(want).dump();
        }
        continue;
      }
      absl::StatusOr<std::string> decoded = (*tok)->Decode(*got_plain, false);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, sample["decoded"].get<std::string>())
          << name << ": decode differs from Hugging Face's for " << json(text).dump();
    }
    EXPECT_EQ(mismatched, 0) << name << ": " << mismatched << " of " << compared << " samples differ";
    EXPECT_GE(compared, 30) << "the held-out sample shrank";
  }

  // Decoding what was encoded gives the text back (tokenizers that do not
  // normalize).
  void ExpectRoundTrip(const std::string& name) {
    ASSERT_EQ(setup_error_, "") << setup_error_;
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer((dir_ / name).string());
    ASSERT_TRUE(tok.ok()) << tok.status();
    const json expected = json::parse(ReadText(dir_ / name / "expected.json"));
    for (const json& sample : expected["samples"]) {
      const std::string text = sample["text"].get<std::string>();
      absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(text, false);
      ASSERT_TRUE(ids.ok()) << ids.status();
      absl::StatusOr<std::string> back = (*tok)->Decode(*ids, /*skip_special_tokens=*/false);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(*back, text) << name;
    }
  }

  static inline std::string setup_error_;
  static inline fs::path dir_;
};

TEST_F(ReferenceTokenizers, Gpt2ByteLevelMatchesHuggingFace) { ExpectSameAsHuggingFace("gpt2"); }
TEST_F(ReferenceTokenizers, Gpt2WithPrefixSpaceMatchesHuggingFace) {
  ExpectSameAsHuggingFace("gpt2_prefix");
}
TEST_F(ReferenceTokenizers, EverySplitBehaviorMatchesHuggingFace) {
  for (const char* name : {"split_removed", "split_merged_previous", "split_merged_next",
                           "split_contiguous", "split_inverted"}) {
    ExpectSameAsHuggingFace(name);
  }
}
TEST_F(ReferenceTokenizers, Llama3SplitRegexMatchesHuggingFace) {
  ExpectSameAsHuggingFace("llama3");
}
TEST_F(ReferenceTokenizers, Qwen2SplitRegexMatchesHuggingFace) { ExpectSameAsHuggingFace("qwen2"); }
TEST_F(ReferenceTokenizers, SentencePieceModelMatchesTheSentencePiecePackage) {
  ExpectSameAsHuggingFace("spm");
}
TEST_F(ReferenceTokenizers, ConvertedLlamaTokenizerMatchesHuggingFace) {
  ExpectSameAsHuggingFace("spm_hf_legacy");
}
TEST_F(ReferenceTokenizers, ConvertedLlamaTokenizerWithPrefixMatchesHuggingFace) {
  ExpectSameAsHuggingFace("spm_hf_prefix");
}
TEST_F(ReferenceTokenizers, ConvertedLlamaMetaspaceTokenizerMatchesHuggingFace) {
  ExpectSameAsHuggingFace("spm_hf_metaspace");
}

TEST_F(ReferenceTokenizers, ByteLevelDecodingRoundTrips) {
  ExpectRoundTrip("gpt2");
}

TEST_F(ReferenceTokenizers, SentencePieceDecodingRoundTrips) {
  ExpectRoundTrip("spm");
  ExpectRoundTrip("spm_hf_legacy");
}

TEST_F(ReferenceTokenizers, SpecialTokensInTextAreMatchedAsTokens) {
  ASSERT_EQ(setup_error_, "") << setup_error_;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer((dir_ / "llama3").string());
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::optional<int32_t> start = (*tok)->TokenToId("<|im_start|>");
  ASSERT_TRUE(start.has_value());
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode("<|im_start|>user", false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_FALSE(ids->empty());
  EXPECT_EQ(ids->front(), *start);
  absl::StatusOr<std::string> skipped = (*tok)->Decode(*ids, /*skip_special_tokens=*/true);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, "user");
}

TEST_F(ReferenceTokenizers, BadInputIsAnErrorNotACrash) {
  ASSERT_EQ(setup_error_, "") << setup_error_;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer((dir_ / "gpt2").string());
  ASSERT_TRUE(tok.ok()) << tok.status();
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(std::string("ab\xff\xfe", 4));
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ids.status().message()), HasSubstr("UTF-8"));
  const std::vector<int32_t> bad = {1, (*tok)->vocab_size()};
  absl::StatusOr<std::string> text = (*tok)->Decode(bad);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("ids[1]"));
}

// ---- Refusals, on hand-written files ----------------------------------------

class TokenizerFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& content) {
    // One directory per test: ctest runs them as parallel processes.
    const fs::path dir = fs::path(::testing::TempDir()) /
                         (std::string("tokenizer_file_test_") +
                          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
    const fs::path path = dir / name;
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }
  // A minimal valid tokenizer.json with `patch` merged over it.
  std::string Json(const json& patch) {
    json base = {{"version", "1.0"},
                 {"added_tokens", json::array()},
                 {"normalizer", nullptr},
                 {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                 {"post_processor", nullptr},
                 {"decoder", {{"type", "ByteLevel"}}},
                 {"model",
                  {{"type", "BPE"},
                   {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}},
                   {"merges", json::array({"a b"})}}}};
    base.merge_patch(patch);
    return base.dump();
  }
  absl::Status Load(const json& patch) {
    return LoadHfTokenizerJson(Write("tokenizer.json", Json(patch))).status();
  }
};

TEST_F(TokenizerFileTest, MinimalFileEncodesWithItsMerges) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
      LoadHfTokenizerJson(Write("tokenizer.json", Json(json::object())));
  ASSERT_TRUE(tok.ok()) << tok.status();
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode("abba");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int32_t>{2, 1, 0}));
}

TEST_F(TokenizerFileTest, UnsupportedModelIsRefusedNamingThePath) {
  absl::Status s = Load({{"model", {{"type", "WordPiece"}}}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("tokenizer.json: model.type: \"WordPiece\" is not supported"));
}

TEST_F(TokenizerFileTest, EveryUnsupportedPartNamesItsJsonPath) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"normalizer", {{"type", "BertNormalizer"}}}}, "normalizer.type: \"BertNormalizer\""},
      {{{"pre_tokenizer", {{"type", "Whitespace"}}}}, "pre_tokenizer.type: \"Whitespace\""},
      {{{"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers", json::array({{{"type", "Split"},
                                          {"pattern", {{"Regex", "(unclosed"}}},
                                          {"behavior", "Isolated"}}})}}}},
       "pre_tokenizer.pretokenizers[0].pattern.Regex: regex does not compile"},
      {{{"post_processor", {{"type", "RobertaProcessing"}}}}, "post_processor.type: \"RobertaProcessing\""},
      {{{"decoder", {{"type", "WordPiece"}}}}, "decoder.type: \"WordPiece\""},
      {{{"model", {{"merges", json::array({"a c"})}}}}, "model.merges[0]: merges tokens that are not"},
      {{{"model", {{"dropout", 0.1}}}}, "model.dropout: BPE dropout is not supported"},
      {{{"added_tokens", json::array({{{"id", 3}, {"content", "<x>"}, {"single_word", true}}})}},
       "added_tokens[0].single_word"},
      {{{"truncation", {{"max_length", 8}}}}, "truncation: must be null"},
  };
  for (const auto& [patch, want] : cases) {
    absl::Status s = Load(patch);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << patch.dump();
    EXPECT_THAT(std::string(s.message()), HasSubstr(want)) << patch.dump();
  }
}

TEST_F(TokenizerFileTest, MalformedJsonIsAnErrorNamingTheFile) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
      LoadHfTokenizerJson(Write("broken.json", "{\"model\": [1, 2"));
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("broken.json: not valid JSON"));
}

TEST_F(TokenizerFileTest, FolderWithoutTokenizerIsNotFound) {
  const fs::path empty = fs::path(::testing::TempDir()) / "no_tokenizer_here";
  fs::create_directories(empty);
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(empty.string());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("neither tokenizer.json"));
}

TEST_F(TokenizerFileTest, ConfiguredSpecialTokenMustBeInTheVocabulary) {
  const fs::path dir = fs::path(::testing::TempDir()) / "bad_special";
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << Json(json::object());
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": {"content": "</s>"}})";
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(dir.string());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tok.status().message()),
              HasSubstr("tokenizer_config.json: eos_token: \"</s>\" is not in"));
}

TEST_F(TokenizerFileTest, NotASentencePieceModelIsRefused) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
      LoadSentencePieceModel(Write("tokenizer.model", "definitely not a protobuf \xff\xff"));
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr("not a SentencePiece model"));
}

}  // namespace
}  // namespace braid::worker
