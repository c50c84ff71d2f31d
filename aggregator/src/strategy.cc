#include "braid/aggregator/strategy.h"

#include <optional>

#include "absl/strings/cord.h"

namespace braid::aggregator {
namespace {

constexpr char kReasonUrl[] = "type.braid.dev/aggregator.Reason";

}  // namespace

absl::Status WithReason(absl::Status status, absl::string_view reason) {
  if (!status.ok()) status.SetPayload(kReasonUrl, absl::Cord(reason));
  return status;
}

std::string ReasonOf(const absl::Status& status, absl::string_view fallback) {
  const auto reason = status.GetPayload(kReasonUrl);
  return reason.has_value() ? std::string(*reason) : std::string(fallback);
}

}  // namespace braid::aggregator
