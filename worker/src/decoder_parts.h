// Pieces the decoders share, and the per-family factories. Internal to worker/.
#ifndef BRAID_WORKER_DECODER_PARTS_H_
#define BRAID_WORKER_DECODER_PARTS_H_

#include <memory>

#include <torch/torch.h>

#include "braid/worker/decoder.h"

namespace braid::worker {

// Which keys each query may attend to: bool [B, 1, T, T], true where key k
// <= query q, the key is not padding (attention_mask[b, k] != 0; undefined
// mask: no padding) and, with a sliding window w, q - k < w.
torch::Tensor AllowedKeys(const torch::Tensor& attention_mask, int64_t batch, int64_t length,
                          std::optional<int64_t> sliding_window);

// softmax(scores masked to the lowest float where not allowed) @ v, as
// Hugging Face's eager attention: a query with no allowed key gets a uniform
// average rather than NaN. scores [B, H, T, T], v [B, H, T, D].
torch::Tensor MaskedAttention(const torch::Tensor& scores, const torch::Tensor& allowed,
                              const torch::Tensor& v);

torch::Tensor Activate(const torch::Tensor& x, Activation activation);

std::shared_ptr<CausalLmImpl> MakeLlama(const DecoderConfig& config);
std::shared_ptr<CausalLmImpl> MakeGpt2(const DecoderConfig& config);

}  // namespace braid::worker

#endif  // BRAID_WORKER_DECODER_PARTS_H_
