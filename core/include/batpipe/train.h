/* batpipe — training an encoder (`batpipe train FILE.cfg`).
 *
 * A training configuration (libconfig; docs/train.md) names a dataset plugin
 * for the training split (and optionally one for evaluation), a frontend that
 * turns each clip into features on the fly, a trainable encoder (a stage
 * offering the "batpipe.trainable/1" extension, trainable.h), the compute
 * backend, the losses, the optimizer and its schedule, augmentation, the
 * curriculum (stages in order, each with its length and which losses are on),
 * checkpoints, evaluation and the JSONL log.
 *
 * The trainer owns the loop: data order from (seed, epoch) permutations,
 * per-step randomness from (seed, step), the losses on the host in double,
 * their gradients with respect to the logits, backward through the encoder,
 * gradient accumulation, AdamW through the backend's op (bp_op_adamw) with
 * a warm-up + half-cycle-cosine schedule and layer-wise lr decay.
 *
 * Output directory (`output.dir`):
 *   config.cfg                     the configuration as loaded (overrides applied)
 *   checkpoints/ckpt-NNNNNNNN.safetensors
 *                                  weights, buffers, AdamW moments and the
 *                                  trainer state after step NNNNNNNN, written
 *                                  atomically; the last `checkpoint.keep` kept
 *   train.jsonl                    one JSON object per logged step / evaluation
 *   weights.safetensors            the final weights and buffers by their
 *                                  official names (an encoder's `weights`)
 *
 * Exactness: everything random derives from the seed and the step number, and
 * a checkpoint holds all the state a step reads, so a run that is killed at any
 * point and resumed ends with exactly the weights of an uninterrupted run (same
 * configuration, same thread count, deterministic backend kernels).
 *
 * Thread rules: every call here is a main-thread call; the backend may use
 * worker threads inside its ops. */
#ifndef BATPIPE_TRAIN_H
#define BATPIPE_TRAIN_H

#include <stdint.h>
#include <string.h>

#include "error.h"
#include "metric.h"
#include "pipeline.h"
#include "registry.h"

BP_EXTERN_C_BEGIN

typedef struct bp_trainer bp_trainer;

/* Read, override ("key.path=value") and validate a training configuration,
 * then create every component (backend, datasets, frontend, encoder, metric
 * plugins) and check that they fit together (the frontend takes the dataset's
 * audio, the encoder takes the frontend's features, the encoder has the
 * logits the enabled losses need with the dataset's class count). Nothing is
 * trained and nothing is written. Errors name file:line. `reg` is borrowed
 * and must outlive the trainer. */
BP_API bp_status bp_train_load(bp_registry *reg, const char *path, const char *const *overrides, uint32_t n,
                               bp_trainer **out, bp_error *err);
BP_API void bp_train_free(bp_trainer *t);

/* What will run: data, frontend, encoder (parameter counts), backend,
 * batch, schedule, stages, outputs. */
BP_API const char *bp_train_plan(const bp_trainer *t);

typedef struct bp_train_options {
    uint32_t struct_size;    /* sizeof(bp_train_options) */
    int32_t resume;          /* 1: continue from the newest checkpoint of output.dir if there is one
                                (its configuration fingerprint must match); none: start at step 0 */
    int32_t restart;         /* 1: delete output.dir's checkpoints and log, start at step 0 */
    int64_t stop_after;      /* > 0: stop after this many steps of this call (a checkpoint is written) */
    bp_progress_fn progress; /* may be NULL; `done`/`total` count the steps of this call */
    void *progress_user;
} bp_train_options;

static inline bp_train_options bp_train_options_default(void) {
    bp_train_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    return o;
}

#define BP_TRAIN_MAX_RESULTS 24

typedef struct bp_train_report {
    uint32_t struct_size;  /* sizeof(bp_train_report) */
    int64_t start_step;    /* steps already done when this call began (resumed) */
    int64_t end_step;      /* steps done when it returned */
    int64_t total_steps;   /* steps of the whole run */
    int32_t resumed;       /* 1: continued from a checkpoint */
    int32_t finished;      /* 1: the run is complete and weights.safetensors written */
    double seconds;        /* wall time of this call */
    double examples_per_s; /* training examples per second in this call */
    double s_per_step;     /* seconds per optimizer step in this call */
    double last_loss;      /* weighted loss of the last step */
    uint32_t n_results;    /* results of the last evaluation: validation losses and the metrics'
                              summary values (per-class values, named "x/k", are in the log only) */
    bp_metric_result results[BP_TRAIN_MAX_RESULTS];
    char out_dir[1024];
    char last_checkpoint[1024];
    char weights[1024]; /* "" until finished */
    char log[1024];
} bp_train_report;

/* Train until the run is complete (or `stop_after`, or the host's
 * `cancelled`: then a checkpoint is written and BP_ERR_CANCELLED returned).
 * Without `resume`, an output directory that already holds checkpoints is an
 * error (pass resume or restart). Once per trainer (a second call is an
 * error: load the configuration again). */
BP_API bp_status bp_train_run(bp_trainer *t, const bp_train_options *opt, bp_train_report *report, bp_error *err);

/* --- schedules (pure functions; docs/train.md) ---------------------------- */

typedef struct bp_lr_schedule {
    uint32_t struct_size; /* sizeof(bp_lr_schedule) */
    double lr;            /* peak learning rate */
    double min_lr;        /* the cosine ends here */
    int64_t warmup_steps; /* linear warm-up from 0 */
    int64_t total_steps;  /* warm-up + cosine */
} bp_lr_schedule;

/* The learning rate of optimizer step `step` (0-based), as MAE/Spatial-AST's
 * lr_sched per iteration: lr·step/warmup during the warm-up, then
 * min_lr + (lr − min_lr)·½·(1 + cos(π·(step − warmup)/(total − warmup))). */
BP_API double bp_lr_at(const bp_lr_schedule *s, int64_t step);

/* Layer-wise lr decay: decay^(n_layers − 1 − layer_id) (1 for the last
 * layer id, i.e. the heads; see bp_train_param.layer_id). */
BP_API double bp_layer_decay_scale(double decay, int32_t n_layers, int32_t layer_id);

BP_EXTERN_C_END

#endif /* BATPIPE_TRAIN_H */
