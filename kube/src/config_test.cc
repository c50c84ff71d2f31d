#include "braid/kube/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::kube {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kCaPem[] = "-----BEGIN CERTIFICATE-----\nQ0EK\n-----END CERTIFICATE-----\n";
constexpr char kCertPem[] = "-----BEGIN CERTIFICATE-----\nQ0VSVAo=\n-----END CERTIFICATE-----\n";
constexpr char kKeyPem[] = "-----BEGIN PRIVATE KEY-----\nS0VZCg==\n-----END PRIVATE KEY-----\n";

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

// Sets or unsets an environment variable for one test, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    had_ = std::getenv(name) != nullptr;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_, old_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("braid_kube_config_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& rel, const std::string& content) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << content;
    return p.string();
  }

  fs::path dir_;
};

std::string TwoContexts() {
  return absl::StrCat(R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: )", B64(kCaPem), R"(
- name: prod-cluster
  cluster:
    server: https://prod.example:443
    insecure-skip-tls-verify: true
users:
- name: dev-user
  user:
    token: dev-token
- name: prod-user
  user:
    client-certificate-data: )", B64(kCertPem), R"(
    client-key-data: )", B64(kKeyPem), R"(
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}
- name: prod
  context: {cluster: prod-cluster, user: prod-user}
)");
}

TEST_F(ConfigTest, CurrentContextWithTokenAndInlineCa) {
  const std::string path = Write("kubeconfig", TwoContexts());
  absl::StatusOr<Config> c = LoadKubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");  // trailing slash dropped
  EXPECT_EQ(c->ca_pem, kCaPem);
  EXPECT_EQ(c->token, "dev-token");
  EXPECT_EQ(c->default_namespace, "team-a");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_TRUE(c->client_cert_pem.empty());
  EXPECT_THAT(c->source, HasSubstr("context dev"));
}

TEST_F(ConfigTest, NamedContextWithClientCertificate) {
  const std::string path = Write("kubeconfig", TwoContexts());
  absl::StatusOr<Config> c = LoadKubeconfig(path, "prod");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://prod.example:443");
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->client_cert_pem, kCertPem);
  EXPECT_EQ(c->client_key_pem, kKeyPem);
  EXPECT_TRUE(c->token.empty());
  EXPECT_EQ(c->default_namespace, "default");
}

TEST_F(ConfigTest, RelativeFilesResolveAgainstTheKubeconfigDirectory) {
  Write("conf/pki/ca.crt", kCaPem);
  Write("conf/pki/client.crt", kCertPem);
  Write("conf/pki/client.key", kKeyPem);
  Write("conf/token", "file-token\n");
  const std::string path = Write("conf/kubeconfig", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority: pki/ca.crt}}]
users:
- name: u
  user: {client-certificate: pki/client.crt, client-key: pki/client.key, tokenFile: token}
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  // Loaded from another working directory, paths still resolve.
  absl::StatusOr<Config> c = LoadKubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, kCaPem);
  EXPECT_EQ(c->client_cert_pem, kCertPem);
  EXPECT_EQ(c->client_key_pem, kKeyPem);
  EXPECT_EQ(c->token_file, (dir_ / "conf/token").string());
}

struct BadCase {
  std::string name;
  std::string yaml;
  std::string expected;  // message after "<path>: "
};

TEST_F(ConfigTest, ErrorsNameFileAndField) {
  const std::string ok_cluster = R"(clusters: [{name: k, cluster: {server: "https://h:1"}}])";
  const std::string ok_ctx = R"(contexts: [{name: c, context: {cluster: k, user: u}}])";
  const BadCase cases[] = {
      {"bad base64", absl::StrCat("current-context: c\n", ok_cluster, "\n", ok_ctx, R"(
users: [{name: u, user: {client-certificate-data: )", B64(kCertPem),
                                  R"(, client-key-data: "%%%not base64"}}])"),
       "users[0].user.client-key-data: not valid base64"},
      {"not pem", absl::StrCat("current-context: c\n", ok_ctx, R"(
clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority-data: )",
                               B64("hello"), "}}]\nusers: [{name: u, user: {}}]"),
       "clusters[0].cluster.certificate-authority-data: not PEM"},
      {"missing ca file", absl::StrCat("current-context: c\n", ok_ctx, R"(
clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority: nope/ca.crt}}]
users: [{name: u, user: {}}])"),
       "clusters[0].cluster.certificate-authority: "},
      {"no current context", absl::StrCat(ok_cluster, "\n", ok_ctx), "current-context: not set"},
      {"dangling context", absl::StrCat("current-context: other\n", ok_cluster, "\n", ok_ctx),
       "current-context: no entry named \"other\" in contexts"},
      {"dangling cluster", absl::StrCat(R"(current-context: c
clusters: [{name: x, cluster: {server: "https://h:1"}}]
)", ok_ctx, "\nusers: [{name: u, user: {}}]"),
       "contexts[0].context.cluster: no entry named \"k\" in clusters"},
      {"dangling user", absl::StrCat("current-context: c\n", ok_cluster, "\n", ok_ctx),
       "contexts[0].context.user: no entry named \"u\" in users"},
      {"no server", absl::StrCat(R"(current-context: c
clusters: [{name: k, cluster: {}}]
)", ok_ctx, "\nusers: [{name: u, user: {}}]"),
       "clusters[0].cluster.server: missing"},
      {"server not url", absl::StrCat(R"(current-context: c
clusters: [{name: k, cluster: {server: "h:1"}}]
)", ok_ctx, "\nusers: [{name: u, user: {}}]"),
       "clusters[0].cluster.server: \"h:1\" is not an http(s) URL"},
      {"exec plugin", absl::StrCat("current-context: c\n", ok_cluster, "\n", ok_ctx, R"(
users: [{name: u, user: {exec: {command: aws}}}])"),
       "users[0].user.exec: exec credential plugins are not supported"},
      {"cert without key", absl::StrCat("current-context: c\n", ok_cluster, "\n", ok_ctx, R"(
users: [{name: u, user: {client-certificate-data: )", B64(kCertPem), "}}]"),
       "users[0].user: client-certificate given without client-key"},
      {"bad bool", absl::StrCat("current-context: c\n", ok_ctx, R"(
clusters: [{name: k, cluster: {server: "https://h:1", insecure-skip-tls-verify: maybe}}]
users: [{name: u, user: {}}])"),
       "clusters[0].cluster.insecure-skip-tls-verify: must be true or false"},
      {"bad yaml", "clusters: [\n", "not valid YAML (line"},
      {"not a mapping", "- a\n- b\n", "not a kubeconfig"},
  };
  for (const BadCase& c : cases) {
    const std::string path = Write("kubeconfig", c.yaml);
    absl::StatusOr<Config> config = LoadKubeconfig(path);
    ASSERT_FALSE(config.ok()) << c.name;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(config.status().message()),
                HasSubstr(absl::StrCat(path, ": ", c.expected)))
        << c.name;
  }
}

TEST_F(ConfigTest, MissingKubeconfigIsNotFound) {
  absl::StatusOr<Config> c = LoadKubeconfig((dir_ / "absent").string());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr((dir_ / "absent").string()));
}

TEST_F(ConfigTest, InClusterReadsServiceAccountFiles) {
  const std::string sa = (dir_ / "sa").string();
  Write("sa/token", "sa-token\n");
  Write("sa/ca.crt", kCaPem);
  Write("sa/namespace", "braid-system\n");
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  absl::StatusOr<Config> c = LoadInCluster(sa);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->ca_pem, kCaPem);
  EXPECT_EQ(c->token_file, sa + "/token");  // re-read by the transport: tokens rotate
  EXPECT_EQ(c->default_namespace, "braid-system");

  ScopedEnv v6("KUBERNETES_SERVICE_HOST", "fd00::1");
  EXPECT_EQ(LoadInCluster(sa)->server, "https://[fd00::1]:443");
}

TEST_F(ConfigTest, InClusterErrors) {
  const std::string sa = (dir_ / "sa").string();
  {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", nullptr);
    EXPECT_EQ(LoadInCluster(sa).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.0.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  absl::StatusOr<Config> c = LoadInCluster(sa);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(sa + "/token"));
  Write("sa/token", "t");
  c = LoadInCluster(sa);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(sa + "/ca.crt"));
}

TEST_F(ConfigTest, DefaultPrecedence) {
  const std::string first = Write("first", TwoContexts());
  const std::string home_config = Write("home/.kube/config",
                                        absl::StrCat(TwoContexts(), "\n# home\n"));
  ScopedEnv home("HOME", (dir_ / "home").c_str());
  ScopedEnv in_cluster("KUBERNETES_SERVICE_HOST", nullptr);
  {
    // $KUBECONFIG: the first non-empty path of the list.
    ScopedEnv kc("KUBECONFIG", absl::StrCat(":", first, ":", home_config).c_str());
    absl::StatusOr<Config> c = LoadDefault("");
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_THAT(c->source, HasSubstr(first));
    // The flag wins over everything.
    c = LoadDefault(home_config, "prod");
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_THAT(c->source, HasSubstr(home_config));
    EXPECT_EQ(c->server, "https://prod.example:443");
  }
  ScopedEnv kc("KUBECONFIG", nullptr);
  absl::StatusOr<Config> c = LoadDefault("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->source, HasSubstr(home_config));

  fs::remove(home_config);
  c = LoadDefault("");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("$KUBECONFIG not set"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("KUBERNETES_SERVICE_HOST not set"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(home_config + " does not exist"));
}

}  // namespace
}  // namespace braid::kube
