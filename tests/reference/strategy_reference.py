"""Flower's server strategies on rounds of updates, for
strategy_reference_test.cc: reads the rounds as JSON, writes the global
weights Flower makes after each round.

Input (argv[1]):
  {"strategy": "fedadam", "learning_rate": .., "momentum": .., "beta1": ..,
   "beta2": .., "tau": .., "byzantine": f, "keep": n, "trim": beta,
   "initial": [floats],
   "rounds": [[{"delta": [floats], "examples": n}, ...], ...]}
Each client's parameters are the current global plus its delta, in float64,
so that Flower computes the exact arithmetic the float32 implementation is
held to. Output (argv[2]): {"globals": [[floats], ...]}, one per round.
"""
import json
import sys

import numpy as np
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import (Bulyan, FedAdagrad, FedAdam, FedAvgM, FedMedian,
                                  FedTrimmedAvg, FedYogi, Krum)


def make_strategy(spec, initial):
    params = ndarrays_to_parameters([initial])
    name = spec["strategy"]
    if name == "fedavgm":
        return FedAvgM(initial_parameters=params, server_learning_rate=spec["learning_rate"],
                       server_momentum=spec["momentum"])
    if name == "fedadam":
        return FedAdam(initial_parameters=params, eta=spec["learning_rate"],
                       beta_1=spec["beta1"], beta_2=spec["beta2"], tau=spec["tau"])
    if name == "fedyogi":
        return FedYogi(initial_parameters=params, eta=spec["learning_rate"],
                       beta_1=spec["beta1"], beta_2=spec["beta2"], tau=spec["tau"])
    if name == "fedadagrad":
        return FedAdagrad(initial_parameters=params, eta=spec["learning_rate"], tau=spec["tau"])
    if name == "median":
        return FedMedian()
    if name == "trimmedmean":
        return FedTrimmedAvg(beta=spec["trim"])
    if name == "krum":
        return Krum(num_malicious_clients=spec["byzantine"], num_clients_to_keep=0)
    if name == "multikrum":
        return Krum(num_malicious_clients=spec["byzantine"], num_clients_to_keep=spec["keep"])
    if name == "bulyan":
        # Bulyan passes its extra arguments to its first rule, Krum: to_keep=0 is
        # plain Krum, as in the paper.
        return Bulyan(num_malicious_clients=spec["byzantine"], to_keep=0)
    raise SystemExit(f"unknown strategy {name}")


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    current = np.asarray(spec["initial"], dtype=np.float64)
    strategy = make_strategy(spec, current)
    globals_out = []
    for server_round, clients in enumerate(spec["rounds"], start=1):
        results = []
        for c in clients:
            x = current + np.asarray(c["delta"], dtype=np.float64)
            res = FitRes(status=Status(code=Code.OK, message=""),
                         parameters=ndarrays_to_parameters([x]),
                         num_examples=int(c["examples"]), metrics={})
            results.append((None, res))
        aggregated, _ = strategy.aggregate_fit(server_round, results, [])
        current = np.asarray(parameters_to_ndarrays(aggregated)[0], dtype=np.float64)
        globals_out.append(current.tolist())
    with open(sys.argv[2], "w") as f:
        json.dump({"globals": globals_out}, f)


if __name__ == "__main__":
    main()
