// Internal to the job-spec parser: collecting errors, and reading typed values
// out of yaml-cpp nodes strictly, the way Kubernetes would read the same file.
//
// Nothing here walks a subtree it was not asked for: maps are read entry by
// entry up to kMaxMapEntries and lists are only ever indexed after their
// length was checked, so aliases that share one node many times (alias bombs)
// cost no more than the text that spells them.
#ifndef BRAID_CORE_SRC_SPEC_YAML_H_
#define BRAID_CORE_SRC_SPEC_YAML_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/status/statusor.h"
#include "braid/core/dns_name.h"
#include "braid/core/spec.h"

namespace braid::spec::internal {

// Path used for problems with the file as a whole (syntax, size, encoding).
inline constexpr char kFilePath[] = "<file>";
// Errors kept; the rest are counted in one final line.
inline constexpr size_t kMaxErrors = 100;
// Characters of a user's value quoted back in a message.
inline constexpr size_t kMaxShown = 64;
// Longest string value read (a path is at most PATH_MAX); longer ones are
// refused before they are copied, so that aliases of one long scalar cannot
// multiply memory.
inline constexpr size_t kMaxStringBytes = 4096;
// No section of a job has this many fields; bigger maps are refused unread.
inline constexpr size_t kMaxMapEntries = 64;

// Collects problems in the order found, keeping the first kMaxErrors.
class Errors {
 public:
  void Add(std::string path, std::string message);
  bool empty() const { return total_ == 0; }
  size_t total() const { return total_; }
  // Whether further errors are only counted, not kept.
  bool full() const { return errors_.size() >= kMaxErrors; }
  // The kept errors, plus "<file>: N more errors not shown" when some were
  // dropped.
  std::vector<FieldError> Take() &&;

 private:
  std::vector<FieldError> errors_;
  size_t total_ = 0;
};

// "spec" + "rounds" -> "spec.rounds"; "" + "spec" -> "spec".
std::string FieldPath(std::string_view parent, std::string_view key);
// "spec.tenants" + 2 -> "spec.tenants[2]".
std::string IndexPath(std::string_view parent, size_t index);

// `s` cut to kMaxShown bytes on a UTF-8 character boundary, "..." appended
// when cut.
std::string Shorten(std::string_view s);

// `s` in double quotes, control characters escaped, cut to kMaxShown chars.
std::string Quote(std::string_view s);

// What `node` holds, for the "got ..." part of a message: `-3`, `2.5`,
// `true`, `"ten"`, `null`, `a map`, `a list`.
std::string Describe(const YAML::Node& node);

// The entry of `known` that `key` is plausibly a misspelling of (edit
// distance, case, '_' or '-' separators), or "" when none is close.
std::string Suggest(std::string_view key, const std::vector<std::string_view>& known);

// Kubernetes name rules (braid/core/dns_name.h), as the decoders call them.
using ::braid::IsDns1123Label;
using ::braid::IsDns1123Subdomain;

// Parses a duration: one or more <number><unit> with units ns, us, ms, s, m,
// h ("30s", "5m", "1h30m", "250ms", "1.5h"). Returns seconds; no sign is
// accepted. InvalidArgument on any other text.
absl::StatusOr<double> ParseDurationSeconds(std::string_view text);

// Typed reads of one value. Each returns true and sets *out when `node` holds
// a valid value; otherwise it adds exactly one error at `path` and returns
// false. Typing is strict: a quoted "10" is not an integer, an unquoted 10 or
// true (or y/yes/on, booleans to Kubernetes' YAML reader) is not a string.
// Strings longer than `max_bytes` are refused.
bool ReadString(const YAML::Node& node, const std::string& path, Errors* errors,
                std::string* out, size_t max_bytes = kMaxStringBytes);
// An integer in [lo, hi]; rejects 2.5, 1e30, overflow, "ten".
bool ReadInt(const YAML::Node& node, const std::string& path, int64_t lo, int64_t hi,
             Errors* errors, int64_t* out);
bool ReadInt(const YAML::Node& node, const std::string& path, int lo, int hi, Errors* errors,
             int* out);

// A finite number in a range whose ends may be open: (0, 10] is
// {0, true, 10, false}.
struct NumberRange {
  double lo;
  bool lo_open;
  double hi;
  bool hi_open;
};
bool ReadNumber(const YAML::Node& node, const std::string& path, NumberRange range,
                Errors* errors, double* out);

// A duration string (see ParseDurationSeconds) or a whole number of seconds,
// in (0, max_seconds]. Fractions need the string form ("1.5s"), as in the
// CRD's int-or-string schema.
bool ReadDuration(const YAML::Node& node, const std::string& path, double max_seconds,
                  Errors* errors, double* out);

// true or false (YAML 1.1 words such as yes/on are refused: Kubernetes and
// YAML 1.2 disagree about them).
bool ReadBool(const YAML::Node& node, const std::string& path, Errors* errors, bool* out);

// A string that is one of `allowed`, with a hint for near misses ("SGD").
bool ReadEnum(const YAML::Node& node, const std::string& path,
              const std::vector<std::string_view>& allowed, Errors* errors, std::string* out);

// A list, checked before any element is looked at: must be a sequence of at
// most `max_size` entries (and at least `min_size`). `what` names the entries
// in messages ("tenants", "layer widths").
bool CheckList(const YAML::Node& node, const std::string& path, size_t min_size,
               size_t max_size, std::string_view what, Errors* errors);

// One YAML map of the job, read by field name.
//
// Construction reports, in document order: a node that is not a map, keys
// that are not strings, duplicate keys, and keys in neither `known` nor
// `ignored` (with a did-you-mean hint, or the list of `known` fields). A map
// with more than kMaxMapEntries entries is reported and not read. `ignored`
// keys are accepted and never read (e.g. status, metadata.labels).
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string path, std::vector<std::string_view> known,
            Errors* errors, std::vector<std::string_view> ignored = {});

  // Whether the node was a map (its fields can be read).
  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }
  std::string Path(std::string_view key) const { return FieldPath(path_, key); }

  // The value of a known `key`, or nullptr when absent or null (null counts
  // as absent, as with kubectl apply). The pointer lives as long as *this.
  const YAML::Node* Find(std::string_view key) const;
  // Like Find, but a missing value is the error "<path>.<key>: required"
  // followed by "; " + `hint` when a hint is given.
  const YAML::Node* Require(std::string_view key, std::string_view hint = "") const;

 private:
  std::string path_;
  Errors* errors_;
  bool ok_ = false;
  std::vector<std::pair<std::string, YAML::Node>> entries_;  // known keys, first occurrence
};

}  // namespace braid::spec::internal

#endif  // BRAID_CORE_SRC_SPEC_YAML_H_
