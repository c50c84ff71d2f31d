// LoRA training speed of braid-worker's fit (JobTrainer::Fit, what
// `braid-worker run` calls each round) vs Hugging Face transformers + PEFT in
// PyTorch eager, on the same checkpoint, batch, sequence length, LoRA
// settings, optimizer (AdamW, no weight decay) and torch thread count, in the
// same run, repetitions interleaved. Also the bytes one worker moves per
// round (the adapter) against the full model's.
//
//   build/bin/braid_llm_lora_bench [--model demo|smollm2-135m-shape|all]
//       [--reps 3] [--threads 2]
//
// Models: "demo" is the demo's tiny Llama (scripts/demo-model.sh);
// "smollm2-135m-shape" a random Llama with SmolLM2-135M's shape made by
// bench/llm_lora_bench.py with Hugging Face code (no download), with the
// demo's tokenizer. Braid trains on JSONL text records each cut to exactly
// the sequence length, so every batch is [batch, seq] with every token
// labelled; the Python twin times the same shapes. Figures: tokens/s per
// repetition, medians, the ratio of medians, peak RSS (Braid: this process's
// VmHWM after the model's runs; PyTorch: the child's ru_maxrss).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "braid/core/spec.h"
#include "braid/worker/job_trainer.h"

namespace fs = std::filesystem;

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

double PeakRssMib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Case {
  std::string name;
  std::string folder;
  int batch, seq, steps;
  std::vector<std::string> targets;
};

// Text records long enough to fill `seq` tokens of any byte-level BPE.
void WriteData(const std::string& path, int records, int seq) {
  std::ofstream out(path);
  const char* words[] = {"seven", "river", "quietly", "opposite", "ninety", "garden",
                         "reverse", "sum", "bright", "window", "forty", "stone"};
  for (int r = 0; r < records; ++r) {
    std::string text;
    for (int w = 0; w < seq * 2; ++w) absl::StrAppend(&text, words[(r * 7 + w * 5) % 12], " ");
    out << "{\"text\": \"" << text << "\"}\n";
  }
}

void Run(const Case& c, int reps, int threads, const std::string& python, const std::string& src,
         const fs::path& scratch) {
  braid::spec::JobSpec job;
  job.name = "bench";
  job.model.kind = "llama";
  job.model.base.path = c.folder;
  job.model.adapter.rank = 8;
  job.model.adapter.alpha = 16;
  job.model.adapter.targets = c.targets;
  job.data.format = "jsonl";
  job.data.max_length = c.seq;
  job.data.eval_fraction = 0;
  job.training.batch_size = c.batch;
  job.training.optimizer = "adam";
  job.training.learning_rate = 1e-4;
  job.training.seed = 1;
  const std::string data = (scratch / (c.name + ".jsonl")).string();
  WriteData(data, c.batch * c.steps, c.seq);
  braid::worker::TrainerSource source;
  source.data_file = data;
  auto trainer = braid::worker::JobTrainer::Create(job, source);
  if (!trainer.ok()) {
    std::fprintf(stderr, "%s\n", std::string(trainer.status().message()).c_str());
    std::exit(1);
  }
  // Bytes per round: the adapter (what travels each way) vs the base.
  int64_t adapter_bytes = 0, base_bytes = 0;
  for (const auto& t : (*trainer)->Weights()) adapter_bytes += static_cast<int64_t>(t.data.size());
  // Both checkpoints are F32 files: their size is the model's fp32 bytes
  // (plus a header of a few KB). Not read here, so the peak RSS is the fit's.
  base_bytes = static_cast<int64_t>(fs::file_size(c.folder + "/model.safetensors"));

  (void)(*trainer)->Fit(1, 0);  // warm-up epoch
  std::vector<double> braid_tps, hf_tps, ratios;
  double hf_rss = 0;
  const double tokens = static_cast<double>(c.batch) * c.seq * c.steps;
  const std::string hf_cmd =
      absl::StrCat(python, " ", src, "/bench/llm_lora_bench.py time ", c.folder, " ", c.batch, " ",
                   c.seq, " ", c.steps, " ", threads, " ", absl::StrJoin(c.targets, ","));
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    auto fit = (*trainer)->Fit(1, r + 1);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!fit.ok()) {
      std::fprintf(stderr, "%s\n", std::string(fit.status().message()).c_str());
      std::exit(1);
    }
    braid_tps.push_back(tokens / s);
    const std::string hf = Capture(hf_cmd);
    double v = 0, rss = 0;
    std::sscanf(hf.c_str(), "tokens_per_s %lf peak_rss_mib %lf", &v, &rss);
    hf_tps.push_back(v);
    hf_rss = std::max(hf_rss, rss);
    ratios.push_back(braid_tps.back() / v);
  }
  auto fmt = [](const std::vector<double>& v) {
    std::vector<std::string> s;
    for (double x : v) s.push_back(absl::StrFormat("%.1f", x));
    return absl::StrJoin(s, " / ");
  };
  std::printf("| %s | %d x %d | %d | %s | %s | %.1f | %.1f | %.2f | %.2f-%.2f | %.0f | %.0f |\n",
              c.name.c_str(), c.batch, c.seq, c.steps, fmt(braid_tps).c_str(), fmt(hf_tps).c_str(),
              Median(braid_tps), Median(hf_tps), Median(braid_tps) / Median(hf_tps),
              *std::min_element(ratios.begin(), ratios.end()),
              *std::max_element(ratios.begin(), ratios.end()), PeakRssMib(), hf_rss);
  std::fflush(stdout);
  std::fprintf(stderr, "%s: adapter %lld bytes, model %lld bytes\n", c.name.c_str(),
               static_cast<long long>(adapter_bytes), static_cast<long long>(base_bytes));
  std::ofstream(scratch / "bytes.md", std::ios::app)
      << absl::StrFormat("| %s | %s | %lld | %lld | %.1fx |\n", c.name,
                         absl::StrJoin(c.targets, " "), static_cast<long long>(adapter_bytes),
                         static_cast<long long>(base_bytes),
                         static_cast<double>(base_bytes) / adapter_bytes);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "all";
  int reps = 3, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) {
      model = argv[i + 1];
    } else if (!std::strcmp(argv[i], "--reps")) {
      reps = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--threads")) {
      threads = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const std::string src = BRAID_SOURCE_DIR;
  const std::string python = Capture("bash " + src + "/scripts/pyref.sh");
  const std::string demo = Capture("bash " + src + "/scripts/demo-model.sh 2>/dev/null");
  const fs::path scratch = fs::temp_directory_path() / ("braid-llm-bench-" + std::to_string(getpid()));
  fs::create_directories(scratch);
  at::set_num_threads(threads);  // as braid-worker --threads

  const std::vector<std::string> all = {"q_proj", "k_proj", "v_proj", "o_proj",
                                        "gate_proj", "up_proj", "down_proj"};
  std::vector<Case> cases;
  if (model == "demo" || model == "all") cases.push_back({"demo tiny llama", demo, 16, 64, 10, all});
  if (model == "smollm2-135m-shape" || model == "all") {
    const std::string folder = (scratch / "smollm2-135m-shape").string();
    Capture(python + " " + src + "/bench/llm_lora_bench.py make " + folder + " " + demo);
    cases.push_back({"smollm2-135m-shape", folder, 2, 64, 4, {"q_proj", "k_proj", "v_proj", "o_proj"}});
  }
  std::printf("command: %s --model %s --reps %d --threads %d\n", argv[0], model.c_str(), reps, threads);
  std::printf("LoRA r=8, alpha 16, AdamW (no weight decay), fp32 CPU, %d torch threads both sides;"
              " tokens/s per repetition (braid, pytorch interleaved)\n\n", threads);
  std::printf("| model | batch x seq | steps | braid tokens/s | pytorch tokens/s | braid median |"
              " pytorch median | ratio of medians | ratio range | braid peak RSS MiB | pytorch peak RSS MiB |\n");
  std::printf("|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|\n");
  for (const Case& c : cases) Run(c, reps, threads, python, src, scratch);
  std::printf("\nBytes one worker moves per round, each way (fp32), LoRA r=8:\n\n");
  std::printf("| model | targets | adapter bytes | full model bytes | full / adapter |\n|---|---|---:|---:|---:|\n");
  std::ifstream bytes(scratch / "bytes.md");
  std::string line;
  while (std::getline(bytes, line)) std::printf("%s\n", line.c_str());
  fs::remove_all(scratch);
  return 0;
}
