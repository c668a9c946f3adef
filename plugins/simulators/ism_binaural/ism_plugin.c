/* ism_binaural — the simulator plugin: parameters, instances, render, stats.
 *
 * One render: check the request and derive the scene (ism_request.c), the
 * early image-source part (ism_early.c), the diffuse tail (ism_tail.c), then
 * the statistics of the render. Everything heavy (HRIRs at the render rate,
 * band filters, FFT plans) is built once in create. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/plugin.h"
#include "batpipe/simulator.h"
#include "ism_bands.h"
#include "ism_early.h"
#include "ism_hrtf.h"
#include "ism_request.h"
#include "ism_tail.h"

#define ISM_DEFAULT_HRTF "/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa"

/* ------------------------------------------------------------- parameters -- */

static const bp_param_spec ism_params[] = {
    {sizeof(bp_param_spec), "sample_rate", BP_PARAM_INT, "32000", 8000, 192000, NULL,
     "render rate in Hz; requests must ask for the same rate"},
    {sizeof(bp_param_spec), "max_order", BP_PARAM_INT, "-1", -1, 1000, NULL,
     "highest reflection order of the image sources; -1 = no limit (max_time_s bounds them); with the tail on, the "
     "tail starts at the first image this leaves out"},
    {sizeof(bp_param_spec), "max_time_s", BP_PARAM_FLOAT, "0.08", 0.001, 10.0, NULL,
     "image sources arriving before this time (s) form the early part; the diffuse tail starts there"},
    {sizeof(bp_param_spec), "tail", BP_PARAM_BOOL, "true", BP_NO_RANGE, NULL,
     "add the stochastic binaural late tail (Eyring decay per band) after the early part"},
    {sizeof(bp_param_spec), "tail_density_max", BP_PARAM_FLOAT, "10000.0", 100.0, 1.0e6, NULL,
     "most Diracs per second in the tail (their rate 4*pi*c^3*t^2/V is capped here)"},
    {sizeof(bp_param_spec), "tail_floor_db", BP_PARAM_FLOAT, "80.0", 10.0, 200.0, NULL,
     "the tail stops once every band has decayed this many dB below its start"},
    {sizeof(bp_param_spec), "tail_window_s", BP_PARAM_FLOAT, "0.01", 0.001, 1.0, NULL,
     "the tail starts at the level of the reflections in this last window of the early part (widened to hold 16)"},
    {sizeof(bp_param_spec), "air_absorption", BP_PARAM_BOOL, "true", BP_NO_RANGE, NULL,
     "ISO 9613-1 air absorption at the room's temperature and humidity"},
    {sizeof(bp_param_spec), "hrtf", BP_PARAM_PATH, "\"" ISM_DEFAULT_HRTF "\"", BP_NO_RANGE, NULL,
     "SOFA file (SimpleFreeFieldHRIR) of the head; default: MIT KEMAR, normal pinna (Debian libmysofa1)"},
    {sizeof(bp_param_spec), "hrir_resampler", BP_PARAM_STRING, "\"best\"", BP_NO_RANGE, "best|medium|fastest",
     "libsamplerate sinc converter that brings the HRIRs to sample_rate once, in create"},
    {sizeof(bp_param_spec), "delay_steps", BP_PARAM_INT, "8", 1, 64, NULL,
     "fractional delays: precomputed HRIR positions per sample (windowed sinc); 1 = whole samples"},
    {sizeof(bp_param_spec), "bands", BP_PARAM_FLOAT_LIST, "[125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0]", 10.0,
     96000.0, NULL, "octave-band centres in Hz of the wall and air absorption; room data are interpolated to them"},
};
#define ISM_N_PARAMS (sizeof ism_params / sizeof ism_params[0])

/* --------------------------------------------------------------- instance -- */

enum {
    STAT_N_IMAGES,
    STAT_MAX_ORDER,
    STAT_N_BELOW,
    STAT_EARLY_END,
    STAT_TAIL_END,
    STAT_N_DIRACS,
    STAT_TAIL_WINDOW,
    STAT_TAIL_WINDOW_END,
    STAT_DIRECT_DISTANCE,
    STAT_DIRECT_DELAY,
    STAT_DIRECT_AZIMUTH,
    STAT_DIRECT_ELEVATION,
    STAT_DIRECT_HRIR,
    STAT_DIRECT_HRIR_AZIMUTH,
    STAT_DIRECT_HRIR_ELEVATION,
    STAT_DIRECT_CLAMPED,
    STAT_HRIR_ONSET,
    STAT_SPEED_OF_SOUND,
    STAT_VOLUME,
    STAT_SURFACE,
    STAT_FIXED
};
static const char *const fixed_stat_names[STAT_FIXED] = {"n_images",
                                                         "max_order_rendered",
                                                         "n_images_below_hrtf",
                                                         "early_end_s",
                                                         "tail_end_s",
                                                         "n_tail_diracs",
                                                         "tail_window_s",
                                                         "tail_window_end_s",
                                                         "direct_distance_m",
                                                         "direct_delay_s",
                                                         "direct_azimuth_deg",
                                                         "direct_elevation_deg",
                                                         "direct_hrir_index",
                                                         "direct_hrir_azimuth_deg",
                                                         "direct_hrir_elevation_deg",
                                                         "direct_elevation_clamped",
                                                         "hrir_onset_s",
                                                         "speed_of_sound_m_s",
                                                         "volume_m3",
                                                         "surface_m2"};
enum { BAND_EYRING, BAND_SABINE, BAND_ALPHA, BAND_TAIL_DB, BAND_STATS };
static const char *const band_stat_fmt[BAND_STATS] = {"rt60_eyring_%ghz", "rt60_sabine_%ghz", "mean_absorption_%ghz",
                                                      "tail_level_db_%ghz"};
#define ISM_MAX_STATS (STAT_FIXED + BAND_STATS * ISM_MAX_BANDS)

typedef struct ism_sim {
    bp_simulator sim; /* first member: the host sees this */
    const bp_host *host;
    double fs;
    int32_t max_order;
    double max_time;
    int32_t tail;
    double tail_density_max, tail_floor_db, tail_window;
    int32_t air_absorption;
    ism_bands bands;
    ism_hrtf hrtf;
    ism_early early;
    ism_tail tail_state;
    float *out; /* owned: [2][cap] */
    int64_t out_cap;
    bp_tensor rir; /* describes `out` (owns_data = 0) */
    char band_names[BAND_STATS][ISM_MAX_BANDS][40];
    const char *stat_names[ISM_MAX_STATS];
    double stat_values[ISM_MAX_STATS];
    uint32_t n_stats; /* 0 until a render succeeded */
} ism_sim;

static void record_stats(ism_sim *p, const ism_scene *sc, const bp_sim_request *req, const ism_early_result *er,
                         const ism_tail_result *tr) {
    const double *rate = er->tail_rate;
    double *v = p->stat_values;
    const ism_hrtf *h = &p->hrtf;
    double dx = req->source[0] - req->listener[0], dy = req->source[1] - req->listener[1],
           dz = req->source[2] - req->listener[2];
    double az = atan2(-dz, dx) * 180.0 / M_PI, el = atan2(dy, hypot(dx, dz)) * 180.0 / M_PI;
    v[STAT_N_IMAGES] = (double)er->n_images;
    v[STAT_MAX_ORDER] = er->max_order;
    v[STAT_N_BELOW] = (double)er->n_below;
    v[STAT_EARLY_END] = er->t_end;
    v[STAT_TAIL_END] = tr->t_end;
    v[STAT_N_DIRACS] = (double)tr->n_diracs;
    v[STAT_TAIL_WINDOW] = er->tail_window;
    v[STAT_TAIL_WINDOW_END] = er->tail_window_end;
    v[STAT_DIRECT_DISTANCE] = er->direct_distance;
    v[STAT_DIRECT_DELAY] = er->direct_delay;
    v[STAT_DIRECT_AZIMUTH] = az < 0.0 ? az + 360.0 : az;
    v[STAT_DIRECT_ELEVATION] = el;
    v[STAT_DIRECT_HRIR] = er->direct_hrir;
    v[STAT_DIRECT_HRIR_AZIMUTH] = er->direct_hrir >= 0 ? h->az[er->direct_hrir] : NAN;
    v[STAT_DIRECT_HRIR_ELEVATION] = er->direct_hrir >= 0 ? h->el[er->direct_hrir] : NAN;
    v[STAT_DIRECT_CLAMPED] = el < h->min_elevation - 1e-9 ? 1.0 : 0.0;
    v[STAT_HRIR_ONSET] = h->onset / p->fs;
    v[STAT_SPEED_OF_SOUND] = sc->c;
    v[STAT_VOLUME] = sc->acoustics.volume;
    v[STAT_SURFACE] = sc->acoustics.surface;
    uint32_t k = STAT_FIXED;
    for (int32_t b = 0; b < p->bands.n; b++) v[k++] = sc->acoustics.eyring[b];
    for (int32_t b = 0; b < p->bands.n; b++) v[k++] = sc->acoustics.sabine[b];
    for (int32_t b = 0; b < p->bands.n; b++) v[k++] = sc->acoustics.mean_alpha[b];
    for (int32_t b = 0; b < p->bands.n; b++) v[k++] = rate[b] > 0.0 ? fmax(10.0 * log10(rate[b]), -300.0) : -300.0;
    p->n_stats = k;
}

static bp_status sim_render(bp_simulator *sim, const bp_sim_request *req, const bp_tensor **rir, bp_error *err) {
    ism_sim *p = sim->self;
    p->n_stats = 0;
    if (!rir) return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: render: rir is NULL");
    *rir = NULL;
    ism_request_opts opts = {p->fs, p->max_time, p->air_absorption};
    ism_scene sc;
    int64_t n = 0;
    bp_status st = ism_request_scene(req, &p->bands, &opts, &sc, &n, err);
    if (st != BP_OK) return st;
    if (n > p->out_cap) {
        float *grown = realloc(p->out, 2 * (size_t)n * sizeof(float));
        if (!grown)
            return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: out of memory for a %lld-sample response",
                                (long long)n);
        p->out = grown;
        p->out_cap = n;
    }
    memset(p->out, 0, 2 * (size_t)n * sizeof(float));
    ism_early_result er;
    st = ism_early_render(&p->early, &p->hrtf, &sc, p->max_order, p->tail ? p->tail_window : 0.0, p->out, n, &er, err);
    if (st != BP_OK) return st;
    ism_tail_result tr;
    memset(&tr, 0, sizeof tr);
    if (p->tail) {
        ism_tail_args ta;
        memset(&ta, 0, sizeof ta);
        ta.t_start = er.t_end;
        for (int32_t b = 0; b < p->bands.n; b++) ta.rate[b] = er.tail_rate[b];
        ta.density_max = p->tail_density_max;
        ta.floor_db = p->tail_floor_db;
        ta.seed = req->seed;
        st = ism_tail_render(&p->tail_state, &p->hrtf, &sc, &ta, p->out, n, &tr, err);
        if (st != BP_OK) return st;
    }
    record_stats(p, &sc, req, &er, &tr);
    int64_t shape[2] = {2, n};
    p->rir = bp_tensor_view(BP_DTYPE_F32, 2, shape, p->out);
    p->rir.name = "rir";
    *rir = &p->rir;
    return BP_OK;
}

static bp_status sim_last_stats(bp_simulator *sim, const char **names, double *values, uint32_t cap, uint32_t *n,
                                bp_error *err) {
    ism_sim *p = sim->self;
    if (!n) return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: last_stats: n is NULL");
    if (cap == 0) {
        *n = p->n_stats;
        return BP_OK;
    }
    if (!names || !values)
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: last_stats: names or values is NULL");
    uint32_t k = p->n_stats < cap ? p->n_stats : cap;
    for (uint32_t i = 0; i < k; i++) {
        names[i] = p->stat_names[i];
        values[i] = p->stat_values[i];
    }
    *n = k;
    return BP_OK;
}

static void sim_destroy(bp_simulator *sim) {
    if (!sim) return;
    ism_sim *p = sim->self;
    ism_tail_free(&p->tail_state);
    ism_early_free(&p->early);
    ism_hrtf_free(&p->hrtf);
    ism_bands_free(&p->bands);
    free(p->out);
    free(p);
}

static void build_stat_names(ism_sim *p) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < STAT_FIXED; i++) p->stat_names[k++] = fixed_stat_names[i];
    for (int32_t s = 0; s < BAND_STATS; s++)
        for (int32_t b = 0; b < p->bands.n; b++) {
            snprintf(p->band_names[s][b], sizeof p->band_names[s][b], band_stat_fmt[s], p->bands.hz[b]);
            p->stat_names[k++] = p->band_names[s][b];
        }
}

static bp_status sim_create(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                            bp_error *err) {
    (void)index;
    if (!instance) return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: create: instance is NULL");
    *instance = NULL;
    ism_sim *p = calloc(1, sizeof *p);
    if (!p) return bp_error_set(err, BP_ERR_NOMEM, "ism_binaural: out of memory");
    p->host = host;
    p->fs = (double)bp_params_int(params, "sample_rate");
    p->max_order = (int32_t)bp_params_int(params, "max_order");
    p->max_time = bp_params_float(params, "max_time_s");
    p->tail = bp_params_bool(params, "tail");
    p->tail_density_max = bp_params_float(params, "tail_density_max");
    p->tail_floor_db = bp_params_float(params, "tail_floor_db");
    p->tail_window = bp_params_float(params, "tail_window_s");
    p->air_absorption = bp_params_bool(params, "air_absorption");
    const char *path = bp_params_string(params, "hrtf");
    const char *quality = bp_params_string(params, "hrir_resampler");
    ism_resample_quality q = ISM_RESAMPLE_BEST;
    if (quality && strcmp(quality, "medium") == 0) q = ISM_RESAMPLE_MEDIUM;
    if (quality && strcmp(quality, "fastest") == 0) q = ISM_RESAMPLE_FASTEST;
    int32_t steps = (int32_t)bp_params_int(params, "delay_steps");
    const bp_param_value *bands = bp_params_find(params, "bands");
    bp_status st = BP_OK;
    if (!bands || !bands->list) st = bp_error_set(err, BP_ERR_INVALID, "ism_binaural: the bands parameter is missing");
    if (st == BP_OK) st = ism_bands_init(&p->bands, bands->list, (int32_t)bands->count, p->fs, err);
    if (st == BP_OK) st = ism_hrtf_load(&p->hrtf, path ? path : ISM_DEFAULT_HRTF, p->fs, steps, q, err);
    if (st == BP_OK) st = ism_early_init(&p->early, &p->hrtf, &p->bands, p->max_time, err);
    if (st == BP_OK) st = ism_tail_init(&p->tail_state, &p->bands, p->fs, err);
    p->sim.struct_size = sizeof p->sim;
    p->sim.self = p;
    p->sim.render = sim_render;
    p->sim.last_stats = sim_last_stats;
    p->sim.destroy = sim_destroy;
    if (st != BP_OK) {
        sim_destroy(&p->sim);
        return st;
    }
    build_stat_names(p);
    bp_logf(host, BP_LOG_DEBUG, "ism_binaural",
            "HRTF %s: %d directions, %d taps x %d delay steps at %g Hz, onset %.3f ms", path ? path : ISM_DEFAULT_HRTF,
            (int)p->hrtf.m, (int)p->hrtf.len, (int)p->hrtf.phases, p->fs, 1e3 * p->hrtf.onset / p->fs);
    *instance = &p->sim;
    return BP_OK;
}

/* ------------------------------------------------------ descriptor, entry -- */

static const bp_descriptor ism_descriptor = {
    sizeof(bp_descriptor),
    "ism_binaural",
    "1.0.0",
    "shoebox image sources through the nearest measured HRIR per image, octave-band wall and air absorption, "
    "and a seeded diffuse binaural tail with Eyring decay",
    "Allen & Berkley 1979 (image sources); ISO 9613-1 (air); Eyring 1930; MIT KEMAR HRIRs (Gardner & Martin 1994)",
    ism_params,
    (uint32_t)ISM_N_PARAMS,
};
static const bp_descriptor *const ism_descriptors[] = {&ism_descriptor};
static const bp_factory ism_factory = {sizeof(bp_factory), 1, ism_descriptors, sim_create};

static const bp_factory *ism_get_factory(const char *kind_id) {
    return kind_id && strcmp(kind_id, BP_KIND_SIMULATOR_ID) == 0 ? &ism_factory : NULL;
}

BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = {
    BP_PLUGIN_ENTRY_HEAD, "ism_binaural", "1.0.0", "MIT", NULL, NULL, NULL, ism_get_factory,
};
