// Scalars: how YAML types them, and the typed reads built on that.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "spec_yaml.h"

namespace braid::spec::internal {
namespace {

// How YAML would type a scalar. Plain (unquoted) scalars are resolved with
// the YAML 1.2 core schema, plus the YAML 1.1 booleans (y, yes, on, ...) that
// Kubernetes' YAML reader still turns into true/false.
enum class ScalarKind { kString, kNull, kBool, kBool11, kInt, kFloat };

bool IsDigits(std::string_view s, bool (*is_digit)(char)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}
bool IsDec(char c) { return c >= '0' && c <= '9'; }
bool IsOct(char c) { return c >= '0' && c <= '7'; }
bool IsHex(char c) { return IsDec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool IsYamlInt(std::string_view s) {
  if (s.size() > 2 && s[0] == '0' && s[1] == 'x') return IsDigits(s.substr(2), IsHex);
  if (s.size() > 2 && s[0] == '0' && s[1] == 'o') return IsDigits(s.substr(2), IsOct);
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return IsDigits(s, IsDec);
}

bool IsOneOf(std::string_view s, std::initializer_list<std::string_view> words) {
  return std::find(words.begin(), words.end(), s) != words.end();
}

bool IsYamlInfOrNan(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    return IsOneOf(s.substr(1), {".inf", ".Inf", ".INF"});
  }
  return IsOneOf(s, {".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"});
}

// [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool IsYamlFloat(std::string_view s) {
  if (IsYamlInfOrNan(s)) return true;
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && IsDec(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && IsDec(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && IsDec(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

bool IsQuotedOrStrTagged(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  return tag == "!" || tag == "tag:yaml.org,2002:str";
}

ScalarKind Classify(const YAML::Node& node) {
  if (node.IsNull()) return ScalarKind::kNull;
  if (IsQuotedOrStrTagged(node)) return ScalarKind::kString;
  const std::string& s = node.Scalar();
  // No number we accept is this long; not scanning keeps aliases of one
  // huge scalar cheap.
  if (s.size() > kMaxShown) return ScalarKind::kString;
  if (IsOneOf(s, {"", "~", "null", "Null", "NULL"})) return ScalarKind::kNull;
  if (IsOneOf(s, {"true", "True", "TRUE", "false", "False", "FALSE"})) return ScalarKind::kBool;
  if (IsOneOf(s, {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON",
                  "off", "Off", "OFF"})) {
    return ScalarKind::kBool11;
  }
  if (IsYamlInt(s)) return ScalarKind::kInt;
  if (IsYamlFloat(s)) return ScalarKind::kFloat;
  return ScalarKind::kString;
}

// Parses text that IsYamlInt accepted; false on overflow.
bool ParseInt64(std::string_view s, int64_t* out) {
  int base = 10;
  bool negative = false;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    base = s[1] == 'x' ? 16 : 8;
    s.remove_prefix(2);
  } else if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), magnitude, base);
  if (ec != std::errc() || end != s.data() + s.size()) return false;
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
  if (negative) {
    if (magnitude > kMax + 1) return false;
    *out = magnitude == kMax + 1 ? std::numeric_limits<int64_t>::min()
                                 : -static_cast<int64_t>(magnitude);
  } else {
    if (magnitude > kMax) return false;
    *out = static_cast<int64_t>(magnitude);
  }
  return true;
}

// Parses text that IsYamlInt or IsYamlFloat accepted. Overflow gives +-inf.
double ParseDouble(std::string_view s) {
  if (IsYamlInfOrNan(s)) {
    if (s.find("nan") != s.npos || s.find("NaN") != s.npos || s.find("NAN") != s.npos) {
      return std::numeric_limits<double>::quiet_NaN();
    }
    return s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
  }
  if (IsYamlInt(s) && s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    int64_t v = 0;
    return ParseInt64(s, &v) ? static_cast<double>(v) : HUGE_VAL;
  }
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec == std::errc::result_out_of_range) {
    // Either huge (-> inf) or tiny (-> 0); from_chars leaves `value` unset.
    size_t e = s.find_first_of("eE");
    bool tiny = e != s.npos && e + 1 < s.size() && s[e + 1] == '-';
    value = tiny ? 0.0 : HUGE_VAL;
  } else if (ec != std::errc() || end != s.data() + s.size()) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return negative ? -value : value;
}

std::string FormatBound(double v) { return absl::StrCat(v); }

std::string QuotedHint(const YAML::Node& node) {
  if (node.IsScalar() && Classify(node) == ScalarKind::kString) {
    const std::string& s = node.Scalar();
    if (IsYamlInt(s) || IsYamlFloat(s)) return " (a quoted string; remove the quotes)";
  }
  return "";
}

std::string Alternatives(const std::vector<std::string_view>& allowed) {
  std::string out;
  for (size_t i = 0; i < allowed.size(); ++i) {
    if (i > 0) out += i + 1 == allowed.size() ? " or " : ", ";
    out += Quote(allowed[i]);
  }
  return out;
}

}  // namespace

std::string Shorten(std::string_view s) {
  if (s.size() <= kMaxShown) return std::string(s);
  size_t n = kMaxShown;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}


std::string Quote(std::string_view s) {
  std::string out = "\"";
  size_t shown = 0;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u & 0xC0) != 0x80 && shown++ == kMaxShown) {
      out += "...";
      break;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "null";
    case YAML::NodeType::Scalar:
      break;
  }
  switch (Classify(node)) {
    case ScalarKind::kString:
      return Quote(node.Scalar());
    case ScalarKind::kNull:
      return "null";
    default:
      return Shorten(node.Scalar());
  }
}


absl::StatusOr<double> ParseDurationSeconds(std::string_view text) {
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1e-9}, {"us", 1e-6}, {"\xC2\xB5s", 1e-6}, {"ms", 1e-3},
      {"s", 1},     {"m", 60},    {"h", 3600}};
  if (text.empty()) return absl::InvalidArgumentError("empty duration");
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (IsDec(text[i]) || text[i] == '.')) ++i;
    std::string_view number = text.substr(start, i - start);
    if (number.empty() || !IsYamlFloat(number)) {
      return absl::InvalidArgumentError("expected a number");
    }
    size_t unit_start = i;
    while (i < text.size() && !IsDec(text[i]) && text[i] != '.') ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    double scale = 0;
    for (const auto& [name, seconds] : kUnits) {
      if (unit == name) scale = seconds;
    }
    if (scale == 0) return absl::InvalidArgumentError("expected a unit");
    total += ParseDouble(number) * scale;
  }
  return total;
}

bool ReadString(const YAML::Node& node, const std::string& path, Errors* errors,
                std::string* out, size_t max_bytes) {
  if (!node.IsScalar()) {
    errors->Add(path, "must be a string, got " + Describe(node));
    return false;
  }
  if (node.Scalar().size() > max_bytes) {
    errors->Add(path, absl::StrCat("must be at most ", max_bytes, " bytes long, got ",
                                   node.Scalar().size(), " bytes"));
    return false;
  }
  switch (Classify(node)) {
    case ScalarKind::kString:
      *out = node.Scalar();
      return true;
    case ScalarKind::kNull:
      errors->Add(path, "must be a string, got null");
      return false;
    case ScalarKind::kBool11:
      errors->Add(path, "must be a string, got " + node.Scalar() +
                            ", which Kubernetes reads as a boolean; quote it: " +
                            Quote(node.Scalar()));
      return false;
    default:
      errors->Add(path, "must be a string, got " + Describe(node) +
                            "; quote it to use it as text: " + Quote(node.Scalar()));
      return false;
  }
}

bool ReadInt(const YAML::Node& node, const std::string& path, int64_t lo, int64_t hi,
             Errors* errors, int64_t* out) {
  int64_t value = 0;
  if (node.IsScalar() && Classify(node) == ScalarKind::kInt &&
      ParseInt64(node.Scalar(), &value) && value >= lo && value <= hi) {
    *out = value;
    return true;
  }
  errors->Add(path, absl::StrCat("must be an integer between ", lo, " and ", hi, ", got ",
                                 Describe(node), QuotedHint(node)));
  return false;
}

bool ReadInt(const YAML::Node& node, const std::string& path, int lo, int hi, Errors* errors,
             int* out) {
  int64_t value = 0;
  if (!ReadInt(node, path, int64_t{lo}, int64_t{hi}, errors, &value)) return false;
  *out = static_cast<int>(value);
  return true;
}

bool ReadNumber(const YAML::Node& node, const std::string& path, NumberRange range,
                Errors* errors, double* out) {
  if (node.IsScalar()) {
    ScalarKind kind = Classify(node);
    if (kind == ScalarKind::kInt || kind == ScalarKind::kFloat) {
      double v = ParseDouble(node.Scalar());
      bool above_lo = range.lo_open ? v > range.lo : v >= range.lo;
      bool below_hi = range.hi_open ? v < range.hi : v <= range.hi;
      if (std::isfinite(v) && above_lo && below_hi) {
        *out = v;
        return true;
      }
    }
  }
  errors->Add(path, absl::StrCat("must be a number in ", range.lo_open ? "(" : "[",
                                 FormatBound(range.lo), ", ", FormatBound(range.hi),
                                 range.hi_open ? ")" : "]", ", got ", Describe(node),
                                 QuotedHint(node)));
  return false;
}

bool ReadDuration(const YAML::Node& node, const std::string& path, double max_seconds,
                  Errors* errors, double* out) {
  if (node.IsScalar()) {
    double seconds = -1;
    ScalarKind kind = Classify(node);
    if (kind == ScalarKind::kInt) {
      seconds = ParseDouble(node.Scalar());
    } else if (kind == ScalarKind::kString) {
      absl::StatusOr<double> parsed = ParseDurationSeconds(node.Scalar());
      if (parsed.ok()) seconds = *parsed;
    }
    if (std::isfinite(seconds) && seconds > 0 && seconds <= max_seconds) {
      *out = seconds;
      return true;
    }
  }
  errors->Add(path, absl::StrCat("must be a positive duration of at most ", max_seconds / 3600,
                                 "h, like \"30s\", \"5m\", \"1h30m\" or a whole number of seconds; got ",
                                 Describe(node)));
  return false;
}

bool ReadBool(const YAML::Node& node, const std::string& path, Errors* errors, bool* out) {
  if (node.IsScalar() && Classify(node) == ScalarKind::kBool) {
    const char first = node.Scalar()[0];
    *out = first == 't' || first == 'T';
    return true;
  }
  errors->Add(path, "must be true or false, got " + Describe(node) + QuotedHint(node));
  return false;
}

bool ReadEnum(const YAML::Node& node, const std::string& path,
              const std::vector<std::string_view>& allowed, Errors* errors, std::string* out) {
  std::string value;
  if (!ReadString(node, path, errors, &value)) return false;
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) {
    *out = std::move(value);
    return true;
  }
  std::string message = "must be " + (allowed.size() == 1 ? Quote(allowed[0])
                                                          : "one of " + Alternatives(allowed)) +
                        ", got " + Quote(value);
  // With one allowed value the message already names it.
  if (std::string hint = allowed.size() > 1 ? Suggest(value, allowed) : "";
      !hint.empty()) {
    message += " (did you mean " + Quote(hint) + "?)";
  }
  errors->Add(path, std::move(message));
  return false;
}

}  // namespace braid::spec::internal
