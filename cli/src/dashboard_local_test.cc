#include "braid/cli/dashboard_local.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/time/clock.h"
#include "braid/core/audit_log.h"
#include "braid/cli/local_consent.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kJob[] = R"(apiVersion: braid.dev/v1alpha1
kind: FederatedJob
metadata: {name: demo, namespace: lab}
spec:
  model: {kind: mlp}
  data: {features: [x0, x1]}
  strategy: {rounds: 3, minClients: 2}
  tenants:
  - {name: alpha, replicas: 2, data: {path: a.csv}}
  - {name: beta, namespace: beta-ns, data: {path: b.csv}}
)";

spec::JobSpec Job() {
  spec::ParseOptions options;
  options.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(kJob, "", options);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : spec::JobSpec();
}

json Round(int n) {
  return json{{"round", n},           {"participants", 3},   {"sampled", 3},
              {"tenants", {"alpha", "beta"}}, {"train_loss", 1.0 / n}, {"eval_loss", 2.0 / n},
              {"eval_accuracy", 0.5}, {"seconds", 0.1},      {"bytes_up", 10},
              {"bytes_down", 20}};
}

// What the local runtime's on_status passes: the job's status (as
// control::ComputeStatus writes it) and the rounds so far.
json Status(const std::string& phase, int rounds) {
  json r = json::array();
  for (int i = 1; i <= rounds; ++i) r.push_back(Round(i));
  json status{{"phase", phase}, {"reason", ""}, {"message", ""}, {"round", rounds}};
  if (rounds > 0) {
    status["metrics"] = {{"trainLoss", r.back()["train_loss"]},
                         {"evalLoss", r.back()["eval_loss"]},
                         {"evalAccuracy", r.back()["eval_accuracy"]}};
  }
  return json{{"status", status}, {"rounds", r}};
}

TEST(LocalDashboardSource, ListsTheJobAndFollowsItsRounds) {
  dashboard::EventFeed feed;
  LocalDashboardSource source(Job(), "/nonexistent/audit.jsonl", &feed);
  json row = source.Jobs()["jobs"][0];
  EXPECT_EQ(row["namespace"], "lab");
  EXPECT_EQ(row["name"], "demo");
  EXPECT_EQ(row["phase"], "Pending");
  EXPECT_EQ(row["round"], 0);
  EXPECT_EQ(row["total_rounds"], 3);
  EXPECT_TRUE(row["train_loss"].is_null());

  source.Update(Status("Running", 2));
  row = source.Jobs()["jobs"][0];
  EXPECT_EQ(row["round"], 2);
  EXPECT_DOUBLE_EQ(row["train_loss"].get<double>(), 0.5);
  absl::StatusOr<json> job = source.Job("lab", "demo");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["rounds"].size(), 2u);
  EXPECT_EQ((*job)["spec"]["strategy"]["rounds"], 3);
  EXPECT_EQ((*job)["spec"]["tenants"][0]["replicas"], 2);

  // One event for the phase change (with the round), none for a repeat.
  std::vector<dashboard::DashboardEvent> events = feed.After(0, absl::ZeroDuration());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data["type"], "phase");
  EXPECT_EQ(events[0].data["round"], 2);
  source.Update(Status("Running", 2));
  EXPECT_EQ(feed.last_id(), 1);
  source.Update(Status("Running", 3));
  events = feed.After(1, absl::ZeroDuration());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data["type"], "round");
  EXPECT_EQ(events[0].data["round"], 3);
}

// The row comes from the same status the operator writes, so a job with
// differential privacy shows its budget beside the epsilon spent.
TEST(LocalDashboardSource, ShowsThePrivacySpentAndTheBudget) {
  dashboard::EventFeed feed;
  LocalDashboardSource source(Job(), "/nonexistent/audit.jsonl", &feed);
  json update = Status("Running", 2);
  update["status"]["privacy"] = {{"epsilon", 2.5}, {"delta", 1e-5}, {"maxEpsilon", 8.0}};
  source.Update(update);
  const json row = source.Jobs()["jobs"][0];
  EXPECT_DOUBLE_EQ(row["epsilon"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(row["max_epsilon"].get<double>(), 8.0);
}

TEST(LocalDashboardSource, OtherJobsAreNotFound) {
  dashboard::EventFeed feed;
  LocalDashboardSource source(Job(), "/nonexistent/audit.jsonl", &feed);
  EXPECT_EQ(source.Job("lab", "other").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(source.Job("default", "demo").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(source.Audit("lab", "other").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(source.Audit("lab", "demo").status().code(), absl::StatusCode::kNotFound);  // no log yet
}

TEST(LocalDashboardSource, TenantsNeedNoApprovalLocally) {
  dashboard::EventFeed feed;
  LocalDashboardSource source(Job(), "", &feed);
  const json t = source.Tenants()["tenants"];
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0]["name"], "alpha");
  EXPECT_EQ(t[0]["namespace"], "lab");
  EXPECT_EQ(t[1]["namespace"], "beta-ns");
  EXPECT_EQ(t[0]["approval"], "not required");
  EXPECT_EQ(t[0]["jobs"], json({"lab/demo"}));
}

TEST(LocalDashboardSource, AuditShowsEntriesAndTheVerification) {
  const fs::path dir = fs::temp_directory_path() / ("braid-dash-audit-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "audit.jsonl").string();
  {
    auto log = audit::AuditLog::Open(path);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(audit::kJobStarted, "aggregator", "lab/demo", json::object()).ok());
    ASSERT_TRUE((*log)->Append(audit::kRoundCompleted, "aggregator", "lab/demo", json{{"round", 1}}).ok());
  }
  dashboard::EventFeed feed;
  LocalDashboardSource source(Job(), path, &feed);
  absl::StatusOr<json> a = source.Audit("lab", "demo");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)["entries"].size(), 2u);
  EXPECT_EQ((*a)["verification"]["ok"], true);
  EXPECT_EQ((*a)["entries"][1]["details"]["round"], 1);

  std::ofstream(path, std::ios::app) << "garbage\n";
  a = source.Audit("lab", "demo");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)["verification"]["ok"], false);
  EXPECT_EQ((*a)["verification"]["line"], 3);
  EXPECT_EQ((*a)["verification"]["text"], "audit.jsonl:3: not a JSON object (garbage in the log)");
  fs::remove_all(dir);
}

TEST(LocalDashboardSource, ShowsConsentAndRecordsDecisions) {
  const fs::path dir =
      fs::temp_directory_path() / ("braid-dash-consent-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::map<std::string, json> tenants = {
      {"alpha", json{{"kind", "Tenant"},
                     {"metadata", {{"name", "alpha"}}},
                     {"spec", {{"namespace", "tenant-alpha"},
                               {"policy", {{"requireApproval", true}, {"maxRounds", 5}}}}}}}};
  ASSERT_TRUE(WriteConsentFile(dir.string(), control::JobRef{"lab", "demo", "uid-1"}, tenants).ok());
  dashboard::EventFeed feed;
  LocalDashboardSource source(Job(), (dir / "audit.jsonl").string(), &feed,
                              LocalTenancy{dir.string(), tenants, "uid-1"});
  json t = source.Tenants()["tenants"];
  EXPECT_EQ(t[0]["approval"], "lab/demo: Pending");
  EXPECT_EQ(t[0]["namespace"], "tenant-alpha");
  EXPECT_EQ(t[0]["policy"]["maxRounds"], 5);
  EXPECT_EQ(t[1]["approval"], "not required");
  json job = *source.Job("lab", "demo");
  EXPECT_EQ(job["consent"][0]["consent"], "Pending");
  EXPECT_EQ(job["consent"][1]["consent"], "NotRequired");

  EXPECT_EQ(source.Decide("lab", "other", "alpha", true, "", "me").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(source.Decide("lab", "demo", "gamma", true, "", "me").status().code(),
            absl::StatusCode::kNotFound);
  const int64_t before = feed.last_id();
  ASSERT_TRUE(source.Decide("lab", "demo", "alpha", true, "fine", "dashboard").ok());
  EXPECT_EQ(source.Job("lab", "demo")->at("consent")[0]["consent"], "Approved");
  EXPECT_EQ(source.Tenants()["tenants"][0]["approval"], "lab/demo: Approved");
  std::vector<dashboard::DashboardEvent> events = feed.After(before, absl::Seconds(1));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data["type"], "consent");
  fs::remove_all(dir);
}

TEST(LocalDashboardSource, WithoutTenantsNoDecisionCanBeRecorded) {
  dashboard::EventFeed feed;
  LocalDashboardSource source(Job(), "", &feed);
  EXPECT_EQ(source.Decide("lab", "demo", "alpha", true, "", "me").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace braid::cli
