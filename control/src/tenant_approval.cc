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

std::vector<TenantConsent> ResolveConsent(const spec::JobSpec& job, const JobRef& ref,
                                          const std::map<std::string, json>& tenants,
                                          const std::vector<json>& approvals) {
  std::vector<TenantConsent> out;
  for (const spec::Tenant& t : job.tenants) {
    TenantConsent c;
    c.tenant = t.name;
    auto it = tenants.find(t.name);
    if (it == tenants.end() || !RequiresApproval(it->second)) {
      out.push_back(std::move(c));
      continue;
    }
    c.consent = Consent::kPending;
    const std::string tenant_ns = Str(it->second, json::json_pointer("/spec/namespace"));
    for (const json& a : approvals) {
      if (!a.is_object()) continue;
      if (Str(a, json::json_pointer("/metadata/namespace")) != tenant_ns) continue;
      if (Str(a, json::json_pointer("/spec/tenant")) != t.name) continue;
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
    out.push_back(std::move(c));
  }
  return out;
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
                             "tenant's namespace");
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
