/* Golden test of the spatial_ast encoder against
 * tests/data/golden/spatial_ast_tiny.safetensors (eval forward) and
 * spatial_ast_tiny_grad.safetensors (one training step: loss terms,
 * train-mode logits, BatchNorm statistics, every gradient), with the golden
 * README's rule err = max|c − g| / max|g| per tensor:
 *   1. the plugin through the registry (as a pipeline uses it): logits and
 *      tokens of the eval forward (tol 1e-4);
 *   2. its trainable extension: the official loss computed here from the
 *      logits (1250·BCE + CE(distance) + 2·(CE(azimuth) + CE(elevation))),
 *      its gradient handed to backward, every grad.* including grad.features
 *      (tol 1e-3, as recommended), loss terms and running stats (1e-5);
 *   3. model internals (the model code linked in): tokens_in (input of block
 *      0) and the BatchNorm batch statistics;
 *   4. the melipd front end chained on melipd_10s `wave` → the model = the
 *      golden batch 0 (tol 1e-4).
 * Prints the error of every tensor and the worst per tensor group. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/encoder.h"
#include "batpipe/registry.h"
#include "batpipe/safetensors.h"
#include "bp_test.h"
#include "sast_model.h"

#define TOL_OUT 1e-4
#define TOL_LOSS 1e-5
#define TOL_GRAD 1e-3

static double rel_err(const float *c, const float *g, int64_t n) {
    double mg = 0, md = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)c[i] - (double)g[i]);
        if (!(d <= md)) md = isnan(d) ? INFINITY : d;
        mg = fmax(mg, fabs((double)g[i]));
    }
    return mg > 0 ? md / mg : md;
}

static const float *gold(const bp_st_file *f, const char *name, int64_t *n) {
    bp_error err = BP_ERROR_INIT;
    bp_tensor t;
    if (bp_st_get(f, name, &t, &err) != BP_OK || t.dtype != BP_DTYPE_F32) {
        fprintf(stderr, "golden tensor %s: %s\n", name, err.msg);
        bp_test_failures++;
        return NULL;
    }
    if (n) *n = bp_tensor_numel(&t);
    return t.data;
}

static float *read_all(const bp_tensor *t) {
    bp_error err = BP_ERROR_INIT;
    float *v = malloc((size_t)bp_tensor_numel(t) * sizeof *v);
    CHECK_OK(bp_tensor_read(t, v, bp_tensor_nbytes(t), &err), &err);
    return v;
}

/* Compare a backend tensor with a golden one and print. */
static double compare(const char *label, const bp_tensor *c, const float *g, int64_t n, double tol) {
    if (!g) return INFINITY;
    CHECKF(bp_tensor_numel(c) == n, "%s: %lld elements, golden %lld", label, (long long)bp_tensor_numel(c),
           (long long)n);
    if (bp_tensor_numel(c) != n) return INFINITY;
    float *v = read_all(c);
    double e = rel_err(v, g, n);
    free(v);
    printf("  %-40s err %.3e (tol %.0e)\n", label, e, tol);
    CHECKF(e <= tol, "%s: err %.3e > %.0e", label, e, tol);
    return e;
}

/* Per-group worst errors. */
typedef struct group {
    const char *name;
    double worst;
    int n;
} group;

static group groups[] = {{"conv block (conv_downsample.*)", 0, 0}, {"patch_embed", 0, 0}, {"cls_tokens", 0, 0},
                         {"blocks.*", 0, 0},  {"dis/doa/fc_norm", 0, 0}, {"heads", 0, 0},
                         {"features (input)", 0, 0}};

static group *group_of(const char *p) {
    if (!strncmp(p, "conv_downsample", 15)) return &groups[0];
    if (!strncmp(p, "patch_embed", 11)) return &groups[1];
    if (!strcmp(p, "cls_tokens")) return &groups[2];
    if (!strncmp(p, "blocks.", 7)) return &groups[3];
    if (strstr(p, "_norm.")) return &groups[4];
    if (strstr(p, "head")) return &groups[5];
    return &groups[6];
}

/* A weights-only copy of the golden file (the loader is strict: inputs and
 * outputs stored next to the weights would be reported as unexpected). */
static int is_param(const char *n) {
    static const char *const not_params[] = {"features", "out_", "tokens_", "y_", "loss", "bn_batch", "bn_running",
                                             "grad."};
    for (size_t i = 0; i < sizeof not_params / sizeof not_params[0]; i++)
        if (!strncmp(n, not_params[i], strlen(not_params[i]))) return 0;
    return 1;
}

static int write_weights(const bp_st_file *f, const char *path) {
    bp_error err = BP_ERROR_INIT;
    bp_st_writer *w = NULL;
    int n = 0;
    CHECK_OK(bp_st_writer_new(&w, &err), &err);
    for (uint32_t i = 0; i < bp_st_count(f); i++) {
        const char *name = bp_st_name(f, i);
        if (!is_param(name)) continue;
        bp_tensor t;
        CHECK_OK(bp_st_get_index(f, i, &t, &err), &err);
        CHECK_OK(bp_st_writer_add(w, name, &t, &err), &err);
        n++;
    }
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
    return n;
}

/* The official loss and its gradient w.r.t. the four logits (double). */
typedef struct loss_out {
    double total, bce, dist, azi, ele;
} loss_out;

static double ce(const float *z, int64_t n, int64_t y, float *dz, double scale) {
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, z[i]);
    for (int64_t i = 0; i < n; i++) s += exp((double)z[i] - m);
    double lse = m + log(s);
    for (int64_t i = 0; i < n; i++) dz[i] = (float)(scale * (exp((double)z[i] - lse) - (i == y ? 1.0 : 0.0)));
    return lse - z[y];
}

static loss_out official_loss(int64_t B, int64_t NC, const float *zc, const float *yc, const float *zd,
                              const int64_t *yd, const float *za, const int64_t *ya, const float *ze,
                              const int64_t *ye, float *dc, float *dd, float *da, float *de) {
    loss_out L = {0, 0, 0, 0, 0};
    const double wb = 1250.0, wd = 1.0, wa = 2.0, we = 2.0;
    for (int64_t i = 0; i < B * NC; i++) {
        double z = zc[i], y = yc[i];
        L.bce += fmax(z, 0.0) - z * y + log1p(exp(-fabs(z)));
        dc[i] = (float)(wb * (1.0 / (1.0 + exp(-z)) - y) / (double)(B * NC));
    }
    L.bce /= (double)(B * NC);
    for (int64_t b = 0; b < B; b++) {
        L.dist += ce(zd + b * SAST_N_DIST, SAST_N_DIST, yd[b], dd + b * SAST_N_DIST, wd / (double)B) / (double)B;
        L.azi += ce(za + b * SAST_N_AZI, SAST_N_AZI, ya[b], da + b * SAST_N_AZI, wa / (double)B) / (double)B;
        L.ele += ce(ze + b * SAST_N_ELE, SAST_N_ELE, ye[b], de + b * SAST_N_ELE, we / (double)B) / (double)B;
    }
    L.total = wb * L.bce + wd * L.dist + wa * L.azi + we * L.ele;
    return L;
}

static void check_scalar(const char *label, double c, const float *g, double tol) {
    if (!g) return;
    double e = fabs(c - (double)g[0]) / fabs((double)g[0]);
    printf("  %-40s %.9g vs %.9g  err %.3e (tol %.0e)\n", label, c, (double)g[0], e, tol);
    CHECKF(e <= tol, "%s: err %.3e", label, e);
}

int main(void) {
    bp_error err = BP_ERROR_INIT;
    const char *data = getenv("BP_TEST_DATA");
    if (!data) TEST_SKIP("BP_TEST_DATA is not set");
    char p_fwd[4096], p_grad[4096], p_mel[4096];
    snprintf(p_fwd, sizeof p_fwd, "%s/golden/spatial_ast_tiny.safetensors", data);
    snprintf(p_grad, sizeof p_grad, "%s/golden/spatial_ast_tiny_grad.safetensors", data);
    snprintf(p_mel, sizeof p_mel, "%s/golden/melipd_10s.safetensors", data);
    bp_st_file *gf = NULL, *gg = NULL, *gm = NULL;
    CHECK_OK(bp_st_open(p_fwd, &gf, &err), &err);
    CHECK_OK(bp_st_open(p_grad, &gg, &err), &err);
    CHECK_OK(bp_st_open(p_mel, &gm, &err), &err);
    if (!gf || !gg || !gm) return TEST_RESULT();
    char dir[] = "/tmp/bp_sast_golden_XXXXXX", wpath[4200];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", dir);
    int n_params = write_weights(gf, wpath);
    printf("weights: %d tensors from %s\n", n_params, p_fwd);

    bp_registry *reg = NULL;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    CHECK_OK(bp_registry_scan_default(reg, NULL, &err), &err);
    bp_backend *be = NULL;
    CHECK_OK(bp_registry_create_backend(reg, "cpu", NULL, &be, &err), &err);
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_ENCODER, "spatial_ast");
    CHECKF(comp != NULL, "spatial_ast not found in BATPIPE_PLUGIN_PATH=%s", getenv("BATPIPE_PLUGIN_PATH"));
    if (!be || !comp) return TEST_RESULT();
    char kw[4300];
    snprintf(kw, sizeof kw, "weights=\"%s\"", wpath);
    const char *kv[] = {"dim=64", "depth=2", "heads=4", "mlp_ratio=4.0", "n_classes=355", "input=\"melipd\"", kw};
    bp_paramset *ps = NULL;
    CHECK_OK(bp_paramset_from_strings(comp->desc, kv, 7, &ps, &err), &err);
    void *inst = NULL;
    CHECK_OK(bp_registry_create(reg, comp, bp_paramset_params(ps), be, &inst, &err), &err);
    bp_stage *stage = inst;
    if (!stage) return TEST_RESULT();

    /* ---------------------------------------------------- 1. eval forward -- */
    printf("1. eval forward (plugin) vs %s:\n", p_fwd);
    const int64_t B = 2, NC = 355, sfeat[4] = {B, 4, 1024, 128};
    bp_tensor feat_h = bp_tensor_view(BP_DTYPE_F32, 4, sfeat, (void *)gold(gf, "features", NULL));
    bp_tensor *feat = NULL;
    CHECK_OK(bp_tensor_upload(be, &feat_h, &feat, &err), &err);
    bp_spec want = bp_spec_any(), have = bp_spec_of(&feat_h, 0.0);
    char why[256];
    CHECK_OK(stage->input_spec(stage, &want, &err), &err);
    CHECKF(bp_spec_satisfies(&have, &want, why, sizeof why), "%s", why);
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n_ports = BP_MAX_OUTPUTS;
    CHECK_OK(stage->prepare(stage, &have, ports, &n_ports, &err), &err);
    CHECK(n_ports == SAST_OUT_COUNT);
    bp_tensor *outs[SAST_OUT_COUNT] = {NULL};
    for (uint32_t i = 0; i < n_ports && i < SAST_OUT_COUNT; i++)
        CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, ports[i].spec.ndim, ports[i].spec.shape, &outs[i], &err), &err);
    CHECK_OK(stage->process(stage, feat, outs, n_ports, &err), &err);
    const char *gnames[SAST_OUT_COUNT] = {"tokens_out", "out_class", "out_distance", "out_azimuth", "out_elevation"};
    double worst_fwd = 0;
    for (int i = 0; i < SAST_OUT_COUNT; i++) {
        int64_t n = 0;
        const float *g = gold(gf, gnames[i], &n);
        char label[96];
        snprintf(label, sizeof label, "%s (port %s)", gnames[i], ports[i].name);
        worst_fwd = fmax(worst_fwd, compare(label, outs[i], g, n, TOL_OUT));
    }

    /* ------------------------------------------------- 2. training step -- */
    printf("2. training step (trainable extension) vs %s:\n", p_grad);
    const bp_trainable *tr = stage->get_extension ? stage->get_extension(stage, BP_EXT_TRAINABLE_ID) : NULL;
    CHECK(tr != NULL);
    double worst_grad = 0;
    if (tr) {
        CHECK(tr->n_layers(stage) == 4);
        CHECK_OK(tr->set_training(stage, 1, &err), &err);
        CHECK_OK(tr->zero_grad(stage, &err), &err);
        bp_train_step step;
        memset(&step, 0, sizeof step);
        step.struct_size = sizeof step; /* no masking, no SpecAugment, no drop path */
        bp_tensor *d_feat = NULL;
        CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, 4, sfeat, &d_feat, &err), &err);
        CHECK_OK(tr->forward(stage, feat, &step, outs, SAST_OUT_COUNT, &err), &err);
        for (int i = SAST_OUT_CLASS; i < SAST_OUT_COUNT; i++) {
            int64_t n = 0;
            const float *g = gold(gg, gnames[i], &n);
            char label[96];
            snprintf(label, sizeof label, "%s (train mode)", gnames[i]);
            compare(label, outs[i], g, n, TOL_OUT);
        }
        float *zc = read_all(outs[1]), *zd = read_all(outs[2]), *za = read_all(outs[3]), *ze = read_all(outs[4]);
        bp_tensor ty;
        int64_t yd[2], ya[2], ye[2];
        CHECK_OK(bp_st_get_checked(gg, "y_distance", BP_DTYPE_I64, 1, (const int64_t[]){2}, &ty, &err), &err);
        memcpy(yd, ty.data, sizeof yd);
        CHECK_OK(bp_st_get_checked(gg, "y_azimuth", BP_DTYPE_I64, 1, (const int64_t[]){2}, &ty, &err), &err);
        memcpy(ya, ty.data, sizeof ya);
        CHECK_OK(bp_st_get_checked(gg, "y_elevation", BP_DTYPE_I64, 1, (const int64_t[]){2}, &ty, &err), &err);
        memcpy(ye, ty.data, sizeof ye);
        float *dc = malloc(B * NC * sizeof *dc), *dd = malloc(B * SAST_N_DIST * sizeof *dd),
              *da = malloc(B * SAST_N_AZI * sizeof *da), *de = malloc(B * SAST_N_ELE * sizeof *de);
        loss_out L = official_loss(B, NC, zc, gold(gg, "y_class", NULL), zd, yd, za, ya, ze, ye, dc, dd, da, de);
        check_scalar("loss", L.total, gold(gg, "loss", NULL), TOL_LOSS);
        check_scalar("loss_bce", L.bce, gold(gg, "loss_bce", NULL), TOL_LOSS);
        check_scalar("loss_distance", L.dist, gold(gg, "loss_distance", NULL), TOL_LOSS);
        check_scalar("loss_azimuth", L.azi, gold(gg, "loss_azimuth", NULL), TOL_LOSS);
        check_scalar("loss_elevation", L.ele, gold(gg, "loss_elevation", NULL), TOL_LOSS);
        bp_tensor *dl[SAST_OUT_COUNT] = {NULL};
        float *hd[SAST_OUT_COUNT] = {NULL, dc, dd, da, de};
        for (int i = SAST_OUT_CLASS; i < SAST_OUT_COUNT; i++) {
            CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, 2, outs[i]->shape, &dl[i], &err), &err);
            CHECK_OK(bp_tensor_write(dl[i], hd[i], bp_tensor_nbytes(dl[i]), &err), &err);
        }
        CHECK_OK(tr->backward(stage, (const bp_tensor *const *)dl, SAST_OUT_COUNT, d_feat, &err), &err);

        /* every grad.* of the golden file */
        int n_grads = 0;
        for (uint32_t i = 0; i < bp_st_count(gg); i++) {
            const char *gname = bp_st_name(gg, i);
            if (strncmp(gname, "grad.", 5)) continue;
            const char *pname = gname + 5;
            int64_t n = 0;
            const float *g = gold(gg, gname, &n);
            const bp_tensor *c = NULL;
            if (!strcmp(pname, "features")) {
                c = d_feat;
            } else {
                for (uint32_t k = 0; k < tr->param_count(stage); k++) {
                    bp_train_param p;
                    CHECK_OK(tr->param_at(stage, k, &p, &err), &err);
                    if (!strcmp(p.name, pname)) c = p.grad;
                }
            }
            CHECKF(c != NULL, "no gradient for %s", pname);
            if (!c) continue;
            double e = compare(gname, c, g, n, TOL_GRAD);
            group *gr = group_of(pname);
            gr->worst = fmax(gr->worst, e);
            gr->n++;
            worst_grad = fmax(worst_grad, e);
            n_grads++;
        }
        int n_trainable = 0;
        for (uint32_t k = 0; k < tr->param_count(stage); k++) {
            bp_train_param p;
            CHECK_OK(tr->param_at(stage, k, &p, &err), &err);
            n_trainable += p.trainable;
            if (!strcmp(p.name, "conv_downsample.1.running_mean"))
                compare("bn_running_mean_after", p.value, gold(gg, "bn_running_mean_after", NULL), 1, TOL_LOSS);
            if (!strcmp(p.name, "conv_downsample.1.running_var"))
                compare("bn_running_var_after", p.value, gold(gg, "bn_running_var_after", NULL), 1, TOL_LOSS);
            if (!strcmp(p.name, "conv_downsample.1.num_batches_tracked")) {
                int64_t nb = -1, nb0 = -2;
                bp_tensor t0;
                CHECK_OK(bp_tensor_read(p.value, &nb, sizeof nb, &err), &err);
                CHECK_OK(bp_st_get_checked(gg, p.name, BP_DTYPE_I64, 0, NULL, &t0, &err), &err);
                memcpy(&nb0, t0.data, sizeof nb0);
                printf("  num_batches_tracked %lld -> %lld\n", (long long)nb0, (long long)nb);
                CHECKF(nb == nb0 + 1, "num_batches_tracked %lld, expected %lld + 1", (long long)nb, (long long)nb0);
            }
        }
        printf("  %d gradients compared (44 trainable parameters + features); the model has %d trainable tensors\n",
               n_grads, n_trainable);
        CHECK(n_grads == 45 && n_trainable == 44);
        printf("  worst gradient error per group (rule max|c-g|/max|g| per tensor):\n");
        for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
            printf("    %-32s %2d tensors  worst %.3e\n", groups[i].name, groups[i].n, groups[i].worst);
        for (int i = 0; i < SAST_OUT_COUNT; i++) bp_tensor_free(dl[i]);
        free(zc);
        free(zd);
        free(za);
        free(ze);
        free(dc);
        free(dd);
        free(da);
        free(de);
        bp_tensor_free(d_feat);
        CHECK_OK(tr->set_training(stage, 0, &err), &err);
    }

    /* --------------------------------------------- 3. model internals -- */
    printf("3. internals (model code linked in):\n");
    {
        sast_cfg cfg = {64, 2, 4, 256, 355, 4, 0.1f, 0, 2e-5};
        sast_model m;
        CHECK_OK(sast_model_init(&m, &cfg, be, 0, &err), &err);
        CHECK_OK(sast_model_load(&m, wpath, &err), &err);
        bp_tensor *none[SAST_OUT_COUNT] = {NULL};
        CHECK_OK(sast_model_forward(&m, feat, NULL, 1, none, SAST_OUT_COUNT, &err), &err); /* eval, kept */
        int64_t n = 0;
        const float *g = gold(gf, "tokens_in", &n);
        compare("tokens_in (input of block 0)", m.xs[0], g, n, TOL_OUT);
        m.training = 1;
        sast_step s = {0, 0, 0, 0, 0, 0.0f};
        CHECK_OK(sast_model_forward(&m, feat, &s, 1, none, SAST_OUT_COUNT, &err), &err);
        compare("bn_batch_mean", m.bn0.mean, gold(gg, "bn_batch_mean", NULL), 1, TOL_LOSS);
        compare("bn_batch_var", m.bn0.var, gold(gg, "bn_batch_var", NULL), 1, TOL_LOSS);
        sast_model_free(&m);
    }

    /* ------------------------------------------ 4. front end chained -- */
    printf("4. melipd (wave) -> spatial_ast vs golden batch 0:\n");
    const bp_component_info *fe = bp_registry_find(reg, BP_KIND_FRONTEND, "melipd");
    CHECKF(fe != NULL, "melipd frontend not found");
    if (fe) {
        const char *fkv[] = {"bn_mean=[-20.0, -21.0]", "bn_var=[200.0, 210.0]"};
        bp_paramset *fps = NULL;
        CHECK_OK(bp_paramset_from_strings(fe->desc, fkv, 2, &fps, &err), &err);
        void *finst = NULL;
        CHECK_OK(bp_registry_create(reg, fe, bp_paramset_params(fps), NULL, &finst, &err), &err);
        bp_stage *fst = finst;
        const int64_t sw[2] = {2, 320000};
        bp_tensor wave = bp_tensor_view(BP_DTYPE_F32, 2, sw, (void *)gold(gm, "wave", NULL));
        bp_spec whave = bp_spec_of(&wave, 32000.0);
        bp_port fports[BP_MAX_OUTPUTS];
        uint32_t nf = BP_MAX_OUTPUTS;
        CHECK_OK(fst->prepare(fst, &whave, fports, &nf, &err), &err);
        bp_tensor *fout[BP_MAX_OUTPUTS] = {NULL};
        CHECK_OK(bp_tensor_new(NULL, BP_DTYPE_F32, fports[0].spec.ndim, fports[0].spec.shape, &fout[0], &err), &err);
        CHECK_OK(fst->process(fst, &wave, fout, 1, &err), &err);
        const int64_t s1[4] = {1, 4, 1024, 128};
        {
            /* the front end's own agreement with the golden features (per channel group) */
            const float *gfeat = gold(gf, "features", NULL), *c = fout[0]->data;
            const int64_t half = 2 * 1024 * 128;
            double e01 = rel_err(c, gfeat, half), e23 = rel_err(c + half, gfeat + half, half);
            printf("  melipd features vs golden features[0]: channels 0-1 err %.3e, 2-3 err %.3e\n", e01, e23);
        }
        bp_tensor f1h = bp_tensor_view(BP_DTYPE_F32, 4, s1, fout[0]->data), *f1 = NULL;
        CHECK_OK(bp_tensor_upload(be, &f1h, &f1, &err), &err);
        bp_spec h1 = bp_spec_of(&f1h, 0.0);
        /* A fresh instance: the training step above moved the BatchNorm running stats. */
        void *inst2 = NULL;
        CHECK_OK(bp_registry_create(reg, comp, bp_paramset_params(ps), be, &inst2, &err), &err);
        bp_stage *stage2 = inst2;
        if (!stage2) return TEST_RESULT();
        n_ports = BP_MAX_OUTPUTS;
        CHECK_OK(stage2->prepare(stage2, &h1, ports, &n_ports, &err), &err);
        bp_tensor *o1[SAST_OUT_COUNT] = {NULL};
        for (uint32_t i = 0; i < SAST_OUT_COUNT; i++)
            CHECK_OK(bp_tensor_new(be, BP_DTYPE_F32, ports[i].spec.ndim, ports[i].spec.shape, &o1[i], &err), &err);
        CHECK_OK(stage2->process(stage2, f1, o1, SAST_OUT_COUNT, &err), &err);
        for (int i = 0; i < SAST_OUT_COUNT; i++) {
            int64_t n = 0;
            const float *g = gold(gf, gnames[i], &n);
            char label[96];
            snprintf(label, sizeof label, "%s[0] (chained)", gnames[i]);
            compare(label, o1[i], g, n / 2, TOL_OUT);
            bp_tensor_free(o1[i]);
        }
        stage2->destroy(stage2);
        bp_tensor_free(f1);
        bp_tensor_free(fout[0]);
        fst->destroy(fst);
        bp_paramset_free(fps);
    }
    printf("worst: eval outputs %.3e, gradients %.3e\n", worst_fwd, worst_grad);

    for (int i = 0; i < SAST_OUT_COUNT; i++) bp_tensor_free(outs[i]);
    bp_tensor_free(feat);
    stage->destroy(stage);
    bp_paramset_free(ps);
    bp_backend_free(be);
    bp_registry_free(reg);
    bp_st_close(gf);
    bp_st_close(gg);
    bp_st_close(gm);
    unlink(wpath);
    rmdir(dir);
    return TEST_RESULT();
}
