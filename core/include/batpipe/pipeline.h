/* batpipe — pipelines: a libconfig file naming an input, stages (frontend,
 * encoder, projector) by plugin type with their parameters, a compute
 * backend, and the outputs to save. See docs/config.md for the schema.
 *
 * Loading validates everything (unknown keys, types, ranges, plugin names,
 * the input files' headers) and negotiates the stages' specs, so that every
 * configuration error surfaces before any compute. Running processes every
 * input item and writes the requested tensors atomically. */
#ifndef BATPIPE_PIPELINE_H
#define BATPIPE_PIPELINE_H

#include <stdint.h>

#include "error.h"
#include "registry.h"

BP_EXTERN_C_BEGIN

typedef struct bp_pipeline bp_pipeline;

/* Load and validate `path` with "key.path=value" overrides applied. */
BP_API bp_status bp_pipeline_load(bp_registry *reg, const char *path, const char *const *overrides, uint32_t n,
                                  bp_pipeline **out, bp_error *err);
/* The same from config text; `label` names it in messages and `base_dir`
 * resolves relative paths and includes. */
BP_API bp_status bp_pipeline_load_text(bp_registry *reg, const char *text, const char *label, const char *base_dir,
                                       const char *const *overrides, uint32_t n, bp_pipeline **out, bp_error *err);
BP_API void bp_pipeline_free(bp_pipeline *p);

/* A human-readable description of what will run (stages, specs, outputs). */
BP_API const char *bp_pipeline_plan(const bp_pipeline *p);

/* Progress: `done` of `total` items finished, `item` the last one. */
typedef void (*bp_progress_fn)(void *user, uint64_t done, uint64_t total, const char *item, double elapsed_s);

/* Process every item. Stops at the first failing item (naming it, the
 * stage and the problem) unless input.on_error = "skip". Returns
 * BP_ERR_CANCELLED when the host's `cancelled` says so (outputs written so
 * far are complete files; no partial file is left). */
BP_API bp_status bp_pipeline_run(bp_pipeline *p, bp_progress_fn progress, void *user, bp_error *err);

#define BP_SUMMARY_MAX_TENSORS 16

typedef struct bp_tensor_summary {
    char name[48];
    char shape[96];      /* of the last item, e.g. "F32[4,1024,128]" */
    double min, max, mean;
    uint64_t items;      /* items that produced it */
} bp_tensor_summary;

typedef struct bp_run_summary {
    uint64_t items_total;
    uint64_t items_done;
    uint64_t items_skipped;   /* already present (skip_existing) */
    uint64_t items_failed;    /* on_error = "skip" */
    double seconds;
    char first_failure[512];  /* message of the first failed item, if any */
    char output_dir[1024];    /* "" when nothing is saved */
    char resolved_config[1024];
    char last_output[1024];   /* path of the last file written */
    uint32_t n_tensors;
    bp_tensor_summary tensors[BP_SUMMARY_MAX_TENSORS];
} bp_run_summary;

/* Valid after bp_pipeline_run (also after a failed run). */
BP_API const bp_run_summary *bp_pipeline_summary(const bp_pipeline *p);

BP_EXTERN_C_END

#endif /* BATPIPE_PIPELINE_H */
