/* Pipelines end to end with the test plugins (tfeat → tpool on the cpu
 * backend): outputs, resolved configs, spec negotiation errors naming both
 * stages, bad input files, NaN outputs, atomic writes, skipping, resuming,
 * starting from saved tensors, .npy output. argv[1] = good test plugin dir. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batpipe/audio.h"
#include "batpipe/pipeline.h"
#include "batpipe/safetensors.h"
#include "bp_test.h"

static char dir[128];
static bp_registry *reg;

static char *p(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_wav(const char *name, int64_t ch, int64_t n, double rate, double amp) {
    int64_t shape[2] = {ch, n};
    bp_tensor *t;
    bp_error err = BP_ERROR_INIT;
    if (bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, &err) != BP_OK) abort();
    float *x = t->data;
    for (int64_t c = 0; c < ch; c++)
        for (int64_t i = 0; i < n; i++) x[c * n + i] = (float)(amp * (c + 1) * sin(2 * M_PI * 500.0 * (double)i / rate));
    if (bp_audio_write(p(name), t, rate, "FLOAT", &err) != BP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    bp_tensor_free(t);
}

static void write_text(const char *name, const char *text) {
    FILE *f = fopen(p(name), "w");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Number of entries in a directory whose name starts with '.' (temp files). */
static int hidden_files(const char *d) {
    DIR *dd = opendir(d);
    int n = 0;
    if (!dd) return 0;
    struct dirent *e;
    while ((e = readdir(dd)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(dd);
    return n;
}

static bp_status run_text(const char *text, const char *const *ov, uint32_t n, bp_pipeline **out, bp_error *err) {
    bp_pipeline *pl;
    bp_status st = bp_pipeline_load_text(reg, text, "test.cfg", dir, ov, n, &pl, err);
    if (st != BP_OK) return st;
    st = bp_pipeline_run(pl, NULL, NULL, err);
    if (out) *out = pl;
    else bp_pipeline_free(pl);
    return st;
}

static const char *base_cfg =
    "input = { type = \"audio\"; files = [\"a.wav\", \"b.wav\"]; };\n"
    "frontend = { type = \"tfeat\"; };\n"
    "output = { dir = \"out\"; save = [\"features\", \"energy\"]; };\n";

static void test_basic(void) {
    bp_error err = BP_ERROR_INIT;
    bp_pipeline *pl = NULL;
    CHECK_OK(run_text(base_cfg, NULL, 0, &pl, &err), &err);
    if (!pl) return;
    const bp_run_summary *s = bp_pipeline_summary(pl);
    CHECK(s->items_done == 2 && s->items_total == 2 && s->n_tensors == 2);
    CHECKF(strstr(bp_pipeline_plan(pl), "frontend  tfeat 0.1.0") != NULL, "plan:\n%s", bp_pipeline_plan(pl));
    bp_pipeline_free(pl);
    /* a.wav is 1 s at 16 kHz: 100 frames; b.wav is 1 s at 22.05 kHz, resampled to 16 kHz */
    bp_st_file *f;
    CHECK_OK(bp_st_open(p("out/a.safetensors"), &f, &err), &err);
    if (f) {
        bp_tensor t;
        CHECK_OK(bp_st_get(f, "features", &t, &err), &err);
        CHECK(t.ndim == 3 && t.shape[0] == 4 && t.shape[1] == 100 && t.shape[2] == 8);
        /* energy of a 0.25-amplitude sine is 0.03125 (channel 0), 4x that on channel 1 */
        double m0 = 0, m1 = 0;
        for (int i = 0; i < 800; i++) {
            m0 += ((float *)t.data)[i];
            m1 += ((float *)t.data)[800 + i];
        }
        CHECK_NEAR(m0 / 800, 0.03125, 2e-3);
        CHECK_NEAR(m1 / 800, 0.125, 8e-3);
        CHECK_OK(bp_st_get(f, "energy", &t, &err), &err);
        CHECK(t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 100);
        CHECK(bp_st_metadata(f, "source") && strstr(bp_st_metadata(f, "source"), "a.wav"));
        CHECK(bp_st_metadata(f, "sample_rate") && strcmp(bp_st_metadata(f, "sample_rate"), "16000") == 0);
        bp_st_close(f);
    }
    CHECK_OK(bp_st_open(p("out/b.safetensors"), &f, &err), &err);
    if (f) {
        bp_tensor t;
        CHECK_OK(bp_st_get(f, "features", &t, &err), &err);
        CHECK(t.shape[1] == 100);
        bp_st_close(f);
    }
    /* the resolved config is explicit and runs again */
    CHECK(exists(p("out/resolved.cfg")));
    FILE *rf = fopen(p("out/resolved.cfg"), "r");
    char buf[8192] = {0};
    if (rf) {
        size_t n = fread(buf, 1, sizeof buf - 1, rf);
        buf[n] = 0;
        fclose(rf);
    }
    CHECKF(strstr(buf, "channels_out = 4") && strstr(buf, "plugin = \"tfeat\"") && strstr(buf, "version = \"0.1.0\""),
           "resolved:\n%s", buf);
    bp_pipeline *again;
    char ovbuf[600];
    snprintf(ovbuf, sizeof ovbuf, "output.dir=\"%s\"", p("out2"));
    const char *ov[] = {ovbuf};
    CHECK_OK(bp_pipeline_load(reg, p("out/resolved.cfg"), ov, 1, &again, &err), &err);
    if (again) {
        CHECK_OK(bp_pipeline_run(again, NULL, NULL, &err), &err);
        bp_pipeline_free(again);
    }
    CHECK(exists(p("out2/a.safetensors")) && exists(p("out2/b.safetensors")));
}

static void test_encoder_and_overrides(void) {
    bp_error err = BP_ERROR_INIT;
    const char *cfg = "input = { type = \"audio\"; files = \"a.wav\"; };\n"
                      "frontend = { type = \"tfeat\"; bins = 4; };\n"
                      "encoder = { type = \"tpool\"; };\n"
                      "output = { dir = \"enc\"; save = [\"tokens\", \"features\"]; };\n";
    CHECK_OK(run_text(cfg, NULL, 0, NULL, &err), &err);
    bp_st_file *f;
    CHECK_OK(bp_st_open(p("enc/a.safetensors"), &f, &err), &err);
    if (f) {
        bp_tensor tok, feat;
        CHECK_OK(bp_st_get(f, "tokens", &tok, &err), &err);
        CHECK_OK(bp_st_get(f, "features", &feat, &err), &err);
        CHECK(tok.ndim == 2 && tok.shape[0] == 1 && tok.shape[1] == 4 && feat.shape[2] == 4);
        double m = 0;
        int64_t per = feat.shape[1] * feat.shape[2];
        for (int64_t i = 0; i < per; i++) m += ((float *)feat.data)[per + i];
        CHECK_NEAR(((float *)tok.data)[1], m / (double)per, 1e-5);
        bp_st_close(f);
    }
    /* overrides reach any depth; a stage mismatch names both stages and the field */
    const char *ov[] = {"frontend.channels_out=3"};
    bp_pipeline *pl;
    CHECK(bp_pipeline_load_text(reg, cfg, "test.cfg", dir, ov, 1, &pl, &err) == BP_ERR_SPEC);
    CHECKF(strstr(err.msg, "encoder (tpool) cannot take what frontend (tfeat) produces") &&
               strstr(err.msg, "channels: have 3, want 4"),
           "msg %s", err.msg);
}

static void test_config_errors(void) {
    bp_error err = BP_ERROR_INIT;
    bp_pipeline *pl;
    struct {
        const char *cfg;
        bp_status st;
        const char *expect;
    } cases[] = {
        {"input = { type = \"audio\"; files = \"a.wav\"; };\nfrontend = { type = \"melipdd\"; };\n", BP_ERR_NOT_FOUND,
         "test.cfg:2: frontend: unknown frontend plugin 'melipdd'; installed: tfeat"},
        {"input = { type = \"audio\"; files = \"a.wav\"; };\nfrontend = { type = \"tfeat\";\n  bin = 4; };\n",
         BP_ERR_INVALID, "test.cfg:3: frontend (tfeat): unknown parameter 'bin' (did you mean 'bins'?)"},
        {"input = { type = \"audio\"; files = \"a.wav\"; };\nfrontend = { type = \"tfeat\"; bins = \"4\"; };\n",
         BP_ERR_INVALID, "test.cfg:2: frontend (tfeat): bins must be an integer, got a string"},
        {"input = { type = \"audio\"; files = \"a.wav\"; };\nfrontnd = { type = \"tfeat\"; };\n", BP_ERR_INVALID,
         "test.cfg:2: pipeline: unknown key 'frontnd' (did you mean 'frontend'?)"},
        {"input = { type = \"audio\"; files = \"nope.wav\"; };\n", BP_ERR_NOT_FOUND, "nope.wav"},
        {"input = { type = \"audio\"; files = \"mono.wav\"; };\nfrontend = { type = \"tfeat\"; };\n", BP_ERR_SPEC,
         "mono.wav: 1 channel, but frontend (tfeat) needs 2"},
        {"input = { type = \"audio\"; files = [\"a.wav\", \"junk.wav\"]; };\nfrontend = { type = \"tfeat\"; };\n"
         "output = { dir = \"never\"; };\n",
         BP_ERR_FORMAT, "junk.wav: not a readable audio file"},
        {"input = { type = \"audio\"; files = \"a.wav\"; };\nfrontend = { type = \"tfeat\"; };\n"
         "output = { dir = \"x\"; save = [\"featurez\"]; };\n",
         BP_ERR_INVALID, "no stage produces 'featurez'; available: audio, features, energy"},
        {"input = { type = \"audio\"; files = \"a.wav\"; };\nthreads = -1;\n", BP_ERR_INVALID, "test.cfg:2: threads"},
        {"input = { type = \"audio\";\n files = ; };\n", BP_ERR_INVALID, "test.cfg:2: syntax error"},
        {"input = { type = \"audio\"; files = [\"a.wav\", \"sub/a.wav\"]; };\n", BP_ERR_INVALID,
         "would both be saved as 'a'"},
        {"input = { type = \"audio\"; files = \"*.nothing\"; };\n", BP_ERR_NOT_FOUND, "matches no file"},
        {"input = { type = \"video\"; files = \"a.wav\"; };\n", BP_ERR_INVALID, "input.type = \"video\" is not one of"},
        {"frontend = { type = \"tfeat\"; };\n", BP_ERR_INVALID, "missing 'input' group"},
        {"input = { type = \"audio\"; files = \"a.wav\"; };\nbackend = { type = \"quantum\"; };\n", BP_ERR_NOT_FOUND,
         "unknown backend 'quantum'; usable here: cpu"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bp_status st = bp_pipeline_load_text(reg, cases[i].cfg, "test.cfg", dir, NULL, 0, &pl, &err);
        CHECKF(st == cases[i].st, "case %zu: status %d (%s), want %d", i, st, err.msg, cases[i].st);
        CHECKF(strstr(err.msg, cases[i].expect) != NULL, "case %zu: '%s' lacks '%s'", i, err.msg, cases[i].expect);
        if (st == BP_OK) bp_pipeline_free(pl);
    }
    CHECK(!exists(p("never"))); /* nothing written when loading fails */
}

static void test_nan_and_skips(void) {
    bp_error err = BP_ERROR_INIT;
    /* the second item produces a NaN: the run stops there, naming the file, stage and tensor */
    char d_nan[600], d_skip[600];
    snprintf(d_nan, sizeof d_nan, "output.dir=\"%s\"", p("nan"));
    snprintf(d_skip, sizeof d_skip, "output.dir=\"%s\"", p("skip"));
    const char *ov[] = {"frontend.nan_at_call=1", d_nan};
    bp_pipeline *pl = NULL;
    CHECK(run_text(base_cfg, ov, 2, &pl, &err) == BP_ERR_NUMERIC);
    CHECKF(strstr(err.msg, "b.wav") && strstr(err.msg, "frontend (tfeat): 'features'") && strstr(err.msg, "NaN"),
           "msg %s", err.msg);
    if (pl) {
        CHECK(bp_pipeline_summary(pl)->items_done == 1);
        bp_pipeline_free(pl);
    }
    CHECK(exists(p("nan/a.safetensors")) && !exists(p("nan/b.safetensors")));
    CHECK(hidden_files(p("nan")) == 0);
    /* on_error = "skip" goes on and reports */
    const char *ov2[] = {"frontend.nan_at_call=0", d_skip, "input.on_error=skip"};
    CHECK_OK(run_text(base_cfg, ov2, 3, &pl, &err), &err);
    if (pl) {
        CHECK(bp_pipeline_summary(pl)->items_failed == 1 && bp_pipeline_summary(pl)->items_done == 1);
        CHECK(strstr(bp_pipeline_summary(pl)->first_failure, "a.wav") != NULL);
        bp_pipeline_free(pl);
    }
    /* skip_existing resumes: the finished item is not recomputed */
    const char *ov3[] = {d_nan, "output.skip_existing=true"};
    CHECK_OK(run_text(base_cfg, ov3, 2, &pl, &err), &err);
    if (pl) {
        CHECK(bp_pipeline_summary(pl)->items_skipped == 1 && bp_pipeline_summary(pl)->items_done == 1);
        bp_pipeline_free(pl);
    }
    CHECK(exists(p("nan/b.safetensors")));
}

static void test_tensors_input_and_npy(void) {
    bp_error err = BP_ERROR_INIT;
    /* save the resampled audio as well, then start a second pipeline from the saved tensors */
    char d_saved[600];
    snprintf(d_saved, sizeof d_saved, "output.dir=\"%s\"", p("saved"));
    const char *ov[] = {d_saved, "output.save=[\"audio\", \"features\"]"};
    CHECK_OK(run_text(base_cfg, ov, 2, NULL, &err), &err);
    const char *cfg2 = "input = { type = \"tensors\"; files = \"saved/*.safetensors\"; };\n"
                       "frontend = { type = \"tfeat\"; };\n"
                       "output = { dir = \"fromsaved\"; format = \"npy\"; };\n";
    CHECK_OK(run_text(cfg2, NULL, 0, NULL, &err), &err);
    bp_st_file *f;
    CHECK_OK(bp_st_open(p("saved/b.safetensors"), &f, &err), &err);
    FILE *n = fopen(p("fromsaved/b.features.npy"), "rb");
    CHECK(n != NULL);
    if (f && n) {
        unsigned char head[10];
        CHECK(fread(head, 1, 10, n) == 10 && memcmp(head, "\x93NUMPY\x01\x00", 8) == 0);
        size_t hl = head[8] | (size_t)head[9] << 8;
        char h[512] = {0};
        CHECK(hl < sizeof h && fread(h, 1, hl, n) == hl);
        CHECKF(strstr(h, "'descr': '<f4'") && strstr(h, "'shape': (4, 100, 8,)"), "npy header %s", h);
        CHECK((10 + hl) % 64 == 0);
        bp_tensor t;
        CHECK_OK(bp_st_get(f, "features", &t, &err), &err);
        float *v = malloc(bp_tensor_nbytes(&t));
        CHECK(fread(v, 1, bp_tensor_nbytes(&t), n) == bp_tensor_nbytes(&t));
        CHECK(memcmp(v, t.data, bp_tensor_nbytes(&t)) == 0); /* identical to the audio-file run */
        free(v);
    }
    if (n) fclose(n);
    if (f) bp_st_close(f);
}

static void test_include(void) {
    bp_error err = BP_ERROR_INIT;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/conf/common'", dir);
    CHECK(system(cmd) == 0);
    write_text("conf/common/fe.cfg", "frontend = { type = \"tfeat\"; bins = 2; };\n");
    write_text("conf/exp.cfg", "@include \"common/fe.cfg\"\n"
                               "input = { type = \"audio\"; files = \"../a.wav\"; };\n"
                               "output = { dir = \"../inc\"; };\n");
    bp_pipeline *pl;
    CHECK_OK(bp_pipeline_load(reg, p("conf/exp.cfg"), NULL, 0, &pl, &err), &err);
    if (pl) {
        CHECK_OK(bp_pipeline_run(pl, NULL, NULL, &err), &err);
        bp_pipeline_free(pl);
    }
    bp_st_file *f;
    CHECK_OK(bp_st_open(p("inc/a.safetensors"), &f, &err), &err);
    if (f) {
        bp_tensor t;
        CHECK_OK(bp_st_get(f, "features", &t, &err), &err);
        CHECK(t.shape[2] == 2);
        bp_st_close(f);
    }
    /* an error inside the included file names that file */
    write_text("conf/common/fe.cfg", "frontend = { type = \"tfeat\";\n bins = 0; };\n");
    CHECK(bp_pipeline_load(reg, p("conf/exp.cfg"), NULL, 0, &pl, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "common/fe.cfg:2") && strstr(err.msg, "bins = 0 is outside the range [1, 64]"), "msg %s",
           err.msg);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    snprintf(dir, sizeof dir, "/tmp/bp_test_pipeline_%d", (int)getpid());
    mkdir(dir, 0755);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    mkdir(sub, 0755);
    write_wav("a.wav", 2, 16000, 16000, 0.25);
    write_wav("b.wav", 2, 22050, 22050, 0.25);
    write_wav("sub/a.wav", 2, 16000, 16000, 0.25);
    write_wav("mono.wav", 1, 16000, 16000, 0.25);
    write_text("junk.wav", "this is not audio");
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    bp_registry_scan_dir(reg, argv[1], &err);
    const char *pp = getenv("BATPIPE_PLUGIN_PATH"); /* the cpu backend */
    if (pp) bp_registry_scan_dir(reg, pp, &err);
    if (!bp_registry_find(reg, BP_KIND_BACKEND, "cpu")) TEST_SKIP("the cpu backend plugin is not built");
    test_basic();
    test_encoder_and_overrides();
    test_config_errors();
    test_nan_and_skips();
    test_tensors_input_and_npy();
    test_include();
    bp_registry_free(reg);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return TEST_RESULT();
}
