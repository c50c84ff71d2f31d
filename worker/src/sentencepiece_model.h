// Internal to the tokenizers: libsentencepiece behind plain C++ types.
//
// Debian's libsentencepiece carries its own copy of protobuf-lite and
// exports its symbols; in a process that also loads libprotobuf (gRPC needs
// it) the two capture each other's calls and the process crashes, at
// start-up or when a model is parsed, depending on load order. So the
// library lives in a plugin, libbraid_sentencepiece.so (sentencepiece_plugin.cc),
// loaded on first use with RTLD_LOCAL | RTLD_DEEPBIND: its protobuf calls
// resolve inside it, and the process's libprotobuf never sees its symbols.
// The plugin is looked for in $BRAID_SENTENCEPIECE_PLUGIN, else beside the
// running executable.
//
// sentencepiece_processor.h also declares its own `absl::string_view`, which
// clashes with Abseil's; only the plugin includes it.
#ifndef BRAID_WORKER_SRC_SENTENCEPIECE_MODEL_H_
#define BRAID_WORKER_SRC_SENTENCEPIECE_MODEL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace braid::worker::internal {

// What the plugin implements (its factory: braid_sentencepiece_load).
class SentencePieceBackend {
 public:
  virtual ~SentencePieceBackend() = default;
  virtual bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const = 0;
  virtual bool Decode(const std::vector<int>& ids, std::string* text,
                      std::string* error) const = 0;
  virtual int size() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual int pad_id() const = 0;
  virtual int unk_id() const = 0;
  virtual bool IsControl(int id) const = 0;
  virtual int PieceToId(std::string_view piece) const = 0;
  virtual std::string IdToPiece(int id) const = 0;
};

// The plugin's factory: a loaded model, or null with *error set.
using SentencePieceLoadFn = SentencePieceBackend* (*)(const char* serialized, size_t size,
                                                      std::string* error);
inline constexpr char kSentencePieceLoadSymbol[] = "braid_sentencepiece_load";

// A loaded SentencePiece model. Const methods are thread-safe (the library's
// processor is immutable after loading).
class SentencePieceModel {
 public:
  // Parses a serialized ModelProto; on failure (or when the plugin cannot
  // be loaded, saying where it was looked for) returns null and sets *error.
  static std::unique_ptr<SentencePieceModel> Load(std::string_view serialized,
                                                  std::string* error);

  bool Encode(std::string_view text, std::vector<int>* ids, std::string* error) const {
    return sp_->Encode(text, ids, error);
  }
  bool Decode(const std::vector<int>& ids, std::string* text, std::string* error) const {
    return sp_->Decode(ids, text, error);
  }
  int size() const { return sp_->size(); }
  int bos_id() const { return sp_->bos_id(); }
  int eos_id() const { return sp_->eos_id(); }
  int pad_id() const { return sp_->pad_id(); }
  int unk_id() const { return sp_->unk_id(); }
  bool IsControl(int id) const { return sp_->IsControl(id); }
  int PieceToId(std::string_view piece) const { return sp_->PieceToId(piece); }
  std::string IdToPiece(int id) const { return sp_->IdToPiece(id); }

 private:
  explicit SentencePieceModel(std::unique_ptr<SentencePieceBackend> sp) : sp_(std::move(sp)) {}
  std::unique_ptr<SentencePieceBackend> sp_;
};

}  // namespace braid::worker::internal

#endif  // BRAID_WORKER_SRC_SENTENCEPIECE_MODEL_H_
