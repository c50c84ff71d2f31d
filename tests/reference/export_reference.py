"""Hugging Face / PEFT side of export_reference_test: braid-worker export's
merged checkpoint against base + adapter in PEFT.

Run with the interpreter `bash scripts/pyref.sh` prints (transformers 4.46.3,
peft 0.13.2 over Debian's torch 1.13). Two phases, for one model kind:

  make <dir> <kind>   a tiny random checkpoint <dir>/<kind>/base (seeded, as
                      llm_reference.py makes them) and PEFT's adapter layout
                      for the job's LoRA settings: <dir>/<kind>/peft_layout.json,
                      {name: shape} of get_peft_model_state_dict, the tensors
                      PEFT saves and loads.
  check <dir> <kind>  on a fixed right-padded batch, writes
                      <dir>/<kind>/check_logits.safetensors with the logits of
                        base    the base alone,
                        peft    the base with <dir>/<kind>/export/adapter loaded
                                by PeftModel.from_pretrained (not merged),
                        merged  <dir>/<kind>/export/merged loaded by
                                AutoModelForCausalLM.from_pretrained,
                      and input_ids / attention_mask.

kind: llama (GQA, untied, every projection targeted), llama_tied (tied
embeddings), gpt2 (Conv1D weights, fused c_attn, fan_in_fan_out). Any
failure exits non-zero with a traceback on stderr, which the C++ test prints.
"""
import json
import os
import sys

import torch
import transformers
import peft
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llm_reference import load, randomize  # noqa: E402

SEED = 4321
VOCAB = 96
RANK = 4
ALPHA = 8
TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "llama_tied": ["q_proj", "v_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}


def make_config(kind):
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                  rms_norm_eps=1e-5)
    if kind == "llama":
        return transformers.LlamaConfig(**common, tie_word_embeddings=False)
    if kind == "llama_tied":
        return transformers.LlamaConfig(**common, tie_word_embeddings=True)
    if kind == "gpt2":
        return transformers.GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=64, n_layer=2, n_head=4,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    raise SystemExit(f"unknown kind {kind}")


def lora_config(kind):
    return peft.LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS[kind],
                           task_type="CAUSAL_LM", fan_in_fan_out=(kind == "gpt2"))


def make(root, kind):
    out = os.path.join(root, kind)
    torch.manual_seed(SEED)
    model = transformers.AutoModelForCausalLM.from_config(make_config(kind), attn_implementation="eager")
    randomize(model)
    model.save_pretrained(os.path.join(out, "base"), safe_serialization=True)
    base = load(os.path.join(out, "base"))
    state = peft.get_peft_model_state_dict(peft.get_peft_model(base, lora_config(kind)))
    with open(os.path.join(out, "peft_layout.json"), "w") as f:
        json.dump({name: list(t.shape) for name, t in state.items()}, f)


def batch():
    g = torch.Generator().manual_seed(SEED + 1)
    lengths = [16, 11, 4]
    ids = torch.randint(0, VOCAB, (len(lengths), 16), generator=g)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    return ids * mask, mask


def check(root, kind):
    out = os.path.join(root, kind)
    ids, mask = batch()
    with torch.no_grad():
        base_logits = load(os.path.join(out, "base"))(input_ids=ids, attention_mask=mask).logits
        # A fresh base: PeftModel injects the adapter into the model it is given.
        with_adapter = peft.PeftModel.from_pretrained(load(os.path.join(out, "base")),
                                                      os.path.join(out, "export", "adapter")).eval()
        peft_logits = with_adapter(input_ids=ids, attention_mask=mask).logits
        merged_logits = load(os.path.join(out, "export", "merged"))(input_ids=ids, attention_mask=mask).logits
    save_file({"base": base_logits.contiguous(), "peft": peft_logits.contiguous(),
               "merged": merged_logits.contiguous(), "input_ids": ids, "attention_mask": mask},
              os.path.join(out, "check_logits.safetensors"))


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("make", "check"):
        raise SystemExit("usage: export_reference.py make|check <dir> <kind>")
    assert transformers.__version__ == "4.46.3", transformers.__version__
    assert peft.__version__ == "0.13.2", peft.__version__
    torch.set_num_threads(1)
    (make if sys.argv[1] == "make" else check)(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()
