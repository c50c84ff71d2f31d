#include "braid/aggregator/site_admission.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "braid/core/dns_name.h"
#include "braid/core/file_io.h"
#include "braid/core/log.h"

namespace braid::aggregator {
namespace {

// A list of many thousands of sites is not one the operator wrote.
constexpr uint64_t kMaxFileBytes = 1 << 20;

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParseSiteAdmission(const std::string& text,
                                                                      const std::string& what) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, ": not JSON"));
  if (!doc.is_object() || !doc.contains("sites") || !doc["sites"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": sites: must be an object"));
  }
  std::map<std::string, std::string> uids;
  for (const auto& [site, entry] : doc["sites"].items()) {
    const std::string at = absl::StrCat(what, ": sites.", site);
    if (!IsDns1123Label(site)) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": not a Site name (a DNS-1123 label)"));
    }
    if (!entry.is_object() || !entry.contains("uid") || !entry["uid"].is_string() ||
        entry["uid"].get<std::string>().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(at, ".uid: must be a non-empty string"));
    }
    uids[site] = entry["uid"];
  }
  return uids;
}

absl::StatusOr<std::unique_ptr<SiteAdmission>> SiteAdmission::Open(const std::string& path) {
  std::unique_ptr<SiteAdmission> admission(new SiteAdmission(path));
  absl::MutexLock lock(&admission->mu_);
  admission->RefreshLocked();
  if (!admission->error_.ok()) return admission->error_;
  return admission;
}

void SiteAdmission::RefreshLocked() {
  struct stat st {};
  Stamp now;
  if (stat(path_.c_str(), &st) == 0) {
    now = {st.st_ino, st.st_size, int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
  }
  if (now == stamp_ && stamp_.size >= 0) return;
  stamp_ = now;
  absl::StatusOr<std::string> text = ReadSmallFile(path_, kMaxFileBytes);
  absl::StatusOr<std::map<std::string, std::string>> uids =
      text.ok() ? ParseSiteAdmission(*text, path_) : text.status();
  if (!uids.ok()) {
    if (error_.ok()) {
      LogWarning(absl::StrCat("braid-aggregator: the sites' admission list: ",
                              uids.status().message(), "; no site is admitted until it is fixed"));
    }
    error_ = uids.status();
    uids_.clear();
    return;
  }
  error_ = absl::OkStatus();
  uids_ = *std::move(uids);
}

absl::Status SiteAdmission::Check(const std::string& site, const std::string& cert_uid) {
  absl::MutexLock lock(&mu_);
  RefreshLocked();
  if (!error_.ok()) {
    return absl::PermissionDeniedError(
        "this aggregator cannot read its sites' admission list now; no site is admitted");
  }
  auto it = uids_.find(site);
  if (it == uids_.end()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "site '", site, "' is not admitted by the coordinator: its Site is revoked or deleted"));
  }
  if (cert_uid != it->second) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the caller's certificate was issued for an earlier Site '", site,
        "' (deleted and made again since); enroll with the new Site's token"));
  }
  return absl::OkStatus();
}

}  // namespace braid::aggregator
