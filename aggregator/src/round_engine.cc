#include "braid/aggregator/round_engine.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "braid/aggregator/fedavg.h"

namespace braid::aggregator {
namespace {

constexpr uint64_t kApplyChunkBytes = 1 << 20;
// Floats folded between two reports of progress to the slot's next holder
// (1 MiB).
constexpr size_t kFoldPieceFloats = (1 << 20) / sizeof(float);

std::string PhaseName(bool finished, bool failed, bool started) {
  if (failed) return "Failed";
  if (finished) return "Succeeded";
  return started ? "Running" : "Pending";
}

}  // namespace

RoundEngine::RoundEngine(EngineOptions options, Checkpoint* checkpoint,
                         AggregatorMetrics* metrics, std::function<absl::Time()> clock)
    : options_(std::move(options)),
      checkpoint_(checkpoint),
      metrics_(metrics),
      clock_(std::move(clock)),
      pool_(std::max(1, options_.upload_slots), checkpoint->model_bytes() / sizeof(float)) {
  absl::MutexLock lock(&mu_);
  const CheckpointState& state = checkpoint_->state();
  history_ = state.history;
  waiting_since_ = clock_();
  if (options_.dp.enabled) {
    // The accountant restarts from the rounds the checkpoint aggregated.
    for (const RoundRecord& r : history_) {
      if (absl::Status s = accountant_.AddRounds(r.sampling_rate, options_.dp.noise_multiplier);
          !s.ok()) {
        std::cerr << "aggregator: round " << r.round << " in the checkpoint: " << s << "\n";
      }
    }
    if (metrics_ && !history_.empty()) metrics_->SetPrivacyEpsilon(history_.back().epsilon);
  }
  if (state.phase == "Failed") {
    phase_ = Phase::kFailed;
    reason_ = state.reason;
    message_ = state.message;
    return;
  }
  if (!history_.empty() && !history_.back().evaluated) {
    round_ = history_.back().round;  // aggregated, evaluation pending
    record_ = history_.back();
    round_started_ = clock_();
  } else {
    round_ = static_cast<int>(history_.size()) + 1;
  }
  if (round_ > options_.rounds || state.phase == "Succeeded") {
    phase_ = Phase::kSucceeded;
    reason_ = "RoundsCompleted";
    message_ = absl::StrCat("all ", history_.size(), " rounds completed");
    if (state.phase == "Succeeded" && !state.reason.empty()) {
      reason_ = state.reason;  // e.g. PrivacyBudgetExhausted before the last round
      message_ = state.message;
    }
  }
}

absl::StatusOr<std::string> RoundEngine::Join(const std::string& tenant, int replica,
                                              int64_t num_examples) {
  absl::MutexLock lock(&mu_);
  if (phase_ == Phase::kSucceeded || phase_ == Phase::kFailed) {
    return absl::FailedPreconditionError(absl::StrCat("job ", options_.job, " has ended (",
                                                      reason_, "): ", message_));
  }
  // A replica that joins again replaces its previous registration.
  for (auto& [id, c] : clients_) {
    if (c.tenant == tenant && c.replica == replica) c.lost = true;
  }
  const std::string id = absl::StrCat(tenant, "/", replica, "#", ++next_client_);
  clients_[id] = Client{tenant, replica, num_examples, clock_(), false};
  if (metrics_) metrics_->SetClients(LiveClients());
  Advance();
  return id;
}

RoundEngine::Client* RoundEngine::FindLive(const std::string& client_id) {
  auto it = clients_.find(client_id);
  return it == clients_.end() || it->second.lost ? nullptr : &it->second;
}

absl::StatusOr<RoundEngine::Client*> RoundEngine::Seen(const std::string& client_id) {
  Client* client = FindLive(client_id);
  if (client == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown client ", client_id,
                                            " (the aggregator restarted or declared it lost); "
                                            "join again"));
  }
  client->last_seen = clock_();
  return client;
}

bool RoundEngine::AwaitsResult(const std::string& client_id, Phase phase, int round) const {
  return phase_ == phase && round == round_ && selected_.count(client_id) &&
         !reported_.count(client_id);
}

absl::Status RoundEngine::Touch(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  return Seen(client_id).status();
}

absl::StatusOr<std::string> RoundEngine::ClientTenant(const std::string& client_id) const {
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(client_id);
  if (it == clients_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown client ", client_id, "; join again"));
  }
  return it->second.tenant;
}

absl::StatusOr<Task> RoundEngine::NextTask(const std::string& client_id, absl::Duration wait) {
  if (absl::Status s = Touch(client_id); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  Advance();  // a round whose last update just arrived closes here or on the tick
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return TaskFor(client_id).kind != TaskKind::kWait;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
  return TaskFor(client_id);
}

Task RoundEngine::TaskFor(const std::string& client_id) const {
  Task task;
  task.total_rounds = options_.rounds;
  task.round = round_;
  auto it = clients_.find(client_id);
  if (phase_ == Phase::kSucceeded || phase_ == Phase::kFailed) {
    task.kind = TaskKind::kDone;
    task.reason = absl::StrCat(reason_, ": ", message_);
  } else if (it == clients_.end() || it->second.lost) {
    task.kind = TaskKind::kDone;
    task.reason = "ClientLost: join again";
  } else if (AwaitsResult(client_id, Phase::kFit, round_)) {
    task.kind = TaskKind::kFit;
    if (secagg_) task.secagg = secagg_->TaskFor(client_id);
  } else if (AwaitsResult(client_id, Phase::kEvaluate, round_)) {
    task.kind = TaskKind::kEvaluate;
  }
  return task;
}

absl::StatusOr<std::unique_ptr<Upload>> RoundEngine::BeginFit(const std::string& client_id,
                                                              int round, uint64_t total_bytes,
                                                              int64_t num_examples,
                                                              absl::Duration wait, bool masked) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Seen(client_id).status(); !s.ok()) return s;
    if (masked != options_.secagg.enabled) {
      return absl::InvalidArgumentError(
          options_.secagg.enabled
              ? "this job uses secure aggregation: send the masked input (ENCODING_SECAGG_MASKED)"
              : "this job does not use secure aggregation: send ENCODING_FP32 updates");
    }
    if (masked) {
      if (phase_ != Phase::kFit || round != round_ || !secagg_ ||
          !secagg_->ExpectsMaskedInput(client_id)) {
        return absl::AbortedError(absl::StrCat("round ", round,
                                               " takes no masked input from ", client_id,
                                               " (now round ", round_, "); fetch the next task"));
      }
    } else if (!AwaitsResult(client_id, Phase::kFit, round)) {
      return absl::AbortedError(absl::StrCat("round ", round, " does not accept an update from ",
                                             client_id, " (now round ", round_,
                                             "); fetch the next task"));
    }
    if (total_bytes != checkpoint_->model_bytes()) {
      return absl::InvalidArgumentError(absl::StrCat("update of ", total_bytes,
                                                     " bytes, but the model has ",
                                                     checkpoint_->model_bytes()));
    }
    if (num_examples <= 0) {
      return absl::InvalidArgumentError("an update must report num_examples > 0");
    }
  }
  // Wait for a slot in short steps: a client whose stream the server is
  // holding in the queue is alive, whatever its heartbeats say.
  const absl::Time give_up = clock_() + wait;
  absl::StatusOr<UploadPool::Held> slot = pool_.Acquire(std::min(wait, absl::Seconds(1)));
  while (absl::IsUnavailable(slot.status()) && clock_() < give_up) {
    if (absl::Status s = Touch(client_id); !s.ok()) return s;
    slot = pool_.Acquire(absl::Seconds(1));
  }
  if (!slot.ok()) return slot.status();
  return std::make_unique<Upload>(&pool_, *slot, client_id, round, num_examples, masked);
}

absl::Status RoundEngine::CommitFit(std::unique_ptr<Upload> upload, const ClientMetrics& train) {
  if (!upload->complete()) {
    return absl::InvalidArgumentError(absl::StrCat("update ended after ", upload->received(),
                                                   " of ", upload->total_bytes(), " bytes"));
  }
  if (options_.max_update_norm > 0 && upload->l2_norm() > options_.max_update_norm) {
    return absl::InvalidArgumentError(absl::StrCat("update norm ", upload->l2_norm(),
                                                   " exceeds the job's bound ",
                                                   options_.max_update_norm));
  }
  absl::MutexLock lock(&mu_);
  const std::string& id = upload->client_id();
  Client* client = FindLive(id);
  if (upload->masked()) {
    if (client == nullptr || phase_ != Phase::kFit || upload->round() != round_ || !secagg_) {
      return absl::AbortedError(absl::StrCat("round ", upload->round(),
                                             " closed before the masked input from ", id,
                                             " was complete"));
    }
    RecordUpload(*upload);
    if (absl::Status s = secagg_->SubmitMaskedInput(id, upload->data(), upload->total_bytes());
        !s.ok()) {
      secagg_->Exclude(id);
      return s;
    }
    const auto examples = static_cast<double>(upload->num_examples());
    examples_sum_ += examples;
    train_loss_sum_ += train.loss * examples;
    record_.bytes_up += static_cast<int64_t>(upload->total_bytes());
    contributors_.insert(client->tenant);
    client->last_seen = clock_();
    if (metrics_) metrics_->UpdateReceived(static_cast<double>(upload->total_bytes()), 0);
    Advance();
    return absl::OkStatus();
  }
  if (client == nullptr || !AwaitsResult(id, Phase::kFit, upload->round())) {
    return absl::AbortedError(absl::StrCat("round ", upload->round(),
                                           " closed before the update from ", id,
                                           " was complete"));
  }
  RecordUpload(*upload);
  const auto examples = static_cast<double>(upload->num_examples());
  // FedAvg weighs by examples; DP-FedAvg weighs every client 1 and clips
  // here too, so that a client that skipped clipping gains no influence.
  double weight = examples;
  if (options_.dp.enabled) {
    weight = 1;
    const double l2 = upload->l2_norm();
    if (options_.dp.central_noise && l2 > options_.dp.clip_norm) weight = options_.dp.clip_norm / l2;
  }
  // The next upload may take the slot now and overwrite each piece of the
  // buffer as soon as it is folded: the fold (~8 GB/s) stays ahead of a
  // stream, so the fold is off the uploads' path.
  upload->HandOver();
  double sq = 0;
  for (size_t at = 0; at < sum_.size(); at += kFoldPieceFloats) {
    const size_t n = std::min(kFoldPieceFloats, sum_.size() - at);
    sq += FoldWeighted(sum_.data() + at, upload->data() + at, n, static_cast<float>(weight));
    upload->Consumed((at + n) * sizeof(float));
  }
  const double norm = std::sqrt(sq);
  total_weight_ += options_.dp.enabled ? 1 : weight;
  examples_sum_ += examples;
  train_loss_sum_ += train.loss * examples;
  norm_sum_ += norm;
  record_.bytes_up += static_cast<int64_t>(upload->total_bytes());
  reported_.insert(id);
  contributors_.insert(client->tenant);
  client->last_seen = clock_();
  if (metrics_) metrics_->UpdateReceived(static_cast<double>(upload->total_bytes()), norm);
  // The update is in the sum: acknowledge it now. Closing the round (reading
  // the old weights, averaging, writing and fsyncing the checkpoint) is left
  // to the engine's thread, which AwaitCloseDue wakes, or to the first
  // client that asks for its next task: the worker's upload call does not
  // wait on the checkpoint's disk.
  return absl::OkStatus();
}

absl::StatusOr<SecAggAnswer> RoundEngine::SecAggStep(const std::string& client_id, int round,
                                                     uint64_t round_id, int stage,
                                                     const std::string& payload,
                                                     absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Seen(client_id).status(); !s.ok()) return s;
  if (stage < static_cast<int>(SecAggStage::kAdvertise) ||
      stage > static_cast<int>(SecAggStage::kUnmask)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown secure-aggregation stage ", stage));
  }
  const auto st = static_cast<SecAggStage>(stage);
  auto attempt_over = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return phase_ != Phase::kFit || round != round_ || !secagg_ || secagg_->round_id() != round_id;
  };
  if (attempt_over()) {
    return absl::AbortedError(absl::StrCat(
        "the secure-aggregation attempt of round ", round, " is over (now round ", round_, ")",
        secagg_last_failure_.empty() ? "" : ": ", secagg_last_failure_, "; fetch the next task"));
  }
  if (!secagg_->TaskFor(client_id).has_value()) {
    return absl::AbortedError(absl::StrCat(client_id, " is not in round ", round,
                                           "'s cohort; fetch the next task"));
  }
  reported_.insert(client_id);  // it has its task: no second FIT for this attempt
  if (!payload.empty()) {
    if (absl::Status s = secagg_->Submit(client_id, st, payload); !s.ok()) {
      secagg_->Exclude(client_id);
      std::cerr << "aggregator: round " << round_ << ": " << s.message() << "\n";
      return s;
    }
    record_.bytes_up += static_cast<int64_t>(payload.size());
    Advance();
    if (st == SecAggStage::kUnmask) return SecAggAnswer{};
  }
  auto closed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return attempt_over() || static_cast<int>(secagg_->stage()) > stage;
  };
  // Wait in slices: a client held in this call is alive, whatever its
  // heartbeats say.
  const absl::Time give_up = absl::Now() + std::min(wait, absl::Seconds(30));  // real time
  while (!closed() && absl::Now() < give_up) {
    mu_.AwaitWithTimeout(absl::Condition(&closed),
                         std::min(give_up - absl::Now(), absl::Seconds(1)));
    if (Client* c = FindLive(client_id)) c->last_seen = clock_();
  }
  if (attempt_over()) {
    return absl::AbortedError(absl::StrCat(
        "the secure-aggregation attempt of round ", round, " ended",
        secagg_last_failure_.empty() ? "" : ": ", secagg_last_failure_, "; fetch the next task"));
  }
  absl::StatusOr<std::optional<std::string>> answer = secagg_->Answer(client_id, st);
  if (!answer.ok()) return answer.status();
  if (!answer->has_value()) return SecAggAnswer{true, ""};
  record_.bytes_down += static_cast<int64_t>((*answer)->size());
  return SecAggAnswer{false, **answer};
}

void RoundEngine::RecordUpload(const Upload& upload) {
  if (options_.record_uploads_dir.empty()) return;
  auto it = clients_.find(upload.client_id());
  if (it == clients_.end()) return;
  const std::string path = absl::StrCat(options_.record_uploads_dir, "/round", upload.round(), "-",
                                        it->second.tenant, "-", it->second.replica, ".bin");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(upload.data()),
            static_cast<std::streamsize>(upload.total_bytes()));
  if (!out) std::cerr << "aggregator: cannot record the upload to " << path << "\n";
}

absl::Status RoundEngine::ReportEval(const std::string& client_id, int round,
                                     const ClientMetrics& eval) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Seen(client_id).status(); !s.ok()) return s;
  if (!AwaitsResult(client_id, Phase::kEvaluate, round)) {
    return absl::AbortedError(absl::StrCat("round ", round, " is not evaluating (now round ",
                                           round_, "); fetch the next task"));
  }
  if (eval.num_examples < 0 || !std::isfinite(eval.loss) || !std::isfinite(eval.accuracy)) {
    return absl::InvalidArgumentError("evaluation metrics must be finite, examples >= 0");
  }
  const auto w = static_cast<double>(eval.num_examples);
  TenantEval& t = tenant_eval_[clients_.at(client_id).tenant];
  t.eval_loss += eval.loss * w;
  t.eval_accuracy += eval.accuracy * w;
  t.eval_examples += eval.num_examples;
  reported_.insert(client_id);
  Advance();
  return absl::OkStatus();
}

void RoundEngine::AddBytesDown(int round, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (round == record_.round) record_.bytes_down += bytes;
  if (metrics_) metrics_->BytesSent(static_cast<double>(bytes));
}

void RoundEngine::Tick() {
  absl::MutexLock lock(&mu_);
  Advance();
}

void RoundEngine::AwaitCloseDue(absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &RoundEngine::CloseDue), wait);
}

bool RoundEngine::CloseDue() const {
  return phase_ == Phase::kFit && !secagg_ && PhaseComplete();
}

int RoundEngine::LiveClients() const {
  int n = 0;
  for (const auto& [id, c] : clients_) n += c.lost ? 0 : 1;
  return n;
}

int RoundEngine::AwaitedClients() const {
  std::set<std::pair<std::string, int>> live, lost;
  for (const auto& [id, c] : clients_) (c.lost ? lost : live).insert({c.tenant, c.replica});
  int gone = 0;
  for (const auto& slot : lost) gone += live.count(slot) ? 0 : 1;
  return std::max(1, options_.expected_clients - gone);
}

std::vector<std::string> RoundEngine::LiveClientIds() const {
  std::vector<std::string> ids;
  for (const auto& [id, c] : clients_) {
    if (!c.lost) ids.push_back(id);
  }
  return ids;
}

void RoundEngine::MarkLostClients() {
  const absl::Time now = clock_();
  bool changed = false;
  for (auto& [id, c] : clients_) {
    if (!c.lost && now - c.last_seen > options_.heartbeat_timeout) {
      c.lost = true;
      changed = true;
      std::cerr << "aggregator: client " << id << " lost (no heartbeat for "
                << absl::FormatDuration(options_.heartbeat_timeout) << ")\n";
    }
  }
  if (changed && metrics_) metrics_->SetClients(LiveClients());
}

bool RoundEngine::PhaseComplete() const {
  for (const std::string& id : selected_) {
    if (reported_.count(id)) continue;
    auto it = clients_.find(id);
    if (it != clients_.end() && !it->second.lost) return false;
  }
  return true;
}

// The state machine's one step function; called after every event.
void RoundEngine::Advance() {
  MarkLostClients();
  const absl::Time now = clock_();
  switch (phase_) {
    case Phase::kSucceeded:
    case Phase::kFailed:
      return;
    case Phase::kWaiting: {
      const bool evaluate_first = !history_.empty() && !history_.back().evaluated &&
                                  history_.back().round == round_;
      const int needed = evaluate_first ? 1 : options_.min_clients;
      if (!evaluate_first && options_.dp.enabled) {
        // Stop as soon as the budget is spent, without waiting for workers;
        // StartFit checks again with the clients actually live.
        const int n = std::max(1, options_.expected_clients);
        if (!BudgetAllows(static_cast<double>(SampleSize(n)) / n)) return;
      }
      const int live = LiveClients();
      if (live >= AwaitedClients() ||
          (live >= needed && now - waiting_since_ >= options_.start_grace)) {
        evaluate_first ? StartEvaluate() : StartFit();
      } else if (now - waiting_since_ > options_.round_timeout) {
        Fail("NotEnoughClients",
             absl::StrCat("round ", round_, ": ", live, " of ", options_.expected_clients,
                          " workers alive after waiting ",
                          absl::FormatDuration(options_.round_timeout), "; ", needed,
                          " needed (strategy.minClients)"));
      }
      return;
    }
    case Phase::kFit:
      if (secagg_) {
        AdvanceSecAgg();
      } else if (PhaseComplete() || now >= deadline_) {
        CloseFit();
      }
      return;
    case Phase::kEvaluate:
      if (PhaseComplete() || now >= deadline_) CloseEvaluate();
      return;
  }
}

int RoundEngine::SampleSize(int live) const {
  const int wanted = static_cast<int>(std::ceil(options_.fraction_fit * live));
  return std::min(live, std::max(options_.min_clients, wanted));
}

bool RoundEngine::BudgetAllows(double q) {
  const DpOptions& dp = options_.dp;
  absl::StatusOr<dp::BudgetCheck> check =
      accountant_.CheckNextRound(q, dp.noise_multiplier, dp.delta, dp.max_epsilon);
  if (!check.ok()) {
    Fail("PrivacyAccountingFailed", absl::StrCat("round ", round_, ": ", check.status().message()));
    return false;
  }
  if (check->allowed) return true;
  const int done = static_cast<int>(accountant_.rounds());
  const std::string message = absl::StrFormat(
      "round %d would spend epsilon %.4g > maxEpsilon %g at delta %g (noiseMultiplier %g, "
      "sampling rate %.4g); %s",
      round_, check->epsilon_after_next, dp.max_epsilon, dp.delta, dp.noise_multiplier, q,
      done == 0 ? std::string("no round can run within the budget: raise maxEpsilon or "
                              "noiseMultiplier, or lower strategy.fractionFit")
                : absl::StrFormat("stopped after %d rounds with epsilon %.4g spent", done,
                                  check->epsilon_spent));
  if (done == 0) {
    Fail("PrivacyBudgetExhausted", message);
    return false;
  }
  phase_ = Phase::kSucceeded;
  reason_ = "PrivacyBudgetExhausted";
  message_ = message;
  selected_.clear();
  std::cerr << "aggregator: job ends: " << reason_ << ": " << message_ << "\n";
  Persist();
  Audit(audit::kJobFinished, {{"phase", "Succeeded"}, {"reason", reason_}, {"message", message_}});
  return false;
}

bool RoundEngine::AddCentralNoise() {
  if (options_.dp.noise_seed != 0) {
    sampler_.reset();  // a fresh seeded stream per round: reproducible rounds
    absl::StatusOr<dp::GaussianSampler> seeded =
        dp::GaussianSampler::Seeded(options_.dp.noise_seed * 1000003u + round_);
    if (seeded.ok()) sampler_.emplace(*std::move(seeded));
  } else if (!sampler_.has_value()) {
    absl::StatusOr<dp::GaussianSampler> secure = dp::GaussianSampler::Secure();
    if (!secure.ok()) {
      Fail("PrivacyNoiseFailed", absl::StrCat("round ", round_, ": no noise source: ",
                                              secure.status().message()));
      return false;
    }
    sampler_.emplace(*std::move(secure));
  }
  if (!sampler_.has_value()) {
    Fail("PrivacyNoiseFailed", absl::StrCat("round ", round_, ": cannot seed the noise source"));
    return false;
  }
  sampler_->AddNoise(absl::MakeSpan(sum_),
                     dp::CentralNoiseStddev(options_.dp.noise_multiplier, options_.dp.clip_norm));
  return true;
}

void RoundEngine::StartFit() {
  std::vector<std::string> live = LiveClientIds();
  const int k = SampleSize(static_cast<int>(live.size()));
  const double q = live.empty() ? 1.0 : static_cast<double>(k) / live.size();
  if (options_.dp.enabled && !BudgetAllows(q)) return;
  std::mt19937_64 rng(options_.seed * 1000003u + static_cast<uint64_t>(round_));
  std::shuffle(live.begin(), live.end(), rng);
  selected_ = std::set<std::string>(live.begin(), live.begin() + k);
  reported_.clear();
  contributors_.clear();
  // The sum and the upload buffers are allocated (and their pages faulted
  // in) here, while workers download and train, not in the first upload's
  // path; they are kept for the job's later rounds.
  if (!options_.secagg.enabled) {
    if (sum_.empty()) {
      sum_.assign(checkpoint_->model_bytes() / sizeof(float), 0.0f);
    } else {
      std::fill(sum_.begin(), sum_.end(), 0.0f);
    }
  }
  pool_.Reserve();
  total_weight_ = examples_sum_ = train_loss_sum_ = norm_sum_ = 0;
  record_ = RoundRecord{};
  record_.round = round_;
  record_.sampled = k;
  if (options_.dp.enabled) record_.sampling_rate = q;
  round_started_ = clock_();
  deadline_ = round_started_ + options_.round_timeout;
  phase_ = Phase::kFit;
  if (metrics_) metrics_->SetRound(round_);
  std::cerr << "aggregator: round " << round_ << "/" << options_.rounds << " started with " << k
            << " of " << LiveClients() << " clients\n";
  if (options_.secagg.enabled) StartSecAgg();
}

bool RoundEngine::StartSecAgg() {
  if (secagg_failures_round_ != round_) {
    secagg_failures_round_ = round_;
    secagg_failures_ = 0;
  }
  std::vector<SecAggRound::Member> members;
  double examples = 0;
  for (const std::string& id : selected_) examples += static_cast<double>(clients_[id].num_examples);
  const double mean = selected_.empty() ? 1 : examples / static_cast<double>(selected_.size());
  for (const std::string& id : selected_) {
    // Public weights: FedAvg by the examples each client joined with; DP
    // weighs every client 1 (its denominator is the number sampled).
    double w = 1;
    if (!options_.dp.enabled && mean > 0) w = static_cast<double>(clients_[id].num_examples) / mean;
    members.push_back({id, w});
  }
  const CohortShape shape = ShapeFor(options_.secagg, static_cast<uint32_t>(members.size()));
  double noise = 0;
  if (options_.dp.enabled && !options_.dp.central_noise) {
    noise = dp::DistributedNoiseStddev(options_.dp.noise_multiplier, options_.dp.clip_norm,
                                       shape.threshold);
  }
  // A fresh, unpredictable id per attempt: keys, seeds and shares of one
  // attempt are useless in any other.
  std::random_device rd;
  const uint64_t round_id = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  const int threads = static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
  absl::StatusOr<std::unique_ptr<SecAggRound>> round = SecAggRound::Create(
      options_.secagg, round_id, options_.seed * 1000003u + static_cast<uint64_t>(round_) * 7919u +
                                     static_cast<uint64_t>(secagg_failures_),
      checkpoint_->model_bytes() / sizeof(float), members, noise, clock_(),
      options_.round_timeout, threads);
  if (!round.ok()) {
    Fail("SecureAggregationFailed",
         absl::StrCat("round ", round_, ": ", round.status().message()));
    return false;
  }
  secagg_ = *std::move(round);
  std::cerr << "aggregator: round " << round_ << ": secure aggregation over " << members.size()
            << " clients, threshold " << shape.threshold << ", "
            << (shape.neighbours == 0 ? std::string("complete graph")
                                      : absl::StrCat(shape.neighbours, " neighbours (SecAgg+)"))
            << "\n";
  return true;
}

void RoundEngine::AdvanceSecAgg() {
  auto gone = [this](const std::string& id) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto it = clients_.find(id);
    return it == clients_.end() || it->second.lost;
  };
  const SecAggStage before = secagg_->stage();
  if (absl::Status s = secagg_->Advance(clock_(), gone); !s.ok()) {
    SecAggFailed(std::string(s.message()));
    return;
  }
  if (secagg_->stage() != before) {
    std::cerr << "aggregator: round " << round_ << ": secure aggregation stage "
              << SecAggStageName(before) << " closed\n";
  }
  if (secagg_->stage() != SecAggStage::kDone) return;
  const std::vector<std::string> contributors = secagg_->contributors();
  const int got = static_cast<int>(contributors.size());
  if (got < options_.min_clients) {
    Fail("RoundFailed",
         absl::StrCat("round ", round_, ": ", got, " of ", selected_.size(),
                      " sampled clients completed secure aggregation; ", options_.min_clients,
                      " needed (strategy.minClients)"));
    return;
  }
  sum_ = std::move(secagg_->sum());
  total_weight_ = secagg_->contributor_weight();
  // Tenants and losses only of those whose input is in the sum.
  contributors_.clear();
  for (const std::string& id : contributors) contributors_.insert(clients_[id].tenant);
  FinishFit(got);
}

void RoundEngine::SecAggFailed(const std::string& why) {
  ++secagg_failures_;
  secagg_last_failure_ = why;
  secagg_.reset();
  selected_.clear();
  reported_.clear();
  if (secagg_failures_ >= kSecAggAttempts) {
    Fail("SecureAggregationFailed",
         absl::StrCat("round ", round_, " failed ", secagg_failures_, " times; the last: ", why));
    return;
  }
  message_ = absl::StrCat("round ", round_, " attempt ", secagg_failures_, " of ",
                          kSecAggAttempts, " failed (", why, "); running it again");
  std::cerr << "aggregator: " << message_ << "\n";
  Audit(audit::kRoundFailed, {{"round", round_}, {"attempt", secagg_failures_}, {"reason", why}});
  phase_ = Phase::kWaiting;
  waiting_since_ = clock_();
}

std::string RoundEngine::DescribeMissing() const {
  std::vector<std::string> missing;
  for (const std::string& id : selected_) {
    if (reported_.count(id)) continue;
    auto it = clients_.find(id);
    const bool lost = it == clients_.end() || it->second.lost;
    missing.push_back(absl::StrCat(id, lost ? " (lost: no heartbeat)" : " (no update in time)"));
  }
  return absl::StrJoin(missing, ", ");
}

void RoundEngine::CloseFit() {
  const int got = static_cast<int>(reported_.size());
  if (got < options_.min_clients) {
    Fail("RoundFailed",
         absl::StrCat("round ", round_, ": ", got, " of ", selected_.size(),
                      " sampled clients sent an update before the round closed; ",
                      options_.min_clients, " needed (strategy.minClients). Missing: ",
                      DescribeMissing()));
    return;
  }
  FinishFit(got);
}

void RoundEngine::FinishFit(int got) {
  // DP-FedAvg: noise on the sum, and a fixed denominator (the clients
  // sampled), so that one client moves the average by <= clip_norm / sampled.
  double denominator = total_weight_;
  if (options_.dp.enabled) {
    if (options_.dp.central_noise && !AddCentralNoise()) return;
    denominator = record_.sampled;
  }
  // global = global + sum / denominator, a chunk of the old global at a time.
  std::vector<float> base(kApplyChunkBytes / sizeof(float));
  const uint64_t bytes = checkpoint_->model_bytes();
  for (uint64_t off = 0; off < bytes; off += kApplyChunkBytes) {
    const uint64_t len = std::min(kApplyChunkBytes, bytes - off);
    if (absl::Status s = checkpoint_->ReadWeights(off, base.data(), len); !s.ok()) {
      Fail("CheckpointFailed", s.ToString());
      return;
    }
    float* dst = sum_.data() + off / sizeof(float);
    ApplyAverage(dst, base.data(), dst, len / sizeof(float), 1.0 / denominator);
  }
  if (absl::Status s = checkpoint_->WriteWeights(sum_.data()); !s.ok()) {
    Fail("CheckpointFailed", s.ToString());
    return;
  }
  record_.participants = got;
  record_.tenants.assign(contributors_.begin(), contributors_.end());
  record_.train_loss = examples_sum_ > 0 ? train_loss_sum_ / examples_sum_ : 0;
  // Under secure aggregation no individual norm is known: 0.
  record_.update_norm_mean = norm_sum_ / got;
  secagg_.reset();
  secagg_last_failure_.clear();
  if (options_.dp.enabled) {
    // The round's release is done: compose it.
    absl::Status added = accountant_.AddRounds(record_.sampling_rate, options_.dp.noise_multiplier);
    absl::StatusOr<double> epsilon = accountant_.Epsilon(options_.dp.delta);
    if (!added.ok() || !epsilon.ok()) {
      Fail("PrivacyAccountingFailed",
           absl::StrCat("round ", round_, ": ", added.ok() ? epsilon.status().message()
                                                            : added.message()));
      return;
    }
    record_.epsilon = *epsilon;
    if (metrics_) metrics_->SetPrivacyEpsilon(*epsilon);
  }
  record_.evaluated = false;
  history_.push_back(record_);
  Persist();
  StartEvaluate();
}

void RoundEngine::StartEvaluate() {
  std::vector<std::string> live = LiveClientIds();
  selected_ = std::set<std::string>(live.begin(), live.end());
  reported_.clear();
  tenant_eval_.clear();
  deadline_ = clock_() + options_.round_timeout;
  phase_ = Phase::kEvaluate;
}

void RoundEngine::CloseEvaluate() {
  record_.evaluated = true;
  // Pooled: the tenants' example-weighted sums added up.
  double loss_sum = 0, accuracy_sum = 0;
  int64_t examples = 0;
  for (const auto& [tenant, sums] : tenant_eval_) {
    loss_sum += sums.eval_loss;
    accuracy_sum += sums.eval_accuracy;
    examples += sums.eval_examples;
  }
  record_.eval_examples = examples;
  if (examples > 0) {
    record_.eval_loss = loss_sum / static_cast<double>(examples);
    record_.eval_accuracy = accuracy_sum / static_cast<double>(examples);
  }
  record_.tenant_eval.clear();
  for (auto& [tenant, sums] : tenant_eval_) {
    TenantEval e = sums;
    e.tenant = tenant;
    if (e.eval_examples > 0) {
      e.eval_loss /= static_cast<double>(e.eval_examples);
      e.eval_accuracy /= static_cast<double>(e.eval_examples);
    }
    record_.tenant_eval.push_back(std::move(e));
  }
  record_.seconds = absl::ToDoubleSeconds(clock_() - round_started_);
  history_.back() = record_;
  nlohmann::json details = {{"round", record_.round},
         {"participants", record_.participants},
         {"sampled", record_.sampled},
         {"tenants", record_.tenants},
         {"train_loss", record_.train_loss},
         {"eval_loss", record_.eval_loss},
         {"eval_accuracy", record_.eval_accuracy},
         {"bytes_up", record_.bytes_up},
         {"bytes_down", record_.bytes_down}};
  if (options_.dp.enabled) {
    details["epsilon"] = record_.epsilon;
    details["delta"] = options_.dp.delta;
  }
  Audit(audit::kRoundCompleted, std::move(details));
  if (metrics_) metrics_->RoundCompleted(record_.seconds, record_.participants);
  selected_.clear();
  reported_.clear();
  ++round_;
  if (round_ > options_.rounds) {
    phase_ = Phase::kSucceeded;
    reason_ = "RoundsCompleted";
    message_ = absl::StrCat("all ", options_.rounds, " rounds completed");
    Audit(audit::kJobFinished, {{"phase", "Succeeded"}, {"reason", reason_}, {"message", message_}});
  } else {
    phase_ = Phase::kWaiting;
    waiting_since_ = clock_();
  }
  Persist();
  if (phase_ == Phase::kWaiting) Advance();
}

void RoundEngine::Fail(const std::string& reason, const std::string& message) {
  phase_ = Phase::kFailed;
  reason_ = reason;
  message_ = message;
  selected_.clear();
  std::cerr << "aggregator: job failed: " << reason << ": " << message << "\n";
  Persist();
  Audit(audit::kJobFinished, {{"phase", "Failed"}, {"reason", reason_}, {"message", message_}});
}

void RoundEngine::Audit(const char* kind, nlohmann::json details) {
  if (options_.audit == nullptr) return;
  absl::StatusOr<audit::Entry> e =
      options_.audit->Append(kind, "aggregator", options_.audit_job, std::move(details));
  if (!e.ok()) std::cerr << "aggregator: cannot append to the audit log: " << e.status() << "\n";
}

void RoundEngine::Persist() {
  CheckpointState state;
  state.job = options_.job;
  state.phase = PhaseName(phase_ == Phase::kSucceeded, phase_ == Phase::kFailed, true);
  state.reason = reason_;
  state.message = message_;
  state.history = history_;
  if (absl::Status s = checkpoint_->WriteState(state); !s.ok()) {
    std::cerr << "aggregator: cannot write checkpoint state: " << s << "\n";
  }
}

EngineStatus RoundEngine::Status() const {
  absl::MutexLock lock(&mu_);
  EngineStatus s;
  const bool started = !history_.empty() || phase_ == Phase::kFit || phase_ == Phase::kEvaluate;
  s.phase = PhaseName(phase_ == Phase::kSucceeded, phase_ == Phase::kFailed, started);
  s.reason = reason_;
  s.message = message_;
  s.total_rounds = options_.rounds;
  s.live_clients = LiveClients();
  s.history = history_;
  for (const RoundRecord& r : history_) s.rounds_completed += r.evaluated ? 1 : 0;
  if (options_.dp.enabled) {
    s.privacy.enabled = true;
    s.privacy.epsilon = history_.empty() ? 0 : history_.back().epsilon;
    s.privacy.delta = options_.dp.delta;
    s.privacy.max_epsilon = options_.dp.max_epsilon;
  }
  return s;
}

bool RoundEngine::Finished() const {
  absl::MutexLock lock(&mu_);
  return phase_ == Phase::kSucceeded || phase_ == Phase::kFailed;
}

}  // namespace braid::aggregator
