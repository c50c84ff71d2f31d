// tokenizer.json (Hugging Face `tokenizers`): added tokens, normalizers,
// pre-tokenizers, the BPE model, post-processors and decoders, each as the
// Rust library does it, for the subset that decoder LLM checkpoints use.
#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bpe_model.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"
#include "braid/worker/tokenizer.h"
#include "nlohmann/json.hpp"
#include "pcre_regex.h"
#include "unicode_text.h"

namespace braid::worker {
namespace {

using internal::BpeModel;
using internal::PcreRegex;
using nlohmann::json;

// GPT-2's pre-tokenizer pattern, which ByteLevel(use_regex: true) applies.
constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Errors while reading the file: `path` is the JSON path inside it.
absl::Status Unsupported(const std::string& path, std::string_view what) {
  return absl::InvalidArgumentError(path + ": " + std::string(what));
}

std::string TypeOf(const json& node) {
  if (node.is_object() && node.contains("type") && node["type"].is_string()) {
    return node["type"].get<std::string>();
  }
  return "";
}

absl::StatusOr<std::string> GetString(const json& node, const std::string& parent,
                                      const char* key) {
  if (!node.is_object() || !node.contains(key) || !node[key].is_string()) {
    return Unsupported(parent + "." + key, "must be a string");
  }
  return node[key].get<std::string>();
}

bool GetBool(const json& node, const char* key, bool fallback) {
  if (!node.is_object() || !node.contains(key) || !node[key].is_boolean()) return fallback;
  return node[key].get<bool>();
}

// A Split/Replace pattern: {"String": "..."} or {"Regex": "..."}.
absl::StatusOr<std::unique_ptr<PcreRegex>> CompilePattern(const json& node,
                                                          const std::string& path) {
  if (node.is_object() && node.contains("String") && node["String"].is_string()) {
    return PcreRegex::Compile(node["String"].get<std::string>(), /*literal=*/true);
  }
  if (node.is_object() && node.contains("Regex") && node["Regex"].is_string()) {
    absl::StatusOr<std::unique_ptr<PcreRegex>> re = PcreRegex::Compile(node["Regex"].get<std::string>());
    if (!re.ok()) return Unsupported(path + ".Regex", std::string(re.status().message()));
    return re;
  }
  return Unsupported(path, "must be {\"String\": ...} or {\"Regex\": ...}");
}

absl::StatusOr<std::string> ReplaceAll(const PcreRegex& re, const std::string& text,
                                       const std::string& content) {
  BRAID_ASSIGN_OR_RETURN(auto matches, re.FindAll(text));
  if (matches.empty()) return text;
  std::string out;
  size_t last = 0;
  for (const auto& [b, e] : matches) {
    out.append(text, last, b - last);
    out.append(content);
    last = e;
  }
  out.append(text, last, std::string::npos);
  return out;
}

// ---- Normalizer ---------------------------------------------------------

struct NormalizerStep {
  enum Kind { kNfc, kPrepend, kReplace } kind;
  std::string text;                 // prepend / replacement content
  std::unique_ptr<PcreRegex> regex; // replace
};

absl::Status ParseNormalizer(const json& node, const std::string& path,
                             std::vector<NormalizerStep>* steps) {
  if (node.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(node);
  if (type == "Sequence") {
    if (!node.contains("normalizers") || !node["normalizers"].is_array()) {
      return Unsupported(path + ".normalizers", "must be a list");
    }
    for (size_t i = 0; i < node["normalizers"].size(); ++i) {
      BRAID_RETURN_IF_ERROR(ParseNormalizer(node["normalizers"][i],
                                            absl::StrCat(path, ".normalizers[", i, "]"), steps));
    }
    return absl::OkStatus();
  }
  if (type == "NFC") {
    steps->push_back({NormalizerStep::kNfc, "", nullptr});
    return absl::OkStatus();
  }
  if (type == "Prepend") {
    BRAID_ASSIGN_OR_RETURN(std::string prepend, GetString(node, path, "prepend"));
    steps->push_back({NormalizerStep::kPrepend, std::move(prepend), nullptr});
    return absl::OkStatus();
  }
  if (type == "Replace") {
    BRAID_ASSIGN_OR_RETURN(std::string content, GetString(node, path, "content"));
    BRAID_ASSIGN_OR_RETURN(auto re, CompilePattern(node.value("pattern", json()), path + ".pattern"));
    steps->push_back({NormalizerStep::kReplace, std::move(content), std::move(re)});
    return absl::OkStatus();
  }
  return Unsupported(path + ".type", "\"" + type + "\" is not supported (null, NFC, Prepend, "
                                     "Replace or a Sequence of them)");
}

// ---- Pre-tokenizer ------------------------------------------------------

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokenizerStep {
  enum Kind { kByteLevel, kSplit, kMetaspace } kind;
  bool add_prefix_space = false;  // ByteLevel
  std::unique_ptr<PcreRegex> regex;  // ByteLevel (when use_regex) / Split / Metaspace's char
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  std::string replacement;        // Metaspace
  enum Prepend { kAlways, kFirst, kNever } prepend = kAlways;
  bool split = true;              // Metaspace
};

absl::Status ParsePreTokenizer(const json& node, const std::string& path,
                               std::vector<PreTokenizerStep>* steps) {
  if (node.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(node);
  if (type == "Sequence") {
    if (!node.contains("pretokenizers") || !node["pretokenizers"].is_array()) {
      return Unsupported(path + ".pretokenizers", "must be a list");
    }
    for (size_t i = 0; i < node["pretokenizers"].size(); ++i) {
      BRAID_RETURN_IF_ERROR(ParsePreTokenizer(
          node["pretokenizers"][i], absl::StrCat(path, ".pretokenizers[", i, "]"), steps));
    }
    return absl::OkStatus();
  }
  PreTokenizerStep step;
  if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::kByteLevel;
    step.add_prefix_space = GetBool(node, "add_prefix_space", true);
    if (GetBool(node, "use_regex", true)) {
      BRAID_ASSIGN_OR_RETURN(step.regex, PcreRegex::Compile(kGpt2Pattern));
    }
  } else if (type == "Split") {
    step.kind = PreTokenizerStep::kSplit;
    BRAID_ASSIGN_OR_RETURN(step.regex,
                           CompilePattern(node.value("pattern", json()), path + ".pattern"));
    BRAID_ASSIGN_OR_RETURN(std::string behavior, GetString(node, path, "behavior"));
    static const std::vector<std::pair<std::string, SplitBehavior>> kBehaviors = {
        {"Isolated", SplitBehavior::kIsolated},
        {"Removed", SplitBehavior::kRemoved},
        {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
        {"MergedWithNext", SplitBehavior::kMergedWithNext},
        {"Contiguous", SplitBehavior::kContiguous}};
    auto it = std::find_if(kBehaviors.begin(), kBehaviors.end(),
                           [&](const auto& b) { return b.first == behavior; });
    if (it == kBehaviors.end()) {
      return Unsupported(path + ".behavior", "\"" + behavior + "\" is not a split behavior");
    }
    step.behavior = it->second;
    step.invert = GetBool(node, "invert", false);
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::kMetaspace;
    BRAID_ASSIGN_OR_RETURN(step.replacement, GetString(node, path, "replacement"));
    if (node.contains("prepend_scheme") && node["prepend_scheme"].is_string()) {
      const std::string scheme = node["prepend_scheme"].get<std::string>();
      if (scheme == "always") {
        step.prepend = PreTokenizerStep::kAlways;
      } else if (scheme == "first") {
        step.prepend = PreTokenizerStep::kFirst;
      } else if (scheme == "never") {
        step.prepend = PreTokenizerStep::kNever;
      } else {
        return Unsupported(path + ".prepend_scheme", "\"" + scheme + "\" is not supported");
      }
    } else {
      step.prepend = GetBool(node, "add_prefix_space", true) ? PreTokenizerStep::kAlways
                                                              : PreTokenizerStep::kNever;
    }
    step.split = GetBool(node, "split", true);
    BRAID_ASSIGN_OR_RETURN(step.regex, PcreRegex::Compile(step.replacement, /*literal=*/true));
  } else {
    return Unsupported(path + ".type", "\"" + type + "\" is not supported (ByteLevel, Split, "
                                       "Metaspace or a Sequence of them)");
  }
  steps->push_back(std::move(step));
  return absl::OkStatus();
}

// Hugging Face's NormalizedString::split: the text cut into matches and the
// gaps between them, then grouped by `behavior`.
absl::Status SplitByRegex(const PcreRegex& re, SplitBehavior behavior, bool invert,
                          const std::string& text, std::vector<std::string>* out) {
  BRAID_ASSIGN_OR_RETURN(auto matches, re.FindAll(text));
  std::vector<std::pair<std::pair<size_t, size_t>, bool>> segments;  // ((begin, end), is_match)
  size_t last = 0;
  for (const auto& [b, e] : matches) {
    if (b > last) segments.push_back({{last, b}, invert});
    segments.push_back({{b, e}, !invert});
    last = e;
  }
  if (last < text.size()) segments.push_back({{last, text.size()}, invert});

  std::vector<std::pair<size_t, size_t>> splits;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& s : segments) splits.push_back(s.first);
      break;
    case SplitBehavior::kRemoved:
      for (const auto& s : segments) {
        if (!s.second) splits.push_back(s.first);
      }
      break;
    case SplitBehavior::kContiguous: {
      bool previous = false;
      for (const auto& [range, is_match] : segments) {
        if (is_match == previous && !splits.empty()) {
          splits.back().second = range.second;
        } else {
          splits.push_back(range);
        }
        previous = is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous = false;
      for (const auto& [range, is_match] : segments) {
        if (is_match && !previous && !splits.empty()) {
          splits.back().second = range.second;
        } else {
          splits.push_back(range);
        }
        previous = is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous = false;
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        if (it->second && !previous && !splits.empty()) {
          splits.back().first = it->first.first;
        } else {
          splits.push_back(it->first);
        }
        previous = it->second;
      }
      std::reverse(splits.begin(), splits.end());
      break;
    }
  }
  for (const auto& [b, e] : splits) {
    if (e > b) out->push_back(text.substr(b, e - b));
  }
  return absl::OkStatus();
}

std::string ToByteLevel(std::string_view piece) {
  const auto& table = internal::ByteToUnicode();
  std::string out;
  out.reserve(piece.size() * 2);
  for (char c : piece) out.append(table[static_cast<unsigned char>(c)]);
  return out;
}

// ---- Decoder ------------------------------------------------------------

struct DecoderStep {
  enum Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip } kind;
  std::unique_ptr<PcreRegex> regex;  // Replace
  std::string content;               // Replace content / Strip char
  int start = 0, stop = 0;           // Strip
};

absl::Status ParseDecoder(const json& node, const std::string& path,
                          std::vector<DecoderStep>* steps) {
  if (node.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(node);
  if (type == "Sequence") {
    if (!node.contains("decoders") || !node["decoders"].is_array()) {
      return Unsupported(path + ".decoders", "must be a list");
    }
    for (size_t i = 0; i < node["decoders"].size(); ++i) {
      BRAID_RETURN_IF_ERROR(
          ParseDecoder(node["decoders"][i], absl::StrCat(path, ".decoders[", i, "]"), steps));
    }
    return absl::OkStatus();
  }
  DecoderStep step;
  if (type == "ByteLevel") {
    step.kind = DecoderStep::kByteLevel;
  } else if (type == "ByteFallback") {
    step.kind = DecoderStep::kByteFallback;
  } else if (type == "Fuse") {
    step.kind = DecoderStep::kFuse;
  } else if (type == "Replace") {
    step.kind = DecoderStep::kReplace;
    BRAID_ASSIGN_OR_RETURN(step.content, GetString(node, path, "content"));
    BRAID_ASSIGN_OR_RETURN(step.regex, CompilePattern(node.value("pattern", json()), path + ".pattern"));
  } else if (type == "Strip") {
    step.kind = DecoderStep::kStrip;
    BRAID_ASSIGN_OR_RETURN(step.content, GetString(node, path, "content"));
    if (!node.contains("start") || !node["start"].is_number_unsigned() || !node.contains("stop") ||
        !node["stop"].is_number_unsigned()) {
      return Unsupported(path, "Strip needs start and stop counts");
    }
    step.start = static_cast<int>(std::min<uint64_t>(node["start"].get<uint64_t>(), 1 << 20));
    step.stop = static_cast<int>(std::min<uint64_t>(node["stop"].get<uint64_t>(), 1 << 20));
  } else {
    return Unsupported(path + ".type", "\"" + type + "\" is not supported (ByteLevel, Replace, "
                                       "ByteFallback, Fuse, Strip or a Sequence of them)");
  }
  steps->push_back(std::move(step));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> RunDecoder(const DecoderStep& step,
                                                    std::vector<std::string> tokens) {
  switch (step.kind) {
    case DecoderStep::kByteLevel: {
      std::string bytes;
      for (const std::string& t : tokens) {
        std::string mapped;
        bool all = true;
        for (size_t i = 0; i < t.size() && all;) {
          const size_t n = std::min(internal::Utf8CharLength(static_cast<unsigned char>(t[i])),
                                    t.size() - i);
          const int b = internal::UnicodeToByte(std::string_view(t).substr(i, n));
          if (b < 0) all = false;
          mapped.push_back(static_cast<char>(b));
          i += n;
        }
        bytes.append(all ? mapped : t);
      }
      return std::vector<std::string>{internal::Utf8Lossy(bytes)};
    }
    case DecoderStep::kReplace:
      for (std::string& t : tokens) {
        BRAID_ASSIGN_OR_RETURN(t, ReplaceAll(*step.regex, t, step.content));
      }
      return tokens;
    case DecoderStep::kByteFallback: {
      std::vector<std::string> out;
      std::string pending;
      size_t pending_count = 0;
      const auto flush = [&] {
        if (pending_count == 0) return;
        if (internal::IsValidUtf8(pending)) {
          out.push_back(pending);
        } else {
          for (size_t i = 0; i < pending_count; ++i) out.push_back("\xEF\xBF\xBD");
        }
        pending.clear();
        pending_count = 0;
      };
      for (std::string& t : tokens) {
        int byte = -1;
        if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
          const auto hex = [](char c) {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            return -1;
          };
          const int hi = hex(t[3]), lo = hex(t[4]);
          if (hi >= 0 && lo >= 0) byte = hi * 16 + lo;
        }
        if (byte >= 0) {
          pending.push_back(static_cast<char>(byte));
          ++pending_count;
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      return out;
    }
    case DecoderStep::kFuse: {
      std::string all;
      for (const std::string& t : tokens) all += t;
      return std::vector<std::string>{all};
    }
    case DecoderStep::kStrip:
      for (std::string& t : tokens) {
        const std::string& c = step.content;
        if (c.empty()) continue;
        for (int i = 0; i < step.start && t.compare(0, c.size(), c) == 0; ++i) t.erase(0, c.size());
        for (int i = 0; i < step.stop && t.size() >= c.size() &&
                        t.compare(t.size() - c.size(), c.size(), c) == 0;
             ++i) {
          t.erase(t.size() - c.size());
        }
      }
      return tokens;
  }
  return tokens;
}

// ---- Added tokens ---------------------------------------------------------

struct AddedToken {
  int32_t id;
  std::string content;
  bool special;
  bool normalized;
  bool lstrip;
  bool rstrip;
};

// One piece of the input on its way through the pipeline: text still to
// tokenize, or an added token already matched.
struct Piece {
  std::string text;
  int32_t token_id = -1;  // >= 0 for a matched added token
  bool at_start = false;  // begins at offset 0 of the input
};

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Added tokens of one kind (matched on raw or on normalized text), matched
// leftmost-longest as Hugging Face's aho-corasick automaton does.
class AddedTokenMatcher {
 public:
  void Add(const AddedToken* token) {
    if (token->content.empty()) return;
    by_first_[static_cast<unsigned char>(token->content[0])].push_back(token);
  }
  void Finish() {
    for (auto& list : by_first_) {
      std::stable_sort(list.begin(), list.end(), [](const AddedToken* a, const AddedToken* b) {
        return a->content.size() > b->content.size();
      });
    }
  }
  bool empty() const {
    return std::all_of(by_first_.begin(), by_first_.end(), [](const auto& l) { return l.empty(); });
  }

  // Splits the text pieces of `in` around the tokens found in them.
  std::vector<Piece> Split(std::vector<Piece> in) const {
    if (empty()) return in;
    std::vector<Piece> out;
    for (Piece& piece : in) {
      if (piece.token_id >= 0) {
        out.push_back(std::move(piece));
        continue;
      }
      const std::string& s = piece.text;
      size_t emitted = 0;  // text before this offset is already out
      for (size_t i = 0; i < s.size();) {
        const AddedToken* hit = nullptr;
        for (const AddedToken* t : by_first_[static_cast<unsigned char>(s[i])]) {
          if (s.compare(i, t->content.size(), t->content) == 0) {
            hit = t;
            break;
          }
        }
        if (hit == nullptr) {
          ++i;
          continue;
        }
        size_t begin = i, end = i + hit->content.size();
        if (hit->lstrip) {
          while (begin > emitted && IsAsciiSpace(s[begin - 1])) --begin;
        }
        if (hit->rstrip) {
          while (end < s.size() && IsAsciiSpace(s[end])) ++end;
        }
        if (begin > emitted) {
          out.push_back(Piece{s.substr(emitted, begin - emitted), -1,
                              piece.at_start && emitted == 0});
        }
        out.push_back(Piece{"", hit->id, false});
        emitted = end;
        i = end;
      }
      if (emitted < s.size()) {
        out.push_back(Piece{s.substr(emitted), -1, piece.at_start && emitted == 0});
      }
    }
    return out;
  }

 private:
  std::array<std::vector<const AddedToken*>, 256> by_first_;
};

// ---- The tokenizer ------------------------------------------------------

class HfTokenizer final : public Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<HfTokenizer>> FromJson(const json& root);

  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              bool add_special_tokens) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> TokenToId(std::string_view token) const override {
    if (auto it = added_by_content_.find(absl::string_view(token.data(), token.size())); it != added_by_content_.end()) return it->second;
    return model_->TokenToId(token);
  }

 private:
  HfTokenizer() = default;
  absl::Status PreTokenize(const Piece& piece, std::vector<std::string>* words) const;

  std::vector<AddedToken> added_;
  absl::flat_hash_map<int32_t, size_t> added_by_id_;
  absl::flat_hash_map<std::string, int32_t> added_by_content_;
  AddedTokenMatcher raw_matcher_, normalized_matcher_;
  std::vector<NormalizerStep> normalizer_;
  std::vector<PreTokenizerStep> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  // TemplateProcessing's `single`: ids to add, with -1 standing for the text.
  std::vector<int32_t> template_;
  bool has_template_ = false;
  std::vector<DecoderStep> decoder_;
  int32_t vocab_size_ = 0;
};

absl::Status ParsePostProcessor(const json& node, const std::string& path,
                                std::vector<int32_t>* single, bool* has_template) {
  if (node.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(node);
  if (type == "ByteLevel") return absl::OkStatus();  // offsets only; ids unchanged
  if (type == "Sequence") {
    if (!node.contains("processors") || !node["processors"].is_array()) {
      return Unsupported(path + ".processors", "must be a list");
    }
    for (size_t i = 0; i < node["processors"].size(); ++i) {
      BRAID_RETURN_IF_ERROR(ParsePostProcessor(
          node["processors"][i], absl::StrCat(path, ".processors[", i, "]"), single, has_template));
    }
    return absl::OkStatus();
  }
  if (type != "TemplateProcessing") {
    return Unsupported(path + ".type", "\"" + type + "\" is not supported (null, ByteLevel, "
                                       "TemplateProcessing or a Sequence of them)");
  }
  if (*has_template) return Unsupported(path, "a second TemplateProcessing is not supported");
  *has_template = true;
  if (!node.contains("single") || !node["single"].is_array()) {
    return Unsupported(path + ".single", "must be a list");
  }
  const json& specials = node.value("special_tokens", json::object());
  bool sequence_seen = false;
  for (size_t i = 0; i < node["single"].size(); ++i) {
    const json& item = node["single"][i];
    const std::string where = absl::StrCat(path, ".single[", i, "]");
    if (item.contains("Sequence")) {
      if (sequence_seen) return Unsupported(where, "the sequence appears twice");
      sequence_seen = true;
      single->push_back(-1);
    } else if (item.contains("SpecialToken") && item["SpecialToken"].contains("id") &&
               item["SpecialToken"]["id"].is_string()) {
      const std::string name = item["SpecialToken"]["id"].get<std::string>();
      if (!specials.is_object() || !specials.contains(name) || !specials[name].contains("ids") ||
          !specials[name]["ids"].is_array()) {
        return Unsupported(where, "special token \"" + name +
                                      "\" is not in post_processor.special_tokens");
      }
      for (const json& id : specials[name]["ids"]) {
        if (!id.is_number_unsigned()) {
          return Unsupported(path + ".special_tokens[\"" + name + "\"].ids", "must be ids");
        }
        single->push_back(static_cast<int32_t>(id.get<uint32_t>()));
      }
    } else {
      return Unsupported(where, "must be {\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}");
    }
  }
  if (!sequence_seen) return Unsupported(path + ".single", "has no Sequence item");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::FromJson(const json& root) {
  if (!root.is_object()) return Unsupported("(top level)", "must be a JSON object");
  auto tok = std::unique_ptr<HfTokenizer>(new HfTokenizer());
  const json& model = root.value("model", json());
  const std::string model_type = TypeOf(model);
  if (model_type != "BPE") {
    return Unsupported("model.type", "\"" + model_type + "\" is not supported (BPE only)");
  }
  BRAID_ASSIGN_OR_RETURN(BpeModel bpe, BpeModel::FromJson(model, "model"));
  tok->model_ = std::make_unique<BpeModel>(std::move(bpe));
  tok->vocab_size_ = tok->model_->size();

  if (root.contains("truncation") && !root["truncation"].is_null()) {
    return Unsupported("truncation", "must be null (Braid truncates to spec.data.maxLength)");
  }
  if (root.contains("padding") && !root["padding"].is_null()) {
    return Unsupported("padding", "must be null (Braid pads batches itself)");
  }
  const json& added = root.value("added_tokens", json::array());
  if (!added.is_array()) return Unsupported("added_tokens", "must be a list");
  tok->added_.reserve(added.size());
  for (size_t i = 0; i < added.size(); ++i) {
    const json& a = added[i];
    const std::string where = absl::StrCat("added_tokens[", i, "]");
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned() ||
        a["id"].get<uint64_t>() >= (uint64_t{1} << 31) - 1 || !a.contains("content") ||
        !a["content"].is_string()) {
      return Unsupported(where, "must have an id >= 0 and a content string");
    }
    if (GetBool(a, "single_word", false)) {
      return Unsupported(where + ".single_word", "true is not supported");
    }
    AddedToken t{static_cast<int32_t>(a["id"].get<uint64_t>()), a["content"].get<std::string>(),
                 GetBool(a, "special", false), GetBool(a, "normalized", true),
                 GetBool(a, "lstrip", false), GetBool(a, "rstrip", false)};
    if (t.content.empty()) return Unsupported(where + ".content", "must not be empty");
    tok->vocab_size_ = std::max(tok->vocab_size_, t.id + 1);
    tok->added_.push_back(std::move(t));
  }
  for (size_t i = 0; i < tok->added_.size(); ++i) {
    const AddedToken& t = tok->added_[i];
    tok->added_by_id_[t.id] = i;
    tok->added_by_content_[t.content] = t.id;
    (t.normalized ? tok->normalized_matcher_ : tok->raw_matcher_).Add(&t);
  }
  tok->raw_matcher_.Finish();
  tok->normalized_matcher_.Finish();

  BRAID_RETURN_IF_ERROR(ParseNormalizer(root.value("normalizer", json()), "normalizer",
                                        &tok->normalizer_));
  BRAID_RETURN_IF_ERROR(ParsePreTokenizer(root.value("pre_tokenizer", json()), "pre_tokenizer",
                                          &tok->pre_tokenizer_));
  BRAID_RETURN_IF_ERROR(ParsePostProcessor(root.value("post_processor", json()), "post_processor",
                                           &tok->template_, &tok->has_template_));
  BRAID_RETURN_IF_ERROR(ParseDecoder(root.value("decoder", json()), "decoder", &tok->decoder_));

  // Guessed special tokens; LoadTokenizer overrides them from the configs.
  SpecialTokenIds special;
  if (tok->has_template_ && !tok->template_.empty() && tok->template_.front() >= 0) {
    special.bos = tok->template_.front();
  }
  for (const char* name : {"</s>", "<|endoftext|>", "<|end_of_text|>", "<|im_end|>", "<eos>"}) {
    auto it = tok->added_by_content_.find(name);
    if (it != tok->added_by_content_.end()) {
      special.eos = it->second;
      break;
    }
  }
  if (auto unk = tok->TokenToId("<unk>")) special.unk = *unk;
  tok->set_special(special);
  return tok;
}

absl::Status HfTokenizer::PreTokenize(const Piece& piece, std::vector<std::string>* words) const {
  struct Word {
    std::string text;
    bool at_start;
  };
  std::vector<Word> current = {{piece.text, piece.at_start}};
  for (const PreTokenizerStep& step : pre_tokenizer_) {
    std::vector<Word> next;
    for (Word& w : current) {
      std::vector<std::string> parts;
      switch (step.kind) {
        case PreTokenizerStep::kByteLevel: {
          std::string text = std::move(w.text);
          if (step.add_prefix_space && (text.empty() || text[0] != ' ')) text.insert(0, " ");
          if (step.regex) {
            BRAID_RETURN_IF_ERROR(
                SplitByRegex(*step.regex, SplitBehavior::kIsolated, false, text, &parts));
          } else if (!text.empty()) {
            parts.push_back(std::move(text));
          }
          for (std::string& p : parts) p = ToByteLevel(p);
          break;
        }
        case PreTokenizerStep::kSplit:
          BRAID_RETURN_IF_ERROR(SplitByRegex(*step.regex, step.behavior, step.invert, w.text, &parts));
          break;
        case PreTokenizerStep::kMetaspace: {
          std::string text;
          for (char c : w.text) {
            if (c == ' ') {
              text += step.replacement;
            } else {
              text.push_back(c);
            }
          }
          const bool starts = text.compare(0, step.replacement.size(), step.replacement) == 0;
          if (!starts && (step.prepend == PreTokenizerStep::kAlways ||
                          (step.prepend == PreTokenizerStep::kFirst && w.at_start))) {
            text.insert(0, step.replacement);
          }
          if (step.split) {
            BRAID_RETURN_IF_ERROR(
                SplitByRegex(*step.regex, SplitBehavior::kMergedWithNext, false, text, &parts));
          } else if (!text.empty()) {
            parts.push_back(std::move(text));
          }
          break;
        }
      }
      for (size_t i = 0; i < parts.size(); ++i) {
        next.push_back(Word{std::move(parts[i]), w.at_start && i == 0});
      }
    }
    current = std::move(next);
  }
  for (Word& w : current) {
    if (!w.text.empty()) words->push_back(std::move(w.text));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> HfTokenizer::Encode(std::string_view text,
                                                         bool add_special_tokens) const {
  if (text.size() > kMaxEncodeBytes) {
    return absl::InvalidArgumentError(absl::StrCat("text of ", text.size(),
                                                   " bytes is longer than the ", kMaxEncodeBytes,
                                                   " bytes a tokenizer accepts"));
  }
  if (!internal::IsValidUtf8(text)) return absl::InvalidArgumentError("text is not valid UTF-8");
  std::vector<Piece> pieces = raw_matcher_.Split({Piece{std::string(text), -1, true}});
  for (Piece& p : pieces) {
    if (p.token_id >= 0) continue;
    for (const NormalizerStep& step : normalizer_) {
      switch (step.kind) {
        case NormalizerStep::kNfc: {
          BRAID_ASSIGN_OR_RETURN(p.text, internal::NormalizeNfc(p.text));
          break;
        }
        case NormalizerStep::kPrepend:
          if (!p.text.empty()) p.text.insert(0, step.text);
          break;
        case NormalizerStep::kReplace: {
          BRAID_ASSIGN_OR_RETURN(p.text, ReplaceAll(*step.regex, p.text, step.text));
          break;
        }
      }
    }
  }
  pieces = normalized_matcher_.Split(std::move(pieces));

  std::vector<int32_t> ids;
  std::vector<std::string> words;
  for (const Piece& p : pieces) {
    if (p.token_id >= 0) {
      ids.push_back(p.token_id);
      continue;
    }
    if (p.text.empty()) continue;
    words.clear();
    BRAID_RETURN_IF_ERROR(PreTokenize(p, &words));
    for (const std::string& w : words) model_->Tokenize(w, &ids);
  }
  if (!add_special_tokens || !has_template_) return ids;
  std::vector<int32_t> out;
  out.reserve(ids.size() + template_.size());
  for (int32_t t : template_) {
    if (t < 0) {
      out.insert(out.end(), ids.begin(), ids.end());
    } else {
      out.push_back(t);
    }
  }
  return out;
}

absl::StatusOr<std::string> HfTokenizer::Decode(absl::Span<const int32_t> ids,
                                                bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) {
      const AddedToken& t = added_[it->second];
      if (!(skip_special_tokens && t.special)) tokens.push_back(t.content);
      continue;
    }
    const std::string& token = model_->IdToToken(id);
    if (token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("ids[", i, "]: ", id, " is not a token id (",
                                                     "vocabulary of ", vocab_size_, ")"));
    }
    tokens.push_back(token);
  }
  if (decoder_.empty()) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) absl::StrAppend(&out, i ? " " : "", tokens[i]);
    return out;
  }
  for (const DecoderStep& step : decoder_) {
    BRAID_ASSIGN_OR_RETURN(tokens, RunDecoder(step, std::move(tokens)));
  }
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadHfTokenizerJson(const std::string& file) {
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(file, kMaxTokenizerFileBytes));
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not valid JSON: ", e.what()));
  }
  absl::StatusOr<std::unique_ptr<HfTokenizer>> tok;
  try {
    tok = HfTokenizer::FromJson(root);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": unexpected structure: ", e.what()));
  }
  if (!tok.ok()) {
    return absl::Status(tok.status().code(), absl::StrCat(file, ": ", tok.status().message()));
  }
  return std::unique_ptr<Tokenizer>(std::move(*tok));
}

}  // namespace braid::worker
