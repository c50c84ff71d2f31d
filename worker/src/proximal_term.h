// FedProx's proximal term (Li et al. 2020, "Federated Optimization in
// Heterogeneous Networks"), as Flower's FedProx has clients add it to their
// training loss: mu / 2 * sum over the trained parameters of
// ||w - w_global||^2, where w_global are the parameters the round began
// with. Its gradient, mu * (w - w_global), pulls local training back towards
// the global model. Internal to the worker.
#ifndef BRAID_WORKER_SRC_PROXIMAL_TERM_H_
#define BRAID_WORKER_SRC_PROXIMAL_TERM_H_

#include <vector>

#include <torch/torch.h>

#include "braid/core/spec.h"

namespace braid::worker {

// mu for `job`: its strategy.proximalMu under fedprox, else 0 (no term).
inline double ProximalMu(const spec::JobSpec& job) {
  return job.strategy.name == "fedprox" ? job.strategy.proximal_mu : 0.0;
}

// The term for `params` against `anchors` (the same shapes, detached, in
// the same order). Precondition: mu > 0.
inline torch::Tensor ProximalTerm(const std::vector<torch::Tensor>& params,
                                  const std::vector<torch::Tensor>& anchors, double mu) {
  torch::Tensor sum = torch::zeros({}, params.front().options());
  for (size_t i = 0; i < params.size(); ++i) sum = sum + (params[i] - anchors[i]).pow(2).sum();
  return sum * (mu / 2);
}

}  // namespace braid::worker

#endif  // BRAID_WORKER_SRC_PROXIMAL_TERM_H_
