#include "braid/aggregator/round_engine.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "braid/aggregator/fedavg.h"
#include "braid/aggregator/strategy_factory.h"
#include "braid/core/dp/gaussian_noise.h"
#include "braid/core/log.h"

namespace braid::aggregator {
namespace {

std::string PhaseName(bool finished, bool failed, bool started) {
  if (failed) return "Failed";
  if (finished) return "Succeeded";
  return started ? "Running" : "Pending";
}


// The given strategy, else the one the options ask for (null, with *error
// set, if there is none).
std::unique_ptr<AggregationStrategy> ChooseStrategy(std::unique_ptr<AggregationStrategy> given,
                                                    const EngineOptions& options,
                                                    absl::Status* error) {
  if (given != nullptr) return given;
  absl::StatusOr<std::unique_ptr<AggregationStrategy>> made =
      CreateStrategy(StrategyOptionsOf(options));
  if (!made.ok()) {
    *error = made.status();
    return nullptr;
  }
  return *std::move(made);
}

// Where `weights` (the flat data of `index`'s tensors) first holds a value
// that is not finite ("tensor 'w' element 3 is inf"), or nullopt if none.
std::optional<std::string> FirstNonFinite(absl::Span<const float> weights,
                                          const safetensors::Index& index) {
  bool all_finite = true;
  SumSquares(weights.data(), weights.size(), &all_finite);
  if (all_finite) return std::nullopt;
  size_t i = 0;
  while (i < weights.size() && std::isfinite(weights[i])) ++i;
  uint64_t begin = 0;  // the first float of each tensor
  for (const safetensors::Entry& e : index.entries) {
    const uint64_t n = e.nbytes / sizeof(float);
    if (i < begin + n) {
      return absl::StrCat("tensor '", e.name, "' element ", i - begin, " is ", weights[i]);
    }
    begin += n;
  }
  return absl::StrCat("element ", i, " is ", weights[i]);
}

}  // namespace

StrategyOptions StrategyOptionsOf(const EngineOptions& options) {
  StrategyOptions s;
  s.name = options.strategy;
  s.server = options.server_optimizer;
  s.robust = options.robust_aggregation;
  s.spill_dir = options.spill_dir;
  s.dp = options.dp;
  s.secure_aggregation = options.secagg.enabled;
  return s;
}

RoundEngine::RoundEngine(EngineOptions options, Checkpoint* checkpoint,
                         AggregatorMetrics* metrics, Clock* clock,
                         std::unique_ptr<AggregationStrategy> strategy)
    : options_(std::move(options)),
      checkpoint_(checkpoint),
      metrics_(metrics),
      clock_(clock != nullptr ? clock : RealClock()),
      pool_(std::max(1, options_.upload_slots), checkpoint->model_bytes() / sizeof(float)),
      strategy_(ChooseStrategy(std::move(strategy), options_, &strategy_error_)),
      clients_(clock_, options_.heartbeat_timeout),
      budget_(options_.dp) {
  if (metrics_ != nullptr) {
    const std::map<std::string, std::string> labels = {{"job", options_.job}};
    prometheus::Registry& registry = metrics_->registry();
    stream_bytes_ = &prometheus::BuildCounter()
                         .Name("braid_aggregator_upload_stream_bytes_total")
                         .Help("Update bytes read from PutUpdate streams, folded or not: bytes a "
                               "worker sent again after a broken-off stream count again")
                         .Register(registry)
                         .Add(labels);
    resumed_ = &prometheus::BuildCounter()
                    .Name("braid_aggregator_uploads_resumed_total")
                    .Help("FIT uploads resumed from the bytes a broken-off stream had delivered")
                    .Register(registry)
                    .Add(labels);
    resumed_bytes_ = &prometheus::BuildCounter()
                          .Name("braid_aggregator_upload_resumed_bytes_total")
                          .Help("Bytes that resumed uploads did not need to send again")
                          .Register(registry)
                          .Add(labels);
    partials_gauge_ = &prometheus::BuildGauge()
                           .Name("braid_aggregator_partial_uploads")
                           .Help("Partial uploads kept for their clients to resume")
                           .Register(registry)
                           .Add(labels);
  }
  const std::string digest = DigestOfCheckpoint();
  absl::MutexLock lock(&mu_);
  weights_digest_ = digest;
  const CheckpointState& state = checkpoint_->state();
  history_ = state.history;
  waiting_since_ = clock_->Now();
  // The accountant restarts from the rounds the checkpoint aggregated.
  budget_.Restore(history_);
  if (metrics_ && budget_.enabled() && !history_.empty()) {
    metrics_->SetPrivacyEpsilon(history_.back().epsilon);
  }
  if (state.phase == "Failed") {
    phase_ = Phase::kFailed;
    reason_ = state.reason;
    message_ = state.message;
    return;
  }
  if (strategy_ == nullptr) {
    phase_ = Phase::kFailed;
    reason_ = "InvalidStrategy";
    message_ = std::string(strategy_error_.message());
    return;
  }
  if (strategy_->masked_input() != options_.secagg.enabled) {
    phase_ = Phase::kFailed;
    reason_ = "InvalidStrategy";
    message_ = absl::StrCat("strategy ", strategy_->name(),
                            strategy_->masked_input() ? " needs" : " cannot run under",
                            " secure aggregation");
    return;
  }
  absl::StatusOr<std::string> saved = checkpoint_->ReadStrategyState();
  absl::Status restored =
      saved.ok() ? strategy_->RestoreState(*saved) : saved.status();
  if (!restored.ok()) {
    phase_ = Phase::kFailed;
    reason_ = "CheckpointFailed";
    message_ = absl::StrCat("strategy ", strategy_->name(), ": ", restored.message());
    return;
  }
  if (!history_.empty() && !history_.back().evaluated) {
    round_ = history_.back().round;  // aggregated, evaluation pending
    record_ = history_.back();
    round_started_ = clock_->Now();
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
  if (!options_.tenants.empty()) {
    auto declared = options_.tenants.find(tenant);
    if (declared == options_.tenants.end()) {
      return absl::PermissionDeniedError(
          absl::StrCat("tenant '", tenant, "' is not in job ", options_.job,
                       "'s spec.tenants; only the job's tenants may join"));
    }
    if (replica < 0 || replica >= declared->second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "replica ", replica, " of tenant '", tenant, "': the job declares ", declared->second,
          " replica(s) for it (spec.tenants[].replicas), so the index must be in [0, ",
          declared->second, ")"));
    }
  }
  if (absl::Status s = CheckExamples(num_examples, 0, "num_examples"); !s.ok()) {
    return RefuseClaim(tenant, tenant, "num_examples", std::move(s));
  }
  // A replica that joins again replaces its previous session; the round
  // may still name the old one (its sample, its report).
  auto in_round = [this](const std::string& old) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return selected_.count(old) > 0;
  };
  const std::string id = clients_.Join(tenant, replica, num_examples, in_round);
  if (metrics_) metrics_->SetClients(clients_.LiveCount());
  Advance();
  return id;
}

bool RoundEngine::AwaitsResult(const std::string& client_id, Phase phase, int round) const {
  return phase_ == phase && round == round_ && selected_.count(client_id) &&
         !reported_.count(client_id) && !dropped_.count(client_id);
}

void RoundEngine::AbandonFit(const std::string& client_id, int round, const std::string& why) {
  absl::MutexLock lock(&mu_);
  if (phase_ != Phase::kFit || round != round_ || !selected_.count(client_id) ||
      reported_.count(client_id) || dropped_.count(client_id)) {
    return;
  }
  dropped_[client_id] = why;
  if (secagg_) secagg_->Exclude(client_id);
  LogWarning(absl::StrCat("aggregator: round ", round_, ": ", client_id, " is out of the round: ",
                          why));
  Advance();
}

absl::Status RoundEngine::Touch(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  return clients_.Heartbeat(client_id);
}

absl::StatusOr<std::string> RoundEngine::ClientTenant(const std::string& client_id) const {
  absl::MutexLock lock(&mu_);
  const ClientLiveness::Client* c = clients_.Find(client_id);
  if (c == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown client ", client_id, "; join again"));
  }
  return c->tenant;
}

absl::StatusOr<Task> RoundEngine::NextTask(const std::string& client_id, absl::Duration wait) {
  if (absl::Status s = Touch(client_id); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  Advance();  // a round whose last update just arrived closes here or on the tick
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return TaskFor(client_id).kind != TaskKind::kWait;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
  Task task = TaskFor(client_id);
  if (task.kind == TaskKind::kFit || task.kind == TaskKind::kEvaluate) {
    // Opened under mu_: the checkpoint is written under it too, so the
    // file and its digest are of the same weights.
    absl::StatusOr<FileReader> file = FileReader::Open(checkpoint_->model_path());
    if (!file.ok()) return file.status();
    task.weights = std::make_shared<const FileReader>(*std::move(file));
    task.weights_digest = weights_digest_;
  }
  return task;
}

std::string RoundEngine::DigestOfCheckpoint() const {
  Sha256Stream sha;
  std::vector<char> piece(4 << 20);
  const uint64_t total = checkpoint_->model_bytes();
  for (uint64_t off = 0; off < total; off += piece.size()) {
    const uint64_t len = std::min<uint64_t>(piece.size(), total - off);
    if (absl::Status s = checkpoint_->ReadWeights(off, piece.data(), len); !s.ok()) {
      LogError(absl::StrCat("aggregator: cannot read the weights to digest them (downloads will "
                            "not resume): ",
                            s.ToString()));
      return "";
    }
    sha.Update(piece.data(), len);
  }
  return sha.Finish();
}

std::string RoundEngine::WeightsDigest() const {
  absl::MutexLock lock(&mu_);
  return weights_digest_;
}

absl::Status RoundEngine::FitAdmissible(const std::string& client_id, int round,
                                        bool masked) const {
  if (masked) {
    if (phase_ != Phase::kFit || round != round_ || !secagg_ ||
        !secagg_->ExpectsMaskedInput(client_id)) {
      return absl::AbortedError(absl::StrCat("round ", round, " takes no masked input from ",
                                             client_id, " (now round ", round_,
                                             "); fetch the next task"));
    }
  } else if (!AwaitsResult(client_id, Phase::kFit, round)) {
    return absl::AbortedError(absl::StrCat("round ", round, " does not accept an update from ",
                                           client_id, " (now round ", round_,
                                           "); fetch the next task"));
  }
  return absl::OkStatus();
}

bool RoundEngine::KeepPartial(std::unique_ptr<Upload> upload) {
  absl::MutexLock lock(&mu_);
  const std::string id = upload->client_id();
  if (upload->digest().empty() || upload->received() == 0 || !clients_.IsLive(id) ||
      !FitAdmissible(id, upload->round(), upload->masked()).ok()) {
    return false;
  }
  // One per client: a second stream of the same client that broke off
  // replaces the first's.
  Partial& p = partials_[id];
  p.upload = std::move(upload);
  p.attempt = secagg_ ? secagg_->round_id() : 0;
  if (p.upload->kept_since() == absl::InfiniteFuture()) p.upload->set_kept_since(clock_->Now());
  LogInfo(absl::StrCat("aggregator: round ", p.upload->round(), ": ", id, "'s upload broke off after ",
                       p.upload->received(), " of ", p.upload->total_bytes(),
                       " bytes; kept for it to resume"));
  SetPartialGauge();
  return true;
}

int RoundEngine::PartialUploads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(partials_.size());
}

void RoundEngine::CountUploadBytes(uint64_t bytes) {
  if (stream_bytes_ != nullptr) stream_bytes_->Increment(static_cast<double>(bytes));
}

void RoundEngine::SetPartialGauge() {
  if (partials_gauge_ != nullptr) partials_gauge_->Set(static_cast<double>(partials_.size()));
}

void RoundEngine::DropStalePartials() {
  if (partials_.empty()) return;
  const absl::Time now = clock_->Now();
  for (auto it = partials_.begin(); it != partials_.end();) {
    const Upload& u = *it->second.upload;
    const bool stale =
        now - u.kept_since() >= options_.partial_upload_timeout || !clients_.IsLive(it->first) ||
        !FitAdmissible(it->first, u.round(), u.masked()).ok() ||
        (u.masked() && (!secagg_ || secagg_->round_id() != it->second.attempt));
    if (stale) {
      LogInfo(absl::StrCat("aggregator: round ", u.round(), ": dropped ", it->first,
                           "'s partial upload (", u.received(), " of ", u.total_bytes(),
                           " bytes)"));
      it = partials_.erase(it);
    } else {
      ++it;
    }
  }
  SetPartialGauge();
}

bool RoundEngine::EvictPartial() {
  const absl::Time now = clock_->Now();
  auto oldest = partials_.end();
  for (auto it = partials_.begin(); it != partials_.end(); ++it) {
    const absl::Time since = it->second.upload->kept_since();
    if (now - since < options_.partial_upload_grace) continue;
    if (oldest == partials_.end() || since < oldest->second.upload->kept_since()) oldest = it;
  }
  if (oldest == partials_.end()) return false;
  LogInfo(absl::StrCat("aggregator: round ", oldest->second.upload->round(), ": ", oldest->first,
                       "'s partial upload gave its slot to a waiting upload"));
  partials_.erase(oldest);
  SetPartialGauge();
  return true;
}

Task RoundEngine::TaskFor(const std::string& client_id) const {
  Task task;
  task.total_rounds = options_.rounds;
  task.round = round_;
  if (phase_ == Phase::kSucceeded || phase_ == Phase::kFailed) {
    task.kind = TaskKind::kDone;
    task.reason = absl::StrCat(reason_, ": ", message_);
  } else if (!clients_.IsLive(client_id)) {
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
                                                              absl::Duration wait, bool masked,
                                                              const std::string& digest) {
  std::unique_ptr<Upload> superseded;  // destroyed after mu_ is released
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = clients_.Heartbeat(client_id); !s.ok()) return s;
    if (masked != options_.secagg.enabled) {
      return absl::InvalidArgumentError(
          options_.secagg.enabled
              ? "this job uses secure aggregation: send the masked input (ENCODING_SECAGG_MASKED)"
              : "this job does not use secure aggregation: send ENCODING_FP32 updates");
    }
    if (absl::Status s = FitAdmissible(client_id, round, masked); !s.ok()) return s;
    if (total_bytes != checkpoint_->model_bytes()) {
      return absl::InvalidArgumentError(absl::StrCat("update of ", total_bytes,
                                                     " bytes, but the model has ",
                                                     checkpoint_->model_bytes()));
    }
    if (absl::Status s = CheckExamples(num_examples, 1, "num_examples"); !s.ok()) {
      return RefuseClaim(clients_.Find(client_id)->tenant, client_id, "num_examples",
                         std::move(s));
    }
    if (std::unique_ptr<Upload> resumed =
            TakePartial(client_id, round, total_bytes, num_examples, masked, digest, &superseded)) {
      return resumed;
    }
  }
  superseded.reset();
  // Wait for a slot in short steps: a client whose stream the server is
  // holding in the queue is alive, whatever its heartbeats say. (Real time:
  // this bounds a real wait.) A partial upload past its grace gives its
  // slot up to a waiting upload. The client's own earlier stream may break
  // off meanwhile (a worker that reconnected at once, before this server
  // saw the old stream end): its bytes are taken up as soon as it is kept.
  const absl::Time give_up = absl::Now() + wait;
  absl::StatusOr<UploadPool::Held> slot = pool_.Acquire(absl::ZeroDuration());
  while (absl::IsUnavailable(slot.status())) {
    bool evicted = false;
    {
      absl::MutexLock lock(&mu_);
      if (absl::Status s = FitAdmissible(client_id, round, masked); !s.ok()) return s;
      if (std::unique_ptr<Upload> resumed = TakePartial(client_id, round, total_bytes,
                                                        num_examples, masked, digest,
                                                        &superseded)) {
        return resumed;
      }
      evicted = superseded != nullptr || EvictPartial();
    }
    superseded.reset();
    if (evicted) {
      slot = pool_.Acquire(absl::ZeroDuration());
      continue;
    }
    const absl::Time now = absl::Now();
    if (now >= give_up) break;
    if (absl::Status s = Touch(client_id); !s.ok()) return s;
    slot = pool_.Acquire(std::min(give_up - now, absl::Milliseconds(100)));
  }
  if (!slot.ok()) return slot.status();
  auto upload = std::make_unique<Upload>(&pool_, *slot, client_id, round, num_examples, masked);
  upload->set_digest(digest);
  return upload;
}

std::unique_ptr<Upload> RoundEngine::TakePartial(const std::string& client_id, int round,
                                                 uint64_t total_bytes, int64_t num_examples,
                                                 bool masked, const std::string& digest,
                                                 std::unique_ptr<Upload>* superseded) {
  auto p = partials_.find(client_id);
  if (p == partials_.end()) return nullptr;
  const Upload& u = *p->second.upload;
  const uint64_t attempt = secagg_ ? secagg_->round_id() : 0;
  if (digest.empty() || u.digest() != digest || u.round() != round ||
      u.total_bytes() != total_bytes || u.num_examples() != num_examples ||
      u.masked() != masked || p->second.attempt != attempt) {
    // Another update (or another try at one): a client has one partial
    // upload at most.
    *superseded = std::move(p->second.upload);
    partials_.erase(p);
    SetPartialGauge();
    return nullptr;
  }
  std::unique_ptr<Upload> resumed = std::move(p->second.upload);
  partials_.erase(p);
  SetPartialGauge();
  resumed->MarkResumed();
  if (resumed_ != nullptr) resumed_->Increment();
  if (resumed_bytes_ != nullptr) resumed_bytes_->Increment(static_cast<double>(resumed->received()));
  LogInfo(absl::StrCat("aggregator: round ", round, ": ", client_id, "'s upload resumes at byte ",
                       resumed->received(), " of ", total_bytes));
  return resumed;
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
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = CheckMetrics(train, "train"); !s.ok()) {
      const ClientLiveness::Client* c = clients_.Find(upload->client_id());
      return RefuseClaim(c != nullptr ? c->tenant : "", upload->client_id(), "train_metrics",
                         std::move(s));
    }
    if (absl::Status s = AcceptUpdate(*upload); !s.ok()) return s;
  }
  // The next upload may take the slot now and overwrite each piece of the
  // buffer as soon as the strategy has folded (consumed) it: the fold stays
  // ahead of a stream, so it is off the uploads' path. It runs outside mu_,
  // so other clients' heartbeats, tasks and uploads are not held up by it.
  upload->HandOver();
  absl::StatusOr<FoldResult> folded;
  {
    absl::MutexLock fold_lock(&fold_mu_);
    folded = strategy_->Fold(*upload);
  }
  absl::MutexLock lock(&mu_);
  --folds_in_flight_;
  if (!folded.ok()) {
    RefuseUpdate(*upload);
    return folded.status();
  }
  // The loss is weighted as the update was.
  examples_sum_ += upload->weight();
  train_loss_sum_ += train.loss * upload->weight();
  norm_sum_ += folded->norm;
  record_.bytes_up += static_cast<int64_t>(upload->total_bytes());
  if (const ClientLiveness::Client* c = clients_.Find(upload->client_id())) {
    contributors_.insert(c->tenant);
  }
  (void)clients_.Heartbeat(upload->client_id());
  if (metrics_) metrics_->UpdateReceived(static_cast<double>(upload->total_bytes()), folded->norm);
  // The update is in the sum: acknowledge it now. Closing a plaintext round
  // (reading the old weights, averaging, writing and fsyncing the
  // checkpoint) is left to the engine's thread, which AwaitCloseDue wakes,
  // or to the first client that asks for its next task: the worker's upload
  // call does not wait on the checkpoint's disk.
  AfterUpdate(*upload);
  return absl::OkStatus();
}

absl::Status RoundEngine::AcceptUpdate(Upload& upload) {
  const std::string& id = upload.client_id();
  if (upload.masked()) {
    if (!clients_.IsLive(id) || phase_ != Phase::kFit || upload.round() != round_ || !secagg_) {
      return absl::AbortedError(absl::StrCat("round ", upload.round(),
                                             " closed before the masked input from ", id,
                                             " was complete"));
    }
    // Counts as the client's input at once: it cannot send a second.
    if (absl::Status s = secagg_->ClaimMaskedInput(id); !s.ok()) {
      secagg_->Exclude(id);
      return s;
    }
  } else if (!clients_.IsLive(id) || !AwaitsResult(id, Phase::kFit, upload.round())) {
    return absl::AbortedError(absl::StrCat("round ", upload.round(),
                                           " closed before the update from ", id,
                                           " was complete"));
  }
  absl::StatusOr<UpdateWeight> weight = weights_.For(id, upload.num_examples());
  if (!weight.ok()) {
    return absl::AbortedError(absl::StrCat(id, " is not in round ", upload.round(),
                                           "'s cohort; fetch the next task"));
  }
  if (weight->capped != CapReason::kNone) {
    const std::string tenant = clients_.Find(id)->tenant;
    const char* reason = CapReasonName(weight->capped);
    if (metrics_) metrics_->ClaimCapped(TenantLabel(tenant), reason);
    LogInfo(absl::StrFormat(
        "aggregator: round %d: %s claims %d examples; counted for %.6g (%s)", round_, id,
        upload.num_examples(), weight->examples, reason));
    Audit(audit::kClaimCapped, {{"round", round_},
                                {"tenant", tenant},
                                {"client", id},
                                {"claimed", upload.num_examples()},
                                {"counted", weight->examples},
                                {"reason", reason}});
  }
  upload.set_weight(weight->weight);
  reported_.insert(id);
  ++folds_in_flight_;
  return absl::OkStatus();
}

void RoundEngine::RefuseUpdate(const Upload& upload) {
  if (upload.masked()) {
    secagg_->Exclude(upload.client_id());
  } else {
    reported_.erase(upload.client_id());
  }
}

void RoundEngine::AfterUpdate(const Upload& upload) {
  if (upload.masked()) Advance();
}

absl::StatusOr<SecAggAnswer> RoundEngine::SecAggStep(const std::string& client_id, int round,
                                                     uint64_t round_id, int stage,
                                                     const std::string& payload,
                                                     absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = clients_.Heartbeat(client_id); !s.ok()) return s;
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
      LogWarning(absl::StrCat("aggregator: round ", round_, ": ", s.message()));
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
    (void)clients_.Heartbeat(client_id);
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

absl::Status RoundEngine::ReportEval(const std::string& client_id, int round,
                                     const ClientMetrics& eval) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = clients_.Heartbeat(client_id); !s.ok()) return s;
  if (!AwaitsResult(client_id, Phase::kEvaluate, round)) {
    return absl::AbortedError(absl::StrCat("round ", round, " is not evaluating (now round ",
                                           round_, "); fetch the next task"));
  }
  if (absl::Status s = CheckMetrics(eval, "eval"); !s.ok()) {
    return RefuseClaim(clients_.Find(client_id)->tenant, client_id, "eval_metrics",
                       std::move(s));
  }
  const auto w = static_cast<double>(eval.num_examples);
  TenantEval& t = tenant_eval_[clients_.Find(client_id)->tenant];
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
  return phase_ == Phase::kFit && !secagg_ && folds_in_flight_ == 0 && PhaseComplete();
}

int RoundEngine::AwaitedClients() const {
  return std::max(1, options_.expected_clients - clients_.LostWorkers());
}

void RoundEngine::MarkLostClients() {
  const std::vector<std::string> lost = clients_.MarkLost();
  for (const std::string& id : lost) {
    LogInfo(absl::StrCat("aggregator: client ", id, " lost (no heartbeat for ",
                         absl::FormatDuration(options_.heartbeat_timeout), ")"));
  }
  if (!lost.empty() && metrics_) metrics_->SetClients(clients_.LiveCount());
}

bool RoundEngine::PhaseComplete() const {
  for (const std::string& id : selected_) {
    if (!reported_.count(id) && !dropped_.count(id) && clients_.IsLive(id)) return false;
  }
  return true;
}

// The state machine's one step function; called after every event.
void RoundEngine::Advance() {
  Step();
  DropStalePartials();
}

void RoundEngine::Step() {
  MarkLostClients();
  const absl::Time now = clock_->Now();
  switch (phase_) {
    case Phase::kSucceeded:
    case Phase::kFailed:
      return;
    case Phase::kWaiting: {
      const bool evaluate_first = !history_.empty() && !history_.back().evaluated &&
                                  history_.back().round == round_;
      const int needed = evaluate_first ? 1 : options_.min_clients;
      if (!evaluate_first && budget_.enabled()) {
        // Stop as soon as the budget is spent, without waiting for workers;
        // StartFit checks again with the clients actually live.
        const int n = std::max(1, options_.expected_clients);
        if (!BudgetAllows(static_cast<double>(SampleSize(n)) / n)) return;
      }
      const int live = clients_.LiveCount();
      // A FIT round needs minTenants tenants live, whoever else is.
      const int live_tenants = clients_.LiveTenants();
      const bool tenants_ok = evaluate_first || live_tenants >= options_.min_tenants;
      if (tenants_ok && (live >= AwaitedClients() ||
                         (live >= needed && now - waiting_since_ >= options_.start_grace))) {
        evaluate_first ? StartEvaluate() : StartFit();
      } else if (now - waiting_since_ > options_.round_timeout) {
        Fail("NotEnoughClients",
             absl::StrCat("round ", round_, ": ", live, " of ", options_.expected_clients,
                          " workers of ", live_tenants, " tenant(s) alive after waiting ",
                          absl::FormatDuration(options_.round_timeout), "; ", needed,
                          " needed (strategy.minClients) from ", options_.min_tenants,
                          " tenants (strategy.minTenants)"));
      }
      return;
    }
    case Phase::kFit:
      if (folds_in_flight_ > 0) return;  // the round closes once they are in
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
  return std::min(live, std::max({options_.min_clients, options_.min_tenants, wanted}));
}

bool RoundEngine::BudgetAllows(double q) {
  const DpOptions& dp = options_.dp;
  absl::StatusOr<dp::BudgetCheck> check = budget_.CheckNextRound(q);
  if (!check.ok()) {
    Fail("PrivacyAccountingFailed", absl::StrCat("round ", round_, ": ", check.status().message()));
    return false;
  }
  if (check->allowed) return true;
  const int done = budget_.rounds();
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
  LogInfo(absl::StrCat("aggregator: job ends: ", reason_, ": ", message_));
  Persist();
  Audit(audit::kJobFinished, {{"phase", "Succeeded"}, {"reason", reason_}, {"message", message_}});
  return false;
}

void RoundEngine::StartFit() {
  std::vector<std::string> live = clients_.LiveIds();
  const int k = SampleSize(static_cast<int>(live.size()));
  const double q = live.empty() ? 1.0 : static_cast<double>(k) / live.size();
  if (!BudgetAllows(q)) return;
  std::mt19937_64 rng(options_.seed * 1000003u + static_cast<uint64_t>(round_));
  std::shuffle(live.begin(), live.end(), rng);
  // The first client of each of min_tenants tenants goes first, so the
  // sample spans enough tenants for the round to count.
  {
    std::set<std::string> seen;
    std::stable_partition(live.begin(), live.end(), [&](const std::string& id)
                                                        ABSL_NO_THREAD_SAFETY_ANALYSIS {
      if (static_cast<int>(seen.size()) >= options_.min_tenants) return false;
      return seen.insert(clients_.Find(id)->tenant).second;
    });
  }
  selected_ = std::set<std::string>(live.begin(), live.begin() + k);
  reported_.clear();
  dropped_.clear();
  contributors_.clear();
  // The upload buffers (and the strategy's, in BeginStrategyRound) are
  // allocated and their pages faulted in here, while workers download and
  // train, not in the first upload's path; they are kept for the job's
  // later rounds.
  pool_.Reserve();
  examples_sum_ = train_loss_sum_ = norm_sum_ = 0;
  refusals_audited_.clear();
  // What each sampled client's update will weigh, from the claims they
  // joined with (DP: every client weighs 1).
  std::vector<CohortMember> cohort;
  for (const std::string& id : selected_) {
    const ClientLiveness::Client* c = clients_.Find(id);
    cohort.push_back({id, c->tenant, c->num_examples});
  }
  WeightingOptions weighting = options_.weighting;
  if (options_.dp.enabled) weighting.weighting = Weighting::kUniform;
  weights_ = RoundWeights(weighting, cohort);
  record_ = RoundRecord{};
  record_.round = round_;
  record_.sampled = k;
  if (budget_.enabled()) record_.sampling_rate = q;
  round_started_ = clock_->Now();
  deadline_ = round_started_ + options_.round_timeout;
  phase_ = Phase::kFit;
  if (metrics_) metrics_->SetRound(round_);
  LogInfo(absl::StrCat("aggregator: round ", round_, "/", options_.rounds, " started with ", k,
                       " of ", clients_.LiveCount(), " clients"));
  if (options_.secagg.enabled && !StartSecAgg()) return;
  BeginStrategyRound();
}

bool RoundEngine::BeginStrategyRound() {
  RoundBegin begin;
  begin.round = round_;
  begin.sampled = record_.sampled;
  begin.model_floats = checkpoint_->model_bytes() / sizeof(float);
  begin.secagg = secagg_.get();
  begin.cohort.assign(selected_.begin(), selected_.end());
  if (absl::Status s = strategy_->BeginRound(begin); !s.ok()) {
    Fail(ReasonOf(s, "AggregationFailed"), absl::StrCat("round ", round_, ": ", s.message()));
    return false;
  }
  return true;
}

bool RoundEngine::StartSecAgg() {
  if (secagg_failures_round_ != round_) {
    secagg_failures_round_ = round_;
    secagg_failures_ = 0;
  }
  std::vector<SecAggRound::Member> members;
  for (const std::string& id : selected_) {
    // Public weights: FedAvg by the (capped) examples each client joined
    // with, or 1 each (uniform weighting; DP, whose denominator is the
    // number sampled). See RoundWeights.
    members.push_back({id, weights_.PublicWeight(id)});
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
      checkpoint_->model_bytes() / sizeof(float), members, noise, clock_->Now(),
      options_.round_timeout, threads);
  if (!round.ok()) {
    Fail("SecureAggregationFailed",
         absl::StrCat("round ", round_, ": ", round.status().message()));
    return false;
  }
  secagg_ = *std::move(round);
  LogInfo(absl::StrCat("aggregator: round ", round_, ": secure aggregation over ", members.size(),
                       " clients, threshold ", shape.threshold, ", ",
                       shape.neighbours == 0
                           ? std::string("complete graph")
                           : absl::StrCat(shape.neighbours, " neighbours (SecAgg+)")));
  return true;
}

void RoundEngine::AdvanceSecAgg() {
  auto gone = [this](const std::string& id) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return !clients_.IsLive(id);
  };
  const SecAggStage before = secagg_->stage();
  if (absl::Status s = secagg_->Advance(clock_->Now(), gone); !s.ok()) {
    SecAggFailed(std::string(s.message()));
    return;
  }
  if (secagg_->stage() != before) {
    LogInfo(absl::StrCat("aggregator: round ", round_, ": secure aggregation stage ",
                         SecAggStageName(before), " closed"));
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
  // Tenants only of those whose input is in the sum.
  contributors_.clear();
  for (const std::string& id : contributors) contributors_.insert(clients_.Find(id)->tenant);
  if (!EnoughTenants()) return;
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
  LogWarning(absl::StrCat("aggregator: ", message_));
  Audit(audit::kRoundFailed, {{"round", round_}, {"attempt", secagg_failures_}, {"reason", why}});
  phase_ = Phase::kWaiting;
  waiting_since_ = clock_->Now();
}

std::string RoundEngine::DescribeMissing() const {
  std::vector<std::string> missing;
  for (const std::string& id : selected_) {
    if (reported_.count(id)) continue;
    if (auto d = dropped_.find(id); d != dropped_.end()) {
      missing.push_back(absl::StrCat(id, " (", d->second, ")"));
      continue;
    }
    const bool lost = !clients_.IsLive(id);
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
  if (!EnoughTenants()) return;
  FinishFit(got);
}

bool RoundEngine::EnoughTenants() {
  const int tenants = static_cast<int>(contributors_.size());
  if (tenants >= options_.min_tenants) return true;
  Fail("RoundFailed",
       absl::StrCat("round ", round_, ": updates from ", tenants, " tenant(s) (",
                    absl::StrJoin(contributors_, ", "), "); ", options_.min_tenants,
                    " needed (strategy.minTenants). Missing: ", DescribeMissing()));
  return false;
}

void RoundEngine::FinishFit(int got) {
  // The old global is read a piece at a time from the checkpoint.
  const GlobalReader old_global = [this](uint64_t offset, void* out, uint64_t len) {
    absl::Status s = checkpoint_->ReadWeights(offset, out, len);
    return s.ok() ? s : WithReason(absl::Status(s.code(), s.ToString()), "CheckpointFailed");
  };
  absl::StatusOr<absl::Span<const float>> global = strategy_->Finish(old_global);
  if (!global.ok()) {
    Fail(ReasonOf(global.status(), "AggregationFailed"), std::string(global.status().message()));
    return;
  }
  // Never commit weights no worker can train from: the old global stays.
  if (std::optional<std::string> where = FirstNonFinite(*global, checkpoint_->index())) {
    Fail("NonFiniteModel",
         absl::StrCat("round ", round_, ": the aggregated model is not finite (", *where,
                      "); the previous global model is kept. Set spec.strategy.maxUpdateNorm "
                      "to bound how far one update can move it"));
    return;
  }
  if (absl::Status s = checkpoint_->WriteWeights(global->data()); !s.ok()) {
    Fail("CheckpointFailed", s.ToString());
    return;
  }
  weights_digest_ = Sha256(global->data(), global->size() * sizeof(float));
  if (absl::Status s = checkpoint_->WriteStrategyState(strategy_->SaveState()); !s.ok()) {
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
  // The round's release is done: compose it (with DP).
  absl::StatusOr<std::optional<double>> epsilon = budget_.Spend(record_.sampling_rate);
  if (!epsilon.ok()) {
    Fail("PrivacyAccountingFailed",
         absl::StrCat("round ", round_, ": ", epsilon.status().message()));
    return;
  }
  if (epsilon->has_value()) {
    record_.epsilon = **epsilon;
    if (metrics_) metrics_->SetPrivacyEpsilon(**epsilon);
  }
  record_.evaluated = false;
  history_.push_back(record_);
  Persist();
  StartEvaluate();
}

void RoundEngine::StartEvaluate() {
  std::vector<std::string> live = clients_.LiveIds();
  selected_ = std::set<std::string>(live.begin(), live.end());
  reported_.clear();
  tenant_eval_.clear();
  deadline_ = clock_->Now() + options_.round_timeout;
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
  record_.seconds = absl::ToDoubleSeconds(clock_->Now() - round_started_);
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
  if (budget_.enabled()) {
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
    waiting_since_ = clock_->Now();
  }
  Persist();
  if (phase_ == Phase::kWaiting) Advance();
}

void RoundEngine::Fail(const std::string& reason, const std::string& message) {
  phase_ = Phase::kFailed;
  reason_ = reason;
  message_ = message;
  selected_.clear();
  LogError(absl::StrCat("aggregator: job failed: ", reason, ": ", message));
  Persist();
  Audit(audit::kJobFinished, {{"phase", "Failed"}, {"reason", reason_}, {"message", message_}});
}

void RoundEngine::Audit(const char* kind, nlohmann::json details) {
  if (options_.audit == nullptr) return;
  absl::StatusOr<audit::Entry> e =
      options_.audit->Append(kind, "aggregator", options_.audit_job, std::move(details));
  if (!e.ok()) {
    LogError(absl::StrCat("aggregator: cannot append to the audit log: ", e.status().ToString()));
  }
}

std::string RoundEngine::TenantLabel(const std::string& tenant) const {
  return options_.weighting.max_examples.count(tenant) ? tenant : "other";
}

absl::Status RoundEngine::RefuseClaim(const std::string& tenant, const std::string& who,
                                      const char* reason, absl::Status why) {
  if (metrics_) metrics_->ClaimRefused(TenantLabel(tenant), reason);
  if (refusals_audited_.insert(absl::StrCat(round_, "/", who)).second) {
    LogWarning(absl::StrCat("aggregator: round ", round_, ": refused a claim of ", who, ": ",
                            why.message()));
    Audit(audit::kClaimRefused, {{"round", round_},
                                 {"tenant", tenant},
                                 {"client", who},
                                 {"reason", reason},
                                 {"message", std::string(why.message())}});
  }
  return why;
}

void RoundEngine::Persist() {
  CheckpointState state;
  state.job = options_.job;
  state.phase = PhaseName(phase_ == Phase::kSucceeded, phase_ == Phase::kFailed, true);
  state.reason = reason_;
  state.message = message_;
  state.history = history_;
  if (absl::Status s = checkpoint_->WriteState(state); !s.ok()) {
    LogError(absl::StrCat("aggregator: cannot write checkpoint state: ", s.ToString()));
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
  s.live_clients = clients_.LiveCount();
  s.history = history_;
  for (const RoundRecord& r : history_) s.rounds_completed += r.evaluated ? 1 : 0;
  if (budget_.enabled()) {
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
