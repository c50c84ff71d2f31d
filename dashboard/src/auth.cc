#include "braid/dashboard/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "absl/strings/escaping.h"

namespace braid::dashboard {
namespace {

class LocalTokenAuthorizer final : public DashboardAuthorizer {
 public:
  LocalTokenAuthorizer(std::string token, std::string user)
      : token_(std::move(token)), user_(std::move(user)) {}
  LocalTokenAuthorizer(const LocalTokenAuthorizer&) = delete;
  LocalTokenAuthorizer& operator=(const LocalTokenAuthorizer&) = delete;

  absl::StatusOr<Caller> Authenticate(const std::string& token) override {
    if (token_.empty() || token.size() != token_.size() ||
        CRYPTO_memcmp(token.data(), token_.data(), token_.size()) != 0) {
      return absl::UnauthenticatedError(
          "this dashboard needs the token in the URL `braid run` printed (dashboard: "
          "http://HOST:PORT/#token=...); open that URL");
    }
    return Caller{user_, "", {}};
  }
  absl::StatusOr<bool> Allowed(const Caller&, const Access&) override { return true; }

 private:
  const std::string token_;
  const std::string user_;
};

}  // namespace

absl::StatusOr<std::string> NewDashboardToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return absl::InternalError("cannot make the dashboard's token: no randomness (RAND_bytes)");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

std::unique_ptr<DashboardAuthorizer> NewLocalTokenAuthorizer(std::string token, std::string user) {
  return std::make_unique<LocalTokenAuthorizer>(std::move(token), std::move(user));
}

}  // namespace braid::dashboard
