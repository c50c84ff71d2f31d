// A job's mTLS material on Kubernetes, kept in Secrets the operator creates
// once and never rotates while the job exists:
//   <job>-ca                      (job namespace)  the job's CA: ca.crt, ca.key
//   <job>-aggregator-tls          (job namespace)  server certificate for the
//                                                   aggregator's Service names
//   <jobns>-<job>-<tenant>-tls    (tenant namespace) that tenant's client
//                                                   certificate; only its
//                                                   workers mount it
// Each workload Secret holds ca.crt (the CA certificate only), tls.crt and
// tls.key, mounted read-only at kTlsDir. The CA key never leaves the job's
// namespace. Objects carry the job's labels, so the finalizer removes the
// tenants' Secrets; the job's own have an owner reference.
#ifndef BRAID_OPERATOR_JOB_TLS_H_
#define BRAID_OPERATOR_JOB_TLS_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "braid/core/pki.h"
#include "braid/core/spec.h"
#include "braid/operator/job_objects.h"

namespace braid::op {

inline constexpr char kTlsDir[] = "/var/run/braid/tls";

std::string CaSecretName(const spec::JobSpec& job);
std::string AggregatorTlsSecretName(const spec::JobSpec& job);
std::string WorkerTlsSecretName(const spec::JobSpec& job, const std::string& tenant_namespace,
                                const std::string& tenant);

// The names the aggregator's certificate carries: its Service's DNS names
// (<svc>, <svc>.<ns>, <svc>.<ns>.svc, <svc>.<ns>.svc.cluster.local). The
// operator verifies the aggregator against the first of the fully
// qualified ones whatever address it dials.
std::vector<std::string> AggregatorDnsNames(const spec::JobSpec& job);
std::string AggregatorServerName(const spec::JobSpec& job);  // <svc>.<ns>.svc

// A Secret manifest holding `files` (name -> content), base64-encoded, with
// the job's labels (and owner reference when in the job's namespace).
nlohmann::json TlsSecret(const spec::JobSpec& job, const JobObjectsContext& context,
                         const std::string& name, const std::string& ns,
                         const std::vector<std::pair<std::string, std::string>>& files);

// The decoded data of a Secret: key -> bytes. InvalidArgument naming the
// Secret and key when one is missing or not base64.
absl::StatusOr<std::string> SecretFile(const nlohmann::json& secret, const std::string& key);

// The volume and mount of a workload's TLS Secret, and the flags that point
// braid-aggregator / braid-worker at its files.
nlohmann::json TlsVolume(const std::string& secret_name);
nlohmann::json TlsMount();
std::vector<std::string> TlsArgs();

}  // namespace braid::op

#endif  // BRAID_OPERATOR_JOB_TLS_H_
