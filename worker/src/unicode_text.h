// Internal to the tokenizers: UTF-8 helpers and GPT-2's byte <-> character
// table (every byte gets a printable character, so byte-level BPE vocabularies
// are strings).
#ifndef BRAID_WORKER_SRC_UNICODE_TEXT_H_
#define BRAID_WORKER_SRC_UNICODE_TEXT_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace braid::worker::internal {

// Bytes of the UTF-8 character starting with `lead` (1..4); 1 for a byte
// that cannot start one. Only meaningful on valid UTF-8.
size_t Utf8CharLength(unsigned char lead);

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or values above
// U+10FFFF).
bool IsValidUtf8(std::string_view s);

// `bytes` as UTF-8 text, each maximal ill-formed subsequence replaced by
// U+FFFD (as Rust's String::from_utf8_lossy, which Hugging Face uses).
std::string Utf8Lossy(std::string_view bytes);

// The UTF-8 encoding of code point `cp`.
std::string EncodeUtf8(char32_t cp);

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the
// others to U+0100 onwards. Built once; thread-safe.
const std::array<std::string, 256>& ByteToUnicode();
// The byte of one such character (as UTF-8), or -1 when it is none.
int UnicodeToByte(std::string_view utf8_char);

// Canonical composition (NFC) with utf8proc. InvalidArgument on bad input.
absl::StatusOr<std::string> NormalizeNfc(std::string_view s);

}  // namespace braid::worker::internal

#endif  // BRAID_WORKER_SRC_UNICODE_TEXT_H_
