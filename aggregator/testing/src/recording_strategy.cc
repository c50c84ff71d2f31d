#include "braid/aggregator/testing/recording_strategy.h"

#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "braid/core/log.h"

namespace braid::aggregator {
namespace {

// "<tenant>-<replica>" from a client id "<tenant>/<replica>#<n>"
// (ClientLiveness::Join).
std::string WorkerName(const std::string& client_id) {
  const size_t slash = client_id.rfind('/');
  const size_t hash = client_id.rfind('#');
  if (slash == std::string::npos || hash == std::string::npos || hash < slash) return client_id;
  return absl::StrCat(client_id.substr(0, slash), "-", client_id.substr(slash + 1, hash - slash - 1));
}

class RecordingStrategy final : public AggregationStrategy {
 public:
  RecordingStrategy(std::unique_ptr<AggregationStrategy> inner, std::string dir)
      : inner_(std::move(inner)), dir_(std::move(dir)) {}
  RecordingStrategy(const RecordingStrategy&) = delete;
  RecordingStrategy& operator=(const RecordingStrategy&) = delete;

  absl::string_view name() const override { return inner_->name(); }
  bool masked_input() const override { return inner_->masked_input(); }
  absl::Status BeginRound(const RoundBegin& round) override { return inner_->BeginRound(round); }

  absl::StatusOr<FoldResult> Fold(Upload& update) override {
    // Before the inner fold: nothing is consumed yet, so the buffer still
    // holds all of this update.
    const std::string path = absl::StrCat(dir_, "/round", update.round(), "-",
                                          WorkerName(update.client_id()), ".bin");
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(update.data()),
              static_cast<std::streamsize>(update.total_bytes()));
    if (!out) LogError(absl::StrCat("aggregator: cannot record the upload to ", path));
    return inner_->Fold(update);
  }

  absl::StatusOr<absl::Span<const float>> Finish(const GlobalReader& old_global) override {
    return inner_->Finish(old_global);
  }
  std::string SaveState() const override { return inner_->SaveState(); }
  absl::Status RestoreState(absl::string_view state) override {
    return inner_->RestoreState(state);
  }

 private:
  const std::unique_ptr<AggregationStrategy> inner_;
  const std::string dir_;
};

}  // namespace

std::unique_ptr<AggregationStrategy> RecordUploads(std::unique_ptr<AggregationStrategy> inner,
                                                   std::string dir) {
  return std::make_unique<RecordingStrategy>(std::move(inner), std::move(dir));
}

}  // namespace braid::aggregator
