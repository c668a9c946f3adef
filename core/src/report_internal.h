/* Internal: evaluation reports. A bp_report gathers what a pipeline run
 * with metrics produces — each metric's results and, for the figures, the
 * per-clip direction predictions — and writes report.json, report.csv,
 * report.md, report.html (figures embedded) and the figures as SVG files.
 * Everything written is a function of the data: no times, no host names,
 * so the same data and weights give byte-identical reports.
 *
 *   report_collect.c  results and per-clip predictions
 *   report_plot.c     the SVG figures
 *   report_write.c    json / csv / md / html
 *   report_merge.c    several report.json files → one table (batpipe report) */
#ifndef BP_REPORT_INTERNAL_H
#define BP_REPORT_INTERNAL_H

#include <stdint.h>

#include "batpipe/metric.h"
#include "batpipe/params.h"
#include "batpipe/tensor.h"
#include "strbuf.h"

typedef struct bp_report_result {
    char metric[64];          /* the metric plugin ("map") */
    bp_metric_result r;
} bp_report_result;

/* One clip's direction (classes: azimuth 0..359, elevation class 0..179,
 * distance class 0..20 or -1 when unknown) and its angular error. */
typedef struct bp_report_clip {
    int32_t az_true, az_pred, el_true, el_pred, dist_true;
    double err_deg;
} bp_report_clip;

typedef struct bp_report {
    bp_report_result *results;
    size_t n_results, cap_results;
    bp_report_clip *clips;
    size_t n_clips, cap_clips;
} bp_report;

/* One stage (or the dataset, or a metric) as described in the report. */
typedef struct bp_report_component {
    const char *slot;          /* "frontend", "encoder", "dataset", "map" */
    const char *plugin;        /* component name */
    const char *version;
    const bp_params *params;   /* every declared parameter (may be NULL) */
} bp_report_component;

typedef struct bp_report_meta {
    const char *name;          /* the config's `name` ("" when none) */
    const char *description;
    const char *config;        /* the config file (as given) */
    const char *input_type;    /* a dataset plugin, "audio" or "tensors" */
    bp_report_component input; /* plugin = NULL for files */
    uint64_t input_files;      /* files, for audio/tensors inputs */
    int64_t batch_size;
    bp_report_component stages[3];
    uint32_t n_stages;
    bp_report_component metrics[16];
    uint32_t n_metrics;
    const char *backend, *device; /* NULL without a backend */
    uint64_t items_total, items_done, items_failed;
    const char *first_failure; /* "" when none */
} bp_report_meta;

void bp_report_reset(bp_report *r);
void bp_report_free(bp_report *r);
bp_status bp_report_add_results(bp_report *r, const char *metric, const bp_metric_result *res, uint32_t n,
                                bp_error *err);
/* Per-clip directions for the figures from one batch: logits [n, 360] and
 * [n, 180] (argmax), labels [n] or [n, sources] (source 0 is used); clips
 * whose direction label is -1 are left out. dist may be NULL. */
bp_status bp_report_add_doa(bp_report *r, const bp_tensor *az_logits, const bp_tensor *el_logits,
                            const bp_tensor *az_labels, const bp_tensor *el_labels, const bp_tensor *dist_labels,
                            bp_error *err);
/* Is this a per-class/detail result ("AP/Dog") rather than a summary metric? */
int bp_report_is_detail(const char *result_name);
/* Great-circle error in degrees between two (azimuth class, elevation class) directions, in double. */
double bp_report_angular_error(int32_t az1, int32_t el1, int32_t az2, int32_t el2);

/* report_plot.c: the figures (SVG appended to `out`); each returns 0 when
 * there is nothing to draw. */
int bp_report_plot_azimuth(const bp_report *r, bp_sbuf *out);
int bp_report_plot_error_by_distance(const bp_report *r, bp_sbuf *out);
int bp_report_plot_ap(const bp_report *r, bp_sbuf *out);

/* report_write.c: the report files into `dir` (atomically, file by file). */
bp_status bp_report_write(const bp_report *r, const bp_report_meta *meta, const char *dir, bp_error *err);

/* Table 3 columns: display header and whether higher is better for the
 * known summary metrics ("mAP" → "mAP (%) ↑"); NULL for others. */
const char *bp_report_column_header(const char *result_name, int *higher_is_better);

#endif
