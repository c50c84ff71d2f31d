#include "braid/aggregator/checkpoint.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"

namespace braid::aggregator {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json TenantEvalToJson(const std::vector<TenantEval>& evals) {
  json out = json::array();
  for (const TenantEval& e : evals) {
    out.push_back({{"tenant", e.tenant},
                   {"eval_loss", e.eval_loss},
                   {"eval_accuracy", e.eval_accuracy},
                   {"eval_examples", e.eval_examples}});
  }
  return out;
}

json RecordToJson(const RoundRecord& r) {
  return json{{"round", r.round},
              {"sampled", r.sampled},
              {"participants", r.participants},
              {"tenants", r.tenants},
              {"train_loss", r.train_loss},
              {"eval_loss", r.eval_loss},
              {"eval_accuracy", r.eval_accuracy},
              {"eval_examples", r.eval_examples},
              {"tenant_eval", TenantEvalToJson(r.tenant_eval)},
              {"evaluated", r.evaluated},
              {"seconds", r.seconds},
              {"bytes_up", r.bytes_up},
              {"bytes_down", r.bytes_down},
              {"update_norm_mean", r.update_norm_mean},
              {"sampling_rate", r.sampling_rate},
              {"epsilon", r.epsilon}};
}

RoundRecord RecordFromJson(const json& j) {
  RoundRecord r;
  r.round = j.at("round").get<int>();
  r.sampled = j.value("sampled", 0);
  r.participants = j.value("participants", 0);
  r.tenants = j.value("tenants", std::vector<std::string>{});
  r.train_loss = j.value("train_loss", 0.0);
  r.eval_loss = j.value("eval_loss", 0.0);
  r.eval_accuracy = j.value("eval_accuracy", 0.0);
  r.eval_examples = j.value("eval_examples", int64_t{0});
  for (const json& e : j.value("tenant_eval", json::array())) {
    r.tenant_eval.push_back({e.at("tenant").get<std::string>(), e.value("eval_loss", 0.0),
                             e.value("eval_accuracy", 0.0), e.value("eval_examples", int64_t{0})});
  }
  r.evaluated = j.value("evaluated", false);
  r.seconds = j.value("seconds", 0.0);
  r.bytes_up = j.value("bytes_up", int64_t{0});
  r.bytes_down = j.value("bytes_down", int64_t{0});
  r.update_norm_mean = j.value("update_norm_mean", 0.0);
  r.sampling_rate = j.value("sampling_rate", 0.0);
  r.epsilon = j.value("epsilon", 0.0);
  return r;
}

absl::StatusOr<CheckpointState> ReadState(const std::string& path, audit::Anchor* anchor) {
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 64 << 20));
  CheckpointState state;
  try {
    json j = json::parse(text);
    if (j.contains("audit")) {
      absl::StatusOr<audit::Anchor> a = audit::AnchorFromJson(j["audit"], path + ": audit");
      if (!a.ok()) {
        return absl::DataLossError(
            absl::StrCat(a.status().message(),
                         "; move the checkpoint directory away to start the job afresh"));
      }
      *anchor = *std::move(a);
    }
    state.job = j.at("job").get<std::string>();
    state.phase = j.value("phase", "Pending");
    state.reason = j.value("reason", "");
    state.message = j.value("message", "");
    for (const json& r : j.value("history", json::array())) {
      state.history.push_back(RecordFromJson(r));
    }
  } catch (const json::exception& e) {
    return absl::DataLossError(
        absl::StrCat(path, ": corrupt checkpoint state (", e.what(),
                     "); move the checkpoint directory away to start the job afresh"));
  }
  for (size_t i = 0; i < state.history.size(); ++i) {
    if (state.history[i].round != static_cast<int>(i) + 1) {
      return absl::DataLossError(absl::StrCat(path, ": history entry ", i, " is round ",
                                              state.history[i].round, ", expected ", i + 1));
    }
  }
  return state;
}

}  // namespace

absl::StatusOr<Checkpoint> Checkpoint::Open(const std::string& dir, const std::string& job,
                                            const std::string& initial_model) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(dir, ": cannot create: ", ec.message()));
  Checkpoint cp;
  cp.dir_ = dir;
  cp.model_path_ = (fs::path(dir) / "model.safetensors").string();
  cp.state_path_ = (fs::path(dir) / "state.json").string();
  cp.strategy_path_ = (fs::path(dir) / "strategy.state").string();

  const bool have_model = fs::exists(cp.model_path_);
  const bool have_state = fs::exists(cp.state_path_);
  if (have_state) {
    audit::Anchor anchor;
    BRAID_ASSIGN_OR_RETURN(cp.state_, ReadState(cp.state_path_, &anchor));
    {
      absl::MutexLock lock(&cp.audit_->mu);
      cp.audit_->anchor = std::move(anchor);
    }
    if (cp.state_.job != job) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, " holds a checkpoint of job '", cp.state_.job, "', not '", job,
                       "'; use another checkpoint directory"));
    }
    if (!have_model) {
      return absl::DataLossError(absl::StrCat(cp.model_path_, ": missing beside ", cp.state_path_));
    }
  } else {
    if (initial_model.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, " holds no checkpoint; pass --initial-model (a safetensors file, "
                            "e.g. from `braid-worker init`)"));
    }
    // Validate the header against the file, then copy it in chunks: the
    // model is never held in memory whole.
    BRAID_ASSIGN_OR_RETURN(safetensors::Index initial, safetensors::ReadIndex(initial_model));
    for (const safetensors::Entry& e : initial.entries) {
      if (e.dtype != DType::kF32) {
        return absl::InvalidArgumentError(absl::StrCat(
            initial_model, ": tensor '", e.name, "' is ", std::string(DTypeName(e.dtype)),
            "; the aggregator averages F32 weights only"));
      }
    }
    BRAID_RETURN_IF_ERROR(CopyFileAtomically(initial_model, cp.model_path_));
    cp.state_.job = job;
    BRAID_RETURN_IF_ERROR(cp.WriteState(cp.state_));
  }
  BRAID_ASSIGN_OR_RETURN(cp.index_, safetensors::ReadIndex(cp.model_path_));
  for (const safetensors::Entry& e : cp.index_.entries) {
    if (e.dtype != DType::kF32) {
      return absl::DataLossError(absl::StrCat(cp.model_path_, ": tensor '", e.name, "' is ",
                                              std::string(DTypeName(e.dtype)), ", expected F32"));
    }
    cp.model_bytes_ += e.nbytes;
  }
  // Keep the header bytes so WriteWeights can write the same layout.
  BRAID_ASSIGN_OR_RETURN(cp.header_, ReadFileRange(cp.model_path_, 0, cp.index_.data_begin));
  return cp;
}

absl::Status Checkpoint::ReadWeights(uint64_t offset, void* out, uint64_t len) const {
  if (offset + len > model_bytes_) {
    return absl::OutOfRangeError(absl::StrCat("read past the model's ", model_bytes_, " bytes"));
  }
  return ReadFileInto(model_path_, index_.data_begin + offset, out, len);
}

absl::Status Checkpoint::WriteWeights(const void* data) {
  return WriteFileAtomically(
      model_path_, {std::string_view(header_),
                    std::string_view(static_cast<const char*>(data), model_bytes_)});
}

absl::Status Checkpoint::WriteStateFile(const CheckpointState& state,
                                        const audit::Anchor& anchor) {
  json history = json::array();
  for (const RoundRecord& r : state.history) history.push_back(RecordToJson(r));
  json j{{"job", state.job},
         {"phase", state.phase},
         {"reason", state.reason},
         {"message", state.message},
         {"history", history}};
  if (anchor.entries > 0) j["audit"] = anchor.ToJson();
  return WriteFileAtomically(state_path_, {j.dump(2)});
}

absl::Status Checkpoint::WriteState(const CheckpointState& state) {
  absl::MutexLock lock(&audit_->mu);
  BRAID_RETURN_IF_ERROR(WriteStateFile(state, audit_->anchor));
  state_ = state;
  return absl::OkStatus();
}

audit::Anchor Checkpoint::audit_anchor() const {
  absl::MutexLock lock(&audit_->mu);
  return audit_->anchor;
}

absl::Status Checkpoint::WriteAuditAnchor(const audit::Anchor& anchor) {
  absl::MutexLock lock(&audit_->mu);
  audit_->anchor = anchor;
  return WriteStateFile(state_, anchor);
}

absl::StatusOr<std::string> Checkpoint::ReadStrategyState() const {
  std::error_code ec;
  const uintmax_t size = fs::file_size(strategy_path_, ec);
  if (ec) {
    if (!fs::exists(strategy_path_)) return std::string();
    return absl::DataLossError(absl::StrCat(strategy_path_, ": ", ec.message()));
  }
  return ReadFileRange(strategy_path_, 0, size);
}

absl::Status Checkpoint::WriteStrategyState(std::string_view state) {
  if (state.empty()) {
    std::error_code ec;
    fs::remove(strategy_path_, ec);
    if (ec) return absl::InternalError(absl::StrCat(strategy_path_, ": cannot remove: ", ec.message()));
    return absl::OkStatus();
  }
  return WriteFileAtomically(strategy_path_, {state});
}

}  // namespace braid::aggregator
