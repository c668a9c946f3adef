/* bp-metrics: the paper's encoder metrics as metric components
 * ("batpipe.metric/1"): map (per-class AP, macro mAP), doa (angular error:
 * MAE, ER20), distance (DER). Internal declarations shared by the files of
 * this plugin; nothing here is exported. */
#ifndef BP_METRICS_H
#define BP_METRICS_H

#include <stdint.h>

#include "batpipe/metric.h"
#include "batpipe/params.h"
#include "batpipe/plugin.h"

/* ------------------------------------------------------------ factories -- */

extern const bp_descriptor mx_map_descriptor;
extern const bp_descriptor mx_doa_descriptor;
extern const bp_descriptor mx_distance_descriptor;

bp_status mx_map_create(const bp_params *params, bp_metric **out, bp_error *err);
bp_status mx_doa_create(const bp_params *params, bp_metric **out, bp_error *err);
bp_status mx_distance_create(const bp_params *params, bp_metric **out, bp_error *err);

/* -------------------------------------------------------------- helpers -- */

/* Check that `t` is a host tensor of rank `ndim_min`..`ndim_max` whose first
 * dimension is `batch` (or set *batch when it is < 0). `metric` and `name`
 * name it in messages. */
bp_status mx_check_input(const char *metric, const char *name, const bp_tensor *t, int32_t ndim_min, int32_t ndim_max,
                         int64_t *batch, bp_error *err);
/* Element i of a numeric tensor (any integer or float dtype) as a double. */
double mx_value(const bp_tensor *t, int64_t i);
/* The index of the largest of the `n` elements of row `row` of a float
 * tensor (the first on ties, as torch.argmax); BP_ERR_NUMERIC on NaN. */
bp_status mx_argmax_row(const char *metric, const char *name, const bp_tensor *t, int64_t row, int64_t n,
                        int64_t *idx, bp_error *err);
/* The label of item `row` for source `source` from a label tensor [batch]
 * or [batch, sources] (an integer class, −1 = unknown). */
bp_status mx_label(const char *metric, const char *name, const bp_tensor *t, int64_t row, int64_t source,
                   int64_t *label, bp_error *err);

/* Fill one result. */
void mx_result(bp_metric_result *r, const char *name, double value, const char *unit, const char *note);

/* Names of the classes from an AudioSet-style CSV (index,mid,display_name,
 * header line, quoted fields allowed). *names[i] is the display name of
 * index i (NULL where absent); free with mx_class_names_free. */
bp_status mx_class_names_load(const char *path, char ***names, int64_t *n, bp_error *err);
void mx_class_names_free(char **names, int64_t n);

/* Duplicate a string (NULL on failure). */
char *mx_strdup(const char *s);

#endif
