// The strategies CreateStrategy (strategy_factory.h) chooses from, one file
// each. Internal to the aggregator library and its tests.
#ifndef BRAID_AGGREGATOR_SRC_STRATEGIES_H_
#define BRAID_AGGREGATOR_SRC_STRATEGIES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "braid/core/spec.h"

#include "braid/aggregator/dp_options.h"
#include "braid/aggregator/strategy.h"

namespace braid::aggregator {

// FedAvg (fedavg_strategy.cc): new global = global + sum of the deltas
// weighted by Upload::weight / the total weight folded.
std::unique_ptr<AggregationStrategy> NewFedAvgStrategy();

// DP-FedAvg (dp_fedavg_strategy.cc), `dp.enabled` assumed: with central
// noise each delta is clipped to dp.clip_norm and N(0, (noise_multiplier *
// clip_norm)^2) is added to each element of the sum; every client weighs 1
// and the sum is divided by the number sampled.
std::unique_ptr<AggregationStrategy> NewDpFedAvgStrategy(const DpOptions& dp);

// Secure aggregation (secagg_sum_strategy.cc): masked inputs are summed in
// the attempt's ring (RoundBegin::secagg); the unmasked sum of the
// survivors' pre-weighted updates is divided by their total public weight
// (with dp.enabled: by the number sampled, and noised first when
// dp.central_noise).
std::unique_ptr<AggregationStrategy> NewSecAggSumStrategy(const DpOptions& dp);

// A server optimizer (server_optimizer_strategy.cc) named `name` (fedavgm,
// fedadam, fedyogi, fedadagrad) applied to the average update `inner` makes
// each round. `inner` must make its new global as the old one plus that
// average (as the three above do): the optimizer reads the average by
// giving it an old global of zeros. InvalidArgument for another name.
absl::StatusOr<std::unique_ptr<AggregationStrategy>> NewServerOptimizerStrategy(
    const std::string& name, const spec::ServerOptimizer& options,
    std::unique_ptr<AggregationStrategy> inner);

// A robust aggregation (robust_strategy.cc) named `name` (median,
// trimmedmean, krum, multikrum, bulyan), keeping each round's updates in a
// file under `spill_dir`; InvalidArgument for another name or no directory.
absl::StatusOr<std::unique_ptr<AggregationStrategy>> NewRobustStrategy(
    const std::string& name, const spec::RobustAggregation& options,
    const std::string& spill_dir);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_SRC_STRATEGIES_H_
