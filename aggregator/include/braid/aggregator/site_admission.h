// Which sites the coordinator admits now, for the aggregator of a job with
// tenants at sites: the operator writes the list beside the job file (key
// sites.json of the job's ConfigMap) and rewrites it when a Site is
// revoked, deleted or made again; the kubelet brings the new file to the
// pod. A site's certificate speaks for its tenant only while its site is
// listed with the uid of the Site object the certificate was issued for
// (pki::SiteUidOf), so a revoked or deleted Site, and the certificates of
// an earlier Site of the same name, are refused at their next call without
// waiting for the certificate to expire.
//
// The file:  {"sites": {"<site>": {"uid": "<Site metadata.uid>"}, ...}}
// A site not listed is not admitted. Thread-safe.
#ifndef BRAID_AGGREGATOR_SITE_ADMISSION_H_
#define BRAID_AGGREGATOR_SITE_ADMISSION_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace braid::aggregator {

class SiteAdmission {
 public:
  // Reads `path` now. InvalidArgument/NotFound naming the path when it
  // cannot be read or parsed: an aggregator does not start on a list it
  // cannot read.
  static absl::StatusOr<std::unique_ptr<SiteAdmission>> Open(const std::string& path);

  // OK when `site` is admitted with certificates naming `cert_uid`;
  // PermissionDenied saying why not. The file is read again first when it
  // changed; while it cannot be read or parsed no site is admitted (the
  // error names the file), and the next change is read again.
  absl::Status Check(const std::string& site, const std::string& cert_uid);

 private:
  explicit SiteAdmission(std::string path) : path_(std::move(path)) {}
  // Reads the file again when its identity (inode, size, mtime) changed.
  void RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  absl::Mutex mu_;
  struct Stamp {
    ino_t inode = 0;
    off_t size = -1;
    int64_t mtime_ns = -1;
    bool operator==(const Stamp& o) const {
      return inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
    }
  };
  Stamp stamp_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);                 // of the last read
  std::map<std::string, std::string> uids_ ABSL_GUARDED_BY(mu_);  // site -> Site uid
};

// Parses the file's text. InvalidArgument naming the JSON path of what is
// wrong (`what` names the file).
absl::StatusOr<std::map<std::string, std::string>> ParseSiteAdmission(const std::string& text,
                                                                      const std::string& what);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_SITE_ADMISSION_H_
