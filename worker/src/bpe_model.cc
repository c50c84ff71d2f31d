#include "bpe_model.h"

#include <queue>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "unicode_text.h"

namespace braid::worker::internal {
namespace {

absl::Status Bad(const std::string& path, std::string_view message) {
  return absl::InvalidArgumentError(path + ": " + std::string(message));
}

// One symbol of the word being merged, in a doubly linked list over a vector.
struct Symbol {
  int32_t id;
  int64_t prev;
  int64_t next;
  size_t len;  // bytes; 0 once merged into its left neighbour
};

struct QueuedMerge {
  int32_t rank;
  size_t pos;
  int32_t new_id;
  // std::priority_queue pops the largest: make the lowest rank, then the
  // lowest position, the largest.
  bool operator<(const QueuedMerge& o) const {
    if (rank != o.rank) return rank > o.rank;
    return pos > o.pos;
  }
};

}  // namespace

absl::StatusOr<BpeModel> BpeModel::FromJson(const nlohmann::json& model, const std::string& path) {
  BpeModel bpe;
  const auto field = [&](const char* name) { return path + "." + name; };
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    if (!model["dropout"].is_number() || model["dropout"].get<double>() > 0) {
      return Bad(field("dropout"), "BPE dropout is not supported (set it to null)");
    }
  }
  for (const char* name : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(name) && !model[name].is_null() &&
        !(model[name].is_string() && model[name].get<std::string>().empty())) {
      return Bad(field(name), "is not supported (byte-level and SentencePiece-style BPE only)");
    }
  }
  const auto flag = [&](const char* name, bool* out) -> absl::Status {
    if (!model.contains(name) || model[name].is_null()) return absl::OkStatus();
    if (!model[name].is_boolean()) return Bad(field(name), "must be true or false");
    *out = model[name].get<bool>();
    return absl::OkStatus();
  };
  if (absl::Status s = flag("byte_fallback", &bpe.byte_fallback_); !s.ok()) return s;
  if (absl::Status s = flag("fuse_unk", &bpe.fuse_unk_); !s.ok()) return s;
  if (absl::Status s = flag("ignore_merges", &bpe.ignore_merges_); !s.ok()) return s;

  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return Bad(field("vocab"), "must be an object of token -> id");
  }
  const nlohmann::json& vocab = model["vocab"];
  bpe.vocab_.reserve(vocab.size());
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() >= (int64_t{1} << 31) - 1) {
      return Bad(field("vocab") + "[\"" + it.key() + "\"]", "must be an id >= 0");
    }
    const int64_t id = it.value().get<int64_t>();
    bpe.vocab_[it.key()] = static_cast<int32_t>(id);
    if (id > max_id) max_id = id;
  }
  if (max_id >= static_cast<int64_t>(vocab.size()) * 4 + 1024) {
    return Bad(field("vocab"), absl::StrCat("ids are sparse (largest ", max_id, " for ",
                                            vocab.size(), " tokens)"));
  }
  bpe.id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [token, id] : bpe.vocab_) bpe.id_to_token_[id] = token;

  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    if (!model["unk_token"].is_string()) return Bad(field("unk_token"), "must be a string");
    auto it = bpe.vocab_.find(model["unk_token"].get<std::string>());
    if (it == bpe.vocab_.end()) return Bad(field("unk_token"), "is not in model.vocab");
    bpe.unk_id_ = it->second;
  }
  if (bpe.byte_fallback_) {
    bpe.byte_ids_.assign(256, -1);
    for (int b = 0; b < 256; ++b) {
      auto it = bpe.vocab_.find(absl::StrFormat("<0x%02X>", b));
      if (it != bpe.vocab_.end()) bpe.byte_ids_[b] = it->second;
    }
  }

  if (!model.contains("merges") || !model["merges"].is_array()) {
    return Bad(field("merges"), "must be a list of merges (\"a b\" or [\"a\", \"b\"])");
  }
  const nlohmann::json& merges = model["merges"];
  bpe.merges_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string where = absl::StrCat(field("merges"), "[", i, "]");
    std::string a, b;
    const nlohmann::json& m = merges[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return Bad(where, "must be two tokens separated by one space");
      }
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      return Bad(where, "must be \"a b\" or [\"a\", \"b\"]");
    }
    auto ia = bpe.vocab_.find(a), ib = bpe.vocab_.find(b), inew = bpe.vocab_.find(a + b);
    if (ia == bpe.vocab_.end() || ib == bpe.vocab_.end() || inew == bpe.vocab_.end()) {
      return Bad(where, "merges tokens that are not in model.vocab");
    }
    bpe.merges_.emplace(PairKey(ia->second, ib->second),
                        Merge{static_cast<int32_t>(i), inew->second});
  }
  return bpe;
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(absl::string_view(token.data(), token.size()));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string& BpeModel::IdToToken(int32_t id) const {
  static const std::string* empty = new std::string();
  if (id < 0 || id >= size()) return *empty;
  return id_to_token_[id];
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(absl::string_view(word.data(), word.size())); it != vocab_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto add = [&](int32_t id, size_t len) {
    const int64_t pos = static_cast<int64_t>(symbols.size());
    symbols.push_back(Symbol{id, pos - 1, pos + 1, len});
  };
  std::optional<std::pair<int32_t, size_t>> unk;  // pending (id, bytes)
  for (size_t i = 0; i < word.size();) {
    const size_t n = std::min(Utf8CharLength(static_cast<unsigned char>(word[i])), word.size() - i);
    const std::string_view c = word.substr(i, n);
    i += n;
    if (auto it = vocab_.find(absl::string_view(c.data(), c.size())); it != vocab_.end()) {
      if (unk) {
        add(unk->first, unk->second);
        unk.reset();
      }
      add(it->second, n);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char ch : c) all = all && byte_ids_[static_cast<unsigned char>(ch)] >= 0;
      if (all) {
        for (char ch : c) add(byte_ids_[static_cast<unsigned char>(ch)], 1);
        continue;
      }
    }
    if (unk_id_) {
      if (unk && fuse_unk_) {
        unk->second += n;
      } else {
        if (unk) add(unk->first, unk->second);
        unk = std::make_pair(*unk_id_, n);
      }
    }
  }
  if (unk) add(unk->first, unk->second);
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::priority_queue<QueuedMerge> queue;
  const auto find = [&](int32_t a, int32_t b) -> const Merge* {
    auto it = merges_.find(PairKey(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* m = find(symbols[i].id, symbols[i + 1].id)) {
      queue.push(QueuedMerge{m->rank, i, m->new_id});
    }
  }
  while (!queue.empty()) {
    const QueuedMerge top = queue.top();
    queue.pop();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const size_t next_pos = static_cast<size_t>(cur.next);
    const Symbol right = symbols[next_pos];
    const Merge* m = find(cur.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = static_cast<int64_t>(top.pos);
    if (cur.prev >= 0) {
      const size_t prev = static_cast<size_t>(cur.prev);
      if (const Merge* pm = find(symbols[prev].id, cur.id)) {
        queue.push(QueuedMerge{pm->rank, prev, pm->new_id});
      }
    }
    if (cur.next >= 0) {
      if (const Merge* nm = find(cur.id, symbols[static_cast<size_t>(cur.next)].id)) {
        queue.push(QueuedMerge{nm->rank, top.pos, nm->new_id});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len != 0) out->push_back(s.id);
  }
}

}  // namespace braid::worker::internal
