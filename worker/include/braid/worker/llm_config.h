// The typed form of a Hugging Face decoder checkpoint's config.json.
//
// Supported model_type values: "llama", "qwen2", "mistral" (the Llama family:
// RMSNorm, rotary embeddings, SwiGLU, grouped-query attention) and "gpt2"
// (learned positions, LayerNorm, GELU, Conv1D weights). Anything the
// implementation would compute differently from Hugging Face is refused
// rather than ignored: rope_scaling other than null, Qwen2's
// use_sliding_window, GPT-2's scale_attn_by_inverse_layer_idx or
// add_cross_attention, an unknown activation, a head count that does not
// divide the width, ...
#ifndef BRAID_WORKER_LLM_CONFIG_H_
#define BRAID_WORKER_LLM_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace braid::worker {

enum class DecoderFamily { kLlama, kGpt2 };

// Activations named as Hugging Face's ACT2FN names them.
enum class Activation {
  kSilu,      // "silu", "swish"
  kGeluTanh,  // "gelu_new", "gelu_pytorch_tanh", "gelu_fast" (tanh approximation)
  kGelu,      // "gelu" (exact, erf)
  kRelu,      // "relu"
};

struct DecoderConfig {
  std::string model_type;  // as in config.json: "llama", "qwen2", "mistral", "gpt2"
  DecoderFamily family = DecoderFamily::kLlama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;         // GPT-2: n_embd
  int64_t intermediate_size = 0;   // GPT-2: n_inner, or 4 * n_embd when null
  int64_t num_hidden_layers = 0;   // GPT-2: n_layer
  int64_t num_attention_heads = 0; // GPT-2: n_head
  int64_t num_key_value_heads = 0; // defaults to num_attention_heads (GPT-2: always)
  int64_t head_dim = 0;            // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;  // GPT-2: n_positions
  double norm_eps = 1e-6;          // rms_norm_eps (Llama) or layer_norm_epsilon (GPT-2)
  double rope_theta = 10000.0;     // Llama family only
  bool tie_word_embeddings = false;  // default false for the Llama family, true for GPT-2
  bool qkv_bias = false;           // q/k/v_proj biases: Llama attention_bias; Qwen2 always
  bool o_bias = false;             // o_proj bias: Llama attention_bias; Qwen2 never
  bool mlp_bias = false;           // Llama mlp_bias
  bool scale_attn_weights = true;  // GPT-2: divide scores by sqrt(head_dim)
  std::optional<int64_t> sliding_window;  // Mistral: keys within this many positions
  Activation activation = Activation::kSilu;
};

// Parses config.json text. `what` names the source in errors, which read
// "<what>: <field>: <problem>", e.g.
//   config.json: rope_scaling: type "yarn" is not supported
// InvalidArgument for malformed JSON, a missing or mistyped required field,
// an unsupported value or an inconsistent shape.
absl::StatusOr<DecoderConfig> ParseDecoderConfig(absl::string_view json_text,
                                                 absl::string_view what = "config.json");

// Reads and parses `path` (at most 1 MiB). NotFound if missing.
absl::StatusOr<DecoderConfig> ReadDecoderConfig(const std::string& path);

}  // namespace braid::worker

#endif  // BRAID_WORKER_LLM_CONFIG_H_
