/* Internal: the pipeline's state, shared by the loader (config → plan),
 * the input sources (files or a dataset plugin), the metrics and the runner. */
#ifndef BP_PIPELINE_INTERNAL_H
#define BP_PIPELINE_INTERNAL_H

#include "batpipe/dataset.h"
#include "batpipe/metric.h"
#include "batpipe/ops.h"
#include "batpipe/pipeline.h"
#include "batpipe/stage.h"
#include "config.h"
#include "paramset.h"
#include "report_internal.h"
#include "strbuf.h"

enum { BP_INPUT_AUDIO = 0, BP_INPUT_TENSORS = 1, BP_INPUT_DATASET = 2 };
#define BP_BATCH_MAX 1024
enum { BP_SAVE_SAFETENSORS = 0, BP_SAVE_NPY = 1 };

typedef struct bp_stage_rec {
    const char *slot;                 /* "frontend", "encoder", "projector" */
    int32_t kind;
    const bp_component_info *comp;
    bp_paramset *params;
    bp_stage *st;
    char label[128];                  /* "frontend (melipd)" */
    char in_name[48];                 /* the tensor it reads */
    int add_batch;                    /* prepend a batch dim of 1 to the input */
    bp_spec prepared_in;              /* spec of the last prepare */
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n_ports;
    int need[BP_MAX_OUTPUTS];
} bp_stage_rec;

typedef struct bp_metric_rec {
    const bp_component_info *comp;
    bp_paramset *params;
    bp_metric *m;
    char label[128];                  /* "metrics[0] (map)" */
    char where[320];                  /* "eval.cfg:14": its group, for messages */
    const char *const *inputs;        /* owned by the metric */
    uint32_t n_inputs;
} bp_metric_rec;

typedef struct bp_input_file {
    char *path;
    char *item;       /* output name: the file's stem */
    double rate;      /* file rate (audio) */
    int32_t channels;
} bp_input_file;

struct bp_pipeline {
    bp_registry *reg;
    bp_config *cfg;
    /* input */
    int input_kind;
    bp_input_file *files;
    size_t n_files, cap_files;
    int32_t quality;       /* bp_resample_quality */
    double tensors_rate;   /* input.rate for saved audio tensors */
    int on_error_skip;
    double target_rate;    /* 0: keep the file's rate */
    int64_t batch_size;    /* items per batch of the batched stages (input.batch_size) */
    /* dataset input (input.type names a dataset plugin) */
    const bp_component_info *ds_comp;
    bp_paramset *ds_params;
    bp_dataset *ds;
    int64_t ds_count;
    bp_port ds_ports[BP_MAX_ITEM_FIELDS];
    uint32_t n_ds_ports;
    /* stages */
    bp_stage_rec stages[3];
    int n_stages;
    int batch_stage;       /* first stage run on stacked batches (-1: items one by one) */
    bp_backend *backend;
    bp_paramset *backend_params;
    /* output */
    char *out_dir;
    char **save;
    size_t n_save, cap_save;
    int format;
    int skip_existing;
    /* metrics and the evaluation report */
    bp_metric_rec *metrics;
    size_t n_metrics;
    bp_report *report;
    /* reports */
    bp_sbuf plan;
    bp_run_summary summary;
};

/* pipeline_input.c */
bp_status bp_input_configure(bp_pipeline *p, config_setting_t *sec, bp_error *err);
/* Number of items (files or dataset items). */
size_t bp_input_count(const bp_pipeline *p);
/* Read item i into named host tensors (owned by the caller); *n set to
 * their count. `item` (may be NULL) receives the name its outputs are saved
 * under (the file's stem, or the dataset item's id made file-name safe). */
bp_status bp_input_read(bp_pipeline *p, size_t i, char names[][48], bp_tensor **tensors, uint32_t cap, uint32_t *n,
                        double *rate, char item[128], bp_error *err);
/* "path/clip.wav" or "spatialsoundqa item 12" (for messages). */
void bp_input_describe(const bp_pipeline *p, size_t i, char *buf, size_t cap);
/* The tensors the input offers by name (dataset ports, "audio" for audio
 * files, those of the first file for saved tensors) for load-time checks;
 * returns their count (at most cap). */
uint32_t bp_input_names(bp_pipeline *p, char names[][48], uint32_t cap);
void bp_input_free(bp_pipeline *p);

/* pipeline_metrics.c */
bp_status bp_metrics_configure(bp_pipeline *p, config_setting_t *list, bp_error *err);
/* Every metric input is produced by the input or a stage (after negotiation). */
bp_status bp_metrics_check_inputs(bp_pipeline *p, bp_error *err);
int bp_metrics_uses(const bp_pipeline *p, const char *name);
void bp_metrics_free(bp_pipeline *p);

/* config helpers (pipeline_load.c) */
bp_status bp_sec_check_keys(bp_config *cfg, const config_setting_t *sec, const char *sec_name,
                            const char *const *allowed, bp_error *err);
bp_status bp_sec_string(bp_config *cfg, const config_setting_t *sec, const char *sec_name, const char *key,
                        const char *dflt, const char *choices, const char **out, bp_error *err);
bp_status bp_sec_bool(bp_config *cfg, const config_setting_t *sec, const char *sec_name, const char *key, int dflt,
                      int *out, bp_error *err);
bp_status bp_sec_int(bp_config *cfg, const config_setting_t *sec, const char *sec_name, const char *key, int64_t dflt,
                     int64_t lo, int64_t hi, int64_t *out, bp_error *err);

#endif
