// braid_multisite_demo: the flow of `make demo-multisite` on three control
// planes the caller started (scripts/demo-multisite.sh): a coordinator and
// two sites, each with braid-operator in its role; the sites enroll with
// their one-time tokens, the coordinator's job invites them, each site
// approves with a TenantApproval in its own cluster, and the job runs to
// Succeeded with braid-aggregator and braid-worker processes standing in
// for the pods the operators made (kwok runs no containers). Prints one
// line per round with each site's participation and writes a summary like
// `braid run`'s (phase, rounds[], sites{}) to <workdir>/summary.json.
//
// Exit code: 0 when the job Succeeded, 1 when it did not (the message says
// where it stopped and which log to read), 2 for bad flags, 130 on Ctrl-C.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "braid/cli/subprocess.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/pki.h"
#include "braid/core/spec.h"
#include "braid/core/status_macros.h"
#include "braid/v1/federation.grpc.pb.h"
#include "tests/multisite/stand_in.h"

ABSL_FLAG(std::string, kubectl, "", "the kubectl binary (required)");
ABSL_FLAG(std::string, bin_dir, "", "directory of braid-operator, braid-aggregator, braid-worker "
                                    "(default: this program's)");
ABSL_FLAG(std::string, coordinator_kubeconfig, "", "the coordinator cluster's admin kubeconfig");
ABSL_FLAG(std::vector<std::string>, sites, {},
          "NAME=KUBECONFIG,...: each site's name (its Site, Tenant and tenant in the job) and "
          "its cluster's admin kubeconfig");
ABSL_FLAG(std::string, job, "", "the FederatedJob (tests/multisite/demo_job.yaml)");
ABSL_FLAG(std::string, data_dir, "", "each site's data: <data_dir>/<site>.csv (examples/data)");
ABSL_FLAG(std::string, workdir, ".braid/demo-multisite",
          "logs, the processes' files and summary.json (the caller empties it)");
ABSL_FLAG(absl::Duration, timeout, absl::Minutes(5), "give up on the job after this long");

namespace braid::multisite {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kDataset[] = "records";
constexpr char kOperatorNs[] = "braid-system";

std::atomic<bool> interrupted{false};
void OnSignal(int) { interrupted = true; }

absl::Time start_time;
std::string Elapsed() {
  return absl::StrFormat("%5.1fs", absl::ToDoubleSeconds(absl::Now() - start_time));
}
absl::Mutex say_mu;
void Say(const std::string& line) {
  absl::MutexLock lock(&say_mu);
  std::cout << "[" << Elapsed() << "] " << line << std::endl;
}

// Runs each of `steps` on its own thread; the first error, in order.
absl::Status InParallel(const std::vector<std::function<absl::Status()>>& steps) {
  std::vector<absl::Status> results(steps.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < steps.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = steps[i](); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& r : results) {
    if (!r.ok()) return r;
  }
  return absl::OkStatus();
}

// Calls `pred` every 200 ms until it holds, `timeout` passes or the user
// interrupts (then false).
bool WaitFor(absl::Duration timeout, const std::function<bool()>& pred) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!interrupted) {
    if (pred()) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return false;
}

absl::Status Failed(const std::string& what, const std::string& log = "") {
  if (interrupted) return absl::CancelledError("interrupted (Ctrl-C)");
  return absl::DeadlineExceededError(log.empty() ? what : absl::StrCat(what, "; see ", log));
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string Str(const json& j, const char* pointer) {
  return j.value(json::json_pointer(pointer), std::string());
}

struct Site {
  std::string name;  // its Site at the coordinator, its Tenant and the job's tenant
  std::unique_ptr<Kubectl> kube;
  std::string ns;  // the Tenant's namespace at the site
  std::string dir;
  std::optional<cli::Subprocess> op;
  std::vector<cli::Subprocess> workers;
};

class Demo {
 public:
  Demo(std::string kubectl, std::string bin, std::string workdir)
      : kubectl_(std::move(kubectl)), bin_(std::move(bin)), dir_(std::move(workdir)) {}

  absl::Status Run(const std::string& coordinator_kubeconfig,
                   const std::vector<std::pair<std::string, std::string>>& sites,
                   const std::string& job_file, const std::string& data_dir);
  // Stops every process (workers, aggregator, operators), politely.
  void Stop();
  json Summary() const { return summary_; }

 private:
  std::string Bin(const std::string& name) const { return bin_ + "/" + name; }
  absl::Status Prepare(const Kubectl& kube, const std::string& name);
  absl::Status StartOperator(const Kubectl& kube, const std::string& dir,
                             const std::vector<std::string>& flags,
                             std::optional<cli::Subprocess>* out);
  absl::Status EnrollSite(Site& s, const std::string& data_dir);
  absl::Status SubmitAndApprove(const std::string& job_file);
  absl::Status StartAggregator();
  absl::Status StartWorkers(Site& s, const std::string& data_dir);
  absl::Status Follow();
  void BuildSummary(const v1::JobStatus& status);
  json Job() const {
    return coordinator_->Get({"fedjob", "-n", job_.namespace_, job_.name}).value_or(json::object());
  }
  json Invitation(const Site& s) const {
    std::optional<json> list = s.kube->Get({"fedinv", "-n", s.ns});
    if (!list.has_value() || (*list)["items"].empty()) return json::object();
    return (*list)["items"][0];
  }
  std::string SiteOfTenant(const std::string& tenant) const {
    for (const spec::Tenant& t : job_.tenants) {
      if (t.name == tenant) return t.site;
    }
    return "";
  }

  std::string kubectl_, bin_, dir_;
  std::unique_ptr<Kubectl> coordinator_;
  std::vector<Site> sites_;
  spec::JobSpec job_;
  std::string uid_;
  int aggregator_port_ = 0;
  int federation_port_ = 0;
  std::optional<cli::Subprocess> coordinator_op_;
  std::optional<cli::Subprocess> aggregator_;
  std::string aggregator_server_name_;
  json summary_;
};

absl::Status Demo::Prepare(const Kubectl& kube, const std::string& name) {
  const std::string crds = (fs::path(BRAID_SOURCE_DIR) / "crds").string();
  CommandOutput r = kube.Run({"apply", "--server-side", "--force-conflicts", "-f", crds});
  if (r.code != 0) return absl::InternalError(absl::StrCat(name, ": installing crds/: ", r.err));
  r = kube.Run({"wait", "--for=condition=Established", "--timeout=60s",
                "crd/federatedjobs.braid.dev", "crd/tenants.braid.dev", "crd/sites.braid.dev",
                "crd/federatedinvitations.braid.dev", "crd/tenantapprovals.braid.dev"});
  if (r.code != 0) return absl::InternalError(absl::StrCat(name, ": CRDs not established: ", r.err));
  // Established is not yet served: right after it, the API server may answer
  // "429 storage is (re)initializing" for a while, and an operator started
  // then may never recover (see the report of the demo's branch). Wait
  // until every kind lists.
  std::string last;
  if (!WaitFor(absl::Seconds(30), [&] {
        CommandOutput list = kube.Run({"get", "fedjobs,tenants,sites,fedinv,tenantapprovals", "-A"});
        last = list.err;
        return list.code == 0;
      })) {
    return Failed(absl::StrCat(name, ": the CRDs do not list: ", last));
  }
  return kube.Apply(absl::StrCat("apiVersion: v1\nkind: Namespace\nmetadata: {name: ", kOperatorNs,
                                 "}\n"));
}

absl::Status Demo::StartOperator(const Kubectl& kube, const std::string& dir,
                                 const std::vector<std::string>& flags,
                                 std::optional<cli::Subprocess>* out) {
  fs::create_directories(dir);
  const std::string port_file = dir + "/metrics.port";
  std::vector<std::string> argv = {Bin("braid-operator"), "--kubeconfig=" + kube.kubeconfig(),
                                   absl::StrCat("--namespace=", kOperatorNs),
                                   "--metrics-listen=127.0.0.1:0", "--metrics-port-file=" + port_file,
                                   "--status-interval=500ms"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  absl::StatusOr<cli::Subprocess> proc = cli::Subprocess::Start(argv, dir + "/operator.log");
  if (!proc.ok()) return proc.status();
  *out = *std::move(proc);
  if (!WaitFor(absl::Seconds(30), [&] { return !ReadText(port_file).empty(); })) {
    return Failed("braid-operator did not start", dir + "/operator.log");
  }
  return absl::OkStatus();
}

// At the site: its Tenant maps dataset "records" to <site>.csv on its claim
// "data" and requires approval. At the coordinator: the Site, whose token
// and the federation CA start the site's operator.
absl::Status Demo::EnrollSite(Site& s, const std::string& data_dir) {
  const std::string pv = "braid-demo-" + s.ns;
  json tenant = {{"apiVersion", "braid.dev/v1alpha1"},
                 {"kind", "Tenant"},
                 {"metadata", {{"name", s.name}}},
                 {"spec",
                  {{"namespace", s.ns},
                   {"dataSources", {{{"claimName", "data"}}}},
                   {"datasets", {{{"name", kDataset}, {"claimName", "data"}, {"subPath", s.name + ".csv"}}}},
                   {"policy", {{"requireApproval", true}, {"allowedModels", {"mlp"}}, {"maxRounds", 20}}}}}};
  absl::Status applied = s.kube->Apply(absl::StrCat(
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: ", s.ns, "}\n---\n", tenant.dump(),
      "\n---\napiVersion: v1\nkind: PersistentVolume\nmetadata: {name: ", pv, "}\n",
      "spec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadOnlyMany]\n",
      "  storageClassName: \"\"\n  hostPath: {path: /tmp/", pv, "}\n",
      "  claimRef: {namespace: ", s.ns, ", name: data}\n---\n",
      "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: ", s.ns, "}\n",
      "spec:\n  accessModes: [ReadOnlyMany]\n  storageClassName: \"\"\n  volumeName: ", pv,
      "\n  resources: {requests: {storage: 1Gi}}\n"));
  if (!applied.ok()) return applied;
  applied = coordinator_->Apply(absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: Site\nmetadata: {name: ", s.name,
      "}\nspec: {description: ", s.name, " hospital}\n"));
  if (!applied.ok()) return applied;
  std::string token;
  if (!WaitFor(absl::Seconds(30), [&] {
        token = coordinator_->SecretValue(kOperatorNs, "braid-enrollment-" + s.name, "token");
        return !token.empty();
      })) {
    return Failed("no enrollment Secret for " + s.name, dir_ + "/coordinator/operator.log");
  }
  std::optional<json> ca = coordinator_->Get({"configmap", "-n", kOperatorNs, "braid-federation-ca"});
  if (!ca.has_value()) return absl::NotFoundError("no ConfigMap braid-system/braid-federation-ca");
  // What the coordinator hands the site's platform team: the token and the CA.
  const std::string ca_file = WriteText(s.dir + "/federation-ca.crt", Str(*ca, "/data/ca.crt"));
  const std::string token_file = WriteText(s.dir + "/enrollment-token", token);
  Say(absl::StrCat("site ", s.name, ": Site created at the coordinator; token and federation CA "
                   "handed to the site (", s.dir, ")"));
  return StartOperator(*s.kube, s.dir,
                       {"--role=site", "--site-name=" + s.name,
                        absl::StrCat("--coordinator-address=127.0.0.1:", federation_port_),
                        "--coordinator-ca-file=" + ca_file, "--enrollment-token-file=" + token_file},
                       &s.op);
}

absl::Status Demo::SubmitAndApprove(const std::string& job_file) {
  absl::Status applied = coordinator_->Apply(absl::StrCat(
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: ", job_.namespace_, "}\n---\n",
      ReadText(job_file)));
  if (!applied.ok()) return applied;
  uid_ = Str(Job(), "/metadata/uid");
  Say(absl::StrCat("job ", job_.namespace_, "/", job_.name, " applied at the coordinator (uid ",
                   uid_, ")"));
  for (Site& s : sites_) {
    json inv;
    if (!WaitFor(absl::Seconds(60), [&] {
          inv = Invitation(s);
          return Str(inv, "/status/phase") == "AwaitingApproval";
        })) {
      return Failed(absl::StrCat(s.name, ": no invitation awaiting approval (", inv.dump(), ")"),
                    s.dir + "/operator.log");
    }
    Say(absl::StrCat("site ", s.name, ": FederatedInvitation ", s.ns, "/",
                     Str(inv, "/metadata/name"), " AwaitingApproval (model ",
                     Str(inv, "/spec/model/kind"), ", ", inv["spec"].value("rounds", 0),
                     " rounds, dataset ", Str(inv, "/spec/dataset"), ", from ",
                     Str(inv, "/spec/coordinator"), ")"));
  }
  for (Site& s : sites_) {
    absl::Status approved = s.kube->Apply(absl::StrCat(
        "apiVersion: braid.dev/v1alpha1\nkind: TenantApproval\nmetadata: {name: ", job_.name,
        ", namespace: ", s.ns, "}\nspec:\n  tenant: ", s.name, "\n  job: {namespace: ",
        job_.namespace_, ", name: ", job_.name, "}\n  decision: Approved\n",
        "  comment: approved by the ", s.name, " data steward (make demo-multisite)\n"));
    if (!approved.ok()) return approved;
    Say(absl::StrCat("site ", s.name, ": TenantApproval Approved in its own cluster"));
  }
  for (Site& s : sites_) {
    if (!WaitFor(absl::Seconds(60), [&] {
          return Str(Invitation(s), "/status/phase") == "Running";
        })) {
      return Failed(absl::StrCat(s.name, ": invitation never Running (", Invitation(s).dump(), ")"),
                    s.dir + "/operator.log");
    }
  }
  return absl::OkStatus();
}

// The job's aggregator Deployment at the coordinator, run as its pod would:
// the init container (initial weights) then the aggregator, with the TLS
// material of its Secret and the federation CA (--tls-client-ca-extra).
absl::Status Demo::StartAggregator() {
  std::optional<json> deployment;
  if (!WaitFor(absl::Seconds(60), [&] {
        std::optional<json> list = coordinator_->Get(
            {"deployments", "-n", job_.namespace_, "-l",
             "braid.dev/job-uid=" + uid_ + ",braid.dev/role=aggregator"});
        if (!list.has_value() || (*list)["items"].empty()) return false;
        deployment = (*list)["items"][0];
        return true;
      })) {
    return Failed("the coordinator made no aggregator Deployment", dir_ + "/coordinator/operator.log");
  }
  std::optional<json> services = coordinator_->Get(
      {"services", "-n", job_.namespace_, "-l", "braid.dev/job-uid=" + uid_ + ",braid.dev/role=aggregator"});
  if (!services.has_value() || (*services)["items"].empty()) {
    return absl::NotFoundError("no aggregator Service at the coordinator");
  }
  aggregator_server_name_ =
      absl::StrCat(Str((*services)["items"][0], "/metadata/name"), ".", job_.namespace_, ".svc");
  const std::string local = dir_ + "/aggregator";
  StandInRequest init{Bin("braid-worker"), /*init=*/true, 0, local, {}, {}};
  absl::StatusOr<std::vector<std::string>> init_argv;
  // Its Secrets are made beside the Deployment; wait for them too.
  if (!WaitFor(absl::Seconds(30), [&] {
        init_argv = StandInArgv(*coordinator_, *deployment, init);
        return init_argv.ok() || !absl::IsNotFound(init_argv.status());
      })) {
    return Failed(absl::StrCat("aggregator pod: ", init_argv.status().message()));
  }
  if (!init_argv.ok()) return init_argv.status();
  absl::StatusOr<std::string> initialized =
      cli::RunForOutput(*init_argv, local + "/init-model.log", absl::Seconds(60));
  if (!initialized.ok()) return initialized.status();

  StandInRequest main{Bin("braid-aggregator"), false, 0, local, {}, {}};
  for (const json& arg : (*deployment)["spec"]["template"]["spec"]["containers"][0]["args"]) {
    const std::string a = arg;
    if (a.rfind("--listen=", 0) == 0) {
      main.replace_args[a] = absl::StrCat("--listen=127.0.0.1:", aggregator_port_);
    } else if (a.rfind("--metrics-listen=", 0) == 0) {
      main.replace_args[a] = "--metrics-listen=127.0.0.1:0";
    } else if (a.rfind("--linger=", 0) == 0) {
      main.replace_args[a] = "--linger=10m";  // stopped by this program at the end
    }
  }
  absl::StatusOr<std::vector<std::string>> argv = StandInArgv(*coordinator_, *deployment, main);
  if (!argv.ok()) return argv.status();
  argv->push_back("--port-file=" + local + "/grpc.port");
  absl::StatusOr<cli::Subprocess> proc = cli::Subprocess::Start(*argv, local + "/aggregator.log");
  if (!proc.ok()) return proc.status();
  aggregator_ = *std::move(proc);
  if (!WaitFor(absl::Seconds(30), [&] { return !ReadText(local + "/grpc.port").empty(); })) {
    return Failed("braid-aggregator did not start", local + "/aggregator.log");
  }
  Say(absl::StrCat("coordinator: aggregator on 127.0.0.1:", aggregator_port_,
                   " (its pod's args; trusts the federation CA for site certificates)"));
  return absl::OkStatus();
}

// The site's worker Deployments (made by the site's operator after its
// approval), run as their pods would: the site's certificate from its
// Secret, the claim's file from the site's own data.
absl::Status Demo::StartWorkers(Site& s, const std::string& data_dir) {
  std::optional<json> list = s.kube->Get({"deployments", "-n", s.ns, "-l", "braid.dev/job-uid=" + uid_});
  if (!list.has_value() || (*list)["items"].empty()) {
    return absl::NotFoundError(absl::StrCat(s.name, ": no worker Deployments in ", s.ns));
  }
  for (const json& d : (*list)["items"]) {
    const std::string name = Str(d, "/metadata/name");
    std::map<std::string, std::string> claims;
    for (const json& v : d["spec"]["template"]["spec"]["volumes"]) {
      if (v.contains("persistentVolumeClaim")) claims[v["name"]] = data_dir + "/" + s.name + ".csv";
    }
    const std::string local = s.dir + "/" + name;
    StandInRequest request{Bin("braid-worker"), false, 0, local, claims, {}};
    absl::StatusOr<std::vector<std::string>> argv = StandInArgv(*s.kube, d, request);
    if (!argv.ok()) return argv.status();
    absl::StatusOr<cli::Subprocess> proc = cli::Subprocess::Start(*argv, local + "/worker.log");
    if (!proc.ok()) return proc.status();
    s.workers.push_back(*std::move(proc));
  }
  Say(absl::StrCat("site ", s.name, ": ", s.workers.size(),
                   " worker(s) dialing out to the aggregator with certificate CN site:", s.name));
  return absl::OkStatus();
}

json RoundJson(const v1::RoundRecord& r) {
  json per_tenant = json::object();
  for (const v1::TenantEval& t : r.tenant_eval()) {
    per_tenant[t.tenant()] = {{"eval_loss", t.eval_loss()},
                              {"eval_accuracy", t.eval_accuracy()},
                              {"num_examples", t.num_examples()}};
  }
  return {{"round", r.round()},
          {"participants", r.participants()},
          {"sampled", r.sampled()},
          {"tenants", std::vector<std::string>(r.tenants().begin(), r.tenants().end())},
          {"train_loss", r.train_loss()},
          {"eval_loss", r.eval_loss()},
          {"eval_accuracy", r.eval_accuracy()},
          {"seconds", r.seconds()},
          {"bytes_up", r.bytes_up()},
          {"bytes_down", r.bytes_down()},
          {"tenant_eval", per_tenant}};
}

// Polls the aggregator (GetStatus over mTLS, with a client certificate of
// the job's CA, as the operator does) and prints each round once.
absl::Status Demo::Follow() {
  std::optional<json> secrets = coordinator_->Get(
      {"secrets", "-n", job_.namespace_, "-l", "braid.dev/job-uid=" + uid_});
  pki::KeyPair ca;
  for (const json& s : secrets.value_or(json::object()).value("items", json::array())) {
    if (s.contains("/data/ca.key"_json_pointer)) {
      ca.cert_pem = coordinator_->SecretValue(job_.namespace_, Str(s, "/metadata/name"), "ca.crt");
      ca.key_pem = coordinator_->SecretValue(job_.namespace_, Str(s, "/metadata/name"), "ca.key");
    }
  }
  if (ca.key_pem.empty()) return absl::NotFoundError("no job CA Secret at the coordinator");
  pki::CertRequest request;
  request.common_name = pki::kOperatorCommonName;
  request.client = true;
  request.validity = absl::Hours(1);
  absl::StatusOr<pki::KeyPair> id = pki::Issue(ca, request);
  if (!id.ok()) return id.status();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(aggregator_server_name_);
  auto stub = v1::Federation::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", aggregator_port_),
      ChannelCredentials(pki::TlsMaterial{ca.cert_pem, id->cert_pem, id->key_pem, ""}), args));

  v1::JobStatus status;
  int printed = 0;
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_timeout);
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::JobStatus fresh;
    if (stub->GetStatus(&ctx, v1::StatusRequest(), &fresh).ok()) status = fresh;
    for (const v1::RoundRecord& r : status.rounds()) {
      if (r.round() <= printed) continue;
      std::vector<std::string> sites;
      for (const Site& s : sites_) {
        bool in = false;
        for (const std::string& t : r.tenants()) in |= SiteOfTenant(t) == s.name;
        sites.push_back(absl::StrCat(s.name, in ? " yes" : " no "));
      }
      Say(absl::StrFormat("round %d/%d  participants %d/%d  sites: %s  train_loss %.4f  "
                          "eval_accuracy %.4f  %.2fs",
                          r.round(), status.total_rounds(), r.participants(), r.sampled(),
                          absl::StrJoin(sites, ", "), r.train_loss(), r.eval_accuracy(),
                          r.seconds()));
      printed = r.round();
    }
    BuildSummary(status);
    if (status.phase() == "Succeeded" || status.phase() == "Failed") break;
    if (std::optional<int> code = aggregator_->Poll()) {
      return absl::InternalError(absl::StrCat("braid-aggregator exited with ", *code, "; see ",
                                              dir_, "/aggregator/aggregator.log"));
    }
    if (interrupted) return absl::CancelledError("interrupted (Ctrl-C)");
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the job did not end within ", absl::FormatDuration(absl::GetFlag(FLAGS_timeout)),
          "; see ", dir_, "/aggregator/aggregator.log and the workers' logs under ", dir_));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  Say(absl::StrCat("aggregator: ", status.phase(), " (", status.message(), ")"));
  // The coordinator's view: its operator polls the aggregator too; the sites
  // then withdraw their workers.
  if (!WaitFor(absl::Seconds(30), [&] { return Str(Job(), "/status/phase") == status.phase(); })) {
    return Failed("the coordinator's FederatedJob never showed " + status.phase());
  }
  for (Site& s : sites_) {
    for (cli::Subprocess& w : s.workers) w.Wait(absl::Seconds(5));  // they heard DONE
    WaitFor(absl::Seconds(30), [&] { return Str(Invitation(s), "/status/phase") == "Withdrawn"; });
  }
  BuildSummary(status);
  return status.phase() == "Succeeded"
             ? absl::OkStatus()
             : absl::AbortedError(absl::StrCat("the job ended ", status.phase(), ": ", status.message()));
}

// Field names as in `braid run`'s summary.json, plus sites{}: each site's
// state as the coordinator's FederatedJob shows it, the rounds it took part
// in, its invitation's phase at the site and its Site's connection.
void Demo::BuildSummary(const v1::JobStatus& status) {
  json rounds = json::array();
  for (const v1::RoundRecord& r : status.rounds()) rounds.push_back(RoundJson(r));
  const json job = Job();
  json sites = json::object();
  for (const Site& s : sites_) {
    json entry = {{"state", ""}, {"rounds", 0}};
    for (const json& t : job.value("/status/tenants"_json_pointer, json::array())) {
      if (t.value("site", "") != s.name) continue;
      entry["tenant"] = t.value("name", "");
      entry["state"] = t.value("phase", "");
      if (t.contains("lastRound")) entry["lastRound"] = t["lastRound"];
    }
    int took_part = 0;
    for (const v1::RoundRecord& r : status.rounds()) {
      for (const std::string& t : r.tenants()) took_part += SiteOfTenant(t) == s.name;
    }
    entry["rounds"] = took_part;
    entry["invitation"] = Str(Invitation(s), "/status/phase");
    entry["connection"] =
        Str(coordinator_->Get({"site", s.name}).value_or(json::object()), "/status/phase");
    sites[s.name] = entry;
  }
  summary_ = {{"job", job_.name},
              {"namespace", job_.namespace_},
              {"uid", uid_},
              {"phase", status.phase().empty() ? "Pending" : status.phase()},
              {"reason", status.reason()},
              {"message", status.message()},
              {"rounds", rounds},
              {"sites", sites},
              {"coordinatorPhase", Str(job, "/status/phase")},
              {"workdir", fs::absolute(dir_).string()}};
  if (!status.model_path().empty()) summary_["model"] = fs::absolute(status.model_path()).string();
}

absl::Status Demo::Run(const std::string& coordinator_kubeconfig,
                       const std::vector<std::pair<std::string, std::string>>& sites,
                       const std::string& job_file, const std::string& data_dir) {
  spec::ParseOptions parse;
  parse.check_files = false;  // site tenants: their data is at the sites
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobFile(job_file, parse);
  if (!job.ok()) return job.status();
  job_ = *std::move(job);
  coordinator_ = std::make_unique<Kubectl>(kubectl_, coordinator_kubeconfig, dir_ + "/tmp");
  for (const auto& [name, kubeconfig] : sites) {
    Site s;
    s.name = name;
    s.kube = std::make_unique<Kubectl>(kubectl_, kubeconfig, dir_ + "/tmp");
    s.ns = "tenant-" + name;
    s.dir = dir_ + "/" + name;
    fs::create_directories(s.dir);
    sites_.push_back(std::move(s));
  }
  for (const spec::Tenant& t : job_.tenants) {
    bool known = false;
    for (const Site& s : sites_) known |= s.name == t.site;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(job_file, ": spec.tenants: tenant ", t.name,
                                                     " names site '", t.site,
                                                     "', which --sites does not start"));
    }
  }

  std::vector<std::function<absl::Status()>> prepare = {
      [this] { return Prepare(*coordinator_, "coordinator"); }};
  for (Site& site : sites_) {
    prepare.push_back([this, s = &site] { return Prepare(*s->kube, s->name); });
  }
  BRAID_RETURN_IF_ERROR(InParallel(prepare));
  Say("CRDs installed in the three clusters");

  aggregator_port_ = FreePort();
  const std::string aggregator = absl::StrCat("127.0.0.1:", aggregator_port_);
  const std::string coordinator_dir = dir_ + "/coordinator";
  BRAID_RETURN_IF_ERROR(StartOperator(
      *coordinator_, coordinator_dir,
      {"--role=coordinator", "--federation-listen=127.0.0.1:0",
       "--federation-port-file=" + coordinator_dir + "/federation.port",
       "--federation-keepalive=5s", "--site-aggregator-address-template=" + aggregator,
       "--aggregator-address-template=" + aggregator},
      &coordinator_op_));
  if (!WaitFor(absl::Seconds(30), [&] {
        return !ReadText(coordinator_dir + "/federation.port").empty();
      })) {
    return Failed("the coordinator's federation endpoint did not start",
                  coordinator_dir + "/operator.log");
  }
  federation_port_ = std::atoi(ReadText(coordinator_dir + "/federation.port").c_str());
  Say(absl::StrCat("coordinator: braid-operator --role coordinator, federation endpoint on "
                   "127.0.0.1:",
                   federation_port_, " (mTLS)"));

  // One after the other: two sites connecting at the same moment left one
  // Site Disconnected at the coordinator (reported as a bug of the branch).
  for (Site& site : sites_) BRAID_RETURN_IF_ERROR(EnrollSite(site, data_dir));
  for (Site& site : sites_) {
    if (!WaitFor(absl::Seconds(60), [&] {
          return Str(coordinator_->Get({"site", site.name}).value_or(json::object()),
                     "/status/phase") == "Connected";
        })) {
      return Failed(absl::StrCat(site.name, " never connected (its Site's status: ",
                                 coordinator_->Get({"site", site.name})
                                     .value_or(json::object())
                                     .value("status", json::object())
                                     .dump(),
                                 ")"),
                    site.dir + "/operator.log");
    }
    Say(absl::StrCat("site ", site.name, ": enrolled (certificate CN site:", site.name,
                     "), Connected; it dialed out, it opens no port"));
  }

  BRAID_RETURN_IF_ERROR(SubmitAndApprove(job_file));
  BRAID_RETURN_IF_ERROR(StartAggregator());
  for (Site& site : sites_) BRAID_RETURN_IF_ERROR(StartWorkers(site, data_dir));
  return Follow();
}

void Demo::Stop() {
  for (Site& s : sites_) {
    for (cli::Subprocess& w : s.workers) w.Terminate(absl::Seconds(2));
  }
  if (aggregator_) aggregator_->Terminate(absl::Seconds(5));
  for (Site& s : sites_) {
    if (s.op) s.op->Terminate(absl::Seconds(5));
  }
  if (coordinator_op_) coordinator_op_->Terminate(absl::Seconds(5));
}

}  // namespace
}  // namespace braid::multisite

int main(int argc, char** argv) {
  using namespace braid::multisite;  // NOLINT
  absl::ParseCommandLine(argc, argv);
  start_time = absl::Now();
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  const std::string kubectl = absl::GetFlag(FLAGS_kubectl);
  std::string bin = absl::GetFlag(FLAGS_bin_dir);
  if (bin.empty()) bin = braid::cli::SelfDir();
  std::vector<std::pair<std::string, std::string>> sites;
  for (const std::string& s : absl::GetFlag(FLAGS_sites)) {
    std::pair<std::string, std::string> kv = absl::StrSplit(s, absl::MaxSplits('=', 1));
    if (kv.first.empty() || kv.second.empty()) {
      std::cerr << "braid_multisite_demo: --sites: want NAME=KUBECONFIG, got '" << s << "'\n";
      return 2;
    }
    sites.push_back(kv);
  }
  if (kubectl.empty() || absl::GetFlag(FLAGS_coordinator_kubeconfig).empty() || sites.empty() ||
      absl::GetFlag(FLAGS_job).empty() || absl::GetFlag(FLAGS_data_dir).empty()) {
    std::cerr << "braid_multisite_demo: --kubectl, --coordinator_kubeconfig, --sites, --job and "
                 "--data_dir are required (scripts/demo-multisite.sh passes them)\n";
    return 2;
  }
  const std::string workdir = absl::GetFlag(FLAGS_workdir);
  std::filesystem::create_directories(workdir);

  Demo demo(kubectl, bin, workdir);
  absl::Status result = demo.Run(absl::GetFlag(FLAGS_coordinator_kubeconfig), sites,
                                 std::filesystem::absolute(absl::GetFlag(FLAGS_job)).string(),
                                 std::filesystem::absolute(absl::GetFlag(FLAGS_data_dir)).string());
  demo.Stop();
  json summary = demo.Summary();
  if (!result.ok()) {
    if (summary.is_null()) summary = json::object();
    summary["phase"] = "Failed";
    summary["error"] = std::string(result.message());
  }
  const std::string summary_file = workdir + "/summary.json";
  WriteText(summary_file, summary.dump(2) + "\n");
  if (!result.ok()) {
    std::cerr << "demo-multisite: " << result.message() << "\n";
    Say("summary: " + summary_file);
    return interrupted ? 130 : 1;
  }
  for (const auto& [name, site] : summary["sites"].items()) {
    Say(absl::StrCat("site ", name, ": ", site.value("state", ""), ", took part in ",
                     site.value("rounds", 0), " of ", summary["rounds"].size(),
                     " rounds; invitation ", site.value("invitation", ""), ", link ",
                     site.value("connection", "")));
  }
  Say("summary: " + summary_file);
  return 0;
}
