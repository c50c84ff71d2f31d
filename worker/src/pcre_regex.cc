#include "pcre_regex.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace braid::worker::internal {
namespace {

std::string PcreMessage(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// Oniguruma (which Hugging Face's patterns are written for) matches \s with
// Unicode white space: U+0009..U+000D, U+0085 and Z[slp]. PCRE2's \s with
// UCP also takes its \h list, which keeps U+180E (no longer a space since
// Unicode 6.3). Spelling \s and \S as the White_Space property makes both
// engines agree; escaped backslashes ("\\s") are left alone.
std::string OnigWhiteSpace(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's') {
        out += "\\p{White_Space}";
      } else if (next == 'S') {
        out += "\\P{White_Space}";
      } else {
        out += pattern.substr(i, 2);
      }
      ++i;
      continue;
    }
    out.push_back(pattern[i]);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PcreRegex>> PcreRegex::Compile(std::string_view pattern,
                                                              bool literal) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  // PCRE2_LITERAL admits no UCP (nothing to classify in a literal).
  const uint32_t options = literal ? (PCRE2_UTF | PCRE2_LITERAL) : (PCRE2_UTF | PCRE2_UCP);
  const std::string text = literal ? std::string(pattern) : OnigWhiteSpace(pattern);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                                   options, &error, &offset, nullptr);
  if (code == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("regex does not compile at offset ", offset,
                                                   ": ", PcreMessage(error)));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
  return std::unique_ptr<PcreRegex>(new PcreRegex(code));
}

PcreRegex::~PcreRegex() { pcre2_code_free(code_); }

absl::StatusOr<std::vector<std::pair<size_t, size_t>>> PcreRegex::FindAll(
    std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
      pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
  if (data == nullptr) return absl::ResourceExhaustedError("pcre2: out of memory");
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                               start, PCRE2_NO_UTF_CHECK, data.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) return absl::InvalidArgumentError("regex match failed: " + PcreMessage(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.get());
    const size_t begin = ov[0], end = ov[1];
    if (end > begin) {
      out.emplace_back(begin, end);
      start = end;
    } else {
      // Empty match: step over one character.
      if (begin >= text.size()) break;
      size_t next = begin + 1;
      while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      start = next;
    }
  }
  return out;
}

}  // namespace braid::worker::internal
