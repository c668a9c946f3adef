/* spatialsoundqa: the binaural clip of an entry.
 *  - generated sets (batpipe synth): the rendered FLAC under audio_path,
 *    divided by its recorded gain (gain_db) so that levels are BAT's float
 *    levels again (undo_gain = true), padded or cut to the clip length;
 *  - the official release: as BAT's data pipeline (bat-official.md §2.4):
 *    each anechoic clip (audio_root/<audio_id>.wav, or .flac) read, first
 *    channel, resampled to 32 kHz, RMS-normalised to −14 dBFS, convolved
 *    (FFT, full linear convolution) with its own binaural RIR
 *    (reverb_root/<reverb_id>, or reverb_root/binaural/<reverb_id>), the
 *    first clip_samples kept; two sources are mixed as (s1 + s2) / 2.
 * RIRs longer than rir_max_seconds are cut (their tail beyond that is far
 * below the direct sound). The last clip is cached: consecutive questions
 * about one scene load it once. */
#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batpipe/audio.h"
#include "ssqa.h"

struct ssqa_audio {
    ssqa_audio_opts o;
    int64_t n, bins;
    fftwf_plan fwd, inv;
    float *src, *buf;
    fftwf_complex *S, *H;
    bp_tensor *clip; /* [2, clip_samples] */
    char *cache_key;
};

static int64_t good_size(int64_t m) {
    int64_t best = INT64_MAX;
    for (int64_t p2 = 1; p2 < 2 * m; p2 *= 2)
        for (int64_t p3 = p2; p3 < 2 * m; p3 *= 3)
            for (int64_t p5 = p3; p5 < 2 * m; p5 *= 5)
                if (p5 >= m && p5 < best) best = p5;
    return best;
}

void ssqa_audio_free(ssqa_audio *a) {
    if (!a) return;
    if (a->fwd) fftwf_destroy_plan(a->fwd);
    if (a->inv) fftwf_destroy_plan(a->inv);
    fftwf_free(a->src);
    fftwf_free(a->buf);
    fftwf_free(a->S);
    fftwf_free(a->H);
    bp_tensor_free(a->clip);
    free(a->cache_key);
    free(a);
}

bp_status ssqa_audio_new(const ssqa_audio_opts *o, ssqa_audio **out, bp_error *err) {
    *out = NULL;
    ssqa_audio *a = calloc(1, sizeof *a);
    if (!a) return bp_error_set(err, BP_ERR_NOMEM, "spatialsoundqa: out of memory");
    a->o = *o;
    a->n = good_size(o->clip_samples + o->rir_max_samples - 1);
    a->bins = a->n / 2 + 1;
    a->src = fftwf_malloc((size_t)a->n * sizeof *a->src);
    a->buf = fftwf_malloc((size_t)a->n * sizeof *a->buf);
    a->S = fftwf_malloc((size_t)a->bins * sizeof *a->S);
    a->H = fftwf_malloc((size_t)a->bins * sizeof *a->H);
    int64_t shape[2] = {2, o->clip_samples};
    bp_status st = bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &a->clip, err);
    if (st == BP_OK && (!a->src || !a->buf || !a->S || !a->H))
        st = bp_error_set(err, BP_ERR_NOMEM, "spatialsoundqa: out of memory for FFT buffers");
    if (st == BP_OK) {
        /* plans are made on the creating (main) thread only */
        a->fwd = fftwf_plan_dft_r2c_1d((int)a->n, a->src, a->S, FFTW_ESTIMATE);
        a->inv = fftwf_plan_dft_c2r_1d((int)a->n, a->H, a->buf, FFTW_ESTIMATE);
        if (!a->fwd || !a->inv) st = bp_error_set(err, BP_ERR_INTERNAL, "spatialsoundqa: cannot plan the FFT");
    }
    if (st != BP_OK) {
        ssqa_audio_free(a);
        return st;
    }
    *out = a;
    return BP_OK;
}

static char *join(const char *dir, const char *rel, const char *ext) {
    size_t n = strlen(dir ? dir : "") + strlen(rel) + strlen(ext) + 3;
    char *p = malloc(n);
    if (!p) return NULL;
    if (rel[0] == '/' || !dir || !*dir)
        snprintf(p, n, "%s%s", rel, ext);
    else
        snprintf(p, n, "%s/%s%s", dir, rel, ext);
    return p;
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* The first of the candidate paths that exists (caller frees), or NULL. */
static char *find(const char *dir, const char *rel, const char *const *exts, uint32_t n_ext) {
    for (uint32_t i = 0; i < n_ext; i++) {
        char *p = join(dir, rel, exts[i]);
        if (p && exists(p)) return p;
        free(p);
    }
    return NULL;
}

/* Generated clip: the FLAC, gain undone, padded/cut. */
static bp_status load_rendered(ssqa_audio *a, const ssqa_entry *e, bp_error *err) {
    bp_tensor *t = NULL;
    bp_status st = bp_audio_read(e->audio_path, a->o.sample_rate, 2, (bp_resample_quality)a->o.resample, &t, NULL, err);
    if (st != BP_OK) return st;
    float g = a->o.undo_gain ? (float)pow(10.0, -e->gain_db / 20.0) : 1.0f;
    int64_t n = t->shape[1], W = a->o.clip_samples, m = n < W ? n : W;
    float *y = a->clip->data;
    const float *x = t->data;
    memset(y, 0, (size_t)(2 * W) * sizeof *y);
    for (int c = 0; c < 2; c++)
        for (int64_t i = 0; i < m; i++) y[c * W + i] = x[c * n + i] * g;
    bp_tensor_free(t);
    return BP_OK;
}

/* Official clip k: anechoic source ⊛ its RIR, added to the clip with `scale`. */
static bp_status add_official(ssqa_audio *a, const ssqa_entry *e, int k, float scale, bp_error *err) {
    static const char *const aexts[] = {"", ".wav", ".flac"};
    static const char *const rexts[] = {"", ".npy"};
    char *ap = find(a->o.audio_root, e->audio_id[k], aexts, 3);
    if (!ap) {
        char *want = join(a->o.audio_root, e->audio_id[k], ".wav");
        bp_status st = bp_error_set(err, BP_ERR_NOT_FOUND, "spatialsoundqa: %s (%s): no such anechoic clip: %s", e->id,
                                    e->audio_id[k], want ? want : "?");
        free(want);
        return st;
    }
    char *rp = find(a->o.reverb_root, e->reverb_id[k], rexts, 2);
    if (!rp) {
        char *bin = join(a->o.reverb_root, "binaural", "");
        rp = bin ? find(bin, e->reverb_id[k], rexts, 2) : NULL;
        free(bin);
    }
    if (!rp) {
        free(ap);
        return bp_error_set(err, BP_ERR_NOT_FOUND,
                            "spatialsoundqa: %s (%s): no room response %s under %s (or its binaural/)", e->id,
                            e->reverb_id[k], e->reverb_id[k], a->o.reverb_root);
    }
    bp_tensor *src = NULL, *rir = NULL;
    bp_status st = bp_audio_read(ap, a->o.sample_rate, 0, (bp_resample_quality)a->o.resample, &src, NULL, err);
    if (st == BP_OK) st = ssqa_npy_read_binaural(rp, &rir, err);
    free(ap);
    free(rp);
    if (st != BP_OK) {
        bp_tensor_free(src);
        return st;
    }
    int64_t W = a->o.clip_samples, L = src->shape[1] < W ? src->shape[1] : W; /* later samples cannot reach the clip */
    const float *x = src->data;                                               /* channel 0, as BAT */
    double e2 = 0;
    for (int64_t i = 0; i < src->shape[1]; i++) e2 += (double)x[i] * x[i];
    double rms = src->shape[1] ? sqrt(e2 / (double)src->shape[1]) : 0;
    double g =
        a->o.normalize && rms > 0 ? pow(10.0, (a->o.rms_dbfs - 20.0 * log10(rms)) / 20.0) : 1.0; /* silent: untouched */
    memset(a->src, 0, (size_t)a->n * sizeof *a->src);
    for (int64_t i = 0; i < L; i++) a->src[i] = (float)(x[i] * g);
    fftwf_execute_dft_r2c(a->fwd, a->src, a->S);
    int64_t R = rir->shape[1] < a->o.rir_max_samples ? rir->shape[1] : a->o.rir_max_samples;
    float *y = a->clip->data, norm = scale / (float)a->n;
    for (int c = 0; c < 2; c++) {
        memset(a->buf, 0, (size_t)a->n * sizeof *a->buf);
        memcpy(a->buf, (const float *)rir->data + c * rir->shape[1], (size_t)R * sizeof *a->buf);
        fftwf_execute_dft_r2c(a->fwd, a->buf, a->H);
        for (int64_t b = 0; b < a->bins; b++) {
            float re = a->H[b][0] * a->S[b][0] - a->H[b][1] * a->S[b][1];
            float im = a->H[b][0] * a->S[b][1] + a->H[b][1] * a->S[b][0];
            a->H[b][0] = re;
            a->H[b][1] = im;
        }
        fftwf_execute_dft_c2r(a->inv, a->H, a->buf);
        for (int64_t i = 0; i < W; i++) y[c * W + i] += norm * a->buf[i];
    }
    bp_tensor_free(src);
    bp_tensor_free(rir);
    return BP_OK;
}

bp_status ssqa_audio_get(ssqa_audio *a, const ssqa_entry *e, const bp_tensor **out, bp_error *err) {
    char key[4096];
    if (e->audio_path)
        snprintf(key, sizeof key, "R|%s|%.17g", e->audio_path, e->gain_db);
    else
        snprintf(key, sizeof key, "O|%s|%s|%s|%s", e->audio_id[0], e->reverb_id[0],
                 e->audio_id[1] ? e->audio_id[1] : "", e->reverb_id[1] ? e->reverb_id[1] : "");
    if (a->cache_key && strcmp(a->cache_key, key) == 0) {
        *out = a->clip;
        return BP_OK;
    }
    free(a->cache_key);
    a->cache_key = NULL;
    bp_status st;
    if (e->audio_path) {
        st = load_rendered(a, e, err);
    } else {
        memset(a->clip->data, 0, bp_tensor_nbytes(a->clip));
        int two = e->audio_id[1] != NULL;
        st = add_official(a, e, 0, two ? 0.5f : 1.0f, err);
        if (st == BP_OK && two) st = add_official(a, e, 1, 0.5f, err);
    }
    if (st != BP_OK) return st;
    size_t kl = strlen(key) + 1;
    a->cache_key = malloc(kl);
    if (a->cache_key) memcpy(a->cache_key, key, kl);
    *out = a->clip;
    return BP_OK;
}
