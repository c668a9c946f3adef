/* train: the losses of Spatial-AST (bat-official.md §1.9), in double on the host:
 *   total = λ1·BCEWithLogits(class) + λ2·CE(distance) + λ3·(CE(azimuth) + CE(elevation))
 * BCE is the mean over (items with known classes) × classes, each CE the mean
 * over the items with a label (−1 = none: the item contributes nothing to that
 * term). Gradients with respect to the logits are those of `total`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

static const char *const term_names[TRAIN_HEAD_COUNT] = {"class", "distance", "azimuth", "elevation"};

/* log(1 + e^x) without overflow */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static double bce_term(const float *z, const train_targets *tg, int64_t width, float *g, double scale, int64_t *count) {
    int64_t n = 0;
    for (int64_t b = 0; b < tg->batch; b++) n += tg->class_valid[b] != 0;
    *count = n;
    if (g) memset(g, 0, (size_t)(tg->batch * width) * sizeof *g);
    if (n == 0) return 0.0;
    double denom = (double)n * (double)width, sum = 0.0;
    for (int64_t b = 0; b < tg->batch; b++) {
        if (!tg->class_valid[b]) continue;
        const float *zb = z + b * width, *yb = tg->classes + b * tg->n_classes;
        for (int64_t k = 0; k < width; k++) {
            double x = zb[k], y = yb[k];
            /* BCE with logits: softplus(x) − x·y; d/dx = σ(x) − y */
            sum += softplus(x) - x * y;
            if (g) g[b * width + k] = (float)(scale * (1.0 / (1.0 + exp(-x)) - y) / denom);
        }
    }
    return sum / denom;
}

static double ce_term(const float *z, const int32_t *label, int64_t batch, int64_t width, float *g, double scale,
                      int64_t *count) {
    int64_t n = 0;
    for (int64_t b = 0; b < batch; b++) n += label[b] >= 0;
    *count = n;
    if (g) memset(g, 0, (size_t)(batch * width) * sizeof *g);
    if (n == 0) return 0.0;
    double sum = 0.0;
    for (int64_t b = 0; b < batch; b++) {
        if (label[b] < 0) continue;
        const float *zb = z + b * width;
        double mx = zb[0];
        for (int64_t k = 1; k < width; k++)
            if (zb[k] > mx) mx = zb[k];
        double se = 0.0;
        for (int64_t k = 0; k < width; k++) se += exp((double)zb[k] - mx);
        double lse = mx + log(se);
        sum += lse - (double)zb[label[b]];
        if (g) {
            for (int64_t k = 0; k < width; k++)
                g[b * width + k] = (float)(scale * exp((double)zb[k] - lse) / (double)n);
            g[b * width + label[b]] -= (float)(scale / (double)n);
        }
    }
    return sum / (double)n;
}

bp_status train_loss_compute(const float *const logits[TRAIN_HEAD_COUNT], const int64_t width[TRAIN_HEAD_COUNT],
                             const train_targets *tg, const train_loss_weights *w, train_loss *out,
                             float *const grads[TRAIN_HEAD_COUNT], bp_error *err) {
    memset(out, 0, sizeof *out);
    /* labels must index the logits */
    for (int h = 1; h < TRAIN_HEAD_COUNT; h++) {
        if (!logits[h]) continue;
        for (int64_t b = 0; b < tg->batch; b++)
            if (tg->label[h][b] >= width[h])
                return bp_error_set(err, BP_ERR_INVALID, "train: a %s label is %d, but the encoder has %lld %s classes",
                                    term_names[h], tg->label[h][b], (long long)width[h], term_names[h]);
    }
    if (logits[TRAIN_HEAD_CLASS] && tg->n_classes != width[TRAIN_HEAD_CLASS]) {
        int any = 0;
        for (int64_t b = 0; b < tg->batch; b++) any |= tg->class_valid[b];
        if (any)
            return bp_error_set(err, BP_ERR_INVALID, "train: the dataset has %lld classes, the encoder %lld",
                                (long long)tg->n_classes, (long long)width[TRAIN_HEAD_CLASS]);
    }
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++) {
        float *g = grads ? grads[h] : NULL;
        if (!logits[h]) continue;
        double scale = w->on[h] ? w->w[h] : 0.0;
        if (h == TRAIN_HEAD_CLASS)
            out->term[h] = bce_term(logits[h], tg, width[h], g, scale, &out->count[h]);
        else
            out->term[h] = ce_term(logits[h], tg->label[h], tg->batch, width[h], g, scale, &out->count[h]);
        if (!isfinite(out->term[h]))
            return bp_error_set(err, BP_ERR_NUMERIC, "train: the %s loss is not finite (%g)", term_names[h],
                                out->term[h]);
        if (w->on[h]) out->total += w->w[h] * out->term[h];
    }
    return BP_OK;
}

/* ------------------------------------------------------------ targets -- */

bp_status train_targets_alloc(train_targets *t, int64_t batch, int64_t n_classes, bp_error *err) {
    memset(t, 0, sizeof *t);
    t->batch = batch;
    t->n_classes = n_classes;
    t->classes = calloc((size_t)(batch * (n_classes > 0 ? n_classes : 1)), sizeof *t->classes);
    t->class_valid = calloc((size_t)batch, 1);
    int ok = t->classes && t->class_valid;
    for (int h = 1; h < TRAIN_HEAD_COUNT && ok; h++)
        ok = (t->label[h] = calloc((size_t)batch, sizeof(int32_t))) != NULL;
    if (!ok) {
        train_targets_free(t);
        return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    }
    return BP_OK;
}

void train_targets_free(train_targets *t) {
    free(t->classes);
    free(t->class_valid);
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++) free(t->label[h]);
    memset(t, 0, sizeof *t);
}
