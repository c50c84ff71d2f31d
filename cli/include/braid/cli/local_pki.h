// Per-run certificates for `braid run`: mTLS on loopback by default, so the
// local runtime exercises the same identity checks as a cluster.
#ifndef BRAID_CLI_LOCAL_PKI_H_
#define BRAID_CLI_LOCAL_PKI_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "braid/core/pki.h"
#include "braid/core/spec.h"

namespace braid::cli {

struct LocalPki {
  pki::TlsFiles aggregator;                       // server: 127.0.0.1, localhost
  pki::TlsFiles cli;                              // "operator": status polling
  std::map<std::string, pki::TlsFiles> tenants;  // tenant -> its workers' identity
};

// Makes a fresh CA and the certificates above under `dir` (created 0700;
// keys 0600), valid for 30 days. Each run makes new ones, so a key never
// outlives the run that used it by design rather than by luck.
absl::StatusOr<LocalPki> MakeLocalPki(const std::string& dir, const spec::JobSpec& job);

// The flags that hand `files` to braid-aggregator or braid-worker.
std::vector<std::string> TlsFlags(const pki::TlsFiles& files);

}  // namespace braid::cli

#endif  // BRAID_CLI_LOCAL_PKI_H_
