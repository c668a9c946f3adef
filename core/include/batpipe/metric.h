/* batpipe — metric evaluators (kind "batpipe.metric/1").
 *
 * A metric names the sample tensors it reads (e.g. "logits_azimuth",
 * "label_azimuth"), accumulates them batch by batch, and reports named
 * scalar results. The host checks at load time that every named input is
 * produced by some stage or by the dataset. One thread at a time. */
#ifndef BATPIPE_METRIC_H
#define BATPIPE_METRIC_H

#include <stdint.h>

#include "error.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

typedef struct bp_metric_result {
    uint32_t struct_size; /* sizeof(bp_metric_result) */
    char name[64];        /* "mAP", "ER20", "MAE_deg" */
    double value;         /* NaN when undefined (say why in `note`) */
    char unit[16];        /* "", "%", "deg", "m" */
    char note[128];       /* e.g. "class 7 has no positives: skipped" */
} bp_metric_result;

typedef struct bp_metric bp_metric;

struct bp_metric {
    uint32_t struct_size; /* sizeof(bp_metric) as compiled by the plugin */
    void *self;

    /* The names of the tensors `update` receives, in order. The array is
     * owned by the metric and valid until destroy. */
    bp_status (*inputs)(bp_metric *m, const char *const **names, uint32_t *n, bp_error *err);
    bp_status (*reset)(bp_metric *m, bp_error *err);
    /* One batch: inputs[i] is the host tensor named names[i]; the first dim
     * is the batch. Borrowed for the call. */
    bp_status (*update)(bp_metric *m, const bp_tensor *const *inputs, uint32_t n, bp_error *err);
    /* Write up to `cap` results, set *n to the count. */
    bp_status (*compute)(bp_metric *m, bp_metric_result *results, uint32_t cap, uint32_t *n, bp_error *err);
    void (*destroy)(bp_metric *m);
};

BP_EXTERN_C_END

#endif /* BATPIPE_METRIC_H */
