#include "braid/worker/llm_config.h"

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"

namespace braid::worker {
namespace {

using nlohmann::json;

// Reads config fields, naming the source and the field in every error.
class Fields {
 public:
  Fields(const json& root, absl::string_view what) : root_(root), what_(what) {}

  absl::Status Error(absl::string_view field, absl::string_view problem) const {
    return absl::InvalidArgumentError(absl::StrCat(what_, ": ", field, ": ", problem));
  }
  bool Has(const char* field) const {
    return root_.contains(field) && !root_.at(field).is_null();
  }
  // A positive integer; `fallback` when absent or null (nullopt: required).
  absl::StatusOr<int64_t> Int(const char* field, std::optional<int64_t> fallback = std::nullopt) const {
    if (!Has(field)) {
      if (fallback) return *fallback;
      return Error(field, "is required");
    }
    const json& v = root_.at(field);
    if (!v.is_number_integer()) return Error(field, absl::StrCat("must be an integer, got ", v.dump()));
    const int64_t n = v.get<int64_t>();
    if (n < 1) return Error(field, absl::StrCat("must be >= 1, got ", n));
    return n;
  }
  absl::StatusOr<double> Positive(const char* field, double fallback) const {
    if (!Has(field)) return fallback;
    const json& v = root_.at(field);
    if (!v.is_number()) return Error(field, absl::StrCat("must be a number, got ", v.dump()));
    const double d = v.get<double>();
    if (!(d > 0)) return Error(field, absl::StrCat("must be > 0, got ", v.dump()));
    return d;
  }
  absl::StatusOr<bool> Bool(const char* field, bool fallback) const {
    if (!Has(field)) return fallback;
    const json& v = root_.at(field);
    if (!v.is_boolean()) return Error(field, absl::StrCat("must be true or false, got ", v.dump()));
    return v.get<bool>();
  }
  absl::StatusOr<std::string> String(const char* field, std::optional<std::string> fallback) const {
    if (!Has(field)) {
      if (fallback) return *fallback;
      return Error(field, "is required");
    }
    const json& v = root_.at(field);
    if (!v.is_string()) return Error(field, absl::StrCat("must be a string, got ", v.dump()));
    return v.get<std::string>();
  }
  // Refuses `field` when present with a value other than `allowed`.
  absl::Status MustBe(const char* field, const json& allowed, absl::string_view why) const {
    if (!root_.contains(field) || root_.at(field) == allowed) return absl::OkStatus();
    return Error(field, absl::StrCat(root_.at(field).dump(), " is not supported (", why, ")"));
  }
  const json& root() const { return root_; }

 private:
  const json& root_;
  absl::string_view what_;
};

absl::StatusOr<Activation> ParseActivation(const Fields& f, const char* field, const char* fallback) {
  BRAID_ASSIGN_OR_RETURN(std::string name, f.String(field, std::string(fallback)));
  if (name == "silu" || name == "swish") return Activation::kSilu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::kGeluTanh;
  if (name == "gelu") return Activation::kGelu;
  if (name == "relu") return Activation::kRelu;
  return f.Error(field, absl::StrCat("activation \"", name,
                                     "\" is not supported (silu, gelu, gelu_new, "
                                     "gelu_pytorch_tanh, gelu_fast, relu)"));
}

absl::Status ParseLlamaFamily(const Fields& f, DecoderConfig& c) {
  c.family = DecoderFamily::kLlama;
  BRAID_ASSIGN_OR_RETURN(c.vocab_size, f.Int("vocab_size"));
  BRAID_ASSIGN_OR_RETURN(c.hidden_size, f.Int("hidden_size"));
  BRAID_ASSIGN_OR_RETURN(c.intermediate_size, f.Int("intermediate_size"));
  BRAID_ASSIGN_OR_RETURN(c.num_hidden_layers, f.Int("num_hidden_layers"));
  BRAID_ASSIGN_OR_RETURN(c.num_attention_heads, f.Int("num_attention_heads"));
  BRAID_ASSIGN_OR_RETURN(c.num_key_value_heads, f.Int("num_key_value_heads", c.num_attention_heads));
  BRAID_ASSIGN_OR_RETURN(c.max_position_embeddings, f.Int("max_position_embeddings", 2048));
  BRAID_ASSIGN_OR_RETURN(c.norm_eps, f.Positive("rms_norm_eps", 1e-6));
  BRAID_ASSIGN_OR_RETURN(c.rope_theta, f.Positive("rope_theta", 10000.0));
  BRAID_ASSIGN_OR_RETURN(c.tie_word_embeddings, f.Bool("tie_word_embeddings", false));
  BRAID_ASSIGN_OR_RETURN(c.activation, ParseActivation(f, "hidden_act", "silu"));
  if (f.Has("rope_scaling")) {
    const json& rs = f.root().at("rope_scaling");
    std::string type = "unknown";
    for (const char* key : {"rope_type", "type"}) {
      if (rs.is_object() && rs.contains(key) && rs.at(key).is_string()) {
        type = rs.at(key).get<std::string>();
        break;
      }
    }
    if (type != "default") {
      return f.Error("rope_scaling", absl::StrCat("type \"", type,
                                                  "\" is not supported (only null or \"default\")"));
    }
  }
  if (c.model_type == "qwen2") {
    c.qkv_bias = true;
    c.o_bias = false;
    BRAID_ASSIGN_OR_RETURN(bool sliding, f.Bool("use_sliding_window", false));
    if (sliding) return f.Error("use_sliding_window", "true is not supported");
  } else {
    BRAID_ASSIGN_OR_RETURN(bool bias, f.Bool("attention_bias", false));
    c.qkv_bias = c.o_bias = bias;
    BRAID_ASSIGN_OR_RETURN(c.mlp_bias, f.Bool("mlp_bias", false));
  }
  if (c.model_type == "mistral" && f.Has("sliding_window")) {
    BRAID_ASSIGN_OR_RETURN(int64_t window, f.Int("sliding_window"));
    c.sliding_window = window;
  }
  if (c.hidden_size % c.num_attention_heads != 0 && !f.Has("head_dim")) {
    return f.Error("num_attention_heads",
                   absl::StrCat(c.num_attention_heads, " does not divide hidden_size ", c.hidden_size));
  }
  BRAID_ASSIGN_OR_RETURN(c.head_dim, f.Int("head_dim", c.hidden_size / c.num_attention_heads));
  if (c.head_dim % 2 != 0) {
    return f.Error("head_dim", absl::StrCat("must be even for rotary embeddings, got ", c.head_dim));
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return f.Error("num_key_value_heads",
                   absl::StrCat(c.num_key_value_heads, " does not divide num_attention_heads ",
                                c.num_attention_heads));
  }
  return absl::OkStatus();
}

absl::Status ParseGpt2(const Fields& f, DecoderConfig& c) {
  c.family = DecoderFamily::kGpt2;
  BRAID_ASSIGN_OR_RETURN(c.vocab_size, f.Int("vocab_size"));
  BRAID_ASSIGN_OR_RETURN(c.hidden_size, f.Int("n_embd"));
  BRAID_ASSIGN_OR_RETURN(c.intermediate_size, f.Int("n_inner", 4 * c.hidden_size));
  BRAID_ASSIGN_OR_RETURN(c.num_hidden_layers, f.Int("n_layer"));
  BRAID_ASSIGN_OR_RETURN(c.num_attention_heads, f.Int("n_head"));
  c.num_key_value_heads = c.num_attention_heads;
  BRAID_ASSIGN_OR_RETURN(c.max_position_embeddings, f.Int("n_positions"));
  BRAID_ASSIGN_OR_RETURN(c.norm_eps, f.Positive("layer_norm_epsilon", 1e-5));
  BRAID_ASSIGN_OR_RETURN(c.tie_word_embeddings, f.Bool("tie_word_embeddings", true));
  BRAID_ASSIGN_OR_RETURN(c.scale_attn_weights, f.Bool("scale_attn_weights", true));
  BRAID_ASSIGN_OR_RETURN(c.activation, ParseActivation(f, "activation_function", "gelu_new"));
  BRAID_RETURN_IF_ERROR(f.MustBe("scale_attn_by_inverse_layer_idx", false, "per-layer attention scaling"));
  BRAID_RETURN_IF_ERROR(f.MustBe("add_cross_attention", false, "decoder-only models have no cross-attention"));
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  if (c.hidden_size % c.num_attention_heads != 0) {
    return f.Error("n_head", absl::StrCat(c.num_attention_heads, " does not divide n_embd ", c.hidden_size));
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DecoderConfig> ParseDecoderConfig(absl::string_view json_text, absl::string_view what) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": must be a JSON object"));
  const Fields f(root, what);
  DecoderConfig c;
  BRAID_ASSIGN_OR_RETURN(c.model_type, f.String("model_type", std::nullopt));
  if (c.model_type == "llama" || c.model_type == "qwen2" || c.model_type == "mistral") {
    BRAID_RETURN_IF_ERROR(ParseLlamaFamily(f, c));
  } else if (c.model_type == "gpt2") {
    BRAID_RETURN_IF_ERROR(ParseGpt2(f, c));
  } else {
    return f.Error("model_type", absl::StrCat("\"", c.model_type,
                                              "\" is not supported (llama, qwen2, mistral, gpt2)"));
  }
  return c;
}

absl::StatusOr<DecoderConfig> ReadDecoderConfig(const std::string& path) {
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, 1 << 20));
  return ParseDecoderConfig(text, path);
}

}  // namespace braid::worker
