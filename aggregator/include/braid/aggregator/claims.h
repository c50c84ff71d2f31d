// What a client says about its own work is a claim: how many examples it
// trained on (which would decide how much its update weighs) and the
// metrics it reports (which reach the job's status and checkpoint). This
// file checks and bounds those claims; the job, not the client, decides
// what an update weighs (RoundWeights). Thread-compatible: pure functions
// and immutable values.
#ifndef BRAID_AGGREGATOR_CLAIMS_H_
#define BRAID_AGGREGATOR_CLAIMS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "braid/core/spec.h"

namespace braid::aggregator {

// The most examples any one claim may state: 2^40 (about 1.1e12), more than
// one worker can hold. A claim above it is refused, not clamped: it can
// only be a lie or a bug. It also keeps every product of a claim and a
// bounded metric finite in double.
inline constexpr int64_t kMaxExamplesClaim = spec::kMaxExamples;
// The largest magnitude of a reported loss; beyond it (or not finite) the
// report is refused. Large enough for any diverging run to still say so.
inline constexpr double kMaxLossMagnitude = 1e30;

// Metrics a worker reports with a FIT update (train) or an evaluation.
struct ClientMetrics {
  double loss = 0;
  double accuracy = 0;
  int64_t num_examples = 0;
};

// OK when `examples` is in [min, kMaxExamplesClaim]; else InvalidArgument
// naming `field` (e.g. "num_examples") and the bound.
absl::Status CheckExamples(int64_t examples, int64_t min, absl::string_view field);

// OK when every number of `m` is one a worker can honestly report: loss
// finite with |loss| <= kMaxLossMagnitude, accuracy in [0, 1], num_examples
// in [0, kMaxExamplesClaim]. Else InvalidArgument naming the field as
// "<field>.loss" etc. (`field`: "train" or "eval"), as eval metrics have
// always been checked. A NaN never reaches the job's state this way.
absl::Status CheckMetrics(const ClientMetrics& m, absl::string_view field);

// spec.strategy.weighting.
enum class Weighting {
  kExamples,  // FedAvg: an update weighs the examples it claims, capped (see RoundWeights)
  kUniform,   // every update weighs the same
};

struct WeightingOptions {
  Weighting weighting = Weighting::kExamples;
  // Every tenant of the job, with its spec.tenants[].maxExamples (0: none
  // declared). Also bounds the tenant label of the claim metrics: a tenant
  // not listed here is counted as "other".
  std::map<std::string, int64_t> max_examples;
};

// Why an update counts for fewer examples than it claims.
enum class CapReason {
  kNone,
  kJoinClaim,     // it claims more than the worker joined with (its data set)
  kMaxExamples,   // above its tenant's declared maxExamples
  kOtherTenants,  // undeclared, its tenant would outweigh the heaviest other tenant
};
// "join_claim", "max_examples", "other_tenants" (metric label values), or
// "none".
const char* CapReasonName(CapReason reason);

// One sampled client of a FIT round, as it joined.
struct CohortMember {
  std::string client_id;
  std::string tenant;
  int64_t joined_examples = 0;  // the claim it joined with (checked)
};

// What one update weighs in its round.
struct UpdateWeight {
  // The update's weight, normalized so that the weights of all the round's
  // updates sum to at most 1 (so weight * value never overflows where value
  // does not). FedAvg divides by the sum of the weights folded.
  double weight = 0;
  double examples = 0;  // the examples it counts for after caps (1 under uniform)
  CapReason capped = CapReason::kNone;
};

// The weights of one FIT round, fixed when it starts from its cohort's join
// claims, so that they never depend on the order updates arrive in and a
// claim made later (with the update) can only lower them.
//
// Under kExamples a member's allowance is its join claim (at least 1),
// capped by its tenant's maxExamples when declared. A tenant that declared
// none is then scaled down, its members alike, so that its total allowance
// in the round is no more than the heaviest other tenant's: without a
// declaration no tenant outweighs the next heaviest, so one lying tenant
// cannot take a round over (with one tenant in the round there is nothing
// to outweigh). An update weighs its FIT claim, capped by its allowance.
// Under kUniform every member's allowance, and every update's weight, is 1.
class RoundWeights {
 public:
  RoundWeights() = default;  // no members
  RoundWeights(const WeightingOptions& options, const std::vector<CohortMember>& cohort);

  // The weight of an update from member `client_id` claiming `examples`
  // (>= 1, checked). NotFound for a client not in the cohort.
  absl::StatusOr<UpdateWeight> For(const std::string& client_id, int64_t examples) const;

  // Secure aggregation's public weight of a member (the client scales its
  // update by it before masking): its allowance over the mean allowance, so
  // that the members' weights sum to their number. 0 for a non-member.
  double PublicWeight(const std::string& client_id) const;

 private:
  struct Allowance {
    double examples = 1;   // its join claim (>= 1), capped by maxExamples
    int64_t declared = 0;  // its tenant's maxExamples (0: none)
    double scale = 1;      // (0, 1]: its tenant's scaling to the other-tenants cap
  };
  Weighting weighting_ = Weighting::kExamples;
  std::map<std::string, Allowance> members_;
  double total_ = 0;  // the sum of the members' allowances (examples * scale)
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_CLAIMS_H_
