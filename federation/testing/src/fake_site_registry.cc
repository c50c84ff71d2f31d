#include "braid/federation/testing/fake_site_registry.h"

#include "braid/federation/enrollment_token.h"

#include "absl/time/clock.h"

namespace braid::federation {

void FakeSiteRegistry::AddSite(const std::string& site, const std::string& token) {
  absl::MutexLock lock(&mu_);
  Site& s = sites_[site];
  s.exists = true;
  s.revoked = false;
  s.uid = site + "-uid-" + std::to_string(++next_uid_);
  s.token_digest = TokenDigest(token);
}

void FakeSiteRegistry::Revoke(const std::string& site) {
  absl::MutexLock lock(&mu_);
  sites_[site].revoked = true;
}

void FakeSiteRegistry::Delete(const std::string& site) {
  absl::MutexLock lock(&mu_);
  sites_[site].exists = false;
}

SiteRecord FakeSiteRegistry::Lookup(const std::string& site) {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  if (it == sites_.end()) return SiteRecord{};
  return SiteRecord{it->second.exists, it->second.revoked, it->second.uid};
}

bool FakeSiteRegistry::SpendEnrollmentToken(const std::string& site,
                                            const std::string& token_digest) {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  if (it == sites_.end() || !it->second.exists || it->second.revoked ||
      it->second.token_digest.empty() || !DigestsEqual(it->second.token_digest, token_digest)) {
    return false;
  }
  it->second.token_digest.clear();
  return true;
}

void FakeSiteRegistry::OnCertificateIssued(const std::string& site, absl::Time not_after) {
  absl::MutexLock lock(&mu_);
  sites_[site].not_after = not_after;
}

void FakeSiteRegistry::OnConnected(const std::string& site) {
  absl::MutexLock lock(&mu_);
  Site& s = sites_[site];
  s.connected = true;
  ++s.connects;
}

void FakeSiteRegistry::OnDisconnected(const std::string& site) {
  absl::MutexLock lock(&mu_);
  sites_[site].connected = false;
}

void FakeSiteRegistry::OnReport(const std::string& site, const v1::SiteReport& report) {
  absl::MutexLock lock(&mu_);
  Site& s = sites_[site];
  s.last_report = report;
  ++s.reports;
  s.report_times.push_back(absl::Now());
}

bool FakeSiteRegistry::connected(const std::string& site) const {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  return it != sites_.end() && it->second.connected;
}

int FakeSiteRegistry::connects(const std::string& site) const {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  return it == sites_.end() ? 0 : it->second.connects;
}

std::optional<v1::SiteReport> FakeSiteRegistry::last_report(const std::string& site) const {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  return it == sites_.end() ? std::nullopt : it->second.last_report;
}

int FakeSiteRegistry::reports(const std::string& site) const {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  return it == sites_.end() ? 0 : it->second.reports;
}

std::vector<absl::Time> FakeSiteRegistry::report_times(const std::string& site) const {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  return it == sites_.end() ? std::vector<absl::Time>{} : it->second.report_times;
}

std::optional<absl::Time> FakeSiteRegistry::last_not_after(const std::string& site) const {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  return it == sites_.end() ? std::nullopt : it->second.not_after;
}

bool FakeSiteRegistry::AwaitConnected(const std::string& site, bool connected,
                                      absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = sites_.find(site);
    return (it != sites_.end() && it->second.connected) == connected;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

bool FakeSiteRegistry::AwaitReports(const std::string& site, int count,
                                    absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = sites_.find(site);
    return it != sites_.end() && it->second.reports >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

}  // namespace braid::federation
