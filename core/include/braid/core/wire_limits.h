// Sizes every speaker of proto/braid/v1 agrees on.
#ifndef BRAID_CORE_WIRE_LIMITS_H_
#define BRAID_CORE_WIRE_LIMITS_H_

#include <cstddef>

namespace braid {

// Payload bytes in one Chunk: a whole number of float32 values, so that with
// its framing a message stays under 1 MiB.
inline constexpr size_t kChunkDataBytes = (1 << 20) - 64;
// The largest message either side accepts; anything bigger is refused by
// gRPC itself before it is parsed.
inline constexpr int kMaxMessageBytes = (1 << 20) + 4096;

}  // namespace braid

#endif  // BRAID_CORE_WIRE_LIMITS_H_
