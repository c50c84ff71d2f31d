#include "braid/cli/approve_command.h"

#include <pwd.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "braid/cli/local_consent.h"
#include "braid/cli/usage.h"

namespace braid::cli {

int ApproveCommand(const ApproveFlags& flags, std::ostream& out, std::ostream& err) {
  const std::string workdir = flags.workdir;
  const std::string tenant = flags.tenant;
  if (workdir.empty() || tenant.empty()) {
    err << "braid approve: --workdir DIR and --tenant T are required\n" << kUsage;
    return 2;
  }
  Decision d;
  d.tenant = tenant;
  d.approve = !flags.refuse;
  d.comment = flags.comment;
  const passwd* pw = ::getpwuid(::getuid());
  d.by = std::string("braid approve (user ") + (pw != nullptr ? pw->pw_name : std::to_string(::getuid())) + ")";
  absl::StatusOr<nlohmann::json> approval = RecordDecision(workdir, d);
  if (!approval.ok()) {
    err << "braid approve: " << approval.status().message() << "\n";
    return 2;
  }
  out << "tenant " << tenant << ": " << (*approval)["spec"]["decision"].get<std::string>()
            << " for job " << (*approval)["spec"]["job"]["namespace"].get<std::string>() << "/"
            << (*approval)["spec"]["job"]["name"].get<std::string>() << " (recorded in "
            << ApprovalsDir(workdir) << ")\n";
  return 0;
}

}  // namespace braid::cli
