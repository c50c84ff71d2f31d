// Test helpers for driving an AggregationStrategy without an engine: a
// complete upload of given values, and a reader of the old global weights.
// Test-only (target braid_aggregator_testing).
#ifndef BRAID_AGGREGATOR_TESTING_TEST_UPLOAD_H_
#define BRAID_AGGREGATOR_TESTING_TEST_UPLOAD_H_

#include <cstring>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "braid/aggregator/strategy.h"
#include "braid/aggregator/upload.h"

namespace braid::aggregator {

// An upload of `values` from a one-slot pool, complete and handed over,
// weighing `examples` (as the engine would set it, unnormalized).
struct TestUpload {
  TestUpload(const std::vector<float>& values, int64_t examples) : pool(1, values.size()) {
    pool.Reserve();
    absl::StatusOr<UploadPool::Held> slot = pool.Acquire(absl::ZeroDuration());
    EXPECT_TRUE(slot.ok()) << slot.status();
    upload = std::make_unique<Upload>(&pool, *slot, "t/0#1", 1, examples);
    upload->set_weight(static_cast<double>(examples));
    EXPECT_TRUE(upload->Write(0, values.data(), values.size() * sizeof(float)).ok());
    upload->HandOver();
  }
  UploadPool pool;
  std::unique_ptr<Upload> upload;
};

// A GlobalReader over `global`.
inline GlobalReader ReaderOf(const std::vector<float>& global) {
  return [global](uint64_t offset, void* out, uint64_t len) {
    std::memcpy(out, reinterpret_cast<const char*>(global.data()) + offset, len);
    return absl::OkStatus();
  };
}

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_TESTING_TEST_UPLOAD_H_
