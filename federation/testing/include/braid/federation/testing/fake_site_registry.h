// A SiteRegistry in memory, for tests. Test-only (target
// braid_federation_testing); never linked into what ships.
#ifndef BRAID_FEDERATION_TESTING_FAKE_SITE_REGISTRY_H_
#define BRAID_FEDERATION_TESTING_FAKE_SITE_REGISTRY_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/federation/site_registry.h"

namespace braid::federation {

// Thread-safe. The Await* methods block until the condition holds or
// `timeout` passes, returning whether it holds.
class FakeSiteRegistry final : public SiteRegistry {
 public:
  // A member site whose (unspent) token is `token`; each call gives the
  // site a new uid, as a Site object made again would have.
  void AddSite(const std::string& site, const std::string& token);
  void Revoke(const std::string& site);
  void Delete(const std::string& site);

  SiteRecord Lookup(const std::string& site) override;
  bool SpendEnrollmentToken(const std::string& site, const std::string& token_digest) override;
  void OnCertificateIssued(const std::string& site, absl::Time not_after) override;
  void OnConnected(const std::string& site) override;
  void OnDisconnected(const std::string& site) override;
  void OnReport(const std::string& site, const v1::SiteReport& report) override;

  bool connected(const std::string& site) const;
  int connects(const std::string& site) const;
  std::optional<v1::SiteReport> last_report(const std::string& site) const;
  int reports(const std::string& site) const;
  // When each report reached the registry (absl::Now()).
  std::vector<absl::Time> report_times(const std::string& site) const;
  std::optional<absl::Time> last_not_after(const std::string& site) const;

  bool AwaitConnected(const std::string& site, bool connected, absl::Duration timeout) const;
  // Until `site` has sent at least `count` reports.
  bool AwaitReports(const std::string& site, int count, absl::Duration timeout) const;

 private:
  struct Site {
    bool exists = true;
    bool revoked = false;
    std::string uid;
    std::string token_digest;  // empty once spent
    bool connected = false;
    int connects = 0;
    int reports = 0;
    std::vector<absl::Time> report_times;
    std::optional<v1::SiteReport> last_report;
    std::optional<absl::Time> not_after;
  };
  mutable absl::Mutex mu_;
  std::map<std::string, Site> sites_ ABSL_GUARDED_BY(mu_);
  int next_uid_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_TESTING_FAKE_SITE_REGISTRY_H_
