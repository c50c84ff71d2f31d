"""Reference epsilons from Google's dp-accounting (PyPI 0.4.4) for Braid's RDP
accountant test (core/src/dp/rdp_accountant_test.cc runs this with the
interpreter from scripts/pyref.sh).

Prints one line per setting: q z rounds delta epsilon, for every combination of
the sampling rates, noise multipliers, round counts and deltas below.
"""
import importlib.metadata
import itertools

import dp_accounting

QS = [0.01, 0.1, 0.5, 1.0]
ZS = [0.5, 0.8, 1.1, 2.0, 5.0]
ROUNDS = [1, 10, 100, 1000]
DELTAS = [1e-5, 1e-6]

version = importlib.metadata.version("dp-accounting")
assert version == "0.4.4", f"expected dp-accounting 0.4.4, found {version}"
for q, z in itertools.product(QS, ZS):
  accountant = dp_accounting.rdp.RdpAccountant()  # default orders
  event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z))
  done = 0
  for rounds in ROUNDS:  # compose up to each round count, then read epsilon
    accountant.compose(event, rounds - done)
    done = rounds
    for delta in DELTAS:
      print(q, z, rounds, delta, repr(accountant.get_epsilon(delta)), flush=True)
