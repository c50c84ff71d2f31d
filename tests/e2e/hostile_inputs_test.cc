// Issue 17, findings 8 and 9: job files that would take the machine down
// or read outside the job, run through the real `braid` and `braid-worker`
// programs as a user (or whoever wrote the job file) would.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "braid/cli/subprocess.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  int code = -1;
  std::string out;  // stdout and stderr
};

// Runs `args` (argv[0] is the binary's name) in `dir`, with a deadline.
Outcome RunProgram(const std::string& dir, const std::string& name, std::vector<std::string> args) {
  args[0] = Binary(args[0]);
  const std::string log = dir + "/" + name + ".log";
  auto proc = cli::Subprocess::Start(args, log, log);
  EXPECT_TRUE(proc.ok()) << proc.status();
  if (!proc.ok()) return {};
  Outcome o;
  o.code = proc->Wait(absl::Seconds(60));
  o.out = ReadFile(log);
  return o;
}

// A tabular job in `dir` with `tenants` (YAML list items) and `extra` spec
// lines; its data beside it in data/.
std::string WriteJob(const std::string& dir, const std::string& tenants,
                     const std::string& extra = "") {
  fs::create_directories(fs::path(dir) / "data");
  WriteFile(dir + "/data/a.csv", "x0,x1,label\n0.5,1.5,0\n1.5,0.5,1\n0.1,0.2,0\n0.9,0.8,1\n");
  const std::string path = dir + "/job.yaml";
  WriteFile(path, "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: hostile}\n"
                  "spec:\n  data: {features: [x0, x1]}\n  strategy: {rounds: 1}\n" +
                      extra + "  tenants:\n" + tenants);
  return path;
}

std::string ManyTenants(int tenants, int replicas) {
  std::string out;
  for (int i = 0; i < tenants; ++i) {
    absl::StrAppend(&out, "  - {name: t", i, ", replicas: ", replicas,
                    ", data: {path: data/a.csv}}\n");
  }
  return out;
}

// Finding 8: 1000 tenants x 1000 replicas validated and `braid run` began
// forking a million processes.
TEST(HostileInputs, AMillionWorkersIsRefusedBeforeAnyProcessStarts) {
  const std::string dir = FreshDir("hostile-million");
  const std::string job = WriteJob(dir, ManyTenants(1000, 1000));
  Outcome validate = RunProgram(dir, "validate", {"braid", "validate", job});
  EXPECT_EQ(validate.code, 2) << validate.out;
  EXPECT_NE(validate.out.find("spec.tenants: the replicas of 1000 tenants add up to 1000000 "
                              "worker processes; a job runs at most 10000"),
            std::string::npos)
      << validate.out;
  Outcome run = RunProgram(dir, "run", {"braid", "run", job, "--workdir", dir + "/work"});
  EXPECT_EQ(run.code, 2) << run.out;
  EXPECT_NE(run.out.find("1000000 worker processes"), std::string::npos) << run.out;
  EXPECT_FALSE(fs::exists(dir + "/work/logs")) << "processes were started";
}

// Below the job-wide bound, `braid run` has one of its own for this machine.
TEST(HostileInputs, MoreWorkersThanThisMachineAllowsIsRefusedNamingTheFlag) {
  const std::string dir = FreshDir("hostile-workers");
  const std::string job = WriteJob(dir, ManyTenants(5, 30));
  Outcome run = RunProgram(dir, "run",
                    {"braid", "run", job, "--workdir", dir + "/work", "--max-workers", "64"});
  EXPECT_EQ(run.code, 2) << run.out;
  EXPECT_NE(run.out.find("spec.tenants: 5 tenants x 30 replicas = 150 worker processes; braid "
                         "run allows at most 64 here (raise with --max-workers)"),
            std::string::npos)
      << run.out;
  EXPECT_FALSE(fs::exists(dir + "/work/logs"));
  Outcome raised = RunProgram(dir, "validate", {"braid", "validate", job, "--max-workers", "150"});
  EXPECT_EQ(raised.code, 0) << raised.out;
}

// Finding 8: an MLP of about 1.1 TB validated and the run was OOM-killed.
TEST(HostileInputs, ATerabyteModelIsRefusedWithItsSize) {
  const std::string dir = FreshDir("hostile-tb");
  std::string hidden;
  for (int i = 0; i < 64; ++i) absl::StrAppend(&hidden, i ? ", " : "", 65536);
  const std::string job = WriteJob(dir, ManyTenants(1, 1),
                                   "  model: {mlp: {hidden: [" + hidden + "]}}\n");
  Outcome run = RunProgram(dir, "run", {"braid", "run", job, "--workdir", dir + "/work"});
  EXPECT_EQ(run.code, 2) << run.out;
  EXPECT_NE(run.out.find("spec.model.mlp: 270,587,396,098 parameters (1.1 TB of float32) "
                         "exceeds the limit"),
            std::string::npos)
      << run.out;
  // Under the job-wide bound but beyond this machine's memory (1 MiB here).
  const std::string small = WriteJob(dir, ManyTenants(2, 2),
                                     "  model: {mlp: {hidden: [4096, 4096]}}\n");
  Outcome tight = RunProgram(dir, "validate", {"braid", "validate", small, "--max-memory-mib", "1"});
  EXPECT_EQ(tight.code, 2) << tight.out;
  EXPECT_NE(tight.out.find("spec.model.mlp: 16,801,794 parameters"), std::string::npos)
      << tight.out;
  EXPECT_NE(tight.out.find("--max-memory-mib"), std::string::npos) << tight.out;
}

// Finding 9: data.path /etc/shadow, ../../ and a symbolic link out of the
// folder were accepted, and the file's first line reached the worker's log.
TEST(HostileInputs, PathsOutsideTheJobsFolderAreRefusedUnlessAllowed) {
  const std::string dir = FreshDir("hostile-paths");
  const std::string outside = FreshDir("hostile-paths-outside");
  WriteFile(outside + "/secret.csv", "root:SECRET-HASH:19000:0:99999:7:::\n");
  fs::create_directories(dir + "/data");
  fs::create_symlink(outside + "/secret.csv", dir + "/data/link.csv");
  for (const std::string& path :
       {std::string("/etc/shadow"), std::string("../../etc/passwd"),
        std::string("data/link.csv"), outside + "/secret.csv"}) {
    const std::string job = WriteJob(dir, "  - {name: a, data: {path: \"" + path + "\"}}\n");
    for (const char* command : {"validate", "run"}) {
      Outcome o = RunProgram(dir, command, {"braid", command, job, "--workdir", dir + "/work"});
      EXPECT_EQ(o.code, 2) << command << " " << path << ": " << o.out;
      EXPECT_NE(o.out.find("spec.tenants[0].data.path"), std::string::npos) << o.out;
      EXPECT_NE(o.out.find("outside the job's folder"), std::string::npos) << o.out;
      EXPECT_EQ(o.out.find("SECRET"), std::string::npos) << o.out;
    }
    // The worker confines them too (it is started with the job file).
    Outcome worker = RunProgram(dir, "worker", {"braid-worker", "local", "--job", job, "--tenant", "a"});
    EXPECT_EQ(worker.code, 2) << worker.out;
    EXPECT_NE(worker.out.find("outside the job's folder"), std::string::npos) << worker.out;
    EXPECT_EQ(worker.out.find("SECRET"), std::string::npos) << worker.out;
  }
  // --allow-path lets that folder in, and nothing else.
  const std::string job =
      WriteJob(dir, "  - {name: a, data: {path: \"" + outside + "/secret.csv\"}}\n");
  Outcome allowed = RunProgram(dir, "allowed", {"braid", "validate", job, "--allow-path", outside});
  EXPECT_EQ(allowed.code, 0) << allowed.out;
}

// Finding 9: a malformed line's text never reaches an error (or a log).
TEST(HostileInputs, AMalformedCsvLineIsNamedButNotQuoted) {
  const std::string dir = FreshDir("hostile-csv");
  const std::string job = WriteJob(dir, "  - {name: a, data: {path: data/b.csv}}\n");
  WriteFile(dir + "/data/b.csv", "x0,x1,label\n0.5,1.5,0\n0.5,SECRET-VALUE,1\n");
  Outcome worker = RunProgram(dir, "worker", {"braid-worker", "local", "--job", job, "--tenant", "a"});
  EXPECT_EQ(worker.code, 2) << worker.out;
  EXPECT_NE(worker.out.find("b.csv:3: column 2 ('x1'): the value (12 bytes) is not a number"),
            std::string::npos)
      << worker.out;
  EXPECT_EQ(worker.out.find("SECRET"), std::string::npos) << worker.out;
  // Not a CSV at all: its first line is not repeated as "the header".
  WriteFile(dir + "/data/b.csv", "root:SECRET-HASH:19000:0:99999:7:::\n1,2\n");
  worker = RunProgram(dir, "worker", {"braid-worker", "local", "--job", job, "--tenant", "a"});
  EXPECT_EQ(worker.code, 2) << worker.out;
  EXPECT_NE(worker.out.find("b.csv:1: missing columns"), std::string::npos) << worker.out;
  EXPECT_EQ(worker.out.find("SECRET"), std::string::npos) << worker.out;
}

// Finding 8: 779 KB of blank lines under many features made a worker abort
// with std::bad_alloc.
TEST(HostileInputs, BlankLinesUnderManyFeaturesAreAClearError) {
  const std::string dir = FreshDir("hostile-blank");
  std::string features, header;
  for (int i = 0; i < 65536; ++i) {
    absl::StrAppend(&features, i ? ", " : "", "f", i);
    absl::StrAppend(&header, "f", i, ",");
  }
  const std::string job = WriteJob(dir, "  - {name: a, data: {path: data/blank.csv}}\n");
  std::string yaml = ReadFile(job);
  const std::string from = "data: {features: [x0, x1]}";
  yaml.replace(yaml.find(from), from.size(), "data: {features: [" + features + "]}");
  WriteFile(job, yaml);
  WriteFile(dir + "/data/blank.csv", header + "label\n" + std::string(779 * 1000, '\n'));
  Outcome worker = RunProgram(dir, "worker", {"braid-worker", "local", "--job", job, "--tenant", "a"});
  EXPECT_EQ(worker.code, 2) << worker.out.substr(0, 2000);
  EXPECT_NE(worker.out.find("blank.csv: no data rows after the header"), std::string::npos)
      << worker.out.substr(0, 2000);
}

// Finding 10, where validation can see it: a GPT-2 whose n_positions is
// shorter than data.maxLength.
TEST(HostileInputs, Gpt2PositionsShorterThanMaxLengthAreRefusedAtValidation) {
  const std::string dir = FreshDir("hostile-positions");
  fs::create_directories(dir + "/model");
  fs::create_directories(dir + "/data");
  WriteFile(dir + "/model/config.json",
            R"({"model_type": "gpt2", "vocab_size": 300, "n_embd": 8, "n_layer": 1,
                "n_head": 2, "n_positions": 32})");
  WriteFile(dir + "/data/a.jsonl", "{\"text\": \"hello\"}\n");
  WriteFile(dir + "/job.yaml",
            "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: g}\n"
            "spec:\n  model: {kind: gpt2, base: {path: model}}\n  data: {maxLength: 64}\n"
            "  tenants: [{name: a, data: {path: data/a.jsonl}}]\n");
  Outcome o = RunProgram(dir, "validate", {"braid", "validate", dir + "/job.yaml"});
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("spec.data.maxLength: 64 is longer than n_positions 32 in " + dir +
                       "/model/config.json"),
            std::string::npos)
      << o.out;
}

}  // namespace
}  // namespace braid::e2e
