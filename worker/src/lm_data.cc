#include "braid/worker/lm_data.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "braid/core/status_macros.h"
#include "nlohmann/json.hpp"
#include "unicode_text.h"

namespace braid::worker {
namespace {

using nlohmann::json;

constexpr int kMaxJsonDepth = 32;  // records are flat; deeper lines are refused unparsed

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Reads lines of at most `max_bytes` (without the '\n'); longer ones are
// consumed without being stored and reported as too long.
class BoundedLineReader {
 public:
  BoundedLineReader(std::ifstream* in, size_t max_bytes) : in_(in), max_bytes_(max_bytes) {}

  // False at the end of the file. Sets *too_long instead of filling *line
  // when the line exceeds the bound.
  bool Next(std::string* line, bool* too_long) {
    line->clear();
    *too_long = false;
    bool any = false;
    while (true) {
      if (pos_ == len_) {
        if (!in_->good()) return any;
        in_->read(buffer_, sizeof(buffer_));
        len_ = static_cast<size_t>(in_->gcount());
        pos_ = 0;
        if (len_ == 0) return any;
      }
      any = true;
      const char* start = buffer_ + pos_;
      const void* nl = std::memchr(start, '\n', len_ - pos_);
      const size_t take = nl ? static_cast<const char*>(nl) - start : len_ - pos_;
      if (!*too_long) {
        if (line->size() + take > max_bytes_) {
          *too_long = true;
          line->clear();
          line->shrink_to_fit();
        } else {
          line->append(start, take);
        }
      }
      pos_ += take;
      if (nl) {
        ++pos_;
        if (!line->empty() && line->back() == '\r') line->pop_back();
        return true;
      }
    }
  }

 private:
  std::ifstream* in_;
  size_t max_bytes_;
  char buffer_[1 << 16];
  size_t pos_ = 0, len_ = 0;
};

// Nesting depth of JSON text, strings skipped; stops counting past `limit`.
int JsonDepth(const std::string& s, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > limit) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

std::string Describe(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    default: return "a string";
  }
}

// A record's strings: the prompt part (no loss) and the answer (loss), or
// only text (loss everywhere).
struct Record {
  bool instruction = false;
  std::string prompt;  // instruction records
  std::string answer;  // instruction records
  std::string text;    // text records
};

// Reads a field that must be a string when present. Returns an error
// message, or "" when fine (*out unset when absent).
std::string StringField(const json& obj, const char* key, bool required,
                        std::optional<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return required ? absl::StrCat("missing \"", key, "\"") : "";
  if (!it->is_string()) {
    return absl::StrCat("\"", key, "\" must be a string, got ", Describe(*it));
  }
  *out = it->get<std::string>();
  if (required && (*out)->empty()) return absl::StrCat("\"", key, "\" is empty");
  return "";
}

// Parses one line into a record, or returns the problem.
std::string ParseRecord(const std::string& line, Record* record) {
  if (line.find_first_not_of(" \t\r") == std::string::npos) return "empty line";
  if (!internal::IsValidUtf8(line)) return "not valid UTF-8";
  if (JsonDepth(line, kMaxJsonDepth) > kMaxJsonDepth) {
    return absl::StrCat("JSON nested deeper than ", kMaxJsonDepth, " levels");
  }
  json obj;
  try {
    obj = json::parse(line);
  } catch (const json::parse_error& e) {
    // The position only: nlohmann's message quotes the text it last read,
    // and the line may be anything (errors reach logs).
    return absl::StrCat("not valid JSON (column ", e.byte, ")");
  } catch (const json::exception&) {
    return "not valid JSON";
  }
  if (!obj.is_object()) return "must be a JSON object, got " + Describe(obj);
  const bool text = obj.contains("text");
  const bool alpaca = obj.contains("instruction") || obj.contains("output");
  const bool chat = obj.contains("prompt") || obj.contains("response");
  const int kinds = int{text} + int{alpaca} + int{chat};
  if (kinds == 0) {
    return "has none of \"text\", \"instruction\"/\"output\" or \"prompt\"/\"response\"";
  }
  if (kinds > 1) {
    return "mixes record kinds: give \"text\", or \"instruction\"/\"input\"/\"output\", or "
           "\"prompt\"/\"response\"";
  }
  std::optional<std::string> a, b, c;
  if (text) {
    if (std::string e = StringField(obj, "text", true, &a); !e.empty()) return e;
    record->text = std::move(*a);
    return "";
  }
  record->instruction = true;
  if (chat) {
    if (std::string e = StringField(obj, "prompt", true, &a); !e.empty()) return e;
    if (std::string e = StringField(obj, "response", true, &b); !e.empty()) return e;
    record->prompt = std::move(*a);
    record->answer = std::move(*b);
    return "";
  }
  if (std::string e = StringField(obj, "instruction", true, &a); !e.empty()) return e;
  if (std::string e = StringField(obj, "input", false, &c); !e.empty()) return e;
  if (std::string e = StringField(obj, "output", true, &b); !e.empty()) return e;
  const bool with_input = c.has_value() && !c->empty();
  record->prompt = absl::StrReplaceAll(
      with_input ? kInstructionWithInputTemplate : kInstructionTemplate,
      {{"{instruction}", *a}, {"{input}", with_input ? *c : ""}});
  record->answer = std::move(*b);
  return "";
}

// Concatenates `examples` and cuts the stream into `block` tokens.
std::vector<LmExample> Pack(const std::vector<LmExample>& examples, int block) {
  std::vector<LmExample> out;
  LmExample current;
  for (const LmExample& e : examples) {
    for (size_t i = 0; i < e.input_ids.size(); ++i) {
      current.input_ids.push_back(e.input_ids[i]);
      current.labels.push_back(e.labels[i]);
      if (current.input_ids.size() == static_cast<size_t>(block)) {
        out.push_back(std::move(current));
        current = LmExample();
      }
    }
  }
  if (!current.input_ids.empty()) out.push_back(std::move(current));
  return out;
}

}  // namespace

LmDataOptions LmDataOptionsFromJob(const spec::JobSpec& job) {
  LmDataOptions options;
  options.max_length = job.data.max_length;
  options.packing = job.data.packing;
  options.eval_fraction = job.data.eval_fraction;
  options.seed = static_cast<uint64_t>(job.training.seed);
  return options;
}

int32_t PadId(const Tokenizer& tokenizer) {
  if (tokenizer.special().pad >= 0) return tokenizer.special().pad;
  if (tokenizer.special().eos >= 0) return tokenizer.special().eos;
  return 0;
}

absl::StatusOr<LmDataset> ReadLmJsonl(const std::string& file, const Tokenizer& tokenizer,
                                      const LmDataOptions& options) {
  if (options.max_length < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_length must be at least 2, got ", options.max_length));
  }
  if (!(options.eval_fraction >= 0 && options.eval_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("eval_fraction must be in [0, 1), got ", options.eval_fraction));
  }
  const int32_t eos = tokenizer.special().eos;
  if (eos < 0) {
    return absl::InvalidArgumentError(
        file + ": the tokenizer has no EOS token (set eos_token in tokenizer_config.json)");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const int error = errno;
    if (error == ENOENT) return absl::NotFoundError(file + ": no such file");
    return absl::InvalidArgumentError(file + ": cannot open: " + std::strerror(error));
  }

  LmDataset data;
  LmDataReport& report = data.report;
  std::vector<LmExample> examples;
  size_t total_tokens = 0;
  const auto problem = [&](int64_t line, const std::string& message) {
    ++report.skipped;
    if (report.problems.size() < options.max_problems_kept) {
      report.problems.push_back(absl::StrCat(file, ":", line, ": ", message));
    }
  };

  BoundedLineReader reader(&in, options.max_line_bytes);
  std::string line;
  bool too_long = false;
  while (reader.Next(&line, &too_long)) {
    const int64_t number = static_cast<int64_t>(++report.lines);
    if (too_long) {
      problem(number, absl::StrCat("line is longer than ", options.max_line_bytes, " bytes"));
      continue;
    }
    Record record;
    if (std::string e = ParseRecord(line, &record); !e.empty()) {
      problem(number, e);
      continue;
    }
    LmExample ex;
    ex.line = number;
    size_t prompt_len = 0;
    if (record.instruction) {
      absl::StatusOr<std::vector<int32_t>> p = tokenizer.Encode(record.prompt, true);
      absl::StatusOr<std::vector<int32_t>> a = tokenizer.Encode(record.answer, false);
      if (!p.ok() || !a.ok()) {
        problem(number, std::string((p.ok() ? a.status() : p.status()).message()));
        continue;
      }
      prompt_len = p->size();
      if (!options.packing && prompt_len >= static_cast<size_t>(options.max_length)) {
        problem(number, absl::StrCat("the prompt alone is ", prompt_len,
                                     " tokens, which leaves no response token within maxLength ",
                                     options.max_length));
        continue;
      }
      ex.input_ids = std::move(*p);
      ex.input_ids.insert(ex.input_ids.end(), a->begin(), a->end());
    } else {
      absl::StatusOr<std::vector<int32_t>> t = tokenizer.Encode(record.text, true);
      if (!t.ok()) {
        problem(number, std::string(t.status().message()));
        continue;
      }
      ex.input_ids = std::move(*t);
    }
    ex.input_ids.push_back(eos);
    ex.labels = ex.input_ids;
    std::fill(ex.labels.begin(), ex.labels.begin() + static_cast<std::ptrdiff_t>(prompt_len),
              kIgnoreLabel);
    if (!options.packing && ex.input_ids.size() > static_cast<size_t>(options.max_length)) {
      ex.input_ids.resize(options.max_length);
      ex.labels.resize(options.max_length);
      ++report.truncated;
    }
    total_tokens += ex.input_ids.size();
    if (total_tokens > options.max_total_tokens) {
      return absl::InvalidArgumentError(absl::StrCat(
          file, ":", number, ": more than ", options.max_total_tokens,
          " tokens in the file; split it or raise the limit"));
    }
    if (examples.size() >= options.max_records) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ":", number, ": more than ", options.max_records, " records"));
    }
    ++(record.instruction ? report.instruction_records : report.text_records);
    examples.push_back(std::move(ex));
  }
  if (in.bad()) return absl::DataLossError(file + ": read error");
  report.records = examples.size();
  if (examples.empty()) {
    std::string message = absl::StrCat(file, ": no usable record in ", report.lines, " lines");
    for (size_t i = 0; i < report.problems.size() && i < 5; ++i) {
      absl::StrAppend(&message, "\n", report.problems[i]);
    }
    return absl::InvalidArgumentError(message);
  }

  // Eval: the records with the smallest hash of (seed, line).
  const size_t n = examples.size();
  size_t eval_count = 0;
  if (n >= 2 && options.eval_fraction > 0) {
    eval_count = static_cast<size_t>(std::llround(static_cast<double>(n) * options.eval_fraction));
    eval_count = std::clamp<size_t>(eval_count, 1, n - 1);
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::vector<uint64_t> keys(n);
  for (size_t i = 0; i < n; ++i) {
    keys[i] = SplitMix64(options.seed ^ SplitMix64(static_cast<uint64_t>(examples[i].line)));
  }
  std::sort(order.begin(), order.end(),
            [&](size_t x, size_t y) { return keys[x] != keys[y] ? keys[x] < keys[y] : x < y; });
  std::vector<bool> is_eval(n, false);
  for (size_t i = 0; i < eval_count; ++i) is_eval[order[i]] = true;
  std::vector<LmExample> train, eval;
  for (size_t i = 0; i < n; ++i) {
    (is_eval[i] ? eval : train).push_back(std::move(examples[i]));
  }
  for (const LmExample& e : train) report.train_tokens += e.input_ids.size();
  for (const LmExample& e : eval) report.eval_tokens += e.input_ids.size();
  if (options.packing) {
    data.train = Pack(train, options.max_length);
    data.eval = Pack(eval, options.max_length);
  } else {
    data.train = std::move(train);
    data.eval = std::move(eval);
  }
  return data;
}

std::vector<LmBatch> MakeLmBatches(const std::vector<LmExample>& examples, int batch_size,
                                   int32_t pad_id, bool shuffle, uint64_t seed) {
  std::vector<LmBatch> batches;
  if (batch_size < 1 || examples.empty()) return batches;
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (shuffle) {
    uint64_t state = seed;
    for (size_t i = order.size() - 1; i > 0; --i) {
      state = SplitMix64(state);
      const size_t j = static_cast<size_t>(state % (i + 1));
      std::swap(order[i], order[j]);
    }
  }
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size));
    LmBatch b;
    b.rows = static_cast<int64_t>(end - start);
    for (size_t k = start; k < end; ++k) {
      b.cols = std::max<int64_t>(b.cols, static_cast<int64_t>(examples[order[k]].input_ids.size()));
    }
    const size_t cells = static_cast<size_t>(b.rows * b.cols);
    b.input_ids.assign(cells, pad_id);
    b.attention_mask.assign(cells, 0);
    b.labels.assign(cells, kIgnoreLabel);
    for (size_t k = start; k < end; ++k) {
      const LmExample& e = examples[order[k]];
      const size_t row = (k - start) * static_cast<size_t>(b.cols);
      for (size_t t = 0; t < e.input_ids.size(); ++t) {
        b.input_ids[row + t] = e.input_ids[t];
        b.attention_mask[row + t] = 1;
        b.labels[row + t] = e.labels[t];
      }
    }
    batches.push_back(std::move(b));
  }
  return batches;
}

}  // namespace braid::worker
