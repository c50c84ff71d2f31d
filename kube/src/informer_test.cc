#include "braid/kube/informer.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "braid/kube/testing/fake_api_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::kube {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// Waits (real time, up to 10 s) for `pred`.
template <typename Pred>
bool Eventually(Pred pred) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return pred();
}

Json Cm(const std::string& ns, const std::string& name, const std::string& value = "v") {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", "braid"}}}}},
          {"data", {{"k", value}}}};
}

// Records handler calls as "upsert a/x=v", "delete a/x", "synced".
class Recorder {
 public:
  InformerHandlers Handlers() {
    InformerHandlers h;
    h.on_upsert = [this](const Json& o) {
      Add(absl::StrCat("upsert ", ObjectKey(o), "=", o["data"]["k"].get<std::string>()));
    };
    h.on_delete = [this](const Json& o) { Add(absl::StrCat("delete ", ObjectKey(o))); };
    h.on_synced = [this] { Add("synced"); };
    h.on_error = [this](const absl::Status& s) { Add(absl::StrCat("error ", s.code())); };
    return h;
  }
  std::vector<std::string> Take() {
    absl::MutexLock lock(&mu_);
    return std::exchange(calls_, {});
  }
  bool Has(const std::string& call) {
    absl::MutexLock lock(&mu_);
    return std::find(calls_.begin(), calls_.end(), call) != calls_.end();
  }

 private:
  void Add(std::string s) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(s));
  }
  absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
};

class InformerTest : public ::testing::Test {
 protected:
  InformerTest() : client_(NewClient(server_.NewTransport())) {}

  std::unique_ptr<Informer> Make(const std::string& ns = "a") {
    InformerOptions options;
    options.ref = kConfigMap;
    options.ns = ns;
    options.label_selector = "app=braid";
    return std::make_unique<Informer>(client_.get(), options, recorder_.Handlers(), &clock_);
  }

  FakeApiServer server_;
  FakeClock clock_;
  std::unique_ptr<Client> client_;
  Recorder recorder_;
};

TEST_F(InformerTest, ListsThenFollowsChanges) {
  server_.Upsert(kConfigMap, Cm("a", "x"));
  server_.Upsert(kConfigMap, Cm("a", "y"));
  server_.Upsert(kConfigMap, Cm("b", "elsewhere"));
  Json unlabeled = Cm("a", "unlabeled");
  unlabeled["metadata"].erase("labels");
  server_.Upsert(kConfigMap, unlabeled);

  auto informer = Make();
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return informer->HasSynced(); }));
  EXPECT_THAT(recorder_.Take(), ElementsAre("upsert a/x=v", "upsert a/y=v", "synced"));
  ASSERT_TRUE(Eventually([&] { return server_.open_watches() == 1; }));

  server_.Upsert(kConfigMap, Cm("a", "x", "v2"));
  server_.Upsert(kConfigMap, Cm("a", "z"));
  ASSERT_TRUE(client_->Delete(kConfigMap, "a", "y").ok());
  ASSERT_TRUE(Eventually([&] { return !informer->Get("a", "y").has_value(); }));
  EXPECT_THAT(recorder_.Take(), ElementsAre("upsert a/x=v2", "upsert a/z=v", "delete a/y"));

  std::vector<std::string> keys;
  for (const Json& o : informer->Snapshot()) keys.push_back(ObjectKey(o));
  EXPECT_THAT(keys, ElementsAre("a/x", "a/z"));
  // List items gain apiVersion/kind, like watch objects.
  EXPECT_EQ((*informer->Get("a", "x"))["kind"], "ConfigMap");
  EXPECT_EQ(informer->LastResourceVersion(), std::to_string(server_.resource_version()));
  EXPECT_EQ(informer->relists(), 0);
  EXPECT_EQ(informer->errors(), 0);
}

TEST_F(InformerTest, BookmarksAdvanceTheResourceVersionSilently) {
  auto informer = Make();
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return server_.open_watches() == 1; }));
  recorder_.Take();
  // Changes elsewhere move the server's version; a bookmark tells us.
  server_.Upsert(kConfigMap, Cm("b", "other"));
  server_.Upsert(kConfigMap, Cm("b", "other2"));
  const std::string want = std::to_string(server_.resource_version());
  EXPECT_NE(informer->LastResourceVersion(), want);
  server_.SendBookmark();
  ASSERT_TRUE(Eventually([&] { return informer->LastResourceVersion() == want; }));
  EXPECT_THAT(recorder_.Take(), ElementsAre());
  // The next watch resumes from the bookmark.
  server_.clear_requests();
  server_.EndWatches();
  ASSERT_TRUE(Eventually([&] { return informer->watch_restarts() == 1 && server_.open_watches() == 1; }));
  bool resumed = false;
  for (const HttpRequest& r : server_.requests()) {
    resumed |= r.path.find(absl::StrCat("resourceVersion=", want)) != std::string::npos;
  }
  EXPECT_TRUE(resumed);
  EXPECT_EQ(informer->relists(), 0);
}

TEST_F(InformerTest, GoneRelistsWithSyntheticDeletes) {
  server_.Upsert(kConfigMap, Cm("a", "keep"));
  server_.Upsert(kConfigMap, Cm("a", "vanish"));
  auto informer = Make();
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return server_.open_watches() == 1; }));
  recorder_.Take();

  // The informer is cut off (watches refused) while objects change and
  // history is compacted.
  server_.FailNext("GET", "watch=1", 503, 1 << 30);
  server_.CutWatches();
  ASSERT_TRUE(Eventually([&] { return informer->errors() >= 2; }));
  ASSERT_TRUE(client_->Delete(kConfigMap, "a", "vanish").ok());
  server_.Upsert(kConfigMap, Cm("a", "keep", "changed"));
  server_.Upsert(kConfigMap, Cm("a", "new"));
  server_.Compact();
  server_.ClearFailures();

  ASSERT_TRUE(Eventually([&] { return informer->relists() == 1 && server_.open_watches() == 1; }));
  std::vector<std::string> calls;
  for (const std::string& c : recorder_.Take()) {
    if (c.rfind("error", 0) != 0) calls.push_back(c);
  }
  EXPECT_THAT(calls, ElementsAre("delete a/vanish", "upsert a/keep=changed", "upsert a/new=v", "synced"));
  EXPECT_FALSE(informer->Get("a", "vanish").has_value());
  // Watching again from the fresh list: new changes still arrive.
  server_.Upsert(kConfigMap, Cm("a", "later"));
  ASSERT_TRUE(Eventually([&] { return informer->Get("a", "later").has_value(); }));
}

TEST_F(InformerTest, BacksOffOnErrorsAndResetsAfterAHealthyWatch) {
  server_.FailNext("GET", "limit=", 503, 4);  // lists
  auto informer = Make();
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return server_.open_watches() == 1; }));
  EXPECT_EQ(informer->errors(), 4);
  std::vector<absl::Duration> sleeps = clock_.sleeps();
  ASSERT_EQ(sleeps.size(), 4u);
  absl::Duration step = absl::Milliseconds(200);
  for (absl::Duration d : sleeps) {
    EXPECT_LE(d, step);
    EXPECT_GE(d, step * 0.8);
    step *= 2;
  }
  // A healthy watch (it delivered an event) resets the back-off.
  server_.Upsert(kConfigMap, Cm("a", "x"));
  ASSERT_TRUE(Eventually([&] { return informer->Get("a", "x").has_value(); }));
  server_.FailNext("GET", "watch=1", 500, 1);
  server_.CutWatches();
  ASSERT_TRUE(Eventually([&] { return informer->errors() == 6 && server_.open_watches() == 1; }));
  sleeps = clock_.sleeps();
  ASSERT_EQ(sleeps.size(), 6u);
  EXPECT_LE(sleeps[4], absl::Milliseconds(200));  // cut stream, after reset
  EXPECT_LE(sleeps[5], absl::Milliseconds(400));  // 500 on re-watch
  EXPECT_GE(sleeps[5], absl::Milliseconds(320));
  EXPECT_EQ(informer->relists(), 0);  // re-watched from the last version
}

TEST_F(InformerTest, CappedBackoff) {
  server_.FailNext("GET", "limit=", 503, 12);
  InformerOptions options;
  options.ref = kConfigMap;
  options.ns = "a";
  options.backoff.max = absl::Seconds(1);
  Informer informer(client_.get(), options, {}, &clock_);
  informer.Start();
  ASSERT_TRUE(Eventually([&] { return informer.HasSynced(); }));
  for (absl::Duration d : clock_.sleeps()) EXPECT_LE(d, absl::Seconds(1));
  EXPECT_GE(clock_.sleeps().back(), absl::Milliseconds(800));
}

TEST_F(InformerTest, StopCancelsAnOpenWatchPromptly) {
  auto informer = Make();
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return server_.open_watches() == 1; }));
  const absl::Time start = absl::Now();
  informer->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(server_.open_watches(), 0);
  informer->Stop();  // idempotent
}

TEST_F(InformerTest, CleanWatchEndResumesWithoutRelist) {
  auto informer = Make();
  informer->Start();
  ASSERT_TRUE(Eventually([&] { return server_.open_watches() == 1; }));
  for (int i = 0; i < 3; ++i) {
    server_.Upsert(kConfigMap, Cm("a", absl::StrCat("o", i)));
    server_.EndWatches();
    ASSERT_TRUE(Eventually([&] { return informer->watch_restarts() == i + 1 && server_.open_watches() == 1; }));
  }
  ASSERT_TRUE(Eventually([&] { return informer->Snapshot().size() == 3; }));
  EXPECT_EQ(informer->relists(), 0);
  EXPECT_EQ(informer->errors(), 0);
}

}  // namespace
}  // namespace braid::kube
