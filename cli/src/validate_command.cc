#include "braid/cli/validate_command.h"

#include <filesystem>
#include <vector>

#include "braid/core/file_io.h"
#include "braid/core/spec.h"

namespace braid::cli {

namespace fs = std::filesystem;

int ValidateCommand(const std::string& file, std::ostream& out, std::ostream& err,
                    const std::vector<std::string>& allowed_dirs,
                    const spec::MachineLimits& limits) {
  absl::StatusOr<std::string> text = ReadSmallFile(file, spec::kMaxJobBytes);
  if (!text.ok()) {
    err << text.status().message() << "\n";
    return 2;
  }
  const std::string dir = fs::absolute(file).parent_path().string();
  spec::ParseOptions options;
  options.allowed_dirs = allowed_dirs;
  std::vector<spec::FieldError> errors = spec::ValidateJobYaml(*text, dir, options);
  if (errors.empty()) {
    absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(*text, dir, options);
    if (job.ok()) errors = spec::CheckMachineLimits(*job, limits);
  }
  for (const auto& e : errors) out << file << ": " << e.ToString() << "\n";
  if (!errors.empty()) {
    out << file << ": invalid\n";
    return 2;
  }
  out << file << ": valid\n";
  return 0;
}

}  // namespace braid::cli
