/* synth: the source corpus (corpus.tsv written by `batpipe sources`): rows,
 * the class list, per-split per-class pools grouped by recording, and a
 * header probe of every file that may be used (unusable files are skipped
 * and listed, never fatal on their own). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/audio.h"
#include "synth_internal.h"

#define CORPUS_MAX_BYTES (512u << 20)

static char *lower_dup(const char *s) {
    char *d = bp_strdup(s);
    if (d)
        for (char *p = d; *p; p++) *p = (char)tolower((unsigned char)*p);
    return d;
}

static char *trim(char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

static bp_status read_all(const char *path, char **out, size_t *len, bp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: cannot open the corpus manifest: %s%s", path, strerror(errno),
                            errno == ENOENT ? " (run `batpipe sources fetch` first, or set corpus.file)" : "");
    bp_sbuf b = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (b.len + n > CORPUS_MAX_BYTES) {
            fclose(f);
            bp_sbuf_free(&b);
            return bp_error_set(err, BP_ERR_FORMAT, "%s: larger than %u MB", path, CORPUS_MAX_BYTES >> 20);
        }
        bp_sbuf_printf(&b, "%.*s", (int)n, buf);
        if (memchr(buf, '\0', n)) {
            fclose(f);
            bp_sbuf_free(&b);
            return bp_error_set(err, BP_ERR_FORMAT, "%s: not a text file (NUL byte)", path);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || b.failed) {
        bp_sbuf_free(&b);
        return bp_error_set(err, bad ? BP_ERR_IO : BP_ERR_NOMEM, "%s: cannot read", path);
    }
    if (!b.s) b.s = bp_strdup("");
    *out = b.s;
    *len = b.len;
    return *out ? BP_OK : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
}

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

/* Split `s` at `sep` into at most cap fields (in place); returns the count. */
static uint32_t split_fields(char *s, char sep, char **f, uint32_t cap) {
    uint32_t n = 0;
    for (;;) {
        char *e = strchr(s, sep);
        if (n < cap) f[n] = s;
        n++;
        if (!e) break;
        *e = '\0';
        s = e + 1;
    }
    return n;
}

static void row_free(synth_row *r) {
    free(r->file);
    free(r->path);
    free(r->stem);
    for (uint32_t i = 0; i < r->n_labels; i++) {
        free(r->labels[i]);
        free(r->mids[i]);
    }
    free(r->labels);
    free(r->mids);
    free(r->class_ids);
    free(r->recording);
    free(r->license);
    free(r->package);
}

void synth_corpus_free(synth_corpus *c) {
    if (!c) return;
    for (uint32_t i = 0; i < c->n_rows; i++) row_free(&c->rows[i]);
    free(c->rows);
    for (uint32_t i = 0; i < c->n_classes; i++) {
        free(c->classes[i]);
        free(c->class_lower[i]);
        free(c->class_mids[i]);
    }
    free(c->classes);
    free(c->class_lower);
    free(c->class_mids);
    if (c->pools)
        for (size_t i = 0; i < (size_t)SYNTH_SPLITS * c->n_classes; i++) {
            free(c->pools[i].rows);
            free(c->pools[i].rec_start);
        }
    free(c->pools);
    for (uint32_t i = 0; i < c->n_skipped; i++) free(c->skipped[i]);
    free(c->skipped);
    free(c->path);
    free(c->root);
    memset(c, 0, sizeof *c);
}

static int add_skipped(synth_corpus *c, const char *file, const char *why) {
    size_t cap = c->cap_skipped;
    if (bp_grow((void **)&c->skipped, &cap, (size_t)c->n_skipped + 1, sizeof *c->skipped) != 0) return -1;
    c->cap_skipped = (uint32_t)cap;
    char *s = bp_strdupf("%s: %s", file, why);
    if (!s) return -1;
    c->skipped[c->n_skipped++] = s;
    return 0;
}

/* ------------------------------------------------------------- parsing -- */

enum {
    COL_FILE,
    COL_LABEL,
    COL_MID,
    COL_SPLIT,
    COL_RECORDING,
    COL_LICENSE,
    COL_PACKAGE,
    COL_DURATION,
    COL_RMS,
    COL_PLACEMENT,
    N_COLS
};
static const char *const col_names[N_COLS] = {"file",    "label",   "mid",        "split",    "recording",
                                              "license", "package", "duration_s", "rms_dbfs", "placement"};

static bp_status parse_row(synth_corpus *c, char **f, uint32_t nf, const int *col, uint32_t line, synth_row *r,
                           bp_error *err) {
    memset(r, 0, sizeof *r);
    r->line = line;
    const char *get[N_COLS];
    for (int k = 0; k < N_COLS; k++) get[k] = col[k] >= 0 && (uint32_t)col[k] < nf ? trim(f[col[k]]) : "";
    if (!*get[COL_FILE]) return bp_error_set(err, BP_ERR_FORMAT, "%s:%u: empty 'file'", c->path, line);
    if (!*get[COL_LABEL])
        return bp_error_set(err, BP_ERR_FORMAT, "%s:%u: empty 'label' for %s", c->path, line, get[COL_FILE]);
    if (strcmp(get[COL_SPLIT], "train") == 0)
        r->split = SYNTH_TRAIN;
    else if (strcmp(get[COL_SPLIT], "eval") == 0)
        r->split = SYNTH_EVAL;
    else
        return bp_error_set(err, BP_ERR_FORMAT, "%s:%u: split '%s' for %s is neither 'train' nor 'eval'", c->path, line,
                            get[COL_SPLIT], get[COL_FILE]);
    r->file = bp_strdup(get[COL_FILE]);
    r->path = bp_path_join(c->root, get[COL_FILE]);
    r->recording = bp_strdup(*get[COL_RECORDING] ? get[COL_RECORDING] : get[COL_FILE]);
    r->license = bp_strdup(get[COL_LICENSE]);
    r->package = bp_strdup(get[COL_PACKAGE]);
    r->stem = bp_strdup(get[COL_FILE]);
    if (!r->file || !r->path || !r->recording || !r->license || !r->package || !r->stem)
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    char *dot = strrchr(r->stem, '.');
    if (dot && !strchr(dot, '/')) *dot = '\0';
    r->duration_s = *get[COL_DURATION] ? strtod(get[COL_DURATION], NULL) : 0;
    const char *pl = get[COL_PLACEMENT];
    if (!*pl)
        r->placement = SYNTH_PLACE_DEFAULT;
    else if (strcmp(pl, "cut") == 0)
        r->placement = SYNTH_PLACE_CUT;
    else if (strcmp(pl, "repeat") == 0)
        r->placement = SYNTH_PLACE_REPEAT;
    else if (strcmp(pl, "loop") == 0)
        r->placement = SYNTH_PLACE_LOOP;
    else
        return bp_error_set(err, BP_ERR_FORMAT, "%s:%u: placement '%s' for %s is not cut, repeat or loop", c->path,
                            line, pl, get[COL_FILE]);
    /* labels "A; B" and mids "/m/x; /m/y" */
    char lab[4096], mid[4096];
    snprintf(lab, sizeof lab, "%s", get[COL_LABEL]);
    snprintf(mid, sizeof mid, "%s", get[COL_MID]);
    char *lf[64], *mf[64];
    uint32_t nl = split_fields(lab, ';', lf, 64), nm = *mid ? split_fields(mid, ';', mf, 64) : 0;
    if (nl > 64) return bp_error_set(err, BP_ERR_FORMAT, "%s:%u: more than 64 labels", c->path, line);
    r->labels = calloc(nl, sizeof *r->labels);
    r->mids = calloc(nl, sizeof *r->mids);
    r->class_ids = calloc(nl, sizeof *r->class_ids);
    if (!r->labels || !r->mids || !r->class_ids) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < nl; i++) {
        char *t = trim(lf[i]);
        if (!*t) return bp_error_set(err, BP_ERR_FORMAT, "%s:%u: empty label in '%s'", c->path, line, get[COL_LABEL]);
        for (uint32_t j = 0; j < r->n_labels; j++)
            if (strcmp(r->labels[j], t) == 0) t = NULL;
        if (!t) continue;
        uint32_t k = r->n_labels;
        r->labels[k] = bp_strdup(t);
        r->mids[k] = bp_strdup(i < nm && nm <= 64 ? trim(mf[i]) : "");
        r->class_ids[k] = -1;
        if (!r->labels[k] || !r->mids[k]) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        r->n_labels++;
    }
    /* a silent clip (rms_dbfs -inf or below -90) cannot be normalised */
    if (*get[COL_RMS]) {
        char *e;
        double rms = strtod(get[COL_RMS], &e);
        r->usable = !(rms <= -90.0);
    } else {
        r->usable = 1;
    }
    return BP_OK;
}

static bp_status parse_tsv(synth_corpus *c, char *text, bp_error *err) {
    uint32_t line = 0;
    int col[N_COLS];
    int have_header = 0;
    size_t cap = 0;
    for (int k = 0; k < N_COLS; k++) col[k] = -1;
    for (char *ln = text, *next; ln; ln = next) {
        next = strchr(ln, '\n');
        if (next) *next++ = '\0';
        line++;
        size_t n = strlen(ln);
        if (n && ln[n - 1] == '\r') ln[--n] = '\0';
        if (!n || ln[0] == '#') continue;
        char *f[256];
        uint32_t nf = split_fields(ln, '\t', f, 256);
        if (nf > 256) return bp_error_set(err, BP_ERR_FORMAT, "%s:%u: more than 256 columns", c->path, line);
        if (!have_header) {
            for (uint32_t i = 0; i < nf; i++)
                for (int k = 0; k < N_COLS; k++)
                    if (strcmp(trim(f[i]), col_names[k]) == 0) col[k] = (int)i;
            if (col[COL_FILE] < 0 || col[COL_LABEL] < 0 || col[COL_SPLIT] < 0)
                return bp_error_set(
                    err, BP_ERR_FORMAT,
                    "%s:%u: the header must name the columns 'file', 'label' and 'split' (tab-separated); "
                    "found none of them",
                    c->path, line);
            have_header = 1;
            continue;
        }
        if (bp_grow((void **)&c->rows, &cap, (size_t)c->n_rows + 1, sizeof *c->rows) != 0)
            return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        bp_status st = parse_row(c, f, nf, col, line, &c->rows[c->n_rows], err);
        c->n_rows++;
        if (st != BP_OK) return st;
    }
    if (!have_header) return bp_error_set(err, BP_ERR_FORMAT, "%s: empty (no header line)", c->path);
    if (!c->n_rows) return bp_error_set(err, BP_ERR_FORMAT, "%s: no rows", c->path);
    return BP_OK;
}

/* A clip with several labels may be listed once per label (docs/sources.md):
 * merge rows of the same file and split into one multi-label row, in the
 * position of its first row. */
typedef struct file_key {
    const synth_row *row;
    uint32_t index;
} file_key;

static int cmp_file_key(const void *a, const void *b) {
    const file_key *x = a, *y = b;
    int r = strcmp(x->row->file, y->row->file);
    if (!r) r = x->row->split - y->row->split;
    return r ? r : (x->index < y->index ? -1 : x->index > y->index);
}

static bp_status merge_rows(synth_corpus *c, bp_error *err) {
    if (c->n_rows < 2) return BP_OK;
    file_key *k = malloc(c->n_rows * sizeof *k);
    uint8_t *drop = calloc(c->n_rows, 1);
    if (!k || !drop) {
        free(k);
        free(drop);
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < c->n_rows; i++) k[i] = (file_key){&c->rows[i], i};
    qsort(k, c->n_rows, sizeof *k, cmp_file_key);
    bp_status st = BP_OK;
    for (uint32_t i = 1; i < c->n_rows && st == BP_OK; i++) {
        uint32_t first = i;
        while (first > 0 && cmp_file_key(&(file_key){k[first - 1].row, 0}, &(file_key){k[i].row, 0}) == 0) first--;
        if (first == i) continue;
        synth_row *dst = &c->rows[k[first].index], *src = &c->rows[k[i].index];
        for (uint32_t l = 0; l < src->n_labels && st == BP_OK; l++) {
            int have = 0;
            for (uint32_t m = 0; m < dst->n_labels; m++) have |= strcmp(dst->labels[m], src->labels[l]) == 0;
            if (have) continue;
            char **nl = realloc(dst->labels, (dst->n_labels + 1) * sizeof *nl);
            if (nl) dst->labels = nl;
            char **nm = nl ? realloc(dst->mids, (dst->n_labels + 1) * sizeof *nm) : NULL;
            if (nm) dst->mids = nm;
            int32_t *nc = nm ? realloc(dst->class_ids, (dst->n_labels + 1) * sizeof *nc) : NULL;
            if (nc) dst->class_ids = nc;
            if (!nc) {
                st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                break;
            }
            dst->labels[dst->n_labels] = src->labels[l];
            dst->mids[dst->n_labels] = src->mids[l];
            dst->class_ids[dst->n_labels] = -1;
            src->labels[l] = src->mids[l] = NULL;
            dst->n_labels++;
        }
        dst->usable &= src->usable;
        drop[k[i].index] = 1;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_rows; i++) {
        if (drop[i]) {
            row_free(&c->rows[i]);
            continue;
        }
        c->rows[n++] = c->rows[i];
    }
    c->n_rows = n;
    free(k);
    free(drop);
    return st;
}

/* ------------------------------------------------------------- classes -- */

typedef struct label_stat {
    const char *name;
    const char *mid;
    uint32_t recordings[SYNTH_SPLITS]; /* distinct usable recordings */
} label_stat;

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct usable recordings per split of every label. */
static bp_status label_stats(const synth_corpus *c, label_stat **out, uint32_t *n_out, bp_error *err) {
    label_stat *ls = NULL;
    size_t cap = 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_rows; i++)
        for (uint32_t k = 0; k < c->rows[i].n_labels; k++) {
            uint32_t j;
            for (j = 0; j < n; j++)
                if (strcmp(ls[j].name, c->rows[i].labels[k]) == 0) break;
            if (j == n) {
                if (bp_grow((void **)&ls, &cap, (size_t)n + 1, sizeof *ls) != 0) {
                    free(ls);
                    return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                }
                memset(&ls[n], 0, sizeof ls[n]);
                ls[n].name = c->rows[i].labels[k];
                ls[n].mid = "";
                n++;
            }
            if (!*ls[j].mid && *c->rows[i].mids[k]) ls[j].mid = c->rows[i].mids[k];
        }
    /* count distinct recordings: sort (label, split, recording) keys */
    for (uint32_t j = 0; j < n; j++)
        for (int s = 0; s < SYNTH_SPLITS; s++) {
            const char **recs = malloc((c->n_rows ? c->n_rows : 1) * sizeof *recs);
            if (!recs) {
                free(ls);
                return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            }
            uint32_t m = 0;
            for (uint32_t i = 0; i < c->n_rows; i++) {
                const synth_row *r = &c->rows[i];
                if (!r->usable || r->split != s) continue;
                for (uint32_t k = 0; k < r->n_labels; k++)
                    if (strcmp(r->labels[k], ls[j].name) == 0) recs[m++] = r->recording;
            }
            qsort(recs, m, sizeof *recs, cmp_str_ptr);
            uint32_t d = 0;
            for (uint32_t i = 0; i < m; i++)
                if (i == 0 || strcmp(recs[i], recs[i - 1]) != 0) d++;
            ls[j].recordings[s] = d;
            free(recs);
        }
    *out = ls;
    *n_out = n;
    return BP_OK;
}

static int cmp_class(const void *a, const void *b) {
    const label_stat *x = a, *y = b;
    char lx[256], ly[256];
    snprintf(lx, sizeof lx, "%s", x->name);
    snprintf(ly, sizeof ly, "%s", y->name);
    for (char *p = lx; *p; p++) *p = (char)tolower((unsigned char)*p);
    for (char *p = ly; *p; p++) *p = (char)tolower((unsigned char)*p);
    int r = strcmp(lx, ly);
    return r ? r : strcmp(x->name, y->name);
}

/* Probe the header of every row that carries one of the candidate labels. */
static bp_status probe_rows(synth_corpus *c, const label_stat *ls, const int *wanted, uint32_t n_labels,
                            bp_error *err) {
    for (uint32_t i = 0; i < c->n_rows; i++) {
        synth_row *r = &c->rows[i];
        int need = 0;
        for (uint32_t k = 0; k < r->n_labels && !need; k++)
            for (uint32_t j = 0; j < n_labels; j++)
                if (wanted[j] && strcmp(ls[j].name, r->labels[k]) == 0) need = 1;
        if (!need) continue;
        if (!r->usable) {
            if (add_skipped(c, r->file, "silent (rms_dbfs in corpus.tsv at or below -90 dB)") != 0)
                return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            continue;
        }
        bp_audio_info info;
        bp_error e = BP_ERROR_INIT;
        const char *why = NULL;
        char buf[BP_ERROR_MSG_MAX];
        if (bp_audio_probe(r->path, &info, &e) != BP_OK) {
            snprintf(buf, sizeof buf, "%s", e.msg);
            why = buf;
        } else if (info.file_frames <= 0) {
            why = "no samples";
        }
        if (why) {
            r->usable = 0;
            if (add_skipped(c, r->file, why) != 0) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        } else if (r->duration_s <= 0) {
            r->duration_s = (double)info.file_frames / info.file_rate;
        }
    }
    return BP_OK;
}

typedef struct pool_sort {
    const synth_corpus *c;
    uint32_t row;
} pool_sort;

static int cmp_pool(const void *a, const void *b) {
    const pool_sort *x = a, *y = b;
    const synth_row *rx = &x->c->rows[x->row], *ry = &y->c->rows[y->row];
    int r = strcmp(rx->recording, ry->recording);
    if (r) return r;
    r = strcmp(rx->file, ry->file);
    return r ? r : (x->row < y->row ? -1 : x->row > y->row);
}

static bp_status build_pools(synth_corpus *c, bp_error *err) {
    c->pools = calloc((size_t)SYNTH_SPLITS * c->n_classes, sizeof *c->pools);
    pool_sort *tmp = malloc((c->n_rows ? c->n_rows : 1) * sizeof *tmp);
    if (!c->pools || !tmp) {
        free(tmp);
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    for (int s = 0; s < SYNTH_SPLITS; s++)
        for (uint32_t k = 0; k < c->n_classes; k++) {
            synth_pool *p = &c->pools[(size_t)s * c->n_classes + k];
            uint32_t m = 0;
            for (uint32_t i = 0; i < c->n_rows; i++) {
                const synth_row *r = &c->rows[i];
                if (!r->usable || r->split != s) continue;
                for (uint32_t l = 0; l < r->n_labels; l++)
                    if (r->class_ids[l] == (int32_t)k) {
                        tmp[m].c = c;
                        tmp[m].row = i;
                        m++;
                        break;
                    }
            }
            qsort(tmp, m, sizeof *tmp, cmp_pool);
            p->rows = malloc((m ? m : 1) * sizeof *p->rows);
            p->rec_start = malloc(((size_t)m + 1) * sizeof *p->rec_start);
            if (!p->rows || !p->rec_start) {
                free(tmp);
                return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            }
            p->n_rows = m;
            for (uint32_t i = 0; i < m; i++) {
                p->rows[i] = tmp[i].row;
                if (i == 0 || strcmp(c->rows[tmp[i].row].recording, c->rows[tmp[i - 1].row].recording) != 0)
                    p->rec_start[p->n_recordings++] = i;
            }
            p->rec_start[p->n_recordings] = m;
        }
    free(tmp);
    return BP_OK;
}

static bp_status choose_classes(synth_corpus *c, const synth_cfg *cfg, bp_error *err) {
    label_stat *ls;
    uint32_t nl;
    bp_status st = label_stats(c, &ls, &nl, err);
    if (st != BP_OK) return st;
    int need_split[SYNTH_SPLITS];
    for (int s = 0; s < SYNTH_SPLITS; s++) need_split[s] = cfg->counts[s][0] + cfg->counts[s][1] > 0;
    int *wanted = calloc(nl ? nl : 1, sizeof *wanted);
    if (!wanted) {
        free(ls);
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    /* 1. candidates: the asked classes (must exist), or every label with
     *    enough recordings before probing */
    for (uint32_t i = 0; i < cfg->n_classes && st == BP_OK; i++) {
        uint32_t j;
        for (j = 0; j < nl; j++)
            if (strcmp(ls[j].name, cfg->classes[i]) == 0) break;
        if (j < nl) {
            wanted[j] = 1;
            continue;
        }
        const char *best = NULL;
        int bd = 4;
        for (uint32_t k = 0; k < nl; k++) {
            char a[256], b[256];
            snprintf(a, sizeof a, "%s", cfg->classes[i]);
            snprintf(b, sizeof b, "%s", ls[k].name);
            for (char *p = a; *p; p++) *p = (char)tolower((unsigned char)*p);
            for (char *p = b; *p; p++) *p = (char)tolower((unsigned char)*p);
            int d = bp_edit_distance(a, b);
            if (d < bd) bd = d, best = ls[k].name;
        }
        if (best)
            st = bp_error_set(err, BP_ERR_INVALID,
                              "%s: corpus.classes: unknown class '%s' (did you mean '%s'?): no row of %s has it",
                              cfg->classes_where, cfg->classes[i], best, c->path);
        else
            st = bp_error_set(err, BP_ERR_INVALID, "%s: corpus.classes: unknown class '%s': no row of %s has it",
                              cfg->classes_where, cfg->classes[i], c->path);
    }
    if (st == BP_OK && cfg->n_classes == 0)
        for (uint32_t j = 0; j < nl; j++) {
            wanted[j] = 1;
            for (int s = 0; s < SYNTH_SPLITS; s++)
                if (need_split[s] && ls[j].recordings[s] < (uint32_t)cfg->min_recordings) wanted[j] = 0;
        }
    /* 2. probe the files that may be used, recount */
    if (st == BP_OK) st = probe_rows(c, ls, wanted, nl, err);
    if (st == BP_OK) {
        free(ls);
        ls = NULL;
        int *old = wanted;
        label_stat *ls2;
        uint32_t nl2;
        st = label_stats(c, &ls2, &nl2, err);
        if (st == BP_OK) {
            /* label_stats lists labels in first-seen order, unchanged by probing */
            ls = ls2;
            nl = nl2;
            for (uint32_t j = 0; j < nl; j++) {
                if (!old[j]) continue;
                for (int s = 0; s < SYNTH_SPLITS && st == BP_OK; s++) {
                    if (!need_split[s]) continue;
                    uint32_t have = ls[j].recordings[s];
                    if (cfg->n_classes && have == 0)
                        st = bp_error_set(err, BP_ERR_INVALID,
                                          "%s: corpus.classes: class '%s' has no usable %s recording in %s (%u file%s "
                                          "skipped as unusable; see the skip list)",
                                          cfg->classes_where, ls[j].name, synth_split_name(s), c->path, c->n_skipped,
                                          c->n_skipped == 1 ? "" : "s");
                    if (!cfg->n_classes && have < (uint32_t)cfg->min_recordings) old[j] = 0;
                }
            }
        }
    }
    uint32_t n = 0;
    for (uint32_t j = 0; st == BP_OK && j < nl; j++) n += wanted[j] != 0;
    if (st == BP_OK && n == 0)
        st = bp_error_set(
            err, BP_ERR_INVALID,
            "%s: no class has %d or more usable recordings in every split with scenes (%u rows, %u skipped)", c->path,
            cfg->min_recordings, c->n_rows, c->n_skipped);
    if (st == BP_OK && n < 2 && (cfg->counts[0][SYNTH_TWO] || cfg->counts[1][SYNTH_TWO])) {
        const char *only = "?";
        for (uint32_t j = 0; j < nl; j++)
            if (wanted[j]) only = ls[j].name;
        st = bp_error_set(err, BP_ERR_INVALID, "%s: two-source scenes need at least two classes; only '%s' qualifies",
                          c->path, only);
    }
    if (st == BP_OK) {
        label_stat *sel = malloc(n * sizeof *sel);
        c->classes = calloc(n, sizeof *c->classes);
        c->class_lower = calloc(n, sizeof *c->class_lower);
        c->class_mids = calloc(n, sizeof *c->class_mids);
        if (!sel || !c->classes || !c->class_lower || !c->class_mids) {
            free(sel);
            st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        } else {
            uint32_t m = 0;
            for (uint32_t j = 0; j < nl; j++)
                if (wanted[j]) sel[m++] = ls[j];
            qsort(sel, n, sizeof *sel, cmp_class);
            for (uint32_t k = 0; k < n; k++) {
                c->classes[k] = bp_strdup(sel[k].name);
                c->class_lower[k] = lower_dup(sel[k].name);
                c->class_mids[k] = bp_strdup(sel[k].mid);
                c->n_classes = k + 1;
                if (!c->classes[k] || !c->class_lower[k] || !c->class_mids[k]) {
                    st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                    break;
                }
            }
            free(sel);
        }
    }
    free(wanted);
    free(ls);
    if (st != BP_OK) return st;
    for (uint32_t i = 0; i < c->n_rows; i++) {
        synth_row *r = &c->rows[i];
        for (uint32_t k = 0; k < r->n_labels; k++) {
            r->class_ids[k] = -1;
            for (uint32_t j = 0; j < c->n_classes; j++)
                if (strcmp(r->labels[k], c->classes[j]) == 0) r->class_ids[k] = (int32_t)j;
        }
    }
    return build_pools(c, err);
}

bp_status synth_corpus_load(const synth_cfg *cfg, synth_corpus *c, bp_error *err) {
    memset(c, 0, sizeof *c);
    c->path = bp_strdup(cfg->corpus_file);
    c->root = bp_dirname(cfg->corpus_file);
    if (!c->path || !c->root) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    char *text;
    size_t len;
    bp_status st = read_all(c->path, &text, &len, err);
    if (st != BP_OK) {
        synth_corpus_free(c);
        return st;
    }
    c->hash = fnv1a(text, len);
    st = parse_tsv(c, text, err);
    free(text);
    if (st == BP_OK) st = merge_rows(c, err);
    if (st == BP_OK) st = choose_classes(c, cfg, err);
    if (st != BP_OK) synth_corpus_free(c);
    return st;
}

/* ---------------------------------------------------------------- rows -- */

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void synth_row_answer(const synth_corpus *c, const synth_row *r, char *buf, size_t cap) {
    const char *names[64];
    uint32_t n = 0;
    for (uint32_t k = 0; k < r->n_labels && n < 64; k++)
        if (r->class_ids[k] >= 0) names[n++] = c->class_lower[r->class_ids[k]];
    qsort(names, n, sizeof *names, cmp_cstr);
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        if (i && strcmp(names[i], names[i - 1]) == 0) continue;
        len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%s", len ? "; " : "", names[i]);
    }
}

int synth_rows_overlap(const synth_row *a, const synth_row *b) {
    for (uint32_t i = 0; i < a->n_labels; i++)
        for (uint32_t j = 0; j < b->n_labels; j++)
            if (a->class_ids[i] >= 0 && a->class_ids[i] == b->class_ids[j]) return 1;
    return 0;
}
