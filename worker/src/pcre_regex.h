// Internal to the tokenizers: a PCRE2 pattern compiled with UTF and Unicode
// properties (\p{L}, \s as Unicode white space), as Hugging Face's
// pre-tokenizer patterns need (they are written for Oniguruma, whose syntax
// PCRE2 shares for these patterns: classes, \p{..}, (?i:..), lookahead).
// \s and \S are compiled as Oniguruma reads them (Unicode White_Space).
#ifndef BRAID_WORKER_SRC_PCRE_REGEX_H_
#define BRAID_WORKER_SRC_PCRE_REGEX_H_

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace braid::worker::internal {

class PcreRegex {
 public:
  // InvalidArgument with PCRE2's message and offset when `pattern` does not
  // compile. `literal` compiles the text as a plain string.
  static absl::StatusOr<std::unique_ptr<PcreRegex>> Compile(std::string_view pattern,
                                                            bool literal = false);
  ~PcreRegex();
  PcreRegex(const PcreRegex&) = delete;
  PcreRegex& operator=(const PcreRegex&) = delete;

  // Byte ranges [begin, end) of the successive non-overlapping matches in
  // `text` (valid UTF-8), left to right; empty matches are skipped. Thread-
  // safe (match data is per call). InvalidArgument if PCRE2 fails (e.g. its
  // match limit).
  absl::StatusOr<std::vector<std::pair<size_t, size_t>>> FindAll(std::string_view text) const;

 private:
  explicit PcreRegex(pcre2_code* code) : code_(code) {}
  pcre2_code* code_;
};

}  // namespace braid::worker::internal

#endif  // BRAID_WORKER_SRC_PCRE_REGEX_H_
