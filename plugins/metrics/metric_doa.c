/* doa: direction of arrival from the argmax of the azimuth (360 × 1°) and
 * elevation (180 × 1°) heads, as Spatial-AST's evaluation: class → degrees
 * (azimuth > 180 → azimuth − 360, elevation = class − 90), great-circle
 * error arccos(clip(sin e1·sin e2 + cos e1·cos e2·cos|a1 − a2|, −1, 1)) in
 * double, MAE in degrees and ER20 = percent of clips with error > 20°
 * (not the DCASE location-aware ER20). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static const bp_param_spec doa_params[] = {
    {sizeof(bp_param_spec), "azimuth_logits", BP_PARAM_STRING, "\"logits_azimuth\"", BP_NO_RANGE, NULL,
     "azimuth head [batch, 360]: 1-degree classes, 0 = right, 90 = front"},
    {sizeof(bp_param_spec), "elevation_logits", BP_PARAM_STRING, "\"logits_elevation\"", BP_NO_RANGE, NULL,
     "elevation head [batch, 180]: class = elevation + 90"},
    {sizeof(bp_param_spec), "azimuth_labels", BP_PARAM_STRING, "\"azimuth\"", BP_NO_RANGE, NULL,
     "azimuth class labels [batch] or [batch, sources]; -1 = unknown (skipped)"},
    {sizeof(bp_param_spec), "elevation_labels", BP_PARAM_STRING, "\"elevation\"", BP_NO_RANGE, NULL,
     "elevation class labels [batch] or [batch, sources]; -1 = unknown (skipped)"},
    {sizeof(bp_param_spec), "source", BP_PARAM_INT, "0", 0, 15, NULL,
     "which source's labels to score (0 = the first; single-source items have only that one)"},
    {sizeof(bp_param_spec), "threshold_deg", BP_PARAM_FLOAT, "20.0", 0.0, 180.0, NULL,
     "error rate threshold in degrees: clips with error > threshold count as errors (ER20 for 20)"},
};

const bp_descriptor mx_doa_descriptor = {
    sizeof(bp_descriptor),
    "doa",
    "1.0.0",
    "direction of arrival: mean angular error (degrees) and ER20 (percent of clips with error > 20 deg)",
    "Spatial-AST engine_finetune.py / distance_between_spherical_coordinates_rad (golden: metrics.safetensors)",
    doa_params,
    sizeof doa_params / sizeof doa_params[0],
};

typedef struct doa_state {
    bp_metric m;
    char *name[4];
    int64_t source;
    double threshold;
    double sum_err;
    int64_t n, n_over, n_skipped;
} doa_state;

static bp_status doa_inputs(bp_metric *m, const char *const **names, uint32_t *n, bp_error *err) {
    (void)err;
    doa_state *s = m->self;
    *names = (const char *const *)s->name;
    *n = 4;
    return BP_OK;
}

static bp_status doa_reset(bp_metric *m, bp_error *err) {
    (void)err;
    doa_state *s = m->self;
    s->sum_err = 0;
    s->n = s->n_over = s->n_skipped = 0;
    return BP_OK;
}

static double rad(double deg) { return deg * (M_PI / 180.0); }

static double angular_error_deg(int64_t az1, int64_t el1, int64_t az2, int64_t el2) {
    double a1 = (double)(az1 > 180 ? az1 - 360 : az1), a2 = (double)(az2 > 180 ? az2 - 360 : az2);
    double e1 = rad((double)(el1 - 90)), e2 = rad((double)(el2 - 90));
    double c = sin(e1) * sin(e2) + cos(e1) * cos(e2) * cos(rad(fabs(a1 - a2)));
    if (c > 1) c = 1;
    if (c < -1) c = -1;
    return acos(c) * (180.0 / M_PI);
}

static bp_status doa_update(bp_metric *m, const bp_tensor *const *in, uint32_t n, bp_error *err) {
    doa_state *s = m->self;
    if (n != 4) return bp_error_set(err, BP_ERR_INVALID, "doa: %u inputs given, 4 expected", n);
    int64_t batch = -1;
    bp_status st = BP_OK;
    for (int i = 0; i < 4 && st == BP_OK; i++)
        st = mx_check_input("doa", s->name[i], in[i], i < 2 ? 2 : 1, 2, &batch, err);
    if (st != BP_OK) return st;
    if (in[0]->shape[1] != 360 || in[1]->shape[1] != 180)
        return bp_error_set(err, BP_ERR_INVALID, "doa: '%s' has %lld classes and '%s' %lld; want 360 and 180",
                            s->name[0], (long long)in[0]->shape[1], s->name[1], (long long)in[1]->shape[1]);
    for (int64_t b = 0; b < batch; b++) {
        int64_t az_t, el_t, az_p, el_p;
        if ((st = mx_label("doa", s->name[2], in[2], b, s->source, &az_t, err)) != BP_OK) return st;
        if ((st = mx_label("doa", s->name[3], in[3], b, s->source, &el_t, err)) != BP_OK) return st;
        if (az_t < 0 || el_t < 0) {
            s->n_skipped++;
            continue;
        }
        if (az_t >= 360 || el_t >= 180)
            return bp_error_set(err, BP_ERR_INVALID, "doa: labels of batch row %lld (azimuth %lld, elevation %lld) "
                                "are outside 0..359 / 0..179", (long long)b, (long long)az_t, (long long)el_t);
        if ((st = mx_argmax_row("doa", s->name[0], in[0], b, 360, &az_p, err)) != BP_OK) return st;
        if ((st = mx_argmax_row("doa", s->name[1], in[1], b, 180, &el_p, err)) != BP_OK) return st;
        double e = angular_error_deg(az_p, el_p, az_t, el_t);
        s->sum_err += e;
        s->n_over += e > s->threshold;
        s->n++;
    }
    return BP_OK;
}

static bp_status doa_compute(bp_metric *m, bp_metric_result *res, uint32_t cap, uint32_t *n_out, bp_error *err) {
    doa_state *s = m->self;
    *n_out = 0;
    if (cap < 2) return bp_error_set(err, BP_ERR_INVALID, "doa: room for 2 results needed");
    char note[160], er_name[64];
    if (s->n)
        snprintf(note, sizeof note, "%lld clips (source %lld)%s", (long long)s->n, (long long)s->source,
                 s->n_skipped ? "" : "; none skipped");
    else
        snprintf(note, sizeof note, "no clips with a known direction (source %lld)", (long long)s->source);
    if (s->n_skipped) {
        size_t len = strlen(note);
        snprintf(note + len, sizeof note - len, "; %lld skipped (label -1)", (long long)s->n_skipped);
    }
    double n = (double)s->n;
    mx_result(&res[0], "MAE_deg", s->n ? s->sum_err / n : NAN, "deg", note);
    snprintf(er_name, sizeof er_name, "ER%g_percent", s->threshold);
    char note2[160];
    snprintf(note2, sizeof note2, "percent of clips with angular error > %g deg (not the DCASE ER20); %s",
             s->threshold, note);
    mx_result(&res[1], er_name, s->n ? 100.0 * (double)s->n_over / n : NAN, "%", note2);
    *n_out = 2;
    return BP_OK;
}

static void doa_destroy(bp_metric *m) {
    doa_state *s = m->self;
    for (int i = 0; i < 4; i++) free(s->name[i]);
    free(s);
}

bp_status mx_doa_create(const bp_params *params, bp_metric **out, bp_error *err) {
    doa_state *s = calloc(1, sizeof *s);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, "doa: out of memory");
    static const char *const keys[4] = {"azimuth_logits", "elevation_logits", "azimuth_labels", "elevation_labels"};
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= (s->name[i] = mx_strdup(bp_params_string(params, keys[i]))) != NULL;
    s->source = bp_params_int(params, "source");
    s->threshold = bp_params_float(params, "threshold_deg");
    s->m.struct_size = sizeof s->m;
    s->m.self = s;
    s->m.inputs = doa_inputs;
    s->m.reset = doa_reset;
    s->m.update = doa_update;
    s->m.compute = doa_compute;
    s->m.destroy = doa_destroy;
    if (!ok) {
        doa_destroy(&s->m);
        return bp_error_set(err, BP_ERR_NOMEM, "doa: out of memory");
    }
    *out = &s->m;
    return BP_OK;
}
