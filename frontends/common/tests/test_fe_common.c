/* Unit tests of frontends/common, calling the DSP functions directly and
 * checking them against independent straightforward formulas in double. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bp_test.h"
#include "fe_kaldi.h"
#include "fe_mel.h"
#include "fe_melspec.h"
#include "fe_params.h"
#include "fe_resize.h"
#include "fe_signal.h"
#include "fe_stft.h"
#include "fe_vlog.h"

/* Deterministic uniform numbers in [-1, 1) (xorshift64*). */
static double rnd(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ull) >> 11) / 4503599627370496.0 - 1.0;
}

/* numpy.pad(mode="reflect") index for position p in [-pad, n + pad). */
static int64_t reflect_index(int64_t p, int64_t n) {
    if (p < 0) return -p;
    if (p >= n) return 2 * (n - 1) - p;
    return p;
}

/* --- STFT against a direct DFT in double on reflect-padded random input ---- */
static void test_stft(void) {
    bp_error err = BP_ERROR_INIT;
    bp_fe_stft s;
    CHECK_OK(bp_fe_stft_init(&s, 1024, 320, "test", &err), &err);
    const int64_t n = 5000, pad = 512;
    float *padded = bp_fe_fft_alloc((size_t)(n + 2 * pad) * sizeof(float));
    float *buf = bp_fe_fft_alloc(1024 * sizeof(float));
    fftwf_complex *spec = bp_fe_fft_alloc(513 * sizeof(fftwf_complex));
    uint64_t seed = 12345;
    for (int64_t i = 0; i < n; i++) padded[pad + i] = (float)(0.5 * rnd(&seed));
    bp_fe_signal_reflect(padded, n, pad);
    for (int64_t p = -pad; p < n + pad; p++) CHECK(padded[pad + p] == padded[pad + reflect_index(p, n)]);
    CHECK(bp_fe_stft_frames(&s, n) == 1 + n / 320);

    const int64_t frames[] = {0, 1, 7, bp_fe_stft_frames(&s, n) - 1};
    double worst = 0.0;
    for (size_t f = 0; f < sizeof frames / sizeof frames[0]; f++) {
        int64_t t = frames[f];
        bp_fe_stft_frame(&s, padded, t, buf, spec);
        double maxmag = 0.0, maxerr = 0.0;
        for (int k = 0; k < 513; k++) {
            double re = 0.0, im = 0.0;
            for (int j = 0; j < 1024; j++) {
                double x = padded[pad + reflect_index(t * 320 + j - pad, n)];
                double w = 0.5 - 0.5 * cos(2.0 * M_PI * j / 1024.0);
                double ang = 2.0 * M_PI * (double)((int64_t)j * k % 1024) / 1024.0;
                re += x * w * cos(ang);
                im -= x * w * sin(ang);
            }
            maxmag = fmax(maxmag, hypot(re, im));
            maxerr = fmax(maxerr, hypot(spec[k][0] - re, spec[k][1] - im));
        }
        worst = fmax(worst, maxerr / maxmag);
    }
    CHECKF(worst < 2e-6, "STFT vs DFT relative error %g", worst);
    bp_fe_fft_dealloc(padded);
    bp_fe_fft_dealloc(buf);
    bp_fe_fft_dealloc(spec);
    bp_fe_stft_free(&s);
}

/* --- Slaney mel filterbank ------------------------------------------------- */
static void test_mel(void) {
    bp_error err = BP_ERROR_INIT;
    bp_fe_mel mel;
    /* librosa's published reference: mel(sr=22050, n_fft=2048, n_mels=128)
     * (fmin 0, fmax sr/2): sums of filters 0, 64 and 127. */
    CHECK_OK(bp_fe_mel_init(&mel, 22050.0, 2048, 128, 0.0, 11025.0, &err), &err);
    const int idx[3] = {0, 64, 127};
    const double want[3] = {0.09034588187932968, 0.09280048566870391, 0.09286924219850334};
    for (int i = 0; i < 3; i++) {
        double sum = 0.0;
        for (int k = 0; k < mel.n_bins; k++) sum += mel.dense[(size_t)k * 128 + (size_t)idx[i]];
        CHECKF(fabs(sum - want[i]) < 1e-7 * want[i], "filter %d sums to %.17g, librosa %.17g", idx[i], sum, want[i]);
    }
    bp_fe_mel_free(&mel);

    /* The Spatial-AST matrix: 513 bins x 128, bins 0-1 and above 14 kHz zero,
     * filter 0 = bins 2-3, unit area in Hz (column sums ~ 1 / 31.25). */
    CHECK_OK(bp_fe_mel_init(&mel, 32000.0, 1024, 128, 50.0, 14000.0, &err), &err);
    CHECK(mel.n_bins == 513 && mel.n_mels == 128);
    CHECK(mel.bin_lo == 2);
    CHECK(mel.bin_hi <= 449);
    CHECK(mel.first[0] == 2 && mel.count[0] == 2);
    for (int m = 0; m < 128; m++) {
        double sum = 0.0;
        for (int k = 0; k < 513; k++) {
            float w = mel.dense[(size_t)k * 128 + (size_t)m];
            CHECK(w >= 0.0f);
            int inside = k >= mel.first[m] && k < mel.first[m] + mel.count[m];
            if (!inside) CHECK(w == 0.0f);
            sum += w;
        }
        CHECKF(fabs(sum * 31.25 - 1.0) < 0.35, "filter %d area %g", m, sum * 31.25);
    }
    /* Every bin lies in at most two filters (adjacent triangles). */
    for (int k = 0; k < 513; k++) {
        int n = 0;
        for (int m = 0; m < 128; m++) n += mel.dense[(size_t)k * 128 + (size_t)m] != 0.0f;
        CHECK(n <= 2);
    }
    /* Sparse application = dense matrix product, for 1 to 4 interleaved maps. */
    uint64_t seed = 99;
    float *in = malloc(513 * 4 * sizeof *in), *out = malloc(4 * 128 * sizeof *out);
    for (int i = 0; i < 513 * 4; i++) in[i] = (float)rnd(&seed);
    for (int nm = 1; nm <= 4; nm++) {
        bp_fe_mel_apply(&mel, in, nm, out);
        double maxerr = 0.0;
        for (int j = 0; j < nm; j++)
            for (int m = 0; m < 128; m++) {
                double ref = 0.0;
                for (int k = 0; k < 513; k++) ref += (double)in[k * nm + j] * mel.dense[(size_t)k * 128 + (size_t)m];
                maxerr = fmax(maxerr, fabs(ref - out[j * 128 + m]));
            }
        CHECKF(maxerr < 1e-6, "sparse mel apply (%d maps) error %g", nm, maxerr);
    }
    free(in);
    free(out);
    bp_fe_mel_free(&mel);

    /* Scale round trip. */
    for (double hz = 10.0; hz < 16000.0; hz *= 1.37)
        CHECK_NEAR(bp_fe_mel_to_hz_slaney(bp_fe_hz_to_mel_slaney(hz)), hz, 1e-9 * hz);
    CHECK_NEAR(bp_fe_hz_to_mel_slaney(1000.0), 15.0, 1e-12);
    CHECK(bp_fe_mel_init(&mel, 32000.0, 1024, 128, 50.0, 17000.0, &err) == BP_ERR_INVALID);
}

/* --- vectorised ln ----------------------------------------------------------- */
static void test_vlog(void) {
    enum { N = 20000 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint64_t seed = 7;
    for (int i = 0; i < N; i++) {
        double e = (rnd(&seed) + 1.0) * 126.0 - 125.0; /* exponent range of normal floats */
        x[i] = (float)pow(2.0, e);
    }
    x[0] = 1.0f;
    x[1] = FLT_MIN;
    x[2] = FLT_MAX;
    x[3] = 0.70710677f;
    x[4] = 1.4142135f;
    bp_fe_vlog(x, y, N, FLT_MIN, 1.0f);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        double ref = log((double)x[i]);
        double ulp = fmax(fabs(ref), 1e-30) * FLT_EPSILON;
        double e = fabs(y[i] - ref) / (fabs(ref) < 1.0 ? FLT_EPSILON : ulp);
        worst = fmax(worst, e);
    }
    CHECKF(worst <= 3.0, "vlog error %g ulp", worst);
    CHECK(y[0] == 0.0f);
    /* Floor and clamp: 0, negative and +inf inputs. */
    float z[3] = {0.0f, -5.0f, INFINITY}, dz[3];
    bp_fe_vlog(z, dz, 3, 1e-10f, (float)BP_FE_DB_PER_NEPER);
    CHECK_NEAR(dz[0], -100.0, 1e-4);
    CHECK_NEAR(dz[1], -100.0, 1e-4);
    CHECK(isfinite(dz[2]) && dz[2] > 385.0f);
    free(x);
    free(y);
}

/* --- bicubic resize against the Keys kernel written directly --------------- */
static double keys(double x) {
    const double a = -0.75;
    x = fabs(x);
    if (x <= 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return a * x * x * x - 5.0 * a * x * x + 8.0 * a * x - 4.0 * a;
    return 0.0;
}

static void test_resize(void) {
    const int64_t tin = 37, w = 5;
    const int64_t touts[] = {64, 37, 20, 1};
    float *in = malloc((size_t)(tin * w) * sizeof *in);
    uint64_t seed = 3;
    for (int64_t i = 0; i < tin * w; i++) in[i] = (float)rnd(&seed);
    for (size_t c = 0; c < sizeof touts / sizeof touts[0]; c++) {
        int64_t tout = touts[c];
        float *out = malloc((size_t)(tout * w) * sizeof *out);
        bp_fe_resize_rows(in, tin, out, tout, w, 0, tout);
        double maxerr = 0.0;
        for (int64_t i = 0; i < tout; i++) {
            double s = tout > 1 ? (double)i * (double)(tin - 1) / (double)(tout - 1) : 0.0;
            int64_t i0 = (int64_t)floor(s);
            for (int64_t j = 0; j < w; j++) {
                double ref = 0.0;
                for (int64_t tap = i0 - 1; tap <= i0 + 2; tap++) {
                    int64_t r = tap < 0 ? 0 : (tap > tin - 1 ? tin - 1 : tap);
                    ref += keys(s - (double)tap) * in[r * w + j];
                }
                maxerr = fmax(maxerr, fabs(ref - out[i * w + j]));
            }
        }
        CHECKF(maxerr < 1e-6, "resize %lld -> %lld error %g", (long long)tin, (long long)tout, maxerr);
        if (tout == tin) CHECK(memcmp(in, out, (size_t)(tin * w) * sizeof *in) == 0);
        if (tout == 1) CHECK(memcmp(in, out, (size_t)w * sizeof *in) == 0);
        free(out);
    }
    /* Weights sum to one for any fraction. */
    for (double t = 0.0; t <= 1.0; t += 0.0625) {
        double wt[4];
        bp_fe_cubic_weights(t, wt);
        CHECK_NEAR(wt[0] + wt[1] + wt[2] + wt[3], 1.0, 1e-15);
    }
    free(in);
}

/* --- signal helpers and parameter lists -------------------------------------- */
static void test_signal(void) {
    bp_error err = BP_ERROR_INIT;
    const float st[2][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}};
    float d[6];
    bp_fe_signal_take(&st[0][0], 2, 4, BP_FE_SRC_MEAN, d, 6);
    CHECK(d[0] == 3.0f && d[3] == 6.0f && d[4] == 0.0f && d[5] == 0.0f);
    bp_fe_signal_take(&st[0][0], 2, 4, BP_FE_SRC_CH1, d, 3);
    CHECK(d[0] == 5.0f && d[2] == 7.0f);
    bp_fe_signal_take(&st[0][0], 1, 4, BP_FE_SRC_CH1, d, 4); /* mono: always channel 0 */
    CHECK(d[1] == 2.0f);
    float buf[2 + 4 + 2] = {0, 0, 1, 2, 3, 4, 0, 0};
    bp_fe_signal_reflect(buf, 4, 2);
    const float want[8] = {3, 2, 1, 2, 3, 4, 3, 2};
    CHECK(memcmp(buf, want, sizeof want) == 0);

    float bad[2][3] = {{0, 1, 2}, {3, NAN, 5}};
    CHECK(bp_fe_signal_check_finite(&bad[0][0], 2, 3, "melipd", &err) == BP_ERR_NUMERIC);
    CHECKF(strstr(err.msg, "sample 1 of channel 1 is NaN") != NULL, "%s", err.msg);
    bad[1][1] = INFINITY;
    CHECK(bp_fe_signal_check_finite(&bad[0][0], 2, 3, "melipd", &err) == BP_ERR_NUMERIC);
    CHECKF(strstr(err.msg, "infinite") != NULL, "%s", err.msg);
    bad[1][1] = 0;
    CHECK(bp_fe_signal_check_finite(&bad[0][0], 2, 3, "melipd", &err) == BP_OK);

    bp_fe_source src;
    CHECK(bp_fe_downmix_parse("left", "mel", &src, &err) == BP_OK && src == BP_FE_SRC_CH0);
    CHECK(bp_fe_downmix_parse("right", "mel", &src, &err) == BP_OK && src == BP_FE_SRC_CH1);
    CHECK(bp_fe_downmix_parse("mean", "mel", &src, &err) == BP_OK && src == BP_FE_SRC_MEAN);
    CHECK(bp_fe_downmix_parse("middle", "mel", &src, &err) == BP_ERR_INVALID);
    CHECK(strstr(err.msg, "downmix") != NULL);

    const double three[3] = {1, 2, 3}, one[1] = {4};
    bp_param_value vals[2];
    memset(vals, 0, sizeof vals);
    vals[0].name = "bn_mean";
    vals[0].type = BP_PARAM_FLOAT_LIST;
    vals[0].list = three;
    vals[0].count = 3;
    vals[0].origin = "-o override";
    vals[1].name = "bn_var";
    vals[1].type = BP_PARAM_FLOAT_LIST;
    vals[1].list = one;
    vals[1].count = 1;
    bp_params ps = {sizeof ps, 2, vals, "frontend"};
    double out[2];
    CHECK(bp_fe_param_list(&ps, "bn_mean", 2, 0, "melipd", out, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "'bn_mean'") && strstr(err.msg, "3 elements") && strstr(err.msg, "expected 2"), "%s",
           err.msg);
    CHECK(bp_fe_param_list(&ps, "bn_var", 2, 1, "mel", out, &err) == BP_OK && out[0] == 4.0 && out[1] == 4.0);
    CHECK(bp_fe_param_list(&ps, "bn_var", 2, 0, "melipd", out, &err) == BP_ERR_INVALID);
}

/* --- the log-mel/IPD engine --------------------------------------------------- */
static void run_engine(int32_t threads, const float *x0, const float *x1, int64_t n, float *stacked, float *raw) {
    bp_error err = BP_ERROR_INIT;
    bp_fe_melspec ms;
    bp_fe_melspec_cfg cfg = {32000.0, 1024, 320, 128, 50.0, 14000.0, 2, 1, threads, "test"};
    CHECK_OK(bp_fe_melspec_init(&ms, &cfg, &err), &err);
    CHECK_OK(bp_fe_melspec_reserve(&ms, n, &err), &err);
    memcpy(bp_fe_melspec_signal(&ms, 0, n), x0, (size_t)n * sizeof *x0);
    memcpy(bp_fe_melspec_signal(&ms, 1, n), x1, (size_t)n * sizeof *x1);
    bp_fe_bn bn = {{-20.0, -21.0}, {200.0, 210.0}};
    bp_fe_melspec_out out = {stacked, raw, NULL, NULL, NULL};
    CHECK_OK(bp_fe_melspec_run(&ms, n, &bn, &out, &err), &err);
    CHECK(bp_fe_melspec_run(&ms, 100, &bn, &out, &err) == BP_ERR_INVALID);
    bp_fe_melspec_free(&ms);
}

static void test_engine(void) {
    const int64_t n = 32000, T = 1 + n / 320, M = 128;
    float *x0 = malloc((size_t)n * sizeof *x0), *x1 = malloc((size_t)n * sizeof *x1);
    uint64_t seed = 5;
    for (int64_t i = 0; i < n; i++) {
        x0[i] = (float)(0.3 * sin(2.0 * M_PI * 440.0 * (double)i / 32000.0) + 0.01 * rnd(&seed));
        x1[i] = i < 16000 ? x0[i] : 0.0f; /* identical, then right channel silent */
    }
    size_t ns = (size_t)(4 * T * M), nr = (size_t)(2 * T * M);
    float *s1 = malloc(ns * sizeof *s1), *s3 = malloc(ns * sizeof *s3), *r1 = malloc(nr * sizeof *r1),
          *r3 = malloc(nr * sizeof *r3);
    run_engine(1, x0, x1, n, s1, r1);
    run_engine(3, x0, x1, n, s3, r3);
    CHECK(memcmp(s1, s3, ns * sizeof *s1) == 0);
    CHECK(memcmp(r1, r3, nr * sizeof *r1) == 0);

    bp_error err = BP_ERROR_INIT;
    bp_fe_mel mel;
    CHECK_OK(bp_fe_mel_init(&mel, 32000.0, 1024, 128, 50.0, 14000.0, &err), &err);
    /* Frame 10: identical channels -> IPD 0 -> cos map = column sums, sin = 0;
     * BatchNorm applied with the given statistics. Last frame: right channel
     * silent -> log-mel -100 dB, phase 0 there, so cos/sin = cos/sin(-angle(X0)). */
    double worst_cos = 0.0, worst_sin = 0.0, worst_bn = 0.0;
    for (int64_t m = 0; m < M; m++) {
        double colsum = 0.0;
        for (int k = 0; k < 513; k++) colsum += mel.dense[(size_t)k * 128 + (size_t)m];
        worst_cos = fmax(worst_cos, fabs(s1[(2 * T + 10) * M + m] - colsum));
        worst_sin = fmax(worst_sin, fabs(s1[(3 * T + 10) * M + m]));
        double bn = ((double)r1[(T + 10) * M + m] + 21.0) / sqrt(210.0 + 1e-5);
        worst_bn = fmax(worst_bn, fabs(s1[(T + 10) * M + m] - bn));
        CHECK_NEAR(r1[(T + T - 1) * M + m], -100.0, 1e-4);
    }
    CHECKF(worst_cos < 1e-6, "cos map of equal channels off by %g", worst_cos);
    CHECKF(worst_sin < 1e-6, "sin map of equal channels off by %g", worst_sin);
    CHECKF(worst_bn < 1e-5, "BatchNorm off by %g", worst_bn);
    /* A 440 Hz tone of amplitude 0.3: the mel band around it is the loudest. */
    int best = 0;
    for (int m = 1; m < M; m++)
        if (r1[10 * M + m] > r1[10 * M + best]) best = m;
    double lo_hz = bp_fe_mel_to_hz_slaney(bp_fe_hz_to_mel_slaney(50.0) + best * (bp_fe_hz_to_mel_slaney(14000.0) -
                                                                              bp_fe_hz_to_mel_slaney(50.0)) / 129.0);
    CHECKF(lo_hz < 440.0 && lo_hz > 300.0, "loudest band starts at %g Hz", lo_hz);
    bp_fe_mel_free(&mel);
    free(x0);
    free(x1);
    free(s1);
    free(s3);
    free(r1);
    free(r3);
}

/* --- Kaldi pieces -------------------------------------------------------------- */
static void test_kaldi(void) {
    bp_error err = BP_ERROR_INIT;
    bp_fe_kaldi k;
    CHECK_OK(bp_fe_kaldi_init(&k, 16000.0, 128, "fbank", &err), &err);
    CHECK(k.frame_len == 400 && k.frame_shift == 160 && k.n_fft == 512);
    CHECK(bp_fe_kaldi_frames(&k, 399) == 0);
    CHECK(bp_fe_kaldi_frames(&k, 400) == 1);
    CHECK(bp_fe_kaldi_frames(&k, 160000) == 998);
    CHECK(k.window[0] == 0.0 && fabs(k.window[399]) < 1e-15 && fabs(k.window[100] - k.window[299]) < 1e-15);
    /* Banks: weights in [0, 1], each filter's peak near 1 for wide filters,
     * Nyquist bin unused, low edge at 20 Hz. */
    CHECK(k.banks.bin_hi <= 256);
    CHECK(k.banks.first[0] >= 1);
    for (int m = 0; m < 128; m++) {
        float peak = 0.0f;
        for (int j = 0; j < k.banks.count[m]; j++) peak = fmaxf(peak, k.banks.weights[k.banks.offset[m] + j]);
        CHECK(peak <= 1.0f);
        if (m >= 48) CHECKF(peak > 0.5f, "filter %d peak %g", m, peak); /* wider than 2 bins */
    }
    /* A DC-only frame has no energy after DC removal: every band at ln(eps). */
    float *x = malloc(800 * sizeof *x), out[128];
    float *scratch = bp_fe_fft_alloc(bp_fe_kaldi_scratch_floats(&k) * sizeof(float));
    for (int i = 0; i < 800; i++) x[i] = 0.25f;
    bp_fe_kaldi_frame(&k, x, 1, scratch, out);
    for (int m = 0; m < 128; m++) CHECK_NEAR(out[m], log(FLT_EPSILON), 1e-5);
    /* A 1 kHz tone peaks in the band containing 1 kHz on the Kaldi mel scale. */
    for (int i = 0; i < 800; i++) x[i] = (float)(0.5 * sin(2.0 * M_PI * 1000.0 * i / 16000.0));
    bp_fe_kaldi_frame(&k, x, 0, scratch, out);
    int best = 0;
    for (int m = 1; m < 128; m++)
        if (out[m] > out[best]) best = m;
    double lo = bp_fe_mel_kaldi(20.0), hi = bp_fe_mel_kaldi(8000.0), c = lo + (best + 1) * (hi - lo) / 129.0;
    CHECKF(fabs(c - bp_fe_mel_kaldi(1000.0)) < (hi - lo) / 129.0, "1 kHz peaks in band %d", best);
    free(x);
    bp_fe_fft_dealloc(scratch);
    bp_fe_kaldi_free(&k);
}

int main(void) {
    test_stft();
    test_mel();
    test_vlog();
    test_resize();
    test_signal();
    test_engine();
    test_kaldi();
    return TEST_RESULT();
}
