/* Internal: the trainer's pieces (batpipe train), one file each:
 *   train_config.c  the configuration schema, validation, fingerprint
 *   train_rng.c     counter-based randomness, permutations, Beta draws
 *   train_model.c   the encoder: trainable table, ports, batch tensors, init weights
 *   train_data.c    dataset → frontend → batches, shuffling, mixup
 *   train_loss.c    the losses and their gradients with respect to the logits
 *   train_optim.c   AdamW state, the schedule, layer-wise decay
 *   train_ckpt.c    checkpoints and the final weights
 *   train_eval.c    validation losses and metric plugins
 *   train_log.c     the JSONL log
 *   train_loop.c    bp_train_load / bp_train_run: the loop */
#ifndef BP_TRAIN_INTERNAL_H
#define BP_TRAIN_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "batpipe/dataset.h"
#include "batpipe/metric.h"
#include "batpipe/ops.h"
#include "batpipe/stage.h"
#include "batpipe/train.h"
#include "batpipe/trainable.h"
#include "config.h"
#include "paramset.h"
#include "strbuf.h"

/* ------------------------------------------------------------- config -- */

enum { TRAIN_HEAD_CLASS = 0, TRAIN_HEAD_DISTANCE, TRAIN_HEAD_AZIMUTH, TRAIN_HEAD_ELEVATION, TRAIN_HEAD_COUNT };
/* The loss switches of a stage: class, distance, direction (azimuth + elevation). */
enum { TRAIN_LOSS_CLASS = 0, TRAIN_LOSS_DISTANCE, TRAIN_LOSS_DIRECTION, TRAIN_LOSS_COUNT };
enum { TRAIN_MIXUP_SPATIAL_NONE = 0, TRAIN_MIXUP_SPATIAL_DOMINANT = 1 };

#define TRAIN_MAX_STAGES 16
#define TRAIN_NORM_MAX_CH 8
#define TRAIN_MAX_METRICS 8
#define TRAIN_MAX_EVAL_RESULTS 4096 /* validation losses + every metric result (per-class APs included) */

typedef struct train_stage_cfg {
    char name[48];
    int64_t steps; /* resolved (epochs converted once the dataset size is known) */
    double epochs; /* as configured; 0 when given in steps */
    int32_t loss_on[TRAIN_LOSS_COUNT];
    char where[256];
} train_stage_cfg;

/* A component chosen by `type` in a config group, with its validated parameters. */
typedef struct train_comp {
    const bp_component_info *comp;
    bp_paramset *params;
    char label[128]; /* "encoder (spatial_ast)" */
    char where[256]; /* file:line of the group */
} train_comp;

typedef struct train_cfg {
    bp_config *cfg;
    uint64_t seed;
    int32_t threads;
    int64_t batch_size, accum_steps;
    train_comp backend, data_train, data_eval, frontend, encoder;
    int32_t has_eval_data;
    train_comp metrics[TRAIN_MAX_METRICS];
    uint32_t n_metrics;
    /* init */
    char *init_weights; /* NULL: the encoder's own initialisation */
    int32_t init_strict;
    /* losses */
    double w_class, w_distance, w_direction;
    /* optimizer */
    double lr, blr, beta1, beta2, eps, weight_decay, layer_decay, min_lr;
    int64_t warmup_steps;
    double warmup_epochs;
    /* augmentation */
    double mask_t_prob, mask_f_prob, drop_path, mixup_prob, mixup_alpha;
    int32_t specaug_freq, specaug_time, mixup_spatial;
    /* curriculum */
    train_stage_cfg stages[TRAIN_MAX_STAGES];
    uint32_t n_stages;
    /* outputs */
    char *out_dir;
    int64_t ckpt_every, ckpt_keep, eval_every, eval_batch, eval_max_items, log_every;
    /* frontend normalisation estimated from the data (normalize.items > 0) */
    int64_t norm_items;
    uint32_t norm_ch;
    double norm_mean[TRAIN_NORM_MAX_CH], norm_var[TRAIN_NORM_MAX_CH];
    /* the settings that decide the result (for resume), and their hash */
    char *fingerprint_text;
    char fingerprint[17];
} train_cfg;

bp_status train_cfg_load(bp_registry *reg, const char *path, const char *const *overrides, uint32_t n, train_cfg *c,
                         bp_error *err);
void train_cfg_free(train_cfg *c);
/* Convert epochs to steps once the training set size is known; checks the warm-up. */
bp_status train_cfg_resolve_steps(train_cfg *c, int64_t n_train_items, bp_error *err);
int64_t train_cfg_total_steps(const train_cfg *c);
/* The stage that step `step` (0-based) belongs to. */
uint32_t train_cfg_stage_of(const train_cfg *c, int64_t step);
/* Append a line (e.g. the backend's effective thread count) to the fingerprinted text. */
bp_status train_cfg_fingerprint_add(train_cfg *c, const char *line, bp_error *err);
/* Set the frontend's bn_mean/bn_var (estimated by normalize) in the config
 * tree and rebuild its parameters; the frontend must then be recreated. */
bp_status train_cfg_set_frontend_norm(train_cfg *c, const double *mean, const double *var, uint32_t n, bp_error *err);
/* The peak learning rate: lr, or blr · batch · accum / 256. */
double train_cfg_peak_lr(const train_cfg *c);

/* --------------------------------------------------------------- rng -- */

/* Purposes of the derived streams, so that no two uses share numbers. */
enum { TRAIN_RNG_PERM = 1, TRAIN_RNG_ENCODER = 2, TRAIN_RNG_MIXUP = 3, TRAIN_RNG_NORM = 4 };

typedef struct train_rng {
    uint64_t state;
} train_rng;

uint64_t train_hash(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b);
void train_rng_init(train_rng *r, uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b);
uint64_t train_rng_next(train_rng *r);
double train_rng_uniform(train_rng *r);           /* [0, 1) with 53 bits */
int64_t train_rng_below(train_rng *r, int64_t n); /* uniform in [0, n), unbiased */
double train_rng_normal(train_rng *r);
double train_rng_gamma(train_rng *r, double shape); /* Marsaglia–Tsang */
double train_rng_beta(train_rng *r, double a, double b);
/* perm[0..n) = a Fisher–Yates shuffle of 0..n−1 from (seed, epoch). */
void train_permutation(uint64_t seed, int64_t epoch, int64_t *perm, int64_t n);

/* ------------------------------------------------------------- model -- */

typedef struct train_model {
    bp_stage *st;
    const bp_trainable *tr;
    bp_backend *be;
    char label[128];
    int32_t n_layers;
    uint32_t n_params;
    bp_train_param *params;     /* copies of the stage's records (names/tensors owned by the stage) */
    int64_t n_trainable_values; /* elements of the trainable tensors */
    int64_t n_buffer_values;
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n_ports;
    int32_t head_port[TRAIN_HEAD_COUNT]; /* output index of logits_*, −1 when absent */
    int64_t head_width[TRAIN_HEAD_COUNT];
    /* tensors for the current batch shape */
    int64_t in_shape[4];
    bp_tensor *input;
    bp_tensor *outputs[BP_MAX_OUTPUTS];
    bp_tensor *d_outputs[BP_MAX_OUTPUTS];
    int32_t training;
} train_model;

/* Create the encoder on `be`, check its trainable table and parameters, and
 * prepare it for features [batch, C, T, F] (in_shape[0] = batch). */
bp_status train_model_create(train_model *m, bp_registry *reg, const train_comp *enc, bp_backend *be,
                             const bp_spec *features, const char *producer, bp_error *err);
void train_model_free(train_model *m);
/* Re-prepare and reallocate for another batch size (no-op when unchanged). */
bp_status train_model_set_batch(train_model *m, int64_t batch, bp_error *err);
bp_status train_model_set_training(train_model *m, int32_t training, bp_error *err);
/* Copy host features [batch, C, T, F] to the input tensor. */
bp_status train_model_upload(train_model *m, const float *features, bp_error *err);
bp_status train_model_forward(train_model *m, const bp_train_step *step, bp_error *err);
/* Evaluation: the stage's ordinary process on the uploaded input. */
bp_status train_model_process(train_model *m, bp_error *err);
/* Read the logits of head h to host floats [batch, width]. */
bp_status train_model_read_head(train_model *m, int32_t h, float *out, bp_error *err);
/* Backward from host gradients of the heads (NULL = zero). */
bp_status train_model_backward(train_model *m, float *const grads[TRAIN_HEAD_COUNT], bp_error *err);
bp_status train_model_zero_grad(train_model *m, bp_error *err);
/* Copy tensors of a safetensors file into the parameters by name. */
bp_status train_model_init_weights(train_model *m, const char *path, int32_t strict, const bp_host *host,
                                   bp_error *err);

/* -------------------------------------------------------------- data -- */

/* The frontend, shared by the training and evaluation loaders. */
typedef struct train_frontend {
    bp_stage *st;
    char label[128];
    bp_spec prepared; /* audio spec of the last prepare */
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n_ports;
    bp_tensor *outputs[BP_MAX_OUTPUTS]; /* host, for the prepared spec; only [0] computed */
    int64_t feat_shape[3];
} train_frontend;

bp_status train_frontend_create(train_frontend *f, bp_registry *reg, const train_comp *fe, bp_error *err);
void train_frontend_free(train_frontend *f);
/* Prepare for audio [channels, samples] at `rate` (no-op when unchanged). */
bp_status train_frontend_prepare(train_frontend *f, const bp_spec *audio, bp_error *err);

/* Labels of one batch (host). Class targets of an item whose classes are
 * unknown are flagged invalid; spatial labels −1 contribute nothing. */
typedef struct train_targets {
    int64_t batch, n_classes;
    float *classes;                   /* [batch, n_classes] */
    uint8_t *class_valid;             /* [batch] */
    int32_t *label[TRAIN_HEAD_COUNT]; /* distance, azimuth, elevation [batch]; [TRAIN_HEAD_CLASS] unused */
    uint32_t n_mixed;                 /* items of the batch made by mixup */
} train_targets;

bp_status train_targets_alloc(train_targets *t, int64_t batch, int64_t n_classes, bp_error *err);
void train_targets_free(train_targets *t);

typedef struct train_data {
    bp_dataset *ds;
    char label[128];
    train_frontend *fe; /* borrowed */
    int64_t n_items;
    int64_t n_classes;  /* of the dataset's "classes" tensor; 0 when it has none */
    bp_spec audio_spec; /* the dataset's "audio" port */
    bp_port item_ports[BP_MAX_ITEM_FIELDS];
    uint32_t n_item_ports;
    float *mix_a; /* scratch for mixup: the first clip */
    size_t mix_cap;
    int64_t perm_epoch;
    int64_t *perm;
} train_data;

bp_status train_data_open(train_data *d, bp_registry *reg, const train_comp *ds, train_frontend *fe, bp_error *err);
void train_data_close(train_data *d);
/* The shape the frontend gives for this dataset's clips (prepares it). */
bp_status train_data_feature_shape(train_data *d, int64_t shape[3], bp_error *err);

typedef struct train_batch_req {
    int64_t first; /* position of the first example in the example stream */
    int64_t batch;
    int32_t shuffle; /* 1: stream = per-epoch permutations from the seed; 0: items in order */
    uint64_t seed;
    double mixup_prob, mixup_alpha;
    int32_t mixup_spatial;
    /* optional: copy these item tensors into out[i] (host [batch, ...], the item's shape per row) */
    uint32_t n_collect;
    const char *const *collect;
    bp_tensor *const *collect_out;
} train_batch_req;

/* Fill features [batch, C, T, F] and targets for examples first..first+batch−1. */
bp_status train_data_batch(train_data *d, const train_batch_req *req, float *features, train_targets *tg,
                           bp_error *err);
/* Item `index` and its host "audio" [channels, samples] (valid until the next get). */
bp_status train_data_clip(train_data *d, int64_t index, bp_item *item, const bp_tensor **audio, bp_error *err);

/* -------------------------------------------------------------- norm -- */

/* Per-channel mean and (biased) variance of the frontend's "logmel_raw"
 * output over `items` training clips drawn from the seed: what BatchNorm's
 * running statistics converge to in the official model. */
bp_status train_norm_estimate(train_data *d, uint64_t seed, int64_t items, double *mean, double *var, uint32_t *n_ch,
                              bp_error *err);

/* -------------------------------------------------------------- loss -- */

typedef struct train_loss {
    double term[TRAIN_HEAD_COUNT];   /* BCE mean, CE distance, CE azimuth, CE elevation (unweighted) */
    int64_t count[TRAIN_HEAD_COUNT]; /* items that contributed */
    double total;                    /* weighted sum of the enabled terms */
} train_loss;

typedef struct train_loss_weights {
    double w[TRAIN_HEAD_COUNT];   /* λ1, λ2, λ3, λ3 */
    int32_t on[TRAIN_HEAD_COUNT]; /* enabled by the stage (and present) */
} train_loss_weights;

/* Losses of one batch from host logits (logits[h] NULL: head absent) and,
 * when grads[h] is not NULL, d(total)/d(logits[h]) for the enabled terms
 * (zeros for the others). Computed in double. */
bp_status train_loss_compute(const float *const logits[TRAIN_HEAD_COUNT], const int64_t width[TRAIN_HEAD_COUNT],
                             const train_targets *tg, const train_loss_weights *w, train_loss *out,
                             float *const grads[TRAIN_HEAD_COUNT], bp_error *err);

/* ------------------------------------------------------------- optim -- */

typedef struct train_optim {
    uint32_t n;         /* = model->n_params */
    bp_tensor **m, **v; /* per param; NULL for buffers and frozen tensors */
    double *lr_scale;   /* layer-wise decay factor per param */
    double beta1, beta2, eps, weight_decay;
} train_optim;

bp_status train_optim_init(train_optim *o, const train_model *m, const train_cfg *c, bp_error *err);
void train_optim_free(train_optim *o);
/* One AdamW update of every trainable parameter: lr = lr_base · its layer
 * scale, decay where the parameter says so, t = adam_step (1-based),
 * gradients multiplied by grad_scale (1/accum). */
bp_status train_optim_step(train_optim *o, train_model *m, double lr_base, int64_t adam_step, float grad_scale,
                           bp_error *err);
bp_status train_optim_zero(train_optim *o, bp_error *err);

/* -------------------------------------------------------------- ckpt -- */

/* What a checkpoint records besides tensors. */
typedef struct train_state {
    int64_t step;     /* optimizer steps done */
    int64_t examples; /* examples consumed */
    uint32_t stage;   /* stage of the next step */
} train_state;

/* "<dir>/checkpoints" */
char *train_ckpt_dir(const char *out_dir);
/* Remove leftover temporary files of interrupted writes. */
void train_ckpt_clean_temps(const char *ckpt_dir);
/* Newest checkpoint (by step) in the directory: *path NULL when none. */
bp_status train_ckpt_latest(const char *ckpt_dir, char **path, int64_t *step, bp_error *err);
/* Number of checkpoint files (for the "already has checkpoints" check). */
int32_t train_ckpt_count(const char *ckpt_dir);
bp_status train_ckpt_remove_all(const char *ckpt_dir, bp_error *err);
bp_status train_ckpt_write(const char *ckpt_dir, const train_model *m, const train_optim *o, const train_state *s,
                           const train_cfg *c, char *path_out, size_t cap, bp_error *err);
/* Keep the newest `keep` checkpoints. */
bp_status train_ckpt_prune(const char *ckpt_dir, int64_t keep, bp_error *err);
/* Load a checkpoint into the model and optimizer; checks the fingerprint. */
bp_status train_ckpt_load(const char *path, train_model *m, train_optim *o, const train_cfg *c, train_state *s,
                          bp_error *err);
/* The final weights and buffers by their official names. */
bp_status train_weights_write(const char *path, const train_model *m, const train_cfg *c, const train_state *s,
                              bp_error *err);

/* -------------------------------------------------------------- eval -- */

typedef struct train_eval {
    bp_metric *metrics[TRAIN_MAX_METRICS];
    const char *const *inputs[TRAIN_MAX_METRICS];
    uint32_t n_inputs[TRAIN_MAX_METRICS];
    uint32_t n_metrics;
    char labels[TRAIN_MAX_METRICS][128];
} train_eval;

/* Create the metric plugins and check that each input they read is an
 * encoder output or a dataset tensor. */
bp_status train_eval_create(train_eval *e, bp_registry *reg, const train_cfg *c, const train_model *m,
                            const train_data *d, bp_error *err);
void train_eval_free(train_eval *e);
/* Validation losses (every term, weighted with the stage's switches) and
 * metrics over the evaluation set; results appended to out[]. */
bp_status train_eval_run(train_eval *e, train_model *m, train_data *d, const train_cfg *c, const train_loss_weights *w,
                         bp_metric_result *out, uint32_t cap, uint32_t *n, bp_error *err);

/* --------------------------------------------------------------- log -- */

typedef struct train_log {
    FILE *f;
    char *path;
} train_log;

/* Open "<out>/train.jsonl": fresh (truncated) when keep_until < 0, else
 * keeping only the complete lines whose step ≤ keep_until (a resumed run
 * continues the log of the steps its checkpoint holds). */
bp_status train_log_open(train_log *l, const char *out_dir, int64_t keep_until, bp_error *err);
void train_log_close(train_log *l);
/* Append one line (a JSON object text without newline) and flush. */
bp_status train_log_line(train_log *l, const char *json, bp_error *err);

#endif
