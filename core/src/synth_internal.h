/* Internal: the SpatialSoundQA generator (`batpipe synth`), shared by the
 * synth_*.c files. One responsibility per file:
 *   synth_config.c   the configuration: keys, types, ranges, defaults
 *   synth_corpus.c   corpus.tsv: rows, class list, per-class pools, probing
 *   synth_room.c     materials, procedural shoebox rooms, Eyring/Sabine T60
 *   synth_scene.c    per-scene sampling: classes, recordings, distances, positions
 *   synth_qa.c       question/answer templates (types A–E)
 *   synth_render.c   sources (normalise, place/loop), FFT convolution, mixing
 *   synth_record.c   the per-scene record (JSON) and the manifest
 *   synth_final.c    the final files: QA JSON, stage files, class list
 *   synth_summary.c  summary.json / summary.md
 *   synth_plot.c     SVG histograms
 *   synth_run.c      load, run (threads, shards, resume), merge: the public API */
#ifndef BP_SYNTH_INTERNAL_H
#define BP_SYNTH_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "batpipe/labels.h"
#include "batpipe/registry.h"
#include "batpipe/simulator.h"
#include "batpipe/synth.h"
#include "config.h"
#include "paramset.h"
#include "strbuf.h"

#define SYNTH_BANDS 7  /* octave bands 125 Hz … 8 kHz */
#define SYNTH_SPLITS 2 /* train, eval */
#define SYNTH_KINDS 2  /* single, two (sources) */
#define SYNTH_MAX_SOURCES 2
#define SYNTH_MAX_MATERIALS 64
#define SYNTH_MAX_ROOM_TYPES 16
#define SYNTH_MAX_QA 32    /* questions per scene */
#define SYNTH_MAX_STATS 32 /* simulator statistics kept per render */
#define SYNTH_JSON_FLAGS (JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))
/* Part of the fingerprint: bump whenever the same configuration would give
 * other bytes (sampling, templates, rendering, file formats), so that a run
 * never resumes or merges into a directory made by an incompatible generator. */
#define SYNTH_GENERATOR_VERSION 1

enum { SYNTH_TRAIN = 0, SYNTH_EVAL = 1 };
enum { SYNTH_SINGLE = 0, SYNTH_TWO = 1 };
enum { SYNTH_QA_A = 0, SYNTH_QA_B, SYNTH_QA_C, SYNTH_QA_D, SYNTH_QA_E, SYNTH_QA_TYPES };
enum { SYNTH_E_BINARY_DIRECTION = 0, SYNTH_E_BINARY_DISTANCE, SYNTH_E_NONBINARY, SYNTH_E_MIXES };
/* How a recording fills the window (docs/sources.md): per corpus row, or forced by audio.placement. */
enum { SYNTH_PLACE_DEFAULT = 0, SYNTH_PLACE_CUT, SYNTH_PLACE_REPEAT, SYNTH_PLACE_LOOP, SYNTH_PLACE_ONCE };
/* audio.placement: "corpus" (the row's column; without one: repeat short clips), or one rule for all short clips. */
enum { SYNTH_PLACEMENT_CORPUS = 0, SYNTH_PLACEMENT_REPEAT, SYNTH_PLACEMENT_LOOP, SYNTH_PLACEMENT_ONCE };
const char *synth_place_name(int32_t p);

static inline const char *synth_split_name(int32_t s) { return s == SYNTH_TRAIN ? "train" : "eval"; }
static inline const char *synth_kind_name(int32_t k) { return k == SYNTH_SINGLE ? "single" : "two"; }

extern const double synth_band_hz[SYNTH_BANDS];

/* ------------------------------------------------------------------ RNG -- */

/* splitmix64's finaliser: a bijective 64-bit mix. */
static inline uint64_t synth_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* xoshiro256** seeded through splitmix64. */
typedef struct synth_rng {
    uint64_t s[4];
} synth_rng;

static inline void synth_rng_seed(synth_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) {
        seed += 0x9e3779b97f4a7c15ull;
        r->s[i] = synth_mix64(seed);
    }
}

static inline uint64_t synth_rng_next(synth_rng *r) {
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5;
    uint64_t res = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double synth_rng_uniform(synth_rng *r) { return (double)(synth_rng_next(r) >> 11) * 0x1.0p-53; }
static inline double synth_rng_range(synth_rng *r, double lo, double hi) {
    return lo + (hi - lo) * synth_rng_uniform(r);
}
/* Uniform integer in [0, n), unbiased (n ≥ 1). */
static inline uint32_t synth_rng_below(synth_rng *r, uint32_t n) {
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = synth_rng_next(r);
    while (x >= lim);
    return (uint32_t)(x % n);
}

/* Independent random streams of one scene. */
enum {
    SYNTH_STREAM_SCENE = 1,  /* geometry, rooms, recordings */
    SYNTH_STREAM_CLASS0 = 2, /* stratified class of source 0 */
    SYNTH_STREAM_CLASS1 = 3,
    SYNTH_STREAM_DIST0 = 4, /* stratified distance class of source 0 */
    SYNTH_STREAM_DIST1 = 5,
    SYNTH_STREAM_PLACE0 = 6, /* window/loop placement of source 0 */
    SYNTH_STREAM_PLACE1 = 7,
    SYNTH_STREAM_SIM0 = 8, /* simulator seed of source 0 */
    SYNTH_STREAM_SIM1 = 9,
    SYNTH_STREAM_QA = 10
};

/* A seed that depends only on (global seed, split, kind, index, stream). */
uint64_t synth_seed(uint64_t global, int32_t split, int32_t kind, int64_t index, uint32_t stream);
/* Balanced draw: element `index mod n` of a seeded permutation of 0..n-1
 * that changes every n indices (each block of n consecutive scenes uses every
 * value once). */
int32_t synth_stratified(uint64_t global, int32_t split, int32_t kind, uint32_t stream, int64_t index, int32_t n);

/* Round to a multiple of `q` (positions in mm, times in 0.1 ms ...). */
static inline double synth_quantize(double x, double q) {
    double r = x / q;
    return (r >= 0 ? (double)(int64_t)(r + 0.5) : -(double)(int64_t)(-r + 0.5)) * q;
}

/* -------------------------------------------------------------- config -- */

typedef struct synth_material {
    char name[40];
    double alpha[SYNTH_BANDS];
} synth_material;

typedef struct synth_room_type {
    char name[40];
    double weight;
    double size_min[3], size_max[3]; /* x (width), y (height), z (depth), metres */
    double t60_min, t60_max;         /* target mid-band (500 Hz/1 kHz) Eyring T60, s */
    uint32_t walls[SYNTH_MAX_MATERIALS], n_walls;
    uint32_t floors[SYNTH_MAX_MATERIALS], n_floors;
    uint32_t ceilings[SYNTH_MAX_MATERIALS], n_ceilings;
    char where[256]; /* config location, for messages */
} synth_room_type;

typedef struct synth_cfg {
    char name[128];
    uint64_t seed;
    int32_t threads;
    int64_t counts[SYNTH_SPLITS][SYNTH_KINDS];

    char *corpus_file; /* resolved path */
    char **classes;    /* asked classes (may be 0) */
    uint32_t n_classes;
    int32_t min_recordings;
    char classes_where[256];

    double sample_rate;
    int64_t clip_samples;
    double rms_dbfs;
    int32_t placement;  /* SYNTH_PLACEMENT_* */
    double gap_s[2];    /* repeat: silence between occurrences */
    double lead_s[2];   /* repeat/once: onset of the first occurrence */
    double fade_s;      /* repeat: linear fade-out where an occurrence is cut at the window end */
    double crossfade_s; /* loop: raised-cosine cross-fade at each joint (at most a quarter clip) */
    double rir_seconds;

    char *sim_type;
    char sim_where[256];

    int32_t distance_classes[64];
    uint32_t n_distance_classes;
    double min_distance;
    double listener_height[2];
    double source_height[2];
    double wall_margin;
    double min_elevation;
    int32_t keep_low_elevation;
    double temperature_c, humidity, scattering;

    synth_material materials[SYNTH_MAX_MATERIALS];
    uint32_t n_materials;
    synth_room_type rooms[SYNTH_MAX_ROOM_TYPES];
    uint32_t n_rooms;
    double furniture_profile[SYNTH_BANDS];
    double max_furniture; /* cap of the added absorption coefficient */
    char rooms_where[256];

    int32_t qa_count[SYNTH_QA_TYPES];
    double e_mix[SYNTH_E_MIXES];
    double relation_margin;
    double distance_margin;

    char *out_dir; /* resolved; may be NULL */
    char subtype[16];
    double gain_db;
    int32_t on_clip_scale; /* 1 scale the scene down, 0 error */
    double peak_limit;
    int32_t save_rirs;
} synth_cfg;

/* Parse and validate; `cfg` is the loaded config tree. Paths are resolved
 * against the file that set them. The simulator section is left to the
 * caller (synth_config_sim_group). */
bp_status synth_config_parse(bp_config *cfg, synth_cfg *out, bp_error *err);
void synth_config_free(synth_cfg *c);
/* The `simulator` group of the config (never NULL after a successful parse). */
const config_setting_t *synth_config_sim_group(bp_config *cfg);
/* Every value as JSON (for the manifest and the fingerprint). */
json_t *synth_config_to_json(const synth_cfg *c);
/* Built-in materials and room types (filled by synth_config_parse). */
void synth_default_materials(synth_cfg *c);
bp_status synth_default_rooms(synth_cfg *c, bp_error *err);
int32_t synth_material_find(const synth_cfg *c, const char *name);

/* -------------------------------------------------------------- corpus -- */

typedef struct synth_row {
    char *file;    /* as written in corpus.tsv */
    char *path;    /* resolved */
    char *stem;    /* file without extension (the audio_id) */
    char **labels; /* display names */
    char **mids;   /* same count as labels, "" where unknown */
    uint32_t n_labels;
    int32_t *class_ids; /* per label: index in the class list, −1 if not in it */
    char *recording;
    char *license;
    char *package;
    int32_t split;
    int32_t placement; /* SYNTH_PLACE_*: the corpus' placement column (DEFAULT when absent) */
    double duration_s;
    int32_t usable;
    uint32_t line;
} synth_row;

/* Rows of one class in one split, grouped by recording. */
typedef struct synth_pool {
    uint32_t *rows; /* sorted by (recording, file) */
    uint32_t n_rows;
    uint32_t *rec_start; /* [n_recordings + 1] offsets into rows */
    uint32_t n_recordings;
} synth_pool;

typedef struct synth_corpus {
    char *path, *root;
    uint64_t hash; /* FNV-1a of the file's bytes */
    synth_row *rows;
    uint32_t n_rows;
    char **classes; /* display names, sorted by their lower-case form */
    char **class_lower;
    char **class_mids;
    uint32_t n_classes;
    synth_pool *pools; /* [split * n_classes + class] */
    char **skipped;    /* "file: reason" */
    uint32_t n_skipped, cap_skipped;
} synth_corpus;

/* Read corpus.tsv, choose the class list (cfg classes or every class with
 * enough recordings in both splits), probe every file (unreadable ones are
 * skipped and listed), and build the pools. */
bp_status synth_corpus_load(const synth_cfg *cfg, synth_corpus *out, bp_error *err);
void synth_corpus_free(synth_corpus *c);
static inline const synth_pool *synth_corpus_pool(const synth_corpus *c, int32_t split, int32_t cls) {
    return &c->pools[(size_t)split * c->n_classes + (size_t)cls];
}
/* "dog; speech": the row's labels that are in the class list, lower-case,
 * sorted, joined by "; ". */
void synth_row_answer(const synth_corpus *c, const synth_row *r, char *buf, size_t cap);
/* Do two rows share a class? */
int synth_rows_overlap(const synth_row *a, const synth_row *b);

/* ---------------------------------------------------------------- rooms -- */

typedef struct synth_room {
    int32_t type; /* index into cfg->rooms */
    double size[3];
    int32_t material[6];           /* walls x−, x+, floor, ceiling, z−, z+ */
    double alpha[6][SYNTH_BANDS];  /* effective: material + furniture, ≤ 0.99 */
    double furniture[SYNTH_BANDS]; /* absorption coefficient added to every surface */
    double target_t60;
    double eyring_t60[SYNTH_BANDS];
    double sabine_t60[SYNTH_BANDS];
    double volume, surface;
} synth_room;

/* Energy attenuation of air, 1/m (ISO 9613-1), at `hz`. */
double synth_air_absorption(double hz, double temperature_c, double humidity);
double synth_speed_of_sound(double temperature_c);
/* Fill eyring_t60/sabine_t60/volume/surface from size and alpha. */
void synth_room_t60(const synth_cfg *cfg, synth_room *room);
/* Mid-band T60: mean of the 500 Hz and 1 kHz bands. */
static inline double synth_mid_t60(const double *t60) { return 0.5 * (t60[2] + t60[3]); }
/* Does a room of this size leave room, inside the wall margins, for a
 * horizontal offset of ext_x along x and ext_z along z (plus some slack)? */
int synth_room_fits(const synth_cfg *cfg, const double size[3], double ext_x, double ext_z);
/* Draw a room of a type that fits the horizontal offset (ext_x, ext_z)
 * between listener and source: size, materials, and the furniture term
 * steering the mid-band Eyring T60 into the type's range. */
bp_status synth_room_sample(const synth_cfg *cfg, synth_rng *rng, double ext_x, double ext_z, synth_room *out,
                            bp_error *err);
/* The request's room struct for the simulator. */
void synth_room_to_sim(const synth_cfg *cfg, const synth_room *room, bp_sim_room *out);
/* Check at load time that the largest room type holds the largest asked distance. */
bp_status synth_rooms_check(const synth_cfg *cfg, bp_error *err);

/* --------------------------------------------------------------- scenes -- */

typedef struct synth_src {
    int32_t class_id; /* the class it was drawn for (named in questions) */
    uint32_t row;     /* corpus row (after replacements) */
    int32_t drawn_distance_class;
    double pos[3];
    bp_spatial_label label;
    int32_t below_hrtf; /* elevation < min_elevation (only with low_elevation = "keep") */
    /* filled while rendering */
    double norm_gain_db; /* RMS normalisation gain */
    double clip_s;       /* length of the recording */
    double start_s;      /* repeat/once: onset of the first occurrence; loop: phase in the clip */
    double window_s;     /* cut: where the window starts in the recording */
    int32_t copies;      /* occurrences (repeat), passes (loop) */
    int32_t placement;   /* SYNTH_PLACE_* used */
    json_t *replaced;    /* owned: files that failed to decode and were replaced */
    uint32_t n_stats;
    char stat_names[SYNTH_MAX_STATS][48];
    double stat_values[SYNTH_MAX_STATS];
} synth_src;

typedef struct synth_scene {
    char id[64]; /* "train-single-000012" */
    int32_t split, kind;
    int64_t index;
    uint64_t seed;
    synth_room room;
    double listener[3];
    uint32_t n_src;
    synth_src src[SYNTH_MAX_SOURCES];
    /* filled while rendering */
    double gain_db; /* applied to the mix before writing */
    double peak;    /* of the written mix, linear */
    int32_t scaled; /* 1: gain lowered to avoid clipping */
    double rt60;    /* simulator's mid-band T60 when reported, else Eyring */
} synth_scene;

typedef struct synth_ctx {
    const synth_cfg *cfg;
    const synth_corpus *corpus;
} synth_ctx;

void synth_scene_id(int32_t split, int32_t kind, int64_t index, char *buf, size_t cap);
/* Parse "train-single-000012"; 0 on success. */
int synth_scene_id_parse(const char *id, int32_t *split, int32_t *kind, int64_t *index);
/* Draw everything random about a scene except rendering details. */
bp_status synth_scene_sample(const synth_ctx *x, int32_t split, int32_t kind, int64_t index, synth_scene *out,
                             bp_error *err);
void synth_scene_clear(synth_scene *s);
/* Try the next usable recording of the same class after `row` failed; 0 on
 * success (sc->src[k].row updated), −1 when the class has no other. */
int synth_scene_replace_row(const synth_ctx *x, synth_scene *sc, uint32_t k, const uint32_t *failed, uint32_t n_failed);

/* ------------------------------------------------------------------- QA -- */

typedef struct synth_qa {
    int32_t type;              /* SYNTH_QA_A … */
    const char *question_type; /* "CLASSIFICATION", ... (static) */
    char question[512];
    char answer[256];
    json_t *query; /* owned: what was asked (template, sources, words) */
} synth_qa;

/* Questions about a scene (types by its kind and cfg->qa_count). */
bp_status synth_qa_generate(const synth_ctx *x, const synth_scene *sc, synth_qa *out, uint32_t cap, uint32_t *n,
                            bp_error *err);
void synth_qa_free(synth_qa *q, uint32_t n);
const char *synth_qa_type_letter(int32_t type);
/* Distance between the two sources as answers print it ("1.5m"): the class. */
int32_t synth_pair_distance_class(const synth_scene *sc);
/* Name of a source in questions: its drawn class, lower-case. */
const char *synth_src_name(const synth_ctx *x, const synth_src *s);

/* --------------------------------------------------------------- render -- */

typedef struct synth_fft synth_fft; /* plans for one convolution size (main-thread create/free) */
bp_status synth_fft_new(int64_t clip_samples, int64_t rir_samples, synth_fft **out, bp_error *err);
void synth_fft_free(synth_fft *f);

typedef struct synth_render synth_render; /* per-worker buffers */
bp_status synth_render_new(const synth_fft *fft, synth_render **out, bp_error *err);
void synth_render_free(synth_render *r);
/* Read source k's recording, normalise, place it in the window; on a decode
 * failure, replace the recording (recorded in src->replaced) and retry. */
bp_status synth_render_source(synth_render *r, const synth_ctx *x, synth_scene *sc, uint32_t k, bp_error *err);
/* The placed, normalised source of the last synth_render_source ([clip] samples). */
const float *synth_render_placed(const synth_render *r);
/* Convolve the placed source (from synth_render_source) with a [2, n] RIR
 * and add scale·result to the scene's mix. */
bp_status synth_render_convolve_add(synth_render *r, const bp_tensor *rir, float scale, bp_error *err);
void synth_render_clear_mix(synth_render *r);
/* Apply the output gain (lowering it if the mix would clip), fill sc->gain_db,
 * peak, scaled, and return the mix as a [2, clip] view. */
bp_status synth_render_finish(synth_render *r, const synth_cfg *cfg, synth_scene *sc, bp_tensor *mix, bp_error *err);

/* ------------------------------------------------------- records/output -- */

/* The per-scene record (metadata + QA); new reference. */
json_t *synth_record_build(const synth_ctx *x, const synth_scene *sc, const synth_qa *qa, uint32_t n_qa);
/* Write JSON atomically (pretty or one entry per line for {"data": [...]}). */
bp_status synth_json_write(const char *path, const json_t *j, int data_lines, bp_error *err);
/* The text synth_json_write would write (caller frees), NULL when out of memory. */
char *synth_json_text(const json_t *j, int data_lines);
/* Read a JSON file; the error names the file and the position. */
bp_status synth_json_read(const char *path, json_t **out, bp_error *err);
/* Relative paths inside an output directory. */
void synth_audio_rel(const char *scene_id, int32_t split, char *buf, size_t cap);
void synth_record_rel(const char *scene_id, int32_t split, char *buf, size_t cap);
/* The manifest: settings, classes, corpus hash, simulator, fingerprint. */
json_t *synth_manifest_build(const synth_cfg *cfg, const synth_corpus *corpus, const char *sim_desc,
                             json_t *sim_params);
const char *synth_manifest_fingerprint(const json_t *manifest);

/* Files written all-or-nothing: each is staged under a temporary name
 * (".<name>.staged") beside its destination, either whole (add) or streamed
 * (open, then write to its FILE); commit flushes, syncs and renames them all
 * into place; abort (or any failure) removes every staged file. */
typedef struct synth_staged_item {
    char *tmp, *dst;
    FILE *f; /* streamed files until commit */
} synth_staged_item;
typedef struct synth_staged {
    synth_staged_item *items;
    size_t n, cap;
} synth_staged;
bp_status synth_staged_add(synth_staged *s, const char *dst, const void *data, size_t size, bp_error *err);
/* A streamed file; *f stays owned by `s`. */
bp_status synth_staged_open(synth_staged *s, const char *dst, FILE **f, bp_error *err);
bp_status synth_staged_commit(synth_staged *s, bp_error *err);
void synth_staged_abort(synth_staged *s);

/* Write the final files of a complete set in `dir` from its records, in one
 * streaming pass (all-or-nothing); fails naming the first missing scene. */
bp_status synth_final_write(const char *dir, const json_t *manifest, bp_synth_report *rep, bp_error *err);

/* The summary, accumulated one scene record at a time, then staged as
 * dir/summary/{summary.json, summary.md, distributions.svg, classes.svg}. */
typedef struct synth_summary synth_summary;
synth_summary *synth_summary_new(const json_t *manifest);
void synth_summary_add(synth_summary *s, const json_t *record);
bp_status synth_summary_stage(synth_summary *s, synth_staged *st, const char *dir, bp_error *err);
void synth_summary_free(synth_summary *s);

/* One histogram panel of an SVG figure. */
typedef struct synth_panel {
    const char *title;
    const char *xlabel;
    const char *ylabel; /* e.g. "% of sources" */
    uint32_t n_bins;
    const double *counts;          /* [n_series][n_bins] */
    uint32_t n_series;             /* 1 or 2 (train, eval) */
    const char *const *series;     /* legend names */
    double x0, dx;                 /* bin i spans [x0 + i·dx, x0 + (i+1)·dx) */
    const char *const *bin_labels; /* categorical labels instead of x0/dx (may be NULL) */
    uint32_t tick_every;           /* label every k-th bin edge */
} synth_panel;
/* An SVG of `n` panels stacked vertically; appended to `out`. */
void synth_svg_panels(bp_sbuf *out, const char *title, const synth_panel *panels, uint32_t n);
/* Horizontal bars (class counts). */
void synth_svg_hbars(bp_sbuf *out, const char *title, const char *const *names, const double *counts, uint32_t n,
                     uint32_t n_series, const char *const *series);

#endif
