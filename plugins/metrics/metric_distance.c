/* distance: distance estimation from the argmax of the distance head
 * (classes of 0.5 m over 0–10 m): DER = percent of clips with
 * |d_pred − d_true| > 0.5 m (exactly 0.5 m apart counts as correct, i.e. the
 * official 1 − distance accuracy with |class error| ≤ 1), plus the mean
 * absolute distance error in metres. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static const bp_param_spec dist_params[] = {
    {sizeof(bp_param_spec), "logits", BP_PARAM_STRING, "\"logits_distance\"", BP_NO_RANGE, NULL,
     "distance head [batch, n_bins] (21 bins of 0.5 m for BAT)"},
    {sizeof(bp_param_spec), "labels", BP_PARAM_STRING, "\"distance\"", BP_NO_RANGE, NULL,
     "distance class labels [batch] or [batch, sources]; -1 = unknown (skipped)"},
    {sizeof(bp_param_spec), "source", BP_PARAM_INT, "0", 0, 15, NULL,
     "which source's label to score (0 = the first)"},
    {sizeof(bp_param_spec), "bin_m", BP_PARAM_FLOAT, "0.5", 1e-6, 1000.0, NULL, "metres per distance class"},
    {sizeof(bp_param_spec), "threshold_m", BP_PARAM_FLOAT, "0.5", 0.0, 1000.0, NULL,
     "clips with |d_pred - d_true| > threshold count as errors (equal counts as correct)"},
};

const bp_descriptor mx_distance_descriptor = {
    sizeof(bp_descriptor),
    "distance",
    "1.0.0",
    "distance error rate: percent of clips more than 0.5 m off, and the mean absolute error in metres",
    "Spatial-AST engine_finetune.py distance accuracy (|class error| <= 1); golden: metrics.safetensors",
    dist_params,
    sizeof dist_params / sizeof dist_params[0],
};

typedef struct dist_state {
    bp_metric m;
    char *name[2];
    int64_t source;
    double bin_m, threshold;
    double sum_abs;
    int64_t n, n_over, n_skipped;
} dist_state;

static bp_status dist_inputs(bp_metric *m, const char *const **names, uint32_t *n, bp_error *err) {
    (void)err;
    dist_state *s = m->self;
    *names = (const char *const *)s->name;
    *n = 2;
    return BP_OK;
}

static bp_status dist_reset(bp_metric *m, bp_error *err) {
    (void)err;
    dist_state *s = m->self;
    s->sum_abs = 0;
    s->n = s->n_over = s->n_skipped = 0;
    return BP_OK;
}

static bp_status dist_update(bp_metric *m, const bp_tensor *const *in, uint32_t n, bp_error *err) {
    dist_state *s = m->self;
    if (n != 2) return bp_error_set(err, BP_ERR_INVALID, "distance: %u inputs given, 2 expected", n);
    int64_t batch = -1;
    bp_status st = mx_check_input("distance", s->name[0], in[0], 2, 2, &batch, err);
    if (st == BP_OK) st = mx_check_input("distance", s->name[1], in[1], 1, 2, &batch, err);
    if (st != BP_OK) return st;
    int64_t bins = in[0]->shape[1];
    if (bins < 1) return bp_error_set(err, BP_ERR_INVALID, "distance: '%s' has no classes", s->name[0]);
    for (int64_t b = 0; b < batch; b++) {
        int64_t t, p;
        if ((st = mx_label("distance", s->name[1], in[1], b, s->source, &t, err)) != BP_OK) return st;
        if (t < 0) {
            s->n_skipped++;
            continue;
        }
        if (t >= bins)
            return bp_error_set(err, BP_ERR_INVALID, "distance: label %lld of batch row %lld is outside 0..%lld",
                                (long long)t, (long long)b, (long long)bins - 1);
        if ((st = mx_argmax_row("distance", s->name[0], in[0], b, bins, &p, err)) != BP_OK) return st;
        /* compare in classes: |Δ|·bin > threshold, with a guard against rounding at equality */
        double d = fabs((double)(p - t)) * s->bin_m;
        s->sum_abs += d;
        s->n_over += d > s->threshold * (1 + 1e-12) + 1e-12;
        s->n++;
    }
    return BP_OK;
}

static bp_status dist_compute(bp_metric *m, bp_metric_result *res, uint32_t cap, uint32_t *n_out, bp_error *err) {
    dist_state *s = m->self;
    *n_out = 0;
    if (cap < 2) return bp_error_set(err, BP_ERR_INVALID, "distance: room for 2 results needed");
    char note[160];
    if (s->n)
        snprintf(note, sizeof note, "%lld clips (source %lld); error = more than %g m off", (long long)s->n,
                 (long long)s->source, s->threshold);
    else
        snprintf(note, sizeof note, "no clips with a known distance (source %lld)", (long long)s->source);
    if (s->n_skipped) {
        size_t len = strlen(note);
        snprintf(note + len, sizeof note - len, "; %lld skipped (label -1)", (long long)s->n_skipped);
    }
    double n = (double)s->n;
    mx_result(&res[0], "DER_percent", s->n ? 100.0 * (double)s->n_over / n : NAN, "%", note);
    mx_result(&res[1], "distance_MAE_m", s->n ? s->sum_abs / n : NAN, "m", note);
    *n_out = 2;
    return BP_OK;
}

static void dist_destroy(bp_metric *m) {
    dist_state *s = m->self;
    free(s->name[0]);
    free(s->name[1]);
    free(s);
}

bp_status mx_distance_create(const bp_params *params, bp_metric **out, bp_error *err) {
    dist_state *s = calloc(1, sizeof *s);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, "distance: out of memory");
    s->name[0] = mx_strdup(bp_params_string(params, "logits"));
    s->name[1] = mx_strdup(bp_params_string(params, "labels"));
    s->source = bp_params_int(params, "source");
    s->bin_m = bp_params_float(params, "bin_m");
    s->threshold = bp_params_float(params, "threshold_m");
    s->m.struct_size = sizeof s->m;
    s->m.self = s;
    s->m.inputs = dist_inputs;
    s->m.reset = dist_reset;
    s->m.update = dist_update;
    s->m.compute = dist_compute;
    s->m.destroy = dist_destroy;
    if (!s->name[0] || !s->name[1]) {
        dist_destroy(&s->m);
        return bp_error_set(err, BP_ERR_NOMEM, "distance: out of memory");
    }
    *out = &s->m;
    return BP_OK;
}
