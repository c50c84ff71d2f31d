#include "braid/aggregator/strategy_factory.h"

#include "absl/strings/str_cat.h"
#include "strategies.h"

namespace braid::aggregator {

absl::StatusOr<std::unique_ptr<AggregationStrategy>> CreateStrategy(
    const StrategyOptions& options) {
  if (spec::IsRobustAggregation(options.name)) {
    if (options.secure_aggregation || options.dp.enabled) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.strategy.name: ", options.name,
          " needs every single update, which secure aggregation and differential privacy do "
          "not keep"));
    }
    return NewRobustStrategy(options.name, options.robust, options.spill_dir);
  }
  std::unique_ptr<AggregationStrategy> average;
  if (options.secure_aggregation) {
    average = NewSecAggSumStrategy(options.dp);
  } else if (options.dp.enabled) {
    average = NewDpFedAvgStrategy(options.dp);
  } else {
    average = NewFedAvgStrategy();
  }
  // FedProx's difference is in the workers' loss; the server averages.
  if (options.name == "fedavg" || options.name == "fedprox") return average;
  absl::StatusOr<std::unique_ptr<AggregationStrategy>> optimized =
      NewServerOptimizerStrategy(options.name, options.server, std::move(average));
  if (!optimized.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.strategy.name: unknown strategy '", options.name,
                     "'; use fedavg, fedprox, fedavgm, fedadam, fedyogi, fedadagrad, median, "
                     "trimmedmean, krum, multikrum or bulyan"));
  }
  return optimized;
}

}  // namespace braid::aggregator
