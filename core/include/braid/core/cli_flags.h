// Command-line flags with dashes: Braid's programs accept `--checkpoint-dir`
// as well as absl's `--checkpoint_dir`.
#ifndef BRAID_CORE_CLI_FLAGS_H_
#define BRAID_CORE_CLI_FLAGS_H_

#include <string>
#include <vector>

namespace braid {

// Parses absl flags from argv after turning dashes in flag names into
// underscores (values are left alone; nothing after "--" is touched).
// Returns the positional arguments, argv[0] first. Exits on a bad flag, as
// absl::ParseCommandLine does.
std::vector<std::string> ParseFlags(int argc, char** argv);

}  // namespace braid

#endif  // BRAID_CORE_CLI_FLAGS_H_
