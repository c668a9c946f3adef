/* spatialsoundqa dataset plugin — internal declarations.
 *   ssqa_plugin.c  parameters, the bp_dataset instance (count, ports, get)
 *   ssqa_index.c   the QA JSON, the class list, per-entry labels
 *   ssqa_audio.c   clips: rendered FLAC (generated sets) or anechoic clip ⊛ RIR (official release)
 *   ssqa_npy.c     a bounds-checked .npy reader for the official binaural RIRs */
#ifndef SSQA_H
#define SSQA_H

#include <stddef.h>
#include <stdint.h>

#include "batpipe/error.h"
#include "batpipe/tensor.h"

#define SSQA_MAX_SOURCES 2

/* One QA entry with everything needed to load it. */
typedef struct ssqa_entry {
    char *id; /* "<question_type>-<question_id>" */
    char *question, *answer, *question_type, *type, *scene_id;
    char *audio_path;                  /* generated sets: rendered clip, resolved; NULL for official entries */
    double gain_db;                    /* generated: the gain applied before writing the FLAC */
    char *audio_id[SSQA_MAX_SOURCES];  /* official: anechoic clip ids (audio_id, audio_id2) */
    char *reverb_id[SSQA_MAX_SOURCES]; /* official: RIR ids */
    int32_t n_sources;
    int32_t azimuth[SSQA_MAX_SOURCES], elevation[SSQA_MAX_SOURCES], distance[SSQA_MAX_SOURCES]; /* −1 unknown */
    float *classes; /* [n_classes] multi-hot, or NULL: unknown */
} ssqa_entry;

typedef struct ssqa_index {
    ssqa_entry *entries;
    int64_t n;
    char **class_names; /* lower-case display names, class-list order */
    uint32_t n_classes;
} ssqa_index;

typedef struct ssqa_index_opts {
    const char *json_path;
    const char *audio_root;   /* resolved root of audio_path / audio_id */
    const char *class_list;   /* CSV index,mid,display_name or NULL (look beside the JSON) */
    const char *reverb_json;  /* official reverberation JSON with positions, or NULL */
    const char *const *types; /* keep only these (letters or question_type strings); NULL = all */
    uint32_t n_types;
    int64_t max_items; /* 0 = all */
} ssqa_index_opts;

bp_status ssqa_index_load(const ssqa_index_opts *o, ssqa_index *out, bp_error *err);
void ssqa_index_free(ssqa_index *x);

/* Read a .npy file of float32/float64 as F32 [2, n] (shape (2, n) or (n, 2),
 * C or Fortran order); the error names the file and the problem. */
bp_status ssqa_npy_read_binaural(const char *path, bp_tensor **out, bp_error *err);
/* Same from memory (tests, fuzzing); `label` names it in errors. */
bp_status ssqa_npy_parse_binaural(const void *data, size_t size, const char *label, bp_tensor **out, bp_error *err);

/* Audio assembly with its FFT plans and one-item cache. */
typedef struct ssqa_audio ssqa_audio;
typedef struct ssqa_audio_opts {
    double sample_rate;
    int64_t clip_samples;
    int64_t rir_max_samples;
    int32_t normalize; /* official clips: RMS to rms_dbfs */
    double rms_dbfs;
    int32_t undo_gain; /* generated clips: divide by the recorded gain */
    const char *audio_root, *reverb_root;
    int32_t resample; /* bp_resample_quality for files at another rate */
} ssqa_audio_opts;

bp_status ssqa_audio_new(const ssqa_audio_opts *o, ssqa_audio **out, bp_error *err);
void ssqa_audio_free(ssqa_audio *a);
/* The clip of an entry, F32 [2, clip_samples]; owned by `a`, valid until the next call. */
bp_status ssqa_audio_get(ssqa_audio *a, const ssqa_entry *e, const bp_tensor **out, bp_error *err);

#endif
