// Creates the aggregation strategy a job asks for (see strategy.h).
#ifndef BRAID_AGGREGATOR_STRATEGY_FACTORY_H_
#define BRAID_AGGREGATOR_STRATEGY_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "braid/aggregator/dp_options.h"
#include "braid/aggregator/strategy.h"
#include "braid/core/spec.h"

namespace braid::aggregator {

// What of the job spec chooses and configures the strategy.
struct StrategyOptions {
  // spec.strategy.name: fedavg, or a server optimizer (fedavgm, fedadam,
  // fedyogi, fedadagrad) with its parameters in `server`.
  std::string name = "fedavg";
  spec::ServerOptimizer server;
  // Robust aggregations (median, trimmedmean, krum, multikrum, bulyan):
  // their parameters, and the directory each round's updates are kept in
  // (braid-aggregator: <checkpoint-dir>/spill).
  spec::RobustAggregation robust;
  std::string spill_dir;
  // spec.privacy.differentialPrivacy; off by default.
  DpOptions dp;
  // spec.privacy.secureAggregation: updates arrive masked and are summed in
  // the secure-aggregation ring; off by default.
  bool secure_aggregation = false;
};

// The strategy for `options`:
//   fedavg                          FedAvg: average weighted by examples
//   fedavg + differentialPrivacy    DP-FedAvg: clipped, uniform, noised
//   fedavg + secureAggregation      the unmasked ring sum over the
//                                   survivors' public weights (with DP:
//                                   over the number sampled, noised when
//                                   the mode is central)
//   fedavgm, fedadam, fedyogi,      the server optimizer of that name over
//   fedadagrad                      what fedavg (with its privacy settings)
//                                   makes of the round
//   median, trimmedmean, krum,      robust aggregation of the round's
//   multikrum, bulyan               updates, kept whole in spill_dir (no
//                                   secure aggregation, no DP: core/spec
//                                   refuses those, and so does this)
// InvalidArgument naming spec.strategy.name for an unknown name.
absl::StatusOr<std::unique_ptr<AggregationStrategy>> CreateStrategy(
    const StrategyOptions& options);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_STRATEGY_FACTORY_H_
