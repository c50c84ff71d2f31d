#include "braid/control/site_invitation.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace braid::control {
namespace {

using nlohmann::json;

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

std::string StringAt(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Relative, without a ".." component (Kubernetes' rule for subPath; the CRD
// checks it too, this keeps an object written around the schema out).
bool SafeSubPath(const std::string& sub_path) {
  if (sub_path.empty()) return false;
  const std::filesystem::path p(sub_path);
  if (p.is_absolute()) return false;
  for (const auto& part : p) {
    if (part == "..") return false;
  }
  return true;
}

// The entry of the Tenant's spec.datasets named `name`, or nullptr.
const json* FindDataset(const json& tenant, const std::string& name) {
  const json::json_pointer ptr("/spec/datasets");
  if (!tenant.contains(ptr) || !tenant.at(ptr).is_array()) return nullptr;
  for (const json& d : tenant.at(ptr)) {
    if (d.is_object() && StringAt(d, "name") == name) return &d;
  }
  return nullptr;
}

}  // namespace

SiteInvitationView ResolveSiteInvitation(const spec::JobSpec& job, const std::string& site,
                                         const std::string& tenant,
                                         const json& tenant_object) {
  SiteInvitationView out;
  auto add = [&](std::string path, std::string reason, std::string message) {
    out.problems.push_back({std::move(path), std::move(reason), std::move(message)});
  };
  size_t i = 0;
  while (i < job.tenants.size() && job.tenants[i].name != tenant) ++i;
  if (i == job.tenants.size()) {
    add("spec.tenants", "TenantNotFound",
        "the job has no tenant " + Quote(tenant) + "; the invitation does not match its job");
    return out;
  }
  const spec::Tenant& t = job.tenants[i];
  const std::string at = absl::StrCat("spec.tenants[", i, "]");
  if (!t.IsSite()) {
    add(at + ".site", "NotASiteTenant",
        "tenant " + Quote(tenant) + " names data of the coordinator's cluster, not a site");
    return out;
  }
  if (t.site != site) {
    add(at + ".site", "SiteMismatch",
        "tenant " + Quote(tenant) + " is site " + Quote(t.site) + "'s, not " + Quote(site) +
            "'s; this site runs only its own tenant");
    return out;
  }
  bool placed = true;
  const std::string ns = tenant_object.value("/spec/namespace"_json_pointer, std::string());
  if (ns.empty()) {
    add(at + ".site", "TenantNotReady",
        "this site's Tenant has no spec.namespace; its administrator sets one");
    placed = false;
  }
  const json* dataset = FindDataset(tenant_object, t.dataset);
  std::string claim, sub_path;
  if (dataset != nullptr) {
    claim = StringAt(*dataset, "claimName");
    sub_path = StringAt(*dataset, "subPath");
  }
  if (dataset == nullptr) {
    add(at + ".dataset", "DatasetNotFound",
        "this site's Tenant lists no dataset " + Quote(t.dataset) +
            " in spec.datasets; its administrator maps the name to a claim there");
    placed = false;
  } else if (claim.empty() || !SafeSubPath(sub_path)) {
    add(at + ".dataset", "DatasetNotFound",
        "this site's Tenant lists dataset " + Quote(t.dataset) +
            " in spec.datasets without a claimName and a relative subPath (no \"..\")");
    placed = false;
  }
  for (TenantProblem& p : PolicyProblems(job, tenant, tenant_object)) {
    out.problems.push_back(std::move(p));
  }
  if (placed && out.problems.empty()) {
    out.namespace_ = ns;
    out.claim_name = std::move(claim);
    out.sub_path = std::move(sub_path);
  }
  return out;
}

}  // namespace braid::control
