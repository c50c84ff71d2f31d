// The multi-layer perceptron for tabular classification.
//
// Parameters are a torch::nn::ModuleList registered as "layers" holding the
// Linear layers in order, with ReLU between them (none after the last), so
// the parameter names are "layers.0.weight", "layers.0.bias",
// "layers.1.weight", ... in that order. This order is the wire layout of the
// model (see local_trainer.h).
#ifndef BRAID_WORKER_MLP_H_
#define BRAID_WORKER_MLP_H_

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace braid::worker {

struct MlpOptions {
  int64_t in_features = 0;   // inputs per row; >= 1
  std::vector<int> hidden;   // hidden layer widths, each >= 1; may be empty
                             // (then the model is one Linear layer)
  int64_t num_classes = 2;   // output logits; >= 2
};

struct MlpImpl : torch::nn::Module {
  // Precondition: options are valid as documented on MlpOptions (the caller
  // validates; LocalTrainer::Create does). Parameters are initialized by
  // ResetParameters(0).
  explicit MlpImpl(const MlpOptions& options);

  // Re-initializes every parameter deterministically from `seed`, the same
  // way on every machine and LibTorch version (our own PRNG, not torch's
  // global generator, which this never reads or changes): weights and biases
  // of a layer with fan_in inputs are uniform in [-1/sqrt(fan_in),
  // 1/sqrt(fan_in)), PyTorch's default range for Linear.
  void ResetParameters(uint64_t seed);

  // x: [N, in_features] float32 -> logits [N, num_classes].
  torch::Tensor forward(torch::Tensor x);

  const MlpOptions& options() const { return options_; }

  torch::nn::ModuleList layers{nullptr};

 private:
  MlpOptions options_;
};
TORCH_MODULE(Mlp);

}  // namespace braid::worker

#endif  // BRAID_WORKER_MLP_H_
