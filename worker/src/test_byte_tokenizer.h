// Test helper for the worker's tokenizer and training tests: a byte-level
// tokenizer in Hugging Face's tokenizer.json layout, so expected token ids
// can be written down from the text itself.
#ifndef BRAID_WORKER_SRC_TEST_BYTE_TOKENIZER_H_
#define BRAID_WORKER_SRC_TEST_BYTE_TOKENIZER_H_

#include <cstdint>

#include <nlohmann/json.hpp>

#include "unicode_text.h"

namespace braid::worker {

inline constexpr int32_t kTestEos = 256;  // <|endoftext|>
inline constexpr int32_t kTestBos = 257;  // <s>

// One token per byte (id = byte value), EOS <|endoftext|> = kTestEos and a
// template that puts <s> = kTestBos first.
inline nlohmann::json ByteTokenizerJson() {
  using nlohmann::json;
  json vocab = json::object();
  const auto& table = internal::ByteToUnicode();
  for (int b = 0; b < 256; ++b) vocab[table[b]] = b;
  return {
      {"added_tokens",
       json::array({{{"id", kTestEos}, {"content", "<|endoftext|>"}, {"special", true},
                     {"normalized", false}},
                    {{"id", kTestBos}, {"content", "<s>"}, {"special", true},
                     {"normalized", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"special_tokens",
         {{"<s>", {{"id", "<s>"}, {"ids", {kTestBos}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
}

}  // namespace braid::worker

#endif  // BRAID_WORKER_SRC_TEST_BYTE_TOKENIZER_H_
