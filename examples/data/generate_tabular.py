#!/usr/bin/env python3
"""Generates the tabular example's data: three hospitals whose patients differ.

Deterministic (seeded, standard library only): running it again rewrites the
same bytes, which tests/e2e checks. Four classes, eight features. The data are
non-IID in two ways a real consortium sees:
  * label skew: each site sees mostly two of the four classes;
  * feature shift: each site's instruments add their own offset and scale.
pooled-test.csv is a held-out set drawn evenly from every site and class: the
yardstick for "did federating help us?". No site would hold it in practice.

usage: generate_tabular.py [OUT_DIR]   (default: this script's directory)
"""
import os
import random
import sys

FEATURES = 8
CLASSES = 4
ROWS_PER_SITE = 2000
POOLED_ROWS = 2400
SEED = 20261123

# Per site: class mix (sums to 1), feature offset and scale.
SITES = {
    "st-mary": {"mix": [0.49, 0.49, 0.01, 0.01], "offset": 0.4, "scale": 1.0},
    "charite": {"mix": [0.01, 0.49, 0.49, 0.01], "offset": -0.3, "scale": 1.15},
    "karolinska": {"mix": [0.01, 0.01, 0.49, 0.49], "offset": 0.1, "scale": 0.9},
}


def class_means(rng):
    """One mean vector per class; classes overlap enough to need all data."""
    return [[rng.uniform(-1.3, 1.3) for _ in range(FEATURES)] for _ in range(CLASSES)]


def sample(rng, means, label, site):
    x = [rng.gauss(means[label][j], 1.0) for j in range(FEATURES)]
    # An interaction feature: the sign of x0*x1 moves class 3, so a linear
    # model is not enough and the MLP's hidden layers earn their keep.
    if label == 3:
        x[2] += 1.0 if x[0] * x[1] > 0 else -1.0
    return [v * site["scale"] + site["offset"] for v in x]


def write(path, rows):
    with open(path, "w", newline="\n") as f:
        f.write(",".join([f"x{j}" for j in range(FEATURES)] + ["label"]) + "\n")
        for x, label in rows:
            f.write(",".join(f"{v:.4f}" for v in x) + f",{label}\n")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(SEED)
    means = class_means(rng)
    for name, site in SITES.items():
        rows = []
        for _ in range(ROWS_PER_SITE):
            label = rng.choices(range(CLASSES), weights=site["mix"])[0]
            rows.append((sample(rng, means, label, site), label))
        write(os.path.join(out_dir, f"{name}.csv"), rows)
    pooled = []
    per_cell = POOLED_ROWS // (len(SITES) * CLASSES)
    for site in SITES.values():
        for label in range(CLASSES):
            pooled.extend((sample(rng, means, label, site), label) for _ in range(per_cell))
    rng.shuffle(pooled)
    write(os.path.join(out_dir, "pooled-test.csv"), pooled)


if __name__ == "__main__":
    main()
