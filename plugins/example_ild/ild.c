/* An example third-party batpipe plugin: a frontend computing the broadband
 * interaural level difference (ILD) per frame of a binaural clip.
 *
 * It is built out of tree against the installed headers (pkg-config
 * batpipe) and needs nothing from libbatpipe at link time: the ABI is plain
 * structs, and the helpers it uses (bp_error_set, bp_params_*, bp_spec_f32)
 * are static inline in the headers. Read it top to bottom as a template:
 *   1. declare parameters;  2. implement the bp_stage functions;
 *   3. a descriptor + factory;  4. the one exported symbol, bp_entry. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <batpipe/frontend.h>
#include <batpipe/plugin.h>

/* 1. Parameters: the host validates configs against these before create. */
static const bp_param_spec ild_params[] = {
    {sizeof(bp_param_spec), "sample_rate", BP_PARAM_INT, "32000", 8000, 192000, NULL,
     "input sample rate in Hz (files at other rates are resampled by the host)"},
    {sizeof(bp_param_spec), "frame", BP_PARAM_INT, "1024", 16, 65536, NULL, "analysis window in samples (Hann)"},
    {sizeof(bp_param_spec), "hop", BP_PARAM_INT, "320", 1, 65536, NULL, "hop between frames in samples"},
    {sizeof(bp_param_spec), "floor_db", BP_PARAM_FLOAT, "-100.0", -200.0, 0.0, NULL,
     "energy floor in dB full scale; frames below it on both ears give an ILD of 0"},
};

typedef struct ild {
    bp_stage stage; /* first member: the host sees this */
    int64_t rate, frame, hop;
    double floor;   /* linear energy floor */
    float *window;  /* owned: [frame] */
} ild;

static int64_t n_frames(const ild *p, int64_t samples) {
    return samples < p->frame ? 0 : 1 + (samples - p->frame) / p->hop;
}

/* 2. The stage. */
static bp_status ild_input_spec(bp_stage *st, bp_spec *want, bp_error *err) {
    (void)err;
    const ild *p = st->self;
    int64_t shape[2] = {2, BP_DIM_ANY}; /* stereo, any length */
    *want = bp_spec_f32(2, shape, (double)p->rate, "channels,samples");
    return BP_OK;
}

static bp_status ild_prepare(bp_stage *st, const bp_spec *in, bp_port *out, uint32_t *n, bp_error *err) {
    const ild *p = st->self;
    if (*n < 1) return bp_error_set(err, BP_ERR_INVALID, "ild: no room for the output");
    int64_t frames = in->shape[1] == BP_DIM_ANY ? BP_DIM_ANY : n_frames(p, in->shape[1]);
    int64_t shape[2] = {frames, 1};
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    strcpy(out->name, "ild");
    out->spec = bp_spec_f32(2, shape, (double)p->rate / (double)p->hop, "frames,value");
    strcpy(out->help, "right minus left level per frame, dB (positive: louder on the right)");
    *n = 1;
    return BP_OK;
}

static bp_status ild_process(bp_stage *st, const bp_tensor *in, bp_tensor *const *outs, uint32_t n, bp_error *err) {
    const ild *p = st->self;
    (void)n;
    int64_t samples = in->shape[1], frames = n_frames(p, samples);
    const float *left = in->data, *right = left + samples;
    float *y = outs[0]->data;
    for (int64_t f = 0; f < frames; f++) {
        double el = 0, er = 0;
        for (int64_t k = 0; k < p->frame; k++) {
            double w = p->window[k], l = left[f * p->hop + k] * w, r = right[f * p->hop + k] * w;
            el += l * l;
            er += r * r;
        }
        el /= (double)p->frame;
        er /= (double)p->frame;
        if (!isfinite(el) || !isfinite(er)) return bp_error_set(err, BP_ERR_NUMERIC, "ild: non-finite input in frame %lld", (long long)f);
        y[f] = (el < p->floor && er < p->floor) ? 0.0f : (float)(10.0 * log10((er + p->floor) / (el + p->floor)));
    }
    return BP_OK;
}

static void ild_destroy(bp_stage *st) {
    ild *p = st->self;
    free(p->window);
    free(p);
}

static bp_status ild_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                            bp_error *err) {
    (void)host, (void)index;
    ild *p = calloc(1, sizeof *p);
    if (!p) return bp_error_set(err, BP_ERR_NOMEM, "ild: out of memory");
    p->rate = bp_params_int(params, "sample_rate");
    p->frame = bp_params_int(params, "frame");
    p->hop = bp_params_int(params, "hop");
    p->floor = pow(10.0, bp_params_float(params, "floor_db") / 10.0);
    p->window = malloc((size_t)p->frame * sizeof *p->window);
    if (!p->window) {
        free(p);
        return bp_error_set(err, BP_ERR_NOMEM, "ild: out of memory");
    }
    for (int64_t k = 0; k < p->frame; k++) p->window[k] = (float)(0.5 - 0.5 * cos(2 * M_PI * (double)k / (double)p->frame));
    p->stage.struct_size = sizeof p->stage;
    p->stage.self = p;
    p->stage.input_spec = ild_input_spec;
    p->stage.prepare = ild_prepare;
    p->stage.process = ild_process;
    p->stage.destroy = ild_destroy;
    *instance = &p->stage;
    return BP_OK;
}

/* 3. Descriptor and factory. */
static const bp_descriptor ild_descriptor = {
    sizeof(bp_descriptor), "ild", "1.0.0", "broadband interaural level difference per frame (example plugin)",
    "10·log10(E_right / E_left) over Hann-windowed frames", ild_params, sizeof ild_params / sizeof ild_params[0],
};
static const bp_descriptor *const descriptors[] = {&ild_descriptor};
static const bp_factory frontend_factory = {sizeof(bp_factory), 1, descriptors, ild_create};

static const bp_factory *get_factory(const char *kind_id) {
    return strcmp(kind_id, BP_KIND_FRONTEND_ID) == 0 ? &frontend_factory : NULL;
}

/* 4. The only exported symbol. */
BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, "example-ild", "1.0.0", "MIT", NULL, NULL, NULL, get_factory,
};
