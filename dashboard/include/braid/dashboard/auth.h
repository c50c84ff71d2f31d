// Who may do what through the dashboard API. Every dashboard has one:
// `braid run --dashboard` a LocalTokenAuthorizer (a secret made for the run,
// printed in the dashboard's URL); braid-operator a KubeDashboardAuthorizer
// (operator/dashboard_kube.h) that asks the API server: TokenReview for the
// bearer token, SubjectAccessReview for each action.
#ifndef BRAID_DASHBOARD_AUTH_H_
#define BRAID_DASHBOARD_AUTH_H_

#include <memory>
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

// A fresh secret for one dashboard: 32 random bytes (OpenSSL's RAND_bytes)
// as 64 hex digits. Internal when the system cannot supply randomness.
absl::StatusOr<std::string> NewDashboardToken();

// One secret, one user: Authenticate succeeds for exactly `token` (compared
// in constant time) as Caller{user}, and that caller may do everything.
// `token` must not be empty. Thread-safe.
std::unique_ptr<DashboardAuthorizer> NewLocalTokenAuthorizer(std::string token, std::string user);

}  // namespace braid::dashboard

#endif  // BRAID_DASHBOARD_AUTH_H_
