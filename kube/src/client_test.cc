#include "braid/kube/client.h"

#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "braid/kube/api_error.h"
#include "braid/kube/testing/fake_api_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::kube {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records requests; answers each from a queue of canned responses (or 200
// "{}" when empty); streams canned chunks.
class ScriptedTransport final : public HttpTransport {
 public:
  struct Shared {
    std::vector<HttpRequest> requests;
    std::deque<absl::StatusOr<HttpResponse>> responses;
    std::vector<std::string> chunks;  // for Stream()
    int stream_status = 200;
  };
  explicit ScriptedTransport(Shared* shared) : s_(shared) {}
  absl::StatusOr<HttpResponse> Do(const HttpRequest& request) override {
    s_->requests.push_back(request);
    if (s_->responses.empty()) return HttpResponse{200, "{}"};
    auto r = s_->responses.front();
    s_->responses.pop_front();
    return r;
  }
  absl::StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                      const std::function<bool(std::string_view)>& on_data,
                                      const CancelToken* cancel) override {
    s_->requests.push_back(request);
    if (s_->stream_status != 200) return HttpResponse{s_->stream_status, R"({"kind":"Status","message":"no","reason":"Forbidden","code":403})"};
    for (const std::string& c : s_->chunks) {
      if (!on_data(c)) break;
    }
    return HttpResponse{200, ""};
  }

 private:
  Shared* s_;
};

class ClientTest : public ::testing::Test {
 protected:
  ClientTest() : client_(NewClient(std::make_unique<ScriptedTransport>(&shared_))) {}
  const HttpRequest& last() const { return shared_.requests.back(); }
  ScriptedTransport::Shared shared_;
  std::unique_ptr<Client> client_;
};

const Json kWebDeployment = {
    {"apiVersion", "apps/v1"},
    {"kind", "Deployment"},
    {"metadata", {{"name", "web"}, {"namespace", "team-a"}}},
    {"spec", {{"replicas", 2}}},
};

TEST_F(ClientTest, ApplyIsServerSideApplyPatch) {
  ASSERT_TRUE(client_->Apply(kDeployment, kWebDeployment, "braid-operator").ok());
  EXPECT_EQ(last().method, "PATCH");
  EXPECT_EQ(last().path,
            "/apis/apps/v1/namespaces/team-a/deployments/web?fieldManager=braid-operator&force=true");
  EXPECT_EQ(last().content_type, "application/apply-patch+yaml");
  EXPECT_EQ(Json::parse(last().body), kWebDeployment);

  ASSERT_TRUE(client_->Apply(kDeployment, kWebDeployment, "mgr", /*force=*/false).ok());
  EXPECT_EQ(last().path, "/apis/apps/v1/namespaces/team-a/deployments/web?fieldManager=mgr");

  ASSERT_TRUE(client_->ApplyStatus(kDeployment, kWebDeployment, "braid-operator").ok());
  EXPECT_EQ(last().path,
            "/apis/apps/v1/namespaces/team-a/deployments/web/status?fieldManager=braid-operator&force=true");
}

TEST_F(ClientTest, ApplyRejectsIncompleteObjectsWithoutCallingTheServer) {
  Json no_kind = kWebDeployment;
  no_kind.erase("kind");
  EXPECT_EQ(client_->Apply(kDeployment, no_kind, "m").status().code(),
            absl::StatusCode::kInvalidArgument);
  Json no_ns = kWebDeployment;
  no_ns["metadata"].erase("namespace");
  absl::Status s = client_->Apply(kDeployment, no_ns, "m").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("metadata.namespace is required"));
  EXPECT_EQ(client_->Apply(kDeployment, kWebDeployment, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(shared_.requests.empty());
}

TEST_F(ClientTest, PathsForCoreGroupedAndClusterScopedKinds) {
  ASSERT_TRUE(client_->Get(kPod, "a", "p").ok());
  EXPECT_EQ(last().path, "/api/v1/namespaces/a/pods/p");
  ASSERT_TRUE(client_->Get(kTenant, "ignored", "st-mary").ok());
  EXPECT_EQ(last().path, "/apis/braid.dev/v1alpha1/tenants/st-mary");
  ASSERT_TRUE(client_->Get(kFederatedJob, "consortium", "notes-lora").ok());
  EXPECT_EQ(last().path, "/apis/braid.dev/v1alpha1/namespaces/consortium/federatedjobs/notes-lora");
  ASSERT_TRUE(client_->MergePatch(kLease, "kube-system", "braid", {{"spec", {}}}, "").ok());
  EXPECT_EQ(last().path, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/braid");
  EXPECT_EQ(last().content_type, "application/merge-patch+json");
  ASSERT_TRUE(client_->List(kNetworkPolicy, "", {}).ok());
  EXPECT_EQ(last().path, "/apis/networking.k8s.io/v1/networkpolicies?limit=500");
}

TEST_F(ClientTest, ListEscapesSelectors) {
  ListOptions options;
  options.label_selector = "app=braid,tier!=web";
  options.page_size = 0;
  ASSERT_TRUE(client_->List(kPod, "a", options).ok());
  EXPECT_EQ(last().path, "/api/v1/namespaces/a/pods?labelSelector=app%3Dbraid%2Ctier%21%3Dweb");
}

TEST_F(ClientTest, DeleteSendsPropagationPolicy) {
  ASSERT_TRUE(client_->Delete(kSecret, "a", "s").ok());
  EXPECT_EQ(last().method, "DELETE");
  EXPECT_EQ(last().path, "/api/v1/namespaces/a/secrets/s");
  EXPECT_EQ(Json::parse(last().body)["propagationPolicy"], "Background");
  ASSERT_TRUE(client_->Delete(kSecret, "a", "s", "Foreground").ok());
  EXPECT_EQ(Json::parse(last().body)["propagationPolicy"], "Foreground");
}

TEST_F(ClientTest, ErrorsCarryMethodPathAndServerMessage) {
  shared_.responses.push_back(HttpResponse{
      404, R"({"kind":"Status","reason":"NotFound","message":"pods \"p\" not found","code":404})"});
  absl::Status s = client_->Get(kPod, "a", "p").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(s.message()),
            "GET /api/v1/namespaces/a/pods/p: 404 Not Found: pods \"p\" not found");

  shared_.responses.push_back(absl::UnavailableError("connect: refused"));
  EXPECT_EQ(client_->Get(kPod, "a", "p").status().code(), absl::StatusCode::kUnavailable);

  shared_.responses.push_back(HttpResponse{200, "<html>"});
  s = client_->Get(kPod, "a", "p").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("not JSON"));
}

std::string Line(const std::string& type, const Json& obj) {
  return Json{{"type", type}, {"object", obj}}.dump() + "\n";
}

Json Cm(const std::string& name, const std::string& rv, const std::string& data = "x") {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", "a"}, {"resourceVersion", rv}}},
          {"data", {{"k", data + " with } and { and \" quotes"}}}};
}

TEST_F(ClientTest, WatchReassemblesEventsSplitAnywhere) {
  const std::string stream = Line("ADDED", Cm("one", "5")) + Line("MODIFIED", Cm("one", "6")) +
                             Line("BOOKMARK", {{"kind", "ConfigMap"},
                                               {"metadata", {{"resourceVersion", "9"}}}}) +
                             Line("DELETED", Cm("one", "10"));
  for (size_t size : {size_t{1}, size_t{2}, size_t{7}, size_t{64}, stream.size()}) {
    shared_.chunks.clear();
    for (size_t i = 0; i < stream.size(); i += size) shared_.chunks.push_back(stream.substr(i, size));
    std::vector<std::string> seen;
    WatchOptions options;
    options.resource_version = "4";
    options.timeout_seconds = 60;
    absl::Status s = client_->Watch(kConfigMap, "a", options, [&](const WatchEvent& e) {
      seen.push_back(absl::StrCat(e.type, "@", e.object["metadata"]["resourceVersion"].get<std::string>()));
      return true;
    }, nullptr);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_THAT(seen, ElementsAre("ADDED@5", "MODIFIED@6", "BOOKMARK@9", "DELETED@10")) << size;
  }
  EXPECT_EQ(last().path,
            "/api/v1/namespaces/a/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=4&"
            "timeoutSeconds=60");
}

TEST_F(ClientTest, WatchStopsWhenTheCallbackSaysSo) {
  shared_.chunks = {Line("ADDED", Cm("one", "5")) + Line("ADDED", Cm("two", "6"))};
  int n = 0;
  ASSERT_TRUE(client_->Watch(kConfigMap, "a", {}, [&](const WatchEvent&) { return ++n < 1; }, nullptr).ok());
  EXPECT_EQ(n, 1);
}

TEST_F(ClientTest, WatchErrorEventWith410IsGone) {
  shared_.chunks = {Line("ADDED", Cm("one", "5")),
                    Line("ERROR", {{"kind", "Status"}, {"code", 410}, {"reason", "Expired"},
                                   {"message", "too old resource version: 1 (20)"}})};
  int n = 0;
  absl::Status s = client_->Watch(kConfigMap, "a", {}, [&](const WatchEvent&) { return ++n > 0; }, nullptr);
  EXPECT_TRUE(IsGone(s)) << s;
  EXPECT_EQ(n, 1);
  EXPECT_THAT(std::string(s.message()), HasSubstr("too old resource version: 1 (20)"));

  shared_.chunks = {Line("ERROR", {{"kind", "Status"}, {"code", 500}, {"message", "etcd down"}})};
  s = client_->Watch(kConfigMap, "a", {}, [](const WatchEvent&) { return true; }, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(IsGone(s));
}

TEST_F(ClientTest, WatchReportsBrokenStreams) {
  shared_.chunks = {Line("ADDED", Cm("one", "5")), R"({"type":"ADDED","object":{"meta)"};
  absl::Status s = client_->Watch(kConfigMap, "a", {}, [](const WatchEvent&) { return true; }, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("mid-event"));

  shared_.chunks = {"not json\n"};
  s = client_->Watch(kConfigMap, "a", {}, [](const WatchEvent&) { return true; }, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;

  shared_.chunks = {R"({"kind":"no type"})"};
  s = client_->Watch(kConfigMap, "a", {}, [](const WatchEvent&) { return true; }, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;

  shared_.stream_status = 403;
  s = client_->Watch(kConfigMap, "a", {}, [](const WatchEvent&) { return true; }, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
}

// Against the in-memory API server: the semantics callers rely on.
class ClientOnFakeServerTest : public ::testing::Test {
 protected:
  ClientOnFakeServerTest() : client_(NewClient(server_.NewTransport())) {}
  FakeApiServer server_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientOnFakeServerTest, CreateTwiceIsAlreadyExistsAndStaleUpdateIsAborted) {
  absl::StatusOr<Json> created = client_->Create(kConfigMap, Cm("c", ""));
  ASSERT_TRUE(created.ok()) << created.status();
  absl::Status again = client_->Create(kConfigMap, Cm("c", "")).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists) << again;

  Json first = *created;
  first["data"]["k"] = "v1";
  absl::StatusOr<Json> updated = client_->Update(kConfigMap, first);
  ASSERT_TRUE(updated.ok()) << updated.status();
  Json stale = *created;  // still the old resourceVersion
  stale["data"]["k"] = "v2";
  absl::Status conflict = client_->Update(kConfigMap, stale).status();
  EXPECT_EQ(conflict.code(), absl::StatusCode::kAborted) << conflict;
  EXPECT_EQ(ApiReasonOf(conflict), "Conflict");
  EXPECT_EQ(client_->Get(kConfigMap, "a", "c")->at("data").at("k"), "v1");
}

TEST_F(ClientOnFakeServerTest, ApplyCreatesThenUpdatesAndDeleteReportsNotFound) {
  ASSERT_TRUE(client_->Apply(kConfigMap, Cm("c", "", "one"), "braid").ok());
  absl::StatusOr<Json> again = client_->Apply(kConfigMap, Cm("c", "", "two"), "braid");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT((*again)["data"]["k"].get<std::string>(), HasSubstr("two"));
  EXPECT_TRUE(client_->Delete(kConfigMap, "a", "c").ok());
  EXPECT_EQ(client_->Delete(kConfigMap, "a", "c").code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientOnFakeServerTest, ListFollowsContinueTokens) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client_->Create(kConfigMap, Cm(absl::StrCat("c", i), "")).ok());
  ASSERT_TRUE(client_->Create(kConfigMap, [] { Json o = Cm("other", ""); o["metadata"]["namespace"] = "b"; return o; }()).ok());
  server_.clear_requests();
  ListOptions options;
  options.page_size = 2;
  absl::StatusOr<Json> list = client_->List(kConfigMap, "a", options);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)["items"].size(), 5u);
  EXPECT_EQ((*list)["metadata"]["resourceVersion"], std::to_string(server_.resource_version()));
  EXPECT_FALSE((*list)["metadata"].contains("continue"));
  EXPECT_EQ(server_.requests().size(), 3u);

  // All namespaces.
  EXPECT_EQ(client_->List(kConfigMap, "", {})->at("items").size(), 6u);

  // An expired continue token: one unpaged retry.
  server_.clear_requests();
  server_.FailNext("GET", "continue=", 410);
  list = client_->List(kConfigMap, "a", options);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)["items"].size(), 5u);
  const std::vector<HttpRequest> requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests.back().path, "/api/v1/namespaces/a/configmaps");
}

TEST_F(ClientOnFakeServerTest, WatchFromOldVersionIsGone) {
  ASSERT_TRUE(client_->Create(kConfigMap, Cm("c", "")).ok());
  const std::string old = std::to_string(server_.resource_version() - 1);
  server_.Compact();
  WatchOptions options;
  options.resource_version = old;
  absl::Status s = client_->Watch(kConfigMap, "a", options, [](const WatchEvent&) { return true; }, nullptr);
  EXPECT_TRUE(IsGone(s)) << s;
}

TEST_F(ClientOnFakeServerTest, WatchReturnsWhenCancelled) {
  CancelToken cancel;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(100));
    cancel.Cancel();
  });
  absl::Status s = client_->Watch(kConfigMap, "a", {}, [](const WatchEvent&) { return true; }, &cancel);
  canceller.join();
  EXPECT_TRUE(s.ok()) << s;
}

}  // namespace
}  // namespace braid::kube
