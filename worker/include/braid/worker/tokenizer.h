// Tokenizers of Hugging Face checkpoints: text <-> token ids, the way the
// checkpoint's own tokenizer does it, so a model sees the ids it was trained
// on. No LibTorch; lives in the braid_text library.
//
// Supported:
//  - tokenizer.json (Hugging Face `tokenizers`) with model BPE: byte-level BPE
//    as in GPT-2, Llama-3, Qwen2, SmolLM2 (pre_tokenizer ByteLevel, or
//    Sequence[Split(regex), ByteLevel]), and the Llama-2 / TinyLlama style
//    (byte_fallback, normalizer Prepend("▁") + Replace(" ", "▁") or a
//    Metaspace pre_tokenizer, decoder Replace/ByteFallback/Fuse/Strip).
//    Normalizer null, NFC, Prepend, Replace or a Sequence of them;
//    post_processor null, ByteLevel, TemplateProcessing or a Sequence;
//    added_tokens matched before pre-tokenization. Regex patterns are
//    compiled from the file with PCRE2 (UTF + Unicode properties).
//  - tokenizer.model (SentencePiece), through libsentencepiece.
// Anything else is refused with an error naming the JSON path, e.g.
// `tokenizer.json: model.type "WordPiece" is not supported`.
#ifndef BRAID_WORKER_TOKENIZER_H_
#define BRAID_WORKER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace braid::worker {

// Ids of the tokens a trainer needs; -1 when the tokenizer has none.
struct SpecialTokenIds {
  int32_t bos = -1;
  int32_t eos = -1;
  int32_t pad = -1;
  int32_t unk = -1;
};

// Largest tokenizer.json / tokenizer.model read (Llama-3's is ~9 MB).
inline constexpr uint64_t kMaxTokenizerFileBytes = 256ull << 20;
// Longest text Encode accepts; longer input is InvalidArgument, so a hostile
// record cannot make encoding allocate without bound.
inline constexpr size_t kMaxEncodeBytes = 64u << 20;

// A loaded tokenizer. Immutable after loading: Encode and Decode are const
// and safe to call from several threads at once.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // The ids of `text` (UTF-8). With add_special_tokens the post-processor's
  // tokens are added (e.g. a BOS where the template has one), as Hugging
  // Face's `encode(text)` does by default. Special tokens written in the text
  // ("<|im_start|>") are matched as such. InvalidArgument when `text` is not
  // valid UTF-8 or longer than kMaxEncodeBytes.
  virtual absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                                      bool add_special_tokens = true) const = 0;

  // The text of `ids`; with skip_special_tokens the special added tokens
  // are left out. Byte sequences that are not valid UTF-8 become U+FFFD.
  // InvalidArgument naming the first id outside [0, vocab_size()).
  virtual absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                             bool skip_special_tokens = false) const = 0;

  // Number of ids (the largest id + 1, added tokens included).
  virtual int32_t vocab_size() const = 0;
  // The id of a token string as it is in the vocabulary ("<|endoftext|>",
  // "Ġthe"), or nullopt.
  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;

  const SpecialTokenIds& special() const { return special_; }
  void set_special(const SpecialTokenIds& special) { special_ = special; }

 protected:
  Tokenizer() = default;

 private:
  SpecialTokenIds special_;
};

// Loads a Hugging Face tokenizer.json. Special token ids are guessed from the
// file alone (see LoadTokenizer for the configuration files). Errors:
// NotFound (no file), InvalidArgument naming the file and the JSON path of
// the first unsupported or malformed field.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfTokenizerJson(const std::string& file);

// Loads a SentencePiece model (tokenizer.model) with libsentencepiece.
// Encode adds the model's BOS when add_special_tokens (the Llama
// convention). NotFound / InvalidArgument naming the file.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceModel(const std::string& file);

// Loads the tokenizer of a checkpoint folder: tokenizer.json when present,
// else tokenizer.model. Special token ids come from tokenizer_config.json
// (bos_token, eos_token, pad_token, unk_token: a string or {"content": ...}),
// else special_tokens_map.json, else the tokenizer itself (the template's
// BOS; an added special token named </s>, <|endoftext|>, <|end_of_text|>,
// <|im_end|> or <eos> for EOS). A configured token that is not in the
// vocabulary is InvalidArgument naming the file and field. NotFound when
// the folder has neither tokenizer file.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& folder);

}  // namespace braid::worker

#endif  // BRAID_WORKER_TOKENIZER_H_
