/* frontends/common — build the hot loops for several x86-64 levels.
 *
 * BP_FE_MULTIARCH compiles a function for the baseline ISA and for
 * x86-64-v3 (AVX2) and x86-64-v4 (AVX-512), and picks one at load time
 * (GCC target_clones, an ifunc). Only element-wise loops are vectorised (no
 * -ffast-math, no FMA contraction in ISO C mode), so every variant gives the
 * same bits. Left out for sanitizer builds and non-GCC compilers. */
#ifndef BP_FE_SIMD_H
#define BP_FE_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(BP_FE_NO_MULTIARCH)
#define BP_FE_MULTIARCH __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define BP_FE_MULTIARCH
#endif

#endif /* BP_FE_SIMD_H */
