// libbraid_sentencepiece.so: libsentencepiece behind SentencePieceBackend,
// loaded in isolation (see sentencepiece_model.h for why).
#include <sentencepiece_processor.h>

#include "sentencepiece_model.h"

namespace braid::worker::internal {
namespace {

class Processor final : public SentencePieceBackend {
 public:
  bool Load(const char* data, size_t size, std::string* error) {
    const auto status = sp_.LoadFromSerializedProto(std::string_view(data, size));
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }
  bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const override {
    const auto status = sp_.Encode(text, ids);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }
  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const override {
    const auto status = sp_.Decode(ids, text);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }
  int size() const override { return sp_.GetPieceSize(); }
  int bos_id() const override { return sp_.bos_id(); }
  int eos_id() const override { return sp_.eos_id(); }
  int pad_id() const override { return sp_.pad_id(); }
  int unk_id() const override { return sp_.unk_id(); }
  bool IsControl(int id) const override { return sp_.IsControl(id); }
  int PieceToId(std::string_view piece) const override { return sp_.PieceToId(piece); }
  std::string IdToPiece(int id) const override { return sp_.IdToPiece(id); }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace
}  // namespace braid::worker::internal

extern "C" __attribute__((visibility("default")))
braid::worker::internal::SentencePieceBackend* braid_sentencepiece_load(const char* serialized,
                                                                        size_t size,
                                                                        std::string* error) {
  auto* p = new braid::worker::internal::Processor();
  if (!p->Load(serialized, size, error)) {
    delete p;
    return nullptr;
  }
  return p;
}
