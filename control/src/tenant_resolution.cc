#include "braid/control/tenant_resolution.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace braid::control {
namespace {

using nlohmann::json;

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

bool ClaimListed(const json& tenant, const std::string& claim) {
  const json sources = tenant.value("/spec/dataSources"_json_pointer, json::array());
  return std::any_of(sources.begin(), sources.end(), [&](const json& source) {
    return source.is_object() && source.value("claimName", "") == claim;
  });
}

// A Site's spec.revoked is true (anything else, absent included, is not).
bool Revoked(const json& site) {
  const json::json_pointer ptr("/spec/revoked");
  return site.contains(ptr) && site.at(ptr).is_boolean() && site.at(ptr).get<bool>();
}

}  // namespace

std::vector<TenantProblem> PolicyProblems(const spec::JobSpec& job, const std::string& name,
                                          const json& tenant) {
  std::vector<TenantProblem> out;
  const json models = tenant.value("/spec/policy/allowedModels"_json_pointer, json());
  if (models.is_array() &&
      std::find(models.begin(), models.end(), json(job.model.kind)) == models.end()) {
    out.push_back({"spec.model.kind", "ModelNotAllowed",
                   "Tenant " + Quote(name) + " allows only models " + models.dump() + ", not " +
                       Quote(job.model.kind)});
  }
  const json max_rounds = tenant.value("/spec/policy/maxRounds"_json_pointer, json());
  if (max_rounds.is_number_integer() && job.strategy.rounds > max_rounds.get<int64_t>()) {
    out.push_back({"spec.strategy.rounds", "TooManyRounds",
                   absl::StrCat("Tenant ", Quote(name), " allows at most ",
                                max_rounds.get<int64_t>(), " rounds; the job asks for ",
                                job.strategy.rounds)});
  }
  // A tenant's privacy budget: the job must run with differential privacy
  // and promise to stop at or before it.
  const json max_epsilon = tenant.value("/spec/policy/maxEpsilon"_json_pointer, json());
  if (max_epsilon.is_number()) {
    const double limit = max_epsilon.get<double>();
    if (!job.privacy.differential_privacy) {
      out.push_back({"spec.privacy.differentialPrivacy", "PrivacyRequired",
                     absl::StrCat("Tenant ", Quote(name),
                                  " requires differential privacy with maxEpsilon <= ", limit,
                                  "; the job has none")});
    } else if (job.privacy.dp.max_epsilon > limit) {
      out.push_back({"spec.privacy.differentialPrivacy.maxEpsilon", "PrivacyBudgetTooLarge",
                     absl::StrCat("Tenant ", Quote(name), " allows at most epsilon ", limit,
                                  "; the job asks for maxEpsilon ", job.privacy.dp.max_epsilon)});
    }
  }
  return out;
}

TenantResolution ResolveTenants(const spec::JobSpec& job,
                                const std::map<std::string, json>& tenants,
                                const std::map<std::string, json>* sites, bool admitted) {
  TenantResolution out;
  for (size_t i = 0; i < job.tenants.size(); ++i) {
    const spec::Tenant& t = job.tenants[i];
    const std::string at = absl::StrCat("spec.tenants[", i, "]");
    auto add = [&](std::string path, std::string reason, std::string message) {
      out.problems.push_back({std::move(path), std::move(reason), std::move(message)});
    };
    if (t.IsSite()) {
      if (sites == nullptr) {
        add(at + ".site", "SitesNeedCoordinator",
            "tenant " + Quote(t.name) + " names site " + Quote(t.site) +
                ", but this braid-operator is not a coordinator (--role coordinator); give the "
                "tenant data in this cluster instead");
        continue;
      }
      auto site = sites->find(t.site);
      if (site == sites->end() && admitted) {
        out.departed.push_back({at + ".site", "SiteNotFound",
                                "Site " + Quote(t.site) +
                                    " was deleted; the job goes on without tenant " +
                                    Quote(t.name)});
      } else if (site == sites->end()) {
        add(at + ".site", "SiteNotFound",
            "no Site " + Quote(t.site) +
                " exists; a cluster administrator creates it (kind: Site, braid.dev/v1alpha1) "
                "and the institution enrolls with its token");
      } else if (Revoked(site->second) && admitted) {
        out.departed.push_back({at + ".site", "SiteRevoked",
                                "Site " + Quote(t.site) +
                                    " was revoked; the job goes on without tenant " +
                                    Quote(t.name)});
      } else if (Revoked(site->second)) {
        add(at + ".site", "SiteRevoked",
            "Site " + Quote(t.site) + " is revoked; it takes part in no job");
      }
      continue;
    }
    auto found = tenants.find(t.name);
    if (found == tenants.end()) {
      add(at + ".name", "TenantNotFound",
          "no Tenant " + Quote(t.name) +
              " exists; a cluster administrator creates it (kind: Tenant, braid.dev/v1alpha1)");
      continue;
    }
    const json& tenant = found->second;
    const std::string ns = tenant.value("/spec/namespace"_json_pointer, std::string());
    if (ns.empty()) {
      add(at + ".name", "TenantNotFound", "Tenant " + Quote(t.name) + " has no spec.namespace");
      continue;
    }
    if (!t.namespace_.empty() && t.namespace_ != ns) {
      add(at + ".namespace", "NamespaceMismatch",
          "Tenant " + Quote(t.name) + " lives in namespace " + Quote(ns) + ", not " +
              Quote(t.namespace_) + "; remove the field or set it to " + Quote(ns));
      continue;
    }
    bool ok = true;
    if (t.data.claim_name.empty()) {
      add(at + ".data", "NeedsClaim",
          "on Kubernetes a tenant's data is a persistentVolumeClaim: {claimName, subPath} in "
          "its namespace; path is for braid run");
      ok = false;
    } else if (t.data.sub_path.empty()) {
      add(at + ".data.persistentVolumeClaim.subPath", "NeedsClaim",
          "name the CSV file inside claim " + Quote(t.data.claim_name));
      ok = false;
    } else if (!ClaimListed(tenant, t.data.claim_name)) {
      add(at + ".data.persistentVolumeClaim.claimName", "ClaimNotAllowed",
          "Tenant " + Quote(t.name) + " does not list claim " + Quote(t.data.claim_name) +
              " in spec.dataSources; only listed claims may be mounted");
      ok = false;
    }
    for (TenantProblem& p : PolicyProblems(job, t.name, tenant)) {
      out.problems.push_back(std::move(p));
      ok = false;
    }
    if (ok) out.namespaces[t.name] = ns;
  }
  return out;
}

}  // namespace braid::control
