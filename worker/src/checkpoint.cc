#include "braid/worker/checkpoint.h"

#include <filesystem>
#include <map>
#include <optional>
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

// A tied checkpoint's own lm_head.weight, found while loading: compared with
// the embedding once every shard is read.
struct TiedHead {
  std::string path;
  safetensors::Entry entry;
};

// The embedding an lm_head is tied to.
std::string EmbeddingName(const DecoderConfig& config) {
  return config.family == DecoderFamily::kGpt2 ? "transformer.wte.weight"
                                               : "model.embed_tokens.weight";
}

absl::Status LoadShard(const std::string& path, const DecoderConfig& config,
                       std::map<std::string, torch::Tensor>& params,
                       std::map<std::string, std::string>& loaded_from,
                       std::optional<TiedHead>& tied_head) {
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
      if (name == "lm_head.weight" && config.tie_word_embeddings) {
        tied_head = TiedHead{path, e};
        continue;
      }
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

// tie_word_embeddings: true with an lm_head.weight in the file that is not
// the embedding. Hugging Face's answer has changed between versions (4.54
// ties unconditionally and drops the file's head; later versions keep a
// head that differs and only warn), so the same files would evaluate
// differently there and here: refused, naming the file and both fields.
absl::Status CheckTiedHead(const TiedHead& head, const DecoderConfig& config,
                           const std::map<std::string, torch::Tensor>& params,
                           const std::string& config_file) {
  const std::string embedding = EmbeddingName(config);
  auto it = params.find(embedding);
  if (it == params.end()) return absl::OkStatus();
  const std::string problem = absl::StrCat(
      head.path, ": lm_head.weight differs from ", embedding, " but ", config_file,
      " sets tie_word_embeddings: true (Hugging Face versions disagree on which one the model "
      "then uses); remove lm_head.weight from the checkpoint to tie them, or set "
      "tie_word_embeddings: false to keep a separate head");
  if (head.entry.shape != it->second.sizes().vec()) {
    return absl::InvalidArgumentError(absl::StrCat(problem, " (shape ", ShapeString(head.entry.shape),
                                                   ", the embedding's ",
                                                   ShapeString(it->second.sizes().vec()), ")"));
  }
  BRAID_ASSIGN_OR_RETURN(
      torch::ScalarType type,
      FloatScalarType(head.entry.dtype, absl::StrCat("tensor 'lm_head.weight' in ", head.path)));
  BRAID_ASSIGN_OR_RETURN(FileReader reader, FileReader::Open(head.path));
  torch::Tensor raw = torch::empty(head.entry.shape, torch::TensorOptions().dtype(type));
  BRAID_RETURN_IF_ERROR(reader.ReadAt(head.entry.file_offset, raw.data_ptr(), head.entry.nbytes));
  if (!torch::equal(raw.to(torch::kFloat), it->second)) {
    return absl::InvalidArgumentError(problem);
  }
  return absl::OkStatus();
}

// Every weight finite: a NaN or infinity in a checkpoint would surface
// rounds later as a "diverged" job that no learning rate can fix.
absl::Status CheckFinite(const std::map<std::string, torch::Tensor>& params,
                         const std::map<std::string, std::string>& loaded_from) {
  for (const auto& [name, param] : params) {
    const int64_t bad = (~torch::isfinite(param)).sum().item<int64_t>();
    if (bad > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' in ", loaded_from.at(name), ": ", bad, " of ",
                       param.numel(),
                       " values are NaN or infinite; the checkpoint is corrupt (re-download or "
                       "re-export it)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<CausalLmImpl>> LoadCausalLm(const std::string& folder) {
  if (!fs::is_directory(folder)) return absl::NotFoundError(absl::StrCat(folder, ": not a directory"));
  const std::string config_file = (fs::path(folder) / "config.json").string();
  BRAID_ASSIGN_OR_RETURN(DecoderConfig config, ReadDecoderConfig(config_file));
  BRAID_ASSIGN_OR_RETURN(std::vector<std::string> shards, ShardFiles(folder));
  try {
    std::shared_ptr<CausalLmImpl> model = MakeCausalLm(config);
    std::map<std::string, torch::Tensor> params;
    for (auto& p : model->named_parameters()) params.emplace(p.key(), p.value());
    std::map<std::string, std::string> loaded_from;
    std::optional<TiedHead> tied_head;
    for (const std::string& shard : shards) {
      BRAID_RETURN_IF_ERROR(LoadShard(shard, config, params, loaded_from, tied_head));
    }
    for (const auto& [name, _] : params) {
      if (!loaded_from.count(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("missing tensor '", name, "' (looked in ", absl::StrJoin(shards, ", "), ")"));
      }
    }
    if (tied_head.has_value()) {
      BRAID_RETURN_IF_ERROR(CheckTiedHead(*tied_head, config, params, config_file));
    }
    BRAID_RETURN_IF_ERROR(CheckFinite(params, loaded_from));
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
