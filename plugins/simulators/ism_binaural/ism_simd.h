/* ism_binaural — build the hot loops for several x86-64 levels.
 *
 * ISM_MULTIARCH compiles a function for the baseline ISA and for x86-64-v3
 * (AVX2) and x86-64-v4 (AVX-512) and picks one when the plugin is loaded
 * (GCC target_clones). Only element-wise loops are marked; ISO C mode means
 * no FMA contraction, so every variant gives the same bits. Left out for
 * sanitizer builds and non-GCC compilers. */
#ifndef ISM_SIMD_H
#define ISM_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) &&               \
    !defined(ISM_NO_MULTIARCH)
#define ISM_MULTIARCH __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define ISM_MULTIARCH
#endif

#endif /* ISM_SIMD_H */
