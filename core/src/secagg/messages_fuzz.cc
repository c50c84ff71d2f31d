// libFuzzer target: the secure-aggregation message decoders on arbitrary
// bytes. Every decoder sees every input (the kind byte selects at most one
// that can accept it); a message a decoder accepts must encode back to
// exactly the input bytes, since the encoding is canonical.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "braid/core/secagg/messages.h"

namespace {

template <typename Decode>
void CheckRoundTrip(absl::string_view bytes, Decode decode) {
  const auto message = decode(bytes);
  if (!message.ok()) return;
  if (braid::secagg::Encode(*message) != std::string(bytes)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace sa = braid::secagg;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckRoundTrip(bytes, sa::DecodePublicKeys);
  CheckRoundTrip(bytes, sa::DecodeKeyDirectory);
  CheckRoundTrip(bytes, sa::DecodeEncryptedShares);
  CheckRoundTrip(bytes, sa::DecodeForwardedShares);
  CheckRoundTrip(bytes, sa::DecodeMaskedInput);
  CheckRoundTrip(bytes, sa::DecodeUnmaskRequest);
  CheckRoundTrip(bytes, sa::DecodeUnmaskResponse);
  return 0;
}
