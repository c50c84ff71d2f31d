#include "braid/aggregator/checkpoint.h"

#include <cmath>
#include <filesystem>
#include <limits>

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

// `key` under the JSON path `path` ("" for the document itself).
std::string Child(const std::string& path, const std::string& key) {
  return path.empty() ? key : absl::StrCat(path, ".", key);
}

// Reads the fields of one JSON object of the state, each optional (absent:
// the default is kept) unless said otherwise, and remembers the first field
// of the wrong type by its path in the file ("history[2].train_loss: expected
// a finite number, got null"), so that a corrupt value is named rather than
// reported as a parse error somewhere.
class FieldReader {
 public:
  // `path`: where `object` is in the file ("" for the document).
  FieldReader(const json& object, std::string path, std::string* error)
      : object_(object), path_(std::move(path)), error_(error) {
    if (!object_.is_object()) Fail(path_.empty() ? "the document" : path_, &object_, "an object");
  }

  void Number(const char* key, double* out) {
    const json* v = Find(key);
    if (v == nullptr) return;
    if (v->is_number() && std::isfinite(v->get<double>())) {
      *out = v->get<double>();
    } else {
      Fail(Path(key), v, "a finite number");
    }
  }
  template <typename Int>
  void Integer(const char* key, Int* out, bool required = false) {
    const json* v = Find(key);
    if (v == nullptr) {
      if (required) Fail(Path(key), nullptr, "an integer");
      return;
    }
    const bool fits = v->is_number_unsigned()
                          ? v->get<uint64_t>() <= static_cast<uint64_t>(
                                                      std::numeric_limits<Int>::max())
                          : v->is_number_integer() &&
                                v->get<int64_t>() >= std::numeric_limits<Int>::min() &&
                                v->get<int64_t>() <= std::numeric_limits<Int>::max();
    if (fits) {
      *out = static_cast<Int>(v->get<int64_t>());
    } else {
      Fail(Path(key), v, "an integer in range");
    }
  }
  void Bool(const char* key, bool* out) {
    const json* v = Find(key);
    if (v == nullptr) return;
    if (v->is_boolean()) {
      *out = v->get<bool>();
    } else {
      Fail(Path(key), v, "true or false");
    }
  }
  void String(const char* key, std::string* out, bool required = false) {
    const json* v = Find(key);
    if (v == nullptr) {
      if (required) Fail(Path(key), nullptr, "a string");
      return;
    }
    if (v->is_string()) {
      *out = v->get<std::string>();
    } else {
      Fail(Path(key), v, "a string");
    }
  }
  void Strings(const char* key, std::vector<std::string>* out) {
    const json* v = Find(key);
    if (v == nullptr) return;
    if (!v->is_array()) return Fail(Path(key), v, "a list of strings");
    for (size_t i = 0; i < v->size(); ++i) {
      const json& item = (*v)[i];
      if (!item.is_string()) return Fail(absl::StrCat(Path(key), "[", i, "]"), &item, "a string");
      out->push_back(item.get<std::string>());
    }
  }
  // The list at `key` (empty if absent), or null if it is not a list.
  const json* List(const char* key) {
    static const json* const kEmpty = new json(json::array());
    const json* v = Find(key);
    if (v == nullptr) return kEmpty;
    if (!v->is_array()) {
      Fail(Path(key), v, "a list");
      return nullptr;
    }
    return v;
  }
  std::string Path(const char* key) const { return Child(path_, key); }

 private:
  const json* Find(const char* key) const {
    if (!object_.is_object()) return nullptr;
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  // `got`: the value found; null when the field is missing.
  void Fail(const std::string& path, const json* got, const char* expected) {
    if (!error_->empty()) return;  // the first error is the one reported
    std::string shown = got == nullptr ? "nothing" : got->dump();
    if (shown.size() > 64) shown = shown.substr(0, 60) + " ...";
    *error_ = absl::StrCat(path, ": expected ", expected, ", got ", shown);
  }

  const json& object_;
  const std::string path_;
  std::string* error_;
};

// One history entry at `path` ("history[2]"); sets *error on the first bad
// field.
RoundRecord RecordFromJson(const json& j, const std::string& path, std::string* error) {
  RoundRecord r;
  FieldReader f(j, path, error);
  f.Integer("round", &r.round, /*required=*/true);
  f.Integer("sampled", &r.sampled);
  f.Integer("participants", &r.participants);
  f.Strings("tenants", &r.tenants);
  f.Number("train_loss", &r.train_loss);
  f.Number("eval_loss", &r.eval_loss);
  f.Number("eval_accuracy", &r.eval_accuracy);
  f.Integer("eval_examples", &r.eval_examples);
  if (const json* evals = f.List("tenant_eval")) {
    for (size_t i = 0; i < evals->size(); ++i) {
      TenantEval e;
      FieldReader t((*evals)[i], absl::StrCat(f.Path("tenant_eval"), "[", i, "]"), error);
      t.String("tenant", &e.tenant, /*required=*/true);
      t.Number("eval_loss", &e.eval_loss);
      t.Number("eval_accuracy", &e.eval_accuracy);
      t.Integer("eval_examples", &e.eval_examples);
      r.tenant_eval.push_back(std::move(e));
    }
  }
  f.Bool("evaluated", &r.evaluated);
  f.Number("seconds", &r.seconds);
  f.Integer("bytes_up", &r.bytes_up);
  f.Integer("bytes_down", &r.bytes_down);
  f.Number("update_norm_mean", &r.update_norm_mean);
  f.Number("sampling_rate", &r.sampling_rate);
  f.Number("epsilon", &r.epsilon);
  return r;
}

// The path of the first number in `j` (at `path`) that is not finite, which
// JSON cannot hold (nlohmann writes it as null, which then cannot be read
// back as a number); "" if none.
std::string FirstNonFinite(const json& j, const std::string& path) {
  if (j.is_number_float()) return std::isfinite(j.get<double>()) ? "" : path;
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      std::string bad = FirstNonFinite(it.value(), Child(path, it.key()));
      if (!bad.empty()) return bad;
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      std::string bad = FirstNonFinite(j[i], absl::StrCat(path, "[", i, "]"));
      if (!bad.empty()) return bad;
    }
  }
  return "";
}

absl::StatusOr<CheckpointState> ReadState(const std::string& path, audit::Anchor* anchor) {
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 64 << 20));
  CheckpointState state;
  std::string error;
  json j = json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    error = "not valid JSON";
  } else {
    if (j.is_object() && j.contains("audit")) {
      absl::StatusOr<audit::Anchor> a = audit::AnchorFromJson(j["audit"], path + ": audit");
      if (!a.ok()) {
        return absl::DataLossError(
            absl::StrCat(a.status().message(),
                         "; move the checkpoint directory away to start the job afresh"));
      }
      *anchor = *std::move(a);
    }
    FieldReader f(j, "", &error);
    f.String("job", &state.job, /*required=*/true);
    f.String("phase", &state.phase);
    f.String("reason", &state.reason);
    f.String("message", &state.message);
    if (const json* history = f.List("history")) {
      for (size_t i = 0; i < history->size() && error.empty(); ++i) {
        state.history.push_back(
            RecordFromJson((*history)[i], absl::StrCat("history[", i, "]"), &error));
      }
    }
  }
  if (!error.empty()) {
    return absl::DataLossError(
        absl::StrCat(path, ": corrupt checkpoint state: ", error,
                     "; correct that value, or move the checkpoint directory away to start the "
                     "job afresh"));
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
  // Never write what cannot be read back: the last good state stays.
  if (std::string bad = FirstNonFinite(j, ""); !bad.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        state_path_, ": not written: ", bad, " is not a finite number (JSON has none)"));
  }
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
