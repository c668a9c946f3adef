/* batpipe — evaluation reports.
 *
 * A pipeline with a `metrics` list writes, after its run, report.json,
 * report.csv, report.md and report.html (with SVG figures) into its output
 * directory (docs/metrics.md). The functions here give the metric results
 * of a run to the caller, and merge the report.json files of several runs
 * into one table: rows = runs (configs), columns = metrics, as the BAT
 * paper's Table 3 (mAP ↑, ER20° ↓, MAE ↓, DER ↓, then any other metric). */
#ifndef BATPIPE_REPORT_H
#define BATPIPE_REPORT_H

#include <stdint.h>

#include "error.h"
#include "metric.h"
#include "pipeline.h"

BP_EXTERN_C_BEGIN

/* The results of the last bp_pipeline_run of `p`, summary metrics and
 * per-class details ("AP/<class>") in the order the metrics reported them;
 * 0 without metrics or before a run. `metric` (may be NULL) receives the
 * name of the metric plugin that produced result i. Owned by the pipeline. */
BP_API uint32_t bp_pipeline_result_count(const bp_pipeline *p);
BP_API const bp_metric_result *bp_pipeline_result_at(const bp_pipeline *p, uint32_t i, const char **metric);

typedef enum bp_table_format {
    BP_TABLE_MARKDOWN = 0,
    BP_TABLE_CSV = 1,
    BP_TABLE_HTML = 2
} bp_table_format;

/* The table format for an output file name by its extension (.md,
 * .markdown, .csv, .html, .htm), or -1. */
BP_API int32_t bp_table_format_for_path(const char *path);

/* Merge reports into one table. Each of paths[0..n) is a run's output
 * directory holding report.json, or a report.json file. A missing or
 * malformed report is an error naming the file. *out receives
 * NUL-terminated text owned by the caller (release with bp_report_text_free). */
BP_API bp_status bp_report_merge(const char *const *paths, uint32_t n, int32_t format, char **out, bp_error *err);
BP_API void bp_report_text_free(char *text);

BP_EXTERN_C_END

#endif /* BATPIPE_REPORT_H */
