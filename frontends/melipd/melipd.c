/* melipd — the Spatial-AST front end (BAT paper): binaural log-mel + IPD.
 *
 * 32 kHz stereo [2, samples] F32 -> zero-pad/truncate to clip_samples ->
 * STFT 1024/320 periodic Hann, centre reflect padding -> Slaney mel (128,
 * 50-14000 Hz) on |X| -> 10 log10(max(., 1e-10)) -> BatchNorm with running
 * stats on the two log-mel maps; IPD = angle(X1) - angle(X0) -> cos, sin
 * @ the same mel matrix; stack [bn L, bn R, cos, sin] -> bicubic resize
 * along time to target_frames. See README.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/frontend.h"
#include "batpipe/plugin.h"
#include "fe_melspec.h"
#include "fe_params.h"
#include "fe_signal.h"
#include "fe_stage.h"
#include "melipd_weights.h"

#define NAME "melipd"
#define N_FFT 1024
#define HOP 320
#define N_MELS 128
#define F_MIN 50.0
#define F_MAX 14000.0

/* Output ports, in this order. */
enum { OUT_FEATURES, OUT_LOGMEL_RAW, OUT_LOGMEL_BN, OUT_IPD_COS, OUT_IPD_SIN, OUT_STACKED, OUT_COUNT };

static const bp_param_spec melipd_params[] = {
    {sizeof(bp_param_spec), "sample_rate", BP_PARAM_INT, "32000", 28000, 384000, NULL,
     "input sample rate in Hz (the STFT and mel settings assume 32000, as in Spatial-AST)"},
    {sizeof(bp_param_spec), "clip_samples", BP_PARAM_INT, "320000", 0, 2147483647.0, NULL,
     "zero-pad or truncate the input to this many samples first (official loader: 10 s); 0 = keep its length"},
    {sizeof(bp_param_spec), "target_frames", BP_PARAM_INT, "1024", 0, 1048576, NULL,
     "bicubic-resize the 1 + samples/320 frames to this many (official: 1001 -> 1024); 0 = no resize"},
    {sizeof(bp_param_spec), "bn_mean", BP_PARAM_FLOAT_LIST, "[0.0, 0.0]", BP_NO_RANGE, NULL,
     "BatchNorm running mean [left, right] of the log-mel maps in dB = checkpoint bn.running_mean (paper's: unknown)"},
    {sizeof(bp_param_spec), "bn_var", BP_PARAM_FLOAT_LIST, "[1.0, 1.0]", 0.0, 1e30, NULL,
     "BatchNorm running variance [left, right] = checkpoint bn.running_var (defaults: BatchNorm2d's initial state)"},
    {sizeof(bp_param_spec), "weights", BP_PARAM_PATH, "\"\"", BP_NO_RANGE, NULL,
     "safetensors checkpoint: its bn.running_mean/var override bn_mean/bn_var, its melW is checked; \"\" = none"},
};

static const bp_descriptor melipd_desc = {
    sizeof(bp_descriptor), NAME, "1.0.0",
    "Spatial-AST binaural front end: BatchNorm'd log-mel of both ears + mel-weighted cos/sin IPD, [4, frames, 128]",
    "zszheng147/Spatial-AST spatial_ast.py (a563803); checked against golden/melipd_10s.safetensors",
    melipd_params, sizeof melipd_params / sizeof melipd_params[0]};

typedef struct melipd {
    bp_stage stage; /* handed to the host; self points back here */
    const bp_host *host;
    int64_t sample_rate, clip_samples, target_frames;
    bp_fe_bn bn;
    bp_fe_melspec ms;
    float *stacked;      /* scratch [4, T, 128] when "stacked" is not requested but a resize is needed */
    int64_t stacked_cap; /* floats */
} melipd;

/* ------------------------------------------------------------------ shapes -- */

static int64_t signal_len(const melipd *m, int64_t in_samples) {
    return m->clip_samples > 0 ? m->clip_samples : in_samples;
}

static int64_t frames_of(int64_t len) { return len == BP_DIM_ANY ? BP_DIM_ANY : 1 + len / HOP; }

static int64_t out_frames(const melipd *m, int64_t t) { return m->target_frames > 0 ? m->target_frames : t; }

/* Make sure the scratch for a signal of len samples exists. */
static bp_status reserve(melipd *m, int64_t len, bp_error *err) {
    bp_status st = bp_fe_melspec_reserve(&m->ms, len, err);
    if (st != BP_OK) return st;
    int64_t need = 4 * frames_of(len) * N_MELS;
    if (m->target_frames > 0 && need > m->stacked_cap) {
        float *p = malloc((size_t)need * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory for %lld frames", (long long)(need / 512));
        free(m->stacked);
        m->stacked = p;
        m->stacked_cap = need;
    }
    return BP_OK;
}

/* ------------------------------------------------------------------- stage -- */

static bp_status melipd_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)err;
    melipd *m = st->self;
    const int64_t shape[2] = {2, BP_DIM_ANY};
    *want = bp_spec_f32(2, shape, (double)m->sample_rate, "channel,time");
    return BP_OK;
}

static bp_status melipd_prepare(bp_stage *st, const bp_spec *in, bp_port *outputs, uint32_t *n_outputs,
                                bp_error *err) {
    melipd *m = st->self;
    if (*n_outputs < OUT_COUNT)
        return bp_error_set(err, BP_ERR_INVALID, NAME ": room for %u outputs, %d needed", (unsigned)*n_outputs,
                            OUT_COUNT);
    if (in->dtype >= 0 && in->dtype != BP_DTYPE_F32)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input is %s, needs F32 audio", bp_dtype_name(in->dtype));
    if (in->ndim >= 0 && in->ndim != 2)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %d dimensions, needs 2 [channels, samples]",
                            (int)in->ndim);
    if (in->ndim == 2 && in->shape[0] != BP_DIM_ANY && in->shape[0] != 2)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %lld channel%s, melipd needs 2 (binaural)",
                            (long long)in->shape[0], in->shape[0] == 1 ? "" : "s");
    if (in->rate > 0 && fabs(in->rate - (double)m->sample_rate) > 1e-9)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input rate is %g Hz, melipd is set up for %lld Hz", in->rate,
                            (long long)m->sample_rate);
    int64_t len = signal_len(m, in->ndim == 2 ? in->shape[1] : BP_DIM_ANY);
    if (len != BP_DIM_ANY) {
        if (len < bp_fe_melspec_min_len(&m->ms))
            return bp_error_set(err, BP_ERR_INVALID, NAME ": %lld samples are too few (at least %lld)",
                                (long long)len, (long long)bp_fe_melspec_min_len(&m->ms));
        bp_status s = reserve(m, len, err);
        if (s != BP_OK) return s;
    }
    const int64_t T = frames_of(len), F = out_frames(m, T);
    const double frame_rate = (double)m->sample_rate / HOP;
    double feat_rate = m->target_frames > 0
                           ? (len != BP_DIM_ANY ? (double)F * (double)m->sample_rate / (double)len : 0.0)
                           : frame_rate;
    const int64_t sf[3] = {4, F, N_MELS}, s2[3] = {2, T, N_MELS}, s1[2] = {T, N_MELS}, s4[3] = {4, T, N_MELS};
    bp_fe_port(&outputs[OUT_FEATURES], "features", 3, sf, feat_rate, "map,time,mel", 0,
               "[bn log-mel L, bn log-mel R, mel cos IPD, mel sin IPD], time resized to target_frames");
    bp_fe_port(&outputs[OUT_LOGMEL_RAW], "logmel_raw", 3, s2, frame_rate, "channel,time,mel", 1,
               "10 log10(max(|X| @ mel, 1e-10)) per ear, dB, before BatchNorm");
    bp_fe_port(&outputs[OUT_LOGMEL_BN], "logmel_bn", 3, s2, frame_rate, "channel,time,mel", 1,
               "log-mel after BatchNorm with the running statistics");
    bp_fe_port(&outputs[OUT_IPD_COS], "ipd_cos", 2, s1, frame_rate, "time,mel", 1,
               "cos(angle(X1) - angle(X0)) @ mel");
    bp_fe_port(&outputs[OUT_IPD_SIN], "ipd_sin", 2, s1, frame_rate, "time,mel", 1,
               "sin(angle(X1) - angle(X0)) @ mel");
    bp_fe_port(&outputs[OUT_STACKED], "stacked", 3, s4, frame_rate, "map,time,mel", 1,
               "the four maps before the time resize");
    *n_outputs = OUT_COUNT;
    return BP_OK;
}

static bp_status melipd_process(bp_stage *st, const bp_tensor *in, bp_tensor *const *outputs, uint32_t n_outputs,
                                bp_error *err) {
    melipd *m = st->self;
    bp_status s = bp_fe_check_audio(in, NAME, err);
    if (s != BP_OK) return s;
    if (in->shape[0] != 2)
        return bp_error_set(err, BP_ERR_SPEC, NAME ": input has %lld channel%s, melipd needs 2 (binaural)",
                            (long long)in->shape[0], in->shape[0] == 1 ? "" : "s");
    if (n_outputs < 1 || !outputs || !outputs[OUT_FEATURES])
        return bp_error_set(err, BP_ERR_INVALID, NAME ": no 'features' output tensor");
    const int64_t n_in = in->shape[1], len = signal_len(m, n_in);
    if (len < bp_fe_melspec_min_len(&m->ms))
        return bp_error_set(err, BP_ERR_INVALID, NAME ": %lld samples are too few (at least %lld)", (long long)len,
                            (long long)bp_fe_melspec_min_len(&m->ms));
    const float *x = in->data;
    s = bp_fe_signal_check_finite(x, 2, n_in, NAME, err);
    if (s != BP_OK) return s;

    const int64_t T = frames_of(len), F = out_frames(m, T);
    const int64_t sf[3] = {4, F, N_MELS}, s2[3] = {2, T, N_MELS}, s1[2] = {T, N_MELS}, s4[3] = {4, T, N_MELS};
    const char *names[OUT_COUNT] = {"features", "logmel_raw", "logmel_bn", "ipd_cos", "ipd_sin", "stacked"};
    const int32_t nd[OUT_COUNT] = {3, 3, 3, 2, 2, 3};
    const int64_t *shapes[OUT_COUNT] = {sf, s2, s2, s1, s1, s4};
    bp_tensor *o[OUT_COUNT] = {NULL};
    for (uint32_t i = 0; i < OUT_COUNT && i < n_outputs; i++) {
        o[i] = outputs[i];
        s = bp_fe_check_output(o[i], NAME, names[i], nd[i], shapes[i], err);
        if (s != BP_OK) return s;
    }
    s = reserve(m, len, err);
    if (s != BP_OK) return s;
    for (int32_t c = 0; c < 2; c++)
        bp_fe_signal_take(x, 2, n_in, (bp_fe_source)c, bp_fe_melspec_signal(&m->ms, c, len), len);

    /* The stacked maps go straight to their final place when possible. */
    int resize = F != T;
    float *stacked = o[OUT_STACKED] ? o[OUT_STACKED]->data : (resize ? m->stacked : o[OUT_FEATURES]->data);
    bp_fe_melspec_out out = {stacked,
                             o[OUT_LOGMEL_RAW] ? o[OUT_LOGMEL_RAW]->data : NULL,
                             o[OUT_LOGMEL_BN] ? o[OUT_LOGMEL_BN]->data : NULL,
                             o[OUT_IPD_COS] ? o[OUT_IPD_COS]->data : NULL,
                             o[OUT_IPD_SIN] ? o[OUT_IPD_SIN]->data : NULL};
    s = bp_fe_melspec_run(&m->ms, len, &m->bn, &out, err);
    if (s != BP_OK) return s;
    if (stacked != o[OUT_FEATURES]->data)
        bp_fe_resize_maps(stacked, 4, T, o[OUT_FEATURES]->data, F, N_MELS, m->ms.cfg.n_threads);
    return BP_OK;
}

static void melipd_destroy(bp_stage *st) {
    if (!st) return;
    melipd *m = st->self;
    bp_fe_melspec_free(&m->ms);
    free(m->stacked);
    free(m);
}

/* ----------------------------------------------------------------- factory -- */

static bp_status melipd_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                               bp_error *err) {
    *instance = NULL;
    if (index != 0) return bp_error_set(err, BP_ERR_NOT_FOUND, NAME ": no component %u", (unsigned)index);
    melipd *m = calloc(1, sizeof *m);
    if (!m) return bp_error_set(err, BP_ERR_NOMEM, NAME ": out of memory");
    m->host = host;
    m->sample_rate = bp_params_int(params, "sample_rate");
    m->clip_samples = bp_params_int(params, "clip_samples");
    m->target_frames = bp_params_int(params, "target_frames");
    bp_status s = BP_OK;
    if (m->clip_samples > 0 && m->clip_samples <= N_FFT / 2)
        s = bp_error_set(err, BP_ERR_INVALID, NAME ": parameter 'clip_samples' = %lld is too small (0 or > %d)",
                         (long long)m->clip_samples, N_FFT / 2);
    if (s == BP_OK) s = bp_fe_param_list(params, "bn_mean", 2, 0, NAME, m->bn.mean, err);
    if (s == BP_OK) s = bp_fe_param_list(params, "bn_var", 2, 0, NAME, m->bn.var, err);
    if (s == BP_OK) {
        bp_fe_melspec_cfg cfg = {(double)m->sample_rate, N_FFT, HOP, N_MELS, F_MIN, F_MAX, 2, 1,
                                 host && host->n_threads > 0 ? host->n_threads : 1, NAME};
        s = bp_fe_melspec_init(&m->ms, &cfg, err);
    }
    const char *weights = bp_params_string(params, "weights");
    if (s == BP_OK && weights && weights[0]) {
        s = bp_melipd_load_weights(weights, &m->ms.mel, &m->bn, err);
        if (s != BP_OK) bp_error_prefix(err, NAME ": parameter 'weights': ");
    }
    if (s == BP_OK && m->clip_samples > 0) s = reserve(m, m->clip_samples, err);
    if (s != BP_OK) {
        bp_fe_melspec_free(&m->ms);
        free(m->stacked);
        free(m);
        return s;
    }
    m->stage.struct_size = sizeof m->stage;
    m->stage.self = m;
    m->stage.input_spec = melipd_input_spec;
    m->stage.prepare = melipd_prepare;
    m->stage.process = melipd_process;
    m->stage.get_extension = NULL;
    m->stage.destroy = melipd_destroy;
    *instance = &m->stage;
    return BP_OK;
}

static const bp_descriptor *const melipd_descs[] = {&melipd_desc};
static const bp_factory melipd_factory = {sizeof(bp_factory), 1, melipd_descs, melipd_create};

static const bp_factory *melipd_get_factory(const char *kind_id) {
    return strcmp(kind_id, BP_KIND_FRONTEND_ID) == 0 ? &melipd_factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, NAME, "1.0.0", "MIT", NULL, NULL, NULL, melipd_get_factory};
