// LoRA training speed of Braid's decoder vs Hugging Face + PEFT in PyTorch
// eager, same checkpoint, batch, sequence length, threads and optimizer, in
// the same run. Prints both figures in tokens/s and their ratio.
//
//   build/bin/braid_llm_lora_bench [--batch 4] [--seq 128] [--steps 10] [--threads 2]
//
// The checkpoint (a Llama-architecture model: 4 layers, width 256, GQA 8/4
// heads, vocab 4096, tied embeddings; LoRA r=8 on q/k/v/o) is made by
// bench/llm_lora_bench.py with the interpreter scripts/pyref.sh prints.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <torch/torch.h>

#include "braid/worker/checkpoint.h"
#include "braid/worker/lora.h"

namespace fs = std::filesystem;
using braid::worker::LoraModel;

namespace {

std::string Capture(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) out += buf;
  if (pclose(p) != 0) {
    std::fprintf(stderr, "failed: %s\n%s", command.c_str(), out.c_str());
    std::exit(1);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int batch = 4, seq = 128, steps = 10, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    int* target = !std::strcmp(argv[i], "--batch")     ? &batch
                  : !std::strcmp(argv[i], "--seq")     ? &seq
                  : !std::strcmp(argv[i], "--steps")   ? &steps
                  : !std::strcmp(argv[i], "--threads") ? &threads
                                                       : nullptr;
    if (!target) {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
    *target = std::atoi(argv[i + 1]);
  }
  const std::string src = BRAID_SOURCE_DIR;
  const std::string python = Capture("bash " + src + "/scripts/pyref.sh");
  const fs::path dir = fs::temp_directory_path() / ("braid-llm-bench-" + std::to_string(getpid()));
  Capture(python + " " + src + "/bench/llm_lora_bench.py make " + dir.string());

  at::set_num_threads(threads);
  torch::manual_seed(0);
  auto base = braid::worker::LoadCausalLm(dir.string());
  if (!base.ok()) {
    std::fprintf(stderr, "%s\n", std::string(base.status().message()).c_str());
    return 1;
  }
  braid::worker::LoraOptions options;
  options.rank = 8;
  options.alpha = 16;
  options.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};
  auto lora = LoraModel::Create(*base, options, 0);
  if (!lora.ok()) return 1;
  torch::optim::AdamW opt((*lora)->AdapterParameters(), torch::optim::AdamWOptions(1e-4));
  const auto ids = torch::randint(0, 4096, {batch, seq}, torch::kLong);
  const auto mask = torch::ones_like(ids);
  auto step = [&] {
    auto loss = (*lora)->Loss(ids, mask, ids);
    loss.backward();
    opt.step();
    opt.zero_grad();
  };
  for (int i = 0; i < 2; ++i) step();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double braid_tps = static_cast<double>(batch) * seq * steps / seconds;

  const std::string hf = Capture(python + " " + src + "/bench/llm_lora_bench.py time " + dir.string() + " " +
                                 std::to_string(batch) + " " + std::to_string(seq) + " " + std::to_string(steps) +
                                 " " + std::to_string(threads));
  const double hf_tps = std::atof(hf.substr(hf.rfind(' ') + 1).c_str());
  fs::remove_all(dir);
  std::printf("command: %s --batch %d --seq %d --steps %d --threads %d\n", argv[0], batch, seq, steps, threads);
  std::printf("model: llama 4 layers, width 256, heads 8/4 (GQA), vocab 4096; LoRA r=8 on q,k,v,o; AdamW; fp32 CPU\n");
  std::printf("braid LoRA training:          %10.1f tokens/s\n", braid_tps);
  std::printf("transformers+peft (eager):    %10.1f tokens/s\n", hf_tps);
  std::printf("ratio braid / pytorch:        %10.2f\n", braid_tps / hf_tps);
  return 0;
}
