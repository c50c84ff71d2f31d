#include "braid/aggregator/malloc_tuning.h"

#include <malloc.h>

namespace braid::aggregator {

void TuneMallocForFrames() {
  // Chunk-sized buffers (1 MiB) come and go on many gRPC threads. Served
  // by mmap, each would be faulted in and zeroed page by page on every
  // message, a large share of the aggregator's CPU while ingesting, so the
  // threshold is fixed above them: they are reused from the heap. Fixed,
  // not glibc's adaptive one, which would also grow for the model-sized
  // buffers; and at most two arenas, so freed chunks are not spread over
  // (and kept by) one arena per thread. Model-sized buffers stay mmapped.
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  // Fixing the mmap threshold also fixes glibc's trim threshold at 128 KiB:
  // the freed chunks at the heap's top go back to the kernel and are
  // faulted in again for the next frames. At most 4 MiB per arena is kept
  // instead, which costs little memory and saves that CPU (the figures:
  // docs/benchmarks.md (b)).
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
  mallopt(M_ARENA_MAX, 2);
}

}  // namespace braid::aggregator
