/* bench_matmul — GFLOP/s of a backend's matmul on the ViT-B shapes, side by
 * side with the machine's measured peak for the same thread count.
 *
 *   bench_matmul [--backend NAME] [--threads N] [--seconds S]
 *
 * Matmuls go through the core API (bp_op_matmul), so the figures include the
 * per-call overhead (checks, primitive cache lookup, oneDNN dispatch). Each
 * shape is warmed up, then called repeatedly for at least S seconds; the
 * median per-call rate is reported (and the best). The peak is measured here
 * by hand-written FMA chains (AVX-512 and AVX2, 12 independent accumulators
 * per thread) and, where the CPU has it, a vdpbf16ps chain for BF16, on the
 * same number of threads, before and after the matmuls (the best counts). */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batpipe/ops.h"
#include "batpipe/registry.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------ peak -- */

#define PEAK_ITERS 20000000L /* PEAK_ITERS / 5 iterations: ~10 ms of AVX-512 FMAs at ~3.5 GHz */
#define ACC 12

/* FLOPs done by one thread; the accumulators are returned so that nothing
 * is optimised away. */
__attribute__((target("avx512f"))) static double fma_avx512(long iters, float *sink) {
    __m512 acc[ACC];
    for (int i = 0; i < ACC; i++) acc[i] = _mm512_set1_ps(1.0f + 0.001f * (float)i);
    const __m512 m = _mm512_set1_ps(0.9999999f), a = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < ACC; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    __m512 s = acc[0];
    for (int i = 1; i < ACC; i++) s = _mm512_add_ps(s, acc[i]);
    *sink += _mm512_reduce_add_ps(s);
    return (double)iters * ACC * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long iters, float *sink) {
    __m256 acc[ACC];
    for (int i = 0; i < ACC; i++) acc[i] = _mm256_set1_ps(1.0f + 0.001f * (float)i);
    const __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < ACC; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    __m256 s = acc[0];
    for (int i = 1; i < ACC; i++) s = _mm256_add_ps(s, acc[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    for (int i = 0; i < 8; i++) *sink += v[i];
    return (double)iters * ACC * 8 * 2;
}

/* vdpbf16ps: 16 lanes × 2 BF16 products accumulated into F32 = 64 FLOP. */
__attribute__((target("avx512f,avx512bf16"))) static double dot_bf16(long iters, float *sink) {
    __m512 acc[ACC];
    for (int i = 0; i < ACC; i++) acc[i] = _mm512_setzero_ps();
    const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3380);
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < ACC; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    __m512 s = acc[0];
    for (int i = 1; i < ACC; i++) s = _mm512_add_ps(s, acc[i]);
    *sink += _mm512_reduce_add_ps(s);
    return (double)iters * ACC * 16 * 4;
}

typedef double (*peak_fn)(long iters, float *sink);

/* Aggregate FLOP/s of `fn` run on `threads` threads at once: the best of
 * 20 short runs (~10 ms each), so that a run the machine's other load
 * interrupted does not count. */
static double peak_measure(peak_fn fn, int threads) {
    double best = 0.0;
    float sink = 0.0f;
    fn(PEAK_ITERS / 10, &sink); /* warm-up: clocks up, threads created */
    for (int rep = 0; rep < 20; rep++) {
        double flops = 0.0, t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : flops, sink)
        flops += fn(PEAK_ITERS / 5, &sink);
        double rate = flops / (now_s() - t0);
        if (rate > best) best = rate;
    }
    if (sink == 12345.0f) printf(" "); /* keep the results alive */
    return best;
}

typedef struct peaks {
    double avx2, avx512, bf16; /* FLOP/s, 0 = not available on this CPU */
} peaks;

static void peaks_measure(peaks *p, int threads) {
    memset(p, 0, sizeof *p);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) p->avx2 = peak_measure(fma_avx2, threads);
    if (__builtin_cpu_supports("avx512f")) p->avx512 = peak_measure(fma_avx512, threads);
    if (__builtin_cpu_supports("avx512bf16")) p->bf16 = peak_measure(dot_bf16, threads);
}

/* ---------------------------------------------------------------- matmul -- */

typedef struct result {
    double median, best, call_ms;
    int calls;
} result;

static void fill_random(void *p, int32_t dtype, int64_t n, uint64_t *state) {
    for (int64_t i = 0; i < n; i++) {
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        float v = (float)((double)(*state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
        if (dtype == BP_DTYPE_F32) ((float *)p)[i] = v;
        else ((uint16_t *)p)[i] = bp_f32_to_bf16(v);
    }
}

static bp_status bench_shape(bp_backend *be, int32_t dtype, int64_t m, int64_t k, int64_t n, double seconds,
                             result *res, bp_error *err) {
    int64_t as[2] = {m, k}, bs[2] = {k, n}, cs[2] = {m, n};
    bp_tensor *a = NULL, *b = NULL, *c = NULL;
    void *host = NULL;
    bp_status st = bp_tensor_new(be, dtype, 2, as, &a, err);
    if (st == BP_OK) st = bp_tensor_new(be, dtype, 2, bs, &b, err);
    if (st == BP_OK) st = bp_tensor_new(be, BP_DTYPE_F32, 2, cs, &c, err);
    uint64_t seed = 42;
    size_t big = (size_t)(m * k > k * n ? m * k : k * n) * 4;
    if (st == BP_OK && !(host = malloc(big))) st = bp_error_set(err, BP_ERR_NOMEM, "bench: out of memory");
    if (st == BP_OK) {
        fill_random(host, dtype, m * k, &seed);
        st = bp_tensor_write(a, host, bp_tensor_nbytes(a), err);
    }
    if (st == BP_OK) {
        fill_random(host, dtype, k * n, &seed);
        st = bp_tensor_write(b, host, bp_tensor_nbytes(b), err);
    }
    double flop = 2.0 * (double)m * (double)k * (double)n;
    /* warm-up: primitive creation, caches, clocks */
    double t_end = now_s() + 0.2;
    for (int i = 0; st == BP_OK && (i < 3 || now_s() < t_end); i++) {
        st = bp_op_matmul(be, a, b, c, NULL, 0, 0, 1.0f, 0.0f, err);
        if (st == BP_OK) st = bp_backend_sync(be, err);
    }
    size_t cap = 1024, count = 0;
    double *rates = malloc(cap * sizeof *rates);
    if (st == BP_OK && !rates) st = bp_error_set(err, BP_ERR_NOMEM, "bench: out of memory");
    double t_start = now_s();
    while (st == BP_OK && (count < 5 || now_s() - t_start < seconds)) {
        double t0 = now_s();
        st = bp_op_matmul(be, a, b, c, NULL, 0, 0, 1.0f, 0.0f, err);
        if (st == BP_OK) st = bp_backend_sync(be, err);
        double dt = now_s() - t0;
        if (count == cap) {
            double *more = realloc(rates, 2 * cap * sizeof *rates);
            if (!more) {
                st = bp_error_set(err, BP_ERR_NOMEM, "bench: out of memory");
                break;
            }
            rates = more;
            cap *= 2;
        }
        rates[count++] = flop / dt;
    }
    if (st == BP_OK) {
        qsort(rates, count, sizeof *rates, cmp_double);
        res->median = count % 2 ? rates[count / 2] : 0.5 * (rates[count / 2 - 1] + rates[count / 2]);
        res->best = rates[count - 1];
        res->calls = (int)count;
        res->call_ms = 1e3 * flop / res->median;
    }
    free(rates);
    free(host);
    bp_tensor_free(a);
    bp_tensor_free(b);
    bp_tensor_free(c);
    return st;
}

/* ------------------------------------------------------------------ main -- */

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s [--backend NAME] [--threads N] [--seconds S]\n", argv0);
}

int main(int argc, char **argv) {
    const char *backend = "cpu";
    int threads = 0;
    double seconds = 1.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) backend = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (threads < 0 || !(seconds > 0)) {
        usage(argv[0]);
        return 2;
    }

    bp_error err = BP_ERROR_INIT;
    bp_registry *reg = NULL;
    bp_paramset *ps = NULL;
    bp_backend *be = NULL;
    int rc = 1;
    if (bp_registry_new(NULL, &reg, &err) != BP_OK || bp_registry_scan_default(reg, argv[0], &err) != BP_OK)
        goto fail;
    if (threads > 0) {
        const bp_component_info *c = bp_registry_find(reg, BP_KIND_BACKEND, backend);
        char kv[32];
        snprintf(kv, sizeof kv, "threads=%d", threads);
        const char *kvs[1] = {kv};
        if (!c) {
            bp_error_set(&err, BP_ERR_NOT_FOUND, "no usable backend '%s'", backend);
            goto fail;
        }
        if (bp_paramset_from_strings(c->desc, kvs, 1, &ps, &err) != BP_OK) goto fail;
    }
    if (bp_registry_create_backend(reg, backend, ps ? bp_paramset_params(ps) : NULL, &be, &err) != BP_OK) goto fail;
    int nt = bp_backend_threads(be) > 0 ? bp_backend_threads(be) : 1;

    printf("bench_matmul: backend %s — %s; %d thread%s, >= %.2g s per shape after warm-up\n", bp_backend_name(be),
           bp_backend_device(be), nt, nt == 1 ? "" : "s", seconds);
    peaks pk_before, pk_after;
    peaks_measure(&pk_before, nt);

    static const int64_t shapes[3][3] = {{512, 768, 768}, {512, 768, 3072}, {512, 3072, 768}};
    static const int32_t dtypes[2] = {BP_DTYPE_F32, BP_DTYPE_BF16};
    result res[2][3];
    bp_status rst[2][3];
    char msg[2][3][160];
    for (int di = 0; di < 2; di++)
        for (int si = 0; si < 3; si++) {
            memset(&res[di][si], 0, sizeof res[di][si]);
            bp_error_clear(&err);
            rst[di][si] = bench_shape(be, dtypes[di], shapes[si][0], shapes[si][1], shapes[si][2], seconds,
                                      &res[di][si], &err);
            snprintf(msg[di][si], sizeof msg[di][si], "%s", err.msg);
        }
    result tiny = {0.0, 0.0, 0.0, 0};
    bp_status tiny_st = bench_shape(be, BP_DTYPE_F32, 16, 16, 16, seconds < 0.5 ? seconds : 0.5, &tiny, &err);
    peaks_measure(&pk_after, nt);
    peaks pk = pk_before;
    if (pk_after.avx2 > pk.avx2) pk.avx2 = pk_after.avx2;
    if (pk_after.avx512 > pk.avx512) pk.avx512 = pk_after.avx512;
    if (pk_after.bf16 > pk.bf16) pk.bf16 = pk_after.bf16;
    double peak32 = pk.avx512 > pk.avx2 ? pk.avx512 : pk.avx2;
    double peak16 = pk.bf16 > 0 ? pk.bf16 : peak32; /* without native BF16, F32 FMA is the bound */
    printf("measured peak (%d thread%s, best of before/after): fp32 FMA avx2 %.1f GFLOP/s, avx512 %.1f GFLOP/s; "
           "bf16 vdpbf16ps ",
           nt, nt == 1 ? "" : "s", pk.avx2 * 1e-9, pk.avx512 * 1e-9);
    if (pk.bf16 > 0)
        printf("%.1f GFLOP/s\n", pk.bf16 * 1e-9);
    else
        printf("n/a (BF16 rated against the fp32 peak)\n");
    if (tiny_st == BP_OK)
        printf("per-call time of a 16x16x16 F32 matmul (checks, cache lookup, oneDNN dispatch): %.2f us median\n",
               1e3 * tiny.call_ms);
    printf("%-5s %5s %5s %5s  %12s %10s %8s %6s  %s\n", "dtype", "M", "K", "N", "median", "best", "ms/call",
           "calls", "% of measured peak");
    for (int di = 0; di < 2; di++)
        for (int si = 0; si < 3; si++) {
            const result *r = &res[di][si];
            if (rst[di][si] != BP_OK) {
                printf("%-5s %5lld %5lld %5lld  failed: %s\n", bp_dtype_name(dtypes[di]), (long long)shapes[si][0],
                       (long long)shapes[si][1], (long long)shapes[si][2], msg[di][si]);
                continue;
            }
            double peak = dtypes[di] == BP_DTYPE_F32 ? peak32 : peak16;
            printf("%-5s %5lld %5lld %5lld  %7.1f GF/s %5.1f GF/s %8.3f %6d  %5.1f%% of %.1f GF/s\n",
                   bp_dtype_name(dtypes[di]), (long long)shapes[si][0], (long long)shapes[si][1],
                   (long long)shapes[si][2], r->median * 1e-9, r->best * 1e-9, r->call_ms, r->calls,
                   100.0 * r->median / peak, peak * 1e-9);
        }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "bench_matmul: %s\n", err.msg);
    bp_backend_free(be);
    bp_paramset_free(ps);
    bp_registry_free(reg);
    return rc;
}
