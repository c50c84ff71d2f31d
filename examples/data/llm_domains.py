"""The words, numbers and three instruction domains of the LLM example.

Shared by generate_llm.py (the tenants' JSONL) and
examples/models/make_tiny_llama.py (the base model's pretraining text), so
that the base model knows every word but has never seen the instructions.
Standard library only; every function is deterministic given its Random.
"""
import random

COLORS = ["red", "blue", "green", "yellow", "black", "white", "brown", "pink"]
ANIMALS = ["cat", "dog", "bird", "fish", "horse", "cow", "fox", "bear"]
PLACES = ["park", "house", "garden", "river", "forest", "school", "market", "field"]
OPPOSITES = [
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("happy", "sad"),
    ("tall", "short"), ("light", "dark"), ("old", "young"), ("hard", "soft"),
    ("early", "late"), ("full", "empty"), ("rich", "poor"), ("strong", "weak"),
    ("wet", "dry"), ("loud", "quiet"), ("clean", "dirty"), ("high", "low"),
]
WORDS = COLORS + ANIMALS + PLACES + [w for pair in OPPOSITES for w in pair]


def arithmetic(rng: random.Random) -> dict:
    a, b = rng.randrange(0, 50), rng.randrange(0, 50)
    return {"prompt": f"Question: what is {a} plus {b}?\nAnswer:",
            "response": f" {a} plus {b} is {a + b}."}


def opposite(rng: random.Random) -> dict:
    word, other = rng.choice(OPPOSITES)
    if rng.random() < 0.5:
        word, other = other, word
    return {"prompt": f"Question: what is the opposite of {word}?\nAnswer:",
            "response": f" the opposite of {word} is {other}."}


def reverse(rng: random.Random) -> dict:
    words = [rng.choice(WORDS) for _ in range(rng.randrange(3, 6))]
    return {"prompt": f"Question: reverse the words {' '.join(words)}.\nAnswer:",
            "response": f" {' '.join(reversed(words))}."}


DOMAINS = {"arithmetic": arithmetic, "opposites": opposite, "reversal": reverse}


def plain_sentence(rng: random.Random) -> str:
    """One sentence of the base model's pretraining text: every word and
    number of the domains, in everyday sentences, no instruction."""
    kind = rng.randrange(5)
    if kind == 0:
        return (f"there are {rng.randrange(0, 100)} {rng.choice(ANIMALS)}s in the "
                f"{rng.choice(PLACES)}.")
    if kind == 1:
        a, b = rng.choice(OPPOSITES)
        return f"the {rng.choice(ANIMALS)} is {a} but the {rng.choice(ANIMALS)} is {b}."
    if kind == 2:
        return (f"the {rng.choice(COLORS)} {rng.choice(ANIMALS)} walks to the "
                f"{rng.choice(PLACES)} with {rng.randrange(0, 100)} friends.")
    if kind == 3:
        words = [rng.choice(WORDS) for _ in range(rng.randrange(3, 7))]
        return " ".join(words) + "."
    return (f"in the {rng.choice(PLACES)} the {rng.choice(ANIMALS)} saw "
            f"{rng.randrange(0, 100)} {rng.choice(COLORS)} birds and {rng.randrange(0, 100)} "
            f"{rng.choice(COLORS)} fish.")
