/* Helpers shared by the generator tests: a small generated source corpus
 * (synthetic tones, chirps and noise written with bp_audio_write, plus a
 * corrupt and a truncated file) and file-tree comparison. */
#ifndef SYNTH_TEST_UTIL_H
#define SYNTH_TEST_UTIL_H

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batpipe/audio.h"
#include "batpipe/tensor.h"

static inline char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = '\0';
    if (len) *len = (size_t)n;
    return b;
}

static inline int tu_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static inline int tu_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Deterministic test signals: kind 0 tone with vibrato, 1 noise bursts,
 * 2 chirp, 3 click train; `seed` varies them. */
static inline int tu_write_clip(const char *path, int kind, double seconds, double rate, int channels, unsigned seed,
                                const char *subtype) {
    int64_t n = (int64_t)(seconds * rate), shape[2] = {channels, n};
    bp_tensor *t;
    bp_error err = BP_ERROR_INIT;
    if (bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, &err) != BP_OK) return -1;
    float *x = t->data;
    uint32_t s = 2463534242u ^ seed * 2654435761u;
    double f0 = 200.0 + 137.0 * (seed % 7);
    for (int64_t i = 0; i < n; i++) {
        double tt = (double)i / rate, v;
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        double noise = (double)(s & 0xffff) / 32768.0 - 1.0;
        switch (kind) {
        case 0: v = 0.3 * sin(2 * M_PI * f0 * tt + 3 * sin(2 * M_PI * 5 * tt)); break;
        case 1: v = 0.4 * noise * (fmod(tt, 0.25) < 0.1 ? 1.0 : 0.05); break;
        case 2: v = 0.3 * sin(2 * M_PI * (f0 + 800 * tt) * tt); break;
        default: v = (i % (int64_t)(rate / 8) < 40) ? 0.8 * noise : 0.0; break;
        }
        for (int c = 0; c < channels; c++) x[c * n + i] = (float)(v * (c ? 0.5 : 1.0));
    }
    bp_status st = bp_audio_write(path, t, rate, subtype, &err);
    bp_tensor_free(t);
    if (st != BP_OK) fprintf(stderr, "tu_write_clip: %s\n", err.msg);
    return st == BP_OK ? 0 : -1;
}

/* The test corpus under dir/corpus: classes Bell, Dog, Speech, Whistle (3
 * train + 2 eval recordings each, lengths 0.3–2.5 s, one at 16 kHz, one
 * stereo, one long), "Gong" (train: one good and one truncated FLAC that
 * probes fine but fails to decode; eval: one good), "Cat" (train only:
 * dropped when classes are chosen automatically), and a corrupt file
 * labelled Dog (skipped at load). */
static inline int tu_make_corpus(const char *dir) {
    char p[600];
    snprintf(p, sizeof p, "%s/corpus", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/corpus/clips", dir);
    mkdir(p, 0755);
    static const char *const classes[] = {"Bell", "Dog", "Speech", "Whistle"};
    static const char *const mids[] = {"/m/0395lw", "/m/0bt9lr", "/m/09x0r", "/m/07pggtn"};
    char tsv[16384];
    size_t len = (size_t)snprintf(
        tsv, sizeof tsv, "file\tlabel\tmid\tpackage\tlicense\tduration_s\trms_dbfs\trecording\tsplit\tsource_path\n");
    unsigned seed = 1;
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 5; r++, seed++) {
            const char *split = r < 3 ? "train" : "eval";
            double secs = 0.3 + 0.45 * r + 0.1 * c;
            double rate = (c == 1 && r == 0) ? 16000 : 32000;
            int ch = (c == 2 && r == 1) ? 2 : 1;
            if (c == 3 && r == 2) secs = 2.5; /* longer than a 1 s test window */
            char name[64];
            snprintf(name, sizeof name, "clips/%s_%d.%s", classes[c], r, r == 4 ? "wav" : "flac");
            snprintf(p, sizeof p, "%s/corpus/%s", dir, name);
            if (tu_write_clip(p, c, secs, rate, ch, seed, "PCM_16") != 0) return -1;
            len += (size_t)snprintf(tsv + len, sizeof tsv - len,
                                    "%s\t%s\t%s\ttestpkg\tCC0-1.0\t%.3f\t-20.0\trec-%s-%d\t%s\tgen/%s\n", name,
                                    classes[c], mids[c], secs, classes[c], r, split, name);
        }
    /* Gong: a good and a truncated train file, a good eval file */
    snprintf(p, sizeof p, "%s/corpus/clips/gong_good.flac", dir);
    if (tu_write_clip(p, 2, 0.8, 32000, 1, 91, "PCM_16") != 0) return -1;
    snprintf(p, sizeof p, "%s/corpus/clips/gong_eval.flac", dir);
    if (tu_write_clip(p, 2, 0.7, 32000, 1, 92, "PCM_16") != 0) return -1;
    snprintf(p, sizeof p, "%s/corpus/clips/gong_truncated.flac", dir);
    if (tu_write_clip(p, 1, 3.0, 32000, 1, 93, "PCM_16") != 0) return -1;
    if (truncate(p, 9000) != 0) return -1;
    len += (size_t)snprintf(
        tsv + len, sizeof tsv - len,
        "clips/gong_good.flac\tGong\t/m/0mbct\ttestpkg\tCC0-1.0\t0.8\t-20\trec-gong-1\ttrain\tg1\n"
        "clips/gong_truncated.flac\tGong\t/m/0mbct\ttestpkg\tCC0-1.0\t3.0\t-20\trec-gong-2\ttrain\tg2\n"
        "clips/gong_eval.flac\tGong\t/m/0mbct\ttestpkg\tCC0-1.0\t0.7\t-20\trec-gong-3\teval\tg3\n");
    /* Cat: train only */
    snprintf(p, sizeof p, "%s/corpus/clips/cat.flac", dir);
    if (tu_write_clip(p, 0, 0.5, 32000, 1, 94, "PCM_16") != 0) return -1;
    len += (size_t)snprintf(tsv + len, sizeof tsv - len,
                            "clips/cat.flac\tCat\t/m/01yrx\ttestpkg\tCC0-1.0\t0.5\t-20\trec-cat\ttrain\tc1\n");
    /* a corrupt file */
    snprintf(p, sizeof p, "%s/corpus/clips/corrupt.flac", dir);
    if (tu_write_text(p, "fLaC this is not really a FLAC stream at all, just text") != 0) return -1;
    len += (size_t)snprintf(tsv + len, sizeof tsv - len,
                            "clips/corrupt.flac\tDog\t/m/0bt9lr\ttestpkg\tCC0-1.0\t1.0\t-20\trec-corrupt\ttrain\tx\n");
    snprintf(p, sizeof p, "%s/corpus/corpus.tsv", dir);
    return tu_write_text(p, tsv);
}

/* Relative paths of the regular files under dir (sorted), one per line. */
static inline void tu_list_files(const char *dir, const char *rel, char *out, size_t cap, size_t *len) {
    char p[1200];
    snprintf(p, sizeof p, "%s%s%s", dir, *rel ? "/" : "", rel);
    struct dirent **names;
    int n = scandir(p, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..")) {
            char r[1200], full[1400];
            snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", nm);
            snprintf(full, sizeof full, "%s/%s", dir, r);
            struct stat sb;
            if (stat(full, &sb) == 0 && S_ISDIR(sb.st_mode))
                tu_list_files(dir, r, out, cap, len);
            else if (*len < cap)
                *len += (size_t)snprintf(out + *len, cap - *len, "%s\n", r);
        }
        free(names[i]);
    }
    if (n >= 0) free(names);
}

/* 0 when both trees hold the same files with the same bytes; otherwise
 * prints the first difference. */
static inline int tu_compare_trees(const char *a, const char *b) {
    static char la[1 << 18], lb[1 << 18];
    size_t na = 0, nb = 0;
    la[0] = lb[0] = '\0';
    tu_list_files(a, "", la, sizeof la, &na);
    tu_list_files(b, "", lb, sizeof lb, &nb);
    if (strcmp(la, lb) != 0) {
        fprintf(stderr, "file lists differ:\n--- %s\n%s--- %s\n%s", a, la, b, lb);
        return 1;
    }
    for (char *line = la, *next; *line; line = next) {
        next = strchr(line, '\n');
        *next++ = '\0';
        char pa[1400], pb[1400];
        snprintf(pa, sizeof pa, "%s/%s", a, line);
        snprintf(pb, sizeof pb, "%s/%s", b, line);
        size_t sa = 0, sb = 0;
        char *da = tu_read_file(pa, &sa), *db = tu_read_file(pb, &sb);
        int same = da && db && sa == sb && memcmp(da, db, sa) == 0;
        free(da);
        free(db);
        if (!same) {
            fprintf(stderr, "files differ: %s vs %s\n", pa, pb);
            return 1;
        }
    }
    return 0;
}

/* Number of files under dir (recursively) whose name starts with '.'. */
static inline int tu_hidden_files(const char *dir) {
    static char l[1 << 18];
    size_t n = 0;
    l[0] = '\0';
    tu_list_files(dir, "", l, sizeof l, &n);
    int k = 0;
    for (char *p = l; *p; p++)
        if (*p == '.' && (p == l || p[-1] == '/' || p[-1] == '\n')) k++;
    return k;
}

#endif
