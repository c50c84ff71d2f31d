#include "braid/kube/events.h"

#include "braid/kube/testing/fake_api_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::kube {
namespace {

const Json kJob = {{"apiVersion", "braid.dev/v1alpha1"},
                   {"kind", "FederatedJob"},
                   {"metadata",
                    {{"name", "notes-lora"},
                     {"namespace", "consortium"},
                     {"uid", "1234-abcd"},
                     {"resourceVersion", "77"}}}};

TEST(EventsTest, MakeEventFillsWhatKubectlDescribeShows) {
  const absl::Time now = absl::FromUnixSeconds(1704067200) + absl::Nanoseconds(255);
  const Json e = MakeEvent(kJob, EventType::kWarning, "RoundTimedOut", "round 3: 1 of 3 tenants",
                           "braid-operator", now, "pod-0");
  EXPECT_EQ(e["metadata"]["namespace"], "consortium");
  EXPECT_EQ(e["metadata"]["name"], "notes-lora.17a61017016500ff");
  EXPECT_EQ(e["involvedObject"],
            (Json{{"apiVersion", "braid.dev/v1alpha1"}, {"kind", "FederatedJob"},
                  {"name", "notes-lora"}, {"namespace", "consortium"}, {"uid", "1234-abcd"},
                  {"resourceVersion", "77"}}));
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["reason"], "RoundTimedOut");
  EXPECT_EQ(e["message"], "round 3: 1 of 3 tenants");
  EXPECT_EQ(e["firstTimestamp"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(e["lastTimestamp"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(e["count"], 1);
  EXPECT_EQ(e["source"]["component"], "braid-operator");
  EXPECT_EQ(e["reportingComponent"], "braid-operator");
  EXPECT_EQ(e["reportingInstance"], "pod-0");
}

TEST(EventsTest, ClusterScopedObjectsGetEventsInDefault) {
  const Json tenant = {{"apiVersion", "braid.dev/v1alpha1"}, {"kind", "Tenant"},
                       {"metadata", {{"name", "st-mary"}, {"uid", "u"}}}};
  const Json e = MakeEvent(tenant, EventType::kNormal, "Approved", "ok", "braid", absl::Now());
  EXPECT_EQ(e["metadata"]["namespace"], "default");
  EXPECT_FALSE(e["involvedObject"].contains("namespace"));
  EXPECT_EQ(e["type"], "Normal");
}

class RecorderTest : public ::testing::Test {
 protected:
  RecorderTest() : client_(NewClient(server_.NewTransport())) {}
  Json Events() { return client_->List(kEvent, "consortium", {}).value()["items"]; }
  FakeApiServer server_;
  FakeClock clock_;
  std::unique_ptr<Client> client_;
};

TEST_F(RecorderTest, RecordEventCreatesOne) {
  ASSERT_TRUE(RecordEvent(*client_, kJob, EventType::kNormal, "Started", "round 1", "braid",
                          &clock_).ok());
  const Json events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["reason"], "Started");
  EXPECT_EQ(RecordEvent(*client_, Json::object(), EventType::kNormal, "R", "m", "braid").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RecorderTest, RepeatsBumpTheCount) {
  EventRecorder recorder(client_.get(), "braid-operator", "", &clock_, absl::Minutes(10));
  ASSERT_TRUE(recorder.Record(kJob, EventType::kWarning, "Stuck", "waiting").ok());
  clock_.Advance(absl::Seconds(30));
  ASSERT_TRUE(recorder.Record(kJob, EventType::kWarning, "Stuck", "waiting").ok());
  ASSERT_TRUE(recorder.Record(kJob, EventType::kWarning, "Stuck", "waiting").ok());
  ASSERT_TRUE(recorder.Record(kJob, EventType::kWarning, "Stuck", "other message").ok());
  Json events = Events();
  ASSERT_EQ(events.size(), 2u);
  Json stuck = events[0]["message"] == "waiting" ? events[0] : events[1];
  EXPECT_EQ(stuck["count"], 3);
  EXPECT_EQ(stuck["firstTimestamp"], "2024-01-01T00:00:00Z");
  EXPECT_EQ(stuck["lastTimestamp"], "2024-01-01T00:00:30Z");

  // Past the window: a fresh Event.
  clock_.Advance(absl::Minutes(11));
  ASSERT_TRUE(recorder.Record(kJob, EventType::kWarning, "Stuck", "waiting").ok());
  EXPECT_EQ(Events().size(), 3u);

  // The Event was deleted (TTL): recreated rather than failing.
  ASSERT_TRUE(client_->Delete(kEvent, "consortium",
                              Events()[2]["metadata"]["name"].get<std::string>()).ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(recorder.Record(kJob, EventType::kWarning, "Stuck", "waiting").ok());
  EXPECT_EQ(Events().size(), 3u);
}

}  // namespace
}  // namespace braid::kube
