// braid_kube (kube/) against a real kube-apiserver: TLS with the
// client certificate from the kubeconfig, bearer tokens, server-side apply,
// the status subresource, watches with bookmarks, 410 Gone, informers and
// leader election.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "braid/kube/api_error.h"
#include "braid/kube/client.h"
#include "braid/kube/config.h"
#include "braid/kube/informer.h"
#include "braid/kube/leader_election.h"
#include "tests/k8s/k8s_harness.h"

namespace braid::k8s {
namespace {

using kube::Json;

const kube::ResourceRef kNamespace{"v1", "Namespace", "namespaces", false};
const kube::ResourceRef kCrd{"apiextensions.k8s.io/v1", "CustomResourceDefinition",
                             "customresourcedefinitions", false};
const kube::ResourceRef kWidget{"kubetest.braid.dev/v1", "Widget", "widgets", true};

bool Eventually(absl::Duration timeout, const std::function<bool()>& pred) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return pred();
}

Json ConfigMap(const std::string& ns, const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"suite", "kube"}}}}},
          {"data", {{"k", value}}}};
}

class KubeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<kube::Config> config = kube::LoadKubeconfig(Kubeconfig());
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    absl::StatusOr<std::unique_ptr<kube::Client>> client = kube::NewClientForConfig(config_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    static int n = 0;
    ns_ = absl::StrCat("kube-client-", ::getpid(), "-", n++);
    absl::StatusOr<Json> created = client_->Create(
        kNamespace, {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns_}}}});
    ASSERT_TRUE(created.ok()) << created.status();
  }
  void TearDown() override {
    if (client_ != nullptr) (void)client_->Delete(kNamespace, "", ns_);
  }

  // A namespaced custom resource with a status subresource. Its watch cache
  // starts when the CRD is established, long after resourceVersion 1, so a
  // watch from "1" is answered with 410 Gone.
  void EnsureWidgetCrd() {
    const Json crd = Json::parse(R"({
      "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
      "metadata": {"name": "widgets.kubetest.braid.dev"},
      "spec": {"group": "kubetest.braid.dev", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [{"name": "v1", "served": true, "storage": true,
          "subresources": {"status": {}},
          "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}})");
    absl::StatusOr<Json> applied = client_->Apply(kCrd, crd, "braid-test");
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_TRUE(Eventually(absl::Seconds(30), [&] {
      absl::StatusOr<Json> got = client_->Get(kCrd, "", "widgets.kubetest.braid.dev");
      if (!got.ok() || !got->contains("status")) return false;
      for (const Json& c : (*got)["status"].value("conditions", Json::array())) {
        if (c["type"] == "Established" && c["status"] == "True") return true;
      }
      return false;
    })) << "CRD widgets.kubetest.braid.dev not established";
    // A freshly established CRD may take a moment to be served.
    ASSERT_TRUE(Eventually(absl::Seconds(30), [&] { return client_->List(kWidget, ns_).ok(); }));
  }

  Json Widget(const std::string& name) const {
    return {{"apiVersion", "kubetest.braid.dev/v1"},
            {"kind", "Widget"},
            {"metadata", {{"name", name}, {"namespace", ns_}}},
            {"spec", {{"size", 3}}}};
  }

  kube::Config config_;
  std::unique_ptr<kube::Client> client_;
  std::string ns_;
};

TEST_F(KubeClientTest, ServerSideApplyCreatesIsIdempotentAndReportsConflicts) {
  absl::StatusOr<Json> first = client_->Apply(kube::kConfigMap, ConfigMap(ns_, "cfg", "one"), "braid-test");
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string rv = (*first)["metadata"]["resourceVersion"];
  absl::StatusOr<Json> again = client_->Apply(kube::kConfigMap, ConfigMap(ns_, "cfg", "one"), "braid-test");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)["metadata"]["resourceVersion"], rv) << "a no-op apply must not write";

  // Another manager changing our field without force: a conflict naming it.
  absl::Status conflict =
      client_->Apply(kube::kConfigMap, ConfigMap(ns_, "cfg", "two"), "someone-else", /*force=*/false)
          .status();
  EXPECT_EQ(conflict.code(), absl::StatusCode::kAborted) << conflict;
  EXPECT_TRUE(absl::StrContains(conflict.message(), "braid-test")) << conflict;
  absl::StatusOr<Json> forced =
      client_->Apply(kube::kConfigMap, ConfigMap(ns_, "cfg", "two"), "someone-else", /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ((*forced)["data"]["k"], "two");

  // Create of an existing name, stale update, delete twice.
  EXPECT_EQ(client_->Create(kube::kConfigMap, ConfigMap(ns_, "cfg", "x")).status().code(),
            absl::StatusCode::kAlreadyExists);
  Json stale = *first;
  stale["data"]["k"] = "stale";
  EXPECT_EQ(client_->Update(kube::kConfigMap, stale).status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(client_->Delete(kube::kConfigMap, ns_, "cfg").ok());
  EXPECT_EQ(client_->Delete(kube::kConfigMap, ns_, "cfg").code(), absl::StatusCode::kNotFound);
}

TEST_F(KubeClientTest, InvalidObjectsCarryTheServersFieldMessage) {
  absl::Status s = client_->Create(kube::kConfigMap, ConfigMap(ns_, "Bad_Name", "x")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "metadata.name: Invalid value: \"Bad_Name\"")) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "POST /api/v1/namespaces/")) << s;
}

TEST_F(KubeClientTest, StatusSubresourceOfACustomResource) {
  ASSERT_NO_FATAL_FAILURE(EnsureWidgetCrd());
  Json widget = Widget("w");
  widget["status"] = {{"phase", "Ignored"}};
  absl::StatusOr<Json> applied = client_->Apply(kWidget, widget, "braid-test");
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_FALSE(applied->contains("status")) << "status is not written through the main resource";

  Json status = {{"apiVersion", "kubetest.braid.dev/v1"},
                 {"kind", "Widget"},
                 {"metadata", {{"name", "w"}, {"namespace", ns_}}},
                 {"status", {{"phase", "Running"}, {"round", 2}}}};
  absl::StatusOr<Json> with_status = client_->ApplyStatus(kWidget, status, "braid-test");
  ASSERT_TRUE(with_status.ok()) << with_status.status();
  EXPECT_EQ((*with_status)["status"]["phase"], "Running");
  EXPECT_EQ((*with_status)["spec"]["size"], 3);
  absl::StatusOr<Json> patched =
      client_->MergePatch(kWidget, ns_, "w", {{"status", {{"round", 3}}}}, "status");
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ((*patched)["status"]["round"], 3);
  EXPECT_EQ((*patched)["status"]["phase"], "Running");
  EXPECT_EQ((*patched)["metadata"]["generation"], 1) << "status writes don't bump generation";
}

TEST_F(KubeClientTest, WatchDeliversEventsAndBookmarks) {
  absl::StatusOr<Json> list = client_->List(kube::kConfigMap, ns_);
  ASSERT_TRUE(list.ok()) << list.status();
  kube::WatchOptions options;
  options.resource_version = (*list)["metadata"]["resourceVersion"];
  options.label_selector = "suite=kube";
  options.timeout_seconds = 5;  // the server sends a bookmark before it ends the watch
  std::vector<std::string> types;
  std::string last_bookmark;
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(300));
    for (int i = 0; i < 3; ++i) {
      (void)client_->Create(kube::kConfigMap, ConfigMap(ns_, absl::StrCat("c", i), "v"));
    }
    (void)client_->Delete(kube::kConfigMap, ns_, "c0");
  });
  const absl::Time start = absl::Now();
  absl::Status s = client_->Watch(kube::kConfigMap, ns_, options, [&](const kube::WatchEvent& e) {
    types.push_back(e.type);
    if (e.type == "BOOKMARK") last_bookmark = e.object["metadata"]["resourceVersion"];
    return true;
  }, nullptr);
  writer.join();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  ASSERT_GE(types.size(), 4u);
  EXPECT_EQ(std::vector<std::string>(types.begin(), types.begin() + 4),
            (std::vector<std::string>{"ADDED", "ADDED", "ADDED", "DELETED"}));
  EXPECT_NE(std::find(types.begin(), types.end(), "BOOKMARK"), types.end());
  EXPECT_FALSE(last_bookmark.empty());
}

TEST_F(KubeClientTest, WatchFromAVersionTooOldIsGone) {
  ASSERT_NO_FATAL_FAILURE(EnsureWidgetCrd());
  kube::WatchOptions options;
  options.resource_version = "1";
  options.timeout_seconds = 10;  // bounds the test should the server serve it
  bool got_event = false;
  absl::Status s = client_->Watch(kWidget, ns_, options, [&](const kube::WatchEvent&) {
    got_event = true;
    return false;
  }, nullptr);
  EXPECT_TRUE(kube::IsGone(s)) << s;
  EXPECT_FALSE(got_event);
}

// Forwards to a real client, except that the first watch starts from
// resourceVersion "1" after deleting an object: a disconnected informer
// that missed a delete and whose version has been compacted away.
class StaleFirstWatch final : public kube::Client {
 public:
  StaleFirstWatch(kube::Client* real, std::function<void()> before_first_watch)
      : real_(real), before_(std::move(before_first_watch)) {}
  absl::StatusOr<Json> Get(const kube::ResourceRef& r, const std::string& ns, const std::string& n) override { return real_->Get(r, ns, n); }
  absl::StatusOr<Json> List(const kube::ResourceRef& r, const std::string& ns, const kube::ListOptions& o) override { return real_->List(r, ns, o); }
  absl::StatusOr<Json> Create(const kube::ResourceRef& r, const Json& o) override { return real_->Create(r, o); }
  absl::StatusOr<Json> Update(const kube::ResourceRef& r, const Json& o, const std::string& s) override { return real_->Update(r, o, s); }
  absl::StatusOr<Json> Apply(const kube::ResourceRef& r, const Json& o, const std::string& m, bool f) override { return real_->Apply(r, o, m, f); }
  absl::StatusOr<Json> ApplyStatus(const kube::ResourceRef& r, const Json& o, const std::string& m, bool f) override { return real_->ApplyStatus(r, o, m, f); }
  absl::StatusOr<Json> MergePatch(const kube::ResourceRef& r, const std::string& ns, const std::string& n, const Json& p, const std::string& s) override { return real_->MergePatch(r, ns, n, p, s); }
  absl::Status Delete(const kube::ResourceRef& r, const std::string& ns, const std::string& n, const std::string& p) override { return real_->Delete(r, ns, n, p); }
  absl::Status Watch(const kube::ResourceRef& r, const std::string& ns, const kube::WatchOptions& o,
                     const std::function<bool(const kube::WatchEvent&)>& f, const CancelToken* c) override {
    kube::WatchOptions options = o;
    if (!stale_done_.exchange(true)) {
      before_();
      options.resource_version = "1";
    }
    return real_->Watch(r, ns, options, f, c);
  }

 private:
  kube::Client* real_;
  std::function<void()> before_;
  std::atomic<bool> stale_done_{false};
};

TEST_F(KubeClientTest, InformerSurvivesGoneWithSyntheticDeletes) {
  ASSERT_NO_FATAL_FAILURE(EnsureWidgetCrd());
  ASSERT_TRUE(client_->Create(kWidget, Widget("stays")).ok());
  ASSERT_TRUE(client_->Create(kWidget, Widget("goes")).ok());
  StaleFirstWatch stale(client_.get(), [&] { (void)client_->Delete(kWidget, ns_, "goes"); });
  absl::Mutex mu;
  std::vector<std::string> deletes;
  kube::InformerOptions options;
  options.ref = kWidget;
  options.ns = ns_;
  kube::InformerHandlers handlers;
  handlers.on_delete = [&](const Json& o) {
    absl::MutexLock lock(&mu);
    deletes.push_back(o["metadata"]["name"]);
  };
  kube::Informer informer(&stale, options, handlers);
  informer.Start();
  ASSERT_TRUE(Eventually(absl::Seconds(20), [&] { return informer.relists() == 1; }));
  ASSERT_TRUE(Eventually(absl::Seconds(20), [&] { return !informer.Get(ns_, "goes").has_value(); }));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(deletes, std::vector<std::string>{"goes"});
  }
  // And it follows changes afterwards.
  ASSERT_TRUE(client_->Create(kWidget, Widget("later")).ok());
  EXPECT_TRUE(Eventually(absl::Seconds(20), [&] { return informer.Get(ns_, "later").has_value(); }));
  EXPECT_TRUE(informer.Get(ns_, "stays").has_value());
  informer.Stop();
}

TEST_F(KubeClientTest, LeaderElectionHandsOverBetweenTwoElectors) {
  struct Candidate {
    std::atomic<bool> leading{false};
    std::unique_ptr<kube::LeaderElector> elector;
    CancelToken cancel;
    std::thread thread;
  };
  Candidate cands[2];
  for (int i = 0; i < 2; ++i) {
    kube::LeaderElectionConfig config;
    config.lease_namespace = ns_;
    config.lease_name = "braid-operator";
    config.identity = i == 0 ? "a" : "b";
    config.lease_duration = absl::Seconds(3);
    config.renew_deadline = absl::Seconds(2);
    config.retry_period = absl::Milliseconds(200);
    Candidate* c = &cands[i];
    config.on_started_leading = [c] { c->leading = true; };
    config.on_stopped_leading = [c] { c->leading = false; };
    c->elector = std::make_unique<kube::LeaderElector>(client_.get(), config);
  }
  cands[0].thread = std::thread([&] { (void)cands[0].elector->Run(&cands[0].cancel); });
  ASSERT_TRUE(Eventually(absl::Seconds(10), [&] { return cands[0].leading.load(); }));
  cands[1].thread = std::thread([&] { (void)cands[1].elector->Run(&cands[1].cancel); });
  absl::SleepFor(absl::Seconds(4));  // longer than the lease: a keeps renewing
  EXPECT_TRUE(cands[0].elector->IsLeader());
  EXPECT_FALSE(cands[1].leading);
  EXPECT_EQ(cands[1].elector->Holder(), "a");

  const absl::Time handover = absl::Now();
  cands[0].cancel.Cancel();
  cands[0].thread.join();
  ASSERT_TRUE(Eventually(absl::Seconds(10), [&] { return cands[1].leading.load(); }));
  EXPECT_LT(absl::Now() - handover, absl::Seconds(2)) << "a released the lease";
  absl::StatusOr<Json> lease = client_->Get(kube::kLease, ns_, "braid-operator");
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "b");
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
  cands[1].cancel.Cancel();
  cands[1].thread.join();
}

TEST_F(KubeClientTest, BearerTokensAuthenticateAndRbacDenies) {
  ASSERT_TRUE(client_->Create(kube::kServiceAccount,
                              {{"apiVersion", "v1"}, {"kind", "ServiceAccount"},
                               {"metadata", {{"name", "probe"}, {"namespace", ns_}}}})
                  .ok());
  // A token for it (POST to the token subresource, through the transport).
  absl::StatusOr<std::unique_ptr<kube::HttpTransport>> admin = kube::NewCurlTransport(config_);
  ASSERT_TRUE(admin.ok()) << admin.status();
  kube::HttpRequest request;
  request.method = "POST";
  request.path = absl::StrCat("/api/v1/namespaces/", ns_, "/serviceaccounts/probe/token");
  request.content_type = "application/json";
  request.body = Json{{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"},
                      {"spec", {{"expirationSeconds", 600}}}}.dump();
  absl::StatusOr<kube::HttpResponse> response = (*admin)->Do(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->status, 201) << response->body;
  const std::string token = Json::parse(response->body)["status"]["token"];

  kube::Config as_sa = config_;
  as_sa.client_cert_pem.clear();
  as_sa.client_key_pem.clear();
  as_sa.token = token;
  absl::StatusOr<std::unique_ptr<kube::Client>> sa = kube::NewClientForConfig(as_sa);
  ASSERT_TRUE(sa.ok()) << sa.status();
  absl::Status denied = (*sa)->List(kube::kPod, ns_).status();
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied) << denied;
  EXPECT_TRUE(absl::StrContains(denied.message(),
                                absl::StrCat("system:serviceaccount:", ns_, ":probe")))
      << denied;

  // The same identity as a pod sees it: in-cluster config from a
  // service-account directory (token file + CA) and the service env vars.
  {
    const std::string dir = absl::StrCat(::testing::TempDir(), "/sa-", ns_);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/token") << token;
    std::ofstream(dir + "/ca.crt") << config_.ca_pem;
    std::ofstream(dir + "/namespace") << ns_;
    const std::string host_port = config_.server.substr(config_.server.find("://") + 3);
    ::setenv("KUBERNETES_SERVICE_HOST", host_port.substr(0, host_port.rfind(':')).c_str(), 1);
    ::setenv("KUBERNETES_SERVICE_PORT", host_port.substr(host_port.rfind(':') + 1).c_str(), 1);
    absl::StatusOr<kube::Config> in_cluster = kube::LoadInCluster(dir);
    ::unsetenv("KUBERNETES_SERVICE_HOST");
    ::unsetenv("KUBERNETES_SERVICE_PORT");
    ASSERT_TRUE(in_cluster.ok()) << in_cluster.status();
    EXPECT_EQ(in_cluster->default_namespace, ns_);
    absl::StatusOr<std::unique_ptr<kube::Client>> pod = kube::NewClientForConfig(*in_cluster);
    ASSERT_TRUE(pod.ok()) << pod.status();
    absl::Status s = (*pod)->List(kube::kPod, ns_).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), absl::StrCat("system:serviceaccount:", ns_, ":probe")))
        << s;
  }

  as_sa.token = "not-a-token";
  absl::StatusOr<std::unique_ptr<kube::Client>> bogus = kube::NewClientForConfig(as_sa);
  ASSERT_TRUE(bogus.ok());
  EXPECT_EQ((*bogus)->List(kube::kPod, ns_).status().code(), absl::StatusCode::kUnauthenticated);

  // A wrong CA fails the TLS handshake: Unavailable, naming the server.
  kube::Config wrong_ca = config_;
  wrong_ca.ca_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  absl::StatusOr<std::unique_ptr<kube::Client>> untrusted = kube::NewClientForConfig(wrong_ca);
  ASSERT_TRUE(untrusted.ok());
  absl::Status tls = (*untrusted)->List(kube::kPod, ns_).status();
  EXPECT_EQ(tls.code(), absl::StatusCode::kUnavailable) << tls;
  EXPECT_TRUE(absl::StrContains(tls.message(), config_.server)) << tls;
}

}  // namespace
}  // namespace braid::k8s
