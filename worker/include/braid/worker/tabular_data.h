// Tabular CSV data for the MLP: reading, local eval split and replica shards.
#ifndef BRAID_WORKER_TABULAR_DATA_H_
#define BRAID_WORKER_TABULAR_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "braid/core/spec.h"

namespace braid::worker {

// Rows of a tabular data set: features [N, F] float32, labels [N] int64.
struct TabularData {
  torch::Tensor features;
  torch::Tensor labels;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// Reads a CSV file with a header row. Takes the columns named in
// schema.features (in that order) and schema.label; other columns are
// ignored. Errors (InvalidArgument/NotFound) name the file, the 1-based line
// and column but never the file's text (it reaches logs, and a path may name
// anything): "data/a.csv:17: column 4 ('x3'): the value (3 bytes) is not a
// number", a missing column, a label outside [0, num_classes), a wrong field
// count, an empty file. Quoted fields are not supported (numbers only).
// Memory stays in proportion to the file: a row is at most 32 MiB and the
// header at most 2^20 columns (InvalidArgument beyond), and running out of
// memory is ResourceExhausted, not an abort.
absl::StatusOr<TabularData> ReadCsv(const std::string& path, const spec::DataSchema& schema,
                                    int num_classes);

// The rows with index % replicas == replica (replica in [0, replicas)).
TabularData Shard(const TabularData& data, int replica, int replicas);

// Splits deterministically (seeded permutation) into train and eval parts;
// eval gets round(size * eval_fraction) rows, at least 1 when size >= 2.
struct Split {
  TabularData train;
  TabularData eval;
};
Split SplitForEval(const TabularData& data, double eval_fraction, int64_t seed);

// A permutation of 0..n-1 that depends only on (n, seed): the same on every
// machine and LibTorch version (own PRNG and Fisher-Yates; neither torch's
// nor the standard library's generators are used). n >= 0.
std::vector<int64_t> SeededPermutation(int64_t n, uint64_t seed);

}  // namespace braid::worker

#endif  // BRAID_WORKER_TABULAR_DATA_H_
