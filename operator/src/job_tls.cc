#include "braid/operator/job_tls.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace braid::op {

using nlohmann::json;

std::string CaSecretName(const spec::JobSpec& job) {
  return ObjectName(job, job.namespace_, "ca");
}

std::string AggregatorTlsSecretName(const spec::JobSpec& job) {
  return ObjectName(job, job.namespace_, "aggregator-tls");
}

std::string WorkerTlsSecretName(const spec::JobSpec& job, const std::string& tenant_namespace,
                                const std::string& tenant) {
  return ObjectName(job, tenant_namespace, tenant + "-tls");
}

std::vector<std::string> AggregatorDnsNames(const spec::JobSpec& job) {
  const std::string svc = AggregatorServiceName(job);
  const std::string ns = job.namespace_;
  return {svc, absl::StrCat(svc, ".", ns), absl::StrCat(svc, ".", ns, ".svc"),
          absl::StrCat(svc, ".", ns, ".svc.cluster.local")};
}

std::string AggregatorServerName(const spec::JobSpec& job) {
  return absl::StrCat(AggregatorServiceName(job), ".", job.namespace_, ".svc");
}

json TlsSecret(const spec::JobSpec& job, const JobObjectsContext& context, const std::string& name,
               const std::string& ns,
               const std::vector<std::pair<std::string, std::string>>& files) {
  json data = json::object();
  for (const auto& [key, content] : files) data[key] = absl::Base64Escape(content);
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", JobObjectMetadata(job, context, name, ns, "tls")},
          {"type", "Opaque"},
          {"data", std::move(data)}};
}

absl::StatusOr<std::string> SecretFile(const json& secret, const std::string& key) {
  const std::string name = secret.value("/metadata/namespace"_json_pointer, std::string()) + "/" +
                           secret.value("/metadata/name"_json_pointer, std::string());
  const json::json_pointer ptr("/data/" + key);
  if (!secret.contains(ptr) || !secret.at(ptr).is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("Secret ", name, " has no data.", key));
  }
  std::string out;
  if (!absl::Base64Unescape(secret.at(ptr).get<std::string>(), &out)) {
    return absl::InvalidArgumentError(absl::StrCat("Secret ", name, ": data.", key,
                                                   " is not base64"));
  }
  return out;
}

json TlsVolume(const std::string& secret_name) {
  // 0440 with the pod's fsGroup: readable by the non-root container user.
  return {{"name", "tls"}, {"secret", {{"secretName", secret_name}, {"defaultMode", 0440}}}};
}

json TlsMount() { return {{"name", "tls"}, {"mountPath", kTlsDir}, {"readOnly", true}}; }

std::vector<std::string> TlsArgs() {
  return {absl::StrCat("--tls-ca=", kTlsDir, "/ca.crt"),
          absl::StrCat("--tls-cert=", kTlsDir, "/tls.crt"),
          absl::StrCat("--tls-key=", kTlsDir, "/tls.key")};
}

}  // namespace braid::op
