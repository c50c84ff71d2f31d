// Test helper for the round engine's unit tests: a fresh checkpoint over a
// one-tensor model.
#ifndef BRAID_AGGREGATOR_SRC_TEST_CHECKPOINT_H_
#define BRAID_AGGREGATOR_SRC_TEST_CHECKPOINT_H_

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "braid/aggregator/checkpoint.h"
#include "braid/core/safetensors.h"
#include "braid/core/status_macros.h"
#include "gtest/gtest.h"

namespace braid::aggregator {

struct TestCheckpoint {
  std::string dir;      // the checkpoint directory (unique per call)
  std::string initial;  // the initial model's file, beside it
  std::unique_ptr<Checkpoint> checkpoint;
};

// A checkpoint of job "job" in a new directory under the test's temp dir
// named after `name`, whose initial model is the float32 tensor "w" of
// `floats` elements, all `value`.
inline absl::StatusOr<TestCheckpoint> MakeTestCheckpoint(const std::string& name, int floats,
                                                         float value = 0) {
  static int counter = 0;
  TestCheckpoint out;
  out.dir = absl::StrCat(::testing::TempDir(), "/", name, "_", ::getpid(), "_",
                         ::testing::UnitTest::GetInstance()->random_seed(), "_", counter++);
  out.initial = out.dir + ".initial.safetensors";
  BRAID_RETURN_IF_ERROR(safetensors::Write(
      out.initial, {Tensor::F32("w", {floats}, std::vector<float>(floats, value))}));
  BRAID_ASSIGN_OR_RETURN(Checkpoint cp, Checkpoint::Open(out.dir, "job", out.initial));
  out.checkpoint = std::make_unique<Checkpoint>(std::move(cp));
  return out;
}

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_SRC_TEST_CHECKPOINT_H_
