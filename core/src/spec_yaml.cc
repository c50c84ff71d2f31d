// Errors, field paths, names and maps: the structure of the job.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "spec_yaml.h"

namespace braid::spec::internal {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Lower case without '_' and '-': "min_clients" and "MinClients" both
// become "minclients".
std::string Normalize(std::string_view s) {
  std::string out;
  for (char c : Lower(s)) {
    if (c != '_' && c != '-') out.push_back(c);
  }
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::vector<std::string_view> Concat(std::vector<std::string_view> a,
                                     const std::vector<std::string_view>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

void Errors::Add(std::string path, std::string message) {
  ++total_;
  if (errors_.size() < kMaxErrors) errors_.push_back({std::move(path), std::move(message)});
}

std::vector<FieldError> Errors::Take() && {
  if (total_ > errors_.size()) {
    errors_.push_back({kFilePath, absl::StrCat(total_ - errors_.size(),
                                               " more errors not shown; fix these first")});
  }
  return std::move(errors_);
}

std::string FieldPath(std::string_view parent, std::string_view key) {
  // An empty key is shown as "<empty>": a path is never empty.
  std::string shown = key.empty() ? std::string("<empty>") : Shorten(key);
  if (parent.empty()) return shown;
  return std::string(parent) + "." + shown;
}

std::string IndexPath(std::string_view parent, size_t index) {
  return absl::StrCat(std::string(parent), "[", index, "]");
}

std::string Suggest(std::string_view key, const std::vector<std::string_view>& known) {
  if (key.empty() || key.size() > kMaxShown) return "";
  const std::string norm = Normalize(key);
  const std::string lower = Lower(key);
  std::string best;
  size_t best_distance = 3;  // suggest only within two edits
  for (std::string_view candidate : known) {
    const std::string cand_norm = Normalize(candidate);
    if (norm == cand_norm) return std::string(candidate);
    size_t d = EditDistance(lower, Lower(candidate));
    if (d < best_distance && d < std::max<size_t>(2, key.size() / 2)) {
      best_distance = d;
      best = std::string(candidate);
    }
    // "epochs" for "localEpochs", "claim" for "claimName".
    if (best.empty() && norm.size() >= 4 && cand_norm.find(norm) != std::string::npos) {
      best = std::string(candidate);
    }
  }
  return best;
}

bool CheckList(const YAML::Node& node, const std::string& path, size_t min_size,
               size_t max_size, std::string_view what, Errors* errors) {
  if (!node.IsSequence()) {
    errors->Add(path, absl::StrCat("must be a list of ", std::string(what), ", got ",
                                   Describe(node)));
    return false;
  }
  size_t size = node.size();
  if (size < min_size) {
    errors->Add(path, min_size == 1 ? std::string("must not be empty")
                                    : absl::StrCat("must list at least ", min_size, " ",
                                                   std::string(what)));
    return false;
  }
  if (size > max_size) {
    errors->Add(path, absl::StrCat("must list at most ", max_size, " ", std::string(what),
                                   ", got ", size));
    return false;
  }
  return true;
}

MapReader::MapReader(const YAML::Node& node, std::string path,
                     std::vector<std::string_view> known, Errors* errors,
                     std::vector<std::string_view> ignored)
    : path_(std::move(path)), errors_(errors) {
  if (!node.IsMap()) {
    errors_->Add(path_.empty() ? kFilePath : path_, "must be a map, got " + Describe(node));
    return;
  }
  ok_ = true;
  std::vector<std::pair<std::string, int>> seen;  // key, 1-based line
  size_t count = 0;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (++count > kMaxMapEntries) {
      errors_->Add(path_.empty() ? kFilePath : path_,
                   absl::StrCat("has more than ", kMaxMapEntries, " fields; not read further"));
      break;
    }
    // Copies: the iterator's pair is a temporary.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const int line = key.Mark().line + 1;
    if (!key.IsScalar()) {
      errors_->Add(path_.empty() ? kFilePath : path_,
                   absl::StrCat("field names must be strings, got ", Describe(key), " at line ",
                                line));
      continue;
    }
    const std::string& name = key.Scalar();
    const std::string field = Path(name);
    if (name.size() > kMaxShown) {  // longer than any field name; not compared
      errors_->Add(field, "unknown field");
      continue;
    }
    auto previous = std::find_if(seen.begin(), seen.end(),
                                 [&](const auto& entry) { return entry.first == name; });
    if (previous != seen.end()) {
      errors_->Add(field, absl::StrCat("duplicate field (first set at line ", previous->second,
                                       ")"));
      continue;
    }
    seen.emplace_back(name, line);
    if (std::find(ignored.begin(), ignored.end(), name) != ignored.end()) continue;
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string message = "unknown field";
      if (errors_->full()) {
        // Only counted now; skip the work of a hint nobody sees.
      } else if (name == "<<") {
        message += " (YAML merge keys are not supported; write the fields out)";
      } else if (std::string hint = Suggest(name, Concat(known, ignored)); !hint.empty()) {
        message += " (did you mean " + Quote(hint) + "?)";
      } else {
        message += "; expected one of: ";
        for (size_t i = 0; i < known.size(); ++i) {
          message += (i > 0 ? ", " : "") + std::string(known[i]);
        }
      }
      errors_->Add(field, std::move(message));
      continue;
    }
    entries_.emplace_back(name, value);
  }
}

const YAML::Node* MapReader::Find(std::string_view key) const {
  for (const auto& [name, value] : entries_) {
    if (name == key) return value.IsNull() ? nullptr : &value;
  }
  return nullptr;
}

const YAML::Node* MapReader::Require(std::string_view key, std::string_view hint) const {
  const YAML::Node* value = Find(key);
  if (value == nullptr && ok_) {
    std::string message = "required";
    if (!hint.empty()) message += "; " + std::string(hint);
    errors_->Add(Path(key), std::move(message));
  }
  return value;
}

}  // namespace braid::spec::internal
