#include "braid/kube/config.h"

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace braid::kube {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxFileBytes = 4 << 20;

// Errors for one kubeconfig: "<file>: <field>: <what>".
class Where {
 public:
  explicit Where(std::string file) : file_(std::move(file)) {}
  absl::Status Invalid(const std::string& field, const std::string& what) const {
    if (field.empty()) return absl::InvalidArgumentError(absl::StrCat(file_, ": ", what));
    return absl::InvalidArgumentError(absl::StrCat(file_, ": ", field, ": ", what));
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// yaml-cpp throws when asked the type of a missing node; these don't.
bool IsMap(const YAML::Node& n) { return n.IsDefined() && n.IsMap(); }
bool IsSeq(const YAML::Node& n) { return n.IsDefined() && n.IsSequence(); }
bool IsScalar(const YAML::Node& n) { return n.IsDefined() && n.IsScalar(); }
bool Present(const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); }

// A string-valued field of a mapping; nullopt if absent or null.
absl::StatusOr<std::optional<std::string>> StringField(const Where& w, const YAML::Node& map,
                                                       const std::string& key,
                                                       const std::string& field) {
  const YAML::Node n = map[key];
  if (!Present(n)) return std::optional<std::string>();
  if (!n.IsScalar()) return w.Invalid(field, "must be a string");
  return std::optional<std::string>(n.Scalar());
}

absl::StatusOr<bool> BoolField(const Where& w, const YAML::Node& map, const std::string& key,
                               const std::string& field) {
  const YAML::Node n = map[key];
  if (!Present(n)) return false;
  bool value = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, value)) {
    return w.Invalid(field, "must be true or false");
  }
  return value;
}

// The index of the entry named `name` in the sequence `list_key`, or an
// error naming `referrer` (the field that referred to it).
absl::StatusOr<size_t> FindNamed(const Where& w, const YAML::Node& root,
                                 const std::string& list_key, const std::string& name,
                                 const std::string& referrer) {
  const YAML::Node list = root[list_key];
  if (Present(list) && !list.IsSequence()) {
    return w.Invalid(list_key, "must be a list");
  }
  if (IsSeq(list)) {
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node entry = list[i];
      if (!IsMap(entry)) return w.Invalid(absl::StrCat(list_key, "[", i, "]"), "must be a mapping");
      const YAML::Node n = entry["name"];
      if (IsScalar(n) && n.Scalar() == name) return i;
    }
  }
  return w.Invalid(referrer, absl::StrCat("no entry named \"", name, "\" in ", list_key));
}

std::string Resolve(const fs::path& base_dir, const std::string& p) {
  const fs::path path(p);
  if (path.is_absolute()) return p;
  return (base_dir / path).lexically_normal().string();
}

bool LooksLikePem(const std::string& s) { return s.find("-----BEGIN ") != std::string::npos; }

// Reads "<key>" (a file path) or "<key>-data" (base64 of the content) from
// `map`; the -data form wins, as in kubectl. "" if neither.
absl::StatusOr<std::string> PemFileOrData(const Where& w, const fs::path& base_dir,
                                          const YAML::Node& map, const std::string& key,
                                          const std::string& prefix) {
  const std::string data_field = absl::StrCat(prefix, ".", key, "-data");
  BRAID_ASSIGN_OR_RETURN(std::optional<std::string> data,
                         StringField(w, map, key + "-data", data_field));
  std::string pem;
  std::string field;
  if (data.has_value() && !data->empty()) {
    field = data_field;
    std::string compact;
    for (char c : *data) {
      if (c != '\n' && c != '\r' && c != ' ' && c != '\t') compact.push_back(c);
    }
    if (!absl::Base64Unescape(compact, &pem)) return w.Invalid(field, "not valid base64");
  } else {
    field = absl::StrCat(prefix, ".", key);
    BRAID_ASSIGN_OR_RETURN(std::optional<std::string> file, StringField(w, map, key, field));
    if (!file.has_value() || file->empty()) return std::string();
    const std::string path = Resolve(base_dir, *file);
    absl::StatusOr<std::string> content = ReadSmallFile(path, kMaxFileBytes);
    if (!content.ok()) return w.Invalid(field, std::string(content.status().message()));
    pem = *std::move(content);
    field = absl::StrCat(field, " (", path, ")");
  }
  if (!LooksLikePem(pem)) {
    return w.Invalid(field, "not PEM (expected a \"-----BEGIN ...\" block)");
  }
  return pem;
}

absl::Status CheckServer(const std::string& server, const std::function<absl::Status(const std::string&)>& err) {
  if (server.empty()) return err("missing; set it to the API server's URL, e.g. https://host:6443");
  if (server.rfind("https://", 0) != 0 && server.rfind("http://", 0) != 0) {
    return err(absl::StrCat("\"", server, "\" is not an http(s) URL"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ParseKubeconfig(const Where& w, const std::string& text,
                                       const std::string& context_name) {
  YAML::Node loaded;
  try {
    loaded = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return w.Invalid("", absl::StrCat("not valid YAML (line ", e.mark.line + 1, ", column ",
                                      e.mark.column + 1, "): ", e.msg));
  }
  const YAML::Node root = loaded;  // const: lookups never insert
  if (!root.IsMap()) return w.Invalid("", "not a kubeconfig (expected a YAML mapping)");
  const fs::path base_dir = fs::path(w.file()).parent_path();

  try {
    std::string context = context_name;
    if (context.empty()) {
      BRAID_ASSIGN_OR_RETURN(std::optional<std::string> current,
                             StringField(w, root, "current-context", "current-context"));
      if (!current.has_value() || current->empty()) {
        return w.Invalid("current-context", "not set; name a context to use");
      }
      context = *current;
    }
    BRAID_ASSIGN_OR_RETURN(
        const size_t ci,
        FindNamed(w, root, "contexts", context,
                  context_name.empty() ? "current-context" : absl::StrCat("context \"", context, "\"")));
    const std::string cprefix = absl::StrCat("contexts[", ci, "].context");
    const YAML::Node ctx = root["contexts"][ci]["context"];
    if (!IsMap(ctx)) return w.Invalid(cprefix, "missing or not a mapping");
    BRAID_ASSIGN_OR_RETURN(std::optional<std::string> cluster_name,
                           StringField(w, ctx, "cluster", cprefix + ".cluster"));
    if (!cluster_name.has_value() || cluster_name->empty()) {
      return w.Invalid(cprefix + ".cluster", "missing");
    }
    BRAID_ASSIGN_OR_RETURN(std::optional<std::string> user_name,
                           StringField(w, ctx, "user", cprefix + ".user"));
    BRAID_ASSIGN_OR_RETURN(std::optional<std::string> ns,
                           StringField(w, ctx, "namespace", cprefix + ".namespace"));

    Config config;
    config.source = absl::StrCat("kubeconfig ", w.file(), " (context ", context, ")");
    if (ns.has_value() && !ns->empty()) config.default_namespace = *ns;

    BRAID_ASSIGN_OR_RETURN(const size_t li,
                           FindNamed(w, root, "clusters", *cluster_name, cprefix + ".cluster"));
    const std::string lprefix = absl::StrCat("clusters[", li, "].cluster");
    const YAML::Node cluster = root["clusters"][li]["cluster"];
    if (!IsMap(cluster)) return w.Invalid(lprefix, "missing or not a mapping");
    BRAID_ASSIGN_OR_RETURN(std::optional<std::string> server,
                           StringField(w, cluster, "server", lprefix + ".server"));
    config.server = server.value_or("");
    while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
    BRAID_RETURN_IF_ERROR(CheckServer(config.server, [&](const std::string& what) {
      return w.Invalid(lprefix + ".server", what);
    }));
    BRAID_ASSIGN_OR_RETURN(config.ca_pem,
                           PemFileOrData(w, base_dir, cluster, "certificate-authority", lprefix));
    BRAID_ASSIGN_OR_RETURN(config.insecure_skip_tls_verify,
                           BoolField(w, cluster, "insecure-skip-tls-verify",
                                     lprefix + ".insecure-skip-tls-verify"));

    if (user_name.has_value() && !user_name->empty()) {
      BRAID_ASSIGN_OR_RETURN(const size_t ui,
                             FindNamed(w, root, "users", *user_name, cprefix + ".user"));
      const std::string uprefix = absl::StrCat("users[", ui, "].user");
      const YAML::Node user = root["users"][ui]["user"];
      if (Present(user) && !user.IsMap()) {
        return w.Invalid(uprefix, "must be a mapping");
      }
      if (IsMap(user)) {
        if (Present(user["exec"])) {
          return w.Invalid(uprefix + ".exec",
                           "exec credential plugins are not supported; use token, tokenFile or "
                           "a client certificate");
        }
        if (Present(user["auth-provider"])) {
          return w.Invalid(uprefix + ".auth-provider",
                           "auth providers are not supported; use token, tokenFile or a client "
                           "certificate");
        }
        if (user["username"].IsDefined() || user["password"].IsDefined()) {
          return w.Invalid(uprefix, "basic auth (username/password) is not supported");
        }
        BRAID_ASSIGN_OR_RETURN(std::optional<std::string> token,
                               StringField(w, user, "token", uprefix + ".token"));
        config.token = token.value_or("");
        BRAID_ASSIGN_OR_RETURN(std::optional<std::string> token_file,
                               StringField(w, user, "tokenFile", uprefix + ".tokenFile"));
        if (config.token.empty() && token_file.has_value() && !token_file->empty()) {
          config.token_file = Resolve(base_dir, *token_file);
          absl::StatusOr<std::string> t = ReadSmallFile(config.token_file, kMaxFileBytes);
          if (!t.ok()) return w.Invalid(uprefix + ".tokenFile", std::string(t.status().message()));
        }
        BRAID_ASSIGN_OR_RETURN(config.client_cert_pem,
                               PemFileOrData(w, base_dir, user, "client-certificate", uprefix));
        BRAID_ASSIGN_OR_RETURN(config.client_key_pem,
                               PemFileOrData(w, base_dir, user, "client-key", uprefix));
        if (!config.client_cert_pem.empty() && config.client_key_pem.empty()) {
          return w.Invalid(uprefix, "client-certificate given without client-key");
        }
        if (config.client_cert_pem.empty() && !config.client_key_pem.empty()) {
          return w.Invalid(uprefix, "client-key given without client-certificate");
        }
      }
    }
    return config;
  } catch (const YAML::Exception& e) {
    return w.Invalid("", absl::StrCat("unexpected structure: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<Config> LoadKubeconfig(const std::string& path, const std::string& context_name) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxFileBytes);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("kubeconfig ", std::string(text.status().message())));
  }
  return ParseKubeconfig(Where(path), *text, context_name);
}

absl::StatusOr<Config> LoadInCluster(const std::string& sa_dir) {
  const std::string host = Env("KUBERNETES_SERVICE_HOST");
  const std::string port = Env("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) {
    return absl::FailedPreconditionError(
        "in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be "
        "set (they are inside a pod)");
  }
  Config config;
  config.server = host.find(':') != std::string::npos
                      ? absl::StrCat("https://[", host, "]:", port)  // IPv6
                      : absl::StrCat("https://", host, ":", port);
  const std::string dir = sa_dir;
  config.token_file = (fs::path(dir) / "token").string();
  absl::StatusOr<std::string> token = ReadSmallFile(config.token_file, kMaxFileBytes);
  if (!token.ok()) {
    return absl::Status(token.status().code(),
                        absl::StrCat("in-cluster configuration: service-account token: ",
                                     std::string(token.status().message())));
  }
  const std::string ca_path = (fs::path(dir) / "ca.crt").string();
  absl::StatusOr<std::string> ca = ReadSmallFile(ca_path, kMaxFileBytes);
  if (!ca.ok()) {
    return absl::Status(ca.status().code(),
                        absl::StrCat("in-cluster configuration: service-account CA: ",
                                     std::string(ca.status().message())));
  }
  if (!LooksLikePem(*ca)) {
    return absl::InvalidArgumentError(absl::StrCat(ca_path, ": not PEM"));
  }
  config.ca_pem = *std::move(ca);
  absl::StatusOr<std::string> ns = ReadSmallFile((fs::path(dir) / "namespace").string(), 4096);
  if (ns.ok()) {
    const std::string trimmed(absl::StripAsciiWhitespace(*ns));
    if (!trimmed.empty()) config.default_namespace = trimmed;
  }
  config.source = absl::StrCat("in-cluster (", config.server, ", ", dir, ")");
  return config;
}

absl::StatusOr<Config> LoadDefault(const std::string& flag_path, const std::string& context_name) {
  if (!flag_path.empty()) return LoadKubeconfig(flag_path, context_name);
  std::vector<std::string> tried = {"--kubeconfig not given"};
  const std::string env = Env("KUBECONFIG");
  if (!env.empty()) {
    for (absl::string_view p : absl::StrSplit(env, ':')) {
      if (!p.empty()) return LoadKubeconfig(std::string(p), context_name);
    }
  }
  tried.push_back("$KUBECONFIG not set");
  if (!Env("KUBERNETES_SERVICE_HOST").empty()) return LoadInCluster();
  tried.push_back("not in a cluster ($KUBERNETES_SERVICE_HOST not set)");
  const std::string home = Env("HOME");
  if (!home.empty()) {
    const std::string path = absl::StrCat(home, "/.kube/config");
    std::error_code ec;
    if (fs::exists(path, ec)) return LoadKubeconfig(path, context_name);
    tried.push_back(absl::StrCat(path, " does not exist"));
  } else {
    tried.push_back("$HOME not set, so no ~/.kube/config");
  }
  return absl::NotFoundError(absl::StrCat("no Kubernetes configuration found: ",
                                          absl::StrJoin(tried, "; "),
                                          ". Pass --kubeconfig or set $KUBECONFIG"));
}

}  // namespace braid::kube
