// Internal to the job-spec parser: from job text to its one YAML document.
#ifndef BRAID_CORE_SRC_SPEC_LOAD_H_
#define BRAID_CORE_SRC_SPEC_LOAD_H_

#include <optional>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "spec_yaml.h"

namespace braid::spec::internal {

// Checks that `text` is UTF-8 without control characters, parses it with
// yaml-cpp and returns the root of its single non-empty document. Otherwise
// adds one "<file>" error (encoding, syntax with line and column, nesting
// too deep, empty, more than one document) and returns nullopt. Never throws,
// and never loops on inputs that make yaml-cpp 0.7's LoadAll loop forever
// (jbeder/yaml-cpp#1040: a stray ',').
std::optional<YAML::Node> LoadJobDocument(std::string_view text, Errors* errors);

}  // namespace braid::spec::internal

#endif  // BRAID_CORE_SRC_SPEC_LOAD_H_
