#include "braid/cli/validate_command.h"

#include <filesystem>
#include <vector>

#include "braid/core/file_io.h"
#include "braid/core/spec.h"

namespace braid::cli {

namespace fs = std::filesystem;

int ValidateCommand(const std::string& file, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::string> text = ReadSmallFile(file, spec::kMaxJobBytes);
  if (!text.ok()) {
    err << text.status().message() << "\n";
    return 2;
  }
  const std::string dir = fs::absolute(file).parent_path().string();
  const std::vector<spec::FieldError> errors = spec::ValidateJobYaml(*text, dir);
  for (const auto& e : errors) out << file << ": " << e.ToString() << "\n";
  if (!errors.empty()) {
    out << file << ": invalid\n";
    return 2;
  }
  out << file << ": valid\n";
  return 0;
}

}  // namespace braid::cli
