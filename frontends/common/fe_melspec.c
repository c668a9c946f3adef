/* frontends/common — log-mel + IPD engine (see fe_melspec.h). */
#include "fe_melspec.h"

#include <math.h>
#include <string.h>

#include "fe_parallel.h"
#include "fe_signal.h"
#include "fe_simd.h"
#include "fe_vlog.h"

/* Scratch segments are rounded up to 16 floats (64 bytes) so that every one
 * of them keeps FFTW's alignment. */
static size_t round16(size_t n) { return (n + 15u) & ~(size_t)15u; }

typedef struct frame_scratch {
    float *frame;          /* [n_fft] */
    fftwf_complex *spec[2];/* [n_bins] per channel */
    float *inter;          /* [n_bins * n_maps], bin-major */
    float *planar;         /* [4 * n_bins]: |X0|, |X1|, cos, sin one after the other (IPD only) */
    float *melout;         /* [n_maps * n_mels] */
} frame_scratch;

static frame_scratch scratch_of(const bp_fe_melspec *ms, int32_t tid) {
    frame_scratch s;
    float *p = ms->scratch + (size_t)tid * ms->scratch_floats;
    size_t nb = (size_t)ms->stft.n_bins;
    s.frame = p;
    p += round16((size_t)ms->cfg.n_fft);
    for (int32_t c = 0; c < 2; c++) {
        s.spec[c] = (fftwf_complex *)p;
        if (c < ms->cfg.n_channels) p += round16(2 * nb);
    }
    s.inter = p;
    p += round16(nb * (size_t)ms->n_maps);
    s.planar = p;
    if (ms->cfg.ipd) p += round16(4 * nb);
    s.melout = p;
    return s;
}

void bp_fe_melspec_free(bp_fe_melspec *ms) {
    if (!ms) return;
    bp_fe_stft_free(&ms->stft);
    bp_fe_mel_free(&ms->mel);
    bp_fe_fft_dealloc(ms->scratch);
    bp_fe_fft_dealloc(ms->padded);
    memset(ms, 0, sizeof *ms);
}

bp_status bp_fe_melspec_init(bp_fe_melspec *ms, const bp_fe_melspec_cfg *cfg, bp_error *err) {
    memset(ms, 0, sizeof *ms);
    const char *what = cfg->what ? cfg->what : "frontend";
    if (cfg->n_channels < 1 || cfg->n_channels > 2 || (cfg->ipd && cfg->n_channels != 2) || cfg->n_threads < 1)
        return bp_error_set(err, BP_ERR_INVALID, "%s: invalid analysis set-up (%d channels, ipd %d, %d threads)",
                            what, (int)cfg->n_channels, (int)cfg->ipd, (int)cfg->n_threads);
    ms->cfg = *cfg;
    ms->cfg.what = what;
    bp_status st = bp_fe_stft_init(&ms->stft, cfg->n_fft, cfg->hop, what, err);
    if (st == BP_OK)
        st = bp_fe_mel_init(&ms->mel, cfg->sample_rate, cfg->n_fft, cfg->n_mels, cfg->f_min, cfg->f_max, err);
    if (st != BP_OK) {
        bp_fe_melspec_free(ms);
        return st;
    }
    ms->n_maps = cfg->n_channels + (cfg->ipd ? 2 : 0);
    size_t nb = (size_t)ms->stft.n_bins;
    ms->scratch_floats = round16((size_t)cfg->n_fft) + (size_t)cfg->n_channels * round16(2 * nb) +
                         round16(nb * (size_t)ms->n_maps) + (cfg->ipd ? round16(4 * nb) : 0) +
                         round16((size_t)ms->n_maps * (size_t)cfg->n_mels);
    ms->scratch = bp_fe_fft_alloc((size_t)cfg->n_threads * ms->scratch_floats * sizeof(float));
    if (!ms->scratch) {
        bp_fe_melspec_free(ms);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory for the per-thread scratch", what);
    }
    return BP_OK;
}

static int64_t padded_stride(const bp_fe_melspec *ms) { return ms->padded_cap + ms->cfg.n_fft; }

bp_status bp_fe_melspec_reserve(bp_fe_melspec *ms, int64_t len, bp_error *err) {
    if (len <= ms->padded_cap) return BP_OK;
    if (len > ((int64_t)1 << 36))
        return bp_error_set(err, BP_ERR_INVALID, "%s: a signal of %lld samples is too long", ms->cfg.what,
                            (long long)len);
    float *p = bp_fe_fft_alloc((size_t)ms->cfg.n_channels * (size_t)(len + ms->cfg.n_fft) * sizeof(float));
    if (!p)
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory for a %lld-sample signal", ms->cfg.what,
                            (long long)len);
    bp_fe_fft_dealloc(ms->padded);
    ms->padded = p;
    ms->padded_cap = len;
    return BP_OK;
}

float *bp_fe_melspec_signal(bp_fe_melspec *ms, int32_t c, int64_t len) {
    (void)len;
    return ms->padded + (int64_t)c * padded_stride(ms) + ms->cfg.n_fft / 2;
}

/* Per-bin features of one frame for bins [lo, hi), interleaved per bin:
 * |X0| (, |X1|) (, cos IPD, sin IPD). */
BP_FE_MULTIARCH static void bins_mag1(const fftwf_complex *x0, int32_t lo, int32_t hi, float *inter) {
    for (int32_t k = lo; k < hi; k++) {
        float re = x0[k][0], im = x0[k][1];
        inter[k] = sqrtf(re * re + im * im);
    }
}

BP_FE_MULTIARCH static void bins_mag2(const fftwf_complex *x0, const fftwf_complex *x1, int32_t lo, int32_t hi,
                                      float *inter) {
    for (int32_t k = lo; k < hi; k++) {
        float re0 = x0[k][0], im0 = x0[k][1], re1 = x1[k][0], im1 = x1[k][1];
        inter[2 * k] = sqrtf(re0 * re0 + im0 * im0);
        inter[2 * k + 1] = sqrtf(re1 * re1 + im1 * im1);
    }
}

/* IPD in double: a zero bin (also -0.0) becomes the phasor (1, 0), i.e.
 * phase 0; cos/sin of the phase difference are the normalised real and
 * imaginary parts of X1 conj(X0). Used for frames holding bins too small for
 * the float path. */
BP_FE_MULTIARCH static void bins_ipd_f64(const fftwf_complex *x0, const fftwf_complex *x1, int32_t lo, int32_t hi,
                                         int32_t nb, float *planar) {
    float *cs = planar + 2 * nb, *sn = planar + 3 * nb;
    for (int32_t k = lo; k < hi; k++) {
        double a0 = x0[k][0], b0 = x0[k][1], a1 = x1[k][0], b1 = x1[k][1];
        double p0 = a0 * a0 + b0 * b0, p1 = a1 * a1 + b1 * b1;
        double z0 = (double)(p0 == 0.0), z1 = (double)(p1 == 0.0);
        a0 += z0;
        p0 += z0;
        a1 += z1;
        p1 += z1;
        double r = 1.0 / sqrt(p0 * p1);
        cs[k] = (float)((a1 * a0 + b1 * b0) * r);
        sn[k] = (float)((b1 * a0 - a1 * b0) * r);
    }
}

/* Magnitudes and IPD in float, the same formulas with |X| from sqrtf.
 * Returns non-zero if some non-zero bin has |X|^2 below 2^-100 (float
 * underflow territory, far below any audio), in which case the caller
 * redoes the IPD in double. Branch-free so that the loop vectorises; the
 * flag is an OR, so the result does not depend on the evaluation order. */
BP_FE_MULTIARCH static int bins_mag2_ipd(const fftwf_complex *restrict x0, const fftwf_complex *restrict x1,
                                         int32_t lo, int32_t hi, float *restrict mg0, float *restrict mg1,
                                         float *restrict cs, float *restrict sn) {
    const float tiny = 0x1p-100f;
    int bad = 0;
    for (int32_t k = lo; k < hi; k++) {
        float a0 = x0[k][0], b0 = x0[k][1], a1 = x1[k][0], b1 = x1[k][1];
        float p0 = a0 * a0 + b0 * b0, p1 = a1 * a1 + b1 * b1;
        float m0 = sqrtf(p0), m1 = sqrtf(p1);
        mg0[k] = m0;
        mg1[k] = m1;
        bad |= (p0 < tiny) & ((a0 != 0.0f) | (b0 != 0.0f));
        bad |= (p1 < tiny) & ((a1 != 0.0f) | (b1 != 0.0f));
        float z0 = (float)(p0 == 0.0f), z1 = (float)(p1 == 0.0f);
        a0 += z0;
        m0 += z0;
        a1 += z1;
        m1 += z1;
        float r = 1.0f / (m0 * m1);
        cs[k] = (a1 * a0 + b1 * b0) * r;
        sn[k] = (b1 * a0 - a1 * b0) * r;
    }
    return bad;
}

/* The four planar rows interleaved per bin, as bp_fe_mel_apply reads them. */
BP_FE_MULTIARCH static void interleave4(const float *planar, int32_t lo, int32_t hi, int32_t nb, float *inter) {
    const float *p0 = planar, *p1 = planar + nb, *p2 = planar + 2 * nb, *p3 = planar + 3 * nb;
    for (int32_t k = lo; k < hi; k++) {
        inter[4 * k] = p0[k];
        inter[4 * k + 1] = p1[k];
        inter[4 * k + 2] = p2[k];
        inter[4 * k + 3] = p3[k];
    }
}

BP_FE_MULTIARCH static void frame_run(const bp_fe_melspec *ms, const frame_scratch *s, int64_t t, int64_t n_frames,
                      const bp_fe_bn *bn, const bp_fe_melspec_out *out) {
    const int32_t C = ms->cfg.n_channels, M = ms->cfg.n_mels, lo = ms->mel.bin_lo, hi = ms->mel.bin_hi;
    const int64_t stride = padded_stride(ms);
    for (int32_t c = 0; c < C; c++) bp_fe_stft_frame(&ms->stft, ms->padded + c * stride, t, s->frame, s->spec[c]);
    if (C == 1) bins_mag1(s->spec[0], lo, hi, s->inter);
    else if (!ms->cfg.ipd) bins_mag2(s->spec[0], s->spec[1], lo, hi, s->inter);
    else {
        const int32_t nb = ms->stft.n_bins;
        float *p = s->planar;
        if (bins_mag2_ipd(s->spec[0], s->spec[1], lo, hi, p, p + nb, p + 2 * nb, p + 3 * nb))
            bins_ipd_f64(s->spec[0], s->spec[1], lo, hi, nb, s->planar);
        interleave4(s->planar, lo, hi, nb, s->inter);
    }
    bp_fe_mel_apply(&ms->mel, s->inter, ms->n_maps, s->melout);
    bp_fe_vlog(s->melout, s->melout, C * M, BP_FE_AMIN, (float)BP_FE_DB_PER_NEPER);

    for (int32_t c = 0; c < C; c++) {
        const float *db = s->melout + (size_t)c * (size_t)M;
        size_t row = ((size_t)c * (size_t)n_frames + (size_t)t) * (size_t)M;
        if (out->logmel_raw) memcpy(out->logmel_raw + row, db, (size_t)M * sizeof(float));
        float *dst = out->stacked + row;
        if (bn) {
            double mean = bn->mean[c], den = sqrt(bn->var[c] + BP_FE_BN_EPS);
            for (int32_t m = 0; m < M; m++) dst[m] = (float)(((double)db[m] - mean) / den);
            if (out->logmel_bn) memcpy(out->logmel_bn + row, dst, (size_t)M * sizeof(float));
        } else {
            memcpy(dst, db, (size_t)M * sizeof(float));
        }
    }
    if (ms->cfg.ipd) {
        const float *cs = s->melout + (size_t)C * (size_t)M, *sn = cs + M;
        size_t row = (size_t)t * (size_t)M;
        memcpy(out->stacked + (size_t)C * (size_t)n_frames * (size_t)M + row, cs, (size_t)M * sizeof(float));
        memcpy(out->stacked + (size_t)(C + 1) * (size_t)n_frames * (size_t)M + row, sn, (size_t)M * sizeof(float));
        if (out->ipd_cos) memcpy(out->ipd_cos + row, cs, (size_t)M * sizeof(float));
        if (out->ipd_sin) memcpy(out->ipd_sin + row, sn, (size_t)M * sizeof(float));
    }
}

typedef struct run_ctx {
    const bp_fe_melspec *ms;
    int64_t n_frames;
    const bp_fe_bn *bn;
    const bp_fe_melspec_out *out;
} run_ctx;

static void frames_run(void *arg, int32_t slot, int64_t begin, int64_t end) {
    const run_ctx *rc = arg;
    frame_scratch s = scratch_of(rc->ms, slot);
    for (int64_t t = begin; t < end; t++) frame_run(rc->ms, &s, t, rc->n_frames, rc->bn, rc->out);
}

bp_status bp_fe_melspec_run(bp_fe_melspec *ms, int64_t len, const bp_fe_bn *bn, const bp_fe_melspec_out *out,
                            bp_error *err) {
    if (len < bp_fe_melspec_min_len(ms))
        return bp_error_set(err, BP_ERR_INVALID, "%s: a signal of %lld samples is too short (at least %lld needed)",
                            ms->cfg.what, (long long)len, (long long)bp_fe_melspec_min_len(ms));
    if (len > ms->padded_cap)
        return bp_error_set(err, BP_ERR_INTERNAL, "%s: signal buffer not reserved for %lld samples", ms->cfg.what,
                            (long long)len);
    if (!out || !out->stacked) return bp_error_set(err, BP_ERR_INTERNAL, "%s: no output buffer", ms->cfg.what);
    const int64_t pad = ms->cfg.n_fft / 2;
    for (int32_t c = 0; c < ms->cfg.n_channels; c++) bp_fe_signal_reflect(ms->padded + c * padded_stride(ms), len, pad);
    run_ctx rc = {ms, bp_fe_melspec_frames(ms, len), bn, out};
    bp_fe_parallel_for(ms->cfg.n_threads, rc.n_frames, frames_run, &rc);
    return BP_OK;
}
