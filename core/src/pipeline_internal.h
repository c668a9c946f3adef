/* Internal: the pipeline's state, shared by the loader (config → plan),
 * the input sources and the runner. */
#ifndef BP_PIPELINE_INTERNAL_H
#define BP_PIPELINE_INTERNAL_H

#include "batpipe/ops.h"
#include "batpipe/pipeline.h"
#include "batpipe/stage.h"
#include "config.h"
#include "paramset.h"
#include "strbuf.h"

enum { BP_INPUT_AUDIO = 0, BP_INPUT_TENSORS = 1 };
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
    /* stages */
    bp_stage_rec stages[3];
    int n_stages;
    bp_backend *backend;
    bp_paramset *backend_params;
    /* output */
    char *out_dir;
    char **save;
    size_t n_save, cap_save;
    int format;
    int skip_existing;
    /* reports */
    bp_sbuf plan;
    bp_run_summary summary;
};

/* pipeline_input.c */
bp_status bp_input_configure(bp_pipeline *p, config_setting_t *sec, bp_error *err);
/* Read item i into named host tensors; *n set to their count. */
bp_status bp_input_read(bp_pipeline *p, size_t i, char names[][48], bp_tensor **tensors, uint32_t cap, uint32_t *n,
                        double *rate, bp_error *err);

/* config helpers (pipeline_load.c) */
bp_status bp_sec_check_keys(bp_config *cfg, const config_setting_t *sec, const char *sec_name,
                            const char *const *allowed, bp_error *err);
bp_status bp_sec_string(bp_config *cfg, const config_setting_t *sec, const char *sec_name, const char *key,
                        const char *dflt, const char *choices, const char **out, bp_error *err);
bp_status bp_sec_bool(bp_config *cfg, const config_setting_t *sec, const char *sec_name, const char *key, int dflt,
                      int *out, bp_error *err);

#endif
