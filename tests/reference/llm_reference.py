"""Hugging Face / PEFT reference numbers for Braid's decoders and LoRA.

Run with the interpreter `bash scripts/pyref.sh` prints (transformers 4.46.3,
peft 0.13.2 over Debian's torch 1.13). Two phases, both for one model kind:

  make <dir> <kind>   makes a tiny random checkpoint <dir>/<kind>/base (seeded),
                      a batch (<dir>/<kind>/batch.safetensors: input_ids,
                      attention_mask, labels; right padding, -100 on padding
                      and on a "prompt"), Hugging Face's fp32 logits
                      (logits.safetensors), a PEFT adapter with non-zero
                      lora_B (adapter_init/), and PEFT's causal-LM loss and
                      adapter gradients on the batch (lora_grads.safetensors).
  peft <dir> <kind>   loads <dir>/<kind>/adapter_braid (written by Braid) with
                      PeftModel.from_pretrained on the base and writes its
                      logits (peft_logits.safetensors); loads
                      <dir>/<kind>/merged (Braid's merged weights) with
                      AutoModelForCausalLM and writes merged_logits.safetensors.

kind: llama_gqa (GQA, untied), llama_tied_bf16 (tied embeddings, saved as
bfloat16), qwen2 (q/k/v biases, rope_theta 1e6, sharded), mistral (sliding window
shorter than the batch), gpt2. Any failure exits non-zero with a traceback on
stderr, which the C++ test prints.
"""
import os
import sys

import torch
import transformers
import peft
from safetensors.torch import save_file

SEED = 1234
VOCAB = 96
TARGETS = {
    "llama_gqa": ["q_proj", "v_proj", "down_proj"],
    "llama_tied_bf16": ["q_proj", "k_proj", "o_proj", "up_proj"],
    "qwen2": ["q_proj", "v_proj", "gate_proj"],
    "mistral": ["q_proj", "v_proj"],
    "gpt2": ["c_attn", "c_proj"],
}


def make_config(kind):
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                  rms_norm_eps=1e-5)
    if kind == "llama_gqa":
        return transformers.LlamaConfig(**common, tie_word_embeddings=False, rope_theta=10000.0)
    if kind == "llama_tied_bf16":
        common.update(num_key_value_heads=4)
        return transformers.LlamaConfig(**common, tie_word_embeddings=True, rope_theta=500000.0)
    if kind == "qwen2":
        return transformers.Qwen2Config(**common, tie_word_embeddings=False, rope_theta=1e6,
                                        use_sliding_window=False)
    if kind == "mistral":
        return transformers.MistralConfig(**common, tie_word_embeddings=False, sliding_window=4)
    if kind == "gpt2":
        return transformers.GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=64, n_layer=2, n_head=4,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    raise SystemExit(f"unknown kind {kind}")


def randomize(model):
    # Hugging Face initialises biases to 0 and norms to 1; random values make
    # every parameter matter.
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm = "norm" in name or ".ln_" in name or "ln_f" in name
            if is_norm and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.08 * torch.randn(p.shape, generator=g))


def batch():
    g = torch.Generator().manual_seed(SEED + 2)
    lengths = [12, 9, 5]
    ids = torch.randint(0, VOCAB, (len(lengths), 12), generator=g)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    ids = ids * mask  # padding id 0
    labels = ids.masked_fill(mask == 0, -100)
    labels[0, :4] = -100  # a prompt that carries no loss
    return ids, mask, labels


def load(path):
    return transformers.AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32,
                                                             attn_implementation="eager").eval()


def make(root, kind):
    out = os.path.join(root, kind)
    torch.manual_seed(SEED)
    config = make_config(kind)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    randomize(model)
    if kind == "llama_tied_bf16":
        model = model.to(torch.bfloat16)
    # qwen2 is saved in shards (model.safetensors.index.json), the others whole.
    model.save_pretrained(os.path.join(out, "base"), safe_serialization=True,
                          max_shard_size="100KB" if kind == "qwen2" else "5GB")
    if kind == "qwen2":
        assert os.path.exists(os.path.join(out, "base", "model.safetensors.index.json"))
    ids, mask, labels = batch()
    save_file({"input_ids": ids, "attention_mask": mask, "labels": labels},
              os.path.join(out, "batch.safetensors"))

    base = load(os.path.join(out, "base"))  # fp32, from the saved (possibly bf16) weights
    with torch.no_grad():
        logits = base(input_ids=ids, attention_mask=mask).logits
    save_file({"logits": logits.contiguous()}, os.path.join(out, "logits.safetensors"))

    lora_config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS[kind],
                                  task_type="CAUSAL_LM", fan_in_fan_out=(kind == "gpt2"))
    torch.manual_seed(SEED + 3)
    model = peft.get_peft_model(base, lora_config)
    g = torch.Generator().manual_seed(SEED + 4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    model.save_pretrained(os.path.join(out, "adapter_init"))
    model.train()
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    grads = {"loss": loss.detach().reshape(1)}
    for name, p in model.named_parameters():
        if p.requires_grad:
            grads[name.replace(".default", "")] = p.grad.contiguous()
    save_file(grads, os.path.join(out, "lora_grads.safetensors"))


def check_peft(root, kind):
    out = os.path.join(root, kind)
    ids, mask, _ = batch()
    base = load(os.path.join(out, "base"))
    model = peft.PeftModel.from_pretrained(base, os.path.join(out, "adapter_braid")).eval()
    merged = load(os.path.join(out, "merged"))
    with torch.no_grad():
        peft_logits = model(input_ids=ids, attention_mask=mask).logits
        merged_logits = merged(input_ids=ids, attention_mask=mask).logits
    save_file({"logits": peft_logits.contiguous()}, os.path.join(out, "peft_logits.safetensors"))
    save_file({"logits": merged_logits.contiguous()}, os.path.join(out, "merged_logits.safetensors"))


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("make", "peft"):
        raise SystemExit("usage: llm_reference.py make|peft <dir> <kind>")
    assert transformers.__version__ == "4.46.3", transformers.__version__
    assert peft.__version__ == "0.13.2", peft.__version__
    torch.set_num_threads(1)
    (make if sys.argv[1] == "make" else check_peft)(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()
