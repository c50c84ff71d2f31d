#include "braid/control/tenant_approval.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace braid::control {
namespace {

using nlohmann::json;

std::string Str(const json& obj, const json::json_pointer& ptr) {
  if (!obj.contains(ptr)) return "";
  const json& v = obj.at(ptr);
  return v.is_string() ? v.get<std::string>() : "";
}

bool RequiresApproval(const json& tenant) {
  const json::json_pointer ptr("/spec/policy/requireApproval");
  return tenant.contains(ptr) && tenant.at(ptr).is_boolean() && tenant.at(ptr).get<bool>();
}

}  // namespace

const char* ConsentName(Consent consent) {
  switch (consent) {
    case Consent::kNotRequired: return "NotRequired";
    case Consent::kPending: return "Pending";
    case Consent::kApproved: return "Approved";
    case Consent::kRefused: return "Refused";
  }
  return "Pending";
}

namespace {

// The consent of tenant `name` by its Tenant object (nullptr: none known,
// kNotRequired) and the TenantApprovals.
TenantConsent LocalConsent(const std::string& name, const json* tenant, const JobRef& ref,
                           const std::vector<json>& approvals) {
  TenantConsent c;
  c.tenant = name;
  if (tenant == nullptr || !RequiresApproval(*tenant)) return c;
  c.consent = Consent::kPending;
  const std::string tenant_ns = Str(*tenant, json::json_pointer("/spec/namespace"));
  for (const json& a : approvals) {
    if (!a.is_object()) continue;
    if (Str(a, json::json_pointer("/metadata/namespace")) != tenant_ns) continue;
    if (Str(a, json::json_pointer("/spec/tenant")) != name) continue;
    if (Str(a, json::json_pointer("/spec/job/namespace")) != ref.namespace_ ||
        Str(a, json::json_pointer("/spec/job/name")) != ref.name) {
      continue;
    }
    const std::string uid = Str(a, json::json_pointer("/spec/job/uid"));
    if (!uid.empty() && uid != ref.uid) continue;
    const std::string decision = Str(a, json::json_pointer("/spec/decision"));
    Consent decided;
    if (decision == "Approved") {
      decided = Consent::kApproved;
    } else if (decision == "Refused") {
      decided = Consent::kRefused;
    } else {
      continue;  // the CRD allows only these two
    }
    // Refused wins over Approved; the first of equal decisions is kept.
    if (c.consent == Consent::kRefused) continue;
    if (c.consent == Consent::kApproved && decided == Consent::kApproved) continue;
    c.consent = decided;
    c.approval = tenant_ns + "/" + Str(a, json::json_pointer("/metadata/name"));
    c.comment = Str(a, json::json_pointer("/spec/comment"));
  }
  return c;
}

constexpr size_t kMaxSiteComment = 1024;

// A site tenant's consent as its site last reported it.
TenantConsent ReportedConsent(const spec::Tenant& t,
                              const std::map<std::string, SiteReport>& reports) {
  TenantConsent c;
  c.tenant = t.name;
  c.approval = "site:" + t.site;
  c.consent = Consent::kPending;
  auto it = reports.find(t.name);
  if (it == reports.end()) return c;
  const SiteReport& r = it->second;
  if (r.state == "Running" || r.state == "Succeeded" || r.state == "Failed") {
    c.consent = Consent::kApproved;
  } else if (r.state == "Refused") {
    c.consent = Consent::kRefused;
  }
  std::string comment = r.reason.empty()    ? r.message
                        : r.message.empty() ? r.reason
                                            : r.reason + ": " + r.message;
  // The site's words reach the job's status and the audit trail: bounded,
  // cut on a UTF-8 character boundary.
  if (comment.size() > kMaxSiteComment) {
    size_t cut = kMaxSiteComment;
    while (cut > 0 && (static_cast<unsigned char>(comment[cut]) & 0xC0) == 0x80) --cut;
    comment.resize(cut);
    comment += "...";
  }
  c.comment = std::move(comment);
  return c;
}

}  // namespace

std::vector<TenantConsent> ResolveConsent(const spec::JobSpec& job, const JobRef& ref,
                                          const std::map<std::string, json>& tenants,
                                          const std::vector<json>& approvals,
                                          const std::map<std::string, SiteReport>& site_reports) {
  std::vector<TenantConsent> out;
  out.reserve(job.tenants.size());
  for (const spec::Tenant& t : job.tenants) {
    if (t.IsSite()) {
      out.push_back(ReportedConsent(t, site_reports));
      continue;
    }
    auto it = tenants.find(t.name);
    out.push_back(LocalConsent(t.name, it == tenants.end() ? nullptr : &it->second, ref,
                               approvals));
  }
  return out;
}

TenantConsent ResolveSiteConsent(const spec::JobSpec& job, const JobRef& ref,
                                 const std::string& tenant, const json& tenant_object,
                                 const std::vector<json>& approvals) {
  for (const spec::Tenant& t : job.tenants) {
    if (t.name == tenant) return LocalConsent(tenant, &tenant_object, ref, approvals);
  }
  TenantConsent c;
  c.tenant = tenant;
  c.consent = Consent::kPending;
  return c;
}

Admission DecideAdmission(const spec::JobSpec& job, const std::vector<TenantConsent>& consent) {
  std::vector<std::string> pending, refused;
  int runnable_replicas = 0, runnable_tenants = 0;
  for (size_t i = 0; i < consent.size() && i < job.tenants.size(); ++i) {
    if (consent[i].consent == Consent::kPending) pending.push_back(consent[i].tenant);
    if (consent[i].consent == Consent::kRefused) refused.push_back(consent[i].tenant);
    if (MayRun(consent[i].consent)) {
      runnable_replicas += job.tenants[i].replicas;
      ++runnable_tenants;
    }
  }
  Admission a;
  if (!pending.empty()) {
    a.reason = "AwaitingApproval";
    a.message = absl::StrCat("waiting for ", absl::StrJoin(pending, ", "),
                             " to approve: a TenantApproval with decision Approved in the "
                             "tenant's namespace (for a site's tenant, in the site's cluster)");
    if (!refused.empty()) absl::StrAppend(&a.message, "; refused by ", absl::StrJoin(refused, ", "));
    return a;
  }
  if (runnable_replicas < job.strategy.min_clients) {
    a.reason = "TenantRefused";
    a.message = absl::StrCat("refused by ", absl::StrJoin(refused, ", "), "; the other tenants have ",
                             runnable_replicas, " replicas, fewer than strategy.minClients (",
                             job.strategy.min_clients, ")");
    return a;
  }
  if (runnable_tenants < job.strategy.min_tenants) {
    a.reason = "TenantRefused";
    a.message = absl::StrCat("refused by ", absl::StrJoin(refused, ", "), "; ", runnable_tenants,
                             " other tenant(s) remain, fewer than strategy.minTenants (",
                             job.strategy.min_tenants, ")");
    return a;
  }
  a.admit = true;
  return a;
}

std::string AdmissionJson(const nlohmann::json& job, const std::vector<TenantConsent>& consent) {
  nlohmann::json tenants = nlohmann::json::array();
  for (const TenantConsent& c : consent) {
    tenants.push_back({{"tenant", c.tenant},
                       {"consent", ConsentName(c.consent)},
                       {"approval", c.approval},
                       {"comment", c.comment}});
  }
  return nlohmann::json{{"job",
                         {{"uid", job.value("/metadata/uid"_json_pointer, std::string())},
                          {"created", job.value("/metadata/creationTimestamp"_json_pointer,
                                                std::string())}}},
                        {"tenants", tenants}}
      .dump();
}

}  // namespace braid::control
