// LoadTokenizer (a checkpoint folder, its special-token configuration) and
// the SentencePiece tokenizer.
#include "braid/worker/tokenizer.h"

#include <filesystem>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"
#include "nlohmann/json.hpp"
#include "sentencepiece_model.h"
#include "unicode_text.h"

namespace braid::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kMaxConfigBytes = 16u << 20;

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(std::unique_ptr<internal::SentencePieceModel> sp)
      : sp_(std::move(sp)) {
    SpecialTokenIds special;
    special.bos = sp_->bos_id();
    special.eos = sp_->eos_id();
    special.pad = sp_->pad_id();
    special.unk = sp_->unk_id();
    set_special(special);
  }

  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              bool add_special_tokens) const override {
    if (text.size() > kMaxEncodeBytes) {
      return absl::InvalidArgumentError(absl::StrCat("text of ", text.size(),
                                                     " bytes is longer than the ",
                                                     kMaxEncodeBytes, " bytes a tokenizer accepts"));
    }
    if (!internal::IsValidUtf8(text)) return absl::InvalidArgumentError("text is not valid UTF-8");
    std::vector<int> ids;
    std::string error;
    if (!sp_->Encode(text, &ids, &error)) return absl::InternalError("sentencepiece: " + error);
    std::vector<int32_t> out;
    out.reserve(ids.size() + 1);
    if (add_special_tokens && special().bos >= 0) out.push_back(special().bos);
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }

  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens) const override {
    std::vector<int> kept;
    kept.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= vocab_size()) {
        return absl::InvalidArgumentError(absl::StrCat("ids[", i, "]: ", ids[i],
                                                       " is not a token id (vocabulary of ",
                                                       vocab_size(), ")"));
      }
      if (skip_special_tokens && sp_->IsControl(ids[i])) continue;
      kept.push_back(ids[i]);
    }
    std::string text, error;
    if (!sp_->Decode(kept, &text, &error)) return absl::InternalError("sentencepiece: " + error);
    return text;
  }

  int32_t vocab_size() const override { return sp_->size(); }
  std::optional<int32_t> TokenToId(std::string_view token) const override {
    const int id = sp_->PieceToId(token);
    if (id == sp_->unk_id() && sp_->IdToPiece(id) != token) return std::nullopt;
    return id;
  }

 private:
  std::unique_ptr<internal::SentencePieceModel> sp_;
};

// A special-token entry of tokenizer_config.json / special_tokens_map.json:
// "<s>" or {"content": "<s>", ...}; null or absent is nullopt.
absl::StatusOr<std::optional<std::string>> TokenString(const json& root, const char* key,
                                                       const std::string& file) {
  if (!root.contains(key) || root[key].is_null()) return std::nullopt;
  const json& v = root[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": ", key, ": must be a token string or {\"content\": ...}"));
}

// Applies the special tokens one configuration file names. Returns whether
// the file exists.
absl::StatusOr<bool> ApplyConfig(const std::string& file, Tokenizer* tok) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return false;
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(file, kMaxConfigBytes));
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return absl::InvalidArgumentError(file + ": must be a JSON object");
  SpecialTokenIds special = tok->special();
  const std::pair<const char*, int32_t*> fields[] = {
      {"bos_token", &special.bos}, {"eos_token", &special.eos},
      {"pad_token", &special.pad}, {"unk_token", &special.unk}};
  for (const auto& [key, out] : fields) {
    BRAID_ASSIGN_OR_RETURN(std::optional<std::string> token, TokenString(root, key, file));
    if (!token) continue;
    std::optional<int32_t> id = tok->TokenToId(*token);
    if (!id) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": ", key, ": \"", *token,
                                                     "\" is not in the tokenizer's vocabulary"));
    }
    *out = *id;
  }
  tok->set_special(special);
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadSentencePieceModel(const std::string& file) {
  BRAID_ASSIGN_OR_RETURN(std::string bytes, ReadSmallFile(file, kMaxTokenizerFileBytes));
  std::string error;
  std::unique_ptr<internal::SentencePieceModel> sp = internal::SentencePieceModel::Load(bytes, &error);
  if (sp == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a SentencePiece model: ", error));
  }
  return std::unique_ptr<Tokenizer>(new SentencePieceTokenizer(std::move(sp)));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& folder) {
  const fs::path dir(folder);
  std::error_code ec;
  std::unique_ptr<Tokenizer> tok;
  if (fs::exists(dir / "tokenizer.json", ec)) {
    BRAID_ASSIGN_OR_RETURN(tok, LoadHfTokenizerJson((dir / "tokenizer.json").string()));
  } else if (fs::exists(dir / "tokenizer.model", ec)) {
    BRAID_ASSIGN_OR_RETURN(tok, LoadSentencePieceModel((dir / "tokenizer.model").string()));
  } else {
    return absl::NotFoundError(
        absl::StrCat(folder, ": has neither tokenizer.json nor tokenizer.model"));
  }
  // tokenizer_config.json wins over special_tokens_map.json where both say.
  for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
    BRAID_RETURN_IF_ERROR(ApplyConfig((dir / name).string(), tok.get()).status());
  }
  return tok;
}

}  // namespace braid::worker
