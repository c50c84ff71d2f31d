// Kubernetes' name rules, for every part that checks a name: a DNS-1123
// label (namespaces, job, tenant and site names) and a DNS-1123 subdomain
// (PersistentVolumeClaim and dataset names).
#ifndef BRAID_CORE_DNS_NAME_H_
#define BRAID_CORE_DNS_NAME_H_

#include <string_view>

namespace braid {

// 1 to 63 characters of [a-z0-9-], starting and ending with [a-z0-9].
bool IsDns1123Label(std::string_view s);
// At most 253 characters: DNS-1123 labels joined by '.'.
bool IsDns1123Subdomain(std::string_view s);

}  // namespace braid

#endif  // BRAID_CORE_DNS_NAME_H_
