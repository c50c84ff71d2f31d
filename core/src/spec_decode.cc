// The job's top level, metadata and the spec sections other than tenants.
#include "spec_decode.h"

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "braid/core/file_io.h"
#include "braid/core/job_footprint.h"
#include "nlohmann/json.hpp"

namespace braid::spec::internal {
namespace {

constexpr int kMaxHiddenLayers = 64;
constexpr int kMaxLayerWidth = 65536;
constexpr int kMaxClasses = 100000;
constexpr size_t kMaxFeatures = 65536;
constexpr size_t kMaxColumnBytes = 256;
constexpr int kMaxRounds = 100000;
constexpr int kMaxMinClients = kMaxTenants * 1000;
constexpr double kMaxRoundTimeoutSeconds = 7 * 24 * 3600;
constexpr int kMaxEpochs = 10000;
constexpr int kMaxBatchSize = 1048576;
constexpr int kMaxLoraRank = 4096;
constexpr size_t kMaxTargets = 64;
constexpr size_t kMaxModuleNameBytes = 128;
constexpr int kMinMaxLength = 8;
constexpr int kMaxMaxLength = 131072;
constexpr double kMaxUpdateNormBound = 1e12;
constexpr double kMaxClipNorm = 1e6;
constexpr double kMaxNoiseMultiplier = 1000;
constexpr double kMaxDelta = 0.1;
constexpr double kMaxEpsilonBound = 1000;

// ObjectMeta fields that kubectl and the API server write; accepted so that
// `kubectl get -o yaml` output runs as is, and never read.
const std::vector<std::string_view> kObjectMetaIgnored = {
    "labels",          "annotations",       "uid",
    "resourceVersion", "generation",        "creationTimestamp",
    "managedFields",   "finalizers",        "ownerReferences",
    "generateName",    "deletionTimestamp", "deletionGracePeriodSeconds",
    "selfLink"};

// Lower case, runs of other characters as one '-', trimmed to a label.
std::string SuggestLabel(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum) {
      out.push_back(c);
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
    if (out.size() >= 63) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

// A CSV column name: non-empty and free of what the CSV reader splits on.
bool ReadColumn(const YAML::Node& node, const std::string& path, Errors* errors,
                std::string* out) {
  if (!ReadString(node, path, errors, out, kMaxColumnBytes)) return false;
  if (out->empty()) {
    errors->Add(path, "must be a column name, got \"\"");
    return false;
  }
  if (out->find_first_of(",\"\r\n") != std::string::npos) {
    errors->Add(path, "must be a CSV column name without ',', '\"' or line breaks, got " +
                          Quote(*out));
    return false;
  }
  return true;
}

void DecodeMlp(const YAML::Node& node, const std::string& path, MlpModel* mlp,
               Errors* errors) {
  MapReader m(node, path, {"hidden", "numClasses"}, errors);
  if (const YAML::Node* hidden = m.Find("hidden")) {
    if (CheckList(*hidden, m.Path("hidden"), 0, kMaxHiddenLayers, "layer widths", errors)) {
      mlp->hidden.clear();
      size_t i = 0;
      for (auto it = hidden->begin(); it != hidden->end(); ++it, ++i) {
        int width = 0;
        if (ReadInt(*it, IndexPath(m.Path("hidden"), i), 1, kMaxLayerWidth, errors, &width)) {
          mlp->hidden.push_back(width);
        }
      }
    }
  }
  if (const YAML::Node* n = m.Find("numClasses")) {
    ReadInt(*n, m.Path("numClasses"), 2, kMaxClasses, errors, &mlp->num_classes);
  }
}

// Module names as PEFT's target_modules spells them ("q_proj", "c_attn",
// "mlp.down_proj").
bool IsModuleName(std::string_view s) {
  if (s.empty() || s.size() > kMaxModuleNameBytes) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

void DecodeAdapter(const YAML::Node& node, const std::string& path, Adapter* adapter,
                   Errors* errors) {
  MapReader m(node, path, {"type", "rank", "alpha", "dropout", "targets", "writeMerged"},
              errors);
  if (!m.ok()) return;
  if (const YAML::Node* n = m.Find("type")) {
    ReadEnum(*n, m.Path("type"), {"lora"}, errors, &adapter->type);
  }
  if (const YAML::Node* n = m.Find("rank")) {
    ReadInt(*n, m.Path("rank"), 1, kMaxLoraRank, errors, &adapter->rank);
  }
  if (const YAML::Node* n = m.Find("alpha")) {
    ReadNumber(*n, m.Path("alpha"), {0, true, 100000, false}, errors, &adapter->alpha);
  }
  if (const YAML::Node* n = m.Find("dropout")) {
    ReadNumber(*n, m.Path("dropout"), {0, false, 1, true}, errors, &adapter->dropout);
  }
  if (const YAML::Node* n = m.Find("writeMerged")) {
    ReadBool(*n, m.Path("writeMerged"), errors, &adapter->write_merged);
  }
  if (const YAML::Node* targets = m.Find("targets")) {
    const std::string targets_path = m.Path("targets");
    if (CheckList(*targets, targets_path, 1, kMaxTargets, "module names", errors)) {
      std::vector<std::string> names;
      std::unordered_map<std::string, size_t> first;
      size_t i = 0;
      for (auto it = targets->begin(); it != targets->end(); ++it, ++i) {
        const std::string item_path = IndexPath(targets_path, i);
        std::string name;
        if (!ReadString(*it, item_path, errors, &name)) continue;
        if (!IsModuleName(name)) {
          errors->Add(item_path,
                      "must be a module name of 1..128 letters, digits, '_' or '.' (e.g. "
                      "q_proj), got " +
                          Quote(name));
          continue;
        }
        auto [where, inserted] = first.emplace(name, i);
        if (!inserted) {
          errors->Add(item_path, "duplicate module " + Quote(name) + " (also " +
                                     IndexPath(targets_path, where->second) + ")");
          continue;
        }
        names.push_back(std::move(name));
      }
      adapter->targets = std::move(names);
    }
  }
}

}  // namespace

bool DecodeModel(const YAML::Node& node, const ParseOptions& options, JobSpec* job,
                 Errors* errors) {
  Model* model = &job->model;
  MapReader m(node, "spec.model", {"kind", "mlp", "base", "adapter"}, errors);
  if (!m.ok()) return false;
  if (const YAML::Node* n = m.Find("kind")) {
    if (!ReadEnum(*n, m.Path("kind"), {"mlp", "llama", "gpt2"}, errors, &model->kind)) {
      return false;
    }
  }
  if (!model->IsLanguageModel()) {
    for (std::string_view llm_only : {"base", "adapter"}) {
      if (m.Find(llm_only) != nullptr) {
        errors->Add(m.Path(llm_only),
                    "set only with kind: llama or gpt2; this model's kind is \"mlp\"");
      }
    }
    if (const YAML::Node* n = m.Find("mlp")) DecodeMlp(*n, m.Path("mlp"), &model->mlp, errors);
    return true;
  }
  if (m.Find("mlp") != nullptr) {
    errors->Add(m.Path("mlp"), "set only with kind: mlp; this model's kind is " +
                                   Quote(model->kind));
  }
  if (const YAML::Node* n = m.Require(
          "base", "the Hugging Face checkpoint folder, e.g. base: {path: models/smollm2-135m}")) {
    DecodeDataSource(*n, m.Path("base"), options, *job, SourceKind::kDirectory, &model->base,
                     errors);
  }
  model->adapter.targets.clear();
  if (const YAML::Node* n = m.Find("adapter")) {
    DecodeAdapter(*n, m.Path("adapter"), &model->adapter, errors);
  }
  if (model->adapter.targets.empty()) {
    // PEFT's defaults for these architectures.
    if (model->kind == "gpt2") {
      model->adapter.targets = {"c_attn"};
    } else {
      model->adapter.targets = {"q_proj", "v_proj"};
    }
  }
  return true;
}

namespace {

void DecodeCsvData(const MapReader& m, DataSchema* data, Errors* errors) {
  const std::string features_path = m.Path("features");
  bool features_ok = false;
  if (const YAML::Node* features =
          m.Require("features", "list the feature columns of the CSV files, e.g. [x0, x1]")) {
    features_ok = CheckList(*features, features_path, 1, kMaxFeatures, "column names", errors);
    if (features_ok) {
      std::unordered_map<std::string, size_t> first;
      size_t i = 0;
      for (auto it = features->begin(); it != features->end(); ++it, ++i) {
        std::string name;
        const std::string path = IndexPath(features_path, i);
        if (!ReadColumn(*it, path, errors, &name)) {
          features_ok = false;
          continue;
        }
        auto [where, inserted] = first.emplace(name, i);
        if (!inserted) {
          errors->Add(path, "duplicate column " + Quote(name) + " (also " +
                                IndexPath(features_path, where->second) + ")");
          features_ok = false;
          continue;
        }
        data->features.push_back(std::move(name));
      }
    }
  }
  bool label_ok = true;
  if (const YAML::Node* n = m.Find("label")) {
    label_ok = ReadColumn(*n, m.Path("label"), errors, &data->label);
  }
  if (features_ok && label_ok) {
    for (size_t i = 0; i < data->features.size(); ++i) {
      if (data->features[i] == data->label) {
        errors->Add(m.Path("label"), "column " + Quote(data->label) + " is also listed as " +
                                         IndexPath(features_path, i) +
                                         "; the label must not be a feature");
      }
    }
  }
}

void DecodeJsonlData(const MapReader& m, DataSchema* data, Errors* errors) {
  if (const YAML::Node* n = m.Find("maxLength")) {
    ReadInt(*n, m.Path("maxLength"), kMinMaxLength, kMaxMaxLength, errors, &data->max_length);
  }
  if (const YAML::Node* n = m.Find("packing")) {
    ReadBool(*n, m.Path("packing"), errors, &data->packing);
  }
}

// `kind_known`: job->model.kind is valid, so the format can be checked
// against it and defaulted from it.
void DecodeData(const YAML::Node& node, const Model& model, bool kind_known,
                DataSchema* data, Errors* errors) {
  MapReader m(node, "spec.data",
              {"format", "features", "label", "evalFraction", "maxLength", "packing"}, errors);
  if (!m.ok()) return;
  data->format = model.IsLanguageModel() ? "jsonl" : "csv";
  bool format_ok = kind_known;
  if (const YAML::Node* n = m.Find("format")) {
    format_ok = ReadEnum(*n, m.Path("format"), {"csv", "jsonl"}, errors, &data->format) &&
                format_ok;
    if (format_ok && model.IsLanguageModel() && data->format != "jsonl") {
      errors->Add(m.Path("format"), "must be \"jsonl\" for kind " + Quote(model.kind) +
                                        " (text for a language model), got " +
                                        Quote(data->format));
      format_ok = false;
    } else if (format_ok && !model.IsLanguageModel() && data->format != "csv") {
      errors->Add(m.Path("format"),
                  "must be \"csv\" for kind \"mlp\"; \"jsonl\" is for kind llama or gpt2");
      format_ok = false;
    }
  }
  if (format_ok) {
    const bool csv = data->format == "csv";
    const std::vector<std::string_view> other =
        csv ? std::vector<std::string_view>{"maxLength", "packing"}
            : std::vector<std::string_view>{"features", "label"};
    for (std::string_view field : other) {
      if (m.Find(field) != nullptr) {
        errors->Add(m.Path(field), "set only with format: " + std::string(csv ? "jsonl" : "csv") +
                                       "; this job's data format is " + Quote(data->format));
      }
    }
    if (csv) {
      DecodeCsvData(m, data, errors);
    } else {
      DecodeJsonlData(m, data, errors);
    }
  }
  if (const YAML::Node* n = m.Find("evalFraction")) {
    ReadNumber(*n, m.Path("evalFraction"), {0, true, 0.9, false}, errors, &data->eval_fraction);
  }
}

// The server optimizer's fields of spec.strategy: Flower's defaults for the
// strategy, then what the file gives, each refused when the strategy does
// not use it.
void DecodeServerOptimizer(const MapReader& m, Strategy* strategy, Errors* errors) {
  ServerOptimizer& o = strategy->server;
  const std::string& name = strategy->name;
  // Flower 1.42's defaults (flwr.server.strategy): FedAvgM(server_learning_rate=1.0,
  // server_momentum=0.0), FedAdam(eta=0.1, beta_1=0.9, beta_2=0.99, tau=1e-9),
  // FedYogi(eta=0.01, beta_1=0.9, beta_2=0.99, tau=1e-3), FedAdagrad(eta=0.1, tau=1e-9).
  if (name == "fedadam") o = {0.1, 0, 0.9, 0.99, 1e-9};
  if (name == "fedyogi") o = {0.01, 0, 0.9, 0.99, 1e-3};
  if (name == "fedadagrad") o = {0.1, 0, 0, 0, 1e-9};
  const bool momentum = name == "fedavgm";
  const bool adaptive = name == "fedadam" || name == "fedyogi" || name == "fedadagrad";
  struct Field {
    const char* key;
    bool used;
    NumberRange range;
    double* out;
  };
  const Field fields[] = {
      {"serverLearningRate", momentum || adaptive, {0, true, 100, false}, &o.learning_rate},
      {"serverMomentum", momentum, {0, false, 1, true}, &o.momentum},
      {"beta1", name == "fedadam" || name == "fedyogi", {0, false, 1, true}, &o.beta1},
      {"beta2", name == "fedadam" || name == "fedyogi", {0, false, 1, true}, &o.beta2},
      {"tau", adaptive, {0, true, 1, false}, &o.tau},
  };
  for (const Field& f : fields) {
    const YAML::Node* n = m.Find(f.key);
    if (n == nullptr) continue;
    if (!f.used) {
      errors->Add(m.Path(f.key), "is not a parameter of strategy " + Quote(name));
      continue;
    }
    ReadNumber(*n, m.Path(f.key), f.range, errors, f.out);
  }
}

// The robust aggregations' fields of spec.strategy, each refused when the
// strategy does not use it; multikrum needs keepClients.
void DecodeRobustAggregation(const MapReader& m, Strategy* strategy, Errors* errors) {
  RobustAggregation& r = strategy->robust;
  const std::string& name = strategy->name;
  const bool krum = name == "krum" || name == "multikrum" || name == "bulyan";
  if (const YAML::Node* n = m.Find("byzantineClients")) {
    if (!krum) {
      errors->Add(m.Path("byzantineClients"), "is not a parameter of strategy " + Quote(name));
    } else {
      ReadInt(*n, m.Path("byzantineClients"), 0, kMaxMinClients, errors, &r.byzantine_clients);
    }
  }
  if (const YAML::Node* n = m.Find("keepClients")) {
    if (name != "multikrum") {
      errors->Add(m.Path("keepClients"), "is not a parameter of strategy " + Quote(name));
    } else {
      ReadInt(*n, m.Path("keepClients"), 1, kMaxMinClients, errors, &r.keep_clients);
    }
  } else if (name == "multikrum") {
    errors->Add(m.Path("keepClients"),
                "required with multikrum: how many of the best-scored updates to average");
  }
  if (const YAML::Node* n = m.Find("trimFraction")) {
    if (name != "trimmedmean") {
      errors->Add(m.Path("trimFraction"), "is not a parameter of strategy " + Quote(name));
    } else {
      ReadNumber(*n, m.Path("trimFraction"), {0, false, 0.5, true}, errors, &r.trim_fraction);
    }
  }
}

// Returns true when minClients is valid (given or default).
bool DecodeStrategy(const YAML::Node& node, Strategy* strategy, Errors* errors) {
  MapReader m(node, "spec.strategy",
              {"name", "rounds", "minClients", "minTenants", "fractionFit", "roundTimeout",
               "maxUpdateNorm", "weighting", "serverLearningRate", "serverMomentum", "beta1",
               "beta2", "tau", "byzantineClients", "keepClients", "trimFraction", "proximalMu"},
              errors);
  if (!m.ok()) return false;
  if (const YAML::Node* n = m.Find("name")) {
    ReadEnum(*n, m.Path("name"),
             {"fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "fedadagrad", "median",
              "trimmedmean", "krum", "multikrum", "bulyan"},
             errors, &strategy->name);
  }
  DecodeServerOptimizer(m, strategy, errors);
  DecodeRobustAggregation(m, strategy, errors);
  if (const YAML::Node* n = m.Find("proximalMu")) {
    if (strategy->name != "fedprox") {
      errors->Add(m.Path("proximalMu"), "is not a parameter of strategy " + Quote(strategy->name));
    } else {
      ReadNumber(*n, m.Path("proximalMu"), {0, false, 1000, false}, errors,
                 &strategy->proximal_mu);
    }
  } else if (strategy->name == "fedprox") {
    errors->Add(m.Path("proximalMu"),
                "required with fedprox: the weight of the proximal term, e.g. 0.01 (Flower's "
                "proximal_mu has no default either)");
  }
  if (const YAML::Node* n = m.Find("rounds")) {
    ReadInt(*n, m.Path("rounds"), 1, kMaxRounds, errors, &strategy->rounds);
  }
  bool min_clients_ok = true;
  if (const YAML::Node* n = m.Find("minClients")) {
    min_clients_ok =
        ReadInt(*n, m.Path("minClients"), 1, kMaxMinClients, errors, &strategy->min_clients);
  }
  if (const YAML::Node* n = m.Find("minTenants")) {
    ReadInt(*n, m.Path("minTenants"), 1, kMaxTenants, errors, &strategy->min_tenants);
  }
  if (const YAML::Node* n = m.Find("fractionFit")) {
    ReadNumber(*n, m.Path("fractionFit"), {0, true, 1, false}, errors, &strategy->fraction_fit);
  }
  if (const YAML::Node* n = m.Find("roundTimeout")) {
    ReadDuration(*n, m.Path("roundTimeout"), kMaxRoundTimeoutSeconds, errors,
                 &strategy->round_timeout_seconds);
  }
  if (const YAML::Node* n = m.Find("maxUpdateNorm")) {
    ReadNumber(*n, m.Path("maxUpdateNorm"), {0, false, kMaxUpdateNormBound, false}, errors,
               &strategy->max_update_norm);
  }
  if (const YAML::Node* n = m.Find("weighting")) {
    ReadEnum(*n, m.Path("weighting"), {"examples", "uniform"}, errors, &strategy->weighting);
  }
  return min_clients_ok;
}

void DecodeTraining(const YAML::Node& node, Training* training, Errors* errors) {
  MapReader m(node, "spec.training",
              {"localEpochs", "batchSize", "learningRate", "optimizer", "seed"}, errors);
  if (const YAML::Node* n = m.Find("localEpochs")) {
    ReadInt(*n, m.Path("localEpochs"), 1, kMaxEpochs, errors, &training->local_epochs);
  }
  if (const YAML::Node* n = m.Find("batchSize")) {
    ReadInt(*n, m.Path("batchSize"), 1, kMaxBatchSize, errors, &training->batch_size);
  }
  if (const YAML::Node* n = m.Find("learningRate")) {
    ReadNumber(*n, m.Path("learningRate"), {0, true, 10, false}, errors,
               &training->learning_rate);
  }
  if (const YAML::Node* n = m.Find("optimizer")) {
    ReadEnum(*n, m.Path("optimizer"), {"sgd", "adam"}, errors, &training->optimizer);
  }
  if (const YAML::Node* n = m.Find("seed")) {
    ReadInt(*n, m.Path("seed"), int64_t{0}, std::numeric_limits<int64_t>::max(), errors,
            &training->seed);
  }
}

void DecodeEvaluation(const YAML::Node& node, const ParseOptions& options, JobSpec* job,
                      Errors* errors) {
  MapReader m(node, "spec.evaluation", {"pooled"}, errors);
  if (const YAML::Node* n = m.Find("pooled")) {
    DecodeDataSource(*n, m.Path("pooled"), options, *job, SourceKind::kFile,
                     &job->evaluation.pooled, errors);
  }
}

void DecodeDifferentialPrivacy(const YAML::Node& node, const std::string& path,
                               DifferentialPrivacy* dp, Errors* errors) {
  MapReader m(node, path, {"clipNorm", "noiseMultiplier", "delta", "maxEpsilon", "mode"},
              errors);
  if (!m.ok()) return;
  if (const YAML::Node* n = m.Find("clipNorm")) {
    ReadNumber(*n, m.Path("clipNorm"), {0, true, kMaxClipNorm, false}, errors, &dp->clip_norm);
  }
  if (const YAML::Node* n = m.Find("noiseMultiplier")) {
    ReadNumber(*n, m.Path("noiseMultiplier"), {0, true, kMaxNoiseMultiplier, false}, errors,
               &dp->noise_multiplier);
  }
  if (const YAML::Node* n = m.Find("delta")) {
    ReadNumber(*n, m.Path("delta"), {0, true, kMaxDelta, false}, errors, &dp->delta);
  }
  if (const YAML::Node* n = m.Require(
          "maxEpsilon", "the privacy budget: the job stops before a round would exceed it, "
                        "e.g. maxEpsilon: 8")) {
    ReadNumber(*n, m.Path("maxEpsilon"), {0, true, kMaxEpsilonBound, false}, errors,
               &dp->max_epsilon);
  }
  if (const YAML::Node* n = m.Find("mode")) {
    ReadEnum(*n, m.Path("mode"), {"central", "distributed"}, errors, &dp->mode);
  }
}

void DecodeSecureAggregationSettings(const YAML::Node& node, const std::string& path,
                                     SecureAggregationSettings* settings, Errors* errors) {
  MapReader m(node, path, {"threshold", "neighbours", "quantizationRange", "stageTimeout"},
              errors);
  if (!m.ok()) return;
  if (const YAML::Node* n = m.Find("threshold")) {
    ReadNumber(*n, m.Path("threshold"), {0, true, 1, false}, errors, &settings->threshold);
  }
  if (const YAML::Node* n = m.Find("neighbours")) {
    if (ReadInt(*n, m.Path("neighbours"), 0, 1000, errors, &settings->neighbours) &&
        settings->neighbours % 2 != 0) {
      errors->Add(m.Path("neighbours"),
                  absl::StrCat("must be 0 (complete graph) or even (each client masks with k/2 "
                               "clients on either side of a ring), got ",
                               settings->neighbours));
    }
  }
  if (const YAML::Node* n = m.Find("quantizationRange")) {
    ReadNumber(*n, m.Path("quantizationRange"), {0, true, 1e6, false}, errors,
               &settings->quantization_range);
  }
  if (const YAML::Node* n = m.Find("stageTimeout")) {
    ReadDuration(*n, m.Path("stageTimeout"), kMaxRoundTimeoutSeconds, errors,
                 &settings->stage_timeout_seconds);
  }
}

void DecodePrivacy(const YAML::Node& node, Privacy* privacy, Errors* errors) {
  MapReader m(node, "spec.privacy",
              {"secureAggregation", "secureAggregationSettings", "differentialPrivacy"}, errors);
  if (!m.ok()) return;
  if (const YAML::Node* n = m.Find("secureAggregation")) {
    ReadBool(*n, m.Path("secureAggregation"), errors, &privacy->secure_aggregation);
  }
  if (const YAML::Node* n = m.Find("secureAggregationSettings")) {
    if (!privacy->secure_aggregation) {
      errors->Add(m.Path("secureAggregationSettings"),
                  "applies only with spec.privacy.secureAggregation: true");
    } else {
      DecodeSecureAggregationSettings(*n, m.Path("secureAggregationSettings"), &privacy->secagg,
                                      errors);
    }
  }
  if (const YAML::Node* n = m.Find("differentialPrivacy")) {
    privacy->differential_privacy = true;
    DecodeDifferentialPrivacy(*n, m.Path("differentialPrivacy"), &privacy->dp, errors);
    if (privacy->dp.mode == "distributed" && !privacy->secure_aggregation) {
      errors->Add(m.Path("differentialPrivacy") + ".mode",
                  "\"distributed\" adds the noise on the clients and needs "
                  "spec.privacy.secureAggregation: true; use \"central\" without it");
    }
  }
}

// Bounds that hold wherever the job runs (the operator included): worker
// processes and the MLP's size. `braid run` adds the machine's own
// (job_footprint.h).
void CheckJobSize(const JobSpec& job, bool replicas_known, Errors* errors) {
  if (replicas_known && job.TotalReplicas() > kMaxWorkerProcesses) {
    errors->Add("spec.tenants",
                absl::StrCat("the replicas of ", job.tenants.size(), " tenants add up to ",
                             job.TotalReplicas(), " worker processes; a job runs at most ",
                             kMaxWorkerProcesses));
  }
  if (!job.model.IsLanguageModel()) {
    const int64_t parameters =
        MlpParameters(static_cast<int64_t>(job.data.features.size()), job.model.mlp.hidden,
                      job.model.mlp.num_classes);
    if (parameters > kMaxMlpParameters) {
      errors->Add("spec.model.mlp",
                  absl::StrCat(GroupedDigits(parameters), " parameters (",
                               HumanBytes(4.0 * static_cast<double>(parameters)),
                               " of float32) exceeds the limit of ",
                               GroupedDigits(kMaxMlpParameters), " parameters (",
                               HumanBytes(4.0 * kMaxMlpParameters),
                               "); use fewer or narrower hidden layers"));
    }
  }
}

// With a local base folder: spec.data.maxLength against GPT-2's learned
// positions (config.json's n_positions), as the worker checks at load.
// Nothing is said when the config cannot be read: the worker names what is
// wrong with it.
void CheckBaseConfig(const JobSpec& job, Errors* errors) {
  if (job.model.kind != "gpt2" || job.model.base.path.empty()) return;
  const std::string config = ResolvedPath(job, job.model.base.path) + "/config.json";
  absl::StatusOr<std::string> text = ReadSmallFile(config, 1 << 20);
  if (!text.ok()) return;
  const nlohmann::json root = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object()) return;
  auto it = root.find("n_positions");
  if (it == root.end() || !it->is_number_integer()) return;
  const int64_t positions = it->get<int64_t>();
  if (job.data.max_length > positions) {
    errors->Add("spec.data.maxLength",
                absl::StrCat(job.data.max_length, " is longer than n_positions ", positions,
                             " in ", config,
                             " (GPT-2 has one learned embedding per position); set it to at "
                             "most ",
                             positions));
  }
}

void DecodeSpec(const YAML::Node& node, const ParseOptions& options, JobSpec* job,
                Errors* errors) {
  MapReader m(node, "spec",
              {"suspend", "model", "data", "strategy", "training", "evaluation", "privacy",
               "tenants"},
              errors);
  if (!m.ok()) return;
  if (const YAML::Node* n = m.Find("suspend")) ReadBool(*n, m.Path("suspend"), errors, &job->suspend);
  bool kind_known = true;  // the default kind, mlp, unless spec.model says otherwise
  if (const YAML::Node* n = m.Find("model")) kind_known = DecodeModel(*n, options, job, errors);
  if (kind_known && job->model.IsLanguageModel() && m.Find("data") == nullptr) {
    job->data.format = "jsonl";  // every field of a jsonl data section has a default
  } else if (const YAML::Node* n = m.Require(
                 "data", "give the CSV schema: data: {features: [x0, x1], label: label}")) {
    DecodeData(*n, job->model, kind_known, &job->data, errors);
  }
  bool min_clients_ok = true;
  if (const YAML::Node* n = m.Find("strategy")) {
    min_clients_ok = DecodeStrategy(*n, &job->strategy, errors);
  }
  if (const YAML::Node* n = m.Find("training")) DecodeTraining(*n, &job->training, errors);
  if (const YAML::Node* n = m.Find("evaluation")) {
    DecodeEvaluation(*n, options, job, errors);
  }
  if (const YAML::Node* n = m.Find("privacy")) DecodePrivacy(*n, &job->privacy, errors);
  bool replicas_known = false;
  if (const YAML::Node* n = m.Require(
          "tenants", "list at least one tenant, e.g. [{name: a, data: {path: a.csv}}]")) {
    replicas_known = DecodeTenants(*n, m.Path("tenants"), options, job, errors);
  }
  if (min_clients_ok && replicas_known && job->strategy.min_clients > job->TotalReplicas()) {
    errors->Add("spec.strategy.minClients",
                absl::StrCat("must be at most the total replicas across tenants (",
                             job->TotalReplicas(), "), got ", job->strategy.min_clients));
  }
  const int tenants = static_cast<int>(job->tenants.size());
  if (job->strategy.min_tenants == 0) {
    job->strategy.min_tenants = std::max(1, std::min(2, tenants));
  } else if (replicas_known && job->strategy.min_tenants > tenants) {
    errors->Add("spec.strategy.minTenants",
                absl::StrCat("must be at most the number of tenants (", tenants, "), got ",
                             job->strategy.min_tenants));
  }
  CheckJobSize(*job, replicas_known, errors);
  if (options.check_files && errors->empty()) CheckBaseConfig(*job, errors);
  if (job->privacy.secure_aggregation && job->strategy.max_update_norm > 0) {
    errors->Add("spec.strategy.maxUpdateNorm",
                "cannot be checked on masked updates with spec.privacy.secureAggregation: true; "
                "bound each element with secureAggregationSettings.quantizationRange (and the "
                "update with differentialPrivacy.clipNorm) instead");
  }
  if (IsRobustAggregation(job->strategy.name)) {
    const std::string why = " needs every single update, which ";
    if (job->privacy.secure_aggregation) {
      errors->Add("spec.strategy.name", Quote(job->strategy.name) + why +
                                            "secure aggregation hides (spec.privacy."
                                            "secureAggregation: true); use fedavg or a server "
                                            "optimizer");
    }
    if (job->privacy.differential_privacy) {
      errors->Add("spec.strategy.name",
                  Quote(job->strategy.name) + why +
                      "differential privacy's clipped, noised sum does not keep; use fedavg or a "
                      "server optimizer with spec.privacy.differentialPrivacy");
    }
    const int f = job->strategy.robust.byzantine_clients;
    if (min_clients_ok && job->strategy.name == "bulyan" &&
        job->strategy.min_clients < 4 * f + 3) {
      errors->Add("spec.strategy.minClients",
                  absl::StrCat("must be at least 4 * byzantineClients + 3 (", 4 * f + 3,
                               ") with bulyan, got ", job->strategy.min_clients));
    }
  }
  if (min_clients_ok && job->privacy.secure_aggregation && job->strategy.min_clients < 2) {
    errors->Add("spec.strategy.minClients",
                "must be at least 2 with spec.privacy.secureAggregation: true (a sum of one "
                "update is that update)");
  }
}

void DecodeMetadata(const YAML::Node& node, JobSpec* job, Errors* errors) {
  MapReader m(node, "metadata", {"name", "namespace"}, errors, kObjectMetaIgnored);
  if (const YAML::Node* n = m.Require("name", "a DNS-1123 label such as \"tabular-demo\"")) {
    ReadName(*n, m.Path("name"), errors, &job->name);
  }
  if (const YAML::Node* n = m.Find("namespace")) {
    ReadName(*n, m.Path("namespace"), errors, &job->namespace_);
  }
}

}  // namespace

bool ReadName(const YAML::Node& node, const std::string& path, Errors* errors,
              std::string* out) {
  std::string name;
  if (!ReadString(node, path, errors, &name)) return false;
  if (IsDns1123Label(name)) {
    *out = std::move(name);
    return true;
  }
  std::string message =
      "must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a "
      "letter or digit, at most 63 characters), got " +
      Quote(name);
  if (std::string hint = SuggestLabel(name); !hint.empty()) {
    message += " (try " + Quote(hint) + ")";
  }
  errors->Add(path, std::move(message));
  return false;
}

void DecodeJob(const YAML::Node& root, const ParseOptions& options, JobSpec* job,
               Errors* errors) {
  if (!root.IsMap()) {
    errors->Add(kFilePath,
                "a job file must be a YAML map with apiVersion, kind, metadata and spec; got " +
                    Describe(root));
    return;
  }
  // Operators write `status`; it is accepted and ignored.
  MapReader top(root, "", {"apiVersion", "kind", "metadata", "spec"}, errors, {"status"});
  if (const YAML::Node* n = top.Require("apiVersion", "set it to \"braid.dev/v1alpha1\"")) {
    ReadEnum(*n, "apiVersion", {kApiVersion}, errors, &job->api_version);
  }
  if (const YAML::Node* n = top.Require("kind", "set it to \"FederatedJob\"")) {
    ReadEnum(*n, "kind", {kKind}, errors, &job->kind);
  }
  if (const YAML::Node* n = top.Require("metadata", "give at least metadata: {name: my-job}")) {
    DecodeMetadata(*n, job, errors);
  }
  if (const YAML::Node* n = top.Require("spec")) DecodeSpec(*n, options, job, errors);
}

}  // namespace braid::spec::internal
