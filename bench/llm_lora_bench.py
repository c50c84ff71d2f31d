"""The PyTorch side of llm_lora_bench: a SmolLM2-135M-shaped checkpoint made
with Hugging Face code, and Hugging Face + PEFT LoRA training speed (eager,
fp32, CPU) on a checkpoint folder.

  make <dir> <tokenizer_dir>      writes a seeded random LlamaForCausalLM with
                                  SmolLM2-135M's shape (30 layers, width 576,
                                  9/3 heads, MLP 1536, vocab 49152, tied) to
                                  <dir>, with the tokenizer files of
                                  <tokenizer_dir> (any byte-level BPE whose ids
                                  fit; speed does not depend on the ids)
  time <dir> B T steps threads targets
                                  2 warm-up steps, then `steps` timed LoRA
                                  steps (forward, backward, AdamW on the
                                  adapter, zero_grad; loss read each step as
                                  a trainer logs it) on [B, T] batches with
                                  every token labelled; LoRA r=8, alpha 16 on
                                  the comma-separated targets. Prints
                                  "tokens_per_s <v> peak_rss_mib <v>"
Run with the interpreter `bash scripts/pyref.sh` prints.
"""
import os
import resource
import shutil
import sys
import time

import torch
import transformers
import peft

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def make(root, tokenizer_dir):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                                      num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                                      max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=100000.0,
                                      tie_word_embeddings=True)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(root, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if os.path.exists(os.path.join(tokenizer_dir, name)):
            shutil.copy(os.path.join(tokenizer_dir, name), os.path.join(root, name))


def timed(root, b, t, steps, threads, targets):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = transformers.AutoModelForCausalLM.from_pretrained(root, torch_dtype=torch.float32,
                                                             attn_implementation="eager")
    model = peft.get_peft_model(base, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                      target_modules=targets.split(","), task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    vocab = min(base.config.vocab_size, 256)
    ids = torch.randint(0, vocab, (b, t))
    mask = torch.ones_like(ids)

    def step():
        loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tokens_per_s {b * t * steps / seconds:.1f} peak_rss_mib {rss_mib:.0f}")


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "time":
        b, t, steps, threads = (int(x) for x in sys.argv[3:7])
        timed(sys.argv[2], b, t, steps, threads, sys.argv[7])
    else:
        raise SystemExit("usage: llm_lora_bench.py make DIR TOKENIZER_DIR | time DIR B T STEPS THREADS TARGETS")


if __name__ == "__main__":
    main()
