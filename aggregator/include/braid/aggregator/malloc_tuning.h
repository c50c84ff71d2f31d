// glibc malloc settings for a process that receives model updates as a
// stream of 1 MiB frames on many gRPC threads.
#ifndef BRAID_AGGREGATOR_MALLOC_TUNING_H_
#define BRAID_AGGREGATOR_MALLOC_TUNING_H_

namespace braid::aggregator {

// Call first in main(), before any thread starts. braid-aggregator does;
// so does the bare server of bench/grpc_ceiling_bench, so that its ceiling
// is the transport's and not the allocator's.
void TuneMallocForFrames();

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_MALLOC_TUNING_H_
