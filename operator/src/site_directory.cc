#include "braid/operator/site_directory.h"

#include <set>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "braid/control/job_status.h"
#include "braid/core/log.h"
#include "braid/federation/enrollment_token.h"
#include "braid/operator/job_objects.h"
#include "braid/operator/job_tls.h"

namespace braid::op {

using nlohmann::json;

namespace {

constexpr char kSiteLabel[] = "braid.dev/site";

std::string Phase(bool revoked, bool enrolled, bool connected, bool ever_connected) {
  if (revoked) return "Revoked";
  if (connected) return "Connected";
  if (ever_connected) return "Disconnected";
  return enrolled ? "Enrolled" : "Pending";
}

}  // namespace

std::string EnrollmentSecretName(const std::string& site) {
  return DnsLabel("braid-enrollment-" + site);
}

SiteDirectory::SiteDirectory(kube::Client* client, std::string ns, Clock* clock)
    : client_(client), ns_(std::move(ns)), clock_(clock) {}

json SiteDirectory::StatusOf(const std::string& site, const Entry& e) const {
  json status = {{"phase", Phase(e.revoked, e.enrolled, e.connected, e.ever_connected)}};
  if (!e.enrolled) status["enrollmentSecret"] = EnrollmentSecretName(site);
  if (!e.enrolled_at.empty()) status["enrolledAt"] = e.enrolled_at;
  if (!e.last_seen.empty()) status["lastSeen"] = e.last_seen;
  if (!e.cert_not_after.empty()) status["certificateNotAfter"] = e.cert_not_after;
  return status;
}

absl::Status SiteDirectory::Sync() {
  absl::StatusOr<json> sites = client_->List(kSite, "");
  if (!sites.ok()) return sites.status();
  kube::ListOptions by_site;
  by_site.label_selector = kSiteLabel;
  absl::StatusOr<json> secrets = client_->List(kube::kSecret, ns_, by_site);
  if (!secrets.ok()) return secrets.status();
  std::map<std::string, std::string> digests;  // site -> digest of its Secret's token
  for (const json& s : (*secrets)["items"]) {
    const std::string site = s["metadata"]["labels"].value(kSiteLabel, "");
    absl::StatusOr<std::string> token = SecretFile(s, "token");
    if (!site.empty() && token.ok()) digests[site] = federation::TokenDigest(*token);
  }

  std::vector<std::string> need_token;
  std::vector<std::pair<std::string, json>> to_write;
  {
    absl::MutexLock lock(&mu_);
    std::set<std::string> seen;
    for (const json& s : (*sites)["items"]) {
      const std::string name = s["metadata"].value("name", "");
      seen.insert(name);
      const std::string uid = s["metadata"].value("uid", "");
      Entry& e = sites_[name];
      // A Site deleted and made again since the last listing starts afresh.
      if (e.uid != uid) e = Entry{};
      e.uid = uid;
      e.exists = true;
      e.object = s;
      e.revoked = s.value("/spec/revoked"_json_pointer, false);
      const json status = s.value("status", json::object());
      if (!status.value("enrolledAt", "").empty()) {
        e.enrolled = true;
        e.enrolled_at = status["enrolledAt"];
      }
      if (e.last_seen.empty()) e.last_seen = status.value("lastSeen", "");
      if (e.cert_not_after.empty()) e.cert_not_after = status.value("certificateNotAfter", "");
      if (e.written_status.is_null()) e.written_status = status;
      auto d = digests.find(name);
      e.token_digest = d == digests.end() ? "" : d->second;
      if (!e.enrolled && !e.revoked && e.token_digest.empty()) need_token.push_back(name);
      json want = StatusOf(name, e);
      if (want != e.written_status) to_write.emplace_back(name, std::move(want));
    }
    for (auto it = sites_.begin(); it != sites_.end();) {
      it = seen.count(it->first) > 0 ? std::next(it) : sites_.erase(it);
    }
  }

  for (const std::string& site : need_token) {
    absl::StatusOr<std::string> token = federation::NewEnrollmentToken();
    if (!token.ok()) return token.status();
    json secret = {{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata",
                    {{"name", EnrollmentSecretName(site)},
                     {"namespace", ns_},
                     {"labels", {{kSiteLabel, site}, {"app.kubernetes.io/part-of", "braid"}}}}},
                   {"type", "Opaque"},
                   {"data", {{"token", absl::Base64Escape(*token)}}}};
    absl::StatusOr<json> created = client_->Create(kube::kSecret, secret);
    if (!created.ok() && !absl::IsAlreadyExists(created.status())) return created.status();
    if (created.ok()) {
      absl::MutexLock lock(&mu_);
      auto it = sites_.find(site);
      if (it != sites_.end()) it->second.token_digest = federation::TokenDigest(*token);
    }
  }
  for (auto& [site, status] : to_write) {
    json patch = {{"apiVersion", kSite.api_version},
                  {"kind", kSite.kind},
                  {"metadata", {{"name", site}}},
                  {"status", status}};
    absl::StatusOr<json> written = client_->ApplyStatus(kSite, patch, kFieldManager, true);
    if (!written.ok()) {
      if (absl::IsNotFound(written.status())) continue;  // deleted meanwhile
      return written.status();
    }
    absl::MutexLock lock(&mu_);
    auto it = sites_.find(site);
    if (it != sites_.end()) it->second.written_status = std::move(status);
  }
  return absl::OkStatus();
}

std::map<std::string, json> SiteDirectory::Sites() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, json> out;
  for (const auto& [name, e] : sites_) out[name] = e.object;
  return out;
}

SiteJobView SiteDirectory::View(const std::string& site, const std::string& job_uid) const {
  absl::MutexLock lock(&mu_);
  SiteJobView view;
  auto it = sites_.find(site);
  if (it == sites_.end()) return view;
  view.member = it->second.exists && !it->second.revoked;
  view.connected = it->second.connected;
  auto job = it->second.jobs.find(job_uid);
  if (job != it->second.jobs.end()) view.state = job->second;
  return view;
}

federation::SiteRecord SiteDirectory::Lookup(const std::string& site) {
  absl::MutexLock lock(&mu_);
  federation::SiteRecord record;
  auto it = sites_.find(site);
  if (it == sites_.end()) return record;
  record.exists = it->second.exists;
  record.revoked = it->second.revoked;
  record.uid = it->second.uid;
  return record;
}

bool SiteDirectory::SpendEnrollmentToken(const std::string& site,
                                         const std::string& token_digest) {
  {
    absl::MutexLock lock(&mu_);
    auto it = sites_.find(site);
    if (it == sites_.end() || it->second.revoked || it->second.enrolled ||
        it->second.token_digest.empty() ||
        !federation::DigestsEqual(it->second.token_digest, token_digest)) {
      return false;
    }
    // Spent here and now: a concurrent caller with the same token finds it
    // enrolled. The Secret goes next; status.enrolledAt keeps it spent
    // across restarts.
    it->second.enrolled = true;
    it->second.token_digest.clear();
    it->second.enrolled_at = control::Rfc3339(clock_->Now());
  }
  absl::Status deleted = client_->Delete(kube::kSecret, ns_, EnrollmentSecretName(site));
  if (!deleted.ok() && !absl::IsNotFound(deleted)) {
    LogWarning(absl::StrCat("braid-operator: enrollment Secret of site ", site,
                            " not deleted (spent anyway): ", deleted.message()));
  }
  return true;
}

void SiteDirectory::OnCertificateIssued(const std::string& site, absl::Time not_after) {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  if (it != sites_.end()) it->second.cert_not_after = control::Rfc3339(not_after);
}

void SiteDirectory::OnConnected(const std::string& site) {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  if (it == sites_.end()) return;
  it->second.connected = true;
  it->second.ever_connected = true;
  it->second.last_seen = control::Rfc3339(clock_->Now());
}

void SiteDirectory::OnDisconnected(const std::string& site) {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  if (it == sites_.end()) return;
  it->second.connected = false;
  it->second.last_seen = control::Rfc3339(clock_->Now());
}

void SiteDirectory::OnReport(const std::string& site, const v1::SiteReport& report) {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  if (it == sites_.end()) return;
  it->second.jobs.clear();
  for (const v1::InvitationState& job : report.jobs()) it->second.jobs[job.job_uid()] = job;
  it->second.last_seen = control::Rfc3339(clock_->Now());
}

}  // namespace braid::op
