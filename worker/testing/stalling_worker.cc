// braid-stalling-worker: a test-only worker that joins like braid-worker
// run, heartbeats, and then stalls in its first FIT (built only with
// BRAID_BUILD_TESTS; no image or package carries it). Under secure
// aggregation the training callback runs after ShareKeys, so this worker
// has shared its keys ("... shared keys with N neighbours" on stderr) and
// then never sends its masked input: tests/e2e/secagg_test.cc kills it
// there to see the survivors unmask its pairwise masks.
//
//   braid-stalling-worker --job F --tenant T --replica I --aggregator HOST:PORT
//                         --num-examples N [--stall 5m] [--give-up 2m]
//
// It speaks only the public contract (braid_client's replica loop with a
// trainer that never trains; no LibTorch). Exit status: 1 when the stall
// ends (the FIT fails with Internal), 2 bad arguments.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "braid/core/cli_flags.h"
#include "braid/core/spec.h"
#include "braid/worker/federation_client.h"
#include "braid/worker/replica_loop.h"

ABSL_FLAG(std::string, job, "", "FederatedJob file (for the job's name)");
ABSL_FLAG(std::string, tenant, "", "tenant name");
ABSL_FLAG(int, replica, 0, "replica index within the tenant");
ABSL_FLAG(std::string, aggregator, "", "aggregator address host:port");
ABSL_FLAG(int64_t, num_examples, 1, "training examples announced at Join (the FedAvg weight)");
ABSL_FLAG(absl::Duration, stall, absl::Minutes(5), "how long the first FIT stalls");
ABSL_FLAG(absl::Duration, give_up, absl::Minutes(2),
          "exit when the aggregator stays unreachable this long");

namespace braid::worker {
namespace {

// Stalls in Fit, then fails it; never evaluates.
class StallingTrainer final : public ReplicaTrainer {
 public:
  StallingTrainer(int64_t num_examples, absl::Duration stall)
      : num_examples_(num_examples), stall_(stall) {}
  int64_t num_train_examples() const override { return num_examples_; }
  absl::StatusOr<LocalUpdate> Fit(int round, const TensorList&) override {
    absl::SleepFor(stall_);  // the point of this program: a worker that hangs
    return absl::InternalError(absl::StrCat("stalled for ", absl::FormatDuration(stall_),
                                            " in round ", round, " on purpose"));
  }
  absl::StatusOr<UpdateMetrics> Evaluate(int, const TensorList&) override {
    return absl::UnimplementedError("a stalling worker does not evaluate");
  }

 private:
  const int64_t num_examples_;
  const absl::Duration stall_;
};

absl::Status Run() {
  spec::ParseOptions parse;
  parse.check_files = false;
  parse.confine_paths = false;  // reads no data
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobFile(absl::GetFlag(FLAGS_job), parse);
  if (!job.ok()) return job.status();
  if (absl::GetFlag(FLAGS_tenant).empty() || absl::GetFlag(FLAGS_aggregator).empty()) {
    return absl::InvalidArgumentError("--tenant and --aggregator are required");
  }
  StallingTrainer trainer(absl::GetFlag(FLAGS_num_examples), absl::GetFlag(FLAGS_stall));
  ReplicaLoopOptions options;
  options.job = job->name;
  options.tenant = absl::GetFlag(FLAGS_tenant);
  options.replica = absl::GetFlag(FLAGS_replica);
  options.give_up = absl::GetFlag(FLAGS_give_up);
  FederationClient client(absl::GetFlag(FLAGS_aggregator));
  return RunReplicaLoop(client, trainer, options);
}

}  // namespace
}  // namespace braid::worker

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "braid-stalling-worker --job FILE --tenant T --aggregator HOST:PORT [flags] (tests only)");
  braid::ParseFlags(argc, argv);
  const absl::Status status = braid::worker::Run();
  if (status.ok()) return 0;
  std::cerr << "braid-stalling-worker: " << status.message() << "\n";
  return absl::IsInvalidArgument(status) || absl::IsNotFound(status) ? 2 : 1;
}
