// Causal-LM training data from JSONL: one record per line, tokenized, split
// into train and eval, and cut into batches of plain int64 vectors (the
// trainer turns them into tensors). No LibTorch; lives in braid_text.
//
// Records (other keys on a line are ignored):
//   {"text": "..."}                        loss on every token
//   {"instruction": "...", "input": "...", "output": "..."}   ("input" optional)
//   {"prompt": "...", "response": "..."}   instruction tuning: loss on the
//                                          response tokens only
// Token layout (ids; labels are -100 where no loss is taken):
//   text:         Encode(text, special) + [EOS]           labels = ids
//   instruction:  Encode(prompt, special) + Encode(answer) + [EOS]
//                 labels = -100 on the prompt, ids on answer + EOS
// where `special` adds the tokenizer's template tokens (e.g. BOS), prompt is
// kInstructionTemplate / kInstructionWithInputTemplate filled in (Alpaca's
// wording) for instruction records, the prompt string as is for
// prompt/response records, and answer is "output" / "response".
#ifndef BRAID_WORKER_LM_DATA_H_
#define BRAID_WORKER_LM_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "braid/core/spec.h"
#include "braid/worker/tokenizer.h"

namespace braid::worker {

inline constexpr int32_t kIgnoreLabel = -100;  // PyTorch's cross_entropy ignore_index

// {instruction} is replaced by the record's instruction, {input} by its input.
inline constexpr char kInstructionTemplate[] =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n";
inline constexpr char kInstructionWithInputTemplate[] =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
    "{instruction}\n\n### Input:\n{input}\n\n### Response:\n";

struct LmDataOptions {
  int max_length = 512;        // spec.data.maxLength: tokens per example (padding) or block (packing)
  bool packing = false;        // spec.data.packing
  double eval_fraction = 0.2;  // spec.data.evalFraction, in [0, 1)
  uint64_t seed = 0;           // spec.training.seed
  // Bounds, so that a hostile file cannot make the reader allocate without
  // limit. A longer line is skipped and reported; more records or tokens
  // than these make the whole file an error.
  size_t max_line_bytes = 1u << 20;        // 1 MiB
  size_t max_records = 10'000'000;
  size_t max_total_tokens = 256u << 20;    // 1 GiB of int32 ids
  size_t max_problems_kept = 100;          // problems listed; the rest are only counted
};

// The options a job asks for: spec.data.maxLength, packing and
// evalFraction, spec.training.seed; the bounds keep their defaults.
LmDataOptions LmDataOptionsFromJob(const spec::JobSpec& job);

// One training sequence before batching.
struct LmExample {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;  // same length; kIgnoreLabel where no loss is taken
  int64_t line = 0;             // 1-based line in the file (0 for a packed block)
};

struct LmDataReport {
  size_t lines = 0;           // lines read (a final line without '\n' counts)
  size_t records = 0;         // lines that became examples
  size_t skipped = 0;         // malformed lines, each with a problem
  size_t truncated = 0;       // examples cut to max_length (padding mode)
  size_t text_records = 0;
  size_t instruction_records = 0;
  size_t train_tokens = 0;    // input ids in train, padding excluded
  size_t eval_tokens = 0;
  // "file:line: message", the first max_problems_kept of `skipped`.
  std::vector<std::string> problems;
};

struct LmDataset {
  // Padding mode: one example per record. Packing mode: max_length blocks
  // (the last one shorter), train and eval packed separately, so no eval
  // record's tokens are in a train block.
  std::vector<LmExample> train;
  std::vector<LmExample> eval;
  LmDataReport report;
};

// Reads `file` with `tokenizer`. Records are split into eval and train
// before packing: eval takes round(records x eval_fraction) of them (at least
// 1 and at most records - 1 when there are two or more and eval_fraction >
// 0), chosen by a hash of (seed, line number), so the split is the same on
// every run and does not move when another line is fixed or broken.
// Malformed lines (not JSON, not an object, missing or non-string fields,
// empty text, both or neither record kind, invalid UTF-8, longer than
// max_line_bytes, or a prompt that leaves no room for a response within
// max_length) are skipped, counted and reported as "file:line: message".
// Errors: NotFound / InvalidArgument naming the file when it cannot be read,
// when no line is usable (the message lists the first problems), or when it
// exceeds max_records / max_total_tokens; InvalidArgument for options out of
// range (max_length < 2, eval_fraction outside [0, 1)). The tokenizer needs
// an EOS id.
absl::StatusOr<LmDataset> ReadLmJsonl(const std::string& file, const Tokenizer& tokenizer,
                                      const LmDataOptions& options);

// A batch as row-major [rows, cols] int64 matrices.
struct LmBatch {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int64_t> input_ids;       // pad_id after each sequence's end
  std::vector<int64_t> attention_mask;  // 1 on tokens, 0 on padding
  std::vector<int64_t> labels;          // kIgnoreLabel on padding
};

// The pad id to use with `tokenizer`: its pad token, else its EOS (padding
// is masked out of attention and loss either way).
int32_t PadId(const Tokenizer& tokenizer);

// `examples` in batches of `batch_size` (the last one smaller), each padded
// on the right to its longest sequence. With shuffle, the order is a
// Fisher-Yates permutation driven by SplitMix64 from `seed` (the same on
// every platform; pass seed + epoch for a new order each epoch). batch_size
// must be >= 1.
std::vector<LmBatch> MakeLmBatches(const std::vector<LmExample>& examples, int batch_size,
                                   int32_t pad_id, bool shuffle, uint64_t seed);

}  // namespace braid::worker

#endif  // BRAID_WORKER_LM_DATA_H_
