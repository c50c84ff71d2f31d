// braid-operator: reconciles FederatedJobs into aggregator and worker
// Deployments. Runs in the cluster (service-account credentials) or beside
// it (--kubeconfig, KUBECONFIG). With --leader-elect only the replica that
// holds the Lease reconciles; losing the lease ends the process, so a
// restarted replica starts clean (as controller-runtime does).
#include <unistd.h>

#include <pthread.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "braid/core/file_io.h"
#include "braid/core/cli_flags.h"
#include "braid/core/cancel.h"
#include "braid/kube/client.h"
#include "braid/kube/config.h"
#include "braid/kube/leader_election.h"
#include "braid/operator/aggregator_status.h"
#include "braid/operator/controller.h"
#include "braid/operator/dashboard_kube.h"
#include "braid/dashboard/server.h"
#include "braid/operator/operator_metrics.h"
#include "braid/operator/roles.h"

ABSL_FLAG(std::string, kubeconfig, "",
          "kubeconfig file; default $KUBECONFIG, then in-cluster credentials, then ~/.kube/config");
ABSL_FLAG(std::string, context, "", "kubeconfig context (default: current-context)");
ABSL_FLAG(std::string, namespace, "",
          "the operator's namespace (its Lease; admitted to aggregators); default: the "
          "service account's or the kubeconfig context's");
ABSL_FLAG(bool, leader_elect, false, "hold a coordination.k8s.io Lease before reconciling");
ABSL_FLAG(std::string, lease_name, "braid-operator", "name of the leader-election Lease");
ABSL_FLAG(std::string, identity, "", "this replica's name in the Lease (default: hostname-pid)");
ABSL_FLAG(std::string, metrics_listen, "0.0.0.0:9090", "serve /metrics, /healthz, /readyz here");
ABSL_FLAG(std::string, metrics_port_file, "", "write the bound metrics port here");
ABSL_FLAG(std::string, aggregator_image, "braid/aggregator:0.1.0", "aggregator container image");
ABSL_FLAG(std::string, worker_image, "braid/worker:0.1.0", "worker container image");
ABSL_FLAG(std::string, image_pull_policy, "IfNotPresent", "Always | IfNotPresent | Never");
ABSL_FLAG(absl::Duration, status_interval, absl::Seconds(2),
          "how often a running job's aggregator is asked for progress");
ABSL_FLAG(int, workers, 2, "jobs reconciled at once");
ABSL_FLAG(bool, tls, true,
          "mTLS between each job's workers and aggregator, with a per-job CA and certificates "
          "the operator keeps in Secrets (false: plaintext gRPC)");
ABSL_FLAG(std::string, aggregator_address_template, "",
          "reach aggregators here for status instead of their Service, e.g. "
          "\"127.0.0.1:7070\" or \"{name}-aggregator.{namespace}.example:7070\" (for an operator "
          "outside the cluster)");

ABSL_FLAG(std::string, dashboard_listen, "",
          "serve the dashboard (web app + /api/) here, e.g. 0.0.0.0:8080; every API call needs "
          "a Kubernetes bearer token (TokenReview) and RBAC permission (SubjectAccessReview). "
          "Empty: no dashboard");
ABSL_FLAG(std::vector<std::string>, dashboard_allowed_hosts, {},
          "host names (besides IP addresses and localhost) the dashboard is reached by, e.g. an "
          "Ingress's braid.example.org, comma-separated; \".example.org\" allows every name "
          "under it. Other Host headers get 421 (DNS rebinding)");
ABSL_FLAG(int, dashboard_max_connections, 64,
          "open dashboard connections at most (half of them from one address); beyond: 503");
ABSL_FLAG(int, dashboard_max_event_streams, 16,
          "open dashboard event streams at most (half of them from one address)");
ABSL_FLAG(std::string, role, "single",
          "single (one cluster, as before) | coordinator (serves the federation endpoint to "
          "sites) | site (dials a coordinator; runs the workers of its invitations)");
// --role coordinator
ABSL_FLAG(std::string, federation_listen, "0.0.0.0:7443", "coordinator: the federation endpoint");
ABSL_FLAG(std::string, federation_port_file, "", "coordinator: write the endpoint's port here");
ABSL_FLAG(std::vector<std::string>, federation_server_names,
          std::vector<std::string>({"localhost", "127.0.0.1"}),
          "coordinator: DNS names and IPs in the endpoint's certificate (what sites dial)");
ABSL_FLAG(std::string, site_aggregator_address_template, "",
          "coordinator: where sites' workers reach a job's aggregator, with {name} and "
          "{namespace}, e.g. {name}.{namespace}.fl.example.org:443 (required)");
ABSL_FLAG(std::string, site_aggregator_gateway, "",
          "coordinator: <namespace>/<name>[/<listener>] of a Gateway with a TLS-passthrough "
          "listener; each job with site tenants gets a TLSRoute from it to its aggregator, "
          "matching the aggregator's certificate name (default: none, route them yourself)");
ABSL_FLAG(std::string, coordinator_name, "braid-coordinator",
          "coordinator: its name in invitations");
ABSL_FLAG(absl::Duration, federation_keepalive, absl::Seconds(30),
          "coordinator: keepalive on each site's stream; a revoked site's stream ends within it");
ABSL_FLAG(absl::Duration, site_certificate_validity, absl::Hours(24),
          "coordinator: lifetime of the sites' certificates (renewed at 2/3)");
// --role site
ABSL_FLAG(std::string, site_name, "", "site: this site's name (its Site object at the coordinator)");
ABSL_FLAG(std::string, site_tenant, "",
          "site: the Tenant object invitations run as (default: --site-name)");
ABSL_FLAG(std::string, coordinator_address, "", "site: host:port of the federation endpoint");
ABSL_FLAG(std::string, coordinator_server_name, "",
          "site: the name in the endpoint's certificate, if not the host dialled");
ABSL_FLAG(std::string, coordinator_ca_file, "",
          "site: the federation CA certificate (PEM) the endpoint must chain to");
ABSL_FLAG(std::string, enrollment_token_file, "",
          "site: the one-time enrollment token (needed until the site has enrolled)");
ABSL_FLAG(absl::Duration, coordinator_reconnect_max, absl::Minutes(2),
          "site: the longest wait between attempts to reach the coordinator (backoff cap)");
ABSL_FLAG(std::string, web_dir, "",
          "the built web app for --dashboard-listen (default $BRAID_WEB_DIR, else "
          "<binary's dir>/../share/braid/web)");

namespace {

// The directory of this binary (the web app is found beside it).
std::string BinaryDir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "." : exe.parent_path().string();
}

// SIGINT and SIGTERM are blocked in every thread and taken by one thread
// with sigwait, which may lock mutexes (a signal handler may not).
void StopOnSignal(braid::CancelToken* stop) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([stop, signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    stop->Cancel();
  }).detach();
}

std::string DefaultIdentity() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(host, "-", getpid());
}

int Main() {
  using namespace braid;
  CancelToken stop;
  StopOnSignal(&stop);  // before any thread starts, so all inherit the mask
  absl::StatusOr<kube::Config> config =
      kube::LoadDefault(absl::GetFlag(FLAGS_kubeconfig), absl::GetFlag(FLAGS_context));
  if (!config.ok()) {
    std::cerr << "braid-operator: " << config.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<kube::Client>> client = kube::NewClientForConfig(*config);
  if (!client.ok()) {
    std::cerr << "braid-operator: " << client.status().message() << "\n";
    return 2;
  }
  std::string ns = absl::GetFlag(FLAGS_namespace);
  if (ns.empty()) ns = config->default_namespace;

  op::OperatorMetrics metrics;
  absl::StatusOr<int> port = metrics.Serve(absl::GetFlag(FLAGS_metrics_listen));
  if (!port.ok()) {
    std::cerr << "braid-operator: " << port.status().message() << "\n";
    return 2;
  }
  if (const std::string file = absl::GetFlag(FLAGS_metrics_port_file); !file.empty()) {
    FILE* f = std::fopen(file.c_str(), "w");
    if (f != nullptr) {
      std::fprintf(f, "%d\n", *port);
      std::fclose(f);
    }
  }

  // The dashboard serves on every replica, leader or not: it only reads
  // through its own informers and writes TenantApprovals.
  braid::dashboard::EventFeed feed;
  std::unique_ptr<op::KubeDashboardSource> dashboard_source;
  std::unique_ptr<op::KubeDashboardAuthorizer> authorizer;
  std::unique_ptr<braid::dashboard::DashboardServer> dashboard;
  if (const std::string addr = absl::GetFlag(FLAGS_dashboard_listen); !addr.empty()) {
    braid::dashboard::DashboardOptions dopts;
    dopts.address = addr;
    dopts.static_dir = absl::GetFlag(FLAGS_web_dir);
    if (dopts.static_dir.empty()) {
      absl::StatusOr<std::string> dir = braid::dashboard::FindWebDir(BinaryDir());
      if (dir.ok()) {
        dopts.static_dir = *dir;
      } else {
        // The API still serves (curl, scripts); the pages need the app.
        std::cerr << "braid-operator: " << dir.status().message()
                  << "; serving the dashboard API only\n";
        dopts.api_only = true;
      }
    }
    dashboard_source = std::make_unique<op::KubeDashboardSource>(client->get(), &feed);
    authorizer = std::make_unique<op::KubeDashboardAuthorizer>(client->get());
    dopts.authorizer = authorizer.get();
    dopts.allowed_hosts = absl::GetFlag(FLAGS_dashboard_allowed_hosts);
    dopts.limits.max_connections = std::max(1, absl::GetFlag(FLAGS_dashboard_max_connections));
    dopts.limits.max_connections_per_client = std::max(1, dopts.limits.max_connections / 2);
    dopts.limits.max_event_streams = std::max(1, absl::GetFlag(FLAGS_dashboard_max_event_streams));
    dopts.limits.max_event_streams_per_client = std::max(1, dopts.limits.max_event_streams / 2);
    absl::StatusOr<std::unique_ptr<braid::dashboard::DashboardServer>> server =
        braid::dashboard::DashboardServer::Start(dopts, dashboard_source.get(), &feed);
    if (!server.ok()) {
      std::cerr << "braid-operator: " << server.status().message() << "\n";
      return 2;
    }
    dashboard = *std::move(server);
    std::cerr << "braid-operator: dashboard on " << dashboard->url() << "\n";
  }

  op::ControllerOptions options;
  options.workers = absl::GetFlag(FLAGS_workers);
  options.reconciler.aggregator_image = absl::GetFlag(FLAGS_aggregator_image);
  options.reconciler.worker_image = absl::GetFlag(FLAGS_worker_image);
  options.reconciler.image_pull_policy = absl::GetFlag(FLAGS_image_pull_policy);
  options.reconciler.operator_namespace = ns;
  options.reconciler.status_interval = absl::GetFlag(FLAGS_status_interval);
  options.reconciler.tls = absl::GetFlag(FLAGS_tls);
  options.reconciler.aggregator_address_template =
      absl::GetFlag(FLAGS_aggregator_address_template);
  const std::string role = absl::GetFlag(FLAGS_role);
  if (role != "single" && role != "coordinator" && role != "site") {
    std::cerr << "braid-operator: --role: must be single, coordinator or site, not " << role << "\n";
    return 2;
  }
  std::unique_ptr<op::CoordinatorRole> coordinator;
  std::unique_ptr<op::SiteAgent> site_agent;
  if (role == "coordinator") {
    if (absl::GetFlag(FLAGS_site_aggregator_address_template).empty()) {
      std::cerr << "braid-operator: --role coordinator needs --site-aggregator-address-template\n";
      return 2;
    }
    op::CoordinatorRoleOptions c;
    c.ns = ns;
    c.listen = absl::GetFlag(FLAGS_federation_listen);
    c.port_file = absl::GetFlag(FLAGS_federation_port_file);
    c.server_names = absl::GetFlag(FLAGS_federation_server_names);
    c.cert_validity = absl::GetFlag(FLAGS_site_certificate_validity);
    c.keepalive = absl::GetFlag(FLAGS_federation_keepalive);
    absl::StatusOr<std::unique_ptr<op::CoordinatorRole>> started =
        op::StartCoordinatorRole(client->get(), c);
    if (!started.ok()) {
      std::cerr << "braid-operator: " << started.status().message() << "\n";
      return 2;
    }
    coordinator = *std::move(started);
    options.reconciler.federation = coordinator->federation();
    options.reconciler.site_aggregator_address_template =
        absl::GetFlag(FLAGS_site_aggregator_address_template);
    options.reconciler.coordinator_name = absl::GetFlag(FLAGS_coordinator_name);
    if (const std::string gateway = absl::GetFlag(FLAGS_site_aggregator_gateway);
        !gateway.empty()) {
      absl::StatusOr<op::JobObjectsContext::GatewayRef> ref = op::ParseGatewayRef(gateway);
      if (!ref.ok()) {
        std::cerr << "braid-operator: --site-aggregator-gateway: " << ref.status().message()
                  << "\n";
        return 2;
      }
      options.reconciler.site_aggregator_gateway = *std::move(ref);
    }
  }
  if (role == "site") {
    op::SiteAgentOptions a;
    a.ns = ns;
    a.link.site = absl::GetFlag(FLAGS_site_name);
    a.link.coordinator_address = absl::GetFlag(FLAGS_coordinator_address);
    a.link.server_name = absl::GetFlag(FLAGS_coordinator_server_name);
    a.link.max_backoff = absl::GetFlag(FLAGS_coordinator_reconnect_max);
    absl::StatusOr<std::string> ca = braid::ReadSmallFile(absl::GetFlag(FLAGS_coordinator_ca_file), 1 << 20);
    if (!ca.ok()) {
      std::cerr << "braid-operator: --coordinator-ca-file: " << ca.status().message() << "\n";
      return 2;
    }
    a.link.ca_bundle_pem = *ca;
    if (const std::string f = absl::GetFlag(FLAGS_enrollment_token_file); !f.empty()) {
      absl::StatusOr<std::string> token = braid::ReadSmallFile(f, 4096);
      if (!token.ok()) {
        std::cerr << "braid-operator: --enrollment-token-file: " << token.status().message() << "\n";
        return 2;
      }
      a.link.enrollment_token = std::string(absl::StripAsciiWhitespace(*token));
    }
    a.site.site = a.link.site;
    a.site.tenant = absl::GetFlag(FLAGS_site_tenant).empty() ? a.link.site
                                                              : absl::GetFlag(FLAGS_site_tenant);
    a.site.worker_image = absl::GetFlag(FLAGS_worker_image);
    a.site.image_pull_policy = absl::GetFlag(FLAGS_image_pull_policy);
    absl::StatusOr<std::unique_ptr<op::SiteAgent>> started =
        op::StartSiteAgent(client->get(), std::move(a));
    if (!started.ok()) {
      std::cerr << "braid-operator: " << started.status().message() << "\n";
      return 2;
    }
    site_agent = *std::move(started);
  }
  std::unique_ptr<op::AggregatorStatusSource> status = op::NewGrpcAggregatorStatusSource();
  op::Controller controller(client->get(), status.get(), &metrics, options);

  std::cerr << "braid-operator: using " << config->source << "; namespace " << ns
            << "; metrics on port " << *port << "\n";

  int exit_code = 0;
  if (!absl::GetFlag(FLAGS_leader_elect)) {
    controller.Start();
    metrics.SetLeader(true);
    stop.WaitFor(absl::InfiniteDuration());
  } else {
    kube::LeaderElectionConfig election;
    election.lease_namespace = ns;
    election.lease_name = absl::GetFlag(FLAGS_lease_name);
    election.identity = absl::GetFlag(FLAGS_identity).empty() ? DefaultIdentity()
                                                               : absl::GetFlag(FLAGS_identity);
    election.on_started_leading = [&] {
      std::cerr << "braid-operator: " << election.identity << " leads; reconciling\n";
      metrics.SetLeader(true);
      controller.Start();
    };
    election.on_stopped_leading = [&] {
      metrics.SetLeader(false);
      if (!stop.cancelled()) {
        std::cerr << "braid-operator: lost the lease; exiting so a fresh process takes over\n";
        exit_code = 1;
        stop.Cancel();
      }
    };
    election.on_error = [](const absl::Status& error) {
      std::cerr << "braid-operator: leader election: " << error.message() << "\n";
    };
    kube::LeaderElector elector(client->get(), election);
    std::cerr << "braid-operator: " << election.identity << " waiting for lease " << ns << "/"
              << election.lease_name << "\n";
    // Returns when `stop` is cancelled (signal or lost lease); releases the
    // lease if held.
    absl::Status run = elector.Run(&stop);
    if (!run.ok()) std::cerr << "braid-operator: " << run.message() << "\n";
  }
  controller.Stop();
  if (site_agent) site_agent->Stop();
  if (coordinator) coordinator->Stop();
  if (dashboard) dashboard->Stop();
  std::cerr << "braid-operator: stopped\n";
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "braid-operator [--kubeconfig FILE] [--leader-elect] [--metrics-listen ADDR] ...\n"
      "Reconciles braid.dev/v1alpha1 FederatedJobs into aggregator and worker Deployments.");
  const std::vector<std::string> args = braid::ParseFlags(argc, argv);
  if (args.size() != 1) {
    std::cerr << "braid-operator takes no arguments, only flags (see --help)\n";
    return 2;
  }
  return Main();
}
