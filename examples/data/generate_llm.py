#!/usr/bin/env python3
"""Generates the LLM example's data: three tenants, three instruction domains.

Deterministic (seeded, standard library only): running it again rewrites the
same bytes. Each tenant holds prompt/response records (JSONL, loss on the
response) of mostly its own domain (non-IID):
  * math-club:  "what is 12 plus 7?"           -> " 12 plus 7 is 19."
  * thesaurus:  "what is the opposite of hot?" -> " the opposite of hot is cold."
  * word-games: "reverse the words red cat"    -> " cat red."
pooled-test.jsonl draws evenly from the three domains: the yardstick for
"did federating help us?". No tenant would hold it in practice.

usage: generate_llm.py [OUT_DIR]   (default: this script's directory)
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llm_domains import DOMAINS  # noqa: E402

SEED = 20261123
RECORDS_PER_TENANT = 400
POOLED_RECORDS = 300
# Per tenant: share of each domain.
TENANTS = {
    "math-club": {"arithmetic": 0.96, "opposites": 0.02, "reversal": 0.02},
    "thesaurus": {"arithmetic": 0.02, "opposites": 0.96, "reversal": 0.02},
    "word-games": {"arithmetic": 0.02, "opposites": 0.02, "reversal": 0.96},
}


def draw(rng: random.Random, mix: dict) -> dict:
    domain = rng.choices(list(mix), weights=list(mix.values()))[0]
    return DOMAINS[domain](rng)


def write(path: str, records: list) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + "\n")


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out, exist_ok=True)
    for i, (name, mix) in enumerate(TENANTS.items()):
        rng = random.Random(SEED + i)
        write(os.path.join(out, f"{name}.jsonl"),
              [draw(rng, mix) for _ in range(RECORDS_PER_TENANT)])
    rng = random.Random(SEED + 100)
    even = {d: 1.0 for d in DOMAINS}
    write(os.path.join(out, "pooled-test.jsonl"), [draw(rng, even) for _ in range(POOLED_RECORDS)])


if __name__ == "__main__":
    main()
