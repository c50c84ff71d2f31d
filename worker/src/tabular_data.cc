#include "braid/worker/tabular_data.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "precondition.h"
#include "seeded_random.h"

namespace braid::worker {
namespace {

// Bounds that keep a hostile or broken file's cost in proportion to its
// size: a row's bytes (65536 features of 256 bytes fit), and the header's
// columns.
constexpr size_t kMaxCsvLineBytes = size_t{32} << 20;
constexpr size_t kMaxCsvColumns = size_t{1} << 20;

// Salt that separates the eval-split stream from other uses of the same seed.
constexpr uint64_t kSplitSalt = 0x5EED5B1170000001ULL;

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

absl::string_view Trim(absl::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && (IsBlank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A field in an error message: never its text (the file may hold anything,
// and errors reach logs), only its length.
std::string Quote(absl::string_view s) { return absl::StrCat("the value (", s.size(), " bytes)"); }

// Splits `line` at commas into `fields` (trimmed views into `line`), at most
// `max_fields` + 1 of them: a line with more is wrong anyway, and a line of
// commas must not cost 16 bytes per comma.
void SplitFields(absl::string_view line, std::vector<absl::string_view>& fields,
                 size_t max_fields) {
  fields.clear();
  size_t start = 0;
  while (fields.size() <= max_fields) {
    const size_t comma = line.find(',', start);
    if (comma == absl::string_view::npos) {
      fields.push_back(Trim(line.substr(start)));
      return;
    }
    fields.push_back(Trim(line.substr(start, comma - start)));
    start = comma + 1;
  }
}

// Parses all of `s` as a number: from_chars syntax plus an optional leading
// '+'. Returns "" on success, else why not (for "column 'x': <why>").
std::string ParseNumber(absl::string_view s, double* out) {
  if (s.empty()) return "empty value (missing values are not supported; fill or drop the row)";
  if (s.front() == '"' || s.front() == '\'') {
    return absl::StrCat(Quote(s), " is quoted; quoted fields are not supported");
  }
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  if (*begin == '+') {
    ++begin;
    if (begin == end || *begin == '+' || *begin == '-') {
      return absl::StrCat(Quote(s), " is not a number");
    }
  }
  const auto [ptr, ec] = std::from_chars(begin, end, *out);
  if (ec == std::errc::result_out_of_range) return absl::StrCat(Quote(s), " is out of range");
  if (ec != std::errc() || ptr != end) return absl::StrCat(Quote(s), " is not a number");
  if (!std::isfinite(*out)) return absl::StrCat(Quote(s), " is not a finite number");
  return "";
}

std::string ParseFeature(absl::string_view s, float* out) {
  double value = 0;
  std::string error = ParseNumber(s, &value);
  if (!error.empty()) return error;
  if (std::fabs(value) > std::numeric_limits<float>::max()) {
    return absl::StrCat(Quote(s), " is out of float32 range");
  }
  *out = static_cast<float>(value);
  return "";
}

// A class label: an integer ("3", also "3.0" as some writers emit) in
// [0, num_classes).
std::string ParseLabel(absl::string_view s, int num_classes, int64_t* out) {
  if (s.empty()) return "empty value (every row needs a class label)";
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  if (*begin == '+' && s.size() > 1 && begin[1] != '-' && begin[1] != '+') ++begin;
  int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) {
    double d = 0;
    if (!ParseNumber(s, &d).empty() || d != std::trunc(d) || std::fabs(d) > 1e15) {
      return absl::StrCat(Quote(s), " is not an integer class label");
    }
    value = static_cast<int64_t>(d);
  }
  if (value < 0 || value >= num_classes) {
    return absl::StrCat("class label ", value, " is outside [0, ", num_classes, ") (the model has ",
                        num_classes, " classes)");
  }
  *out = value;
  return "";
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (std::filesystem::is_directory(status)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not a CSV file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::string content;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size > 0) {
    content.resize(static_cast<size_t>(size));
    in.seekg(0, std::ios::beg);
    in.read(content.data(), size);
    if (in.gcount() != size) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": read failed: ", std::strerror(errno)));
    }
  } else {
    // Not seekable (a pipe) or empty: read as a stream.
    in.clear();
    in.seekg(0, std::ios::beg);
    content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return content;
}

TabularData Select(const TabularData& data, const std::vector<int64_t>& rows) {
  // from_blob borrows `rows` only for the duration of index_select, which copies.
  const torch::Tensor index =
      torch::from_blob(const_cast<int64_t*>(rows.data()), {static_cast<int64_t>(rows.size())},
                       torch::kLong);
  return TabularData{data.features.index_select(0, index), data.labels.index_select(0, index)};
}

}  // namespace

namespace {

// ReadCsv without its guard against std::bad_alloc.
absl::StatusOr<TabularData> ReadCsvUnguarded(const std::string& path,
                                             const spec::DataSchema& schema, int num_classes) {
  if (schema.format != "csv") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": data format '", schema.format, "' is not supported (only csv)"));
  }
  if (num_classes < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the model needs at least 2 classes, got ", num_classes));
  }
  auto content_or = ReadWholeFile(path);
  if (!content_or.ok()) return content_or.status();
  absl::string_view text = *content_or;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM

  // Reads the next physical line (without "\n"); false at end of text.
  size_t pos = 0;
  auto next_line = [&](absl::string_view* line) {
    if (pos >= text.size()) return false;
    size_t nl = text.find('\n', pos);
    if (nl == absl::string_view::npos) nl = text.size();
    *line = text.substr(pos, nl - pos);
    pos = nl + 1;
    return true;
  };

  absl::string_view line;
  next_line(&line);
  if (text.find_first_not_of(" \t\r\n") == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": empty file; expected a header row naming the columns, then one row per example"));
  }
  std::vector<absl::string_view> fields;
  if (line.size() > kMaxCsvLineBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":1: the header row is ", line.size(),
                                                   " bytes; a row is at most ", kMaxCsvLineBytes));
  }
  SplitFields(line, fields, kMaxCsvColumns);
  if (fields.size() > kMaxCsvColumns) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":1: the header row has more than ",
                                                   kMaxCsvColumns, " columns"));
  }
  const size_t num_columns = fields.size();
  if (num_columns == 1 && fields[0].empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":1: empty header row"));
  }

  // Column index of each selected name; reports every missing name at once.
  auto find_column = [&](const std::string& name, int* index) -> absl::Status {
    *index = -1;
    for (size_t c = 0; c < num_columns; ++c) {
      if (fields[c] != name) continue;
      if (*index >= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":1: column '", name,
                         "' appears more than once in the header (columns ", *index + 1, " and ",
                         c + 1, ")"));
      }
      *index = static_cast<int>(c);
    }
    return absl::OkStatus();
  };
  const size_t num_features = schema.features.size();
  std::vector<int> feature_columns(num_features);
  int label_column = -1;
  std::vector<std::string> missing;
  for (size_t j = 0; j < num_features; ++j) {
    if (absl::Status s = find_column(schema.features[j], &feature_columns[j]); !s.ok()) return s;
    if (feature_columns[j] < 0) missing.push_back(absl::StrCat("'", schema.features[j], "'"));
  }
  if (absl::Status s = find_column(schema.label, &label_column); !s.ok()) return s;
  if (label_column < 0) missing.push_back(absl::StrCat("'", schema.label, "' (label)"));
  if (!missing.empty()) {
    // The header's own text is not repeated: the file may not be a CSV at
    // all (a path to a secret), and errors reach logs.
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":1: missing column", missing.size() > 1 ? "s " : " ", absl::StrJoin(missing, ", "),
        " in a header of ", num_columns, " column", num_columns == 1 ? "" : "s",
        ". Check data.features and data.label in the job against the file"));
  }
  // An upper bound on the data rows, to allocate once: a valid row holds
  // num_columns values and num_columns - 1 commas, so at least
  // 2 * num_columns - 1 bytes and its newline. (Counting lines instead lets
  // a file of blank lines ask for rows x features floats.)
  const size_t max_rows = (text.size() - std::min(pos, text.size())) / (2 * num_columns) + 1;
  std::vector<float> features;
  std::vector<int64_t> labels;
  features.reserve(max_rows * num_features);
  labels.reserve(max_rows);

  int64_t line_no = 1;
  int64_t first_blank = 0;  // first blank line seen; only allowed at the end
  while (next_line(&line)) {
    ++line_no;
    if (Trim(line).empty()) {
      if (first_blank == 0) first_blank = line_no;
      continue;
    }
    if (first_blank != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", first_blank,
                       ": blank line inside the data (blank lines are allowed only at the end)"));
    }
    if (line.size() > kMaxCsvLineBytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": the row is ",
                                                     line.size(), " bytes; a row is at most ",
                                                     kMaxCsvLineBytes));
    }
    SplitFields(line, fields, num_columns);
    if (fields.size() != num_columns) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": expected ", num_columns,
                       " fields as in the header, found ",
                       std::count(line.begin(), line.end(), ',') + 1));
    }
    for (size_t j = 0; j < num_features; ++j) {
      float value = 0;
      std::string error = ParseFeature(fields[feature_columns[j]], &value);
      if (!error.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line_no, ": column ", feature_columns[j] + 1, " ('",
                         schema.features[j], "'): ", error));
      }
      features.push_back(value);
    }
    int64_t label = 0;
    std::string error = ParseLabel(fields[label_column], num_classes, &label);
    if (!error.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": column ",
                                                     label_column + 1, " ('", schema.label,
                                                     "'): ", error));
    }
    labels.push_back(label);
  }
  const int64_t rows = static_cast<int64_t>(labels.size());
  if (rows == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no data rows after the header"));
  }

  try {
    TabularData data;
    data.features = torch::from_blob(features.data(),
                                     {rows, static_cast<int64_t>(num_features)}, torch::kFloat)
                        .clone();
    data.labels = torch::from_blob(labels.data(), {rows}, torch::kLong).clone();
    return data;
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(path, ": building tensors of ", rows, " rows: ", e.what_without_backtrace()));
  }
}

}  // namespace

absl::StatusOr<TabularData> ReadCsv(const std::string& path, const spec::DataSchema& schema,
                                    int num_classes) {
  try {
    return ReadCsvUnguarded(path, schema, num_classes);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": not enough memory to read the file into tensors; use a smaller "
                            "file or more replicas"));
  }
}

TabularData Shard(const TabularData& data, int replica, int replicas) {
  if (replicas < 1 || replica < 0 || replica >= replicas) {
    PreconditionFailed(absl::StrCat("Shard: replica ", replica, " not in [0, ", replicas, ")"));
  }
  const int64_t n = data.size();
  if (n == 0) return data;
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(n / replicas + 1));
  for (int64_t i = replica; i < n; i += replicas) rows.push_back(i);
  return Select(data, rows);
}

Split SplitForEval(const TabularData& data, double eval_fraction, int64_t seed) {
  if (!(eval_fraction >= 0 && eval_fraction <= 1)) {
    PreconditionFailed(
        absl::StrCat("SplitForEval: eval_fraction ", eval_fraction, " not in [0, 1]"));
  }
  const int64_t n = data.size();
  // round(n * fraction), at least 1 when n >= 2; train keeps at least one row
  // too, and a single row is all train (there is nothing to hold out).
  int64_t num_eval = 0;
  if (n >= 2) {
    num_eval = std::clamp<int64_t>(std::llround(static_cast<double>(n) * eval_fraction), 1, n - 1);
  }
  uint64_t state = static_cast<uint64_t>(seed) ^ kSplitSalt;
  const std::vector<int64_t> perm = SeededPermutation(n, SplitMix64(state));
  // Each part keeps the file order of its rows.
  std::vector<int64_t> eval_rows(perm.begin(), perm.begin() + num_eval);
  std::vector<int64_t> train_rows(perm.begin() + num_eval, perm.end());
  std::sort(eval_rows.begin(), eval_rows.end());
  std::sort(train_rows.begin(), train_rows.end());
  if (n == 0) return Split{data, data};
  return Split{Select(data, train_rows), Select(data, eval_rows)};
}

std::vector<int64_t> SeededPermutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> perm(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  uint64_t state = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(UniformBelow(state, static_cast<uint64_t>(i) + 1));
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

}  // namespace braid::worker
