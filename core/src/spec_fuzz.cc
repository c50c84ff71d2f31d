// libFuzzer target: the job-spec parser on arbitrary bytes. Beyond "no
// crash, no leak, no undefined behaviour, bounded memory", it checks the
// parser's contract: ParseJobYaml succeeds exactly when ValidateJobYaml
// reports no problem, and every problem names a path and a message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "braid/core/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  braid::spec::ParseOptions options;
  options.check_files = false;  // no file system in the loop
  const auto parsed = braid::spec::ParseJobYaml(yaml, "", options);
  const auto problems = braid::spec::ValidateJobYaml(yaml, "", options);
  if (parsed.ok() != problems.empty()) std::abort();
  for (const auto& p : problems) {
    if (p.path.empty() || p.message.empty()) std::abort();
  }
  return 0;
}
