"""The PyTorch side of llm_lora_bench: a Llama-architecture checkpoint and
Hugging Face + PEFT LoRA training speed on it (eager, fp32, CPU).

  make <dir>                      writes a seeded random checkpoint to <dir>
  time <dir> B T steps threads    times `steps` LoRA steps (forward, backward,
                                  AdamW on the adapter) after 2 warm-up steps;
                                  prints "tokens_per_s <value>"
Run with the interpreter `bash scripts/pyref.sh` prints.
"""
import sys
import time

import torch
import transformers
import peft

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def main():
    mode, root = sys.argv[1], sys.argv[2]
    if mode == "make":
        torch.manual_seed(0)
        config = transformers.LlamaConfig(vocab_size=4096, hidden_size=256, intermediate_size=688,
                                          num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
                                          max_position_embeddings=512, tie_word_embeddings=True)
        transformers.AutoModelForCausalLM.from_config(config).save_pretrained(root)
        return
    b, t, steps, threads = (int(x) for x in sys.argv[3:7])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = transformers.AutoModelForCausalLM.from_pretrained(root, torch_dtype=torch.float32,
                                                             attn_implementation="eager")
    model = peft.get_peft_model(base, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                      target_modules=TARGETS, task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, 4096, (b, t))
    mask = torch.ones_like(ids)

    def step():
        loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"tokens_per_s {b * t * steps / (time.perf_counter() - start):.1f}")


if __name__ == "__main__":
    main()
