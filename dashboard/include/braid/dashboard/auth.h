// Who may do what through the dashboard API. `braid run --dashboard`
// serves without one (loopback, one user); braid-operator passes a
// KubeDashboardAuthorizer (operator/dashboard_kube.h) that asks the API server:
// TokenReview for the bearer token, SubjectAccessReview for each action.
#ifndef BRAID_DASHBOARD_AUTH_H_
#define BRAID_DASHBOARD_AUTH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace braid::dashboard {

struct Caller {
  std::string user;                 // e.g. "system:serviceaccount:tenant-a:admin"
  std::string uid;
  std::vector<std::string> groups;
};

// What a caller wants to do, as Kubernetes RBAC names it.
struct Access {
  std::string verb;       // "get", "create"
  std::string group;      // "braid.dev"
  std::string resource;   // "federatedjobs", "tenantapprovals"
  std::string ns;
};

class DashboardAuthorizer {
 public:
  virtual ~DashboardAuthorizer() = default;
  // The caller behind `token` (the bearer token, without "Bearer ").
  // Unauthenticated when the token is empty, unknown or expired;
  // Unavailable when the reviewer cannot be asked.
  virtual absl::StatusOr<Caller> Authenticate(const std::string& token) = 0;
  // Whether `caller` may do `access`; Unavailable when it cannot be asked.
  virtual absl::StatusOr<bool> Allowed(const Caller& caller, const Access& access) = 0;
};

}  // namespace braid::dashboard

#endif  // BRAID_DASHBOARD_AUTH_H_
