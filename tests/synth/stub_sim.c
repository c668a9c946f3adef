/* A test-only stand-in simulator ("stub_direct"): the direct path only, one
 * delay and 1/r gain per ear (ears at ±9 cm along x, so a source at +x is
 * louder and earlier on the right), linear-interpolated fractional delays,
 * plus a crude head shadow on the far ear. Built into
 * test-plugins/synth so that it never shows up in a regular plugin scan; it
 * lets the generator's tests run without the real simulator (ism_binaural).
 *
 * Parameters: `hrtf` (a path that must exist when set: stands in for the real
 * simulator's HRTF file, to test how a missing file is reported),
 * `fail_after` (fail every render after that many, 0 = never). Stats:
 * direct distance and delay, and Eyring's T60 at 500 Hz and 1 kHz. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/plugin.h"
#include "batpipe/simulator.h"
#include "batpipe/tensor.h"

static const bp_param_spec stub_params[] = {
    {sizeof(bp_param_spec), "hrtf", BP_PARAM_PATH, "\"\"", BP_NO_RANGE, NULL,
     "HRTF file that must exist when set (the stub does not read it)"},
    {sizeof(bp_param_spec), "fail_after", BP_PARAM_INT, "0", 0, 1e9, NULL,
     "fail every render after this many (0 = never)"},
};

typedef struct stub {
    bp_simulator sim;
    int64_t fail_after, renders;
    bp_tensor out;
    float *buf;
    int64_t cap;
    const char *names[4];
    double values[4];
} stub;

static double eyring(const bp_sim_room *r, int band) {
    double S = 0, A = 0, V = r->size[0] * r->size[1] * r->size[2];
    double area[6] = {r->size[1] * r->size[2], r->size[1] * r->size[2], r->size[0] * r->size[2],
                      r->size[0] * r->size[2], r->size[0] * r->size[1], r->size[0] * r->size[1]};
    for (int w = 0; w < 6; w++) {
        S += area[w];
        A += area[w] * r->absorption[w][band];
    }
    return 0.161 * V / (-S * log(1.0 - A / S));
}

static bp_status stub_render(bp_simulator *sim, const bp_sim_request *q, const bp_tensor **rir, bp_error *err) {
    stub *s = sim->self;
    if (s->fail_after && s->renders >= s->fail_after)
        return bp_error_set(err, BP_ERR_INTERNAL, "stub_direct: failing as asked after %lld renders",
                            (long long)s->renders);
    const bp_sim_room *r = q->room;
    for (int k = 0; k < 3; k++) {
        if (!isfinite(q->source[k]) || !isfinite(q->listener[k]))
            return bp_error_set(err, BP_ERR_INVALID, "stub_direct: non-finite position");
        if (q->source[k] < 0.1 || q->source[k] > r->size[k] - 0.1 || q->listener[k] < 0.1 ||
            q->listener[k] > r->size[k] - 0.1)
            return bp_error_set(err, BP_ERR_INVALID,
                                "stub_direct: source (%g, %g, %g) or listener (%g, %g, %g) outside the room or within "
                                "0.1 m of a wall",
                                q->source[0], q->source[1], q->source[2], q->listener[0], q->listener[1],
                                q->listener[2]);
    }
    int64_t n = (int64_t)llround(q->max_seconds * q->sample_rate);
    if (n < 1 || n > 10000000) return bp_error_set(err, BP_ERR_INVALID, "stub_direct: bad length");
    if (n > s->cap) {
        float *b = realloc(s->buf, (size_t)(2 * n) * sizeof *b);
        if (!b) return bp_error_set(err, BP_ERR_NOMEM, "stub_direct: out of memory");
        s->buf = b;
        s->cap = n;
    }
    memset(s->buf, 0, (size_t)(2 * n) * sizeof *s->buf);
    double c = 343.0, d = 0;
    for (int k = 0; k < 3; k++) d += (q->source[k] - q->listener[k]) * (q->source[k] - q->listener[k]);
    d = sqrt(d);
    double dx = q->source[0] - q->listener[0];
    for (int ear = 0; ear < 2; ear++) { /* 0 left (−x), 1 right (+x) */
        double e[3] = {q->listener[0] + (ear ? 0.09 : -0.09), q->listener[1], q->listener[2]}, de = 0;
        for (int k = 0; k < 3; k++) de += (q->source[k] - e[k]) * (q->source[k] - e[k]);
        de = sqrt(de);
        double shadow = ((ear == 1 && dx < 0) || (ear == 0 && dx > 0)) ? 1.0 - 0.5 * fabs(dx) / fmax(d, 1e-6) : 1.0;
        double g = shadow / fmax(de, 0.1), t = de / c * q->sample_rate;
        int64_t i = (int64_t)floor(t);
        double f = t - (double)i;
        if (i + 1 < n) {
            s->buf[ear * n + i] += (float)(g * (1 - f));
            s->buf[ear * n + i + 1] += (float)(g * f);
        }
    }
    int64_t shape[2] = {2, n};
    s->out = bp_tensor_view(BP_DTYPE_F32, 2, shape, s->buf);
    *rir = &s->out;
    s->renders++;
    s->values[0] = d;
    s->values[1] = d / c;
    s->values[2] = r->n_bands > 3 ? eyring(r, 2) : NAN;
    s->values[3] = r->n_bands > 3 ? eyring(r, 3) : NAN;
    return BP_OK;
}

static bp_status stub_stats(bp_simulator *sim, const char **names, double *values, uint32_t cap, uint32_t *n,
                            bp_error *err) {
    (void)err;
    stub *s = sim->self;
    uint32_t k = cap < 4 ? cap : 4;
    for (uint32_t i = 0; i < k; i++) {
        names[i] = s->names[i];
        values[i] = s->values[i];
    }
    *n = k;
    return BP_OK;
}

static void stub_destroy(bp_simulator *sim) {
    stub *s = sim->self;
    free(s->buf);
    free(s);
}

static bp_status stub_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                             bp_error *err) {
    (void)host, (void)index;
    const char *sofa = bp_params_string(params, "hrtf");
    if (sofa && *sofa) {
        FILE *f = fopen(sofa, "rb");
        if (!f) return bp_error_set(err, BP_ERR_NOT_FOUND, "stub_direct: cannot open the SOFA file %s", sofa);
        fclose(f);
    }
    stub *s = calloc(1, sizeof *s);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, "stub_direct: out of memory");
    s->fail_after = bp_params_int(params, "fail_after");
    s->names[0] = "direct_distance_m";
    s->names[1] = "direct_delay_s";
    s->names[2] = "t60_eyring_500hz";
    s->names[3] = "t60_eyring_1000hz";
    s->sim.struct_size = sizeof s->sim;
    s->sim.self = s;
    s->sim.render = stub_render;
    s->sim.last_stats = stub_stats;
    s->sim.destroy = stub_destroy;
    *instance = &s->sim;
    return BP_OK;
}

static const bp_descriptor stub_desc = {
    sizeof(bp_descriptor),
    "stub_direct",
    "0.1.0",
    "test stand-in: direct path with per-ear delay and 1/r (no room)",
    NULL,
    stub_params,
    sizeof stub_params / sizeof stub_params[0],
};
static const bp_descriptor *const descs[] = {&stub_desc};
static const bp_factory factory = {sizeof(bp_factory), 1, descs, stub_create};

static const bp_factory *get_factory(const char *kind_id) {
    return strcmp(kind_id, BP_KIND_SIMULATOR_ID) == 0 ? &factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, "stub-sim", "0.1.0", "MIT", NULL, NULL, NULL, get_factory,
};
