"""Makes small tokenizers with Hugging Face code and the ids they give.

Usage: make_reference_tokenizers.py TEXT_DIR OUT_DIR

Trains, on TEXT_DIR/train.txt (multilingual and code-heavy, shipped in the
repo), the tokenizer kinds Braid reads, and writes each into OUT_DIR/<name>/
with its configuration files and OUT_DIR/<name>/expected.json: for every
sample of TEXT_DIR/heldout.txt (each line, each paragraph, the whole file),
and 300 seeded random strings of characters where regex engines tend to
disagree), the ids Hugging Face gives with and without special tokens, and its decoding;
plus the special token ids transformers' AutoTokenizer reports.

  gpt2          ByteLevel BPE (GPT-2 regex), merges as "a b" strings
  gpt2_prefix   the same with add_prefix_space: true
  split_*       its vocabulary behind Split with each behavior (Removed,
                MergedWithPrevious, MergedWithNext, Contiguous, inverted)
  llama3        NFC + Split(Llama-3 regex, Isolated) + ByteLevel(use_regex
                false), special tokens, TemplateProcessing with a BOS,
                merges as ["a", "b"] lists, ignore_merges: true
  qwen2         Split(Qwen2 regex) + ByteLevel, no BOS, <|im_end|> as EOS
  spm           a SentencePiece BPE tokenizer.model (byte_fallback), ids
                from the sentencepiece package
  spm_hf_legacy / spm_hf_prefix / spm_hf_metaspace
                that model converted by LlamaTokenizerFast (legacy=True:
                Replace normalizer, with add_prefix_space also Prepend and a
                Strip decoder; legacy=False: Metaspace prepend_scheme first)

Deterministic: the trainers are single-threaded on fixed text.
"""
import json
import os
import random
import shutil
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sentencepiece as spm  # noqa: E402
from tokenizers import (Regex, Tokenizer, decoders, models, normalizers,  # noqa: E402
                        pre_tokenizers, processors, trainers)
from transformers import AutoTokenizer, LlamaTokenizerFast, PreTrainedTokenizerFast  # noqa: E402

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


SPLIT_VARIANTS = [
    ("split_removed", "Removed", {"String": " "}, False),
    ("split_merged_previous", "MergedWithPrevious", {"Regex": r"\s+"}, False),
    ("split_merged_next", "MergedWithNext", {"Regex": r"\s+"}, False),
    ("split_contiguous", "Contiguous", {"Regex": r"\p{P}"}, False),
    ("split_inverted", "Isolated", {"Regex": r"\p{L}+"}, True),
]


# Characters where regex engines and normalizers tend to disagree: Unicode
# white space (NEL, NBSP, line/paragraph separators, ideographic space),
# digits of other scripts, combining marks, apostrophes, CJK, emoji parts.
TRICKY = (list(" \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2009\u200a\u2028\u2029\u202f\u205f"
               "\u3000\u180e\u200b\ufeff") +
          list("0123456789\u0663\u0967\uff11\u2167\u00bd\u2460") +
          list("aZ\u00e9e\u0301\u0308\u00df\u0130\u0131\u03a3\u0416\u05d0\u0627\u4e2d\u3042"
               "\u30a2\uac00") +
          list("'\u2019\"`.,;:!?-_()[]{}<>/\\|@#$%^&*+=~") +
          ["'s", "'S", "'ll", "'LL", "\U0001F600", "\U0001F44D\U0001F3FD", "\u200d", "\ufe0f",
           "<|endoftext|>", "<|im_start|>", "<s>", "</s>"])


def samples(text):
    out = [line for line in text.split("\n")]
    out += [p for p in text.split("\n\n")]
    out.append(text)
    out.append("")
    rng = random.Random(20261123)
    for _ in range(300):
        out.append("".join(rng.choice(TRICKY) for _ in range(rng.randint(1, 40))))
    return out


def rewrite_merges(path, as_strings, ignore_merges=None, prefix_space=None):
    """Puts the merges of a saved tokenizer.json in one of the two forms."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    merges = data["model"]["merges"]
    pairs = [m.split(" ", 1) if isinstance(m, str) else m for m in merges]
    data["model"]["merges"] = [" ".join(p) for p in pairs] if as_strings else pairs
    if ignore_merges is not None:
        data["model"]["ignore_merges"] = ignore_merges
    if prefix_space is not None:
        data["pre_tokenizer"]["add_prefix_space"] = prefix_space
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)


def write_expected(folder, texts, encode, decode, special):
    records = []
    for t in texts:
        with_special, without = encode(t, True), encode(t, False)
        records.append({"text": t, "ids": with_special, "ids_no_special": without,
                        "decoded": decode(without)})
    with open(os.path.join(folder, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"special": special, "samples": records}, f, ensure_ascii=False)


def hf_special(folder):
    auto = AutoTokenizer.from_pretrained(folder)
    ids = {}
    for name in ("bos", "eos", "pad", "unk"):
        value = getattr(auto, f"{name}_token_id")
        ids[name] = -1 if value is None else int(value)
    return ids


def expect_from_file(folder, texts):
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    write_expected(folder, texts,
                   lambda t, s: tok.encode(t, add_special_tokens=s).ids,
                   lambda ids: tok.decode(ids, skip_special_tokens=False),
                   hf_special(folder))


def byte_level_bpe(train_file, pre, special_tokens, normalizer=None, vocab_size=900):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train([train_file], trainer)
    return tok


def save_fast(tok, folder, **special):
    os.makedirs(folder, exist_ok=True)
    PreTrainedTokenizerFast(tokenizer_object=tok, **special).save_pretrained(folder)


def main():
    text_dir, out = sys.argv[1], sys.argv[2]
    train_file = os.path.join(text_dir, "train.txt")
    with open(os.path.join(text_dir, "heldout.txt"), encoding="utf-8") as f:
        texts = samples(f.read())

    # GPT-2: ByteLevel with its own regex, no BOS.
    tok = byte_level_bpe(train_file, pre_tokenizers.ByteLevel(add_prefix_space=False),
                         ["<|endoftext|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    for name, prefix in (("gpt2", False), ("gpt2_prefix", True)):
        folder = os.path.join(out, name)
        save_fast(tok, folder, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                  unk_token="<|endoftext|>")
        rewrite_merges(os.path.join(folder, "tokenizer.json"), as_strings=True,
                       prefix_space=prefix)
        expect_from_file(folder, texts)

    # Every Split behavior (and invert), on the GPT-2 vocabulary: the files
    # are edited, and Hugging Face tokenizes with the edited file.
    for name, behavior, pattern, invert in SPLIT_VARIANTS:
        folder = os.path.join(out, name)
        shutil.copytree(os.path.join(out, "gpt2"), folder)
        path = os.path.join(folder, "tokenizer.json")
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": pattern, "behavior": behavior, "invert": invert},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        expect_from_file(folder, texts)

    # Llama-3: NFC, Split(regex) + ByteLevel without its regex, BOS template.
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"]
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = byte_level_bpe(train_file, pre, specials, normalizer=normalizers.NFC())
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    folder = os.path.join(out, "llama3")
    save_fast(tok, folder, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>",
              pad_token="<|end_of_text|>")
    rewrite_merges(os.path.join(folder, "tokenizer.json"), as_strings=False, ignore_merges=True)
    expect_from_file(folder, texts)

    # Qwen2: single digits, no BOS, chat EOS.
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = byte_level_bpe(train_file, pre, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                         normalizer=normalizers.NFC())
    folder = os.path.join(out, "qwen2")
    save_fast(tok, folder, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    expect_from_file(folder, texts)

    # SentencePiece BPE with byte fallback, as Llama-2 / TinyLlama.
    folder = os.path.join(out, "spm")
    os.makedirs(folder, exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=train_file, model_prefix=os.path.join(folder, "tokenizer"), vocab_size=700,
        model_type="bpe", byte_fallback=True, character_coverage=0.9995,
        normalization_rule_name="identity", remove_extra_whitespaces=False, split_digits=True,
        num_threads=1, bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
    write_expected(folder, texts,
                   lambda t, s: ([sp.bos_id()] if s else []) + sp.encode(t),
                   lambda ids: sp.decode(ids),
                   {"bos": sp.bos_id(), "eos": sp.eos_id(), "pad": sp.pad_id(),
                    "unk": sp.unk_id()})
    os.remove(os.path.join(folder, "tokenizer.vocab"))

    # The same model as Hugging Face converts it for Llama checkpoints.
    for name, legacy, prefix in (("spm_hf_legacy", True, None), ("spm_hf_prefix", True, True),
                                 ("spm_hf_metaspace", False, True)):
        converted = os.path.join(out, name)
        extra = {} if prefix is None else {"add_prefix_space": prefix}
        fast = LlamaTokenizerFast(vocab_file=os.path.join(folder, "tokenizer.model"),
                                  legacy=legacy, from_slow=True, **extra)
        fast.save_pretrained(converted)
        expect_from_file(converted, texts)
        model_file = os.path.join(converted, "tokenizer.model")
        if os.path.exists(model_file):
            os.remove(model_file)  # Braid must read the tokenizer.json


if __name__ == "__main__":
    main()
