// GPT-2 as Hugging Face's modeling_gpt2 computes it: token plus learned
// position embeddings; pre-norm blocks of LayerNorm -> attention (one fused
// Conv1D for q, k, v) -> residual, LayerNorm -> GELU MLP -> residual; a
// final LayerNorm and the LM head (tied to the token embeddings by default).
#include <cmath>

#include "braid/worker/lora_linear.h"
#include "decoder_parts.h"

namespace braid::worker {
namespace {

torch::nn::LayerNorm MakeLayerNorm(const DecoderConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.norm_eps));
}

struct Gpt2AttentionImpl : torch::nn::Module {
  explicit Gpt2AttentionImpl(const DecoderConfig& c)
      : heads(c.num_attention_heads), head_dim(c.head_dim), scale(c.scale_attn_weights) {
    c_attn = register_module("c_attn", LoraLinear(c.hidden_size, 3 * c.hidden_size, true, true));
    c_proj = register_module("c_proj", LoraLinear(c.hidden_size, c.hidden_size, true, true));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& allowed) {
    const int64_t b = x.size(0), t = x.size(1), width = heads * head_dim;
    auto qkv = c_attn(x).split(width, -1);
    auto split_heads = [&](const torch::Tensor& y) { return y.view({b, t, heads, head_dim}).transpose(1, 2); };
    auto q = split_heads(qkv[0]), k = split_heads(qkv[1]), v = split_heads(qkv[2]);
    auto scores = torch::matmul(q, k.transpose(2, 3));
    if (scale) scores = scores / std::sqrt(static_cast<double>(head_dim));
    auto out = MaskedAttention(scores, allowed, v);
    return c_proj(out.transpose(1, 2).reshape({b, t, width}));
  }
  int64_t heads, head_dim;
  bool scale;
  LoraLinear c_attn{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(Gpt2Attention);

struct Gpt2MlpImpl : torch::nn::Module {
  explicit Gpt2MlpImpl(const DecoderConfig& c) : activation(c.activation) {
    c_fc = register_module("c_fc", LoraLinear(c.hidden_size, c.intermediate_size, true, true));
    c_proj = register_module("c_proj", LoraLinear(c.intermediate_size, c.hidden_size, true, true));
  }
  torch::Tensor forward(const torch::Tensor& x) { return c_proj(Activate(c_fc(x), activation)); }
  Activation activation;
  LoraLinear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(Gpt2Mlp);

struct Gpt2BlockImpl : torch::nn::Module {
  explicit Gpt2BlockImpl(const DecoderConfig& c) {
    ln_1 = register_module("ln_1", MakeLayerNorm(c));
    attn = register_module("attn", Gpt2Attention(c));
    ln_2 = register_module("ln_2", MakeLayerNorm(c));
    mlp = register_module("mlp", Gpt2Mlp(c));
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& allowed) {
    x = x + attn(ln_1(x), allowed);
    return x + mlp(ln_2(x));
  }
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Gpt2Attention attn{nullptr};
  Gpt2Mlp mlp{nullptr};
};
TORCH_MODULE(Gpt2Block);

struct Gpt2ModelImpl : torch::nn::Module {
  explicit Gpt2ModelImpl(const DecoderConfig& c) {
    wte = register_module("wte", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size)
                                                          ._weight(torch::zeros({c.vocab_size, c.hidden_size}))));
    wpe = register_module(
        "wpe", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.max_position_embeddings, c.hidden_size)
                                        ._weight(torch::zeros({c.max_position_embeddings, c.hidden_size}))));
    h = register_module("h", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) h->push_back(Gpt2Block(c));
    ln_f = register_module("ln_f", MakeLayerNorm(c));
  }
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
};
TORCH_MODULE(Gpt2Model);

struct Gpt2LmHeadModelImpl : CausalLmImpl {
  explicit Gpt2LmHeadModelImpl(const DecoderConfig& c) : CausalLmImpl(c) {
    transformer = register_module("transformer", Gpt2Model(c));
    if (!c.tie_word_embeddings) {
      lm_head = register_module("lm_head", LoraLinear(c.hidden_size, c.vocab_size, false, false));
    }
  }
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) override {
    const int64_t b = input_ids.size(0), t = input_ids.size(1);
    auto allowed = AllowedKeys(attention_mask, b, t, std::nullopt);
    auto x = transformer->wte(input_ids) + transformer->wpe(torch::arange(t, torch::kLong)).unsqueeze(0);
    for (const auto& block : *transformer->h) x = block->as<Gpt2BlockImpl>()->forward(x, allowed);
    x = transformer->ln_f(x);
    return lm_head.is_empty() ? torch::linear(x, transformer->wte->weight) : lm_head(x);
  }
  Gpt2Model transformer{nullptr};
  LoraLinear lm_head{nullptr};
};

}  // namespace

std::shared_ptr<CausalLmImpl> MakeGpt2(const DecoderConfig& config) {
  return std::make_shared<Gpt2LmHeadModelImpl>(config);
}

}  // namespace braid::worker
