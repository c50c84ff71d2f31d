// The FederatedJob reconciler: level-triggered and idempotent. Each call
// reads the job and what it owns, computes the desired objects (a pure
// function, job_objects.h), applies them with server-side apply, and writes
// the status once, only if it changed.
#ifndef BRAID_OPERATOR_RECONCILER_H_
#define BRAID_OPERATOR_RECONCILER_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"
#include "braid/kube/client.h"
#include "braid/kube/events.h"
#include "braid/operator/aggregator_status.h"
#include "braid/operator/coordinator_federation.h"
#include "braid/operator/job_objects.h"

namespace braid::op {

// The FederatedJob object as its job file: what core/spec parses and what
// the pods read. JSON is YAML, so the API server's object serves unchanged.
std::string JobFileText(const nlohmann::json& job);

struct ReconcilerOptions {
  std::string aggregator_image = "braid/aggregator:0.1.0";
  std::string worker_image = "braid/worker:0.1.0";
  std::string image_pull_policy = "IfNotPresent";
  // The operator's own namespace: the aggregator admits it to the gRPC port.
  std::string operator_namespace;
  // Where to reach a job's aggregator for status; "{name}" and
  // "{namespace}" are replaced by the job's. Empty: the aggregator Service
  // in the cluster (<job>-aggregator.<ns>.svc:7070). Tests and operators
  // running outside the cluster point it elsewhere.
  std::string aggregator_address_template;
  absl::Duration status_interval = absl::Seconds(2);  // poll period while a job runs
  absl::Duration status_timeout = absl::Seconds(2);   // one GetStatus call
  // A job's objects are applied again at least this often even when nothing
  // changed, so the controller's resync restores what was edited or deleted
  // by hand (a NetworkPolicy, a ConfigMap). Between such times an unchanged
  // desired set is not re-sent. ZeroDuration: apply on every reconcile.
  absl::Duration reapply_interval = absl::Minutes(10);
  // mTLS between a job's workers and aggregator, with a per-job CA and
  // certificates in Secrets (job_tls.h). False: plaintext gRPC.
  bool tls = true;
  // At a coordinator (--role coordinator): the federation that carries the
  // invitations of tenants at sites (spec.tenants[].site) and their answers.
  // Null: a job with a site tenant is refused (TenantsReady=False,
  // NoFederation). Not owned.
  Federation* federation = nullptr;
  // Where the sites' workers reach a job's aggregator ("{name}" and
  // "{namespace}" replaced), e.g. "{name}.{namespace}.fl.example.org:443"
  // behind a TLS-passthrough Ingress. Required with `federation`.
  std::string site_aggregator_address_template;
  // When set, each job with tenants at sites gets a TLSRoute attaching its
  // aggregator's Service to this Gateway (JobObjectsContext), deleted with
  // the job.
  std::optional<JobObjectsContext::GatewayRef> site_aggregator_gateway;
  // The coordinator's name in invitations (what sites show and audit).
  std::string coordinator_name = "braid-coordinator";
  // Time for re-apply and TLS intervals and the status' transition times.
  // Not owned; null: braid::RealClock().
  Clock* clock = nullptr;
};

// Read-only views of the informers' caches the reconciler consults.
struct ClusterView {
  // Tenant objects by metadata.name.
  std::function<std::map<std::string, nlohmann::json>()> tenants;
  // The Deployment ns/name from the cache, or null JSON if absent.
  std::function<nlohmann::json(const std::string& ns, const std::string& name)> deployment;
  // TenantApproval objects in every namespace (see control/tenant_approval.h).
  std::function<std::vector<nlohmann::json>()> approvals;
};

class Reconciler {
 public:
  // Borrowed pointers must outlive the reconciler.
  Reconciler(kube::Client* client, ClusterView view, AggregatorStatusSource* status_source,
             kube::EventRecorder* events, ReconcilerOptions options);
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Reconciles the FederatedJob ns/name. Returns how long until it should be
  // looked at again without any change (absl::InfiniteDuration() when
  // nothing is pending), or an error (the caller retries with backoff).
  // Thread-safe for different jobs; the caller never runs one job twice at
  // once.
  absl::StatusOr<absl::Duration> Reconcile(const std::string& ns, const std::string& name);

  // The phase last written for each job ("ns/name" -> phase); for metrics.
  std::map<std::string, std::string> Phases() const;

 private:
  absl::StatusOr<absl::Duration> Finalize(const nlohmann::json& job);
  absl::Status ApplyAll(const std::string& uid, const std::vector<nlohmann::json>& objects);
  // Creates the job's TLS Secrets that are missing (never replaces one) and
  // returns what the operator polls the aggregator with.
  absl::StatusOr<TlsTarget> EnsureTls(const spec::JobSpec& job, const JobObjectsContext& context);
  // The Secret ns/name, created from make() when absent. FailedPrecondition
  // (NameConflict) if it exists and belongs to another job.
  absl::StatusOr<nlohmann::json> GetOrCreateSecret(
      const spec::JobSpec& job, const JobObjectsContext& context, const std::string& ns,
      const std::string& name,
      const std::function<absl::StatusOr<std::vector<std::pair<std::string, std::string>>>()>&
          make);
  std::string StatusAddress(const std::string& ns, const std::string& name,
                            const std::string& in_cluster) const;
  // The job's CA (its Secret, made when absent).
  absl::StatusOr<pki::KeyPair> EnsureCa(const spec::JobSpec& job, const JobObjectsContext& context);
  // Publishes the job's invitations to the sites its tenants name.
  void InviteSites(const spec::JobSpec& job, const std::string& uid, const std::string& job_file,
                   const std::string& aggregator_ca_pem);

  kube::Client* const client_;
  const ClusterView view_;
  AggregatorStatusSource* const status_source_;
  kube::EventRecorder* const events_;
  const ReconcilerOptions options_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  struct Applied {
    size_t hash = 0;  // of the objects last applied
    absl::Time at;    // when
  };
  // Job uid -> what was last applied, to skip identical applies.
  std::map<std::string, Applied> applied_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> phases_ ABSL_GUARDED_BY(mu_);
  struct Tls {
    TlsTarget target;  // the operator's certificate for the job's aggregator
    absl::Time checked;  // when the Secrets were last seen present
  };
  // Job uid -> its TLS, so Secrets are checked once per reapply_interval.
  std::map<std::string, Tls> tls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::op

#endif  // BRAID_OPERATOR_RECONCILER_H_
