/* Evaluation reports: gathering each metric's results and the per-clip
 * direction predictions the figures are drawn from. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

void bp_report_reset(bp_report *r) {
    r->n_results = 0;
    r->n_clips = 0;
}

void bp_report_free(bp_report *r) {
    if (!r) return;
    free(r->results);
    free(r->clips);
    free(r);
}

int bp_report_is_detail(const char *name) { return strchr(name, '/') != NULL; }

bp_status bp_report_add_results(bp_report *r, const char *metric, const bp_metric_result *res, uint32_t n,
                                bp_error *err) {
    if (bp_grow((void **)&r->results, &r->cap_results, r->n_results + n, sizeof *r->results) != 0)
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        bp_report_result *d = &r->results[r->n_results++];
        memset(d, 0, sizeof *d);
        snprintf(d->metric, sizeof d->metric, "%s", metric);
        d->r = res[i];
        d->r.name[sizeof d->r.name - 1] = '\0';
        d->r.unit[sizeof d->r.unit - 1] = '\0';
        d->r.note[sizeof d->r.note - 1] = '\0';
    }
    return BP_OK;
}

static double value_at(const bp_tensor *t, int64_t i) {
    switch (t->dtype) {
    case BP_DTYPE_F32: return ((const float *)t->data)[i];
    case BP_DTYPE_F64: return ((const double *)t->data)[i];
    case BP_DTYPE_F16: return bp_f16_to_f32(((const uint16_t *)t->data)[i]);
    case BP_DTYPE_BF16: return bp_bf16_to_f32(((const uint16_t *)t->data)[i]);
    case BP_DTYPE_I8: return ((const int8_t *)t->data)[i];
    case BP_DTYPE_U8: case BP_DTYPE_BOOL: return ((const uint8_t *)t->data)[i];
    case BP_DTYPE_I16: return ((const int16_t *)t->data)[i];
    case BP_DTYPE_I32: return ((const int32_t *)t->data)[i];
    case BP_DTYPE_I64: return (double)((const int64_t *)t->data)[i];
    default: return NAN;
    }
}

static int32_t argmax_row(const bp_tensor *t, int64_t row) {
    int64_t n = t->shape[1], best = 0;
    double bv = -INFINITY;
    for (int64_t k = 0; k < n; k++) {
        double v = value_at(t, row * n + k);
        if (k == 0 || v > bv) bv = v, best = k;
    }
    return (int32_t)best;
}

/* Source 0 of label row `row`; -1 when unknown or not an integer class below `limit`. */
static int32_t label0(const bp_tensor *t, int64_t row, int32_t limit) {
    int64_t cols = t->ndim == 1 ? 1 : t->shape[1];
    double v = value_at(t, row * cols);
    return (isfinite(v) && v >= 0 && v < limit && v == floor(v)) ? (int32_t)v : -1;
}

double bp_report_angular_error(int32_t az1, int32_t el1, int32_t az2, int32_t el2) {
    const double d2r = M_PI / 180.0;
    double a1 = az1 > 180 ? az1 - 360 : az1, a2 = az2 > 180 ? az2 - 360 : az2;
    double e1 = (el1 - 90) * d2r, e2 = (el2 - 90) * d2r;
    double c = sin(e1) * sin(e2) + cos(e1) * cos(e2) * cos(fabs(a1 - a2) * d2r);
    return acos(c > 1 ? 1 : c < -1 ? -1 : c) / d2r;
}

bp_status bp_report_add_doa(bp_report *r, const bp_tensor *az_logits, const bp_tensor *el_logits,
                            const bp_tensor *az_labels, const bp_tensor *el_labels, const bp_tensor *dist_labels,
                            bp_error *err) {
    if (az_logits->ndim != 2 || el_logits->ndim != 2 || az_logits->shape[1] != 360 || el_logits->shape[1] != 180)
        return BP_OK; /* not the conventional heads: no figure */
    int64_t n = az_logits->shape[0];
    if (el_logits->shape[0] != n || az_labels->shape[0] != n || el_labels->shape[0] != n ||
        (dist_labels && dist_labels->shape[0] != n))
        return BP_OK;
    if (bp_grow((void **)&r->clips, &r->cap_clips, r->n_clips + (size_t)n, sizeof *r->clips) != 0)
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (int64_t b = 0; b < n; b++) {
        bp_report_clip c;
        c.az_true = label0(az_labels, b, 360);
        c.el_true = label0(el_labels, b, 180);
        if (c.az_true < 0 || c.el_true < 0) continue;
        c.az_pred = argmax_row(az_logits, b);
        c.el_pred = argmax_row(el_logits, b);
        c.dist_true = dist_labels ? label0(dist_labels, b, 1 << 20) : -1;
        c.err_deg = bp_report_angular_error(c.az_pred, c.el_pred, c.az_true, c.el_true);
        r->clips[r->n_clips++] = c;
    }
    return BP_OK;
}

const char *bp_report_column_header(const char *name, int *higher_is_better) {
    static const struct {
        const char *name, *header;
        int up;
    } cols[] = {
        {"mAP", "mAP (%) ↑", 1},
        {"ER20_percent", "ER20° (%) ↓", 0},
        {"MAE_deg", "MAE (°) ↓", 0},
        {"DER_percent", "DER (%) ↓", 0},
    };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (strcmp(cols[i].name, name) == 0) {
            if (higher_is_better) *higher_is_better = cols[i].up;
            return cols[i].header;
        }
    return NULL;
}
