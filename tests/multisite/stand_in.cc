#include "tests/multisite/stand_in.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "braid/cli/subprocess.h"

namespace braid::multisite {
namespace fs = std::filesystem;
using nlohmann::json;

std::string WriteText(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  return path;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

CommandOutput RunCommandIn(const std::string& scratch_dir, const std::vector<std::string>& argv,
                           absl::Duration timeout) {
  static std::atomic<int> counter{0};
  fs::create_directories(scratch_dir);
  const std::string base = absl::StrCat(scratch_dir, "/cmd-", ::getpid(), "-", counter++);
  fs::remove(base + ".out");
  fs::remove(base + ".err");
  CommandOutput result;
  absl::StatusOr<cli::Subprocess> proc = cli::Subprocess::Start(argv, base + ".err", base + ".out");
  if (!proc.ok()) {
    result.err = std::string(proc.status().message());
    return result;
  }
  result.code = proc->Wait(timeout);
  result.out = ReadText(base + ".out");
  result.err = ReadText(base + ".err");
  fs::remove(base + ".out");
  fs::remove(base + ".err");
  return result;
}

Kubectl::Kubectl(std::string binary, std::string kubeconfig, std::string scratch_dir)
    : binary_(std::move(binary)), kubeconfig_(std::move(kubeconfig)), scratch_(std::move(scratch_dir)) {}

CommandOutput Kubectl::Run(const std::vector<std::string>& args, absl::Duration timeout) const {
  std::vector<std::string> argv = {binary_, "--kubeconfig", kubeconfig_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommandIn(scratch_, argv, timeout);
}

absl::Status Kubectl::Apply(const std::string& yaml) const {
  // One counter for every Kubectl: several may share a scratch dir and
  // apply at once.
  static std::atomic<int> counter{0};
  const std::string file =
      WriteText(absl::StrCat(scratch_, "/apply-", ::getpid(), "-", counter++, ".yaml"), yaml);
  CommandOutput r = Run({"apply", "--server-side", "--force-conflicts",
                         "--field-manager=braid-demo", "-f", file});
  if (r.code != 0) return absl::InternalError(absl::StrCat("kubectl apply: ", r.err));
  return absl::OkStatus();
}

std::optional<json> Kubectl::Get(const std::vector<std::string>& args) const {
  std::vector<std::string> full = {"get"};
  full.insert(full.end(), args.begin(), args.end());
  full.push_back("-o");
  full.push_back("json");
  CommandOutput r = Run(full);
  if (r.code != 0) return std::nullopt;
  json parsed = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

std::string Kubectl::SecretValue(const std::string& ns, const std::string& name,
                                 const std::string& key) const {
  std::optional<json> secret = Get({"secret", "-n", ns, name});
  if (!secret.has_value()) return "";
  std::string decoded;
  const std::string encoded = secret->value("data", json::object()).value(key, std::string());
  if (!absl::Base64Unescape(encoded, &decoded)) return "";
  return decoded;
}

namespace {

// Writes the keys of a Secret's or ConfigMap's data (decoded) into `dir`,
// only the volume's `items` when it lists them.
absl::Status CopyKeys(const json& data, bool base64, const json& source, const std::string& dir,
                      const std::string& what) {
  fs::create_directories(dir);
  std::vector<std::pair<std::string, std::string>> files;  // key -> path in dir
  if (source.contains("items")) {
    for (const json& item : source["items"]) files.emplace_back(item["key"], item["path"]);
  } else {
    for (const auto& [key, value] : data.items()) files.emplace_back(key, key);
  }
  for (const auto& [key, path] : files) {
    if (!data.contains(key)) return absl::NotFoundError(absl::StrCat(what, " has no key ", key));
    std::string value = data[key].get<std::string>();
    if (base64) {
      std::string decoded;
      if (!absl::Base64Unescape(value, &decoded)) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": key ", key, " is not base64"));
      }
      value = std::move(decoded);
    }
    WriteText(dir + "/" + path, value);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> StandInArgv(const Kubectl& cluster, const json& deployment,
                                                     const StandInRequest& request) {
  const json pod = deployment["spec"]["template"]["spec"];
  const std::string ns = deployment["metadata"]["namespace"];
  const json containers = pod.value(request.init ? "initContainers" : "containers", json::array());
  if (request.container >= static_cast<int>(containers.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        deployment["metadata"]["name"].get<std::string>(), " has no container ", request.container));
  }
  const json& container = containers[request.container];
  std::map<std::string, json> volumes;
  for (const json& v : pod.value("volumes", json::array())) volumes[v["name"]] = v;

  // mount path -> local path, longest mount paths first so that a mount
  // inside another's path wins.
  std::vector<std::pair<std::string, std::string>> mounted;
  for (const json& m : container.value("volumeMounts", json::array())) {
    const std::string name = m["name"];
    const std::string mount_path = m["mountPath"];
    auto v = volumes.find(name);
    if (v == volumes.end()) return absl::InvalidArgumentError("no volume " + name);
    const std::string local = request.local_dir + "/" + name;
    if (v->second.contains("secret")) {
      const std::string secret = v->second["secret"]["secretName"];
      std::optional<json> s = cluster.Get({"secret", "-n", ns, secret});
      if (!s.has_value()) return absl::NotFoundError(absl::StrCat("no Secret ", ns, "/", secret));
      absl::Status copied = CopyKeys(s->value("data", json::object()), true, v->second["secret"],
                                     local, "Secret " + ns + "/" + secret);
      if (!copied.ok()) return copied;
      mounted.emplace_back(mount_path, local);
    } else if (v->second.contains("configMap")) {
      const std::string cm = v->second["configMap"]["name"];
      std::optional<json> c = cluster.Get({"configmap", "-n", ns, cm});
      if (!c.has_value()) return absl::NotFoundError(absl::StrCat("no ConfigMap ", ns, "/", cm));
      absl::Status copied = CopyKeys(c->value("data", json::object()), false,
                                     v->second["configMap"], local, "ConfigMap " + ns + "/" + cm);
      if (!copied.ok()) return copied;
      mounted.emplace_back(mount_path, local);
    } else if (v->second.contains("emptyDir")) {
      fs::create_directories(local);
      mounted.emplace_back(mount_path, local);
    } else if (v->second.contains("persistentVolumeClaim")) {
      auto file = request.claim_files.find(name);
      if (file == request.claim_files.end()) {
        return absl::InvalidArgumentError("no local file stands in for claim volume " + name);
      }
      mounted.emplace_back(mount_path, file->second);
    } else {
      return absl::InvalidArgumentError("cannot stand in for volume " + name);
    }
  }
  std::sort(mounted.begin(), mounted.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  std::vector<std::string> argv = {request.binary};
  for (std::string arg : container.value("args", std::vector<std::string>())) {
    for (const auto& [path, replacement] : mounted) {
      const size_t at = arg.find("=" + path);
      if (at == std::string::npos) continue;
      const size_t end = at + 1 + path.size();
      if (end < arg.size() && arg[end] != '/') continue;  // another path with this prefix
      arg = arg.substr(0, at + 1) + replacement + arg.substr(end);
      break;
    }
    if (auto r = request.replace_args.find(arg); r != request.replace_args.end()) arg = r->second;
    argv.push_back(arg);
  }
  return argv;
}

}  // namespace braid::multisite
