// The FederatedJob spec: one typed, validated value parsed from the job file.
//
// The job file is the user's contract: the same YAML is `kubectl apply`-ed and
// run with `braid run`. Every consumer (CLI, aggregator, worker, operator) reads
// it through ParseJobFile/ParseJobYaml, so defaults and validation live here
// only.
#ifndef BRAID_CORE_SPEC_H_
#define BRAID_CORE_SPEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace braid::spec {

// One validation problem, with the path of the offending field in the job,
// e.g. {"spec.tenants[1].data.path", "no such file: data/x.csv"}.
struct FieldError {
  std::string path;
  std::string message;
  std::string ToString() const { return path + ": " + message; }
};

// Where a tenant's (or the pooled evaluation) data lives. Exactly one of
// `path` or `claim_name` is set. Relative paths are resolved against the
// directory of the job file (see ResolvedPath).
struct DataSource {
  std::string path;        // local file; "" when a PVC is used
  std::string claim_name;  // persistentVolumeClaim.claimName (Kubernetes only)
  std::string sub_path;    // persistentVolumeClaim.subPath (optional)
};

// A tenant either names its data (`data`, this cluster or `braid run`) or
// names a site and one of that site's datasets (`site` + `dataset`,
// multi-site: the site's own Tenant maps the dataset to its claim, so the
// job never holds a claim name or path of a site). Never both.
struct Tenant {
  std::string name;       // DNS-1123 label, unique within the job
  std::string namespace_; // Kubernetes namespace (DNS-1123 label); "" = the job's namespace;
                          // always "" for a site tenant (the site places its workers)
  int replicas = 1;       // 1..1000 workers for this tenant; each trains on a 1/replicas shard
  DataSource data;        // empty for a site tenant
  // spec.tenants[].site: the enrolled site (a Site object in the coordinator
  // cluster, DNS-1123 label) whose workers train this tenant; "" = a tenant
  // of this cluster. A site is named by at most one tenant of a job, so its
  // certificate ("site:<site>") identifies exactly one tenant.
  std::string site;
  // spec.tenants[].dataset: with site (and only then, required), the logical
  // name of the data at the site (a DNS-1123 subdomain, <= 253 characters),
  // looked up in the site's Tenant spec.datasets.
  std::string dataset;
  // maxExamples: the most training examples one worker of this tenant may
  // claim for an update, in [1, kMaxExamples]; a larger claim counts for this
  // many. 0 (absent) = none declared: the tenant then weighs at most as much
  // as the heaviest other tenant of a round (docs/job-file.md).
  int64_t max_examples = 0;

  bool IsSite() const { return !site.empty(); }
};

struct MlpModel {
  std::vector<int> hidden = {64, 64};  // hidden layer widths; each 1..65536, at most 64 layers
  int num_classes = 2;                 // 2..100000
};

// A LoRA adapter on a decoder LLM (spec.model.adapter). Only the adapter
// trains and travels; the base weights stay frozen.
struct Adapter {
  std::string type = "lora";        // only "lora"
  int rank = 8;                     // 1..4096
  double alpha = 16;                // (0, 100000]; the update is scaled by alpha / rank
  double dropout = 0.0;             // [0, 1)
  // Module names (Hugging Face's, as PEFT's target_modules), 1..64 unique
  // names of 1..128 characters [A-Za-z0-9_.]. Default by kind: llama
  // [q_proj, v_proj]; gpt2 [c_attn].
  std::vector<std::string> targets;
  // writeMerged: besides the adapter, the job's output holds the base with
  // the adapter merged in (a plain checkpoint folder, as large as the base).
  bool write_merged = false;
};

struct Model {
  std::string kind = "mlp";  // "mlp" | "llama" | "gpt2"
  MlpModel mlp;              // kind mlp only
  // kind llama / gpt2 only (required there): the Hugging Face checkpoint
  // folder (config.json, *.safetensors, tokenizer.json or tokenizer.model).
  // With a local path, ParseOptions::check_files requires an existing,
  // readable directory.
  DataSource base;
  Adapter adapter;           // kind llama / gpt2 only; defaults as above

  bool IsLanguageModel() const { return kind == "llama" || kind == "gpt2"; }
};

// How worker processes read their data. format "csv" (tabular, kind mlp)
// uses features and label; format "jsonl" (text, kind llama / gpt2) uses
// max_length and packing. Fields of the other format are refused in the file.
struct DataSchema {
  std::string format = "csv";          // "csv" (default for mlp) | "jsonl" (default for LLMs)
  std::vector<std::string> features;   // csv: column names, 1..65536 of them, unique; each
                                       // 1..256 bytes without ',', '"' or line breaks
  std::string label = "label";         // csv: integer class column, 0..num_classes-1
  double eval_fraction = 0.2;          // (0, 0.9]: local eval split of each tenant
  int max_length = 512;                // jsonl: tokens per example / packed block, 8..131072
  bool packing = false;                // jsonl: pack examples into max_length blocks
                                       // (false: one padded example per row)
};

// A server-side optimizer over the round's averaged update (the
// "pseudo-gradient"), as Flower's FedAvgM and FedOpt strategies apply it
// (Reddi et al. 2021, "Adaptive Federated Optimization"; Hsu et al. 2019
// for FedAvgM). Fields a strategy does not use are refused in the job file;
// those not given take Flower's defaults for the strategy (the parser sets
// them, so the values here are always the ones in force).
struct ServerOptimizer {
  // fedavgm: server_learning_rate; fedadam, fedyogi, fedadagrad: eta.
  double learning_rate = 1.0;
  double momentum = 0;  // fedavgm: server_momentum, [0, 1)
  double beta1 = 0;     // fedadam, fedyogi: [0, 1); fedadagrad: 0 (as Flower)
  double beta2 = 0;     // fedadam, fedyogi: [0, 1)
  double tau = 0;       // fedadam, fedyogi, fedadagrad: adaptivity, (0, 1]
};

// Robust aggregation, as Flower's FedMedian, FedTrimmedAvg, Krum and Bulyan:
// each round's updates are all kept (spilled to disk) and combined
// coordinate-wise or by pairwise distances, so that a few outlying (e.g.
// poisoned) updates cannot move the model far. They need every single
// update, so neither secure aggregation nor differential privacy.
struct RobustAggregation {
  int byzantine_clients = 0;  // krum, multikrum, bulyan: f (num_malicious_clients)
  int keep_clients = 0;       // multikrum: updates averaged (num_clients_to_keep), >= 1
  double trim_fraction = 0.2;  // trimmedmean: cut from each end (beta), [0, 0.5)
};

// Whether `name` is a robust aggregation (median, trimmedmean, krum,
// multikrum, bulyan).
bool IsRobustAggregation(const std::string& name);

struct Strategy {
  // fedavg (default); fedprox (FedAvg with a proximal term in the workers'
  // loss); with a server optimizer: fedavgm, fedadam, fedyogi, fedadagrad;
  // robust: median, trimmedmean, krum, multikrum, bulyan.
  std::string name = "fedavg";
  // fedprox: mu of the proximal term mu/2 * ||w - w_global||^2 each worker
  // adds to its training loss (Li et al. 2020; Flower's proximal_mu), [0, 1000].
  double proximal_mu = 0;
  ServerOptimizer server;  // meaningful for the server-optimizer strategies
  RobustAggregation robust;  // meaningful for the robust ones
  int rounds = 10;               // 1..100000
  int min_clients = 1;           // >= 1; <= total replicas
  // strategy.minTenants: distinct tenants whose updates a round needs; a
  // round neither starts nor closes with fewer, so no tenant can run a
  // "federation" alone (e.g. as several replicas). 1..number of tenants;
  // when not given, the parser sets min(2, number of tenants).
  int min_tenants = 0;
  double fraction_fit = 1.0;     // (0, 1]
  // "30s", "5m", "1h30m", "250ms" or a number of seconds in YAML; (0, 168h].
  double round_timeout_seconds = 300;  // whole seconds when given as a number
  // strategy.maxUpdateNorm: the aggregator refuses (and counts) an update
  // whose L2 norm exceeds this, before it reaches the sum; a bound against
  // broken or hostile clients. 0 (the default) = no bound; else (0, 1e12].
  double max_update_norm = 0;
  // strategy.weighting: what an update weighs in the average. "examples"
  // (default): the examples its worker claims, capped (tenants[].maxExamples);
  // "uniform": every update the same.
  std::string weighting = "examples";
};

// spec.privacy.differentialPrivacy: client-level DP-FedAvg (McMahan et al.
// 2018). Each client's update is clipped to L2 norm clip_norm; Gaussian noise
// of stddev noise_multiplier * clip_norm is added to the round's sum (by the
// aggregator in mode "central"; split across clients before masking in mode
// "distributed", which needs secure aggregation); the average uses uniform
// client weights over the fixed number of sampled clients. An RDP accountant
// tracks epsilon at delta; a round that would take epsilon above max_epsilon
// is not started and the job ends with reason PrivacyBudgetExhausted.
struct DifferentialPrivacy {
  double clip_norm = 1.0;         // clipNorm, (0, 1e6]
  double noise_multiplier = 1.0;  // noiseMultiplier, (0, 1000]
  double delta = 1e-5;            // (0, 0.1]
  double max_epsilon = 0;         // maxEpsilon, required, (0, 1000]
  std::string mode = "central";   // "central" | "distributed"
};

// spec.privacy.secureAggregationSettings (only with secureAggregation:
// true); see docs/security.md for the protocol and what each knob trades.
struct SecureAggregationSettings {
  // threshold: shares that rebuild a client's secrets, as a fraction of its
  // share holders, (0, 1]: t = max(2, ceil(threshold * holders)); a round
  // survives while >= t remain. 0 (absent) = a majority (holders / 2 + 1).
  double threshold = 0;
  // neighbours: -1 (absent) = automatic (complete graph up to 16 clients per
  // round, else SecAgg+ with the smallest even k >= 2 * ceil(log2 n));
  // 0 = complete graph; an even k in [2, 1000] = SecAgg+ with k neighbours.
  int neighbours = -1;
  // quantizationRange: every element of the weighted (and noised) update is
  // clipped to [-r, r] before it is encoded; (0, 1e6], default 1.
  double quantization_range = 1.0;
  // stageTimeout: deadline of each key stage (advertise, share, unmask);
  // the masked-input stage has strategy.roundTimeout. Default 60 s.
  double stage_timeout_seconds = 60;
};

// spec.privacy. Both mechanisms are off by default.
struct Privacy {
  // secureAggregation: the aggregator sees only the sum of a round's
  // updates (SecAgg / SecAgg+ over the gRPC protocol; docs/security.md).
  bool secure_aggregation = false;
  SecureAggregationSettings secagg;  // meaningful when secure_aggregation
  bool differential_privacy = false;  // differentialPrivacy given
  DifferentialPrivacy dp;             // meaningful when differential_privacy
};

struct Training {
  int local_epochs = 1;          // 1..10000
  int batch_size = 32;           // 1..1048576
  double learning_rate = 0.01;   // (0, 10]
  std::string optimizer = "sgd"; // "sgd" | "adam"
  int64_t seed = 0;              // >= 0; makes init, shuffling and splits reproducible
};

struct Evaluation {
  DataSource pooled;             // optional pooled held-out set (path empty = none)
};

struct JobSpec {
  std::string api_version;       // "braid.dev/v1alpha1"
  std::string kind;              // "FederatedJob"
  std::string name;              // metadata.name, DNS-1123 label
  std::string namespace_;        // metadata.namespace, default "default"
  std::string base_dir;          // directory of the job file; "" for in-memory YAML
  // spec.suspend: on Kubernetes the operator keeps (or scales) the job's pods
  // at zero while true and resumes from the last checkpoint when cleared;
  // `braid run` refuses a suspended job.
  bool suspend = false;
  Model model;
  DataSchema data;
  Strategy strategy;
  Training training;
  Evaluation evaluation;
  Privacy privacy;
  std::vector<Tenant> tenants;   // 1..kMaxTenants, names unique

  // Total worker processes: the sum of tenants[*].replicas.
  int TotalReplicas() const;
};

// Options for parsing.
struct ParseOptions {
  // When true (the default), local data paths must exist and be readable
  // regular files, and persistentVolumeClaim data sources are errors (only
  // Kubernetes can mount them), and so are site tenants (spec.tenants[].site:
  // `braid run` and `braid validate` have no sites); the operator sets false
  // because paths are resolved in pods.
  bool check_files = true;
  // Local paths (spec.tenants[*].data.path, spec.model.base.path,
  // spec.evaluation.pooled.path) are confined to the job file's folder:
  // relative ones resolve against it, and a path that leaves it (absolute
  // elsewhere, "..", or a symbolic link whose target is outside) is an error
  // naming the field, unless it lies inside one of `allowed_dirs`. Without a
  // base_dir (the operator) only relative paths without ".." escapes are
  // accepted. With a base_dir, symbolic links are resolved on the file
  // system (the path and, for spec.model.base, every file in the folder).
  // allowed_dirs: absolute directories (`braid run --allow-path DIR`);
  // default none.
  std::vector<std::string> allowed_dirs;
  // false only for a program that reads none of those paths (the
  // aggregator): skips the confinement above. Default true.
  bool confine_paths = true;
};

// `path` made absolute against `job.base_dir` when it is relative (and
// lexically normalized). Absolute paths, and any path when base_dir is "",
// are returned unchanged.
std::string ResolvedPath(const JobSpec& job, const std::string& path);

// Parses and validates YAML text. On success returns the spec with defaults
// applied. On failure returns InvalidArgument whose message lists every
// problem found, one "path: message" per line (all problems at once, not the
// first), in document order where possible. Problems with the text as a whole
// (size, encoding, YAML syntax with "line L, column C", not exactly one
// document) have the path "<file>" and are reported alone. At most 100
// problems are listed; a last line "<file>: N more errors not shown" counts
// the rest. Never crashes or allocates without bound: input larger than
// kMaxJobBytes, nesting deeper than the YAML library's guard, alias bombs and
// oversized lists or strings are refused with an error. `base_dir` resolves
// relative paths. Unknown fields are errors, except top-level `status` and
// the ObjectMeta fields the API server writes (labels, annotations, uid, ...),
// which are ignored. Thread-safe: no shared state.
absl::StatusOr<JobSpec> ParseJobYaml(std::string_view yaml, std::string_view base_dir,
                                     const ParseOptions& options = {});

// Reads `file` and calls ParseJobYaml with its absolute directory as
// base_dir. A missing file is NotFound naming the file; a directory, an
// unreadable file or one larger than kMaxJobBytes (refused after reading
// kMaxJobBytes + 1 bytes) is InvalidArgument naming the file.
absl::StatusOr<JobSpec> ParseJobFile(const std::string& file,
                                     const ParseOptions& options = {});

// The same problems as a list, for callers that print them one per line or
// set conditions. Empty when the YAML is valid.
std::vector<FieldError> ValidateJobYaml(std::string_view yaml, std::string_view base_dir,
                                        const ParseOptions& options = {});

inline constexpr size_t kMaxJobBytes = 1 << 20;  // 1 MiB
inline constexpr int kMaxTenants = 1000;
// The most examples a worker may claim, and the bound of maxExamples: 2^40.
inline constexpr int64_t kMaxExamples = int64_t{1} << 40;
// The most worker processes (the sum of the tenants' replicas) a job may ask
// for anywhere, the operator included; `braid run` has a lower bound of its
// own (job_footprint.h).
inline constexpr int kMaxWorkerProcesses = 10000;
// The largest MLP a job may declare: 1e9 parameters (4 GB of float32).
inline constexpr int64_t kMaxMlpParameters = 1000000000;

}  // namespace braid::spec

#endif  // BRAID_CORE_SPEC_H_
