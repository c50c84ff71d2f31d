#include "braid/worker/checkpoint.h"

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

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// The shard files of a folder, in the order to read them.
absl::StatusOr<std::vector<std::string>> ShardFiles(const std::string& folder) {
  const fs::path single = fs::path(folder) / "model.safetensors";
  const fs::path index = fs::path(folder) / "model.safetensors.index.json";
  if (fs::exists(single)) return std::vector<std::string>{single.string()};
  if (!fs::exists(index)) {
    return absl::NotFoundError(absl::StrCat(folder, ": neither model.safetensors nor ",
                                            "model.safetensors.index.json exists"));
  }
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(index.string(), 64 << 20));
  std::set<std::string> files;
  try {
    const auto root = nlohmann::json::parse(text);
    const auto& map = root.at("weight_map");
    if (!map.is_object()) throw std::runtime_error("weight_map must be an object");
    for (const auto& [name, file] : map.items()) {
      const std::string f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f == "..") {
        throw std::runtime_error(absl::StrCat("weight_map[\"", name, "\"]: \"", f,
                                              "\" must be a file name in the folder"));
      }
      files.insert(f);
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(index.string(), ": ", e.what()));
  }
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back((fs::path(folder) / f).string());
  return paths;
}

// Whether a checkpoint tensor is a known leftover that holds no parameter.
bool IsIgnoredBuffer(const std::string& name) {
  return absl::EndsWith(name, ".attn.bias") || absl::EndsWith(name, ".attn.masked_bias") ||
         absl::EndsWith(name, ".rotary_emb.inv_freq");
}

absl::Status LoadShard(const std::string& path, const DecoderConfig& config,
                       std::map<std::string, torch::Tensor>& params, std::map<std::string, std::string>& loaded_from) {
  BRAID_ASSIGN_OR_RETURN(safetensors::Index index, safetensors::ReadIndex(path));
  BRAID_ASSIGN_OR_RETURN(FileReader reader, FileReader::Open(path));
  torch::NoGradGuard no_grad;
  for (const safetensors::Entry& e : index.entries) {
    std::string name = e.name;
    if (config.family == DecoderFamily::kGpt2 && !absl::StartsWith(name, "transformer.") &&
        !absl::StartsWith(name, "lm_head.")) {
      name = absl::StrCat("transformer.", name);
    }
    if (IsIgnoredBuffer(name)) continue;
    auto it = params.find(name);
    if (it == params.end()) {
      if (name == "lm_head.weight" && config.tie_word_embeddings) continue;
      return absl::InvalidArgumentError(absl::StrCat("unexpected tensor '", e.name, "' in ", path,
                                                     " (the ", config.model_type, " config has no such parameter)"));
    }
    if (auto [prev, fresh] = loaded_from.emplace(name, path); !fresh) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", e.name, "' is in both ", prev->second, " and ", path));
    }
    torch::Tensor& param = it->second;
    if (param.sizes().vec() != e.shape) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", e.name, "' in ", path, ": shape ",
                                                     ShapeString(e.shape), ", the config implies ",
                                                     ShapeString(param.sizes().vec())));
    }
    BRAID_ASSIGN_OR_RETURN(torch::ScalarType type,
                           FloatScalarType(e.dtype, absl::StrCat("tensor '", e.name, "' in ", path)));
    if (type == torch::kFloat) {
      BRAID_RETURN_IF_ERROR(reader.ReadAt(e.file_offset, param.data_ptr(), e.nbytes));
    } else {
      torch::Tensor raw = torch::empty(e.shape, torch::TensorOptions().dtype(type));
      BRAID_RETURN_IF_ERROR(reader.ReadAt(e.file_offset, raw.data_ptr(), e.nbytes));
      param.copy_(raw);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<CausalLmImpl>> LoadCausalLm(const std::string& folder) {
  if (!fs::is_directory(folder)) return absl::NotFoundError(absl::StrCat(folder, ": not a directory"));
  BRAID_ASSIGN_OR_RETURN(DecoderConfig config, ReadDecoderConfig((fs::path(folder) / "config.json").string()));
  BRAID_ASSIGN_OR_RETURN(std::vector<std::string> shards, ShardFiles(folder));
  try {
    std::shared_ptr<CausalLmImpl> model = MakeCausalLm(config);
    std::map<std::string, torch::Tensor> params;
    for (auto& p : model->named_parameters()) params.emplace(p.key(), p.value());
    std::map<std::string, std::string> loaded_from;
    for (const std::string& shard : shards) BRAID_RETURN_IF_ERROR(LoadShard(shard, config, params, loaded_from));
    for (const auto& [name, _] : params) {
      if (!loaded_from.count(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("missing tensor '", name, "' (looked in ", absl::StrJoin(shards, ", "), ")"));
      }
    }
    return model;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(folder, ": LibTorch: ", e.what_without_backtrace()));
  }
}

absl::Status WriteMergedWeights(CausalLmImpl& model, const std::string& path) {
  TensorList out;
  try {
    std::map<std::string, LoraLinearImpl*> adapted;
    for (const auto& m : model.named_modules("", /*include_self=*/false)) {
      if (auto* linear = m.value()->as<LoraLinearImpl>(); linear && linear->has_lora()) {
        adapted.emplace(m.key() + ".weight", linear);
      }
    }
    for (const auto& p : model.named_parameters()) {
      if (absl::StrContains(p.key(), ".lora_A.") || absl::StrContains(p.key(), ".lora_B.")) continue;
      auto it = adapted.find(p.key());
      out.push_back(ToF32Tensor(p.key(), it == adapted.end() ? p.value() : it->second->MergedWeight()));
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(path, ": LibTorch: ", e.what_without_backtrace()));
  }
  return safetensors::Write(path, out, {{"format", "pt"}});
}

}  // namespace braid::worker
