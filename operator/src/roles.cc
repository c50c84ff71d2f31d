#include "braid/operator/roles.h"

#include <cstdio>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "braid/core/cancel.h"
#include "braid/core/clock.h"
#include "braid/core/log.h"
#include "braid/core/pki.h"
#include "braid/core/status_macros.h"
#include "braid/federation/coordinator_service.h"
#include "braid/federation/invitation_board.h"
#include "braid/operator/job_objects.h"
#include "braid/operator/job_tls.h"
#include "braid/operator/site_directory.h"

namespace braid::op {
namespace {

using nlohmann::json;

bool IsIpAddress(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789.:") == std::string::npos;
}

// The federation CA from Secret `name` in `ns`, made (and its certificate
// published in ConfigMap `name`) when absent.
absl::StatusOr<pki::KeyPair> LoadOrMakeCa(kube::Client* client, const CoordinatorRoleOptions& o) {
  absl::StatusOr<json> secret = client->Get(kube::kSecret, o.ns, o.ca_secret);
  pki::KeyPair ca;
  if (secret.ok()) {
    BRAID_ASSIGN_OR_RETURN(ca.cert_pem, SecretFile(*secret, "ca.crt"));
    BRAID_ASSIGN_OR_RETURN(ca.key_pem, SecretFile(*secret, "ca.key"));
  } else if (absl::IsNotFound(secret.status())) {
    BRAID_ASSIGN_OR_RETURN(ca, pki::MakeFederationCa(o.federation_name, absl::Hours(24 * 3650)));
    json object = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata",
                    {{"name", o.ca_secret},
                     {"namespace", o.ns},
                     {"labels", {{"app.kubernetes.io/part-of", "braid"}}}}},
                   {"type", "Opaque"},
                   {"data",
                    {{"ca.crt", absl::Base64Escape(ca.cert_pem)},
                     {"ca.key", absl::Base64Escape(ca.key_pem)}}}};
    absl::StatusOr<json> created = client->Create(kube::kSecret, object);
    if (absl::IsAlreadyExists(created.status())) return LoadOrMakeCa(client, o);  // a race: theirs
    BRAID_RETURN_IF_ERROR(created.status());
  } else {
    return secret.status();
  }
  // The certificate alone, for the sites' platform teams.
  json config_map = {{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"metadata",
                      {{"name", o.ca_secret},
                       {"namespace", o.ns},
                       {"labels", {{"app.kubernetes.io/part-of", "braid"}}}}},
                     {"data", {{"ca.crt", ca.cert_pem}}}};
  BRAID_RETURN_IF_ERROR(client->Apply(kube::kConfigMap, config_map, kFieldManager, true).status());
  return ca;
}

class CoordinatorRoleImpl final : public CoordinatorRole {
 public:
  CoordinatorRoleImpl(kube::Client* client, CoordinatorRoleOptions options, std::string ca_pem)
      : options_(std::move(options)),
        directory_(client, options_.ns, RealClock()),
        federation_(&directory_, &board_, std::move(ca_pem)) {}
  ~CoordinatorRoleImpl() override { Stop(); }

  absl::Status Start(const pki::KeyPair& ca) {
    // Sites are known before the first call arrives.
    if (absl::Status s = directory_.Sync(); !s.ok()) {
      LogWarning(absl::StrCat("braid-operator: Sites: ", s.message()));
    }
    pki::CertRequest request;
    request.common_name = "braid federation endpoint";
    for (const std::string& name : options_.server_names) {
      (IsIpAddress(name) ? request.ip_addresses : request.dns_names).push_back(name);
    }
    request.server = true;
    request.validity = absl::Hours(24 * 365);
    federation::CoordinatorServerOptions server;
    server.address = options_.listen;
    BRAID_ASSIGN_OR_RETURN(server.server, pki::Issue(ca, request));
    server.service.ca = ca;
    server.service.cert_validity = options_.cert_validity;
    server.service.keepalive_interval = options_.keepalive;
    BRAID_ASSIGN_OR_RETURN(server_, federation::StartCoordinatorServer(
                                        std::move(server), &directory_, &board_, RealClock()));
    if (!options_.port_file.empty()) {
      BRAID_RETURN_IF_ERROR(WritePortFile(options_.port_file, server_->port()));
    }
    LogInfo(absl::StrCat("braid-operator: federation endpoint on port ", server_->port()));
    loop_ = std::thread([this] {
      while (!stop_.WaitFor(options_.site_sync)) {
        if (absl::Status s = directory_.Sync(); !s.ok()) {
          LogWarning(absl::StrCat("braid-operator: Sites: ", s.message()));
        }
      }
    });
    return absl::OkStatus();
  }

  Federation* federation() override { return &federation_; }
  int port() const override { return server_ ? server_->port() : 0; }

  void Stop() override {
    stop_.Cancel();
    if (loop_.joinable()) loop_.join();
    board_.Shutdown();
    if (server_) server_->Shutdown();
  }

 private:
  static absl::Status WritePortFile(const std::string& path, int port) {
    const std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) return absl::InternalError(absl::StrCat(tmp, ": cannot write"));
    std::fprintf(f, "%d\n", port);
    std::fclose(f);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      return absl::InternalError(absl::StrCat(path, ": cannot write"));
    }
    return absl::OkStatus();
  }

  const CoordinatorRoleOptions options_;
  SiteDirectory directory_;
  federation::InvitationBoard board_;
  CoordinatorFederation federation_;
  std::unique_ptr<federation::CoordinatorServer> server_;
  CancelToken stop_;
  std::thread loop_;
};

class SiteAgentImpl final : public SiteAgent {
 public:
  SiteAgentImpl(kube::Client* client, SiteAgentOptions options)
      : options_(std::move(options)),
        store_(NewSecretIdentityStore(client, options_.ns, options_.identity_secret)),
        reconciler_(client, options_.site) {}
  ~SiteAgentImpl() override { Stop(); }

  absl::Status Start() {
    BRAID_ASSIGN_OR_RETURN(
        link_, federation::StartSiteLink(
                   options_.link, store_.get(),
                   [this](const v1::InvitationSet& snapshot) {
                     absl::MutexLock lock(&mu_);
                     invitations_ = std::vector<v1::Invitation>(snapshot.invitations().begin(),
                                                                snapshot.invitations().end());
                     changed_ = true;
                   },
                   RealClock()));
    loop_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  void Stop() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (loop_.joinable()) loop_.join();
    if (link_) link_->Stop();
  }

 private:
  // Reconciles after each snapshot and every `resync`. Until the first
  // snapshot after a start nothing is decided: a restarted site operator
  // leaves running workers alone until the coordinator has spoken.
  void Loop() {
    for (;;) {
      std::optional<std::vector<v1::Invitation>> invitations;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || changed_; };
        mu_.AwaitWithTimeout(absl::Condition(&ready), options_.resync);
        if (stopping_) return;
        changed_ = false;
        invitations = invitations_;
      }
      if (!invitations.has_value()) continue;
      absl::StatusOr<std::optional<federation::SiteIdentity>> identity = store_->Load();
      if (!identity.ok() || !identity->has_value()) continue;  // the link enrolls first
      absl::StatusOr<v1::SiteReport> report = reconciler_.Reconcile(*invitations, **identity);
      if (!report.ok()) {
        LogWarning(absl::StrCat("braid-operator: invitations: ", report.status().message()));
        continue;
      }
      link_->SetReport(*std::move(report));
    }
  }

  const SiteAgentOptions options_;
  std::unique_ptr<federation::IdentityStore> store_;
  SiteReconciler reconciler_;
  std::unique_ptr<federation::SiteLink> link_;
  absl::Mutex mu_;
  std::optional<std::vector<v1::Invitation>> invitations_ ABSL_GUARDED_BY(mu_);
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread loop_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorRole>> StartCoordinatorRole(
    kube::Client* client, CoordinatorRoleOptions options) {
  BRAID_ASSIGN_OR_RETURN(pki::KeyPair ca, LoadOrMakeCa(client, options));
  auto role = std::make_unique<CoordinatorRoleImpl>(client, std::move(options), ca.cert_pem);
  BRAID_RETURN_IF_ERROR(role->Start(ca));
  return role;
}

absl::StatusOr<std::unique_ptr<SiteAgent>> StartSiteAgent(kube::Client* client,
                                                          SiteAgentOptions options) {
  auto agent = std::make_unique<SiteAgentImpl>(client, std::move(options));
  BRAID_RETURN_IF_ERROR(agent->Start());
  return agent;
}

}  // namespace braid::op
