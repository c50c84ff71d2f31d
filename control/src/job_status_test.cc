#include "braid/control/job_status.h"

#include <set>
#include <string>

#include "braid/control/aggregator_report.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::control {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kT1[] = "2024-05-01T10:00:00Z";
constexpr char kT2[] = "2024-05-01T10:05:00Z";
constexpr char kT3[] = "2024-05-01T10:10:00Z";

// A valid job whose tenants resolved: alpha (2 workers in tenant-a) and beta
// (1 in lab), nothing ready yet.
ObservedJob Resolved() {
  ObservedJob o;
  o.generation = 3;
  o.rounds = 5;
  o.aggregator_endpoint = "train-aggregator.lab.svc:7070";
  o.workers["alpha"] = WorkerCounts{"tenant-a", 2, 0};
  o.workers["beta"] = WorkerCounts{"lab", 1, 0};
  return o;
}

// Everything up, and the aggregator answering `phase` after `round` rounds.
ObservedJob Reporting(const std::string& phase, int round) {
  ObservedJob o = Resolved();
  o.aggregator_ready = 1;
  o.workers["alpha"].ready = 2;
  o.workers["beta"].ready = 1;
  AggregatorReport r;
  r.phase = phase;
  r.reason = phase == "Succeeded" ? "RoundsCompleted" : "";
  r.message = phase == "Succeeded" ? "5 rounds done" : "";
  r.round = round;
  r.total_rounds = 5;
  r.clients = 3;
  r.participants = 3;
  r.train_loss = 0.25;
  r.eval_loss = 0.5;
  r.eval_accuracy = 0.875;
  r.tenant_last_round = {{"alpha", round}, {"beta", round - 1}};
  o.report = r;
  return o;
}

const json& Condition(const json& status, const std::string& type) {
  static const json kNone;
  for (const json& c : status["conditions"]) {
    if (c["type"] == type) return c;
  }
  ADD_FAILURE() << "no condition " << type << " in " << status.dump();
  return kNone;
}

const json& TenantStatus(const json& status, const std::string& name) {
  static const json kNone;
  if (status.contains("tenants")) {
    for (const json& t : status["tenants"]) {
      if (t["name"] == name) return t;
    }
  }
  ADD_FAILURE() << "no tenant " << name << " in " << status.dump();
  return kNone;
}

TEST(ComputeStatus, InvalidSpecFailsAndNamesTheField) {
  ObservedJob o;
  o.generation = 2;
  o.spec_errors = {{"spec.strategy.minClients", "must be at most the total replicas (3), got 5"}};
  const json s = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(s["phase"], "Failed");
  EXPECT_EQ(s["reason"], "InvalidSpec");
  EXPECT_THAT(s["message"].get<std::string>(), HasSubstr("spec.strategy.minClients"));
  const json& valid = Condition(s, "Valid");
  EXPECT_EQ(valid["status"], "False");
  EXPECT_EQ(valid["reason"], "InvalidSpec");
  EXPECT_THAT(valid["message"].get<std::string>(), HasSubstr("spec.strategy.minClients"));
  EXPECT_FALSE(EndedByAggregator(s)) << "fixing the spec must be able to revive the job";
}

TEST(ComputeStatus, FixingAnInvalidSpecClearsTheFailure) {
  ObservedJob bad;
  bad.spec_errors = {{"spec.tenants[0].replicas", "must be at least 1"}};
  const json failed = ComputeStatus(bad, json(), kT1);
  ASSERT_EQ(failed["phase"], "Failed");
  const json s = ComputeStatus(Resolved(), failed, kT2);
  EXPECT_EQ(s["phase"], "Pending");
  EXPECT_EQ(Condition(s, "Valid")["status"], "True");
  EXPECT_EQ(Condition(s, "Valid")["lastTransitionTime"], kT2);
  EXPECT_FALSE(s.contains("completionTime"));
}

TEST(ComputeStatus, MissingTenantIsPendingWithTenantsNotReady) {
  ObservedJob o;
  o.tenant_problems = {{"spec.tenants[1].name", "TenantNotFound", "no Tenant \"beta\" exists"}};
  const json s = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(s["phase"], "Pending");
  EXPECT_EQ(s["reason"], "TenantNotFound");
  EXPECT_THAT(s["message"].get<std::string>(), HasSubstr("spec.tenants[1].name"));
  EXPECT_EQ(Condition(s, "Valid")["status"], "True");
  const json& tenants = Condition(s, "TenantsReady");
  EXPECT_EQ(tenants["status"], "False");
  EXPECT_EQ(tenants["reason"], "TenantNotFound");
  EXPECT_THAT(tenants["message"].get<std::string>(), HasSubstr("no Tenant \"beta\""));
}

TEST(ComputeStatus, PolicyRefusalFails) {
  ObservedJob o;
  o.tenant_problems = {{"spec.tenants[0].data.persistentVolumeClaim.claimName", "ClaimNotAllowed",
                        "Tenant \"alpha\" does not list claim \"x\""}};
  const json s = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(s["phase"], "Failed");
  EXPECT_EQ(s["reason"], "ClaimNotAllowed");
  EXPECT_EQ(Condition(s, "TenantsReady")["status"], "False");
}

TEST(ComputeStatus, AllPodsReadyButNoAnswerSaysTheAggregatorIsUnreachable) {
  ObservedJob o = Resolved();
  o.aggregator_ready = 1;
  o.workers["alpha"].ready = 2;
  o.workers["beta"].ready = 1;
  json s = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(s["phase"], "Pending");
  EXPECT_EQ(s["reason"], "AggregatorUnreachable");
  EXPECT_THAT(s["message"].get<std::string>(), HasSubstr("train-aggregator.lab.svc:7070"));
  // The poll's error is in the message: what an admin needs to fix it.
  o.poll_error = "certificate verify failed";
  s = ComputeStatus(o, json(), kT1);
  EXPECT_THAT(s["message"].get<std::string>(), HasSubstr("(certificate verify failed)"));
  o.poll_error.clear();
  // Answering but still gathering workers: waiting for them, with the count.
  AggregatorReport report;
  report.job = "train";
  report.phase = "Pending";
  report.clients = 2;
  o.report = report;
  s = ComputeStatus(o, s, kT2);
  EXPECT_EQ(s["reason"], "WaitingForWorkers");
  EXPECT_THAT(s["message"].get<std::string>(), HasSubstr("2 workers joined"));
}

TEST(ComputeStatus, WaitsForTheAggregatorThenTheWorkers) {
  ObservedJob o = Resolved();
  json s = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(s["phase"], "Pending");
  EXPECT_EQ(s["reason"], "WaitingForAggregator");
  EXPECT_EQ(Condition(s, "TenantsReady")["status"], "True");
  EXPECT_EQ(Condition(s, "AggregatorReady")["status"], "False");
  EXPECT_FALSE(s.contains("startTime"));

  o.aggregator_ready = 1;
  o.workers["alpha"].ready = 1;
  s = ComputeStatus(o, s, kT2);
  EXPECT_EQ(s["reason"], "WaitingForWorkers");
  EXPECT_EQ(s["message"], "1 of 3 workers ready");
  EXPECT_EQ(Condition(s, "AggregatorReady")["status"], "True");
  EXPECT_EQ(Condition(s, "WorkersReady")["status"], "False");
  EXPECT_EQ(TenantStatus(s, "alpha")["readyReplicas"], 1);
  EXPECT_EQ(TenantStatus(s, "alpha")["namespace"], "tenant-a");
}

TEST(ComputeStatus, RunningReportCopiesRoundMetricsAndTenantsLastRound) {
  const json s = ComputeStatus(Reporting("Running", 3), json(), kT1);
  EXPECT_EQ(s["phase"], "Running");
  EXPECT_EQ(s["round"], 3);
  EXPECT_EQ(s["rounds"], 5);
  EXPECT_EQ(s["metrics"]["trainLoss"], 0.25);
  EXPECT_EQ(s["metrics"]["evalLoss"], 0.5);
  EXPECT_EQ(s["metrics"]["evalAccuracy"], 0.875);
  EXPECT_EQ(s["metrics"]["participants"], 3);
  EXPECT_EQ(s["startTime"], kT1);
  EXPECT_FALSE(s.contains("completionTime"));
  EXPECT_EQ(TenantStatus(s, "alpha")["lastRound"], 3);
  EXPECT_EQ(TenantStatus(s, "beta")["lastRound"], 2);
  EXPECT_EQ(TenantStatus(s, "alpha")["phase"], "Running");
  EXPECT_EQ(Condition(s, "WorkersReady")["status"], "True");
  EXPECT_EQ(Condition(s, "Complete")["status"], "False");
  EXPECT_EQ(s["aggregator"]["endpoint"], "train-aggregator.lab.svc:7070");
}

TEST(ComputeStatus, PrivacyBudgetIsShownAndKeptWhileTheAggregatorIsSilent) {
  ObservedJob o = Reporting("Running", 3);
  EXPECT_FALSE(ComputeStatus(o, json(), kT1).contains("privacy"));  // DP off: no section
  o.report->privacy_enabled = true;
  o.report->epsilon = 2.5;
  o.report->delta = 1e-5;
  o.report->max_epsilon = 8;
  const json s = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(s["privacy"]["epsilon"], 2.5);
  EXPECT_EQ(s["privacy"]["delta"], 1e-5);
  EXPECT_EQ(s["privacy"]["maxEpsilon"], 8);
  o.report.reset();
  const json silent = ComputeStatus(o, s, kT2);
  EXPECT_EQ(silent["privacy"], s["privacy"]);
}

TEST(ComputeStatus, AuditHeadIsShownAndKeptWhileTheAggregatorReportsNone) {
  ObservedJob o = Reporting("Running", 3);
  EXPECT_FALSE(ComputeStatus(o, json(), kT1).contains("audit"));
  const std::string head(64, 'e');
  o.report->audit = {12, head};
  const json s = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(s["audit"], (json{{"entries", 12}, {"head", head}}));
  o.report.reset();
  EXPECT_EQ(ComputeStatus(o, s, kT2)["audit"], s["audit"]);  // silent
  o = Reporting("Running", 3);                               // answering, no anchor
  EXPECT_EQ(ComputeStatus(o, s, kT2)["audit"], s["audit"]);
}

TEST(ReportFromStatus, OnlyAWellFormedAuditHeadIsTaken) {
  v1::JobStatus status;
  status.mutable_audit()->set_entries(4);
  status.mutable_audit()->set_head(std::string(64, 'a'));
  EXPECT_EQ(ReportFromStatus(status).audit, (audit::Anchor{4, std::string(64, 'a')}));
  status.mutable_audit()->set_head("<script>");
  EXPECT_EQ(ReportFromStatus(status).audit, audit::Anchor{});
  status.mutable_audit()->set_entries(-1);
  status.mutable_audit()->set_head(std::string(64, 'a'));
  EXPECT_EQ(ReportFromStatus(status).audit, audit::Anchor{});
}

TEST(ComputeStatus, BudgetStopCompletesTheJobWithItsReason) {
  ObservedJob o = Reporting("Succeeded", 2);
  o.report->reason = "PrivacyBudgetExhausted";
  o.report->message = "round 3 would spend epsilon 9.1 > maxEpsilon 8";
  o.report->privacy_enabled = true;
  o.report->epsilon = 7.5;
  o.report->max_epsilon = 8;
  const json s = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(s["phase"], "Succeeded");
  EXPECT_EQ(s["reason"], "PrivacyBudgetExhausted");
  EXPECT_EQ(Condition(s, "Complete")["reason"], "PrivacyBudgetExhausted");
  EXPECT_EQ(s["privacy"]["epsilon"], 7.5);
}

TEST(ComputeStatus, SucceededReportCompletesTheJob) {
  const json running = ComputeStatus(Reporting("Running", 4), json(), kT1);
  const json s = ComputeStatus(Reporting("Succeeded", 5), running, kT2);
  EXPECT_EQ(s["phase"], "Succeeded");
  EXPECT_EQ(s["reason"], "RoundsCompleted");
  EXPECT_EQ(s["round"], 5);
  EXPECT_EQ(s["startTime"], kT1);
  EXPECT_EQ(s["completionTime"], kT2);
  const json& complete = Condition(s, "Complete");
  EXPECT_EQ(complete["status"], "True");
  EXPECT_EQ(complete["reason"], "RoundsCompleted");
  EXPECT_EQ(complete["lastTransitionTime"], kT2);
  EXPECT_EQ(TenantStatus(s, "alpha")["phase"], "Succeeded");
  EXPECT_TRUE(EndedByAggregator(s));
}

// A site withdrawn from an ended job stops reporting it, so its consent
// reads as pending again; the ended job's tenant is not awaiting anything.
TEST(ComputeStatus, AnEndedJobsSiteTenantIsNotAwaitingApproval) {
  const json running = ComputeStatus(Reporting("Running", 4), json(), kT1);
  ObservedJob o = Reporting("Succeeded", 5);
  o.workers["alpha"].site = "st-mary";
  o.workers["alpha"].site_state = "Invited";
  o.consent = {{"alpha", Consent::kPending, "", ""}, {"beta", Consent::kNotRequired, "", ""}};
  const json s = ComputeStatus(o, running, kT2);
  EXPECT_EQ(s["phase"], "Succeeded");
  EXPECT_EQ(TenantStatus(s, "alpha")["phase"], "Succeeded");
  EXPECT_EQ(TenantStatus(s, "alpha")["site"], "st-mary");
}

TEST(ComputeStatus, ASiteOutOfReachIsShownWhileTheJobRuns) {
  ObservedJob o = Reporting("Running", 3);
  o.workers["alpha"].site = "st-mary";
  o.workers["alpha"].site_state = "Disconnected";
  EXPECT_EQ(TenantStatus(ComputeStatus(o, json(), kT1), "alpha")["phase"], "Disconnected");
  o.workers["alpha"].site_state = "Running";
  EXPECT_EQ(TenantStatus(ComputeStatus(o, json(), kT1), "alpha")["phase"], "Running");
}

// After success the workers are scaled to zero and the aggregator may stop
// answering; the job must stay Succeeded with its last numbers.
TEST(ComputeStatus, SucceededIsStickyWithoutAReport) {
  const json done = ComputeStatus(Reporting("Succeeded", 5), json(), kT1);
  ObservedJob later = Resolved();
  later.workers["alpha"].desired = 0;
  later.workers["beta"].desired = 0;
  const json s = ComputeStatus(later, done, kT2);
  EXPECT_EQ(s["phase"], "Succeeded");
  EXPECT_EQ(s["reason"], "RoundsCompleted");
  EXPECT_EQ(s["round"], 5);
  EXPECT_EQ(s["metrics"], done["metrics"]);
  EXPECT_EQ(s["completionTime"], kT1);
  EXPECT_EQ(Condition(s, "Complete")["status"], "True");
  EXPECT_EQ(Condition(s, "Complete")["lastTransitionTime"], kT1);
  EXPECT_TRUE(EndedByAggregator(s));
}

// A Tenant deleted (or its policy tightened) after the job finished must not
// turn a finished job back into a pending one, nor restart its workers.
TEST(ComputeStatus, SucceededStaysSucceededWhenATenantGoesAway) {
  const json done = ComputeStatus(Reporting("Succeeded", 5), json(), kT1);
  ObservedJob gone;
  gone.generation = 3;
  gone.rounds = 5;
  gone.tenant_problems = {{"spec.tenants[0].name", "TenantNotFound", "no Tenant \"alpha\""}};
  json s = done;
  for (const char* now : {kT2, kT3}) {  // twice: the result is fed back
    s = ComputeStatus(gone, s, now);
    EXPECT_EQ(s["phase"], "Succeeded") << now;
    EXPECT_EQ(s["completionTime"], kT1) << now;
    EXPECT_TRUE(EndedByAggregator(s)) << now;
  }
}

// Nor does an edit the parser refuses (say, an object that bypassed the CRD)
// turn a finished job into a failed one.
TEST(ComputeStatus, SucceededStaysSucceededWhenTheSpecTurnsInvalid) {
  const json done = ComputeStatus(Reporting("Succeeded", 5), json(), kT1);
  ObservedJob edited;
  edited.generation = 4;
  edited.spec_errors = {{"spec.strategy.minClients", "must be at most the total replicas"}};
  json s = ComputeStatus(edited, done, kT2);
  EXPECT_EQ(s["phase"], "Succeeded");
  EXPECT_EQ(Condition(s, "Valid")["status"], "False") << "the edit is still reported";
  s = ComputeStatus(edited, s, kT3);
  EXPECT_EQ(s["phase"], "Succeeded");
  // Fixing the edit leaves it finished, too.
  ObservedJob fixed = Resolved();
  fixed.workers["alpha"].desired = 0;
  fixed.workers["beta"].desired = 0;
  s = ComputeStatus(fixed, s, kT3);
  EXPECT_EQ(s["phase"], "Succeeded");
  EXPECT_EQ(s["reason"], "RoundsCompleted");
}

TEST(ComputeStatus, AggregatorFailureIsFinal) {
  ObservedJob o = Reporting("Failed", 2);
  o.report->reason = "TooFewClients";
  o.report->message = "round 3 had 1 of 2 clients";
  const json failed = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(failed["phase"], "Failed");
  EXPECT_EQ(failed["reason"], "TooFewClients");
  EXPECT_EQ(failed["message"], "round 3 had 1 of 2 clients");
  EXPECT_TRUE(EndedByAggregator(failed));
  const json s = ComputeStatus(Resolved(), failed, kT2);
  EXPECT_EQ(s["phase"], "Failed");
  EXPECT_EQ(s["reason"], "TooFewClients");
}

TEST(ComputeStatus, SuspendedJob) {
  ObservedJob o = Resolved();
  o.suspended = true;
  o.workers["alpha"].desired = 0;
  o.workers["beta"].desired = 0;
  const json s = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(s["phase"], "Suspended");
  EXPECT_EQ(s["reason"], "Suspended");
  EXPECT_EQ(Condition(s, "AggregatorReady")["reason"], "Suspended");
  EXPECT_EQ(TenantStatus(s, "alpha")["phase"], "Suspended");
  EXPECT_FALSE(s.contains("completionTime"));
}

TEST(ComputeStatus, TransitionTimeMovesOnlyWhenAConditionFlips) {
  ObservedJob o = Resolved();
  const json s1 = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(Condition(s1, "AggregatorReady")["lastTransitionTime"], kT1);
  const json s2 = ComputeStatus(o, s1, kT2);
  EXPECT_EQ(Condition(s2, "AggregatorReady")["lastTransitionTime"], kT1);
  o.aggregator_ready = 1;
  const json s3 = ComputeStatus(o, s2, kT3);
  EXPECT_EQ(Condition(s3, "AggregatorReady")["status"], "True");
  EXPECT_EQ(Condition(s3, "AggregatorReady")["lastTransitionTime"], kT3);
  // Unchanged conditions keep their time across the flip of another.
  EXPECT_EQ(Condition(s3, "Valid")["lastTransitionTime"], kT1);
  EXPECT_EQ(Condition(s3, "TenantsReady")["lastTransitionTime"], kT1);
}

TEST(ComputeStatus, ObservedGenerationOnStatusAndEveryCondition) {
  ObservedJob o = Reporting("Running", 1);
  o.generation = 7;
  const json s = ComputeStatus(o, json(), kT1);
  EXPECT_EQ(s["observedGeneration"], 7);
  ASSERT_EQ(s["conditions"].size(), 6u);
  for (const json& c : s["conditions"]) EXPECT_EQ(c["observedGeneration"], 7) << c.dump();
}

TEST(ComputeStatus, ConditionsAreAListMapKeyedByType) {
  const json s = ComputeStatus(Reporting("Running", 1), json(), kT1);
  std::set<std::string> types;
  for (const json& c : s["conditions"]) {
    EXPECT_TRUE(types.insert(c["type"].get<std::string>()).second) << c["type"];
    EXPECT_TRUE(c["status"] == "True" || c["status"] == "False") << c.dump();
    EXPECT_FALSE(c["reason"].get<std::string>().empty()) << c.dump();
  }
  EXPECT_EQ(types, (std::set<std::string>{"Valid", "TenantsReady", "Admitted",
                                          "AggregatorReady", "WorkersReady", "Complete"}));
}

// The reconciler writes status only when it differs from what the API
// server holds: recomputing from the stored status (after a JSON round trip)
// with nothing changed must give the same bytes, even at a later time.
TEST(ComputeStatus, UnchangedObservationGivesIdenticalStatus) {
  for (const ObservedJob& o : {Resolved(), Reporting("Running", 3), Reporting("Succeeded", 5)}) {
    const json first = ComputeStatus(o, json(), kT1);
    EXPECT_EQ(ComputeStatus(o, json(), kT1).dump(), first.dump());
    const json stored = json::parse(first.dump());
    const json again = ComputeStatus(o, stored, kT2);
    EXPECT_EQ(again.dump(), first.dump()) << first["phase"];
    EXPECT_EQ(again, stored);
  }
}

// A tenant that requires approval has not given it: the job waits, says for
// whom, and has no aggregator or worker conditions yet.
ObservedJob AwaitingAlpha() {
  ObservedJob o = Resolved();
  o.workers["alpha"].desired = 0;
  o.workers["beta"].desired = 0;
  o.consent = {{"alpha", Consent::kPending, "", ""}, {"beta", Consent::kNotRequired, "", ""}};
  o.admission = {false, "AwaitingApproval", "waiting for alpha to approve"};
  o.admitted = false;
  return o;
}

TEST(ComputeStatus, AwaitingApprovalNamesTheTenant) {
  const json s = ComputeStatus(AwaitingAlpha(), json(), kT1);
  EXPECT_EQ(s["phase"], "AwaitingApproval");
  EXPECT_EQ(s["reason"], "AwaitingApproval");
  EXPECT_THAT(s["message"].get<std::string>(), HasSubstr("alpha"));
  const json& admitted = Condition(s, "Admitted");
  EXPECT_EQ(admitted["status"], "False");
  EXPECT_EQ(admitted["reason"], "AwaitingApproval");
  EXPECT_EQ(TenantStatus(s, "alpha")["phase"], "AwaitingApproval");
  EXPECT_EQ(TenantStatus(s, "alpha")["consent"], "Pending");
  EXPECT_EQ(TenantStatus(s, "beta")["consent"], "NotRequired");
  for (const json& c : s["conditions"]) EXPECT_NE(c["type"], "AggregatorReady") << c.dump();
  EXPECT_FALSE(WasAdmitted(s));
  EXPECT_FALSE(s.contains("startTime"));
}

TEST(ComputeStatus, ApprovalAdmitsAndAdmissionIsKeptWhenConsentIsRevoked) {
  const json waiting = ComputeStatus(AwaitingAlpha(), json(), kT1);
  ObservedJob approved = Reporting("Running", 1);
  approved.consent = {{"alpha", Consent::kApproved, "tenant-a/ok", ""},
                      {"beta", Consent::kNotRequired, "", ""}};
  const json running = ComputeStatus(approved, waiting, kT2);
  EXPECT_EQ(running["phase"], "Running");
  EXPECT_EQ(Condition(running, "Admitted")["status"], "True");
  EXPECT_EQ(Condition(running, "Admitted")["lastTransitionTime"], kT2);
  EXPECT_TRUE(WasAdmitted(running));

  // alpha revokes: its workers stop, the job goes on with beta.
  ObservedJob revoked = Reporting("Running", 2);
  revoked.consent = {{"alpha", Consent::kRefused, "tenant-a/no", ""},
                     {"beta", Consent::kNotRequired, "", ""}};
  revoked.admission = {false, "TenantRefused", "refused by alpha"};
  revoked.admitted = WasAdmitted(running);
  revoked.workers["alpha"] = WorkerCounts{"tenant-a", 0, 0};
  const json after = ComputeStatus(revoked, running, kT3);
  EXPECT_EQ(after["phase"], "Running");
  EXPECT_EQ(Condition(after, "Admitted")["status"], "True");
  EXPECT_THAT(Condition(after, "Admitted")["message"].get<std::string>(),
              HasSubstr("workers stopped for alpha (Refused)"));
  EXPECT_EQ(TenantStatus(after, "alpha")["phase"], "Refused");
  EXPECT_EQ(TenantStatus(after, "alpha")["replicas"], 0);
}

}  // namespace
}  // namespace braid::control
