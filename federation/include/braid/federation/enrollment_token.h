// One-time enrollment tokens. The coordinator keeps each site's token in
// that Site's Secret; a site presents it once, in Enroll. Only digests are
// compared, in constant time, so neither a token's length nor a matching
// prefix leaks through timing.
#ifndef BRAID_FEDERATION_ENROLLMENT_TOKEN_H_
#define BRAID_FEDERATION_ENROLLMENT_TOKEN_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace braid::federation {

// The longest token Enroll accepts, in bytes.
inline constexpr size_t kMaxTokenBytes = 256;

// A new token: 32 random bytes (OpenSSL's CSPRNG), base64url without
// padding (43 characters). Internal if the CSPRNG fails.
absl::StatusOr<std::string> NewEnrollmentToken();

// SHA-256 of `token`, 32 raw bytes.
std::string TokenDigest(std::string_view token);

// Whether two digests are equal, in time independent of where they differ.
// False when their sizes differ.
bool DigestsEqual(std::string_view a, std::string_view b);

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_ENROLLMENT_TOKEN_H_
