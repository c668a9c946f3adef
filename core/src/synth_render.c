/* synth: the audio of a scene, as BAT's data pipeline does it
 * (bat-official.md §2.1, §2.4): each recording mono (channel 0) at 32 kHz,
 * RMS-normalised to −14 dBFS in float, placed in the 10 s window, convolved
 * (FFT, full linear convolution) with its own binaural room response, the
 * first 10 s kept; two sources are mixed as (s1 + s2) / 2.
 *
 * Placement (docs/sources.md, "Short clips"; the corpus' `placement` column
 * per row unless audio.placement forces one rule):
 *   cut     a recording at least as long as the window: a window starting at
 *           an offset drawn uniformly in [0, duration − window];
 *   repeat  events: the clip placed repeatedly, first onset drawn in
 *           audio.lead_seconds ([0, 0.5] s), then after each occurrence a
 *           silent gap drawn in audio.gap_seconds ([0.25, 1.0] s), until the
 *           next onset would be at or after the window's end; the occurrence
 *           running past the end is cut there with a linear fade-out of
 *           audio.fade_seconds (10 ms);
 *   loop    textures: looped back to back from a random phase with a
 *           raised-cosine cross-fade of min(audio.crossfade_seconds (50 ms),
 *           duration / 4) at each joint, filling the window exactly;
 *   once    (only when forced) the clip once at an onset drawn in
 *           lead_seconds, zeros elsewhere: BAT's zero padding for lead 0.
 * Rows without a placement column repeat short clips. Normalisation to
 * audio.rms_dbfs happens on what is used: the whole of a short clip (before
 * it is placed, as BAT normalises before padding) or the window of a long
 * one (as BAT normalises its 10 s clips).
 *
 * FFTW plans are made once on the main thread (synth_fft_new); workers run
 * them with the new-array execute functions, which are thread-safe. */
#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/audio.h"
#include "synth_internal.h"

struct synth_fft {
    int64_t clip, rir, n, bins;
    fftwf_plan fwd, inv;
};

/* Smallest 2^a·3^b·5^c ≥ m: sizes FFTW handles fastest. */
static int64_t good_size(int64_t m) {
    int64_t best = INT64_MAX;
    for (int64_t p2 = 1; p2 < 2 * m && p2 > 0; p2 *= 2)
        for (int64_t p3 = p2; p3 < 2 * m; p3 *= 3)
            for (int64_t p5 = p3; p5 < 2 * m; p5 *= 5)
                if (p5 >= m && p5 < best) best = p5;
    return best;
}

bp_status synth_fft_new(int64_t clip_samples, int64_t rir_samples, synth_fft **out, bp_error *err) {
    *out = NULL;
    if (clip_samples < 1 || rir_samples < 1 || clip_samples > (1 << 26) || rir_samples > (1 << 26))
        return bp_error_set(err, BP_ERR_INVALID, "synth: implausible clip (%lld) or RIR (%lld) length",
                            (long long)clip_samples, (long long)rir_samples);
    synth_fft *f = calloc(1, sizeof *f);
    if (!f) return bp_error_set(err, BP_ERR_NOMEM, "synth: out of memory");
    f->clip = clip_samples;
    f->rir = rir_samples;
    f->n = good_size(clip_samples + rir_samples - 1);
    f->bins = f->n / 2 + 1;
    float *in = fftwf_malloc((size_t)f->n * sizeof *in);
    fftwf_complex *spec = fftwf_malloc((size_t)f->bins * sizeof *spec);
    if (in && spec) {
        f->fwd = fftwf_plan_dft_r2c_1d((int)f->n, in, spec, FFTW_ESTIMATE);
        f->inv = fftwf_plan_dft_c2r_1d((int)f->n, spec, in, FFTW_ESTIMATE);
    }
    fftwf_free(in);
    fftwf_free(spec);
    if (!f->fwd || !f->inv) {
        synth_fft_free(f);
        return bp_error_set(err, BP_ERR_NOMEM, "synth: cannot plan a size-%lld FFT",
                            (long long)(clip_samples + rir_samples));
    }
    *out = f;
    return BP_OK;
}

void synth_fft_free(synth_fft *f) {
    if (!f) return;
    if (f->fwd) fftwf_destroy_plan(f->fwd);
    if (f->inv) fftwf_destroy_plan(f->inv);
    free(f);
}

struct synth_render {
    const synth_fft *fft;
    float *src;       /* [n]: the placed source, zero-padded */
    fftwf_complex *S; /* its spectrum */
    int have_spectrum;
    float *buf;       /* [n] */
    fftwf_complex *H; /* [bins] */
    float *mix;       /* [2 · clip] */
};

bp_status synth_render_new(const synth_fft *fft, synth_render **out, bp_error *err) {
    synth_render *r = calloc(1, sizeof *r);
    if (!r) return bp_error_set(err, BP_ERR_NOMEM, "synth: out of memory");
    r->fft = fft;
    r->src = fftwf_malloc((size_t)fft->n * sizeof *r->src);
    r->buf = fftwf_malloc((size_t)fft->n * sizeof *r->buf);
    r->S = fftwf_malloc((size_t)fft->bins * sizeof *r->S);
    r->H = fftwf_malloc((size_t)fft->bins * sizeof *r->H);
    r->mix = malloc((size_t)(2 * fft->clip) * sizeof *r->mix);
    if (!r->src || !r->buf || !r->S || !r->H || !r->mix) {
        synth_render_free(r);
        return bp_error_set(err, BP_ERR_NOMEM, "synth: out of memory for render buffers");
    }
    *out = r;
    return BP_OK;
}

void synth_render_free(synth_render *r) {
    if (!r) return;
    fftwf_free(r->src);
    fftwf_free(r->buf);
    fftwf_free(r->S);
    fftwf_free(r->H);
    free(r->mix);
    free(r);
}

const float *synth_render_placed(const synth_render *r) { return r->src; }

void synth_render_clear_mix(synth_render *r) { memset(r->mix, 0, (size_t)(2 * r->fft->clip) * sizeof *r->mix); }

/* -------------------------------------------------------------- source -- */

const char *synth_place_name(int32_t p) {
    static const char *const n[] = {"default", "cut", "repeat", "loop", "once"};
    return p >= 0 && p <= SYNTH_PLACE_ONCE ? n[p] : "?";
}

/* The rule for a recording of `len` samples in a window of W. */
static int32_t place_rule(const synth_cfg *cfg, const synth_row *row, int64_t len, int64_t W) {
    if (len >= W) return SYNTH_PLACE_CUT; /* long enough: a window of it */
    switch (cfg->placement) {
    case SYNTH_PLACEMENT_REPEAT: return SYNTH_PLACE_REPEAT;
    case SYNTH_PLACEMENT_LOOP: return SYNTH_PLACE_LOOP;
    case SYNTH_PLACEMENT_ONCE: return SYNTH_PLACE_ONCE;
    default: return row->placement == SYNTH_PLACE_LOOP ? SYNTH_PLACE_LOOP : SYNTH_PLACE_REPEAT;
    }
}

/* Copy x[0..m) to y[pos..), with a linear fade-out over the last `fade`
 * samples when the copy is cut short by the window's end. */
static void put(float *y, int64_t pos, const float *x, int64_t m, int cut, int64_t fade, double gain) {
    for (int64_t i = 0; i < m; i++) {
        double v = x[i] * gain;
        if (cut && fade > 0 && i >= m - fade) v *= (double)(m - i) / (double)(fade + 1);
        y[pos + i] = (float)v;
    }
}

/* Decode one recording and place it in r->src; a non-OK status means "this
 * file is unusable" (the caller replaces it). */
static bp_status place(synth_render *r, const synth_cfg *cfg, const synth_row *row, synth_rng *rng, synth_src *s,
                       bp_error *err) {
    bp_tensor *t = NULL;
    bp_audio_info info;
    bp_status st = bp_audio_read(row->path, cfg->sample_rate, 0, BP_RESAMPLE_BEST, &t, &info, err);
    if (st != BP_OK) return st;
    const double sr = cfg->sample_rate;
    int64_t len = t->shape[1], W = r->fft->clip;
    const float *x = t->data; /* channel 0, as BAT */
    s->clip_s = (double)len / sr;
    s->placement = place_rule(cfg, row, len, W);
    /* RMS over what is used: the window of a long recording, the whole of a short one */
    int64_t a = 0, seg = len;
    if (s->placement == SYNTH_PLACE_CUT) {
        a = (int64_t)llround(synth_rng_range(rng, 0, (double)(len - W)));
        if (a > len - W) a = len - W;
        seg = W;
    }
    double e = 0;
    for (int64_t i = 0; i < seg; i++) e += (double)x[a + i] * x[a + i];
    double rms = seg > 0 ? sqrt(e / (double)seg) : 0;
    if (!(rms > 1e-7)) {
        bp_tensor_free(t);
        return bp_error_set(err, BP_ERR_FORMAT, "%s: silent (RMS %.3g), cannot be normalised", row->path, rms);
    }
    double gain = pow(10.0, (cfg->rms_dbfs - 20.0 * log10(rms)) / 20.0);
    s->norm_gain_db = 20.0 * log10(gain);
    memset(r->src, 0, (size_t)r->fft->n * sizeof *r->src);
    float *y = r->src;
    s->window_s = s->start_s = 0;
    s->copies = 0;
    int64_t fade = (int64_t)llround(cfg->fade_s * sr);
    switch (s->placement) {
    case SYNTH_PLACE_CUT:
        s->window_s = (double)a / sr;
        s->copies = 1;
        put(y, 0, x + a, W, 0, 0, gain);
        break;
    case SYNTH_PLACE_ONCE: {
        int64_t lead = (int64_t)llround(synth_rng_range(rng, cfg->lead_s[0], cfg->lead_s[1]) * sr);
        if (lead > W - len) lead = W - len;
        s->start_s = (double)lead / sr;
        s->copies = 1;
        put(y, lead, x, len, 0, 0, gain);
        break;
    }
    case SYNTH_PLACE_REPEAT: {
        /* onsets: the first in lead_seconds, then a gap after each occurrence */
        int64_t pos = (int64_t)llround(synth_rng_range(rng, cfg->lead_s[0], cfg->lead_s[1]) * sr);
        if (pos >= W) pos = W - 1;
        s->start_s = (double)pos / sr;
        while (pos < W) {
            int64_t m = len < W - pos ? len : W - pos;
            int64_t f = fade < m ? fade : m;
            put(y, pos, x, m, m < len, f, gain);
            s->copies++;
            pos += len + (int64_t)llround(synth_rng_range(rng, cfg->gap_s[0], cfg->gap_s[1]) * sr);
        }
        break;
    }
    default: { /* SYNTH_PLACE_LOOP: back to back from a random phase, raised-cosine cross-fades */
        int64_t F = (int64_t)llround(cfg->crossfade_s * sr);
        if (F > len / 4) F = len / 4;
        int64_t P = len - F; /* period: cross-fade block [0, F) then x[F .. len−F) */
        int64_t c = (int64_t)(synth_rng_uniform(rng) * (double)P);
        s->start_s = (double)c / sr;
        for (int64_t i = 0; i < W; i++, c++) {
            if (c >= P) c = 0, s->copies++;
            double v;
            if (c < F) {
                double w = sin(0.5 * M_PI * ((double)c + 0.5) / (double)F);
                v = x[len - F + c] * (1.0 - w * w) + x[c] * w * w;
            } else {
                v = x[c];
            }
            y[i] = (float)(v * gain);
        }
        s->copies++;
        break;
    }
    }
    bp_tensor_free(t);
    r->have_spectrum = 0;
    return BP_OK;
}

bp_status synth_render_source(synth_render *r, const synth_ctx *x, synth_scene *sc, uint32_t k, bp_error *err) {
    synth_src *s = &sc->src[k];
    uint32_t failed[16], n_failed = 0;
    for (;;) {
        synth_rng rng; /* the same placement draws for whichever file ends up used */
        synth_rng_seed(&rng, synth_seed(x->cfg->seed, sc->split, sc->kind, sc->index, SYNTH_STREAM_PLACE0 + k));
        const synth_row *row = &x->corpus->rows[s->row];
        bp_error e = BP_ERROR_INIT;
        bp_status st = place(r, x->cfg, row, &rng, s, &e);
        if (st == BP_OK) return BP_OK;
        if (st == BP_ERR_NOMEM) return bp_error_set(err, st, "%s", e.msg);
        /* unusable recording: note it, take the next one of the class */
        if (!s->replaced) s->replaced = json_array();
        json_t *rec = json_object();
        json_object_set_new(rec, "file", json_string(row->file));
        json_object_set_new(rec, "reason", json_string(e.msg));
        json_array_append_new(s->replaced, rec);
        if (n_failed < 16) failed[n_failed++] = s->row;
        if (n_failed >= 16 || synth_scene_replace_row(x, sc, k, failed, n_failed) != 0)
            return bp_error_set(err, BP_ERR_FORMAT,
                                "synth: scene %s: no usable recording of '%s' left in the %s split (last: %s)", sc->id,
                                x->corpus->classes[s->class_id], synth_split_name(sc->split), e.msg);
    }
}

/* -------------------------------------------------------------- convolve -- */

bp_status synth_render_convolve_add(synth_render *r, const bp_tensor *rir, float scale, bp_error *err) {
    const synth_fft *f = r->fft;
    if (rir->dtype != BP_DTYPE_F32 || rir->ndim != 2 || rir->shape[0] != 2 || rir->shape[1] < 1 || rir->backend)
        return bp_error_set(err, BP_ERR_SPEC,
                            "synth: the simulator returned something other than a host F32 [2, n] response");
    if (!r->have_spectrum) {
        fftwf_execute_dft_r2c(f->fwd, r->src, r->S);
        r->have_spectrum = 1;
    }
    int64_t n_rir = rir->shape[1] < f->rir ? rir->shape[1] : f->rir; /* longer responses are cut, as BAT's 2 s crop */
    const float *h = rir->data;
    float norm = scale / (float)f->n;
    for (int ch = 0; ch < 2; ch++) {
        memset(r->buf, 0, (size_t)f->n * sizeof *r->buf);
        memcpy(r->buf, h + ch * rir->shape[1], (size_t)n_rir * sizeof *r->buf);
        for (int64_t i = 0; i < n_rir; i++)
            if (!isfinite(r->buf[i]))
                return bp_error_set(err, BP_ERR_NUMERIC,
                                    "synth: the room response has a non-finite sample (channel %d, %lld)", ch,
                                    (long long)i);
        fftwf_execute_dft_r2c(f->fwd, r->buf, r->H);
        for (int64_t b = 0; b < f->bins; b++) {
            float re = r->H[b][0] * r->S[b][0] - r->H[b][1] * r->S[b][1];
            float im = r->H[b][0] * r->S[b][1] + r->H[b][1] * r->S[b][0];
            r->H[b][0] = re;
            r->H[b][1] = im;
        }
        fftwf_execute_dft_c2r(f->inv, r->H, r->buf);
        float *m = r->mix + ch * f->clip;
        for (int64_t i = 0; i < f->clip; i++) m[i] += norm * r->buf[i];
    }
    return BP_OK;
}

bp_status synth_render_finish(synth_render *r, const synth_cfg *cfg, synth_scene *sc, bp_tensor *mix, bp_error *err) {
    int64_t n = 2 * r->fft->clip;
    float peak = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(r->mix[i]))
            return bp_error_set(err, BP_ERR_NUMERIC, "synth: scene %s: non-finite sample in the mix", sc->id);
        float a = fabsf(r->mix[i]);
        if (a > peak) peak = a;
    }
    double g = pow(10.0, cfg->gain_db / 20.0);
    sc->scaled = 0;
    if (peak * g > cfg->peak_limit) {
        if (!cfg->on_clip_scale)
            return bp_error_set(
                err, BP_ERR_NUMERIC,
                "synth: scene %s would clip: peak %.2f dBFS after output.gain_db = %g dB (limit %.2f dBFS); "
                "lower output.gain_db or set output.on_clip = \"scale\"",
                sc->id, 20 * log10(peak * g), cfg->gain_db, 20 * log10(cfg->peak_limit));
        g = cfg->peak_limit / peak;
        sc->scaled = 1;
    }
    /* the gain is stored rounded so that the recorded value undoes it exactly */
    sc->gain_db = synth_quantize(20.0 * log10(g), 1e-4);
    if (sc->scaled && pow(10.0, sc->gain_db / 20.0) * peak > cfg->peak_limit) sc->gain_db -= 1e-4;
    g = pow(10.0, sc->gain_db / 20.0);
    float gf = (float)g;
    peak = 0;
    for (int64_t i = 0; i < n; i++) {
        r->mix[i] *= gf;
        float a = fabsf(r->mix[i]);
        if (a > peak) peak = a;
    }
    sc->peak = peak;
    int64_t shape[2] = {2, r->fft->clip};
    *mix = bp_tensor_view(BP_DTYPE_F32, 2, shape, r->mix);
    return BP_OK;
}
