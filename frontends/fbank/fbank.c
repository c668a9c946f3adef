/* fbank — the AudioMAE front end: Kaldi-compatible log mel filterbank
 * (torchaudio.compliance.kaldi.fbank with AudioMAE's arguments), padded or
 * cut to target_frames, normalised with the AudioSet statistics.
 *
 * 16 kHz audio -> mono (downmix) -> minus its mean -> 25 ms / 10 ms frames
 * (snip_edges) -> per frame: DC removal, pre-emphasis 0.97, symmetric Hann,
 * 512-point power spectrum, 128 Kaldi mel banks (20 Hz - Nyquist),
 * ln(max(., FLT_EPSILON)) -> zero rows appended (or frames cut) up to
 * target_frames -> (x - norm_mean) / (2 norm_std). Output [1, frames, 128]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/frontend.h"
#include "batpipe/plugin.h"
#include "fe_fft.h"
#include "fe_kaldi.h"
#include "fe_parallel.h"
#include "fe_params.h"
#include "fe_signal.h"
#include "fe_stage.h"

#define NAME "fbank"
#define N_MELS 128

enum { OUT_FEATURES, OUT_FBANK_RAW, OUT_COUNT };

static const bp_param_spec fbank_params[] = {
    {sizeof(bp_param_spec), "sample_rate", BP_PARAM_INT, "16000", 8000, 192000, NULL,
     "input sample rate in Hz (AudioMAE: 16000); frames are 25 ms every 10 ms"},
    {sizeof(bp_param_spec), "downmix", BP_PARAM_STRING, "\"mean\"", BP_NO_RANGE, "mean|left|right",
     "stereo input: (left + right) / 2, left or right (AudioMAE's loader uses the first channel)"},
    {sizeof(bp_param_spec), "target_frames", BP_PARAM_INT, "1024", 0, 1048576, NULL,
     "append zero rows (before normalisation) or cut to this many frames (AudioMAE: 1024); 0 = keep all"},
    {sizeof(bp_param_spec), "norm_mean", BP_PARAM_FLOAT, "-4.2677393", BP_NO_RANGE, NULL,
     "dataset mean of the log filterbank (AudioSet: -4.2677393)"},
    {sizeof(bp_param_spec), "norm_std", BP_PARAM_FLOAT, "4.5689974", 1e-9, 1e9, NULL,
     "dataset standard deviation (AudioSet: 4.5689974); features are (x - norm_mean) / (2 norm_std)"},
};

static const bp_descriptor fbank_desc = {
    sizeof(bp_descriptor), NAME, "1.0.0",
    "AudioMAE front end: Kaldi log mel filterbank (128 bins, 25/10 ms), padded to target_frames, normalised",
    "facebookresearch/AudioMAE dataset.py + torchaudio.compliance.kaldi.fbank; checked against "
    "tests/data/frontends/fbank_ref.safetensors",
    fbank_params, sizeof fbank_params / sizeof fbank_params[0]};

typedef struct fbank_stage {
    bp_stage stage;
    int64_t sample_rate, target_frames;
    double norm_mean, norm_std;
    bp_fe_source downmix;
    int32_t n_threads;
    bp_fe_kaldi kaldi;
    float *scratch;    /* [n_threads * scratch_floats], FFTW-aligned */
    size_t scratch_floats;
    float *signal;     /* mono signal, [signal_cap] */
    int64_t signal_cap;
    float *rows;       /* [rows_cap] log filterbank when "fbank_raw" is not requested */
    int64_t rows_cap;
} fbank_stage;

static int64_t out_frames(const fbank_stage *f, int64_t t) { return f->target_frames > 0 ? f->target_frames : t; }

static bp_status reserve(fbank_stage *f, int64_t n, bp_error *err) {
    if (n > f->signal_cap) {
        float *p = malloc((size_t)n * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory for %lld samples", (long long)n);
        free(f->signal);
        f->signal = p;
        f->signal_cap = n;
    }
    int64_t need = bp_fe_kaldi_frames(&f->kaldi, n) * N_MELS;
    if (need > f->rows_cap) {
        float *p = malloc((size_t)need * sizeof *p);
        if (!p)
            return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory for %lld frames", (long long)(need / N_MELS));
        free(f->rows);
        f->rows = p;
        f->rows_cap = need;
    }
    return BP_OK;
}

static bp_status fbank_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)err;
    fbank_stage *f = st->self;
    const int64_t shape[2] = {BP_DIM_ANY, BP_DIM_ANY};
    *want = bp_spec_f32(2, shape, (double)f->sample_rate, "channel,time");
    return BP_OK;
}

static bp_status check_channels(int64_t c, bp_error *err) {
    if (c != 1 && c != 2)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %lld channels, fbank takes 1 or 2", (long long)c);
    return BP_OK;
}

static bp_status fbank_prepare(bp_stage *st, const bp_spec *in, bp_port *outputs, uint32_t *n_outputs,
                               bp_error *err) {
    fbank_stage *f = st->self;
    if (*n_outputs < OUT_COUNT)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": room for %u outputs, %d needed", (unsigned)*n_outputs,
                            OUT_COUNT);
    if (in->dtype >= 0 && in->dtype != BP_DTYPE_F32)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input is %s, needs F32 audio", bp_dtype_name(in->dtype));
    if (in->ndim >= 0 && in->ndim != 2)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %d dimensions, needs 2 [channels, samples]",
                            (int)in->ndim);
    if (in->ndim == 2 && in->shape[0] != BP_DIM_ANY) {
        bp_status s = check_channels(in->shape[0], err);
        if (s != BP_OK) return s;
    }
    if (in->rate > 0 && fabs(in->rate - (double)f->sample_rate) > 1e-9)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input rate is %g Hz, fbank is set up for %lld Hz", in->rate,
                            (long long)f->sample_rate);
    int64_t n = in->ndim == 2 ? in->shape[1] : BP_DIM_ANY, frames = BP_DIM_ANY;
    if (n != BP_DIM_ANY) {
        frames = bp_fe_kaldi_frames(&f->kaldi, n);
        if (frames < 1)
            return bp_error_set(err, BP_ERR_INVALID, NAME ": %lld samples are fewer than one %d-sample frame",
                                (long long)n, (int)f->kaldi.frame_len);
        bp_status s = reserve(f, n, err);
        if (s != BP_OK) return s;
    }
    const double rate = (double)f->sample_rate / (double)f->kaldi.frame_shift;
    const int64_t sf[3] = {1, out_frames(f, frames), N_MELS}, sr[2] = {frames, N_MELS};
    bp_fe_port(&outputs[OUT_FEATURES], "features", 3, sf, rate, "channel,time,mel", 0,
               "normalised log filterbank, zero-padded/cut to target_frames before normalisation");
    bp_fe_port(&outputs[OUT_FBANK_RAW], "fbank_raw", 2, sr, rate, "time,mel", 1,
               "Kaldi log mel filterbank (natural log) before padding and normalisation");
    *n_outputs = OUT_COUNT;
    return BP_OK;
}

typedef struct frames_ctx {
    const fbank_stage *f;
    const float *signal;
    float *rows;
} frames_ctx;

static void frames_run(void *arg, int32_t slot, int64_t begin, int64_t end) {
    const frames_ctx *fc = arg;
    float *scratch = fc->f->scratch + (size_t)slot * fc->f->scratch_floats;
    for (int64_t t = begin; t < end; t++)
        bp_fe_kaldi_frame(&fc->f->kaldi, fc->signal, t, scratch, fc->rows + t * N_MELS);
}

static bp_status fbank_process(bp_stage *st, const bp_tensor *in, bp_tensor *const *outputs, uint32_t n_outputs,
                               bp_error *err) {
    fbank_stage *f = st->self;
    bp_status s = bp_fe_check_audio(in, NAME, err);
    if (s == BP_OK) s = check_channels(in->shape[0], err);
    if (s != BP_OK) return s;
    if (n_outputs < 1 || !outputs || !outputs[OUT_FEATURES])
        return bp_error_set(err, BP_ERR_INVALID, NAME ": no 'features' output tensor");
    const int32_t in_ch = (int32_t)in->shape[0];
    const int64_t n = in->shape[1], frames = bp_fe_kaldi_frames(&f->kaldi, n), F = out_frames(f, frames);
    if (frames < 1)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": %lld samples are fewer than one %d-sample frame",
                            (long long)n, (int)f->kaldi.frame_len);
    const float *x = in->data;
    s = bp_fe_signal_check_finite(x, in_ch, n, NAME, err);
    if (s != BP_OK) return s;
    const int64_t sf[3] = {1, F, N_MELS}, sr[2] = {frames, N_MELS};
    bp_tensor *raw = n_outputs > OUT_FBANK_RAW ? outputs[OUT_FBANK_RAW] : NULL;
    s = bp_fe_check_output(outputs[OUT_FEATURES], NAME, "features", 3, sf, err);
    if (s == BP_OK) s = bp_fe_check_output(raw, NAME, "fbank_raw", 2, sr, err);
    if (s == BP_OK) s = reserve(f, n, err);
    if (s != BP_OK) return s;

    /* Mono signal minus its mean (AudioMAE: waveform - waveform.mean()). */
    float *sig = f->signal;
    bp_fe_signal_take(x, in_ch, n, f->downmix, sig, n);
    double mean = 0.0;
    for (int64_t i = 0; i < n; i++) mean += sig[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) sig[i] = (float)((double)sig[i] - mean);

    frames_ctx fc = {f, sig, raw ? raw->data : f->rows};
    bp_fe_parallel_for(f->n_threads, frames, frames_run, &fc);
    /* Pad with zero rows (or cut), then normalise, as AudioMAE does. */
    float *out = outputs[OUT_FEATURES]->data;
    const double scale = 1.0 / (2.0 * f->norm_std);
    const int64_t copied = frames < F ? frames : F;
    for (int64_t i = 0; i < copied * N_MELS; i++) out[i] = (float)(((double)fc.rows[i] - f->norm_mean) * scale);
    const float pad = (float)((0.0 - f->norm_mean) * scale);
    for (int64_t i = copied * N_MELS; i < F * N_MELS; i++) out[i] = pad;
    return BP_OK;
}

static void fbank_destroy(bp_stage *st) {
    if (!st) return;
    fbank_stage *f = st->self;
    bp_fe_kaldi_free(&f->kaldi);
    bp_fe_fft_dealloc(f->scratch);
    free(f->signal);
    free(f->rows);
    free(f);
}

static bp_status fbank_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                              bp_error *err) {
    *instance = NULL;
    if (index != 0) return bp_error_set(err, BP_ERR_NOT_FOUND, NAME ": no component %u", (unsigned)index);
    fbank_stage *f = calloc(1, sizeof *f);
    if (!f) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
    f->stage.self = f;
    f->sample_rate = bp_params_int(params, "sample_rate");
    f->target_frames = bp_params_int(params, "target_frames");
    f->norm_mean = bp_params_float(params, "norm_mean");
    f->norm_std = bp_params_float(params, "norm_std");
    f->n_threads = host && host->n_threads > 0 ? host->n_threads : 1;
    bp_status s = BP_OK;
    if (!(f->norm_std > 0.0))
        s = bp_error_set(err, BP_ERR_INVALID, NAME ": parameter 'norm_std' = %g must be positive", f->norm_std);
    if (s == BP_OK) s = bp_fe_downmix_parse(bp_params_string(params, "downmix"), NAME, &f->downmix, err);
    if (s == BP_OK) s = bp_fe_kaldi_init(&f->kaldi, (double)f->sample_rate, N_MELS, NAME, err);
    if (s == BP_OK) {
        f->scratch_floats = bp_fe_kaldi_scratch_floats(&f->kaldi);
        f->scratch = bp_fe_fft_alloc((size_t)f->n_threads * f->scratch_floats * sizeof(float));
        if (!f->scratch) s = bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
    }
    if (s != BP_OK) {
        fbank_destroy(&f->stage);
        return s;
    }
    f->stage.struct_size = sizeof f->stage;
    f->stage.input_spec = fbank_input_spec;
    f->stage.prepare = fbank_prepare;
    f->stage.process = fbank_process;
    f->stage.get_extension = NULL;
    f->stage.destroy = fbank_destroy;
    *instance = &f->stage;
    return BP_OK;
}

static const bp_descriptor *const fbank_descs[] = {&fbank_desc};
static const bp_factory fbank_factory = {sizeof(bp_factory), 1, fbank_descs, fbank_create};

static const bp_factory *fbank_get_factory(const char *kind_id) {
    return strcmp(kind_id, BP_KIND_FRONTEND_ID) == 0 ? &fbank_factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, NAME, "1.0.0", "MIT", NULL, NULL, NULL, fbank_get_factory};
