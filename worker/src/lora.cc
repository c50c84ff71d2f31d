#include "braid/worker/lora.h"

#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "braid/core/file_io.h"
#include "braid/core/safetensors.h"
#include "braid/core/status_macros.h"
#include "braid/worker/lora_linear.h"
#include "torch_tensors.h"

namespace braid::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kPeftPrefix[] = "base_model.model.";

bool Targets(const std::string& path, const std::string& target) {
  return path == target || absl::EndsWith(path, absl::StrCat(".", target));
}

// The projections of `model` with their module paths, in registration order.
std::vector<std::pair<std::string, LoraLinearImpl*>> Projections(CausalLmImpl& model) {
  std::vector<std::pair<std::string, LoraLinearImpl*>> out;
  for (const auto& m : model.named_modules("", /*include_self=*/false)) {
    if (auto* linear = m.value()->as<LoraLinearImpl>()) out.emplace_back(m.key(), linear);
  }
  return out;
}

std::string Shape(const torch::Tensor& t) { return absl::StrCat("[", absl::StrJoin(t.sizes().vec(), ", "), "]"); }

}  // namespace

absl::Status ValidateLoraOptions(const LoraOptions& o) {
  if (o.rank < 1) return absl::InvalidArgumentError(absl::StrCat("lora.rank: must be >= 1, got ", o.rank));
  if (!(o.alpha > 0)) return absl::InvalidArgumentError(absl::StrCat("lora.alpha: must be > 0, got ", o.alpha));
  if (!(o.dropout >= 0 && o.dropout < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("lora.dropout: must be in [0, 1), got ", o.dropout));
  }
  if (o.target_modules.empty()) return absl::InvalidArgumentError("lora.target_modules: must not be empty");
  return absl::OkStatus();
}

absl::StatusOr<LoraOptions> ReadPeftAdapterConfig(const std::string& path) {
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 1 << 20));
  auto error = [&](absl::string_view field, absl::string_view problem) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", field, ": ", problem));
  };
  LoraOptions o;
  try {
    const json root = json::parse(text);
    auto present = [&](const char* k) { return root.contains(k) && !root.at(k).is_null(); };
    auto empty_or_null = [&](const char* k) {
      return !present(k) || ((root.at(k).is_object() || root.at(k).is_array()) && root.at(k).empty());
    };
    if (root.value("peft_type", std::string("LORA")) != "LORA") {
      return error("peft_type", absl::StrCat(root.at("peft_type").dump(), " is not supported (LORA)"));
    }
    o.rank = root.at("r").get<int64_t>();
    o.alpha = root.at("lora_alpha").get<double>();
    o.dropout = present("lora_dropout") ? root.at("lora_dropout").get<double>() : 0.0;
    const json& targets = root.at("target_modules");
    if (!targets.is_array()) return error("target_modules", "only a list of module names is supported, not a regex");
    o.target_modules = targets.get<std::vector<std::string>>();
    if (root.value("bias", std::string("none")) != "none") return error("bias", "only \"none\" is supported");
    for (const char* flag : {"use_dora", "use_rslora"}) {
      if (present(flag) && root.at(flag).get<bool>()) return error(flag, "true is not supported");
    }
    for (const char* k : {"rank_pattern", "alpha_pattern", "layers_to_transform", "modules_to_save", "layer_replication"}) {
      if (!empty_or_null(k)) return error(k, "is not supported (must be null or empty)");
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  BRAID_RETURN_IF_ERROR(ValidateLoraOptions(o));
  return o;
}

absl::StatusOr<std::unique_ptr<LoraModel>> LoraModel::Create(std::shared_ptr<CausalLmImpl> base,
                                                             const LoraOptions& options, uint64_t seed) {
  BRAID_RETURN_IF_ERROR(ValidateLoraOptions(options));
  auto projections = Projections(*base);
  std::vector<std::string> all;
  for (const auto& [path, linear] : projections) {
    if (linear->has_lora()) return absl::FailedPreconditionError(absl::StrCat(path, " already has an adapter"));
    all.push_back(path.substr(path.rfind('.') + 1));
  }
  for (const std::string& target : options.target_modules) {
    bool found = false;
    for (const auto& p : projections) found = found || Targets(p.first, target);
    if (!found) {
      std::set<std::string> names(all.begin(), all.end());
      return absl::InvalidArgumentError(absl::StrCat("lora.target_modules: \"", target, "\" matches no module of this ",
                                                     base->config().model_type, " model (targetable: ",
                                                     absl::StrJoin(names, ", "), ")"));
    }
  }
  for (auto& p : base->parameters()) p.set_requires_grad(false);
  std::unique_ptr<LoraModel> lora(new LoraModel(base, options));
  uint64_t module_seed = seed;
  for (const auto& [path, linear] : projections) {
    bool targeted = false;
    for (const std::string& target : options.target_modules) targeted = targeted || Targets(path, target);
    if (!targeted) continue;
    linear->EnableLora(options.rank, options.alpha / options.rank, options.dropout, module_seed++);
    lora->names_.push_back(absl::StrCat(kPeftPrefix, path, ".lora_A.weight"));
    lora->params_.push_back(linear->lora_A->weight);
    lora->names_.push_back(absl::StrCat(kPeftPrefix, path, ".lora_B.weight"));
    lora->params_.push_back(linear->lora_B->weight);
  }
  return lora;
}

absl::StatusOr<std::unique_ptr<LoraModel>> LoraModel::FromPeftFolder(std::shared_ptr<CausalLmImpl> base,
                                                                     const std::string& adapter_dir) {
  BRAID_ASSIGN_OR_RETURN(LoraOptions options,
                         ReadPeftAdapterConfig((fs::path(adapter_dir) / "adapter_config.json").string()));
  const std::string weights = (fs::path(adapter_dir) / "adapter_model.safetensors").string();
  BRAID_ASSIGN_OR_RETURN(safetensors::File file, safetensors::Read(weights));
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<LoraModel> lora, Create(std::move(base), options, 0));
  if (absl::Status s = lora->SetAdapter(file.tensors); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(weights, ": ", s.message()));
  }
  return lora;
}

std::vector<torch::Tensor> LoraModel::AdapterParameters() const { return params_; }

TensorList LoraModel::GetAdapter() const {
  TensorList out;
  out.reserve(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) out.push_back(ToF32Tensor(names_[i], params_[i]));
  return out;
}

absl::Status LoraModel::SetAdapter(const TensorList& adapter) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < names_.size(); ++i) index.emplace(names_[i], i);
  std::vector<torch::Tensor> values(params_.size());
  for (const Tensor& t : adapter) {
    auto it = index.find(t.name);
    if (it == index.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected adapter tensor '", t.name,
                                                     "' (this adapter has ", names_.size(), " tensors, e.g. '",
                                                     names_.empty() ? "" : names_[0], "')"));
    }
    if (values[it->second].defined()) {
      return absl::InvalidArgumentError(absl::StrCat("adapter tensor '", t.name, "' given twice"));
    }
    BRAID_ASSIGN_OR_RETURN(torch::Tensor value, ToTorchF32(t));
    const torch::Tensor& param = params_[it->second];
    if (!value.sizes().equals(param.sizes())) {
      return absl::InvalidArgumentError(absl::StrCat("adapter tensor '", t.name, "': shape ", Shape(value),
                                                     ", expected ", Shape(param), " (rank ", options_.rank, ")"));
    }
    values[it->second] = value;
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!values[i].defined()) return absl::InvalidArgumentError(absl::StrCat("missing adapter tensor '", names_[i], "'"));
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < values.size(); ++i) params_[i].copy_(values[i]);
  return absl::OkStatus();
}

torch::Tensor LoraModel::Loss(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const torch::Tensor& labels) {
  return CausalLmLoss(model_->forward(input_ids, attention_mask), labels);
}

absl::Status LoraModel::WriteAdapter(const std::string& dir, const std::string& base_model_name_or_path) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot create: ", ec.message()));
  const bool conv1d = model_->config().family == DecoderFamily::kGpt2;
  json config = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model_name_or_path},
      {"r", options_.rank},
      {"lora_alpha", options_.alpha},
      {"lora_dropout", options_.dropout},
      {"target_modules", options_.target_modules},
      {"fan_in_fan_out", conv1d},
      {"bias", "none"},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"use_rslora", false},
      {"use_dora", false},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"layers_pattern", nullptr},
      {"rank_pattern", json::object()},
      {"alpha_pattern", json::object()},
      {"revision", nullptr},
  };
  BRAID_RETURN_IF_ERROR(
      safetensors::Write((fs::path(dir) / "adapter_model.safetensors").string(), GetAdapter(), {{"format", "pt"}}));
  const std::string text = config.dump(2) + "\n";
  return WriteFileAtomically((fs::path(dir) / "adapter_config.json").string(), {text});
}

}  // namespace braid::worker
