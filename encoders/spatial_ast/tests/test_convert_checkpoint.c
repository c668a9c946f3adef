/* scripts/convert_checkpoint.py end to end: a PyTorch checkpoint shaped like
 * the official finetuned.pth (tests/make_tiny_checkpoint.py: 'model',
 * 'optimizer', 'epoch', 'args' with an argparse.Namespace) is converted and
 * loaded by the spatial_ast plugin (every name and shape checked; values
 * arrive unchanged); STFT kernels skipped by default and kept with
 * --keep-stft; a DDP 'module.' prefix and float16/float64 tensors are
 * handled; a plain state dict works; a missing, a renamed and a mis-shaped
 * tensor are each reported by name when loading. Skips (77) without
 * /opt/bpbench/bin/python (or $BP_PYTHON) with torch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/encoder.h"
#include "batpipe/registry.h"
#include "batpipe/safetensors.h"
#include "bp_test.h"

static char g_python[1024], g_src[2048], g_dir[64];

static int run(const char *fmt, const char *a, const char *b) {
    char cmd[8192], args[4096];
    snprintf(args, sizeof args, fmt, a ? a : "", b ? b : "");
    snprintf(cmd, sizeof cmd, "cd %s && %s %s > %s/log.txt 2>&1", g_dir, g_python, args, g_dir);
    int rc = system(cmd);
    if (rc != 0) {
        char log[256];
        snprintf(log, sizeof log, "%s/log.txt", g_dir);
        FILE *f = fopen(log, "r");
        char line[512];
        fprintf(stderr, "command failed (%d): %s\n", rc, args);
        while (f && fgets(line, sizeof line, f)) fputs(line, stderr);
        if (f) fclose(f);
    }
    return rc;
}

/* The converted file of one case made by make_tiny_checkpoint.py. */
static const char *converted(const char *name) {
    static char out[16][256];
    static int next = 0;
    char *p = out[next++ % 16];
    snprintf(p, sizeof out[0], "%s/%s.safetensors", g_dir, name);
    return p;
}

typedef struct env {
    bp_registry *reg;
    bp_backend *be;
    const bp_component_info *comp;
} env;

/* Create spatial_ast (D 16, depth 1, 5 classes) on `weights`; NULL + err on failure. */
static bp_stage *load(env *e, const char *weights, bp_paramset **ps, bp_error *err) {
    char w[512];
    snprintf(w, sizeof w, "weights=\"%s\"", weights);
    const char *kv[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", w};
    *ps = NULL;
    if (bp_paramset_from_strings(e->comp->desc, kv, 5, ps, err) != BP_OK) return NULL;
    void *inst = NULL;
    if (bp_registry_create(e->reg, e->comp, bp_paramset_params(*ps), e->be, &inst, err) != BP_OK) {
        bp_paramset_free(*ps);
        *ps = NULL;
    }
    return inst;
}

static void check_values(bp_stage *st) {
    const bp_trainable *tr = st->get_extension(st, BP_EXT_TRAINABLE_ID);
    bp_error err = BP_ERROR_INIT;
    int seen = 0;
    for (uint32_t i = 0; i < tr->param_count(st); i++) {
        bp_train_param p;
        CHECK_OK(tr->param_at(st, i, &p, &err), &err);
        if (!strcmp(p.name, "head.bias")) {
            float v[5];
            CHECK_OK(bp_tensor_read(p.value, v, sizeof v, &err), &err);
            for (int k = 0; k < 5; k++) CHECK(fabsf(v[k] - 0.01f * (float)k) < 1e-7f);
            seen++;
        }
        if (!strcmp(p.name, "conv_downsample.1.num_batches_tracked")) {
            int64_t n = 0;
            CHECK_OK(bp_tensor_read(p.value, &n, sizeof n, &err), &err);
            CHECK(n == 1234);
            seen++;
        }
    }
    CHECK(seen == 2);
}

static int has_tensor(const char *path, const char *name, int32_t dtype) {
    bp_error err = BP_ERROR_INIT;
    bp_st_file *f = NULL;
    if (bp_st_open(path, &f, &err) != BP_OK) return -1;
    bp_tensor t;
    int found = bp_st_get(f, name, &t, &err) == BP_OK && (dtype < 0 || t.dtype == dtype);
    bp_st_close(f);
    return found;
}

int main(void) {
    const char *py = getenv("BP_PYTHON") ? getenv("BP_PYTHON") : "/opt/bpbench/bin/python";
    const char *src = getenv("BP_SOURCE_DIR");
    if (!src) TEST_SKIP("BP_SOURCE_DIR is not set");
    if (access(py, X_OK) != 0) TEST_SKIP("no Python at %s (set BP_PYTHON)", py);
    snprintf(g_python, sizeof g_python, "%s", py);
    snprintf(g_src, sizeof g_src, "%s", src);
    char probe[1200];
    snprintf(probe, sizeof probe, "%s -c 'import torch' > /dev/null 2>&1", py);
    if (system(probe) != 0) TEST_SKIP("%s has no torch", py);
    snprintf(g_dir, sizeof g_dir, "/tmp/bp_convert_XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);

    bp_error err = BP_ERROR_INIT;
    env e = {NULL, NULL, NULL};
    CHECK_OK(bp_registry_new(NULL, &e.reg, &err), &err);
    CHECK_OK(bp_registry_scan_default(e.reg, NULL, &err), &err);
    CHECK_OK(bp_registry_create_backend(e.reg, "cpu", NULL, &e.be, &err), &err);
    e.comp = bp_registry_find(e.reg, BP_KIND_ENCODER, "spatial_ast");
    CHECK(e.be && e.comp);
    if (!e.be || !e.comp) return TEST_RESULT();
    bp_paramset *ps = NULL;
    bp_stage *st;

    /* Every case in one Python run (importing torch takes seconds): the
     * helper writes the checkpoints and converts each with the script's main(). */
    char opts[4400];
    snprintf(opts, sizeof opts,
             "%s/encoders/spatial_ast/tests/make_tiny_checkpoint.py %s --converter %s/scripts/convert_checkpoint.py",
             g_src, g_dir, g_src);
    CHECK(run("%s%s", opts, NULL) == 0);

    /* 1. the official layout, defaults: STFT kernels dropped, loads strictly */
    const char *p1 = converted("official");
    CHECK(has_tensor(p1, "spectrogram_extractor.conv_real.weight", -1) == 0);
    CHECK(has_tensor(p1, "conv_downsample.1.num_batches_tracked", BP_DTYPE_I64) == 1);
    CHECK(has_tensor(p1, "logmel_extractor.melW", BP_DTYPE_F32) == 1);
    st = load(&e, p1, &ps, &err);
    CHECKF(st != NULL, "%s", err.msg);
    if (st) check_values(st), st->destroy(st);
    bp_paramset_free(ps);

    /* 2. --keep-stft: kernels kept, still accepted */
    const char *p2 = converted("stft");
    CHECK(has_tensor(p2, "spectrogram_extractor.conv_imag.weight", BP_DTYPE_F32) == 1);
    st = load(&e, p2, &ps, &err);
    CHECKF(st != NULL, "%s", err.msg);
    if (st) st->destroy(st);
    bp_paramset_free(ps);

    /* 3. DDP prefix + float16/float64 tensors; 4. a plain state dict */
    const char *p3 = converted("ddp");
    CHECK(has_tensor(p3, "patch_embed.proj.weight", BP_DTYPE_F32) == 1);
    CHECK(has_tensor(p3, "fc_norm.weight", BP_DTYPE_F32) == 1);
    st = load(&e, p3, &ps, &err);
    CHECKF(st != NULL, "%s", err.msg);
    if (st) check_values(st), st->destroy(st);
    bp_paramset_free(ps);
    const char *p4 = converted("plain");
    st = load(&e, p4, &ps, &err);
    CHECKF(st != NULL, "%s", err.msg);
    if (st) st->destroy(st);
    bp_paramset_free(ps);

    /* 5. broken checkpoints: every problem reported by name */
    const char *p5 = converted("missing");
    st = load(&e, p5, &ps, &err);
    CHECK(st == NULL && strstr(err.msg, "missing: head.bias"));
    const char *p6 = converted("renamed");
    st = load(&e, p6, &ps, &err);
    CHECK(st == NULL && strstr(err.msg, "missing: blocks.0.attn.qkv.weight") &&
          strstr(err.msg, "unexpected: blocks.0.attn.qkv_weight"));
    const char *p7 = converted("reshaped");
    st = load(&e, p7, &ps, &err);
    CHECK(st == NULL && strstr(err.msg, "fc_norm.bias F32[15] (expected F32[16])"));
    printf("loader on a mis-shaped conversion: %s\n", err.msg);
    const char *p8 = converted("other_input");
    st = load(&e, p8, &ps, &err); /* the plugin is set up for melipd (4 maps) */
    CHECK(st == NULL && strstr(err.msg, "conv_downsample.0.weight F32[1,2,3,3] (expected F32[1,4,3,3])"));

    /* a file that is not a checkpoint: the converter fails with a message */
    char bad[256];
    snprintf(bad, sizeof bad, "%s/not_a_checkpoint.pth", g_dir);
    FILE *f = fopen(bad, "w");
    if (f) fputs("hello", f), fclose(f);
    snprintf(opts, sizeof opts, "%s/scripts/convert_checkpoint.py not_a_checkpoint.pth x.safetensors", g_src);
    fprintf(stderr, "(the next failure is expected)\n");
    CHECK(run("%s%s", opts, NULL) != 0);

    bp_backend_free(e.be);
    bp_registry_free(e.reg);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    CHECK(system(cmd) == 0);
    return TEST_RESULT();
}
