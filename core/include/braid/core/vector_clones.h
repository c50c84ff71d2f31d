// BRAID_VECTOR_CLONES marks a function whose loops run over every element of
// a model-sized vector (folding updates, masking, quantizing). On x86-64 the
// compiler builds it twice, for AVX2 and for the baseline target, and the
// loader picks the AVX2 copy where the CPU has it (GCC/Clang target_clones,
// an ifunc): 32-byte vectors where the baseline has 16, and one binary for
// every x86-64 machine.
//
// Contract for the functions that use it: their results do not depend on
// which copy runs. Integer loops are exact; float reductions keep a fixed
// set of independent lanes, which vector width does not reorder; and "avx2"
// does not enable FMA, so no multiply-add is fused in one copy only.
#ifndef BRAID_CORE_VECTOR_CLONES_H_
#define BRAID_CORE_VECTOR_CLONES_H_

// A multiversioned function is called through its ifunc, never inlined
// (clang refuses an explicit noinline beside target_clones).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BRAID_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BRAID_VECTOR_CLONES __attribute__((noinline))
#endif

#endif  // BRAID_CORE_VECTOR_CLONES_H_
