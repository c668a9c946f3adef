/* mel — the monaural / binaural log-mel front end of the Spatial-AST
 * baselines: the melipd front end without the IPD maps.
 *
 * 32 kHz audio -> (mono: downmix by "mean" | "left" | "right") -> zero-pad /
 * truncate to clip_samples -> STFT 1024/320 periodic Hann, centre reflect
 * padding -> Slaney mel (128, 50-14000 Hz) on |X| -> 10 log10(max(., 1e-10))
 * -> optional BatchNorm with running statistics -> bicubic resize along
 * time to target_frames. Output [channels, target_frames, 128]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/frontend.h"
#include "batpipe/plugin.h"
#include "fe_melspec.h"
#include "fe_params.h"
#include "fe_signal.h"
#include "fe_stage.h"

#define NAME "mel"
#define N_FFT 1024
#define HOP 320
#define N_MELS 128

enum { OUT_FEATURES, OUT_LOGMEL_RAW, OUT_LOGMEL_BN, OUT_COUNT };

static const bp_param_spec mel_params[] = {
    {sizeof(bp_param_spec), "sample_rate", BP_PARAM_INT, "32000", 28000, 384000, NULL,
     "input sample rate in Hz (the STFT and mel settings assume 32000, as in Spatial-AST)"},
    {sizeof(bp_param_spec), "channels", BP_PARAM_INT, "1", 1, 2, NULL,
     "1: one log-mel map (stereo input is downmixed); 2: one per ear (needs stereo input)"},
    {sizeof(bp_param_spec), "downmix", BP_PARAM_STRING, "\"mean\"", BP_NO_RANGE, "mean|left|right",
     "with channels = 1 and stereo input: (left + right) / 2, left or right"},
    {sizeof(bp_param_spec), "clip_samples", BP_PARAM_INT, "320000", 0, 2147483647.0, NULL,
     "zero-pad or truncate the input to this many samples first (10 s); 0 = keep its length"},
    {sizeof(bp_param_spec), "target_frames", BP_PARAM_INT, "1024", 0, 1048576, NULL,
     "bicubic-resize the 1 + samples/320 frames to this many (1001 -> 1024 for 10 s); 0 = no resize"},
    {sizeof(bp_param_spec), "bn_mean", BP_PARAM_FLOAT_LIST, "[]", BP_NO_RANGE, NULL,
     "BatchNorm running mean per channel (checkpoint bn.running_mean), dB; [] = no BatchNorm"},
    {sizeof(bp_param_spec), "bn_var", BP_PARAM_FLOAT_LIST, "[]", 0.0, 1e30, NULL,
     "BatchNorm running variance per channel (checkpoint bn.running_var); [] = no BatchNorm"},
};

static const bp_descriptor mel_desc = {
    sizeof(bp_descriptor), NAME, "1.0.0",
    "log-mel front end (mono or one map per ear) of the Spatial-AST baselines, [channels, frames, 128]",
    "the log-mel branch of zszheng147/Spatial-AST spatial_ast.py; checked against golden/melipd_10s.safetensors",
    mel_params, sizeof mel_params / sizeof mel_params[0]};

typedef struct mel_stage {
    bp_stage stage;
    int64_t sample_rate, channels, clip_samples, target_frames;
    bp_fe_source downmix;
    int use_bn;
    bp_fe_bn bn;
    bp_fe_melspec ms;
    float *logmel;       /* scratch [C, T, 128] when no "logmel_bn" output is given and a resize is needed */
    int64_t logmel_cap;  /* floats */
} mel_stage;

static int64_t signal_len(const mel_stage *m, int64_t n) { return m->clip_samples > 0 ? m->clip_samples : n; }
static int64_t frames_of(int64_t len) { return len == BP_DIM_ANY ? BP_DIM_ANY : 1 + len / HOP; }
static int64_t out_frames(const mel_stage *m, int64_t t) { return m->target_frames > 0 ? m->target_frames : t; }

static bp_status reserve(mel_stage *m, int64_t len, bp_error *err) {
    bp_status st = bp_fe_melspec_reserve(&m->ms, len, err);
    if (st != BP_OK) return st;
    int64_t need = m->channels * frames_of(len) * N_MELS;
    if (m->target_frames > 0 && need > m->logmel_cap) {
        float *p = malloc((size_t)need * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
        free(m->logmel);
        m->logmel = p;
        m->logmel_cap = need;
    }
    return BP_OK;
}

static bp_status channels_ok(const mel_stage *m, int64_t have, bp_error *err) {
    if (m->channels == 2 && have != 2)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %lld channel%s, mel with channels = 2 needs 2",
                            (long long)have, have == 1 ? "" : "s");
    if (m->channels == 1 && have != 1 && have != 2)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %lld channels, mel takes 1 or 2", (long long)have);
    return BP_OK;
}

static bp_status mel_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)err;
    mel_stage *m = st->self;
    const int64_t shape[2] = {m->channels == 2 ? 2 : BP_DIM_ANY, BP_DIM_ANY};
    *want = bp_spec_f32(2, shape, (double)m->sample_rate, "channel,time");
    return BP_OK;
}

static bp_status mel_prepare(bp_stage *st, const bp_spec *in, bp_port *outputs, uint32_t *n_outputs, bp_error *err) {
    mel_stage *m = st->self;
    if (*n_outputs < OUT_COUNT)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": room for %u outputs, %d needed", (unsigned)*n_outputs,
                            OUT_COUNT);
    if (in->dtype >= 0 && in->dtype != BP_DTYPE_F32)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input is %s, needs F32 audio", bp_dtype_name(in->dtype));
    if (in->ndim >= 0 && in->ndim != 2)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %d dimensions, needs 2 [channels, samples]",
                            (int)in->ndim);
    if (in->ndim == 2 && in->shape[0] != BP_DIM_ANY) {
        bp_status s = channels_ok(m, in->shape[0], err);
        if (s != BP_OK) return s;
    }
    if (in->rate > 0 && fabs(in->rate - (double)m->sample_rate) > 1e-9)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input rate is %g Hz, mel is set up for %lld Hz", in->rate,
                            (long long)m->sample_rate);
    int64_t len = signal_len(m, in->ndim == 2 ? in->shape[1] : BP_DIM_ANY);
    if (len != BP_DIM_ANY) {
        if (len < bp_fe_melspec_min_len(&m->ms))
            return bp_error_set(err, BP_ERR_INVALID, NAME ": %lld samples are too few (at least %lld)",
                                (long long)len, (long long)bp_fe_melspec_min_len(&m->ms));
        bp_status s = reserve(m, len, err);
        if (s != BP_OK) return s;
    }
    const int64_t T = frames_of(len), F = out_frames(m, T), C = m->channels;
    const double frame_rate = (double)m->sample_rate / HOP;
    double feat_rate = m->target_frames > 0
                           ? (len != BP_DIM_ANY ? (double)F * (double)m->sample_rate / (double)len : 0.0)
                           : frame_rate;
    const int64_t sf[3] = {C, F, N_MELS}, st3[3] = {C, T, N_MELS};
    bp_fe_port(&outputs[OUT_FEATURES], "features", 3, sf, feat_rate, "channel,time,mel", 0,
               "log-mel per channel (BatchNorm'd when bn_mean/bn_var are set), time resized to target_frames");
    bp_fe_port(&outputs[OUT_LOGMEL_RAW], "logmel_raw", 3, st3, frame_rate, "channel,time,mel", 1,
               "10 log10(max(|X| @ mel, 1e-10)), dB, before BatchNorm and resize");
    bp_fe_port(&outputs[OUT_LOGMEL_BN], "logmel_bn", 3, st3, frame_rate, "channel,time,mel", 1,
               "log-mel after the optional BatchNorm (= logmel_raw without one), before the resize");
    *n_outputs = OUT_COUNT;
    return BP_OK;
}

static bp_status mel_process(bp_stage *st, const bp_tensor *in, bp_tensor *const *outputs, uint32_t n_outputs,
                             bp_error *err) {
    mel_stage *m = st->self;
    bp_status s = bp_fe_check_audio(in, NAME, err);
    if (s == BP_OK) s = channels_ok(m, in->shape[0], err);
    if (s != BP_OK) return s;
    if (n_outputs < 1 || !outputs || !outputs[OUT_FEATURES])
        return bp_error_set(err, BP_ERR_INVALID, NAME ": no 'features' output tensor");
    const int32_t in_ch = (int32_t)in->shape[0];
    const int64_t n_in = in->shape[1], len = signal_len(m, n_in), C = m->channels;
    if (len < bp_fe_melspec_min_len(&m->ms))
        return bp_error_set(err, BP_ERR_INVALID, NAME ": %lld samples are too few (at least %lld)", (long long)len,
                            (long long)bp_fe_melspec_min_len(&m->ms));
    const float *x = in->data;
    s = bp_fe_signal_check_finite(x, in_ch, n_in, NAME, err);
    if (s != BP_OK) return s;
    const int64_t T = frames_of(len), F = out_frames(m, T);
    const int64_t sf[3] = {C, F, N_MELS}, st3[3] = {C, T, N_MELS};
    const char *names[OUT_COUNT] = {"features", "logmel_raw", "logmel_bn"};
    const int64_t *shapes[OUT_COUNT] = {sf, st3, st3};
    bp_tensor *o[OUT_COUNT] = {NULL};
    for (uint32_t i = 0; i < OUT_COUNT && i < n_outputs; i++) {
        o[i] = outputs[i];
        s = bp_fe_check_output(o[i], NAME, names[i], 3, shapes[i], err);
        if (s != BP_OK) return s;
    }
    s = reserve(m, len, err);
    if (s != BP_OK) return s;
    for (int32_t c = 0; c < (int32_t)C; c++) {
        bp_fe_source src = C == 2 ? (bp_fe_source)c : m->downmix;
        bp_fe_signal_take(x, in_ch, n_in, src, bp_fe_melspec_signal(&m->ms, c, len), len);
    }
    int resize = F != T;
    float *logmel = o[OUT_LOGMEL_BN] ? o[OUT_LOGMEL_BN]->data : (resize ? m->logmel : o[OUT_FEATURES]->data);
    bp_fe_melspec_out out = {logmel, o[OUT_LOGMEL_RAW] ? o[OUT_LOGMEL_RAW]->data : NULL, NULL, NULL, NULL};
    s = bp_fe_melspec_run(&m->ms, len, m->use_bn ? &m->bn : NULL, &out, err);
    if (s != BP_OK) return s;
    if (logmel != o[OUT_FEATURES]->data)
        bp_fe_resize_maps(logmel, C, T, o[OUT_FEATURES]->data, F, N_MELS, m->ms.cfg.n_threads);
    return BP_OK;
}

static void mel_destroy(bp_stage *st) {
    if (!st) return;
    mel_stage *m = st->self;
    bp_fe_melspec_free(&m->ms);
    free(m->logmel);
    free(m);
}

/* BatchNorm lists: both empty (none) or both with one value per channel. */
static bp_status read_bn(mel_stage *m, const bp_params *params, bp_error *err) {
    const bp_param_value *mean = bp_params_find(params, "bn_mean"), *var = bp_params_find(params, "bn_var");
    uint32_t nm = mean ? mean->count : 0, nv = var ? var->count : 0;
    if (nm == 0 && nv == 0) return BP_OK;
    if (nm == 0 || nv == 0)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": parameter '%s' is set but '%s' is not; give both or neither",
                            nm ? "bn_mean" : "bn_var", nm ? "bn_var" : "bn_mean");
    bp_status s = bp_fe_param_list(params, "bn_mean", (uint32_t)m->channels, 0, NAME, m->bn.mean, err);
    if (s == BP_OK) s = bp_fe_param_list(params, "bn_var", (uint32_t)m->channels, 0, NAME, m->bn.var, err);
    if (s == BP_OK) m->use_bn = 1;
    return s;
}

static bp_status mel_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                            bp_error *err) {
    *instance = NULL;
    if (index != 0) return bp_error_set(err, BP_ERR_NOT_FOUND, NAME ": no component %u", (unsigned)index);
    mel_stage *m = calloc(1, sizeof *m);
    if (!m) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
    m->sample_rate = bp_params_int(params, "sample_rate");
    m->channels = bp_params_int(params, "channels");
    m->clip_samples = bp_params_int(params, "clip_samples");
    m->target_frames = bp_params_int(params, "target_frames");
    bp_status s = BP_OK;
    if (m->channels < 1 || m->channels > 2)
        s = bp_error_set(err, BP_ERR_INVALID, NAME ": parameter 'channels' = %lld, must be 1 or 2",
                         (long long)m->channels);
    if (s == BP_OK) s = bp_fe_downmix_parse(bp_params_string(params, "downmix"), NAME, &m->downmix, err);
    if (s == BP_OK && m->clip_samples > 0 && m->clip_samples <= N_FFT / 2)
        s = bp_error_set(err, BP_ERR_INVALID, NAME ": parameter 'clip_samples' = %lld is too small (0 or > %d)",
                         (long long)m->clip_samples, N_FFT / 2);
    if (s == BP_OK) s = read_bn(m, params, err);
    if (s == BP_OK) {
        bp_fe_melspec_cfg cfg = {(double)m->sample_rate, N_FFT, HOP, N_MELS, 50.0, 14000.0, (int32_t)m->channels, 0,
                                 host && host->n_threads > 0 ? host->n_threads : 1, NAME};
        s = bp_fe_melspec_init(&m->ms, &cfg, err);
    }
    if (s == BP_OK && m->clip_samples > 0) s = reserve(m, m->clip_samples, err);
    if (s != BP_OK) {
        bp_fe_melspec_free(&m->ms);
        free(m->logmel);
        free(m);
        return s;
    }
    m->stage.struct_size = sizeof m->stage;
    m->stage.self = m;
    m->stage.input_spec = mel_input_spec;
    m->stage.prepare = mel_prepare;
    m->stage.process = mel_process;
    m->stage.get_extension = NULL;
    m->stage.destroy = mel_destroy;
    *instance = &m->stage;
    return BP_OK;
}

static const bp_descriptor *const mel_descs[] = {&mel_desc};
static const bp_factory mel_factory = {sizeof(bp_factory), 1, mel_descs, mel_create};

static const bp_factory *mel_get_factory(const char *kind_id) {
    return strcmp(kind_id, BP_KIND_FRONTEND_ID) == 0 ? &mel_factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, NAME, "1.0.0", "MIT", NULL, NULL, NULL, mel_get_factory};
