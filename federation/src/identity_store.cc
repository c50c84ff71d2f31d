#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "braid/core/file_io.h"
#include "braid/core/status_macros.h"
#include "braid/federation/identity_store.h"

namespace braid::federation {
namespace {

constexpr uint64_t kMaxPemBytes = 64 << 10;

class FileIdentityStore final : public IdentityStore {
 public:
  explicit FileIdentityStore(std::string dir) : dir_(std::move(dir)) {}

  absl::StatusOr<std::optional<SiteIdentity>> Load() override {
    std::error_code ec;
    if (!std::filesystem::exists(Path("site.key"), ec)) return std::nullopt;
    SiteIdentity id;
    BRAID_ASSIGN_OR_RETURN(id.key_pem, ReadSmallFile(Path("site.key"), kMaxPemBytes));
    BRAID_ASSIGN_OR_RETURN(id.cert_pem, ReadSmallFile(Path("site.crt"), kMaxPemBytes));
    BRAID_ASSIGN_OR_RETURN(id.ca_pem, ReadSmallFile(Path("ca.crt"), kMaxPemBytes));
    return std::optional<SiteIdentity>(std::move(id));
  }

  // The key last: Load treats its presence as "an identity exists", and
  // reads the three files; a crash between the renames leaves a pair the
  // link finds mismatched (KeyMatchesCert) and enrolls again for.
  absl::Status Save(const SiteIdentity& identity) override {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir_, ": ", ec.message()));
    ::chmod(dir_.c_str(), 0700);
    BRAID_RETURN_IF_ERROR(WriteFileAtomically(Path("ca.crt"), {identity.ca_pem}));
    BRAID_RETURN_IF_ERROR(WriteFileAtomically(Path("site.crt"), {identity.cert_pem}));
    BRAID_RETURN_IF_ERROR(WriteFileAtomically(Path("site.key"), {identity.key_pem}));
    if (::chmod(Path("site.key").c_str(), 0600) != 0) {
      return absl::InternalError(absl::StrCat("cannot make ", Path("site.key"), " private"));
    }
    return absl::OkStatus();
  }

 private:
  std::string Path(const char* name) const { return absl::StrCat(dir_, "/", name); }
  const std::string dir_;
};

}  // namespace

std::unique_ptr<IdentityStore> NewFileIdentityStore(const std::string& dir) {
  return std::make_unique<FileIdentityStore>(dir);
}

}  // namespace braid::federation
