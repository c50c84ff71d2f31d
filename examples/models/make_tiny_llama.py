#!/usr/bin/env python3
"""Makes the LLM example's base model: a tiny Llama pretrained on text made here.

Nothing is downloaded. The text comes from examples/data/llm_domains.py
(everyday sentences with every word and number the instruction domains use,
but no instruction), a byte-level BPE tokenizer is trained on it with Hugging
Face `tokenizers`, and a LlamaForCausalLM (2 layers, hidden 64) is pretrained
on it with transformers over PyTorch, seeded, single-threaded. The output is
a Hugging Face checkpoint folder: config.json, model.safetensors,
tokenizer.json, tokenizer_config.json, special_tokens_map.json,
generation_config.json.

usage: make_tiny_llama.py OUT_DIR   (run with the venv of scripts/pyref.sh;
scripts/demo-model.sh calls it and caches the folder)
"""
import os
import random
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
from llm_domains import plain_sentence  # noqa: E402

SEED = 20261123
SENTENCES = 20000
VOCAB = 384
SEQ = 64
BATCH = 32
STEPS = 500
LR = 3e-3


def corpus() -> list:
    rng = random.Random(SEED)
    return [plain_sentence(rng) for _ in range(SENTENCES)]


def train_tokenizer(text: list) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(text, trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


def main() -> None:
    out = sys.argv[1]
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    text = corpus()
    tokenizer = train_tokenizer(text)
    # One stream of "<s> sentence</s>" ids, cut into SEQ blocks.
    ids = []
    for sentence in text:
        ids += tokenizer(sentence)["input_ids"] + [tokenizer.eos_token_id]
    blocks = torch.tensor(ids[: len(ids) // SEQ * SEQ]).view(-1, SEQ)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=176,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, rms_norm_eps=1e-5,
                         tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50)
                                              * max(0.1, 1 - s / STEPS))
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for step in range(STEPS):
        batch = blocks[torch.randint(0, blocks.shape[0], (BATCH,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == STEPS - 1:
            print(f"step {step} loss {loss.item():.4f}", flush=True)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    main()
