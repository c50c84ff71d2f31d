// Without gtest, for `make demo-multisite` (tests/multisite/demo_main.cc):
// kubectl against one control plane, and a Deployment's pod run as a local
// process ("stand-in"), since kwok runs no containers. The pod's volumes
// become local copies: a Secret's or ConfigMap's keys as files in a
// directory, an emptyDir as a directory, a claim as one local file the
// caller names; each argument naming a mount path is rewritten to the copy.
#ifndef BRAID_TESTS_MULTISITE_STAND_IN_H_
#define BRAID_TESTS_MULTISITE_STAND_IN_H_

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace braid::multisite {

struct CommandOutput {
  int code = -1;    // exit code; 128 + signal when killed; -1 when it could not start
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv to completion (killed after `timeout`); its stdout and stderr
// pass through files in `scratch_dir`. Thread-safe.
CommandOutput RunCommandIn(const std::string& scratch_dir, const std::vector<std::string>& argv,
                           absl::Duration timeout = absl::Seconds(60));

// kubectl with one admin kubeconfig. Thread-safe.
class Kubectl {
 public:
  Kubectl(std::string binary, std::string kubeconfig, std::string scratch_dir);

  const std::string& kubeconfig() const { return kubeconfig_; }
  CommandOutput Run(const std::vector<std::string>& args,
                    absl::Duration timeout = absl::Seconds(60)) const;
  // kubectl apply --server-side --force-conflicts of `yaml`; the error holds
  // kubectl's stderr.
  absl::Status Apply(const std::string& yaml) const;
  // kubectl get ... -o json; nullopt when it fails (e.g. NotFound).
  std::optional<nlohmann::json> Get(const std::vector<std::string>& args) const;
  // The decoded value of `key` in Secret ns/name; "" when absent.
  std::string SecretValue(const std::string& ns, const std::string& name,
                          const std::string& key) const;

 private:
  std::string binary_, kubeconfig_, scratch_;
};

// How to run one container of a Deployment's pod template locally.
struct StandInRequest {
  std::string binary;     // the program to run instead of the image's entrypoint
  bool init = false;      // the init container `container` instead of a container
  int container = 0;      // index among the (init) containers
  std::string local_dir;  // where the volumes' copies are written (created)
  // The local file standing in for each persistentVolumeClaim mount (the
  // job's one data file), by volume name.
  std::map<std::string, std::string> claim_files;
  // Whole arguments replaced after the paths are (e.g. "--listen=0.0.0.0:7070"
  // -> "--listen=127.0.0.1:40123").
  std::map<std::string, std::string> replace_args;
};

// The argv of that container, its volumes copied from `cluster` (Secrets
// and ConfigMaps in the Deployment's namespace) under request.local_dir.
// NotFound when a Secret or ConfigMap it mounts is missing (not made yet),
// InvalidArgument for a volume kind it cannot stand in for.
absl::StatusOr<std::vector<std::string>> StandInArgv(const Kubectl& cluster,
                                                     const nlohmann::json& deployment,
                                                     const StandInRequest& request);

// Writes `content` to `path` (its directory created) and returns `path`.
std::string WriteText(const std::string& path, const std::string& content);
std::string ReadText(const std::string& path);

}  // namespace braid::multisite

#endif  // BRAID_TESTS_MULTISITE_STAND_IN_H_
