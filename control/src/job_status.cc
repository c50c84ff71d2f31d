#include "braid/control/job_status.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace braid::control {
namespace {

using nlohmann::json;

struct Condition {
  std::string type;
  bool status;
  std::string reason;
  std::string message;
};

const json* FindCondition(const json& previous, const std::string& type) {
  if (!previous.is_object() || !previous.contains("conditions")) return nullptr;
  for (const json& c : previous["conditions"]) {
    if (c.value("type", "") == type) return &c;
  }
  return nullptr;
}

json RenderCondition(const Condition& c, const json& previous, int64_t generation,
                     const std::string& now) {
  const std::string status = c.status ? "True" : "False";
  std::string since = now;
  if (const json* old = FindCondition(previous, c.type);
      old != nullptr && old->value("status", "") == status) {
    since = old->value("lastTransitionTime", now);
  }
  return {{"type", c.type},          {"status", status},
          {"reason", c.reason},      {"message", c.message},
          {"observedGeneration", generation}, {"lastTransitionTime", since}};
}

std::string JoinSpecErrors(const std::vector<spec::FieldError>& errors) {
  std::string out;
  for (size_t i = 0; i < errors.size() && i < 5; ++i) {
    if (i > 0) out += "; ";
    out += errors[i].ToString();
  }
  if (errors.size() > 5) absl::StrAppend(&out, "; and ", errors.size() - 5, " more");
  return out;
}

}  // namespace

bool IsFinalPhase(const std::string& phase) { return phase == "Succeeded" || phase == "Failed"; }

bool WasAdmitted(const json& status) {
  const json* admitted = FindCondition(status, "Admitted");
  return admitted != nullptr && admitted->value("status", "") == "True";
}

bool EndedByAggregator(const json& status) {
  const json* complete = FindCondition(status, "Complete");
  return complete != nullptr && complete->value("status", "") == "True";
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

json ComputeStatus(const ObservedJob& o, const json& previous, const std::string& now) {
  const json prev = previous.is_object() ? previous : json::object();
  std::vector<Condition> conditions;
  std::string phase, reason, message;

  const bool valid = o.spec_errors.empty();
  conditions.push_back({"Valid", valid, valid ? "SpecValid" : "InvalidSpec",
                        valid ? "the job spec is valid" : JoinSpecErrors(o.spec_errors)});

  const bool tenants_ok = valid && o.tenant_problems.empty();
  if (valid) {
    std::string text;
    for (const TenantProblem& p : o.tenant_problems) {
      if (!text.empty()) text += "; ";
      text += p.path + ": " + p.message;
    }
    conditions.push_back({"TenantsReady", tenants_ok,
                          tenants_ok ? "TenantsResolved" : o.tenant_problems[0].reason,
                          tenants_ok ? "every tenant exists and allows this job" : text});
  }

  if (tenants_ok) {
    std::vector<std::string> stopped;
    for (const TenantConsent& c : o.consent) {
      if (!MayRun(c.consent)) stopped.push_back(c.tenant + " (" + ConsentName(c.consent) + ")");
    }
    std::string text = o.admitted ? "every tenant that requires approval approved"
                                  : o.admission.message;
    if (o.admitted && !stopped.empty()) {
      text = absl::StrCat("admitted; workers stopped for ", absl::StrJoin(stopped, ", "),
                          ": consent revoked or refused");
    }
    conditions.push_back({"Admitted", o.admitted,
                          o.admitted ? "Approved" : o.admission.reason, text});
  }

  // The aggregator's own final word wins, once given.
  const bool ended = EndedByAggregator(prev) && IsFinalPhase(prev.value("phase", ""));
  const bool report_final = o.report.has_value() && IsFinalPhase(o.report->phase);

  int ready_workers = 0, desired_workers = 0;
  for (const auto& [name, counts] : o.workers) {
    ready_workers += counts.ready;
    desired_workers += counts.desired;
  }

  if (ended) {
    // Final even if the spec or a Tenant changed since: the run is over.
    phase = prev.value("phase", "");
    reason = prev.value("reason", "");
    message = prev.value("message", "");
  } else if (!valid) {
    phase = "Failed";
    reason = "InvalidSpec";
    message = JoinSpecErrors(o.spec_errors);
  } else if (report_final) {
    phase = o.report->phase;
    reason = o.report->reason;
    message = o.report->message;
  } else if (!tenants_ok) {
    const TenantProblem& first = o.tenant_problems[0];
    phase = first.reason == "TenantNotFound" ? "Pending" : "Failed";
    reason = first.reason;
    message = first.path + ": " + first.message;
  } else if (o.suspended) {
    phase = "Suspended";
    reason = "Suspended";
    message = "spec.suspend is true; the checkpoint is kept";
  } else if (!o.admitted) {
    phase = "AwaitingApproval";
    reason = o.admission.reason;
    message = o.admission.message;
  } else if (o.report.has_value() && o.report->phase == "Running") {
    phase = "Running";
    reason = "RoundsRunning";
    message = absl::StrCat(o.report->round, " of ", o.report->total_rounds,
                           " rounds done; ", o.report->clients, " workers joined");
  } else {
    phase = "Pending";
    if (o.aggregator_ready == 0) {
      reason = "WaitingForAggregator";
      message = "the aggregator is not ready yet";
    } else if (ready_workers < desired_workers || o.report.has_value()) {
      reason = "WaitingForWorkers";
      message = o.report.has_value()
                    ? absl::StrCat(o.report->clients, " workers joined; the first round starts "
                                                      "when enough have")
                    : absl::StrCat(ready_workers, " of ", desired_workers, " workers ready");
    } else {
      // Every pod is ready, yet the operator has no answer from the
      // aggregator: a NetworkPolicy of the cluster's own, or an operator
      // outside the cluster.
      reason = "AggregatorUnreachable";
      message = "every pod is ready, but the aggregator at " + o.aggregator_endpoint +
                " does not answer the operator";
      if (!o.poll_error.empty()) absl::StrAppend(&message, " (", o.poll_error, ")");
    }
  }

  if (tenants_ok && o.admitted) {
    const bool aggregator_ready = o.aggregator_ready > 0;
    conditions.push_back({"AggregatorReady", aggregator_ready,
                          aggregator_ready ? "AggregatorAvailable"
                                           : (o.suspended ? "Suspended" : "AggregatorNotReady"),
                          aggregator_ready ? "the aggregator is serving"
                                           : "the aggregator has no ready pod"});
    const bool workers_ready = desired_workers > 0 && ready_workers == desired_workers;
    conditions.push_back(
        {"WorkersReady", workers_ready, workers_ready ? "WorkersAvailable" : "WorkersNotReady",
         absl::StrCat(ready_workers, " of ", desired_workers, " workers ready")});
  }
  // Kept once true whatever else is wrong now: EndedByAggregator() reads it,
  // and without it a finished job would be revived (workers restarted).
  if (tenants_ok || ended) {
    const bool complete = ended || report_final;
    conditions.push_back({"Complete", complete, complete ? reason : "NotFinished",
                          complete ? message : "the job has not ended"});
  }

  json status = {{"observedGeneration", o.generation},
                 {"phase", phase},
                 {"reason", reason},
                 {"message", message},
                 {"rounds", o.rounds}};
  status["round"] = o.report.has_value() ? o.report->round : prev.value("round", 0);
  if (o.report.has_value() && o.report->round > 0) {
    status["metrics"] = {{"trainLoss", o.report->train_loss},
                         {"evalLoss", o.report->eval_loss},
                         {"evalAccuracy", o.report->eval_accuracy},
                         {"participants", o.report->participants}};
  } else if (prev.contains("metrics")) {
    status["metrics"] = prev["metrics"];
  }
  if (o.report.has_value() && o.report->privacy_enabled) {
    status["privacy"] = {{"epsilon", o.report->epsilon},
                         {"delta", o.report->delta},
                         {"maxEpsilon", o.report->max_epsilon}};
  } else if (!o.report.has_value() && prev.contains("privacy")) {
    status["privacy"] = prev["privacy"];
  }
  if (o.report.has_value() && o.report->audit.entries > 0) {
    status["audit"] = o.report->audit.ToJson();
  } else if (prev.contains("audit")) {
    status["audit"] = prev["audit"];
  }
  if (!o.aggregator_endpoint.empty()) {
    status["aggregator"] = {{"endpoint", o.aggregator_endpoint},
                            {"readyReplicas", o.aggregator_ready}};
  }
  std::map<std::string, Consent> consent;
  for (const TenantConsent& c : o.consent) consent[c.tenant] = c.consent;
  json tenants = json::array();
  for (const auto& [name, counts] : o.workers) {
    std::string tenant_phase = "Pending";
    auto c = consent.find(name);
    if (c != consent.end() && c->second == Consent::kRefused) {
      tenant_phase = "Refused";
    } else if (c != consent.end() && c->second == Consent::kPending && !IsFinalPhase(phase)) {
      // Pending once the job has ended (a site no longer reports a job it
      // was withdrawn from) is not waiting for anything.
      tenant_phase = "AwaitingApproval";
    } else if (IsFinalPhase(phase)) {
      tenant_phase = phase;
    } else if (phase == "Suspended") {
      tenant_phase = "Suspended";
    } else if (counts.desired > 0 && counts.ready == counts.desired) {
      tenant_phase = "Running";
    }
    // A site's own word on why its workers do not run is more precise than
    // the consent it implies (e.g. Disconnected, Revoked).
    const bool site_says = !counts.site_state.empty() && counts.site_state != "Running" &&
                           counts.site_state != "Succeeded" && !IsFinalPhase(phase);
    // A site out of reach (Disconnected) or expelled (Revoked) is shown as
    // such whatever its workers last did; its other states only refine a
    // tenant that does not run.
    const bool unreachable =
        counts.site_state == "Disconnected" || counts.site_state == "Revoked";
    if (site_says && (unreachable || tenant_phase == "Pending" ||
                      tenant_phase == "AwaitingApproval" || tenant_phase == "Refused")) {
      tenant_phase = counts.site_state;
    }
    json t = {{"name", name},         {"namespace", counts.namespace_}, {"phase", tenant_phase},
              {"replicas", counts.desired}, {"readyReplicas", counts.ready}};
    if (!counts.site.empty()) t["site"] = counts.site;
    if (c != consent.end()) t["consent"] = ConsentName(c->second);
    if (o.report.has_value()) {
      auto it = o.report->tenant_last_round.find(name);
      if (it != o.report->tenant_last_round.end()) t["lastRound"] = it->second;
    } else {
      // Not polled (ended, or unreachable for now): keep what was known.
      for (const json& old : prev.value("tenants", json::array())) {
        if (old.value("name", "") == name && old.contains("lastRound")) {
          t["lastRound"] = old["lastRound"];
        }
      }
    }
    tenants.push_back(std::move(t));
  }
  if (!tenants.empty()) status["tenants"] = std::move(tenants);
  if (prev.contains("startTime")) {
    status["startTime"] = prev["startTime"];
  } else if (phase == "Running" || ended || report_final) {
    status["startTime"] = now;
  }
  if (IsFinalPhase(phase)) status["completionTime"] = prev.value("completionTime", now);

  json rendered = json::array();
  for (const Condition& c : conditions) {
    rendered.push_back(RenderCondition(c, prev, o.generation, now));
  }
  status["conditions"] = std::move(rendered);
  return status;
}

}  // namespace braid::control
