// The body of braid-aggregator (main.cc) and of its test-only twin
// braid-aggregator-testing: flags, the job, the checkpoint, the engine and
// the gRPC server.
#include "aggregator_main.h"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "braid/aggregator/admission_audit.h"
#include "braid/aggregator/checkpoint.h"
#include "braid/aggregator/federation_service.h"
#include "braid/aggregator/malloc_tuning.h"
#include "braid/aggregator/metrics.h"
#include "braid/aggregator/round_engine.h"
#include "braid/aggregator/strategy_factory.h"
#include "braid/core/audit_log.h"
#include "braid/core/cli_flags.h"
#include "braid/core/file_io.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/spec.h"
#include "braid/core/wire_limits.h"

ABSL_FLAG(std::string, job, "", "FederatedJob file (required)");
ABSL_FLAG(std::string, tls_ca, "",
          "the job's CA certificate (PEM); with --tls-cert and --tls-key the server runs mTLS "
          "and binds each worker to the tenant its certificate names");
ABSL_FLAG(std::string, tls_cert, "", "the aggregator's certificate (PEM)");
ABSL_FLAG(std::string, tls_key, "", "the aggregator's private key (PEM)");
ABSL_FLAG(std::string, tls_client_ca_extra, "",
          "multi-site: the federation CA (PEM), trusted besides --tls-ca for client "
          "certificates only; a certificate it issued with CN site:<s> speaks for the job's "
          "tenant whose site is <s>, and for nothing else; needs --site-admission");
ABSL_FLAG(std::string, site_admission, "",
          "multi-site: the sites the coordinator admits now (JSON, {\"sites\": {\"<s>\": "
          "{\"uid\": \"<Site uid>\"}}}), read again whenever it changes; a site not listed, "
          "or a certificate issued for another uid, is refused at its next call");
ABSL_FLAG(std::string, checkpoint_dir, "", "directory for the checkpoint (required)");
ABSL_FLAG(std::string, initial_model, "",
          "safetensors file with the initial weights (when the checkpoint is empty)");
ABSL_FLAG(std::string, listen, "127.0.0.1:0", "gRPC address; port 0 picks a free one");
ABSL_FLAG(std::string, port_file, "", "write the bound gRPC port here");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:0", "Prometheus address; empty disables");
ABSL_FLAG(std::string, metrics_port_file, "", "write the bound metrics port here");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(2), "how often workers heartbeat");
ABSL_FLAG(absl::Duration, heartbeat_timeout, absl::Seconds(10),
          "a worker silent this long is declared lost");
ABSL_FLAG(absl::Duration, start_grace, absl::Seconds(10),
          "how long a round waits for all workers before starting with minClients");
ABSL_FLAG(int, expected_clients, 0,
          "workers a round waits for before start_grace (default: the job's total replicas; "
          "fewer when tenants refused consent)");
ABSL_FLAG(std::string, admission_file, "",
          "admission.json written by the operator (job creation, tenants' consent); what "
          "changes in it is appended to the audit log (see admission_audit.h)");
ABSL_FLAG(int, upload_slots, 1, "updates received at once (each holds one model-sized buffer)");
ABSL_FLAG(int, download_slots, 4, "weight downloads streamed at once");
ABSL_FLAG(int, stream_window_kib, 256,
          "HTTP/2 receive window per stream: what a queued upload may buffer, in KiB");
ABSL_FLAG(absl::Duration, upload_progress_timeout, absl::Seconds(30),
          "an update stream that sends no header, or less than 1 MiB, for this long is "
          "cancelled; its slot goes to the next upload and its worker is out of the round");
ABSL_FLAG(int, max_threads, 0,
          "gRPC server threads (each call in flight holds one); 0: 4 per declared replica + 2 "
          "per tenant + 32. Each tenant may have 4 x its replicas + 2 calls in flight");
ABSL_FLAG(absl::Duration, linger, absl::Seconds(5),
          "after the job ends, keep answering so workers learn it");

namespace braid::aggregator {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

bool WriteText(const std::string& path, const std::string& text) {
  if (path.empty()) return true;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << text << "\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Why the log at `path` does not hold the chain `anchor` (state.json's,
// from before this start) recorded, or "" when it does: entries after the
// anchor are fine (a crash after an append and before state.json was
// replaced, or `braid run`'s own appends).
std::string AnchorProblem(const std::string& path, const audit::Anchor& anchor) {
  if (anchor.entries == 0) return "";
  absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(path);
  if (!file.ok()) return std::string(file.status().message());
  const audit::AnchorCheck check = audit::CheckAnchor(*file, anchor);
  return check.ok ? "" : check.problem;
}

}  // namespace

int RunAggregator(const StrategyDecorator& decorate) {
  const std::string job_file = absl::GetFlag(FLAGS_job);
  const std::string dir = absl::GetFlag(FLAGS_checkpoint_dir);
  if (job_file.empty() || dir.empty()) {
    std::cerr << "braid-aggregator: --job and --checkpoint-dir are required\n";
    return 2;
  }
  spec::ParseOptions parse_options;
  parse_options.check_files = false;  // data stays with the tenants
  parse_options.confine_paths = false;  // and the aggregator reads none of its paths
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobFile(job_file, parse_options);
  if (!job.ok()) {
    std::cerr << "braid-aggregator: " << job_file << ":\n" << job.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<aggregator::Checkpoint> checkpoint =
      aggregator::Checkpoint::Open(dir, job->name, absl::GetFlag(FLAGS_initial_model));
  if (!checkpoint.ok()) {
    std::cerr << "braid-aggregator: " << checkpoint.status().message() << "\n";
    return 2;
  }
  if (!checkpoint->state().history.empty()) {
    std::cerr << "aggregator: resuming job " << job->name << " after round "
              << checkpoint->state().history.back().round << " from " << dir << "\n";
  }

  // The audit trail beside the checkpoint; a restarted aggregator continues
  // its chain.
  // Its head is anchored in state.json after every append; a log that no
  // longer holds the anchored chain (entries cut or rewritten while the
  // aggregator was down) is said so in the chain before it goes on.
  const std::string audit_job = job->namespace_ + "/" + job->name;
  const std::string audit_path = (std::filesystem::path(dir) / audit::kFileName).string();
  const audit::Anchor anchor = checkpoint->audit_anchor();
  const std::string anchor_problem = AnchorProblem(audit_path, anchor);
  absl::StatusOr<std::unique_ptr<audit::AuditLog>> audit_log = audit::AuditLog::Open(audit_path);
  if (audit_log.ok()) {
    aggregator::Checkpoint* const cp = &*checkpoint;
    (*audit_log)->OnAppend([cp](const audit::Entry& e) {
      if (absl::Status s = cp->WriteAuditAnchor({e.seq, e.hash}); !s.ok()) {
        std::cerr << "braid-aggregator: audit anchor: " << s.message() << "\n";
      }
    });
  }
  if (audit_log.ok() && !anchor_problem.empty()) {
    std::cerr << "braid-aggregator: " << audit_path
              << ": does not match the anchor in state.json: " << anchor_problem << "\n";
    absl::StatusOr<audit::Entry> mismatch = (*audit_log)->Append(
        audit::kAnchorMismatch, "aggregator", audit_job,
        {{"anchor_entries", anchor.entries},
         {"anchor_head", anchor.head},
         {"problem", anchor_problem}});
    if (!mismatch.ok()) {
      std::cerr << "braid-aggregator: audit log: " << mismatch.status().message() << "\n";
      return 1;
    }
  }
  absl::StatusOr<audit::Entry> started =
      audit_log.ok() ? (*audit_log)->Append(
                           audit::kJobStarted, "aggregator", audit_job,
                           {{"rounds", job->strategy.rounds},
                            {"checkpoint_phase", checkpoint->state().phase},
                            {"resumed_after_round",
                             checkpoint->state().history.empty()
                                 ? 0
                                 : checkpoint->state().history.back().round}})
                     : absl::StatusOr<audit::Entry>(audit_log.status());
  if (!started.ok()) {
    std::cerr << "braid-aggregator: audit log: " << started.status().message() << "\n";
    return 1;
  }

  aggregator::AdmissionAudit admission(absl::GetFlag(FLAGS_admission_file), audit_log->get(),
                                      audit_job);
  if (absl::Status s = admission.Poll(); !s.ok()) {
    std::cerr << "braid-aggregator: audit log: " << s.message() << "\n";
  }

  aggregator::AggregatorMetrics metrics(job->name);
  if (const std::string addr = absl::GetFlag(FLAGS_metrics_listen); !addr.empty()) {
    absl::StatusOr<int> port = metrics.Serve(addr);
    if (!port.ok()) {
      std::cerr << "braid-aggregator: " << port.status().message() << "\n";
      return 1;
    }
    WriteText(absl::GetFlag(FLAGS_metrics_port_file), std::to_string(*port));
  }

  aggregator::EngineOptions options;
  options.job = job->name;
  options.rounds = job->strategy.rounds;
  options.min_clients = job->strategy.min_clients;
  options.min_tenants = job->strategy.min_tenants;
  for (const spec::Tenant& t : job->tenants) options.tenants[t.name] = t.replicas;
  options.fraction_fit = job->strategy.fraction_fit;
  options.expected_clients = absl::GetFlag(FLAGS_expected_clients) > 0
                                 ? absl::GetFlag(FLAGS_expected_clients)
                                 : job->TotalReplicas();
  options.round_timeout = absl::Seconds(job->strategy.round_timeout_seconds);
  options.heartbeat_timeout = absl::GetFlag(FLAGS_heartbeat_timeout);
  options.start_grace = absl::GetFlag(FLAGS_start_grace);
  options.upload_slots = absl::GetFlag(FLAGS_upload_slots);
  options.seed = static_cast<uint64_t>(job->training.seed);
  options.max_update_norm = job->strategy.max_update_norm;
  options.weighting.weighting = job->strategy.weighting == "uniform"
                                    ? aggregator::Weighting::kUniform
                                    : aggregator::Weighting::kExamples;
  for (const spec::Tenant& t : job->tenants) options.weighting.max_examples[t.name] = t.max_examples;
  if (job->privacy.differential_privacy) {
    const spec::DifferentialPrivacy& dp = job->privacy.dp;
    options.dp.enabled = true;
    options.dp.clip_norm = dp.clip_norm;
    options.dp.noise_multiplier = dp.noise_multiplier;
    options.dp.delta = dp.delta;
    options.dp.max_epsilon = dp.max_epsilon;
    options.dp.central_noise = dp.mode == "central";
  }
  if (job->privacy.secure_aggregation) {
    const spec::SecureAggregationSettings& sa = job->privacy.secagg;
    options.secagg.enabled = true;
    options.secagg.threshold = sa.threshold;
    options.secagg.neighbours = sa.neighbours;
    options.secagg.quantization_range = sa.quantization_range;
    options.secagg.stage_timeout = absl::Seconds(sa.stage_timeout_seconds);
  }
  options.strategy = job->strategy.name;
  options.server_optimizer = job->strategy.server;
  options.robust_aggregation = job->strategy.robust;
  options.spill_dir = absl::GetFlag(FLAGS_checkpoint_dir) + "/spill";
  options.audit = audit_log->get();
  options.audit_job = audit_job;
  absl::StatusOr<std::unique_ptr<AggregationStrategy>> strategy =
      CreateStrategy(StrategyOptionsOf(options));
  if (strategy.ok() && decorate) strategy = decorate(*std::move(strategy));
  if (!strategy.ok()) {
    std::cerr << "braid-aggregator: " << job_file << ": " << strategy.status().message() << "\n";
    return 2;
  }
  aggregator::RoundEngine engine(options, &*checkpoint, &metrics, /*clock=*/nullptr,
                                 *std::move(strategy));
  absl::StatusOr<std::optional<pki::TlsMaterial>> tls = LoadTls(
      {absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key)});
  if (!tls.ok()) {
    std::cerr << "braid-aggregator: " << tls.status().message() << "\n";
    return 2;
  }
  // Site certificates (multi-site): the federation CA verifies client
  // certificates too, and the binding admits its "site:" certificates only.
  std::string site_ca;
  if (const std::string extra = absl::GetFlag(FLAGS_tls_client_ca_extra); !extra.empty()) {
    if (!tls->has_value()) {
      std::cerr << "braid-aggregator: --tls-client-ca-extra needs mTLS (--tls-ca, --tls-cert, "
                   "--tls-key)\n";
      return 2;
    }
    absl::StatusOr<std::string> pem = ReadSmallFile(extra, 1 << 20);
    if (!pem.ok()) {
      std::cerr << "braid-aggregator: --tls-client-ca-extra: " << pem.status().message() << "\n";
      return 2;
    }
    site_ca = *std::move(pem);
  }
  std::shared_ptr<aggregator::SiteAdmission> site_admission;
  if (const std::string path = absl::GetFlag(FLAGS_site_admission); !path.empty()) {
    absl::StatusOr<std::unique_ptr<aggregator::SiteAdmission>> opened =
        aggregator::SiteAdmission::Open(path);
    if (!opened.ok()) {
      std::cerr << "braid-aggregator: --site-admission: " << opened.status().message() << "\n";
      return 2;
    }
    site_admission = *std::move(opened);
  }
  absl::StatusOr<aggregator::PeerBinding> binding = aggregator::PeerBinding::Create(
      *job, tls->has_value() ? (*tls)->ca_pem : std::string(), site_ca, std::move(site_admission));
  if (!binding.ok()) {
    std::cerr << "braid-aggregator: " << binding.status().message() << "\n";
    return 2;
  }
  if (!site_ca.empty()) (*tls)->ca_pem += "\n" + site_ca;  // verifies clients only
  aggregator::ServiceLimits limits;
  limits.progress_timeout = absl::GetFlag(FLAGS_upload_progress_timeout);
  limits.tenants = options.tenants;
  aggregator::FederationService service(job->name, &engine, &metrics,
                                        absl::GetFlag(FLAGS_heartbeat_interval),
                                        absl::GetFlag(FLAGS_download_slots),
                                        /*require_identity=*/tls->has_value(), limits,
                                        *std::move(binding));

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), ServerCredentials(*tls), &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&service);
  // Bounded server threads: every tenant's call limit (ServiceLimits) fits
  // in the budget, so one tenant's flood cannot take the threads the others
  // need; past the budget gRPC answers RESOURCE_EXHAUSTED (workers retry).
  const int max_threads = absl::GetFlag(FLAGS_max_threads) > 0
                              ? absl::GetFlag(FLAGS_max_threads)
                              : aggregator::ServerThreadBudget(limits);
  grpc::ResourceQuota quota("braid-aggregator");
  quota.SetMaxThreads(max_threads);
  builder.SetResourceQuota(quota);
  // Streams per connection: an honest worker has a few at once.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 32);
  // Bound what the transport buffers for streams the service has not read
  // yet (clients queued for an upload slot): a fixed per-stream window
  // instead of gRPC's adaptive one, which grows to megabytes per stream and
  // makes memory grow with the number of clients.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
                             absl::GetFlag(FLAGS_stream_window_kib) << 10);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "braid-aggregator: cannot listen on " << absl::GetFlag(FLAGS_listen) << "\n";
    return 1;
  }
  WriteText(absl::GetFlag(FLAGS_port_file), std::to_string(port));
  std::cerr << "aggregator: job " << job->name << " serving on port " << port << "\n";

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  absl::Time ended = absl::InfiniteFuture();
  absl::Time admission_polled = absl::Now();
  std::string admission_error;
  while (!g_stop) {
    engine.Tick();
    // Consent changes reach a mounted ConfigMap within a minute or so;
    // polling every few seconds is plenty.
    if (absl::Now() - admission_polled > absl::Seconds(3)) {
      admission_polled = absl::Now();
      const absl::Status s = admission.Poll();
      if (!s.ok() && std::string(s.message()) != admission_error) {
        std::cerr << "braid-aggregator: audit log: " << s.message() << "\n";
      }
      admission_error = s.ok() ? "" : std::string(s.message());
    }
    if (engine.Finished() && ended == absl::InfiniteFuture()) ended = absl::Now();
    if (absl::Now() - ended > absl::GetFlag(FLAGS_linger)) break;
    engine.AwaitCloseDue(absl::Milliseconds(100));
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  const aggregator::EngineStatus status = engine.Status();
  std::cerr << "aggregator: " << status.phase << " " << status.reason << ": " << status.message
            << "\n";
  if (status.phase == "Failed") return 3;
  return status.phase == "Succeeded" ? 0 : 1;
}

}  // namespace braid::aggregator
