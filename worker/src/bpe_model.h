// Internal to the tokenizers: the BPE model of Hugging Face `tokenizers`
// (models/bpe), word by word, with its exact merge order: the pair of lowest
// merge rank first, the leftmost among equal ranks.
#ifndef BRAID_WORKER_SRC_BPE_MODEL_H_
#define BRAID_WORKER_SRC_BPE_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace braid::worker::internal {

class BpeModel {
 public:
  // Reads tokenizer.json's "model" object (type BPE). Errors name the JSON
  // path from `path` ("model.merges[12]: ..."). Refused: dropout > 0,
  // continuing_subword_prefix, end_of_word_suffix.
  static absl::StatusOr<BpeModel> FromJson(const nlohmann::json& model, const std::string& path);

  // Appends the ids of one pre-tokenized word.
  void Tokenize(std::string_view word, std::vector<int32_t>* out) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // "" when `id` has no token in this model.
  const std::string& IdToToken(int32_t id) const;
  // The largest id + 1.
  int32_t size() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  std::vector<int32_t> byte_ids_;  // <0xXX> ids when byte_fallback; -1 where missing
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
};

}  // namespace braid::worker::internal

#endif  // BRAID_WORKER_SRC_BPE_MODEL_H_
