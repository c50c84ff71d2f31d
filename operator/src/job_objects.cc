#include "braid/operator/job_objects.h"

#include <cstdint>
#include <cstdio>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "braid/core/dns_name.h"
#include "braid/control/desired_set.h"
#include "braid/kube/resource.h"
#include "braid/operator/job_tls.h"

namespace braid::op {
namespace {

using nlohmann::json;

constexpr char kJobFileDir[] = "/etc/braid";
constexpr char kJobFile[] = "/etc/braid/job.yaml";
constexpr char kCheckpointDir[] = "/var/braid/checkpoint";
constexpr char kDataDir[] = "/var/braid/data";
constexpr char kFederationCaDir[] = "/var/run/braid/federation";

bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return s.front() >= 'a' && s.front() <= 'z' && s.back() != '-';
}

uint32_t Fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

json Labels(const spec::JobSpec& job, const JobObjectsContext& context, const std::string& role) {
  return {{"app.kubernetes.io/name", "braid-" + role},
          {"app.kubernetes.io/component", role},
          {"app.kubernetes.io/part-of", "braid"},
          {"app.kubernetes.io/managed-by", "braid-operator"},
          {"braid.dev/job", job.name},
          {"braid.dev/job-namespace", job.namespace_},
          {kJobUidLabel, context.job_uid},
          {"braid.dev/role", role}};
}

json Metadata(const std::string& name, const std::string& ns, json labels,
              const spec::JobSpec& job, const JobObjectsContext& context) {
  json meta = {{"name", name}, {"namespace", ns}, {"labels", std::move(labels)}};
  if (!context.owner_reference.is_null()) {
    meta["ownerReferences"] = json::array({context.owner_reference});
  } else if (ns == job.namespace_ && !context.remote_aggregator.has_value()) {
    meta["ownerReferences"] = json::array({{{"apiVersion", "braid.dev/v1alpha1"},
                                            {"kind", "FederatedJob"},
                                            {"name", job.name},
                                            {"uid", context.job_uid},
                                            {"controller", true},
                                            {"blockOwnerDeletion", true}}});
  }
  return meta;
}

json RestrictedSecurityContext() {
  return {{"allowPrivilegeEscalation", false},
          {"readOnlyRootFilesystem", true},
          {"runAsNonRoot", true},
          {"capabilities", {{"drop", json::array({"ALL"})}}}};
}

json PodSecurityContext() {
  return {{"runAsNonRoot", true},
          {"runAsUser", 65532},
          {"runAsGroup", 65532},
          {"fsGroup", 65532},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}};
}

json JobFileVolume(const std::string& config_map) {
  return {{"name", "job"}, {"configMap", {{"name", config_map}}}};
}

json JobFileMount() { return {{"name", "job"}, {"mountPath", kJobFileDir}, {"readOnly", true}}; }

json JobConfigMap(const std::string& name, const std::string& ns, const std::string& role,
                  const spec::JobSpec& job, const JobObjectsContext& context) {
  json map = {{"apiVersion", "v1"},
              {"kind", "ConfigMap"},
              {"metadata", Metadata(name, ns, Labels(job, context, role), job, context)},
              {"data", {{"job.yaml", context.job_yaml}}}};
  if (role == "aggregator") map["data"]["admission.json"] = context.admission_json;
  if (role == "aggregator" && !context.federation_ca_secret.empty()) {
    map["data"]["sites.json"] = context.site_admission_json;
  }
  return map;
}

json Deployment(json metadata, json selector, int replicas, json pod_spec) {
  json template_labels = metadata["labels"];
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", std::move(metadata)},
          {"spec",
           {{"replicas", replicas},
            {"strategy", {{"type", "Recreate"}}},
            {"selector", {{"matchLabels", std::move(selector)}}},
            {"template",
             {{"metadata", {{"labels", std::move(template_labels)}}},
              {"spec", std::move(pod_spec)}}}}}};
}

json AggregatorDeployment(const spec::JobSpec& job, const JobObjectsContext& context,
                          const control::DesiredSet& desired) {
  const std::string name = ObjectName(job, job.namespace_, "aggregator");
  json labels = Labels(job, context, "aggregator");
  json selector = {{kJobUidLabel, context.job_uid}, {"braid.dev/role", "aggregator"}};
  const std::string initial_model = std::string(kCheckpointDir) + "/initial.safetensors";
  json init = {{"name", "init-model"},
               {"image", context.worker_image},
               {"imagePullPolicy", context.image_pull_policy},
               {"args", {"init", std::string("--job=") + kJobFile, "--out=" + initial_model}},
               {"securityContext", RestrictedSecurityContext()},
               {"volumeMounts", {JobFileMount(), {{"name", "checkpoint"},
                                                  {"mountPath", kCheckpointDir}}}}};
  json aggregator = {
      {"name", "aggregator"},
      {"image", context.aggregator_image},
      {"imagePullPolicy", context.image_pull_policy},
      {"args",
       {std::string("--job=") + kJobFile, std::string("--checkpoint-dir=") + kCheckpointDir,
        "--initial-model=" + initial_model,
        std::string("--admission-file=") + kJobFileDir + "/admission.json",
        absl::StrCat("--listen=0.0.0.0:", kAggregatorGrpcPort),
        absl::StrCat("--metrics-listen=0.0.0.0:", kAggregatorMetricsPort),
        // Keep serving status and the final model after the last round.
        "--linger=87600h"}},
      {"ports",
       {{{"name", "grpc"}, {"containerPort", kAggregatorGrpcPort}, {"protocol", "TCP"}},
        {{"name", "metrics"}, {"containerPort", kAggregatorMetricsPort}, {"protocol", "TCP"}}}},
      {"readinessProbe", {{"tcpSocket", {{"port", "grpc"}}}, {"periodSeconds", 5}}},
      {"securityContext", RestrictedSecurityContext()},
      {"volumeMounts",
       {JobFileMount(), {{"name", "checkpoint"}, {"mountPath", kCheckpointDir}}}}};
  json pod = {{"automountServiceAccountToken", false},
              {"enableServiceLinks", false},
              {"securityContext", PodSecurityContext()},
              {"initContainers", {init}},
              {"containers", {aggregator}},
              {"volumes",
               {JobFileVolume(ObjectName(job, job.namespace_, "job")),
                {{"name", "checkpoint"}, {"emptyDir", json::object()}}}}};
  for (const std::string& arg : desired.aggregator_args) {
    pod["containers"][0]["args"].push_back(arg);
  }
  if (!context.federation_ca_secret.empty()) {
    json& container = pod["containers"][0];
    container["args"].push_back(std::string("--tls-client-ca-extra=") + kFederationCaDir +
                                "/ca.crt");
    container["args"].push_back(std::string("--site-admission=") + kJobFileDir + "/sites.json");
    container["volumeMounts"].push_back(
        {{"name", "federation-ca"}, {"mountPath", kFederationCaDir}, {"readOnly", true}});
    pod["volumes"].push_back(
        {{"name", "federation-ca"},
         {"secret",
          {{"secretName", context.federation_ca_secret},
           {"items", {{{"key", "ca.crt"}, {"path", "ca.crt"}}}}}}});
  }
  if (context.tls) {
    json& container = pod["containers"][0];
    for (const std::string& arg : TlsArgs()) container["args"].push_back(arg);
    container["volumeMounts"].push_back(TlsMount());
    pod["volumes"].push_back(TlsVolume(AggregatorTlsSecretName(job)));
  }
  return Deployment(Metadata(name, job.namespace_, labels, job, context), selector,
                    desired.run_aggregator ? 1 : 0, pod);
}

json AggregatorService(const spec::JobSpec& job, const JobObjectsContext& context) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", Metadata(AggregatorServiceName(job), job.namespace_,
                                Labels(job, context, "aggregator"), job, context)},
          {"spec",
           {{"type", "ClusterIP"},
            {"selector", {{kJobUidLabel, context.job_uid}, {"braid.dev/role", "aggregator"}}},
            {"ports",
             {{{"name", "grpc"}, {"port", kAggregatorGrpcPort}, {"targetPort", "grpc"}},
              {{"name", "metrics"},
               {"port", kAggregatorMetricsPort},
               {"targetPort", "metrics"}}}}}}};
}

json NamespaceIs(const std::string& ns) {
  return {{"matchLabels", {{"kubernetes.io/metadata.name", ns}}}};
}

// Admits this job's workers (from their namespaces) and the operator to the
// gRPC port; the metrics port stays open to scrapers.
json AggregatorNetworkPolicy(const spec::JobSpec& job, const JobObjectsContext& context,
                             const std::set<std::string>& tenant_namespaces) {
  json from = json::array();
  for (const std::string& ns : tenant_namespaces) {
    json workers = {{"matchLabels",
                     {{kJobUidLabel, context.job_uid}, {"braid.dev/role", "worker"}}}};
    from.push_back({{"namespaceSelector", NamespaceIs(ns)}, {"podSelector", workers}});
  }
  if (!context.operator_namespace.empty()) {
    from.push_back({{"namespaceSelector", NamespaceIs(context.operator_namespace)}});
  }
  json grpc_rule = {{"ports", {{{"protocol", "TCP"}, {"port", kAggregatorGrpcPort}}}}};
  // Site workers dial in from outside the cluster: no peer list can name
  // them, so the port is open and their certificates decide.
  bool sites = false;
  for (const spec::Tenant& t : job.tenants) sites |= !t.site.empty();
  if (!sites) grpc_rule["from"] = from;
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "NetworkPolicy"},
          {"metadata", Metadata(ObjectName(job, job.namespace_, "aggregator"), job.namespace_,
                                Labels(job, context, "aggregator"), job, context)},
          {"spec",
           {{"podSelector",
             {{"matchLabels", {{kJobUidLabel, context.job_uid}, {"braid.dev/role", "aggregator"}}}}},
            {"policyTypes", {"Ingress"}},
            {"ingress",
             {grpc_rule, {{"ports", {{{"protocol", "TCP"}, {"port", kAggregatorMetricsPort}}}}}}}}}};
}

// The port of "host:port" (or "[v6]:port"); `fallback` when there is none.
int AddressPort(const std::string& address, int fallback) {
  const size_t colon = address.find_last_of(':');
  if (colon == std::string::npos || address.find(']', colon) != std::string::npos) return fallback;
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 1 || port > 65535) {
    return fallback;
  }
  return port;
}

// Nothing may reach this job's workers in `ns`; they may reach only the
// aggregator's gRPC port and cluster DNS.
json WorkerNetworkPolicy(const spec::JobSpec& job, const JobObjectsContext& context,
                         const std::string& ns) {
  json aggregator_peer = {
      {"namespaceSelector", NamespaceIs(job.namespace_)},
      {"podSelector",
       {{"matchLabels", {{kJobUidLabel, context.job_uid}, {"braid.dev/role", "aggregator"}}}}}};
  int aggregator_port = kAggregatorGrpcPort;
  if (context.remote_aggregator.has_value()) {
    // The aggregator is outside this cluster: any address, its port only.
    aggregator_peer = {{"ipBlock", {{"cidr", "0.0.0.0/0"}}}};
    aggregator_port = AddressPort(context.remote_aggregator->address, kAggregatorGrpcPort);
  }
  json dns_peer = {{"namespaceSelector", json::object()},
                   {"podSelector", {{"matchLabels", {{"k8s-app", "kube-dns"}}}}}};
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "NetworkPolicy"},
          {"metadata", Metadata(ObjectName(job, ns, "workers"), ns, Labels(job, context, "worker"),
                                job, context)},
          {"spec",
           {{"podSelector",
             {{"matchLabels", {{kJobUidLabel, context.job_uid}, {"braid.dev/role", "worker"}}}}},
            {"policyTypes", {"Ingress", "Egress"}},
            {"ingress", json::array()},
            {"egress",
             {{{"to", {aggregator_peer}},
               {"ports", {{{"protocol", "TCP"}, {"port", aggregator_port}}}}},
              {{"to", {dns_peer}},
               {"ports",
                {{{"protocol", "UDP"}, {"port", 53}}, {{"protocol", "TCP"}, {"port", 53}}}}}}}}}};
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

json WorkerDeployment(const spec::JobSpec& job, const JobObjectsContext& context,
                      const spec::Tenant& tenant, const control::Workload& workload) {
  const int replica = workload.replica;
  const std::string ns = TenantNamespace(context, tenant.name);
  json labels = Labels(job, context, "worker");
  labels["braid.dev/tenant"] = tenant.name;
  labels["braid.dev/replica"] = std::to_string(replica);
  json selector = {{kJobUidLabel, context.job_uid},
                   {"braid.dev/role", "worker"},
                   {"braid.dev/tenant", tenant.name},
                   {"braid.dev/replica", std::to_string(replica)}};
  // Only the one file the job names is mounted, read-only.
  const std::string data_file =
      std::string(kDataDir) + "/" + BaseName(tenant.data.sub_path);
  const std::string aggregator_address = context.remote_aggregator.has_value()
                                             ? context.remote_aggregator->address
                                             : AggregatorAddress(job);
  json worker = {
      {"name", "worker"},
      {"image", context.worker_image},
      {"imagePullPolicy", context.image_pull_policy},
      {"args",
       {"run", std::string("--job=") + kJobFile, "--tenant=" + tenant.name,
        absl::StrCat("--replica=", replica), "--aggregator=" + aggregator_address,
        "--data=" + data_file}},
      {"securityContext", RestrictedSecurityContext()},
      {"volumeMounts",
       {JobFileMount(),
        {{"name", "data"},
         {"mountPath", data_file},
         {"subPath", tenant.data.sub_path},
         {"readOnly", true}}}}};
  json pod = {{"automountServiceAccountToken", false},
              {"enableServiceLinks", false},
              {"securityContext", PodSecurityContext()},
              {"containers", {worker}},
              {"volumes",
               {JobFileVolume(ObjectName(job, ns, "job")),
                {{"name", "data"},
                 {"persistentVolumeClaim",
                  {{"claimName", tenant.data.claim_name}, {"readOnly", true}}}}}}};
  if (context.tls) {
    json& container = pod["containers"][0];
    for (const std::string& arg : TlsArgs()) container["args"].push_back(arg);
    container["volumeMounts"].push_back(TlsMount());
    if (context.remote_aggregator.has_value()) {
      container["args"].push_back("--tls-server-name=" + context.remote_aggregator->server_name);
      pod["volumes"].push_back(TlsVolume(context.remote_aggregator->tls_secret));
    } else {
      pod["volumes"].push_back(TlsVolume(WorkerTlsSecretName(job, ns, tenant.name)));
    }
  }
  return Deployment(Metadata(ObjectName(job, ns, absl::StrCat(tenant.name, "-", replica)), ns,
                             labels, job, context),
                    selector, workload.run ? 1 : 0, pod);
}

}  // namespace

json JobObjectMetadata(const spec::JobSpec& job, const JobObjectsContext& context,
                       const std::string& name, const std::string& ns, const std::string& role) {
  return Metadata(name, ns, Labels(job, context, role), job, context);
}

absl::StatusOr<JobObjectsContext::GatewayRef> ParseGatewayRef(const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(text, '/');
  if (parts.size() != 2 && parts.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not <namespace>/<name>[/<listener>]"));
  }
  JobObjectsContext::GatewayRef ref{parts[0], parts[1], parts.size() == 3 ? parts[2] : ""};
  if (!IsDns1123Label(ref.namespace_)) {
    return absl::InvalidArgumentError(
        absl::StrCat("namespace '", ref.namespace_, "' is not a DNS-1123 label"));
  }
  if (!IsDns1123Subdomain(ref.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("name '", ref.name, "' is not a DNS-1123 subdomain"));
  }
  if (parts.size() == 3 && !IsDns1123Subdomain(ref.section)) {
    return absl::InvalidArgumentError(
        absl::StrCat("listener '", ref.section, "' is not a DNS-1123 subdomain"));
  }
  return ref;
}

std::string DnsLabel(const std::string& base) {
  if (IsDnsLabel(base)) return base;
  std::string name;
  for (char c : base) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    name += ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '-';
  }
  if (name.empty() || !(name.front() >= 'a' && name.front() <= 'z')) name = "b-" + name;
  // Always hashed from here: `base` was not a label (too long, a character
  // replaced, or a trailing '-'), and the hash keeps distinct bases apart.
  char hash[9];
  std::snprintf(hash, sizeof(hash), "%08x", Fnv1a(base));
  if (name.size() > 54) name.resize(54);
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name + "-" + hash;
}

std::string ObjectName(const spec::JobSpec& job, const std::string& object_namespace,
                       const std::string& suffix) {
  if (object_namespace == job.namespace_) return DnsLabel(job.name + "-" + suffix);
  return DnsLabel(job.namespace_ + "-" + job.name + "-" + suffix);
}

std::string AggregatorServiceName(const spec::JobSpec& job) {
  return ObjectName(job, job.namespace_, "aggregator");
}

std::string AggregatorAddress(const spec::JobSpec& job) {
  return absl::StrCat(AggregatorServiceName(job), ".", job.namespace_, ".svc:",
                      kAggregatorGrpcPort);
}

std::string TenantNamespace(const JobObjectsContext& context, const std::string& tenant) {
  auto it = context.tenant_namespaces.find(tenant);
  return it == context.tenant_namespaces.end() ? "" : it->second;
}

std::string JobSelector(const std::string& job_uid) {
  return absl::StrCat(kJobUidLabel, "=", job_uid, ",app.kubernetes.io/managed-by=braid-operator");
}

// The route from the Gateway's TLS-passthrough listener to the aggregator's
// Service, for the sites' workers, which send the aggregator's certificate
// name as SNI.
json AggregatorTlsRoute(const spec::JobSpec& job, const JobObjectsContext& context) {
  const JobObjectsContext::GatewayRef& gateway = *context.aggregator_gateway;
  json parent = {{"group", "gateway.networking.k8s.io"},
                 {"kind", "Gateway"},
                 {"namespace", gateway.namespace_},
                 {"name", gateway.name}};
  if (!gateway.section.empty()) parent["sectionName"] = gateway.section;
  return {{"apiVersion", kube::kTlsRoute.api_version},
          {"kind", kube::kTlsRoute.kind},
          {"metadata", Metadata(AggregatorServiceName(job), job.namespace_,
                                Labels(job, context, "aggregator"), job, context)},
          {"spec",
           {{"parentRefs", {parent}},
            {"hostnames", {AggregatorServerName(job)}},
            {"rules",
             {{{"backendRefs",
                {{{"name", AggregatorServiceName(job)}, {"port", kAggregatorGrpcPort}}}}}}}}}};
}

std::vector<json> DesiredObjects(const spec::JobSpec& job, const JobObjectsContext& context) {
  std::vector<json> objects;
  std::set<std::string> tenant_namespaces;
  for (const spec::Tenant& tenant : job.tenants) {
    if (tenant.site.empty()) tenant_namespaces.insert(TenantNamespace(context, tenant.name));
  }
  const bool here = !context.remote_aggregator.has_value();  // the aggregator runs here
  if (here) {
    objects.push_back(JobConfigMap(ObjectName(job, job.namespace_, "job"), job.namespace_,
                                   "aggregator", job, context));
    objects.push_back(AggregatorService(job, context));
    objects.push_back(AggregatorNetworkPolicy(job, context, tenant_namespaces));
    if (!context.federation_ca_secret.empty() && context.aggregator_gateway.has_value()) {
      objects.push_back(AggregatorTlsRoute(job, context));
    }
  }
  // The one list both runtimes start from: the aggregator, then each
  // tenant's replicas.
  std::set<std::string> namespaces_done;
  const control::DesiredSet desired = control::ComputeDesiredSet(job, context.run);
  for (const control::Workload& workload : desired.workloads) {
    if (workload.role == control::Workload::Role::kAggregator) {
      if (here) objects.push_back(AggregatorDeployment(job, context, desired));
      continue;
    }
    if (!workload.site.empty()) continue;  // runs at its site
    const spec::Tenant* tenant = nullptr;
    for (const spec::Tenant& t : job.tenants) {
      if (t.name == workload.tenant) tenant = &t;
    }
    const std::string ns = TenantNamespace(context, tenant->name);
    if ((ns != job.namespace_ || !here) && namespaces_done.insert(ns).second) {
      objects.push_back(JobConfigMap(ObjectName(job, ns, "job"), ns, "worker", job, context));
    }
    if (namespaces_done.insert("policy:" + ns).second) {
      objects.push_back(WorkerNetworkPolicy(job, context, ns));
    }
    objects.push_back(WorkerDeployment(job, context, *tenant, workload));
  }
  return objects;
}

}  // namespace braid::op
