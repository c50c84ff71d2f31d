// Names a kind of Kubernetes object the way its REST path needs it.
#ifndef BRAID_KUBE_RESOURCE_H_
#define BRAID_KUBE_RESOURCE_H_

#include <string>

namespace braid::kube {

struct ResourceRef {
  std::string api_version;  // "v1", "apps/v1", "braid.dev/v1alpha1"
  std::string kind;         // "Pod"; written into applied objects' kind
  std::string plural;       // "pods"
  bool namespaced = true;

  // "" for the core group ("v1"), else the part before '/'.
  std::string group() const;
  // "/api/v1" or "/apis/<group>/<version>".
  std::string PathPrefix() const;
  // The collection path: ns "" lists across all namespaces (or the only
  // scope for cluster-scoped kinds, which ignore ns).
  std::string CollectionPath(const std::string& ns) const;
  // One object; `subresource` ("status") appended when non-empty.
  std::string ObjectPath(const std::string& ns, const std::string& name,
                         const std::string& subresource = "") const;
};

// The kinds the operator touches.
inline const ResourceRef kPod{"v1", "Pod", "pods", true};
inline const ResourceRef kService{"v1", "Service", "services", true};
inline const ResourceRef kSecret{"v1", "Secret", "secrets", true};
inline const ResourceRef kConfigMap{"v1", "ConfigMap", "configmaps", true};
inline const ResourceRef kEvent{"v1", "Event", "events", true};
inline const ResourceRef kPersistentVolumeClaim{"v1", "PersistentVolumeClaim",
                                                "persistentvolumeclaims", true};
inline const ResourceRef kServiceAccount{"v1", "ServiceAccount", "serviceaccounts", true};
inline const ResourceRef kDeployment{"apps/v1", "Deployment", "deployments", true};
inline const ResourceRef kNetworkPolicy{"networking.k8s.io/v1", "NetworkPolicy",
                                        "networkpolicies", true};
inline const ResourceRef kTlsRoute{"gateway.networking.k8s.io/v1", "TLSRoute", "tlsroutes",
                                   true};
inline const ResourceRef kLease{"coordination.k8s.io/v1", "Lease", "leases", true};
inline const ResourceRef kFederatedJob{"braid.dev/v1alpha1", "FederatedJob", "federatedjobs",
                                       true};
inline const ResourceRef kTenant{"braid.dev/v1alpha1", "Tenant", "tenants", false};
inline const ResourceRef kTenantApproval{"braid.dev/v1alpha1", "TenantApproval",
                                         "tenantapprovals", true};

// Percent-encodes `s` for a path segment or query value (everything but
// A-Z a-z 0-9 - . _ ~).
std::string UrlEscape(const std::string& s);

}  // namespace braid::kube

#endif  // BRAID_KUBE_RESOURCE_H_
