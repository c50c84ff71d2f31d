// The Kubernetes objects a FederatedJob needs: a pure function of the job,
// the tenants' namespaces and the operator's settings, rendered from the
// same desired set (control/desired_set.h) that `braid run` starts as local
// processes: one Deployment per workload, at 0 replicas when it does not run.
//
// In the job's namespace: the aggregator Deployment and Service, the job file
// as a ConfigMap, and a NetworkPolicy that admits only this job's workers
// (and the operator) to the gRPC port. In each tenant's namespace: one worker
// Deployment per replica mounting only that tenant's claim, read-only, at
// the file the job names; the job file as a ConfigMap; a NetworkPolicy that
// lets workers reach only the aggregator and DNS and nothing reach them.
//
// Objects in the job's namespace carry an owner reference to the job, so
// Kubernetes' garbage collector removes them with it. Objects in tenant
// namespaces cannot (owners are namespace-local); they carry the job's
// labels, and the operator's finalizer deletes them (see JobSelector()).
#ifndef BRAID_OPERATOR_JOB_OBJECTS_H_
#define BRAID_OPERATOR_JOB_OBJECTS_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "braid/control/desired_set.h"
#include "braid/core/spec.h"

namespace braid::op {

inline constexpr int kAggregatorGrpcPort = 7070;
inline constexpr int kAggregatorMetricsPort = 9090;
inline constexpr char kFinalizer[] = "braid.dev/cleanup";
inline constexpr char kFieldManager[] = "braid-operator";
inline constexpr char kJobUidLabel[] = "braid.dev/job-uid";

// What the objects depend on besides the spec.
struct JobObjectsContext {
  std::string job_uid;          // metadata.uid of the FederatedJob (owner references, labels)
  std::string job_yaml;         // the job file the pods read (spec as applied)
  // admission.json beside it in the job namespace's ConfigMap: the job's
  // creation and tenants' consent for the aggregator's audit log
  // (AdmissionJson in control/tenant_approval.h; aggregator/admission_audit.h).
  std::string admission_json = "{}";
  std::string aggregator_image;
  std::string worker_image;
  std::string image_pull_policy = "IfNotPresent";
  std::string operator_namespace;  // may reach the aggregator's gRPC port (status polling)
  // Tenant name -> the namespace its workers run in (from its Tenant object).
  std::map<std::string, std::string> tenant_namespaces;
  // What runs (control::ComputeDesiredSet's input): suspended (replicas
  // 0, checkpoint kept), ended (workers 0), the tenants' consent (those
  // that refused or revoked are kept at 0) and the count the aggregator
  // already runs with. Default: everything runs.
  control::DesiredSetInput run;
  // mTLS between workers and the aggregator (see job_tls.h): pods mount
  // their Secret and get --tls-* flags.
  bool tls = true;

  // At a coordinator (--role coordinator), for a job with tenants at sites
  // (spec.tenants[].site): nothing is rendered for those tenants here; their
  // workers dial in from outside the cluster, so the aggregator's gRPC port
  // admits any source (mTLS decides) and the aggregator trusts the
  // federation CA from this Secret (key ca.crt) for their certificates,
  // while its site is in `site_admission_json` (sites.json beside the job
  // file, aggregator/site_admission.h), which the kubelet brings up to date
  // in the running pod.
  std::string federation_ca_secret;
  std::string site_admission_json = R"({"sites":{}})";
  // With federation_ca_secret: when set, a Gateway API TLSRoute
  // "<job>-aggregator" attaches the aggregator's Service to this Gateway's
  // TLS-passthrough listener, routed on the aggregator's certificate name
  // (the SNI the sites' workers send).
  struct GatewayRef {
    std::string namespace_;
    std::string name;
    std::string section;  // the listener (sectionName); "" for every one
  };
  std::optional<GatewayRef> aggregator_gateway;

  // At a site (--role site): the job's aggregator runs in the coordinator's
  // cluster. Only the workers' objects are rendered, for the tenants in
  // tenant_namespaces; they dial `address`, verify the name `server_name`
  // and mount `tls_secret` (ca.crt: the aggregator's CA; tls.crt, tls.key:
  // the site's own certificate).
  struct RemoteAggregator {
    std::string address;      // host:port
    std::string server_name;  // in the aggregator's certificate
    std::string tls_secret;   // in each tenant namespace
  };
  std::optional<RemoteAggregator> remote_aggregator;
  // When set: the owner reference every object carries instead of the
  // FederatedJob's (at a site, the FederatedInvitation in the tenant's
  // namespace, so deleting it removes the workers).
  nlohmann::json owner_reference;
};

// "<namespace>/<name>[/<listener>]" (--site-aggregator-gateway) as a
// GatewayRef; InvalidArgument saying which part is wrong.
absl::StatusOr<JobObjectsContext::GatewayRef> ParseGatewayRef(const std::string& text);

// A DNS-1123 label made from `base`: unchanged when it is one already;
// otherwise lowercased, other characters made '-', prefixed "b-" unless it
// starts with a letter, cut to at most 54 characters, and ended with "-" and
// 8 hex digits of a hash of the whole `base` (so distinct bases stay apart).
std::string DnsLabel(const std::string& base);

// Name of an object for `job` with `suffix`, placed in `object_namespace`.
// Names in the job's own namespace are "<job>-<suffix>"; names in other
// namespaces also carry the job's namespace ("<jobns>-<job>-<suffix>") so
// that two jobs of the same name in different namespaces never collide.
std::string ObjectName(const spec::JobSpec& job, const std::string& object_namespace,
                       const std::string& suffix);

// The aggregator's Service name and in-cluster gRPC address.
std::string AggregatorServiceName(const spec::JobSpec& job);
std::string AggregatorAddress(const spec::JobSpec& job);

// The namespace tenant `tenant` runs in under `context` ("" if unknown).
std::string TenantNamespace(const JobObjectsContext& context, const std::string& tenant);

// Label selector ("k=v,k=v") matching every object made for the job with
// this uid, in any namespace.
std::string JobSelector(const std::string& job_uid);

// metadata for an object of the job named `name` in `ns` with role label
// `role`: the job's labels, and an owner reference to the job when `ns` is
// the job's namespace.
nlohmann::json JobObjectMetadata(const spec::JobSpec& job, const JobObjectsContext& context,
                                 const std::string& name, const std::string& ns,
                                 const std::string& role);

// Every object the job needs, each a complete manifest for server-side
// apply (apiVersion, kind, metadata.name/namespace/labels, spec). Order:
// job-namespace objects first, then tenant namespaces in tenant order.
// The aggregator's args carry the desired set's aggregator_args
// (--expected-clients when tenants are stopped).
// Precondition: every tenant without a site has a namespace in
// context.tenant_namespaces. With context.remote_aggregator, only the
// workers' objects (ConfigMap, NetworkPolicy, Deployments) are rendered.
std::vector<nlohmann::json> DesiredObjects(const spec::JobSpec& job,
                                           const JobObjectsContext& context);

}  // namespace braid::op

#endif  // BRAID_OPERATOR_JOB_OBJECTS_H_
