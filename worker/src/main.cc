// braid-worker: one tenant replica's trainer, plus the single-process tools
// `braid run` uses (initial model, pooled evaluation, local-only baseline).
//
//   braid-worker run --job F --tenant T --replica I --aggregator HOST:PORT
//   braid-worker init --job F --out MODEL.safetensors
//   braid-worker evaluate --job F --model M --data CSV   (JSON on stdout)
//   braid-worker local --job F --tenant T --out M        (JSON on stdout)
//   braid-worker export --job F --model M --out DIR      (LLM jobs: the adapter
//                                                         in PEFT's layout)
//
// Exit status: 0 done, 2 bad arguments/job/data, 1 other errors.
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "braid/core/cli_flags.h"
#include "braid/core/clock.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/port_file.h"
#include "braid/core/safetensors.h"
#include "braid/core/spec.h"
#include "braid/core/status_macros.h"
#include "braid/worker/federation_client.h"
#include "braid/worker/job_replica_trainer.h"
#include "braid/worker/job_trainer.h"
#include "braid/worker/replica_loop.h"

ABSL_FLAG(std::string, job, "", "FederatedJob file");
ABSL_FLAG(std::string, tenant, "", "tenant name (run, local)");
ABSL_FLAG(int, replica, 0, "replica index within the tenant (run)");
ABSL_FLAG(std::string, aggregator, "", "aggregator address host:port (run)");
ABSL_FLAG(std::string, aggregator_port_file, "",
          "instead of --aggregator (run, on this machine): wait for this file, written by "
          "braid-aggregator --port-file, and dial 127.0.0.1:<port>; the worker loads its data "
          "and model meanwhile");
ABSL_FLAG(std::string, out, "",
          "output safetensors file (init, local); output folder (export)");
ABSL_FLAG(std::string, model, "", "model safetensors file (evaluate, export)");
ABSL_FLAG(std::string, data, "",
          "CSV / JSONL file to evaluate on (evaluate); for run and local, the tenant's data "
          "file in place of the job's data source (on Kubernetes: inside the mounted claim)");
ABSL_FLAG(std::string, base, "",
          "LLM jobs: the base checkpoint folder in place of spec.model.base (on Kubernetes: "
          "where its claim is mounted)");
ABSL_FLAG(std::vector<std::string>, allow_path, {},
          "folders (comma-separated) outside the job file's folder that the job's local paths "
          "may name, as braid run --allow-path (braid run passes its own on)");
ABSL_FLAG(int, threads, 1, "LibTorch intra-op threads");
ABSL_FLAG(std::string, tls_ca, "",
          "the job's CA certificate (PEM); with --tls-cert and --tls-key the worker speaks mTLS "
          "and its certificate names the tenant it may speak for (run)");
ABSL_FLAG(std::string, tls_cert, "", "this tenant's certificate (PEM) (run)");
ABSL_FLAG(std::string, tls_key, "", "this tenant's private key (PEM) (run)");
ABSL_FLAG(std::string, tls_server_name, "",
          "the name the aggregator's certificate carries when it is not the host in "
          "--aggregator (run; e.g. the Service's DNS name when dialling a forwarded port)");
ABSL_FLAG(absl::Duration, give_up, absl::Minutes(2),
          "exit when the aggregator stays unreachable this long");

namespace braid::worker {
namespace {

using nlohmann::json;

// Parses --job. Commands that read the tenant's data from the job's data
// source (not from --data) check that the files exist; the others (init,
// evaluate, and pods whose claim is mounted at --data) do not, since a job
// for Kubernetes names claims that only the operator can mount.
absl::StatusOr<spec::JobSpec> LoadJob(bool reads_job_data_sources) {
  const std::string file = absl::GetFlag(FLAGS_job);
  if (file.empty()) return absl::InvalidArgumentError("--job is required");
  spec::ParseOptions options;
  options.check_files = reads_job_data_sources && absl::GetFlag(FLAGS_data).empty();
  // The job's own paths stay in its folder whatever the command (init and
  // export read spec.model.base too); --data and --base come from braid run
  // or the operator, not from the job.
  options.allowed_dirs = absl::GetFlag(FLAGS_allow_path);
  return spec::ParseJobFile(file, options);
}

absl::StatusOr<const spec::Tenant*> FindTenant(const spec::JobSpec& job, const std::string& name) {
  for (const spec::Tenant& t : job.tenants) {
    if (t.name == name) return &t;
  }
  return absl::InvalidArgumentError(absl::StrCat("--tenant: job ", job.name,
                                                 " has no tenant named '", name, "'"));
}

// The trainer of `tenant`'s replica on its data file (--data, else the
// job's data source).
absl::StatusOr<std::unique_ptr<JobTrainer>> TenantTrainer(const spec::JobSpec& job,
                                                          const spec::Tenant& tenant,
                                                          int replica) {
  TrainerSource source;
  source.base_folder = absl::GetFlag(FLAGS_base);
  source.data_file = absl::GetFlag(FLAGS_data);
  if (source.data_file.empty()) source.data_file = spec::ResolvedPath(job, tenant.data.path);
  source.replica = replica;
  source.replicas = tenant.replicas;
  return JobTrainer::Create(job, source);
}

// Language models report perplexity (and tokens) where classifiers report
// accuracy.
json EvalJson(const spec::JobSpec& job, const EvalResult& r) {
  if (job.model.IsLanguageModel()) {
    return json{{"eval_loss", r.loss}, {"perplexity", r.perplexity},
                {"num_examples", r.num_examples}, {"num_tokens", r.num_tokens}};
  }
  return json{{"eval_loss", r.loss}, {"eval_accuracy", r.accuracy},
              {"num_examples", r.num_examples}};
}

// The job's model without data (init, export).
absl::StatusOr<std::unique_ptr<JobTrainer>> ModelOnly(const spec::JobSpec& job) {
  TrainerSource source;
  source.base_folder = absl::GetFlag(FLAGS_base);
  return JobTrainer::Create(job, source);
}

absl::Status Init() {
  BRAID_ASSIGN_OR_RETURN(spec::JobSpec job, LoadJob(/*reads_job_data_sources=*/false));
  BRAID_ASSIGN_OR_RETURN(auto trainer, ModelOnly(job));
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return absl::InvalidArgumentError("--out is required");
  return safetensors::Write(out, trainer->Weights(), {{"job", job.name}, {"format", "pt"}});
}

absl::Status Evaluate() {
  BRAID_ASSIGN_OR_RETURN(spec::JobSpec job, LoadJob(/*reads_job_data_sources=*/false));
  BRAID_ASSIGN_OR_RETURN(safetensors::File model, safetensors::Read(absl::GetFlag(FLAGS_model)));
  TrainerSource source;
  source.base_folder = absl::GetFlag(FLAGS_base);
  source.data_file = absl::GetFlag(FLAGS_data);
  if (source.data_file.empty()) return absl::InvalidArgumentError("--data is required");
  source.evaluate_only = true;
  BRAID_ASSIGN_OR_RETURN(auto trainer, JobTrainer::Create(job, source));
  BRAID_RETURN_IF_ERROR(trainer->SetWeights(model.tensors));
  BRAID_ASSIGN_OR_RETURN(EvalResult result, trainer->Evaluate());
  std::cout << EvalJson(job, result).dump() << std::endl;
  return absl::OkStatus();
}

// The deliverable of an LLM job's final weights (the adapter in PEFT's
// layout; merged weights when the job asks).
absl::Status Export() {
  BRAID_ASSIGN_OR_RETURN(spec::JobSpec job, LoadJob(/*reads_job_data_sources=*/false));
  BRAID_ASSIGN_OR_RETURN(safetensors::File model, safetensors::Read(absl::GetFlag(FLAGS_model)));
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return absl::InvalidArgumentError("--out is required");
  BRAID_ASSIGN_OR_RETURN(auto trainer, ModelOnly(job));
  BRAID_RETURN_IF_ERROR(trainer->SetWeights(model.tensors));
  return trainer->Export(out);
}

// The local-only baseline: the same model, the same budget (rounds x local
// epochs over the tenant's whole training split), no federation.
absl::Status Local() {
  BRAID_ASSIGN_OR_RETURN(spec::JobSpec job, LoadJob(/*reads_job_data_sources=*/true));
  BRAID_ASSIGN_OR_RETURN(const spec::Tenant* tenant, FindTenant(job, absl::GetFlag(FLAGS_tenant)));
  BRAID_ASSIGN_OR_RETURN(auto trainer, TenantTrainer(job, *tenant, /*replica=*/0));
  FitResult fit;
  for (int round = 1; round <= job.strategy.rounds; ++round) {
    BRAID_ASSIGN_OR_RETURN(fit, trainer->Fit(job.training.local_epochs, round));
  }
  if (const std::string out = absl::GetFlag(FLAGS_out); !out.empty()) {
    BRAID_RETURN_IF_ERROR(safetensors::Write(out, trainer->Weights(),
                                             {{"job", job.name}, {"tenant", tenant->name}}));
  }
  BRAID_ASSIGN_OR_RETURN(EvalResult eval, trainer->Evaluate());
  json result = EvalJson(job, eval);
  result["train_loss"] = fit.loss;
  std::cout << result.dump() << std::endl;
  return absl::OkStatus();
}

absl::Status RunReplica() {
  BRAID_ASSIGN_OR_RETURN(spec::JobSpec job, LoadJob(/*reads_job_data_sources=*/true));
  BRAID_ASSIGN_OR_RETURN(const spec::Tenant* tenant, FindTenant(job, absl::GetFlag(FLAGS_tenant)));
  const int replica = absl::GetFlag(FLAGS_replica);
  if (replica < 0 || replica >= tenant->replicas) {
    return absl::InvalidArgumentError(absl::StrCat("--replica must be in [0, ", tenant->replicas,
                                                   ") for tenant ", tenant->name));
  }
  if (absl::GetFlag(FLAGS_aggregator).empty() == absl::GetFlag(FLAGS_aggregator_port_file).empty()) {
    return absl::InvalidArgumentError("give one of --aggregator and --aggregator-port-file");
  }
  BRAID_ASSIGN_OR_RETURN(
      std::optional<pki::TlsMaterial> tls,
      LoadTls({absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert),
               absl::GetFlag(FLAGS_tls_key)}));
  if (tls.has_value()) tls->server_name = absl::GetFlag(FLAGS_tls_server_name);
  // Each replica holds a disjoint shard of the tenant's train and eval parts.
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<JobTrainer> trainer, TenantTrainer(job, *tenant, replica));
  JobReplicaTrainer replica_trainer(job, replica, std::move(trainer));
  ReplicaLoopOptions options;
  options.job = job.name;
  options.tenant = tenant->name;
  options.replica = replica;
  options.give_up = absl::GetFlag(FLAGS_give_up);
  std::string address = absl::GetFlag(FLAGS_aggregator);
  if (address.empty()) {
    BRAID_ASSIGN_OR_RETURN(const int port, AwaitPortFile(absl::GetFlag(FLAGS_aggregator_port_file),
                                                         options.give_up, RealClock()));
    address = absl::StrCat("127.0.0.1:", port);
  }
  FederationClient client(address, tls);
  return RunReplicaLoop(client, replica_trainer, options);
}

int Main(const std::string& command) {
  torch::set_num_threads(std::max(1, absl::GetFlag(FLAGS_threads)));
  absl::Status status;
  if (command == "run") {
    status = RunReplica();
  } else if (command == "init") {
    status = Init();
  } else if (command == "evaluate") {
    status = Evaluate();
  } else if (command == "local") {
    status = Local();
  } else if (command == "export") {
    status = Export();
  } else {
    std::cerr << "braid-worker: unknown command '" << command
              << "'; use run, init, evaluate, local or export\n";
    return 2;
  }
  if (status.ok()) return 0;
  std::cerr << "braid-worker " << command << ": " << status.message() << "\n";
  return absl::IsInvalidArgument(status) || absl::IsNotFound(status) ? 2 : 1;
}

}  // namespace
}  // namespace braid::worker

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "braid-worker run|init|evaluate|local|export --job FILE [flags]; see --help");
  std::vector<std::string> args = braid::ParseFlags(argc, argv);
  if (args.size() != 2) {
    std::cerr << "usage: braid-worker run|init|evaluate|local|export --job FILE [flags]\n";
    return 2;
  }
  return braid::worker::Main(args[1]);
}
