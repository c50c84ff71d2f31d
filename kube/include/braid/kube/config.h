// Where the Kubernetes API server is and how to authenticate to it: loaded
// from a kubeconfig file, from a pod's service account, or by the usual
// precedence (flag, $KUBECONFIG, in-cluster, ~/.kube/config).
#ifndef BRAID_KUBE_CONFIG_H_
#define BRAID_KUBE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"

namespace braid::kube {

// Everything a transport needs to reach one API server as one user. Plain
// value; credentials are held in memory (PEM bytes), except a token file,
// which the transport re-reads when it changes (service-account tokens
// rotate).
struct Config {
  // "https://host:port" (or "http://..." for a plain-text test server); no
  // trailing slash.
  std::string server;
  // PEM bundle of CAs that sign the server's certificate. Empty: the
  // system's trust store.
  std::string ca_pem;
  // Bearer token sent as "Authorization: Bearer <token>". Takes precedence
  // over token_file.
  std::string token;
  // A file holding the bearer token; read when its mtime or size changes.
  std::string token_file;
  // Client certificate and its private key (PEM); both or neither.
  std::string client_cert_pem;
  std::string client_key_pem;
  // Skips verification of the server's certificate. For tests only.
  bool insecure_skip_tls_verify = false;
  // The context's namespace, or the pod's; "default" if none is given.
  std::string default_namespace = "default";
  // Where this came from, for log lines: "kubeconfig /x (context dev)".
  std::string source;
};

// Loads `context_name` (empty: current-context) from the kubeconfig at
// `path`. Relative file paths inside resolve against the kubeconfig's
// directory; certificate-authority / client-certificate / client-key files
// are read now, tokenFile is checked to be readable and kept as a path.
// Errors name the file and the field, e.g.
//   "/x/kubeconfig: users[0].user.client-key-data: not valid base64"
// NotFound if `path` does not exist; InvalidArgument for malformed YAML,
// missing or dangling references (context -> cluster/user), undecodable
// data, unreadable referenced files, unsupported auth (exec plugins,
// auth-provider).
absl::StatusOr<Config> LoadKubeconfig(const std::string& path,
                                      const std::string& context_name = "");

// The service-account directory mounted into every pod.
inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

// Configuration for a pod: server from $KUBERNETES_SERVICE_HOST and
// $KUBERNETES_SERVICE_PORT, CA from <sa_dir>/ca.crt, token from
// <sa_dir>/token (as token_file, so rotation is picked up), namespace from
// <sa_dir>/namespace. FailedPrecondition if the environment variables are
// unset; NotFound/InvalidArgument (naming the file) if the token or CA is
// missing or unreadable.
absl::StatusOr<Config> LoadInCluster(const std::string& sa_dir = kServiceAccountDir);

// The usual precedence: `flag_path` if non-empty; else the first entry of
// $KUBECONFIG (a colon-separated list) if set; else in-cluster if
// $KUBERNETES_SERVICE_HOST is set; else $HOME/.kube/config if it exists.
// The chosen source's errors are returned as they are; if no source
// applies, NotFound whose message lists everything that was tried.
absl::StatusOr<Config> LoadDefault(const std::string& flag_path,
                                   const std::string& context_name = "");

}  // namespace braid::kube

#endif  // BRAID_KUBE_CONFIG_H_
