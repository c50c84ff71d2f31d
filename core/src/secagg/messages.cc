#include "braid/core/secagg/messages.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "braid/core/status_macros.h"

namespace braid::secagg {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire format is little-endian");

constexpr char kMagic[3] = {'B', 'S', 'A'};
constexpr uint8_t kVersion = 1;
enum Kind : uint8_t {
  kPublicKeys = 1,
  kKeyDirectory,
  kEncryptedShares,
  kForwardedShares,
  kMaskedInput,
  kUnmaskRequest,
  kUnmaskResponse,
};

class Writer {
 public:
  explicit Writer(Kind kind) {
    out_.append(kMagic, 3);
    out_.push_back(static_cast<char>(kVersion));
    out_.push_back(static_cast<char>(kind));
  }
  void U32(uint32_t v) { out_.append(reinterpret_cast<const char*>(&v), 4); }
  void Key(const Bytes32& k) { out_.append(reinterpret_cast<const char*>(k.data()), k.size()); }
  void Blob(const std::string& s) {
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void Words(const std::vector<uint32_t>& v) {
    U32(static_cast<uint32_t>(v.size()));
    if (!v.empty()) out_.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  }
  void Ids(const std::vector<ClientId>& v) { Words(v); }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(absl::string_view in, const char* what) : in_(in), what_(what) {}
  absl::Status Header(Kind kind) {
    if (in_.size() < 5 || std::memcmp(in_.data(), kMagic, 3) != 0) {
      return Fail("not a secure-aggregation message (bad magic)");
    }
    if (static_cast<uint8_t>(in_[3]) != kVersion) {
      return Fail(absl::StrFormat("unsupported version %d", static_cast<uint8_t>(in_[3])));
    }
    if (static_cast<uint8_t>(in_[4]) != kind) {
      return Fail(absl::StrFormat("wrong message kind %d", static_cast<uint8_t>(in_[4])));
    }
    pos_ = 5;
    return absl::OkStatus();
  }
  absl::Status U32(uint32_t* v) {
    if (in_.size() - pos_ < 4) return Fail("truncated");
    std::memcpy(v, in_.data() + pos_, 4);
    pos_ += 4;
    return absl::OkStatus();
  }
  absl::Status Key(Bytes32* k) {
    if (in_.size() - pos_ < k->size()) return Fail("truncated");
    std::memcpy(k->data(), in_.data() + pos_, k->size());
    pos_ += k->size();
    return absl::OkStatus();
  }
  absl::Status Blob(std::string* s) {
    uint32_t len = 0;
    if (absl::Status st = U32(&len); !st.ok()) return st;
    if (in_.size() - pos_ < len) return Fail("truncated (blob length beyond the message)");
    s->assign(in_.data() + pos_, len);
    pos_ += len;
    return absl::OkStatus();
  }
  absl::Status Words(std::vector<uint32_t>* v) {
    uint32_t count = 0;
    if (absl::Status st = U32(&count); !st.ok()) return st;
    if ((in_.size() - pos_) / 4 < count) return Fail("truncated (count beyond the message)");
    v->resize(count);
    if (count > 0) std::memcpy(v->data(), in_.data() + pos_, static_cast<size_t>(count) * 4);
    pos_ += static_cast<size_t>(count) * 4;
    return absl::OkStatus();
  }
  // A count of items at least `min_item_bytes` each.
  absl::Status Count(uint32_t* count, size_t min_item_bytes) {
    if (absl::Status st = U32(count); !st.ok()) return st;
    if ((in_.size() - pos_) / min_item_bytes < *count) {
      return Fail("truncated (count beyond the message)");
    }
    return absl::OkStatus();
  }
  absl::Status End() {
    if (pos_ != in_.size()) return Fail("trailing bytes");
    return absl::OkStatus();
  }

 private:
  absl::Status Fail(const std::string& why) {
    return absl::InvalidArgumentError(absl::StrFormat("secagg %s: %s", what_, why));
  }
  absl::string_view in_;
  const char* what_;
  size_t pos_ = 0;
};


void PutShares(Writer& w, const std::vector<EncryptedShare>& shares) {
  w.U32(static_cast<uint32_t>(shares.size()));
  for (const auto& s : shares) {
    w.U32(s.from);
    w.U32(s.to);
    w.Blob(s.ciphertext);
  }
}

absl::Status GetShares(Reader& r, std::vector<EncryptedShare>* shares) {
  uint32_t count = 0;
  BRAID_RETURN_IF_ERROR(r.Count(&count, 12));
  shares->resize(count);
  for (auto& s : *shares) {
    BRAID_RETURN_IF_ERROR(r.U32(&s.from));
    BRAID_RETURN_IF_ERROR(r.U32(&s.to));
    BRAID_RETURN_IF_ERROR(r.Blob(&s.ciphertext));
  }
  return absl::OkStatus();
}

void PutRevealed(Writer& w, const std::vector<RevealedShare>& v) {
  w.U32(static_cast<uint32_t>(v.size()));
  for (const auto& s : v) {
    w.U32(s.owner);
    w.Key(s.share);
  }
}

absl::Status GetRevealed(Reader& r, std::vector<RevealedShare>* v) {
  uint32_t count = 0;
  BRAID_RETURN_IF_ERROR(r.Count(&count, 36));
  v->resize(count);
  for (auto& s : *v) {
    BRAID_RETURN_IF_ERROR(r.U32(&s.owner));
    BRAID_RETURN_IF_ERROR(r.Key(&s.share));
  }
  return absl::OkStatus();
}

void PutKeys(Writer& w, const PublicKeys& k) {
  w.U32(k.id);
  w.Key(k.encryption_key);
  w.Key(k.masking_key);
}

absl::Status GetKeys(Reader& r, PublicKeys* k) {
  BRAID_RETURN_IF_ERROR(r.U32(&k->id));
  BRAID_RETURN_IF_ERROR(r.Key(&k->encryption_key));
  return r.Key(&k->masking_key);
}

}  // namespace

std::string Encode(const PublicKeys& m) {
  Writer w(kPublicKeys);
  PutKeys(w, m);
  return w.Take();
}

std::string Encode(const KeyDirectory& m) {
  Writer w(kKeyDirectory);
  w.U32(static_cast<uint32_t>(m.keys.size()));
  for (const auto& k : m.keys) PutKeys(w, k);
  return w.Take();
}

std::string Encode(const EncryptedShares& m) {
  Writer w(kEncryptedShares);
  w.U32(m.from);
  PutShares(w, m.shares);
  return w.Take();
}

std::string Encode(const ForwardedShares& m) {
  Writer w(kForwardedShares);
  w.U32(m.to);
  PutShares(w, m.shares);
  return w.Take();
}

std::string Encode(const MaskedInput& m) {
  Writer w(kMaskedInput);
  w.U32(m.from);
  w.Words(m.values);
  return w.Take();
}

std::string Encode(const UnmaskRequest& m) {
  Writer w(kUnmaskRequest);
  w.Ids(m.survivors);
  w.Ids(m.dropped);
  return w.Take();
}

std::string Encode(const UnmaskResponse& m) {
  Writer w(kUnmaskResponse);
  w.U32(m.from);
  PutRevealed(w, m.self_mask_shares);
  PutRevealed(w, m.key_shares);
  return w.Take();
}

absl::StatusOr<PublicKeys> DecodePublicKeys(absl::string_view bytes) {
  Reader r(bytes, "PublicKeys");
  PublicKeys m;
  BRAID_RETURN_IF_ERROR(r.Header(kPublicKeys));
  BRAID_RETURN_IF_ERROR(GetKeys(r, &m));
  BRAID_RETURN_IF_ERROR(r.End());
  return m;
}

absl::StatusOr<KeyDirectory> DecodeKeyDirectory(absl::string_view bytes) {
  Reader r(bytes, "KeyDirectory");
  KeyDirectory m;
  BRAID_RETURN_IF_ERROR(r.Header(kKeyDirectory));
  uint32_t count = 0;
  BRAID_RETURN_IF_ERROR(r.Count(&count, 68));
  m.keys.resize(count);
  for (auto& k : m.keys) BRAID_RETURN_IF_ERROR(GetKeys(r, &k));
  BRAID_RETURN_IF_ERROR(r.End());
  return m;
}

absl::StatusOr<EncryptedShares> DecodeEncryptedShares(absl::string_view bytes) {
  Reader r(bytes, "EncryptedShares");
  EncryptedShares m;
  BRAID_RETURN_IF_ERROR(r.Header(kEncryptedShares));
  BRAID_RETURN_IF_ERROR(r.U32(&m.from));
  BRAID_RETURN_IF_ERROR(GetShares(r, &m.shares));
  BRAID_RETURN_IF_ERROR(r.End());
  return m;
}

absl::StatusOr<ForwardedShares> DecodeForwardedShares(absl::string_view bytes) {
  Reader r(bytes, "ForwardedShares");
  ForwardedShares m;
  BRAID_RETURN_IF_ERROR(r.Header(kForwardedShares));
  BRAID_RETURN_IF_ERROR(r.U32(&m.to));
  BRAID_RETURN_IF_ERROR(GetShares(r, &m.shares));
  BRAID_RETURN_IF_ERROR(r.End());
  return m;
}

absl::StatusOr<MaskedInput> DecodeMaskedInput(absl::string_view bytes) {
  Reader r(bytes, "MaskedInput");
  MaskedInput m;
  BRAID_RETURN_IF_ERROR(r.Header(kMaskedInput));
  BRAID_RETURN_IF_ERROR(r.U32(&m.from));
  BRAID_RETURN_IF_ERROR(r.Words(&m.values));
  BRAID_RETURN_IF_ERROR(r.End());
  return m;
}

absl::StatusOr<UnmaskRequest> DecodeUnmaskRequest(absl::string_view bytes) {
  Reader r(bytes, "UnmaskRequest");
  UnmaskRequest m;
  BRAID_RETURN_IF_ERROR(r.Header(kUnmaskRequest));
  BRAID_RETURN_IF_ERROR(r.Words(&m.survivors));
  BRAID_RETURN_IF_ERROR(r.Words(&m.dropped));
  BRAID_RETURN_IF_ERROR(r.End());
  return m;
}

absl::StatusOr<UnmaskResponse> DecodeUnmaskResponse(absl::string_view bytes) {
  Reader r(bytes, "UnmaskResponse");
  UnmaskResponse m;
  BRAID_RETURN_IF_ERROR(r.Header(kUnmaskResponse));
  BRAID_RETURN_IF_ERROR(r.U32(&m.from));
  BRAID_RETURN_IF_ERROR(GetRevealed(r, &m.self_mask_shares));
  BRAID_RETURN_IF_ERROR(GetRevealed(r, &m.key_shares));
  BRAID_RETURN_IF_ERROR(r.End());
  return m;
}

}  // namespace braid::secagg
