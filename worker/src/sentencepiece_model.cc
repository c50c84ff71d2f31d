#include "sentencepiece_model.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace braid::worker::internal {
namespace {

#if defined(__SANITIZE_ADDRESS__)
#define BRAID_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BRAID_ASAN 1
#endif
#endif

// The plugin's path: $BRAID_SENTENCEPIECE_PLUGIN, else beside the executable.
std::string PluginPath() {
  if (const char* env = std::getenv("BRAID_SENTENCEPIECE_PLUGIN"); env != nullptr && *env) {
    return env;
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path() / "libbraid_sentencepiece.so").string();
}

// The plugin's factory, loaded once; null with *error when it cannot be.
SentencePieceLoadFn Factory(std::string* error) {
  static std::string load_error;
  static SentencePieceLoadFn factory = [] () -> SentencePieceLoadFn {
    const std::string path = PluginPath();
    int flags = RTLD_NOW | RTLD_LOCAL;
#ifndef BRAID_ASAN
    // AddressSanitizer refuses RTLD_DEEPBIND: in sanitizer builds the
    // plugin meets libprotobuf and fails to load (with an error, not a
    // crash), so scripts/sanitize.sh leaves the SentencePiece tests to the
    // normal build.
    flags |= RTLD_DEEPBIND;
#endif
    void* handle = dlopen(path.c_str(), flags);  // kept for the process's life
    if (handle == nullptr) {
      const char* why = dlerror();
      load_error = "cannot load the SentencePiece plugin " + path + ": " + (why ? why : "?") +
                   " (build target braid_sentencepiece, or set BRAID_SENTENCEPIECE_PLUGIN)";
      return nullptr;
    }
    auto fn = reinterpret_cast<SentencePieceLoadFn>(dlsym(handle, kSentencePieceLoadSymbol));
    if (fn == nullptr) load_error = path + " has no " + kSentencePieceLoadSymbol;
    return fn;
  }();
  if (factory == nullptr) *error = load_error;
  return factory;
}

}  // namespace

std::unique_ptr<SentencePieceModel> SentencePieceModel::Load(std::string_view serialized,
                                                             std::string* error) {
  SentencePieceLoadFn factory = Factory(error);
  if (factory == nullptr) return nullptr;
  SentencePieceBackend* backend = factory(serialized.data(), serialized.size(), error);
  if (backend == nullptr) return nullptr;
  return std::unique_ptr<SentencePieceModel>(
      new SentencePieceModel(std::unique_ptr<SentencePieceBackend>(backend)));
}

}  // namespace braid::worker::internal
