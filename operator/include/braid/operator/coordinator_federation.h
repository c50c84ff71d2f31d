// What the job reconciler of a coordinator (braid-operator --role
// coordinator) asks of the federation: publish each job's invitations to
// the sites its tenants name, and read back what each site said. The
// SiteFederation service streams the board to the sites (federation/).
#ifndef BRAID_OPERATOR_COORDINATOR_FEDERATION_H_
#define BRAID_OPERATOR_COORDINATOR_FEDERATION_H_

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "braid/federation/invitation_board.h"
#include "braid/operator/site_directory.h"
#include "braid/v1/sites.pb.h"

namespace braid::op {

class Federation {
 public:
  virtual ~Federation() = default;
  // Replaces job `job_uid`'s invitations: site -> its invitation. An empty
  // map withdraws them all. Idempotent.
  virtual void Invite(const std::string& job_uid,
                      const std::map<std::string, v1::Invitation>& by_site) = 0;
  // The Site objects by name, as last listed.
  virtual std::map<std::string, nlohmann::json> Sites() const = 0;
  // What `site` said of the job, and whether it is a member and connected.
  virtual SiteJobView SiteJob(const std::string& site, const std::string& job_uid) const = 0;
  // The federation CA's certificate (PEM): the job's aggregator trusts it
  // for the sites' workers.
  virtual std::string CaPem() const = 0;
};

// The Federation of a coordinator: invitations to `board`, states from
// `directory`. Thread-safe; the borrowed pointers must outlive it.
class CoordinatorFederation final : public Federation {
 public:
  CoordinatorFederation(SiteDirectory* directory, federation::InvitationBoard* board,
                        std::string ca_pem);
  void Invite(const std::string& job_uid,
              const std::map<std::string, v1::Invitation>& by_site) override;
  std::map<std::string, nlohmann::json> Sites() const override { return directory_->Sites(); }
  SiteJobView SiteJob(const std::string& site, const std::string& job_uid) const override;
  std::string CaPem() const override { return ca_pem_; }

 private:
  SiteDirectory* const directory_;
  federation::InvitationBoard* const board_;
  const std::string ca_pem_;
  absl::Mutex mu_;
  // job uid -> site -> invitation; each site's set is the union, by job uid.
  std::map<std::string, std::map<std::string, v1::Invitation>> jobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::op

#endif  // BRAID_OPERATOR_COORDINATOR_FEDERATION_H_
