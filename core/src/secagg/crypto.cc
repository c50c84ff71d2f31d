#include "crypto.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "braid/core/log.h"
#include "braid/core/vector_clones.h"

namespace braid::secagg {
namespace {

void PutU64(uint64_t v, unsigned char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}

}  // namespace

absl::Status EnsureSodium() {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  return absl::OkStatus();
}

X25519KeyPair MaskingKeyFromScalar(const Scalar& s) {
  static constexpr char kLabel[] = "braid/secagg/sk";
  X25519KeyPair kp;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kLabel), sizeof(kLabel));
  crypto_generichash_update(&st, s.data(), s.size());
  crypto_generichash_final(&st, kp.secret_key.data(), 32);
  crypto_scalarmult_base(kp.public_key.data(), kp.secret_key.data());
  return kp;
}

X25519KeyPair NewBoxKeyPair() {
  X25519KeyPair kp;
  crypto_box_keypair(kp.public_key.data(), kp.secret_key.data());
  return kp;
}

absl::StatusOr<Key32> PairSeed(const X25519KeyPair& mine, const Key32& their_pk,
                               uint64_t round_id) {
  unsigned char shared[crypto_scalarmult_BYTES];
  if (crypto_scalarmult(shared, mine.secret_key.data(), their_pk.data()) != 0) {
    return absl::InvalidArgumentError("secagg: a peer's masking public key is a low-order point");
  }
  const Key32& lo = std::min(mine.public_key, their_pk);
  const Key32& hi = std::max(mine.public_key, their_pk);
  unsigned char round[8];
  PutU64(round_id, round);
  Key32 seed;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, shared, sizeof(shared));
  crypto_generichash_update(&st, lo.data(), lo.size());
  crypto_generichash_update(&st, hi.data(), hi.size());
  crypto_generichash_update(&st, round, sizeof(round));
  crypto_generichash_final(&st, seed.data(), seed.size());
  sodium_memzero(shared, sizeof(shared));
  return seed;
}

Key32 SelfSeed(const Scalar& b, uint64_t round_id) {
  static constexpr char kLabel[] = "braid/secagg/b";
  unsigned char round[8];
  PutU64(round_id, round);
  Key32 seed;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kLabel), sizeof(kLabel));
  crypto_generichash_update(&st, b.data(), b.size());
  crypto_generichash_update(&st, round, sizeof(round));
  crypto_generichash_final(&st, seed.data(), seed.size());
  return seed;
}

// -O3 (core/CMakeLists.txt) and __restrict let GCC turn the loops into
// vector adds, 8 words at a time in the AVX2 copy.
BRAID_VECTOR_CLONES void AddWords(int sign, uint32_t* __restrict acc,
                                  const uint32_t* __restrict add, size_t words) {
  if (sign > 0) {
    for (size_t i = 0; i < words; ++i) acc[i] += add[i];
  } else {
    for (size_t i = 0; i < words; ++i) acc[i] -= add[i];
  }
}

namespace {

constexpr size_t kChunkWords = 4096;  // 16 KiB: a whole number of AES blocks

// The PRG: AES-128-CTR keyed by the seed's first 16 bytes (BLAKE2b output,
// so any 16 of its bytes are a uniform key), the 128-bit big-endian counter
// starting at 0 (every seed is used for one mask only). The seeds come from
// X25519, about 128-bit secure, so a 256-bit PRG key would add no strength;
// AES-128 runs 10 rounds instead of 14. AES-NI makes it several times faster
// than ChaCha20 in software (docs/benchmarks.md, section (d)'s reading).
//
// One stream per seed, keyed once: OpenSSL 3 fetches the cipher and expands
// the key on every EVP_EncryptInit_ex, which costs as much as encrypting a
// few KiB, so the key is never set up per chunk.
class MaskStream {
 public:
  // The keystream of `seed` from 16-byte block `block` on.
  MaskStream(const Key32& seed, uint64_t block) : ctx_(EVP_CIPHER_CTX_new()) {
    unsigned char iv[16] = {0};
    for (int i = 0; i < 8; ++i) iv[15 - i] = static_cast<unsigned char>(block >> (8 * i));
    ok_ = ctx_ != nullptr &&
          EVP_EncryptInit_ex(ctx_, EVP_aes_128_ctr(), nullptr, seed.data(), iv) == 1;
  }
  ~MaskStream() { EVP_CIPHER_CTX_free(ctx_); }
  MaskStream(MaskStream&& other) noexcept : ctx_(other.ctx_), ok_(other.ok_) {
    other.ctx_ = nullptr;
  }
  MaskStream(const MaskStream&) = delete;
  MaskStream& operator=(const MaskStream&) = delete;
  MaskStream& operator=(MaskStream&&) = delete;

  // Writes the next `bytes` (at most kChunkWords * 4) of the keystream into
  // out. Aborts if OpenSSL fails: its AES-CTR does not on valid arguments,
  // and a silently unmasked or wrongly masked vector would be worse than a
  // stop.
  void Next(unsigned char* out, size_t bytes) {
    static const std::array<unsigned char, kChunkWords * 4> kZeros{};  // encrypted: the keystream
    int len = 0;
    if (!ok_ || bytes > kZeros.size() ||
        EVP_EncryptUpdate(ctx_, out, &len, kZeros.data(), static_cast<int>(bytes)) != 1 ||
        static_cast<size_t>(len) != bytes) {
      LogError("secagg: AES-128-CTR mask expansion failed");
      std::abort();
    }
  }

 private:
  EVP_CIPHER_CTX* ctx_;
  bool ok_ = false;
};

// Adds sign * (the next `words` words of `stream`) to acc[0, words); buf is
// scratch for the keystream.
void AddNextMask(MaskStream& stream, int sign, uint32_t* acc, size_t words, uint32_t* buf) {
  stream.Next(reinterpret_cast<unsigned char*>(buf), words * sizeof(uint32_t));
  // The keystream is read as little-endian words (x86 and arm64 are).
  AddWords(sign, acc, buf, words);
}

// Adds every seed's mask to acc[begin, end); `begin` is a multiple of 4
// words (one AES block). Chunk by chunk, all seeds per chunk, so that acc's
// chunk stays in cache.
void AddMasksRange(absl::Span<const SignedSeed> seeds, uint32_t* acc, size_t begin, size_t end) {
  alignas(64) uint32_t buf[kChunkWords];
  std::vector<MaskStream> streams;
  streams.reserve(seeds.size());
  for (const SignedSeed& s : seeds) streams.emplace_back(s.seed, begin / 4);
  for (size_t start = begin; start < end; start += kChunkWords) {
    const size_t words = std::min(kChunkWords, end - start);
    for (size_t j = 0; j < seeds.size(); ++j) {
      AddNextMask(streams[j], seeds[j].sign, acc + start, words, buf);
    }
  }
}

}  // namespace

void AddMask(const Key32& seed, int sign, absl::Span<uint32_t> acc) {
  const SignedSeed one{seed, sign};
  AddMasksRange(absl::MakeConstSpan(&one, 1), acc.data(), 0, acc.size());
}

void AddMasks(absl::Span<const SignedSeed> seeds, absl::Span<uint32_t> acc, int threads) {
  const size_t n = acc.size();
  const size_t chunks = (n + kChunkWords - 1) / kChunkWords;
  const size_t parts = std::max<size_t>(1, std::min<size_t>(threads, chunks));
  if (parts == 1) {
    AddMasksRange(seeds, acc.data(), 0, n);
    return;
  }
  std::vector<std::thread> workers;
  const size_t per = (chunks + parts - 1) / parts * kChunkWords;
  for (size_t p = 0; p < parts; ++p) {
    const size_t begin = p * per, end = std::min(n, begin + per);
    if (begin >= end) break;
    workers.emplace_back(AddMasksRange, seeds, acc.data(), begin, end);
  }
  for (auto& w : workers) w.join();
}

absl::StatusOr<Key32> BoxKey(const Key32& their_pk, const Key32& my_sk) {
  Key32 key;
  if (crypto_box_beforenm(key.data(), their_pk.data(), my_sk.data()) != 0) {
    return absl::InvalidArgumentError(
        "secagg: a peer's encryption public key is a low-order point");
  }
  return key;
}

std::string BoxSeal(absl::string_view plaintext, const Key32& box_key) {
  std::string out(crypto_box_NONCEBYTES + crypto_box_MACBYTES + plaintext.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(o, crypto_box_NONCEBYTES);
  crypto_box_easy_afternm(o + crypto_box_NONCEBYTES,
                          reinterpret_cast<const unsigned char*>(plaintext.data()),
                          plaintext.size(), o, box_key.data());
  return out;
}

absl::StatusOr<std::string> BoxOpen(absl::string_view ciphertext, const Key32& box_key) {
  if (ciphertext.size() < crypto_box_NONCEBYTES + crypto_box_MACBYTES) {
    return absl::PermissionDeniedError("secagg: encrypted share is too short");
  }
  const auto* c = reinterpret_cast<const unsigned char*>(ciphertext.data());
  std::string out(ciphertext.size() - crypto_box_NONCEBYTES - crypto_box_MACBYTES, '\0');
  if (crypto_box_open_easy_afternm(reinterpret_cast<unsigned char*>(out.data()),
                                   c + crypto_box_NONCEBYTES,
                                   ciphertext.size() - crypto_box_NONCEBYTES, c,
                                   box_key.data()) != 0) {
    return absl::PermissionDeniedError(
        "secagg: an encrypted share failed authentication (altered, or not from its sender)");
  }
  return out;
}

}  // namespace braid::secagg
