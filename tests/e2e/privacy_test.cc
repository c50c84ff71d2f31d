// Differential privacy end to end: `braid run` on the example tabular job
// with spec.privacy.differentialPrivacy. Epsilon after each round must match
// Google's dp-accounting (run from scripts/pyref.sh), and the job must stop
// with reason PrivacyBudgetExhausted before the round that would exceed
// maxEpsilon.
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "braid/cli/subprocess.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

using nlohmann::json;

constexpr double kNoise = 2.0;
constexpr double kDelta = 1e-5;
constexpr int kMaxRounds = 6;

// Runs `command`, returning its stdout, or "" (with a test failure) if it
// fails.
std::string Capture(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  if (status != 0) {
    ADD_FAILURE() << command << " exited with " << status;
    return "";
  }
  return out;
}

// Epsilon after 1..kMaxRounds rounds with every client sampled, from
// dp-accounting. Fails the test (never skips) without the reference stack.
std::vector<double> ReferenceEpsilons(const std::string& dir) {
  std::string python = Capture("bash '" + SourcePath("scripts/pyref.sh") + "'");
  while (!python.empty() && (python.back() == '\n' || python.back() == ' ')) python.pop_back();
  if (python.empty()) {
    ADD_FAILURE() << "the Python reference stack is missing: scripts/pyref.sh failed; run "
                     "`make pyref`";
    return {};
  }
  const std::string script = dir + "/eps.py";
  WriteFile(script, absl::StrCat("import dp_accounting\n"
                                 "a = dp_accounting.rdp.RdpAccountant()\n"
                                 "e = dp_accounting.PoissonSampledDpEvent(1.0, "
                                 "dp_accounting.GaussianDpEvent(",
                                 kNoise, "))\n", "for _ in range(", kMaxRounds,
                                 "):\n  a.compose(e)\n  print(repr(a.get_epsilon(", kDelta,
                                 ")))\n"));
  std::istringstream out(Capture("'" + python + "' '" + script + "'"));
  std::vector<double> eps;
  for (double e; out >> e;) eps.push_back(e);
  EXPECT_EQ(eps.size(), static_cast<size_t>(kMaxRounds));
  return eps;
}

TEST(BraidRunPrivacy, EpsilonMatchesDpAccountingAndTheBudgetStopsTheJob) {
  const std::string dir = FreshDir("dp");
  const std::vector<double> reference = ReferenceEpsilons(dir);
  ASSERT_EQ(reference.size(), static_cast<size_t>(kMaxRounds));
  // A budget that three rounds fit and a fourth does not.
  const double budget = (reference[2] + reference[3]) / 2;
  const std::string job = WriteTabularJob(
      dir, absl::StrCat("{name: fedavg, rounds: ", kMaxRounds,
                        ", minClients: 3, fractionFit: 1.0, roundTimeout: 2m}\n"
                        "  privacy:\n"
                        "    differentialPrivacy: {clipNorm: 1.0, noiseMultiplier: ",
                        kNoise, ", delta: ", kDelta, ", maxEpsilon: ",
                        absl::StrFormat("%.17g", budget), "}"));
  const std::string summary_path = dir + "/summary.json";
  const std::string stdout_path = dir + "/stdout.txt";
  auto proc = cli::Subprocess::Start({Binary("braid"), "run", job, "--workdir", dir + "/work",
                                     "--summary", summary_path},
                                    dir + "/braid.log", stdout_path);
  ASSERT_TRUE(proc.ok()) << proc.status();
  const int code = proc->Wait(absl::Minutes(10));
  const std::string out = ReadFile(stdout_path);
  ASSERT_EQ(code, 0) << out << ReadFile(dir + "/braid.log");

  const json s = json::parse(ReadFile(summary_path));
  EXPECT_EQ(s["phase"], "Succeeded");
  EXPECT_EQ(s["reason"], "PrivacyBudgetExhausted");
  EXPECT_NE(s["message"].get<std::string>().find("round 4 would spend epsilon"),
            std::string::npos)
      << s["message"];
  ASSERT_EQ(s["rounds"].size(), 3u) << s.dump(2);
  for (size_t i = 0; i < 3; ++i) {
    const double eps = s["rounds"][i]["epsilon"];
    EXPECT_NEAR(eps, reference[i], 0.01 * reference[i]) << "round " << i + 1;
  }
  EXPECT_NEAR(s["privacy"]["epsilon"].get<double>(), reference[2], 0.01 * reference[2]);
  EXPECT_LE(s["privacy"]["epsilon"].get<double>(), budget);
  EXPECT_EQ(s["privacy"]["maxEpsilon"].get<double>(), budget);
  EXPECT_EQ(s["privacy"]["delta"].get<double>(), kDelta);
  EXPECT_NE(out.find("epsilon"), std::string::npos) << out;  // in the progress lines
  // The model of the three rounds is exported.
  EXPECT_TRUE(s.contains("model")) << s.dump(2);

  // The audit trail records epsilon with every completed round.
  const std::string audit = ReadFile(dir + "/work/checkpoint/audit.jsonl");
  size_t with_epsilon = 0;
  std::istringstream lines(audit);
  for (std::string line; std::getline(lines, line);) {
    const json e = json::parse(line, nullptr, false);
    if (e.is_discarded() || e.value("kind", "") != "round_completed") continue;
    EXPECT_TRUE(e["details"].contains("epsilon")) << line;
    with_epsilon += e["details"].contains("epsilon") ? 1 : 0;
  }
  EXPECT_EQ(with_epsilon, 3u) << audit;
}

}  // namespace
}  // namespace braid::e2e
