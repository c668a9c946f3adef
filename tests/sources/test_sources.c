/* Tests of `batpipe sources` internals (core/cli/sources_*.c): md5, clip
 * names, conversion to 32 kHz mono FLAC PCM 24, the split, the CSV import and
 * the stage list, and a small end-to-end build. Audio is generated here. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batpipe/audio.h"
#include "batpipe/tensor.h"
#include "bp_test.h"
#include "sources.h"

static char g_tmp[256];

static char *tmp_path(const char *name) { return sources_strdupf("%s/%s", g_tmp, name); }

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* A [channels, n] clip: channel c is a sine of frequency f0·(c+1) and amplitude amp/(c+1)^2. */
static int write_tone(const char *path, double rate, int channels, double seconds, double f0, double amp,
                      const char *subtype) {
    int64_t n = (int64_t)llround(seconds * rate);
    int64_t shape[2] = {channels, n};
    bp_tensor *t;
    bp_error err = BP_ERROR_INIT;
    if (bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, &err) != BP_OK) return -1;
    float *x = t->data;
    for (int c = 0; c < channels; c++)
        for (int64_t i = 0; i < n; i++)
            x[c * n + i] = (float)(amp / ((c + 1) * (c + 1)) * sin(2 * M_PI * f0 * (c + 1) * (double)i / rate));
    bp_status st = bp_audio_write(path, t, rate, subtype, &err);
    bp_tensor_free(t);
    if (st != BP_OK) fprintf(stderr, "write_tone: %s\n", err.msg);
    return st == BP_OK ? 0 : -1;
}

/* ---------------------------------------------------------------- md5 -- */

static void md5_of(const char *s, char hex[33]) {
    sources_md5 m;
    uint8_t d[16];
    sources_md5_init(&m);
    /* feed in odd pieces to exercise the block buffer */
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i += 7) sources_md5_update(&m, s + i, n - i < 7 ? n - i : 7);
    sources_md5_final(&m, d);
    sources_md5_hex(d, hex);
}

static void test_md5(void) {
    static const char *const v[][2] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char hex[33];
        md5_of(v[i][0], hex);
        CHECKF(strcmp(hex, v[i][1]) == 0, "md5(\"%s\") = %s, want %s", v[i][0], hex, v[i][1]);
    }
}

/* ------------------------------------------------------------ naming -- */

static void test_clip_name(void) {
    char *a = sources_clip_name("gcompris-qt-data", "instruments.rcc:gcompris/src/x/accordion.ogg");
    CHECKF(a && strcmp(a, "clips/gcompris-qt-data/instruments.rcc/gcompris/src/x/accordion.flac") == 0, "%s", a);
    char *b = sources_clip_name("hydrogen-drumkits", "/usr/share/hydrogen/data/drumkits/Gimme A Hand 1.0/Maraca.wav");
    CHECKF(b && strcmp(b, "clips/hydrogen-drumkits/usr/share/hydrogen/data/drumkits/Gimme_A_Hand_1.0/Maraca.flac") == 0,
           "%s", b);
    char *c = sources_clip_name("p", "../../etc/./x#y");
    CHECKF(c && strcmp(c, "clips/p/_/_/etc/_/x_y.flac") == 0, "%s", c);
    char *d = sources_clip_name("p", "dir.d/noext");
    CHECKF(d && strcmp(d, "clips/p/dir.d/noext.flac") == 0, "%s", d);
    free(a);
    free(b);
    free(c);
    free(d);
    const char *norm[][2] = {{"data/sources/build/../pkgs/x.ogg", "data/sources/pkgs/x.ogg"},
                             {"./a/./b/", "a/b"},
                             {"../x/../../y", "../../y"},
                             {"/../a/b/..", "/a"},
                             {".", "."}};
    for (size_t i = 0; i < sizeof norm / sizeof norm[0]; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", norm[i][0]);
        sources_path_normalize(buf);
        CHECKF(strcmp(buf, norm[i][1]) == 0, "normalize(%s) = %s, want %s", norm[i][0], buf, norm[i][1]);
    }
}

/* ----------------------------------------------------------- convert -- */

static void test_convert(void) {
    sources_convert_opts opt = {30.0, 0.05, -70.0};
    char *in = tmp_path("tone44k_stereo.wav"), *out = tmp_path("out/tone.flac");
    CHECK(write_tone(in, 44100, 2, 1.5, 440, 0.5, "PCM_16") == 0);
    sources_clip_stats s;
    int converted = -1;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(sources_convert(in, out, &opt, &s, &converted, &err), &err);
    CHECK(converted == 1);
    bp_audio_info info;
    CHECK_OK(bp_audio_probe(out, &info, &err), &err);
    CHECK(info.file_rate == 32000);
    CHECK(info.channels == 1);
    CHECK(info.file_frames == 48000);
    CHECKF(strstr(info.format, "FLAC") && strstr(info.format, "24"), "format %s", info.format);
    CHECK_NEAR(s.duration_s, 1.5, 1e-9);
    /* channel 0 (amplitude 0.5 sine) → −9.03 dBFS; channel 1 would be −21 dBFS */
    CHECK_NEAR(s.rms_dbfs, 20 * log10(0.5 / sqrt(2)), 0.05);
    CHECK(s.source_rate == 44100 && s.source_channels == 2);
    CHECK(strlen(s.md5) == 32);
    /* resume: an up-to-date output is measured, not converted again */
    sources_clip_stats s2;
    CHECK_OK(sources_convert(in, out, &opt, &s2, &converted, &err), &err);
    CHECK(converted == 0);
    CHECK(strcmp(s.md5, s2.md5) == 0);
    CHECK_NEAR(s2.rms_dbfs, s.rms_dbfs, 1e-9);

    /* identical content from another file (another name, same samples) → same md5 */
    char *in_copy = tmp_path("copy_of_tone.wav"), *out_copy = tmp_path("out/copy.flac");
    CHECK(write_tone(in_copy, 44100, 2, 1.5, 440, 0.5, "PCM_16") == 0);
    sources_clip_stats s3;
    CHECK_OK(sources_convert(in_copy, out_copy, &opt, &s3, &converted, &err), &err);
    CHECK(strcmp(s.md5, s3.md5) == 0);
    /* different content → different md5 */
    char *in_other = tmp_path("other.wav"), *out_other = tmp_path("out/other.flac");
    CHECK(write_tone(in_other, 44100, 1, 1.5, 441, 0.5, "PCM_16") == 0);
    sources_clip_stats s4;
    CHECK_OK(sources_convert(in_other, out_other, &opt, &s4, &converted, &err), &err);
    CHECK(strcmp(s.md5, s4.md5) != 0);

    /* 32 kHz input: no resampling, samples kept (PCM 16 → 24 exact) */
    char *in32 = tmp_path("tone32k.wav"), *out32 = tmp_path("out/tone32k.flac");
    CHECK(write_tone(in32, 32000, 1, 0.5, 1000, 0.25, "PCM_16") == 0);
    sources_clip_stats s5;
    CHECK_OK(sources_convert(in32, out32, &opt, &s5, &converted, &err), &err);
    bp_tensor *a = NULL, *b = NULL;
    CHECK_OK(bp_audio_read(in32, 0, 1, 0, &a, NULL, &err), &err);
    CHECK_OK(bp_audio_read(out32, 0, 1, 0, &b, NULL, &err), &err);
    if (a && b && a->shape[1] == b->shape[1]) {
        double maxd = 0;
        for (int64_t i = 0; i < a->shape[1]; i++) {
            double d = fabs((double)((float *)a->data)[i] - ((float *)b->data)[i]);
            if (d > maxd) maxd = d;
        }
        CHECKF(maxd < 1.0 / 8388608 * 2, "32 kHz input changed by %g", maxd);
    } else {
        CHECK(!"32 kHz clip has another length");
    }
    bp_tensor_free(a);
    bp_tensor_free(b);

    /* max_seconds cuts the start of a long recording */
    char *in_long = tmp_path("long48k.wav"), *out_long = tmp_path("out/long.flac");
    CHECK(write_tone(in_long, 48000, 1, 12.0, 300, 0.3, "PCM_16") == 0);
    sources_convert_opts cut = {10.0, 0.05, -70.0};
    sources_clip_stats s6;
    CHECK_OK(sources_convert(in_long, out_long, &cut, &s6, &converted, &err), &err);
    CHECK_NEAR(s6.duration_s, 10.0, 1e-9);

    /* a full-scale square wave overshoots when resampled: it is attenuated, never clipped */
    char *in_sq = tmp_path("square.wav"), *out_sq = tmp_path("out/square.flac");
    {
        int64_t n = 44100, shape[2] = {1, n};
        bp_tensor *t;
        CHECK_OK(bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, &err), &err);
        for (int64_t i = 0; i < n; i++) ((float *)t->data)[i] = (i / 50) % 2 ? 1.0f : -1.0f;
        CHECK_OK(bp_audio_write(in_sq, t, 44100, "FLOAT", &err), &err);
        bp_tensor_free(t);
    }
    sources_clip_stats s7;
    CHECK_OK(sources_convert(in_sq, out_sq, &opt, &s7, &converted, &err), &err);
    CHECKF(s7.gain_db < 0, "gain %g dB", s7.gain_db);
    CHECKF(s7.peak <= 0.999, "stored peak %g", s7.peak);
    CHECKF(s7.peak > 0.99, "stored peak %g", s7.peak);

    /* a stereo file whose channel 0 is all zeros: channel 1 is kept */
    char *in_r = tmp_path("right_only.wav"), *out_r = tmp_path("out/right_only.flac");
    {
        int64_t n = 22050, shape[2] = {2, n};
        bp_tensor *t;
        CHECK_OK(bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, &err), &err);
        for (int64_t i = 0; i < n; i++) ((float *)t->data)[n + i] = (float)(0.25 * sin(2 * M_PI * 500 * i / 22050.0));
        CHECK_OK(bp_audio_write(in_r, t, 22050, "PCM_16", &err), &err);
        bp_tensor_free(t);
    }
    sources_clip_stats s8;
    CHECK_OK(sources_convert(in_r, out_r, &opt, &s8, &converted, &err), &err);
    CHECK(s8.channel == 1);
    CHECK_NEAR(s8.rms_dbfs, 20 * log10(0.25 / sqrt(2)), 0.05);
    free(in_r);
    free(out_r);

    /* silent and too short are rejected, and nothing is written */
    char *in_sil = tmp_path("silent.wav"), *out_sil = tmp_path("out/silent.flac");
    CHECK(write_tone(in_sil, 32000, 1, 1.0, 440, 0.0, "PCM_16") == 0);
    bp_error_clear(&err);
    CHECK(sources_convert(in_sil, out_sil, &opt, &s7, &converted, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "silent") != NULL, "%s", err.msg);
    CHECK(access(out_sil, F_OK) != 0);
    char *in_short = tmp_path("short.wav"), *out_short = tmp_path("out/short.flac");
    CHECK(write_tone(in_short, 32000, 1, 0.01, 440, 0.5, "PCM_16") == 0);
    bp_error_clear(&err);
    CHECK(sources_convert(in_short, out_short, &opt, &s7, &converted, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "too short") != NULL, "%s", err.msg);

    /* a corrupt file is an error naming it */
    char *in_bad = tmp_path("corrupt.wav"), *out_bad = tmp_path("out/corrupt.flac");
    write_text(in_bad, "RIFF\x10\0\0\0WAVEjunkjunkjunk");
    bp_error_clear(&err);
    CHECK(sources_convert(in_bad, out_bad, &opt, &s7, &converted, &err) != BP_OK);
    CHECKF(strstr(err.msg, "corrupt.wav") != NULL, "%s", err.msg);
    CHECK(access(out_bad, F_OK) != 0);

    char *all[] = {in, out, in_copy, out_copy, in_other, out_other, in32, out32, in_long, out_long,
                   in_sq, out_sq, in_sil, out_sil, in_short, out_short, in_bad, out_bad};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

/* -------------------------------------------------------------- split -- */

static sources_class g_cls[4] = {{"/m/a", "Alpha", ""}, {"/m/b", "Beta", ""}, {"/m/c", "Gamma", ""},
                                 {"/m/d", "Delta", ""}};

typedef struct fixture {
    sources_row rows[256];
    size_t n;
    char files[256][32];
} fixture;

static void add_row(fixture *f, int cls, const char *rec) {
    sources_row *r = &f->rows[f->n];
    memset(r, 0, sizeof *r);
    r->item = f->n;
    r->cls = &g_cls[cls];
    snprintf(r->recording, sizeof r->recording, "%s", rec);
    snprintf(f->files[f->n], sizeof f->files[f->n], "f%03zu_%s", f->n, rec);
    r->file = f->files[f->n];
    r->keep = 1;
    f->n++;
}

static void make_fixture(fixture *f) {
    memset(f, 0, sizeof *f);
    char id[16];
    for (int i = 0; i < 40; i++) { /* Alpha: 40 recordings */
        snprintf(id, sizeof id, "ra%011d", i);
        add_row(f, 0, id);
    }
    for (int i = 0; i < 10; i++) { /* Beta: 10, of which 3 also carry Alpha (multi-label) */
        snprintf(id, sizeof id, i < 3 ? "ra%011d" : "rb%011d", i);
        add_row(f, 1, id);
    }
    for (int i = 0; i < 4; i++) { /* Gamma: 4 → dropped (min 5) */
        snprintf(id, sizeof id, "rc%011d", i);
        add_row(f, 2, id);
    }
    for (int i = 0; i < 6; i++) { /* Delta: 5 distinct, one duplicated content */
        snprintf(id, sizeof id, "rd%011d", i < 5 ? i : 0);
        add_row(f, 3, id);
    }
}

static int split_of(const fixture *f, const char *file) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->rows[i].file, file) == 0) return f->rows[i].keep ? f->rows[i].split : -1;
    return -2;
}

static void test_split(void) {
    fixture *f = calloc(1, sizeof *f), *g = calloc(1, sizeof *g);
    make_fixture(f);
    sources_split_opts opt = {5, 0.2, "test-salt"};
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(sources_split(f->rows, f->n, &opt, &err), &err);
    size_t train[4] = {0}, eval[4] = {0}, dropped[4] = {0};
    for (size_t i = 0; i < f->n; i++) {
        int c = (int)(f->rows[i].cls - g_cls);
        if (!f->rows[i].keep) dropped[c]++;
        else if (f->rows[i].split) eval[c]++;
        else train[c]++;
    }
    CHECKF(eval[0] == 8 && train[0] == 32, "Alpha %zu/%zu", train[0], eval[0]);
    CHECKF(eval[1] == 2 && train[1] == 8, "Beta %zu/%zu", train[1], eval[1]);
    CHECKF(dropped[2] == 4, "Gamma dropped %zu", dropped[2]);
    CHECKF(dropped[3] == 1 && eval[3] == 1 && train[3] == 4, "Delta %zu/%zu/%zu", train[3], eval[3], dropped[3]);
    /* no recording in both splits */
    for (size_t i = 0; i < f->n; i++)
        for (size_t j = 0; j < f->n; j++)
            if (f->rows[i].keep && f->rows[j].keep && strcmp(f->rows[i].recording, f->rows[j].recording) == 0)
                CHECKF(f->rows[i].split == f->rows[j].split, "recording %s in both splits", f->rows[i].recording);
    /* deterministic and independent of the row order */
    make_fixture(g);
    for (size_t i = g->n - 1; i > 0; i--) { /* a fixed shuffle */
        size_t j = (i * 7919 + 13) % (i + 1);
        sources_row t = g->rows[i];
        g->rows[i] = g->rows[j];
        g->rows[j] = t;
    }
    CHECK_OK(sources_split(g->rows, g->n, &opt, &err), &err);
    for (size_t i = 0; i < f->n; i++)
        CHECKF(split_of(g, f->rows[i].file) == (f->rows[i].keep ? f->rows[i].split : -1), "row %s differs",
               f->rows[i].file);
    /* another salt gives another (still valid) split */
    make_fixture(g);
    sources_split_opts opt2 = {5, 0.2, "another-salt"};
    CHECK_OK(sources_split(g->rows, g->n, &opt2, &err), &err);
    int differ = 0;
    for (size_t i = 0; i < f->n; i++) differ |= g->rows[i].split != f->rows[i].split;
    CHECK(differ);
    CHECK(sources_split_key("s", "r1") != sources_split_key("s", "r2"));
    CHECK(sources_split_key("s", "r1") == sources_split_key("s", "r1"));
    free(f);
    free(g);
}

/* ------------------------------------------------------------- lists --- */

typedef struct logbuf {
    char text[8192];
    int lines;
} logbuf;

static void log_collect(void *user, const char *msg) {
    logbuf *l = user;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s\n", msg);
    l->lines++;
}

static bp_status import_text(const sources_ontology *o, const char *name, const char *csv, sources_list *list,
                             logbuf *lb, bp_error *err) {
    char *p = tmp_path(name);
    write_text(p, csv);
    memset(lb, 0, sizeof *lb);
    bp_status st = sources_import_csv(p, o, "mine", "CC0", list, log_collect, lb, err);
    free(p);
    return st;
}

static void test_import(const sources_ontology *o) {
    char *a = tmp_path("a.wav"), *b = tmp_path("b b.wav");
    write_tone(a, 16000, 1, 0.3, 440, 0.3, "PCM_16");
    write_tone(b, 16000, 1, 0.3, 660, 0.3, "PCM_16");
    sources_list l;
    logbuf lb;
    bp_error err = BP_ERROR_INIT;
    /* good: header, a quoted label with a comma, a mid, a per-row licence, a comment, a blank line */
    CHECK_OK(import_text(o, "good.csv",
                         "file,labels,license\n"
                         "# a comment\n"
                         "a.wav,\"Dog; Bird vocalization, bird call, bird song\",CC-BY-4.0\n"
                         "\n"
                         "\"b b.wav\",/m/09x0r,\n",
                         &l, &lb, &err),
             &err);
    CHECK(l.n == 2);
    if (l.n == 2) {
        CHECK(l.items[0].n_labels == 2);
        CHECK(strcmp(l.items[0].labels[0]->name, "Dog") == 0);
        CHECK(strcmp(l.items[0].labels[1]->name, "Bird vocalization, bird call, bird song") == 0);
        CHECK(strcmp(l.items[0].license, "CC-BY-4.0") == 0);
        CHECK(l.items[0].line == 3);
        CHECK(strcmp(l.items[1].labels[0]->name, "Speech") == 0);
        CHECK(strcmp(l.items[1].license, "CC0") == 0); /* default */
        CHECK(strcmp(l.items[1].package, "mine") == 0);
        CHECK(strcmp(l.items[1].source_path, "b b.wav") == 0);
        CHECK(l.items[1].line == 5);
    }
    sources_list_free(&l);
    /* no header: two columns; case-insensitive names */
    CHECK_OK(import_text(o, "nohead.csv", "a.wav,dog\r\nb b.wav,speech;Dog;dog\r\n", &l, &lb, &err), &err);
    CHECK(l.n == 2 && l.items[1].n_labels == 2);
    sources_list_free(&l);

    struct {
        const char *csv, *expect;
    } bad[] = {
        {"file,labels\na.wav,Dgo\n", "bad1.csv:2: unknown label 'Dgo'"},
        {"file,labels\na.wav,Dgo\n", "did you mean 'Dog'"},
        {"a.wav,Dog\nmissing.wav,Dog\n", "bad3.csv:2: file"},
        {"a.wav,Dog\nb b.wav,Dog,x,y\n", "bad4.csv:2: 4 fields"},
        {"a.wav,Bird vocalization, bird call, bird song\n", "quote labels that contain commas"},
        {"a.wav,\"Dog\n", "bad6.csv:1: unterminated quoted field"},
        {"a.wav,Dog\n./a.wav,Cat\n", "listed twice (first on line 1)"},
        {"a.wav,\n", "bad8.csv:1: no label given"},
        {"file,tags\na.wav,Dog\n", "unknown column 'tags'"},
        {"", "no files listed"},
        {"a.wav,/m/nonexistent\n", "unknown label '/m/nonexistent'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.csv", i + 1);
        bp_error_clear(&err);
        bp_status st = import_text(o, name, bad[i].csv, &l, &lb, &err);
        CHECKF(st == BP_ERR_INVALID, "%s: status %d", name, (int)st);
        CHECKF(strstr(lb.text, bad[i].expect) || strstr(err.msg, bad[i].expect), "%s: want '%s' in: %s | %s", name,
               bad[i].expect, lb.text, err.msg);
        CHECK(l.n == 0 && l.items == NULL);
    }
    /* several problems are all reported, and the error counts them */
    bp_error_clear(&err);
    CHECK(import_text(o, "multi.csv", "a.wav,Dgo\nnope.wav,Dog\nb b.wav,Cat,x,y\n", &l, &lb, &err) ==
          BP_ERR_INVALID);
    CHECKF(lb.lines == 3, "%d lines: %s", lb.lines, lb.text);
    CHECKF(strstr(err.msg, "3 problems") != NULL, "%s", err.msg);
    free(a);
    free(b);
}

static void test_stage(const sources_ontology *o) {
    char *p = tmp_path("stage.tsv");
    sources_list l;
    logbuf lb = {{0}, 0};
    bp_error err = BP_ERROR_INIT;
    write_text(p, "input\tlabel\tpackage\tlicense\tsource_path\tplacement\n"
                  "x/a.ogg\tDog\tpkg\tGPL-2+\t/usr/share/a.ogg\trepeat\n"
                  "/abs/b.ogg\t/m/09x0r\tpkg\t\t/usr/share/b.ogg\t\n");
    CHECK_OK(sources_stage_read(p, "/base", o, &l, log_collect, &lb, &err), &err);
    CHECK(l.n == 2);
    if (l.n == 2) {
        CHECK(strcmp(l.items[0].input, "/base/x/a.ogg") == 0);
        CHECK(strcmp(l.items[1].input, "/abs/b.ogg") == 0);
        CHECK(strcmp(l.items[1].input, "/abs/b.ogg") == 0);
        CHECK(strcmp(l.items[1].license, "unknown") == 0);
        CHECK(strcmp(l.items[0].placement, "repeat") == 0);
        CHECK(l.items[1].line == 3);
    }
    sources_list_free(&l);
    write_text(p, "input\tlabel\tpackage\tsource_path\nx\tDog\tp\ty\n");
    CHECK(sources_stage_read(p, NULL, o, &l, log_collect, &lb, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "no 'license' column") != NULL, "%s", err.msg);
    write_text(p, "input\tlabel\tpackage\tlicense\tsource_path\nx\tNot a class\tp\tl\ty\nz\tDog\tp\n");
    CHECK(sources_stage_read(p, NULL, o, &l, log_collect, &lb, &err) == BP_ERR_INVALID);
    CHECKF(strstr(lb.text, "stage.tsv:2: unknown label 'Not a class'") != NULL, "%s", lb.text);
    CHECKF(strstr(lb.text, "stage.tsv:3: 3 fields") != NULL, "%s", lb.text);
    free(p);
}

/* -------------------------------------------------------------- build -- */

static void test_build(const sources_ontology *o) {
    /* 6 distinct Dog recordings + 1 copy, 2 Cat, 1 corrupt file */
    char csv[4096] = "file,labels\n";
    for (int i = 0; i < 7; i++) {
        char name[32];
        snprintf(name, sizeof name, "dog%d.wav", i);
        char *p = tmp_path(name);
        write_tone(p, i % 2 ? 22050 : 48000, 1 + i % 2, 0.4 + 0.1 * (i % 6), 300 + 50 * (i % 6), 0.4, "PCM_16");
        free(p);
        size_t n = strlen(csv);
        snprintf(csv + n, sizeof csv - n, "%s,Dog\n", name);
    }
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "cat%d.wav", i);
        char *p = tmp_path(name);
        write_tone(p, 44100, 1, 0.5, 700 + 100 * i, 0.4, "PCM_16");
        free(p);
        size_t n = strlen(csv);
        snprintf(csv + n, sizeof csv - n, "%s,Cat\n", name);
    }
    char *bad = tmp_path("broken.wav");
    write_text(bad, "RIFF\x10\0\0\0WAVEjunk");
    free(bad);
    strcat(csv, "broken.wav,Dog\n");
    char *list_path = tmp_path("corpus.csv");
    write_text(list_path, csv);
    sources_list l;
    logbuf lb = {{0}, 0};
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(sources_import_csv(list_path, o, "mine", "CC0", &l, log_collect, &lb, &err), &err);
    char *dir = tmp_path("corpus");
    sources_build_opts bo;
    memset(&bo, 0, sizeof bo);
    bo.dir = dir;
    bo.convert = (sources_convert_opts){30.0, 0.05, -70.0};
    bo.split = (sources_split_opts){5, 0.2, "s"};
    bo.jobs = 2;
    bo.log = log_collect;
    bo.log_user = &lb;
    sources_build_report rep;
    memset(&lb, 0, sizeof lb);
    CHECK_OK(sources_build(&l, &bo, &rep, &err), &err);
    CHECK(rep.inputs == 10);
    CHECK(rep.converted == 9 && rep.skipped == 1);
    CHECKF(strstr(lb.text, "skip broken.wav (mine)") != NULL, "%s", lb.text);
    CHECK(rep.classes == 1 && rep.classes_dropped == 1);
    CHECK(rep.rows == 6); /* the copy of dog0 is dropped as identical content */
    CHECK(rep.recordings == 6);
    CHECK(rep.eval_rows == 1 && rep.train_rows == 5);
    char *cpath = sources_strdupf("%s/corpus.tsv", dir);
    char *text = NULL;
    CHECK_OK(sources_read_text(cpath, &text, NULL, &err), &err);
    if (text) {
        CHECK(strncmp(text, "file\tlabel\tmid\tpackage\tlicense\tduration_s\trms_dbfs\trecording\tsplit\tsource_path",
                      78) == 0);
        int rows = 0;
        char *cur = text;
        for (char *line; (line = sources_next_line(&cur));) {
            if (rows++ == 0) continue;
            char *f[12];
            int nf = 0;
            f[nf++] = line;
            for (char *q = line; *q && nf < 12; q++)
                if (*q == '\t') {
                    *q = '\0';
                    f[nf++] = q + 1;
                }
            CHECK(nf == 11);
            if (nf != 11) continue;
            CHECK(strncmp(f[0], "clips/mine/", 11) == 0);
            CHECK(strcmp(f[1], "Dog") == 0 && strcmp(f[2], "/m/0bt9lr") == 0);
            CHECK(strcmp(f[3], "mine") == 0 && strcmp(f[4], "CC0") == 0);
            CHECK(atof(f[5]) > 0.3 && atof(f[5]) < 1.0);
            CHECK(atof(f[6]) < -5 && atof(f[6]) > -20);
            CHECK(f[7][0] == 'r' && strlen(f[7]) == 13);
            CHECK(strcmp(f[8], "train") == 0 || strcmp(f[8], "eval") == 0);
            CHECK(strcmp(f[10], "repeat") == 0);
            char *clip = sources_strdupf("%s/%s", dir, f[0]);
            bp_audio_info info;
            CHECK_OK(bp_audio_probe(clip, &info, &err), &err);
            CHECK(info.file_rate == 32000 && info.channels == 1);
            free(clip);
        }
        CHECK(rows == 7);
    }
    free(text);
    /* a second build reuses every clip and gives the same corpus */
    char *first = NULL, *second = NULL;
    CHECK_OK(sources_read_text(cpath, &first, NULL, &err), &err);
    CHECK_OK(sources_build(&l, &bo, &rep, &err), &err);
    CHECK(rep.converted == 0 && rep.reused == 9);
    CHECK_OK(sources_read_text(cpath, &second, NULL, &err), &err);
    CHECK(first && second && strcmp(first, second) == 0);
    free(first);
    free(second);
    char *spath = sources_strdupf("%s/skipped.tsv", dir);
    CHECK_OK(sources_read_text(spath, &text, NULL, &err), &err);
    CHECK(text && strstr(text, "broken.wav\tmine\tDog\t") != NULL);
    CHECK(text && strstr(text, "cat0.wav\tmine\tCat\tthe class has too few distinct recordings") != NULL);
    CHECK(text && strstr(text, "identical content") != NULL);
    free(text);
    free(spath);
    free(cpath);
    free(dir);
    free(list_path);
    sources_list_free(&l);
}

int main(void) {
    const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_tmp, sizeof g_tmp, "%s/bp_sources_XXXXXX", tmpdir);
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    const char *src = getenv("BP_SOURCE_DIR");
    char *classes = sources_strdupf("%s/data/curation/audioset_classes.tsv", src ? src : ".");
    sources_ontology o;
    bp_error err = BP_ERROR_INIT;
    if (sources_ontology_load(classes, &o, &err) != BP_OK) {
        fprintf(stderr, "cannot load the class table: %s\n", err.msg);
        free(classes);
        return 1;
    }
    free(classes);
    CHECK(o.n == 632);
    CHECK(sources_ontology_find(&o, "Dog") && strcmp(sources_ontology_find(&o, "/m/0bt9lr")->name, "Dog") == 0);
    CHECK(sources_ontology_find(&o, "speech synthesizer") != NULL);
    CHECK(sources_ontology_find(&o, "Doggo") == NULL);
    test_md5();
    test_clip_name();
    test_convert();
    test_split();
    test_import(&o);
    test_stage(&o);
    test_build(&o);
    sources_ontology_free(&o);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
    return TEST_RESULT();
}
