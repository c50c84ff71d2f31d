// libFuzzer target: the tokenizer.json reader on arbitrary bytes. A file it
// accepts must encode a fixed multilingual sample without crashing, and
// decoding the ids must not crash either (equality with Hugging Face is the
// reference test's job, not this one's).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "braid/worker/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader takes a path; a tmpfs file per process keeps it cheap.
  static const std::string path = "/dev/shm/braid-tokenizer-fuzz-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto tokenizer = braid::worker::LoadHfTokenizerJson(path);
  if (!tokenizer.ok()) return 0;
  auto ids = (*tokenizer)->Encode("Grüße, 世界! def f(x):\n\treturn x  🙂 <|endoftext|>", true);
  if (ids.ok()) (void)(*tokenizer)->Decode(*ids, false);
  return 0;
}
