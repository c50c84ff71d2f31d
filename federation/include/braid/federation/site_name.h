// Site names: the name of a Site object in the coordinator cluster, which is
// also what a site's certificate says ("site:<name>", pki::SiteOf).
#ifndef BRAID_FEDERATION_SITE_NAME_H_
#define BRAID_FEDERATION_SITE_NAME_H_

#include <string_view>

namespace braid::federation {

// Whether `name` is a DNS-1123 label: 1 to 63 characters of [a-z0-9-],
// starting and ending with a letter or digit.
bool IsValidSiteName(std::string_view name);

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_SITE_NAME_H_
