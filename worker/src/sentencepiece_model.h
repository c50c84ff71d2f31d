// Internal to the tokenizers: libsentencepiece behind plain C++ types.
// sentencepiece_processor.h declares its own `absl::string_view` (an alias
// of std::string_view), which clashes with Abseil's, so only
// sentencepiece_model.cc includes it and this header uses std types only.
#ifndef BRAID_WORKER_SRC_SENTENCEPIECE_MODEL_H_
#define BRAID_WORKER_SRC_SENTENCEPIECE_MODEL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace braid::worker::internal {

// A loaded SentencePiece model. Const methods are thread-safe (the library's
// processor is immutable after loading).
class SentencePieceModel {
 public:
  // Parses a serialized ModelProto; on failure returns null and sets *error.
  static std::unique_ptr<SentencePieceModel> Load(std::string_view serialized,
                                                  std::string* error);
  ~SentencePieceModel();

  // False with *error set when the library fails.
  bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const;
  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const;

  int size() const;
  int bos_id() const;
  int eos_id() const;
  int pad_id() const;
  int unk_id() const;
  bool IsControl(int id) const;
  int PieceToId(std::string_view piece) const;
  std::string IdToPiece(int id) const;

 private:
  SentencePieceModel();
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace braid::worker::internal

#endif  // BRAID_WORKER_SRC_SENTENCEPIECE_MODEL_H_
