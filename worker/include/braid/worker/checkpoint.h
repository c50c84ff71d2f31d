// Hugging Face checkpoint folders in and merged weights out.
#ifndef BRAID_WORKER_CHECKPOINT_H_
#define BRAID_WORKER_CHECKPOINT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "braid/worker/decoder.h"

namespace braid::worker {

// Loads `folder`: config.json (see llm_config.h) and either
// model.safetensors or model.safetensors.index.json with the shards its
// weight_map names. F32, F16 and BF16 tensors are read straight from the
// file into the model's parameters and upcast to float32 on the CPU (one
// tensor's source bytes in memory at a time, besides the model).
//
// Names are matched one to one with the model's parameters (decoder.h).
// Tolerated and ignored: lm_head.weight when embeddings are tied and it
// equals the embedding (a redundant copy), buffers older checkpoints saved (GPT-2's attn.bias /
// attn.masked_bias, Llama's rotary_emb.inv_freq), and GPT-2 names without
// the "transformer." prefix (as the original gpt2 checkpoints have them).
//
// Errors name the file and tensor:
//   NotFound: the folder, config.json, or both weight files are missing
//   InvalidArgument: a config refusal; a tensor the model does not have
//     ("unexpected tensor 'x' in <file>"); one it has that no file holds
//     ("missing tensor 'x' (looked in <files>)"); a shape mismatch ("tensor
//     'x' in <file>: shape [a, b], the config implies [c, d]"); a dtype other
//     than F32/F16/BF16; a tensor in two shards; a malformed index;
//     tie_word_embeddings true with an lm_head.weight that differs from the
//     embedding ("<file>: lm_head.weight differs from model.embed_tokens.weight
//     but <config> sets tie_word_embeddings: true ..."; Hugging Face versions
//     disagree on which one they then use); a NaN or infinite weight
//     ("tensor 'x' in <file>: 3 of 64 values are NaN or infinite ...")
//   DataLoss / InvalidArgument from the safetensors reader on corrupt files.
// The returned model is in training mode with requires_grad true on every
// parameter; LoraModel::Create freezes them.
absl::StatusOr<std::shared_ptr<CausalLmImpl>> LoadCausalLm(const std::string& folder);

// Writes every base parameter of `model` under its Hugging Face name to
// `path` (safetensors, F32, atomically), with each LoRA adapter in the model
// merged into its base weight (W + B A * scaling; transposed for Conv1D) and
// no lora_* tensors, so the file loads as a plain checkpoint (with the
// config.json of the base). Tied embeddings are written once, as the
// embedding. Errors: those of safetensors::Write.
absl::Status WriteMergedWeights(CausalLmImpl& model, const std::string& path);

}  // namespace braid::worker

#endif  // BRAID_WORKER_CHECKPOINT_H_
