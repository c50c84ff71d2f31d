// Decoder-only language models in LibTorch, computing what Hugging Face's
// LlamaForCausalLM / Qwen2ForCausalLM / MistralForCausalLM and
// GPT2LMHeadModel compute (fp32, CPU), with parameters registered under
// Hugging Face's names so a checkpoint's tensors map one to one:
//
//   Llama family                              GPT-2
//   model.embed_tokens.weight                 transformer.wte.weight
//   model.layers.N.input_layernorm.weight     transformer.wpe.weight
//   model.layers.N.self_attn.q_proj.weight    transformer.h.N.ln_1.{weight,bias}
//     (k_proj, v_proj, o_proj; .bias when     transformer.h.N.attn.c_attn.{weight,bias}
//      the config says so)                    transformer.h.N.attn.c_proj.{weight,bias}
//   model.layers.N.post_attention_layernorm.weight  transformer.h.N.ln_2.{weight,bias}
//   model.layers.N.mlp.{gate,up,down}_proj.weight   transformer.h.N.mlp.c_fc.{weight,bias}
//   model.norm.weight                         transformer.h.N.mlp.c_proj.{weight,bias}
//   lm_head.weight (absent when tied)         transformer.ln_f.{weight,bias}
//                                             (lm_head tied to wte unless the config unties it)
//
// GPT-2's Conv1D weights are stored [in, out] as Hugging Face stores them.
// Dropout of the base model is not applied (fine-tuning a frozen base runs it
// as in eval mode); only LoRA dropout is (see lora_linear.h).
//
// Not thread-safe (torch::nn::Module).
#ifndef BRAID_WORKER_DECODER_H_
#define BRAID_WORKER_DECODER_H_

#include <memory>

#include <torch/torch.h>

#include "braid/worker/llm_config.h"

namespace braid::worker {

struct CausalLmImpl : torch::nn::Module {
  explicit CausalLmImpl(DecoderConfig config) : config_(std::move(config)) {}

  // input_ids: int64 [B, T] with values in [0, vocab_size) (precondition; an
  // out-of-range id throws c10::Error from the embedding lookup).
  // attention_mask: [B, T], 1 for real tokens and 0 for padding (any integer
  // or bool dtype), or an undefined tensor for "all real". Positions are
  // 0..T-1 whatever the padding, as Hugging Face's forward without
  // position_ids: pad on the right. Returns float32 logits [B, T, vocab].
  virtual torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) = 0;

  const DecoderConfig& config() const { return config_; }

 private:
  DecoderConfig config_;
};

// Builds the model for `config` (family from config.family) with zeroed
// weights; fill them with LoadCheckpoint (checkpoint.h). Precondition: a
// config ParseDecoderConfig accepted.
std::shared_ptr<CausalLmImpl> MakeCausalLm(const DecoderConfig& config);

// Hugging Face's causal-LM loss: logits [B, T, V] predict labels shifted by
// one (position t predicts labels[t + 1]); labels int64 [B, T] with -100 for
// positions that carry no loss; mean cross-entropy over the counted
// positions (NaN when none is counted, as Hugging Face).
torch::Tensor CausalLmLoss(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace braid::worker

#endif  // BRAID_WORKER_DECODER_H_
