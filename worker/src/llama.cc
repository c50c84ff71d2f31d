// The Llama family (Llama, Qwen2, Mistral) as Hugging Face's modeling_llama
// computes it: pre-norm blocks of RMSNorm -> attention with rotary
// embeddings and grouped-query heads -> residual, RMSNorm -> SwiGLU MLP ->
// residual; a final RMSNorm and the LM head.
#include <cmath>

#include "braid/worker/lora_linear.h"
#include "decoder_parts.h"

namespace braid::worker {
namespace {

struct RmsNormImpl : torch::nn::Module {
  RmsNormImpl(int64_t size, double eps) : eps(eps) {
    weight = register_parameter("weight", torch::ones({size}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto variance = x.pow(2).mean(-1, /*keepdim=*/true);
    return weight * (x * torch::rsqrt(variance + eps));
  }
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RmsNorm);

// cos and sin [T, head_dim] for positions 0..T-1, as LlamaRotaryEmbedding
// (default rope type) computes them in float32.
std::pair<torch::Tensor, torch::Tensor> RotaryTables(int64_t length, int64_t head_dim, double theta) {
  auto exponents = torch::arange(0, head_dim, 2, torch::kLong).to(torch::kFloat) / static_cast<double>(head_dim);
  auto inv_freq = 1.0 / torch::pow(torch::scalar_tensor(theta, torch::kFloat), exponents);
  auto positions = torch::arange(length, torch::kLong).to(torch::kFloat);
  auto freqs = torch::outer(positions, inv_freq);
  auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos(), emb.sin()};
}

torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

struct LlamaAttentionImpl : torch::nn::Module {
  explicit LlamaAttentionImpl(const DecoderConfig& c)
      : heads(c.num_attention_heads), kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
    q_proj = register_module("q_proj", LoraLinear(c.hidden_size, heads * head_dim, c.qkv_bias, false));
    k_proj = register_module("k_proj", LoraLinear(c.hidden_size, kv_heads * head_dim, c.qkv_bias, false));
    v_proj = register_module("v_proj", LoraLinear(c.hidden_size, kv_heads * head_dim, c.qkv_bias, false));
    o_proj = register_module("o_proj", LoraLinear(heads * head_dim, c.hidden_size, c.o_bias, false));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& allowed) {
    const int64_t b = x.size(0), t = x.size(1);
    auto q = q_proj(x).view({b, t, heads, head_dim}).transpose(1, 2);
    auto k = k_proj(x).view({b, t, kv_heads, head_dim}).transpose(1, 2);
    auto v = v_proj(x).view({b, t, kv_heads, head_dim}).transpose(1, 2);
    q = q * cos + RotateHalf(q) * sin;
    k = k * cos + RotateHalf(k) * sin;
    if (kv_heads != heads) {
      const int64_t rep = heads / kv_heads;
      k = k.repeat_interleave(rep, 1);
      v = v.repeat_interleave(rep, 1);
    }
    auto scores = torch::matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(head_dim));
    auto out = MaskedAttention(scores, allowed, v);
    return o_proj(out.transpose(1, 2).reshape({b, t, heads * head_dim}));
  }
  int64_t heads, kv_heads, head_dim;
  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(LlamaAttention);

struct LlamaMlpImpl : torch::nn::Module {
  explicit LlamaMlpImpl(const DecoderConfig& c) : activation(c.activation) {
    gate_proj = register_module("gate_proj", LoraLinear(c.hidden_size, c.intermediate_size, c.mlp_bias, false));
    up_proj = register_module("up_proj", LoraLinear(c.hidden_size, c.intermediate_size, c.mlp_bias, false));
    down_proj = register_module("down_proj", LoraLinear(c.intermediate_size, c.hidden_size, c.mlp_bias, false));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return down_proj(Activate(gate_proj(x), activation) * up_proj(x));
  }
  Activation activation;
  LoraLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMlp);

struct LlamaDecoderLayerImpl : torch::nn::Module {
  explicit LlamaDecoderLayerImpl(const DecoderConfig& c) {
    self_attn = register_module("self_attn", LlamaAttention(c));
    mlp = register_module("mlp", LlamaMlp(c));
    input_layernorm = register_module("input_layernorm", RmsNorm(c.hidden_size, c.norm_eps));
    post_attention_layernorm = register_module("post_attention_layernorm", RmsNorm(c.hidden_size, c.norm_eps));
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& allowed) {
    x = x + self_attn(input_layernorm(x), cos, sin, allowed);
    return x + mlp(post_attention_layernorm(x));
  }
  LlamaAttention self_attn{nullptr};
  LlamaMlp mlp{nullptr};
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

struct LlamaModelImpl : torch::nn::Module {
  explicit LlamaModelImpl(const DecoderConfig& c) {
    embed_tokens = register_module(
        "embed_tokens", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size)
                                                 ._weight(torch::zeros({c.vocab_size, c.hidden_size}))));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(LlamaDecoderLayer(c));
    norm = register_module("norm", RmsNorm(c.hidden_size, c.norm_eps));
  }
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RmsNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

struct LlamaForCausalLmImpl : CausalLmImpl {
  explicit LlamaForCausalLmImpl(const DecoderConfig& c) : CausalLmImpl(c) {
    model = register_module("model", LlamaModel(c));
    if (!c.tie_word_embeddings) {
      lm_head = register_module("lm_head", LoraLinear(c.hidden_size, c.vocab_size, false, false));
    }
  }
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) override {
    const DecoderConfig& c = config();
    const int64_t b = input_ids.size(0), t = input_ids.size(1);
    auto [cos, sin] = RotaryTables(t, c.head_dim, c.rope_theta);
    auto allowed = AllowedKeys(attention_mask, b, t, c.sliding_window);
    auto x = model->embed_tokens(input_ids);
    for (const auto& layer : *model->layers) {
      x = layer->as<LlamaDecoderLayerImpl>()->forward(x, cos, sin, allowed);
    }
    x = model->norm(x);
    return lm_head.is_empty() ? torch::linear(x, model->embed_tokens->weight) : lm_head(x);
  }
  LlamaModel model{nullptr};
  LoraLinear lm_head{nullptr};
};

}  // namespace

std::shared_ptr<CausalLmImpl> MakeLlama(const DecoderConfig& config) {
  return std::make_shared<LlamaForCausalLmImpl>(config);
}

}  // namespace braid::worker
