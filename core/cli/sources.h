/* Internals of `batpipe sources`: the source-recordings corpus (docs/sources.md).
 *
 * The pipeline is: a list of input recordings with labels (the stage list that
 * scripts/sources/fetch.py writes, or a user's CSV) → each recording decoded
 * with batpipe's audio I/O, channel 0, resampled to 32 kHz, written as FLAC
 * PCM 24 → per-class filter on distinct recordings → train/eval split by
 * recording → corpus.tsv.
 *
 * Nothing here prints: messages go to the caller through sources_log_fn and
 * errors through bp_error. Every function that returns a pointer says who
 * owns it. */
#ifndef BP_CLI_SOURCES_H
#define BP_CLI_SOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "batpipe/error.h"

#define SOURCES_RATE 32000
#define SOURCES_MAX_LABELS 16

/* ------------------------------------------------------------ utilities -- */

/* Growable array: make room for `need` elements of size `elem`. 0 on success. */
int sources_grow(void **ptr, size_t *cap, size_t need, size_t elem);
/* strdup / printf-strdup; NULL on allocation failure (NULL in → NULL out). */
char *sources_strdup(const char *s);
char *sources_strdupf(const char *fmt, ...) BP_PRINTF(1, 2);
/* Strip leading and trailing blanks (space, tab, CR, LF) in place; returns s. */
char *sources_trim(char *s);
/* Levenshtein distance of two ASCII strings, case-insensitive, capped at 64. */
int sources_edit_distance(const char *a, const char *b);
/* Map a package-relative source path to a file-name-safe relative path:
 * leading '/' dropped, archive separator ':' becomes '/', bytes outside
 * [A-Za-z0-9._-/] become '_', "." and ".." components become "_", the
 * extension is replaced by ".flac". Caller frees. */
char *sources_clip_name(const char *package, const char *source_path);
/* Lexically simplify a path in place: "a/./b/../c" → "a/c" (never longer). */
void sources_path_normalize(char *path);
/* Directory part of `path` ("." if none). Caller frees. */
char *sources_dirname(const char *path);
/* Split a NUL-terminated buffer into lines in place: returns the next line
 * (without "\n" or "\r\n") and advances *cursor; NULL at the end. */
char *sources_next_line(char **cursor);
/* Read a whole text file (NUL-terminated). Caller frees *out. */
bp_status sources_read_text(const char *path, char **out, size_t *len, bp_error *err);

/* ------------------------------------------------------------- md5 ------ */

typedef struct sources_md5 {
    uint32_t state[4];
    uint64_t bytes;
    uint8_t block[64];
    size_t fill;
} sources_md5;

void sources_md5_init(sources_md5 *m);
void sources_md5_update(sources_md5 *m, const void *data, size_t n);
void sources_md5_final(sources_md5 *m, uint8_t digest[16]);
/* Lower-case hex of a digest into hex[33]. */
void sources_md5_hex(const uint8_t digest[16], char hex[33]);

/* ------------------------------------------------------------ ontology -- */

typedef struct sources_class {
    char *mid;          /* "/m/0bt9lr" */
    char *name;         /* AudioSet display name, "Dog" */
    char *restrictions; /* "", "abstract", "blacklist" or "abstract,blacklist" */
} sources_class;

typedef struct sources_ontology {
    sources_class *classes;
    size_t n;
} sources_ontology;

/* Load data/curation/audioset_classes.tsv (columns mid, name, restrictions;
 * '#' lines are comments). */
bp_status sources_ontology_load(const char *path, sources_ontology *o, bp_error *err);
void sources_ontology_free(sources_ontology *o);
/* Look a label up by mid or by display name (exact, then case-insensitive).
 * Returns the class or NULL. */
const sources_class *sources_ontology_find(const sources_ontology *o, const char *label);
/* The display name closest to `label` (for "did you mean"), or NULL. */
const sources_class *sources_ontology_nearest(const sources_ontology *o, const char *label);

/* --------------------------------------------------------- input lists -- */

typedef struct sources_item {
    char *input;       /* file to decode (absolute, or relative to the current directory) */
    char *package;     /* Debian package, or the import's name */
    char *license;     /* licence identifier */
    char *source_path; /* path inside the package (archive:inner for archive members) */
    char *placement;   /* "" (derive from duration) or a placement rule name */
    const sources_class *labels[SOURCES_MAX_LABELS];
    int n_labels;
    int line;          /* line of the list it came from (1-based) */
} sources_item;

typedef struct sources_list {
    sources_item *items;
    size_t n, cap;
} sources_list;

void sources_list_free(sources_list *l);

typedef void (*sources_log_fn)(void *user, const char *msg);

/* The stage list written by scripts/sources/fetch.py: TSV with a header
 * naming at least input, label, package, license, source_path (placement
 * optional); label is one AudioSet display name or mid. Relative inputs are
 * resolved against `base_dir`. Every bad line is reported through `log`;
 * any bad line makes the call fail (BP_ERR_INVALID) after the whole file was
 * checked. */
bp_status sources_stage_read(const char *path, const char *base_dir, const sources_ontology *o, sources_list *out,
                             sources_log_fn log, void *log_user, bp_error *err);

/* A user's CSV: "file,labels" per line (RFC 4180 quoting; an optional header
 * line naming file and labels, and optionally license); labels separated by
 * ';', each an AudioSet display name or mid. Relative files are resolved
 * against the CSV's directory. Errors name the line; all lines are checked
 * and reported through `log` before the call fails. */
bp_status sources_import_csv(const char *path, const sources_ontology *o, const char *package,
                             const char *default_license, sources_list *out, sources_log_fn log, void *log_user,
                             bp_error *err);

/* ----------------------------------------------------------- convert ---- */

typedef struct sources_clip_stats {
    double duration_s;   /* of the stored clip */
    double rms_dbfs;     /* 20·log10(RMS) of the stored clip over its whole length */
    double peak;         /* of the stored clip */
    double gain_db;      /* attenuation applied to keep the peak below full scale (0 or negative) */
    double source_rate;  /* rate of the input file */
    int32_t source_channels;
    int32_t channel;     /* channel kept: 0, or the first non-silent one when channel 0 is all zeros */
    char md5[33];        /* of the stored 24-bit samples (little-endian, 3 bytes each) */
} sources_clip_stats;

typedef struct sources_convert_opts {
    double max_seconds;  /* keep at most this much (the start of the recording); <= 0: all */
    double min_seconds;  /* shorter results are rejected (BP_ERR_INVALID, "too short") */
    double silence_dbfs; /* quieter results are rejected (BP_ERR_INVALID, "silent") */
} sources_convert_opts;

/* Decode `input`, keep channel 0 (or, if channel 0 is all zeros, the first
 * channel that is not), resample to 32 kHz (libsamplerate best),
 * cut to max_seconds, attenuate if the peak would exceed full scale, write
 * `output` as FLAC PCM 24 (atomically; parent directories are created), then
 * read the written file back and measure it. If `output` already exists and
 * is not older than `input`, the conversion is skipped and the existing file
 * is measured (resume). `*converted` says which happened. */
bp_status sources_convert(const char *input, const char *output, const sources_convert_opts *opt,
                          sources_clip_stats *stats, int *converted, bp_error *err);
/* Measure an existing 32 kHz mono clip. */
bp_status sources_measure(const char *path, sources_clip_stats *stats, bp_error *err);

/* ------------------------------------------------------------- split ---- */

/* One corpus row candidate: a converted clip under one label. */
typedef struct sources_row {
    size_t item;           /* index into the input list */
    const sources_class *cls;
    char recording[16];    /* "r" + 12 hex digits of the md5 */
    int split;             /* 0 train, 1 eval */
    int keep;              /* 1 kept; 0 dropped (reason in `why`) */
    const char *why;       /* static string */
    char *file;            /* clip path relative to the corpus dir (owned by the build) */
    double duration_s, rms_dbfs;
} sources_row;

typedef struct sources_split_opts {
    int min_recordings;    /* classes with fewer distinct recordings are dropped */
    double eval_fraction;  /* per class, round(fraction · recordings) go to eval (at least 1 when n >= 2) */
    const char *salt;      /* mixed into the hash that orders recordings */
} sources_split_opts;

/* Deduplicate (same recording under the same label: keep the first by file
 * name), drop classes below min_recordings, and assign splits so that a
 * recording is in exactly one split. Deterministic: depends only on the
 * rows' recordings, labels and file names, not on their order. */
bp_status sources_split(sources_row *rows, size_t n, const sources_split_opts *opt, bp_error *err);
/* The 64-bit ordering key of a recording under a salt (FNV-1a of salt + id). */
uint64_t sources_split_key(const char *salt, const char *recording);

/* ------------------------------------------------------------- build ---- */

typedef void (*sources_progress_fn)(void *user, uint64_t done, uint64_t total, const char *item, double elapsed);
typedef int (*sources_cancel_fn)(void);

typedef struct sources_build_opts {
    const char *dir;           /* corpus directory: clips/ and corpus.tsv go here */
    sources_convert_opts convert;
    sources_split_opts split;
    int jobs;                  /* worker threads (>= 1) */
    sources_log_fn log;        /* skips and notes, one line each; may be NULL */
    void *log_user;
    sources_progress_fn progress; /* may be NULL */
    void *progress_user;
    sources_cancel_fn cancelled;  /* may be NULL */
} sources_build_opts;

typedef struct sources_build_report {
    size_t inputs, converted, reused, skipped, rows, classes, classes_dropped;
    size_t train_rows, eval_rows, recordings;
    double minutes;
} sources_build_report;

/* Convert every item, split, and write <dir>/corpus.tsv, <dir>/classes.tsv
 * and <dir>/skipped.tsv (all atomically). A file that cannot be converted is
 * skipped and reported, never fatal; the call fails only when nothing could
 * be written or it was cancelled. */
bp_status sources_build(const sources_list *list, const sources_build_opts *opt, sources_build_report *rep,
                        bp_error *err);

#endif
