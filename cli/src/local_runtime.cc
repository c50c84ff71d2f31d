#include "braid/cli/local_runtime.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "braid/cli/local_consent.h"
#include "braid/cli/local_pki.h"
#include "braid/cli/progress_bar.h"
#include "braid/cli/subprocess.h"
#include "braid/control/aggregator_report.h"
#include "braid/control/desired_set.h"
#include "braid/control/job_status.h"
#include "braid/core/audit_log.h"
#include "braid/core/file_io.h"
#include "braid/core/port_file.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/status_macros.h"
#include "braid/v1/federation.grpc.pb.h"

namespace braid::cli {
namespace {

// The folders outside the job's that braid run --allow-path permits, for a
// braid-worker (which confines the job's paths as validation did).
std::string AllowPathArg(const LocalRunOptions& o) {
  return "--allow-path=" + absl::StrJoin(o.allowed_dirs, ",");
}

namespace fs = std::filesystem;
using nlohmann::json;

constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr absl::Duration kToolTimeout = absl::Minutes(30);

// Paths of one run's working directory.
struct Workdir {
  explicit Workdir(const std::string& root)
      : root(fs::absolute(root).string()),
        checkpoint((fs::path(this->root) / "checkpoint").string()),
        logs((fs::path(this->root) / "logs").string()),
        initial_model((fs::path(this->root) / "initial.safetensors").string()),
        model((fs::path(this->root) / "model.safetensors").string()),
        port_file((fs::path(this->root) / "aggregator.port").string()),
        metrics_port_file((fs::path(this->root) / "metrics.port").string()) {}
  std::string Log(const std::string& name) const { return (fs::path(logs) / (name + ".log")).string(); }
  std::string root, checkpoint, logs, initial_model, model, port_file, metrics_port_file;
};

// A checkpoint of a finished run is set aside so the job starts afresh; an
// unfinished one is resumed.
absl::Status PrepareWorkdir(const Workdir& dir, std::ostream* progress, Clock* clock) {
  std::error_code ec;
  fs::create_directories(dir.logs, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(dir.logs, ": ", ec.message()));
  const std::string state = (fs::path(dir.checkpoint) / "state.json").string();
  if (fs::exists(state)) {
    absl::StatusOr<std::string> text = ReadSmallFile(state, 64 << 20);
    const json j = text.ok() ? json::parse(*text, nullptr, false) : json();
    const std::string phase = j.is_object() ? j.value("phase", "") : "";
    if (phase == "Succeeded" || phase == "Failed") {
      // The finished run's audit trail is kept beside, not deleted.
      const fs::path audit_log = fs::path(dir.checkpoint) / audit::kFileName;
      if (fs::exists(audit_log)) {
        const std::string stamp =
            absl::FormatTime("%Y%m%dT%H%M%SZ", clock->Now(), absl::UTCTimeZone());
        fs::rename(audit_log, fs::path(dir.root) / ("audit-" + stamp + ".jsonl"), ec);
        if (ec) return absl::PermissionDeniedError(absl::StrCat(audit_log.string(), ": ", ec.message()));
      }
      fs::remove_all(dir.checkpoint, ec);
    } else if (progress && j.is_object()) {
      *progress << "resuming from " << dir.checkpoint << " after round "
                << j.value("history", json::array()).size() << "\n";
    }
  }
  fs::remove(dir.port_file, ec);
  fs::remove(dir.metrics_port_file, ec);
  return absl::OkStatus();
}

// Waits for the aggregator to write its port; fails if it exits first.
absl::StatusOr<int> AwaitPort(Subprocess& aggregator, const Workdir& dir, Clock* clock) {
  const absl::Time deadline = clock->Now() + kStartTimeout;
  while (clock->Now() < deadline) {
    if (std::optional<int> code = aggregator.Poll()) {
      return absl::FailedPreconditionError(
          absl::StrCat("braid-aggregator exited with ", *code, " at start; see ",
                       dir.Log("aggregator")));
    }
    if (std::optional<int> port = ReadPortFile(dir.port_file)) return *port;
    clock->Sleep(absl::Milliseconds(20), nullptr);
  }
  return absl::DeadlineExceededError("braid-aggregator did not start listening within 60s");
}

// A round as the summary shows it. Language models have no accuracy: their
// rounds show perplexity, exp(eval_loss) (eval_loss is per token). With
// differential privacy (`privacy`) each round shows the epsilon spent after it.
json RoundJson(const spec::JobSpec& job, const v1::RoundRecord& r, bool privacy) {
  json j{{"round", r.round()},
         {"participants", r.participants()},
         {"sampled", r.sampled()},
         {"tenants", std::vector<std::string>(r.tenants().begin(), r.tenants().end())},
         {"train_loss", r.train_loss()},
         {"eval_loss", r.eval_loss()},
         {"seconds", r.seconds()},
         {"bytes_up", r.bytes_up()},
         {"bytes_down", r.bytes_down()}};
  if (job.model.IsLanguageModel()) {
    j["perplexity"] = std::exp(r.eval_loss());
  } else {
    j["eval_accuracy"] = r.eval_accuracy();
  }
  // Each tenant's view of the round's model, on its own eval split.
  json per_tenant = json::object();
  for (const v1::TenantEval& t : r.tenant_eval()) {
    json e{{"eval_loss", t.eval_loss()}, {"num_examples", t.num_examples()}};
    if (job.model.IsLanguageModel()) {
      e["perplexity"] = std::exp(t.eval_loss());
    } else {
      e["eval_accuracy"] = t.eval_accuracy();
    }
    per_tenant[t.tenant()] = e;
  }
  j["tenant_eval"] = per_tenant;
  if (privacy) j["epsilon"] = r.epsilon();
  return j;
}

// A round's figures as the progress line and bar show them.
std::string RoundMetrics(const spec::JobSpec& job, const v1::RoundRecord& r, bool privacy) {
  const bool lm = job.model.IsLanguageModel();
  return absl::StrFormat("eval_loss %.4f  %s %.4f%s", r.eval_loss(),
                         lm ? "perplexity" : "eval_accuracy",
                         lm ? std::exp(r.eval_loss()) : r.eval_accuracy(),
                         privacy ? absl::StrFormat("  epsilon %.4g", r.epsilon()) : std::string());
}

std::string ProgressLine(const spec::JobSpec& job, const v1::RoundRecord& r, int total,
                         bool privacy) {
  return absl::StrFormat("round %d/%d  participants %d/%d  train_loss %.4f  %s  %.1fs", r.round(),
                         total, r.participants(), r.sampled(), r.train_loss(),
                         RoundMetrics(job, r, privacy), r.seconds());
}

// The job's privacy spent, for the summary: {epsilon, delta, maxEpsilon}.
json PrivacyJson(const v1::PrivacyStatus& p) {
  return json{{"epsilon", p.epsilon()}, {"delta", p.delta()}, {"maxEpsilon", p.max_epsilon()}};
}

// Evaluates a model file on the job's pooled held-out set.
absl::StatusOr<json> EvaluatePooled(const LocalRunOptions& o, const spec::JobSpec& job,
                                    const Workdir& dir, const std::string& model,
                                    const std::string& log_name) {
  const std::string worker = (fs::path(o.bin_dir) / "braid-worker").string();
  BRAID_ASSIGN_OR_RETURN(
      std::string out,
      RunForOutput({worker, "evaluate", "--job", o.job_file, AllowPathArg(o), "--model", model, "--data",
                    spec::ResolvedPath(job, job.evaluation.pooled.path)},
                   dir.Log(log_name), kToolTimeout));
  json j = json::parse(out, nullptr, false);
  if (j.is_discarded()) return absl::InternalError("braid-worker evaluate printed no JSON");
  return j;
}

// Each tenant's local-only model with the federated budget, evaluated on
// its own eval split and on the pooled set.
absl::StatusOr<json> RunBaselines(const LocalRunOptions& o, const spec::JobSpec& job,
                                  const Workdir& dir) {
  const std::string worker = (fs::path(o.bin_dir) / "braid-worker").string();
  const fs::path base_dir = fs::path(dir.root) / "baselines";
  fs::create_directories(base_dir);
  // Two at a time: enough for two cores, each trainer is single-threaded.
  struct Running {
    std::string tenant, model, out_path;
    Subprocess proc;
  };
  json baselines = json::object();
  std::vector<Running> running;
  auto finish = [&](Running& r) -> absl::Status {
    const int code = r.proc.Wait(kToolTimeout);
    if (code != 0) {
      return absl::InternalError(absl::StrCat("local-only baseline of ", r.tenant,
                                              " failed; see ", dir.Log("baseline-" + r.tenant)));
    }
    std::ifstream in(r.out_path);
    json local = json::parse(in, nullptr, false);
    json entry{{"local", local}};
    if (!job.evaluation.pooled.path.empty()) {
      BRAID_ASSIGN_OR_RETURN(entry["pooled"],
                             EvaluatePooled(o, job, dir, r.model, "baseline-" + r.tenant + "-eval"));
    }
    baselines[r.tenant] = entry;
    return absl::OkStatus();
  };
  for (const spec::Tenant& t : job.tenants) {
    if (running.size() == 2) {
      BRAID_RETURN_IF_ERROR(finish(running.front()));
      running.erase(running.begin());
    }
    if (o.interrupted && *o.interrupted) return absl::CancelledError("interrupted");
    const std::string model = (base_dir / (t.name + ".safetensors")).string();
    const std::string out_path = (base_dir / (t.name + ".json")).string();
    BRAID_ASSIGN_OR_RETURN(
        Subprocess proc,
        Subprocess::Start({worker, "local", "--job", o.job_file, AllowPathArg(o), "--tenant", t.name, "--out", model},
                          dir.Log("baseline-" + t.name), out_path));
    running.push_back(Running{t.name, model, out_path, std::move(proc)});
  }
  for (Running& r : running) BRAID_RETURN_IF_ERROR(finish(r));
  return baselines;
}

// Appends to the run's audit log and returns the entry written; a failure
// is reported (nullopt), the run goes on.
std::optional<audit::Entry> AuditLocal(const Workdir& dir, const spec::JobSpec& job,
                                       const char* kind, json details, std::ostream* progress) {
  absl::StatusOr<std::unique_ptr<audit::AuditLog>> log =
      audit::AuditLog::Open((fs::path(dir.checkpoint) / audit::kFileName).string());
  const absl::StatusOr<audit::Entry> e =
      log.ok() ? (*log)->Append(kind, "braid run", job.namespace_ + "/" + job.name,
                                std::move(details))
               : absl::StatusOr<audit::Entry>(log.status());
  if (!e.ok()) {
    if (progress) *progress << "audit log: " << e.status().message() << "\n";
    return std::nullopt;
  }
  return *e;
}

// summary.json's "audit": the log's head as last known to this run, the
// aggregator's (its last GetStatus answer) or, when this process appended
// after it, the head of its own last append, and where the log is.
std::optional<json> SummaryAudit(const v1::JobStatus& status,
                                 const std::optional<audit::Entry>& own_last,
                                 const std::string& log) {
  audit::Anchor anchor = control::ReportFromStatus(status).audit;
  if (own_last.has_value() && own_last->seq > anchor.entries) {
    anchor = {own_last->seq, own_last->hash};
  }
  if (anchor.entries == 0) return std::nullopt;
  json j = anchor.ToJson();
  j["log"] = log;
  return j;
}

json EndSummary(const spec::JobSpec& job, const LocalRun& run, const std::string& phase,
                const std::string& reason, const std::string& message) {
  return json{{"job", job.name},      {"phase", phase},     {"reason", reason},
              {"message", message},   {"rounds", json::array()}, {"workdir", run.workdir},
              {"logs", run.logs}};
}

json RoundsJson(const spec::JobSpec& job, const v1::JobStatus& status) {
  json rounds = json::array();
  for (const v1::RoundRecord& r : status.rounds()) {
    rounds.push_back(RoundJson(job, r, status.privacy().enabled()));
  }
  return rounds;
}

// What the local runtime observed, in the operator's terms: every tenant
// resolved (locally there are no claims or namespaces to check), the job
// admitted, the aggregator ready once it listens, every running worker
// ready. Callers fill in what differs (problems, admission, the report).
control::ObservedJob Observed(const spec::JobSpec& job, const LocalRun& run) {
  control::ObservedJob o;
  o.rounds = job.strategy.rounds;
  o.consent = run.consent;
  if (!run.consent.empty()) o.admission = control::DecideAdmission(job, run.consent);
  o.aggregator_endpoint = run.aggregator_address;
  o.aggregator_ready = run.aggregator_address.empty() ? 0 : 1;
  for (const spec::Tenant& t : job.tenants) {
    control::WorkerCounts& counts = o.workers[t.name];
    counts.namespace_ = t.namespace_.empty() ? job.namespace_ : t.namespace_;
    counts.desired = run.stopped.count(t.name) ? 0 : t.replicas;
    counts.ready = counts.desired;
  }
  return o;
}

// The status the operator would write for `observed` (control::ComputeStatus,
// transitions timed by `clock`), kept in `previous` for the next call.
json ComputeLocalStatus(const control::ObservedJob& observed, json* previous, Clock* clock) {
  *previous = control::ComputeStatus(observed, *previous, control::Rfc3339(clock->Now()));
  return *previous;
}

// The runtime's own final word (a refusal, Ctrl-C, the aggregator's exit)
// stands where the aggregator's would.
control::AggregatorReport RuntimeEnding(const spec::JobSpec& job, const std::string& reason,
                                        const std::string& message) {
  control::AggregatorReport r;
  r.job = job.name;
  r.phase = "Failed";
  r.reason = reason;
  r.message = message;
  r.total_rounds = job.strategy.rounds;
  return r;
}

// Holds the job until every tenant that requires approval has decided.
// Returns the admission (admit, or TenantRefused), or reason Interrupted.
control::Admission AwaitAdmission(const spec::JobSpec& job, const LocalRunOptions& o,
                                  Clock* clock, LocalRun* run, json* status) {
  std::string shown;
  while (true) {
    run->consent = LocalConsent(job, run->ref, o.tenants, run->workdir);
    control::Admission a = control::DecideAdmission(job, run->consent);
    if (a.reason != "AwaitingApproval") return a;
    std::vector<std::string> pending;
    for (const control::TenantConsent& c : run->consent) {
      if (c.consent == control::Consent::kPending) pending.push_back(c.tenant);
    }
    a.message = absl::StrCat(a.message, " (here: braid approve --workdir ", run->workdir,
                             " --tenant ", pending.front(), ", or the dashboard)");
    if (a.message != shown) {
      shown = a.message;
      if (o.progress) *o.progress << "job " << job.name << ": AwaitingApproval: " << a.message << std::endl;
      control::ObservedJob observed = Observed(job, *run);
      observed.admitted = false;
      observed.admission = a;
      const json s = ComputeLocalStatus(observed, status, clock);
      if (o.on_status) o.on_status(json{{"status", s}, {"rounds", json::array()}});
    }
    if (o.interrupted && o.interrupted->load()) {
      a.reason = "Interrupted";
      a.message = "stopped by the user (Ctrl-C) while awaiting approval";
      return a;
    }
    clock->Sleep(absl::Milliseconds(200), nullptr);
  }
}

class GrpcLocalStatusSource final : public LocalStatusSource {
 public:
  GrpcLocalStatusSource(const std::string& address, const std::optional<pki::TlsMaterial>& tls)
      : stub_(v1::Federation::NewStub(
            grpc::CreateChannel(address, ChannelCredentials(tls)))) {}
  GrpcLocalStatusSource(const GrpcLocalStatusSource&) = delete;
  GrpcLocalStatusSource& operator=(const GrpcLocalStatusSource&) = delete;

  absl::StatusOr<v1::JobStatus> GetStatus() override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::JobStatus status;
    grpc::Status s = stub_->GetStatus(&ctx, v1::StatusRequest(), &status);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return status;
  }

 private:
  std::unique_ptr<v1::Federation::Stub> stub_;
};

}  // namespace

std::string LocalAuditLogPath(const std::string& workdir) {
  return (fs::path(Workdir(workdir).checkpoint) / audit::kFileName).string();
}

std::string LocalRun::Log(const std::string& name) const {
  return (fs::path(logs) / (name + ".log")).string();
}

std::unique_ptr<LocalStatusSource> NewGrpcLocalStatusSource(
    const std::string& address, const std::optional<pki::TlsMaterial>& tls) {
  return std::make_unique<GrpcLocalStatusSource>(address, tls);
}

absl::StatusOr<LocalRun> StartLocal(const spec::JobSpec& job, const LocalRunOptions& o) {
  Clock* const clock = o.clock != nullptr ? o.clock : RealClock();
  const Workdir dir(o.workdir);
  LocalRun run;
  run.workdir = dir.root;
  run.checkpoint = dir.checkpoint;
  run.logs = dir.logs;
  BRAID_RETURN_IF_ERROR(PrepareWorkdir(dir, o.progress, clock));
  const std::string aggregator_bin = (fs::path(o.bin_dir) / "braid-aggregator").string();
  const std::string worker_bin = (fs::path(o.bin_dir) / "braid-worker").string();
  for (const std::string& bin : {aggregator_bin, worker_bin}) {
    if (!fs::exists(bin)) {
      return absl::NotFoundError(absl::StrCat(bin, ": not found; build Braid first (make build)"));
    }
  }
  run.ref = control::JobRef{job.namespace_, job.name,
                            audit::FileSha256Hex(o.job_file).value_or("")};
  json status;  // the status as the operator would write it
  auto end_early = [&](control::ObservedJob observed, const std::string& reason,
                       const std::string& message) {
    const json s = ComputeLocalStatus(observed, &status, clock);
    if (o.on_status) o.on_status(json{{"status", s}, {"rounds", json::array()}});
    run.ended = EndSummary(job, run, "Failed", reason, message);
    return std::move(run);
  };
  if (!o.tenants.empty()) {
    const std::vector<control::TenantProblem> problems = LocalPolicyProblems(job, o.tenants);
    if (!problems.empty()) {
      control::ObservedJob observed = Observed(job, run);
      observed.tenant_problems = problems;
      return end_early(observed, problems[0].reason, problems[0].path + ": " + problems[0].message);
    }
  }

  if (!fs::exists(fs::path(dir.checkpoint) / "state.json")) {
    json tenants = json::array();
    for (const spec::Tenant& t : job.tenants) tenants.push_back(t.name);
    AuditLocal(dir, job, audit::kJobCreated,
               json{{"job_file", o.job_file},
                    {"job_file_sha256", audit::FileSha256Hex(o.job_file).value_or("")},
                    {"model", job.model.kind},
                    {"rounds", job.strategy.rounds},
                    {"tenants", tenants}},
               o.progress);
  }
  // Consent: nothing starts before every tenant that requires approval has
  // decided; refused tenants get no workers.
  if (!o.tenants.empty()) {
    BRAID_RETURN_IF_ERROR(WriteConsentFile(dir.root, run.ref, o.tenants));
    const control::Admission a = AwaitAdmission(job, o, clock, &run, &status);
    if (!a.admit) {
      control::ObservedJob observed = Observed(job, run);
      observed.admitted = false;
      observed.admission = a;
      observed.report = RuntimeEnding(job, a.reason, a.message);
      return end_early(observed, a.reason, a.message);
    }
  }
  control::DesiredSetInput input;
  input.consent = run.consent;
  const control::DesiredSet desired = control::ComputeDesiredSet(job, input);
  run.stopped = desired.stopped_tenants;
  for (const std::string& t : run.stopped) {
    if (o.progress) {
      *o.progress << "tenant " << t << " refused: its workers are not started" << std::endl;
    }
  }
  LocalPki certs;
  if (!o.insecure) {
    BRAID_ASSIGN_OR_RETURN(certs, MakeLocalPki((fs::path(o.workdir) / "tls").string(), job));
    BRAID_ASSIGN_OR_RETURN(run.cli_tls, pki::ReadTlsFiles(certs.cli));
  }

  // Workers start first: loading LibTorch, their data and their model takes
  // them longer than the initial weights and the aggregator's start take,
  // and they wait for the aggregator's port file before they dial.
  for (const control::Workload& w : desired.workloads) {
    if (!w.run || w.role != control::Workload::Role::kWorker) continue;
    run.tenant_of[w.name] = w.tenant;
    std::vector<std::string> argv = {worker_bin, "run", "--job", o.job_file, AllowPathArg(o), "--tenant", w.tenant,
                                     "--replica", std::to_string(w.replica),
                                     "--aggregator-port-file", dir.port_file};
    for (const std::string& flag : TlsFlags(certs.tenants[w.tenant])) argv.push_back(flag);
    BRAID_ASSIGN_OR_RETURN(Subprocess p, Subprocess::Start(argv, dir.Log(w.name)));
    run.procs.emplace(w.name, std::move(p));
  }

  if (!fs::exists(fs::path(dir.checkpoint) / "model.safetensors")) {
    BRAID_RETURN_IF_ERROR(
        RunForOutput({worker_bin, "init", "--job", o.job_file, AllowPathArg(o), "--out", dir.initial_model},
                     dir.Log("init"), kToolTimeout)
            .status());
  }
  std::vector<std::string> argv = {aggregator_bin, "--job", o.job_file, "--checkpoint-dir",
                                   dir.checkpoint, "--initial-model", dir.initial_model,
                                   "--port-file", dir.port_file, "--metrics-port-file",
                                   dir.metrics_port_file};
  for (const std::string& flag : TlsFlags(certs.aggregator)) argv.push_back(flag);
  // Rounds need not wait for workers that will never come.
  for (const std::string& arg : desired.aggregator_args) argv.push_back(arg);
  BRAID_ASSIGN_OR_RETURN(Subprocess aggregator, Subprocess::Start(argv, dir.Log("aggregator")));
  run.tenant_of["aggregator"] = "";
  run.procs.emplace("aggregator", std::move(aggregator));
  BRAID_ASSIGN_OR_RETURN(const int port, AwaitPort(run.procs.at("aggregator"), dir, clock));
  run.aggregator_address = absl::StrCat("127.0.0.1:", port);
  if (o.progress) {
    const std::optional<int> metrics_port = ReadPortFile(dir.metrics_port_file);
    *o.progress << "job " << job.name << ": aggregator on 127.0.0.1:" << port
                << ", metrics on http://127.0.0.1:" << metrics_port.value_or(0)
                << "/metrics, logs in " << dir.logs << std::endl;
  }
  return run;
}

LocalOutcome FollowLocal(const spec::JobSpec& job, const LocalRunOptions& o,
                         LocalStatusSource* source, LocalRun* run) {
  Clock* const clock = o.clock != nullptr ? o.clock : RealClock();
  LocalOutcome out;
  v1::JobStatus& status = out.status;
  status.set_phase("Pending");
  int printed = 0;
  json previous;  // the status last computed
  std::string reported_phase;
  int reported_rounds = -1;
  auto report = [&] {
    const json rounds = RoundsJson(job, status);
    control::ObservedJob observed = Observed(job, *run);
    observed.report = control::ReportFromStatus(status);
    if (!out.runtime_reason.empty()) {
      observed.report = RuntimeEnding(job, out.runtime_reason, out.runtime_message);
    }
    const json s = ComputeLocalStatus(observed, &previous, clock);
    if (!o.on_status) return;
    if (s["phase"] == reported_phase && static_cast<int>(rounds.size()) == reported_rounds) {
      return;
    }
    reported_phase = s["phase"];
    reported_rounds = static_cast<int>(rounds.size());
    o.on_status(json{{"status", s}, {"rounds", rounds}});
  };
  std::map<std::string, bool> reported_exit;
  while (true) {
    if (absl::StatusOr<v1::JobStatus> fresh = source->GetStatus(); fresh.ok()) {
      status = *std::move(fresh);
    }
    for (const v1::RoundRecord& r : status.rounds()) {
      if (r.round() <= printed) continue;
      if (o.progress && o.progress_bar) {
        *o.progress << "\r"
                    << ProgressBar(r.round(), status.total_rounds(),
                                   RoundMetrics(job, r, status.privacy().enabled()))
                    << "\x1b[K" << std::flush;
        out.bar_open = true;
      } else if (o.progress) {
        *o.progress << ProgressLine(job, r, status.total_rounds(), status.privacy().enabled())
                    << std::endl;
      }
      printed = r.round();
    }
    report();
    if (status.phase() == "Succeeded" || status.phase() == "Failed") break;
    if (o.interrupted && o.interrupted->load()) {
      out.runtime_reason = "Interrupted";
      out.runtime_message = "stopped by the user (Ctrl-C); run again to resume from the checkpoint";
      break;
    }
    for (auto& [name, proc] : run->procs) {
      std::optional<int> code = proc.Poll();
      if (!code || reported_exit[name]) continue;
      reported_exit[name] = true;
      if (name == "aggregator") {
        out.runtime_reason = "AggregatorExited";
        out.runtime_message = absl::StrCat("braid-aggregator exited with ", *code, "; see ",
                                           run->Log(name));
      } else if (o.progress && *code != 0) {
        if (std::exchange(out.bar_open, false)) *o.progress << "\n";
        *o.progress << name << " exited with " << *code << "; see " << run->Log(name) << std::endl;
      }
    }
    if (!out.runtime_reason.empty()) break;
    if (!o.tenants.empty()) {
      // Revocation: a refusal (or a deleted approval) stops that tenant's
      // workers; the others go on. The aggregator keeps its arguments and
      // declares the stopped workers lost.
      run->consent = LocalConsent(job, run->ref, o.tenants, run->workdir);
      for (const std::string& t : control::StoppedTenants(run->consent)) {
        if (!run->stopped.insert(t).second) continue;
        for (auto& [name, proc] : run->procs) {
          if (name == "aggregator" || run->tenant_of[name] != t) continue;
          reported_exit[name] = true;
          proc.Terminate(absl::Seconds(2));
        }
        if (o.progress) {
          if (std::exchange(out.bar_open, false)) *o.progress << "\n";
          *o.progress << "tenant " << t << ": consent revoked; its workers stopped" << std::endl;
        }
      }
    }
    clock->Sleep(absl::Milliseconds(200), nullptr);
  }
  run->status = previous;
  return out;
}

absl::StatusOr<json> FinishLocal(const spec::JobSpec& job, const LocalRunOptions& o,
                                 LocalRun* run, const LocalOutcome& outcome) {
  Clock* const clock = o.clock != nullptr ? o.clock : RealClock();
  const Workdir dir(o.workdir);
  const v1::JobStatus& status = outcome.status;
  const std::string& runtime_reason = outcome.runtime_reason;
  if (outcome.bar_open && o.progress) *o.progress << "\n";
  // Let the workers hear DONE, then stop everything (aggregator last).
  for (auto& [name, proc] : run->procs) {
    if (name != "aggregator") proc.Wait(runtime_reason.empty() ? absl::Seconds(3) : absl::ZeroDuration());
  }
  for (auto& [name, proc] : run->procs) proc.Terminate();
  if (o.on_status && !runtime_reason.empty()) {
    // The runtime's own ending (the aggregator's was reported while following).
    control::ObservedJob observed = Observed(job, *run);
    observed.report = RuntimeEnding(job, runtime_reason, outcome.runtime_message);
    const json s = ComputeLocalStatus(observed, &run->status, clock);
    o.on_status(json{{"status", s}, {"rounds", RoundsJson(job, status)}});
  }

  json summary{{"job", job.name},
               {"phase", runtime_reason.empty() ? status.phase() : "Failed"},
               {"reason", runtime_reason.empty() ? status.reason() : runtime_reason},
               {"message", runtime_reason.empty() ? status.message() : outcome.runtime_message},
               {"rounds", RoundsJson(job, status)},
               {"workdir", dir.root},
               {"logs", dir.logs}};
  if (status.privacy().enabled()) summary["privacy"] = PrivacyJson(status.privacy());
  std::optional<audit::Entry> own_last;  // this process's last append to the audit log

  const std::string checkpoint_model = (fs::path(dir.checkpoint) / "model.safetensors").string();
  if (summary["phase"] == "Succeeded") {
    std::error_code ec;
    fs::copy_file(checkpoint_model, dir.model, fs::copy_options::overwrite_existing, ec);
    if (ec) return absl::InternalError(absl::StrCat(dir.model, ": ", ec.message()));
    summary["model"] = dir.model;
    json exported{{"path", dir.model}};
    if (absl::StatusOr<std::string> sha = audit::FileSha256Hex(dir.model); sha.ok()) {
      exported["sha256"] = *sha;
    }
    exported["bytes"] = fs::file_size(dir.model, ec);
    own_last = AuditLocal(dir, job, audit::kModelExported, exported, o.progress);
    if (job.model.IsLanguageModel()) {
      // The deliverable: the adapter in PEFT's layout (and merged weights
      // when the job asks), written by the worker that knows the base.
      const std::string worker = (fs::path(o.bin_dir) / "braid-worker").string();
      BRAID_RETURN_IF_ERROR(RunForOutput({worker, "export", "--job", o.job_file, AllowPathArg(o), "--model",
                                          dir.model, "--out", dir.root},
                                         dir.Log("export"), kToolTimeout)
                                .status());
      summary["adapter"] = (fs::path(dir.root) / "adapter").string();
      if (job.model.adapter.write_merged) {
        summary["merged"] = (fs::path(dir.root) / "merged").string();
      }
    }
    if (!job.evaluation.pooled.path.empty()) {
      BRAID_ASSIGN_OR_RETURN(json pooled, EvaluatePooled(o, job, dir, dir.model, "final-eval"));
      summary["final"] = json{{"pooled", pooled}};
      // For a fine-tuning job, the yardstick of the yardstick: the base model
      // alone (the initial adapter computes what the base does).
      if (job.model.IsLanguageModel() && fs::exists(dir.initial_model)) {
        BRAID_ASSIGN_OR_RETURN(summary["final"]["base"],
                               EvaluatePooled(o, job, dir, dir.initial_model, "base-eval"));
      }
    }
    if (o.baselines && !(o.interrupted && o.interrupted->load())) {
      if (o.progress) *o.progress << "training local-only baselines..." << std::endl;
      BRAID_ASSIGN_OR_RETURN(summary["baselines"], RunBaselines(o, job, dir));
    }
  }
  if (std::optional<json> a = SummaryAudit(status, own_last, LocalAuditLogPath(o.workdir))) {
    summary["audit"] = *std::move(a);
  }
  return summary;
}

absl::StatusOr<json> RunLocal(const spec::JobSpec& job, const LocalRunOptions& o) {
  BRAID_ASSIGN_OR_RETURN(LocalRun run, StartLocal(job, o));
  if (run.ended) return *run.ended;
  std::unique_ptr<LocalStatusSource> source =
      NewGrpcLocalStatusSource(run.aggregator_address, run.cli_tls);
  const LocalOutcome outcome = FollowLocal(job, o, source.get(), &run);
  // Close our connection first: a gRPC server's shutdown waits (up to the
  // aggregator's 2 s deadline) for every client connection to go away.
  source.reset();
  return FinishLocal(job, o, &run, outcome);
}

}  // namespace braid::cli
