/* Trainer pieces against direct formulas: the learning-rate schedule and the
 * layer-wise decay factors, the counter-based randomness (permutations,
 * Beta draws), the losses and their gradients (closed forms and central
 * differences), AdamW through the trainer's optimizer against a float64
 * reference (layer-wise lr, decay flags, gradient scaling, bias corrections),
 * and configuration errors (unknown keys with a suggestion, wrong types,
 * unknown plugins, file:line).
 *
 * argv[1]: the directory of the test encoder plugin (train_tiny). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/registry.h"
#include "batpipe/train.h"
#include "bp_test.h"
#include "train_internal.h"
#include "train_test_util.h"

static char g_tmp[512];

/* ------------------------------------------------------------ schedule -- */

static double direct_lr(double lr, double min_lr, int64_t warm, int64_t total, int64_t step) {
    if (step < warm) return lr * (double)step / (double)warm;
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + cos(M_PI * (double)(step - warm) / (double)(total - warm)));
}

static void test_schedule(void) {
    bp_lr_schedule s = {sizeof s, 1e-3, 1e-6, 10, 110};
    for (int64_t k = 0; k <= 110; k++) CHECK_NEAR(bp_lr_at(&s, k), direct_lr(1e-3, 1e-6, 10, 110, k), 1e-15);
    CHECK(bp_lr_at(&s, 0) == 0.0);                          /* MAE: the first update of a warm-up has lr 0 */
    CHECK_NEAR(bp_lr_at(&s, 5), 0.5e-3, 1e-15);             /* half way up */
    CHECK_NEAR(bp_lr_at(&s, 10), 1e-3, 1e-15);              /* the peak */
    CHECK_NEAR(bp_lr_at(&s, 60), (1e-3 + 1e-6) / 2, 1e-15); /* half way down */
    CHECK_NEAR(bp_lr_at(&s, 110), 1e-6, 1e-18);             /* the end */
    CHECK_NEAR(bp_lr_at(&s, 500), 1e-6, 1e-18);             /* past the end: min_lr */
    bp_lr_schedule nw = {sizeof nw, 2e-3, 0.0, 0, 100};
    CHECK_NEAR(bp_lr_at(&nw, 0), 2e-3, 1e-15); /* no warm-up: start at the peak */
    CHECK_NEAR(bp_lr_at(&nw, 50), 1e-3, 1e-15);
    /* layer decay as the official recipe: ViT-B has 14 layer ids */
    CHECK_NEAR(bp_layer_decay_scale(0.75, 14, 0), pow(0.75, 13), 1e-15); /* patch embedding */
    CHECK_NEAR(bp_layer_decay_scale(0.75, 14, 1), pow(0.75, 12), 1e-15); /* block 0 */
    CHECK_NEAR(bp_layer_decay_scale(0.75, 14, 12), 0.75, 1e-15);         /* block 11 */
    CHECK(bp_layer_decay_scale(0.75, 14, 13) == 1.0);                    /* heads, norms */
    CHECK(bp_layer_decay_scale(1.0, 14, 0) == 1.0);
}

/* ----------------------------------------------------------------- rng -- */

static void test_rng(void) {
    CHECK(train_hash(1, 2, 3, 4) == train_hash(1, 2, 3, 4));
    CHECK(train_hash(1, 2, 3, 4) != train_hash(1, 2, 3, 5));
    CHECK(train_hash(1, 2, 3, 4) != train_hash(2, 2, 3, 4));
    enum { N = 257 };
    int64_t p0[N], p1[N], p0b[N];
    train_permutation(9, 0, p0, N);
    train_permutation(9, 1, p1, N);
    train_permutation(9, 0, p0b, N);
    int seen[N] = {0}, same01 = 1;
    for (int i = 0; i < N; i++) {
        CHECK(p0[i] >= 0 && p0[i] < N);
        if (p0[i] >= 0 && p0[i] < N) seen[p0[i]]++;
        same01 &= p0[i] == p1[i];
    }
    for (int i = 0; i < N; i++) CHECK(seen[i] == 1);
    CHECK(!same01);
    CHECK(memcmp(p0, p0b, sizeof p0) == 0);
    /* Beta(10, 10): mean 1/2, variance 1/84 */
    train_rng r;
    train_rng_init(&r, 5, TRAIN_RNG_MIXUP, 0, 0);
    double s = 0, s2 = 0;
    int n = 20000;
    for (int i = 0; i < n; i++) {
        double x = train_rng_beta(&r, 10, 10);
        CHECK(x > 0 && x < 1);
        s += x;
        s2 += x * x;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK_NEAR(mean, 0.5, 0.003);
    CHECK_NEAR(var, 1.0 / 84.0, 0.1 / 84.0);
    /* Beta(2, 5): mean 2/7 */
    s = 0;
    for (int i = 0; i < n; i++) s += train_rng_beta(&r, 2, 5);
    CHECK_NEAR(s / n, 2.0 / 7.0, 0.005);
    /* below(n) is uniform */
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++) hist[train_rng_below(&r, 7)]++;
    for (int i = 0; i < 7; i++) CHECK(abs(hist[i] - 10000) < 400);
}

/* ---------------------------------------------------------------- loss -- */

static double total_loss(const float *const lg[TRAIN_HEAD_COUNT], const int64_t w[TRAIN_HEAD_COUNT],
                         const train_targets *tg, const train_loss_weights *lw) {
    train_loss l;
    bp_error err = BP_ERROR_INIT;
    train_loss_compute(lg, w, tg, lw, &l, NULL, &err);
    return l.total;
}

static void test_loss(void) {
    enum { B = 3, NC = 5 };
    const int64_t width[TRAIN_HEAD_COUNT] = {NC, 21, 360, 180};
    float *lg[TRAIN_HEAD_COUNT], *gr[TRAIN_HEAD_COUNT];
    uint64_t s = 11;
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++) {
        lg[h] = malloc((size_t)(B * width[h]) * sizeof(float));
        gr[h] = malloc((size_t)(B * width[h]) * sizeof(float));
        for (int64_t i = 0; i < B * width[h]; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            lg[h][i] = (float)(((double)(s >> 11) * 0x1.0p-53 - 0.5) * 6.0);
        }
    }
    train_targets tg;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(train_targets_alloc(&tg, B, NC, &err), &err);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < NC; k++) tg.classes[b * NC + k] = (float)((b + k) % 3 == 0 ? 1.0 : (k == 4 ? 0.3 : 0.0));
    tg.class_valid[0] = 1, tg.class_valid[1] = 0, tg.class_valid[2] = 1; /* item 1: classes unknown */
    int32_t dist[B] = {3, -1, 20}, az[B] = {0, 359, -1}, el[B] = {90, -1, -1};
    memcpy(tg.label[TRAIN_HEAD_DISTANCE], dist, sizeof dist);
    memcpy(tg.label[TRAIN_HEAD_AZIMUTH], az, sizeof az);
    memcpy(tg.label[TRAIN_HEAD_ELEVATION], el, sizeof el);
    train_loss_weights w = {{1250.0, 1.0, 2.0, 2.0}, {1, 1, 1, 1}};
    train_loss l;
    CHECK_OK(train_loss_compute((const float *const *)lg, width, &tg, &w, &l, gr, &err), &err);
    /* direct formulas */
    double bce = 0;
    for (int b = 0; b < B; b++) {
        if (!tg.class_valid[b]) continue;
        for (int k = 0; k < NC; k++) {
            double x = lg[0][b * NC + k], y = tg.classes[b * NC + k], p = 1 / (1 + exp(-x));
            bce += -(y * log(p) + (1 - y) * log(1 - p));
        }
    }
    bce /= 2.0 * NC;
    CHECK_NEAR(l.term[TRAIN_HEAD_CLASS], bce, 1e-12);
    CHECK(l.count[TRAIN_HEAD_CLASS] == 2);
    for (int h = 1; h < TRAIN_HEAD_COUNT; h++) {
        double ce = 0;
        int n = 0;
        for (int b = 0; b < B; b++) {
            int32_t y = tg.label[h][b];
            if (y < 0) continue;
            double se = 0;
            for (int64_t k = 0; k < width[h]; k++) se += exp((double)lg[h][b * width[h] + k]);
            ce += log(se) - lg[h][b * width[h] + y];
            n++;
        }
        CHECK_NEAR(l.term[h], ce / n, 1e-10);
        CHECK(l.count[h] == n);
    }
    CHECK_NEAR(l.total, 1250 * l.term[0] + l.term[1] + 2 * (l.term[2] + l.term[3]), 1e-9);
    /* gradients: central differences of the total loss */
    double worst = 0;
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++)
        for (int64_t i = 0; i < B * width[h]; i += (h == 0 ? 1 : 7)) {
            float keep = lg[h][i];
            double eps = 1e-2;
            lg[h][i] = (float)(keep + eps);
            double up = total_loss((const float *const *)lg, width, &tg, &w);
            lg[h][i] = (float)(keep - eps);
            double dn = total_loss((const float *const *)lg, width, &tg, &w);
            lg[h][i] = keep;
            double fd = (up - dn) / ((double)(float)(keep + eps) - (double)(float)(keep - eps));
            double e = fabs(fd - gr[h][i]) / (1e-3 + fabs(fd));
            if (e > worst) worst = e;
        }
    CHECKF(worst < 2e-3, "worst relative gradient error %g", worst);
    /* items without labels get zero gradients; a disabled term gets none at all */
    for (int k = 0; k < NC; k++) CHECK(gr[0][1 * NC + k] == 0.0f);
    for (int64_t k = 0; k < 21; k++) CHECK(gr[1][1 * 21 + k] == 0.0f);
    w.on[TRAIN_HEAD_AZIMUTH] = 0;
    CHECK_OK(train_loss_compute((const float *const *)lg, width, &tg, &w, &l, gr, &err), &err);
    int zero = 1;
    for (int64_t i = 0; i < B * 360; i++) zero &= gr[2][i] == 0.0f;
    CHECK(zero);
    CHECK_NEAR(l.total, 1250 * l.term[0] + l.term[1] + 2 * l.term[3], 1e-9);
    /* a label outside the head is an error naming it */
    tg.label[TRAIN_HEAD_DISTANCE][0] = 21;
    CHECK(train_loss_compute((const float *const *)lg, width, &tg, &w, &l, gr, &err) == BP_ERR_INVALID &&
          strstr(err.msg, "distance label is 21"));
    train_targets_free(&tg);
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++) {
        free(lg[h]);
        free(gr[h]);
    }
}

/* ------------------------------------------------------------- AdamW -- */

static bp_registry *make_registry(const char *plugin_dir) {
    static bp_host host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.abi_major = BP_ABI_MAJOR;
    host.abi_minor = BP_ABI_MINOR;
    host.name = "test_train_units";
    host.version = BP_VERSION_STRING;
    bp_registry *reg = NULL;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_registry_new(&host, &reg, &err), &err);
    if (!reg) return NULL;
    CHECK_OK(bp_registry_scan_default(reg, NULL, &err), &err);
    CHECK_OK(bp_registry_scan_dir(reg, plugin_dir, &err), &err);
    bp_registry_set_threads(reg, 1);
    return reg;
}

static void test_adamw(bp_registry *reg) {
    bp_error err = BP_ERROR_INIT;
    bp_backend *be = NULL;
    const bp_component_info *cpu = bp_registry_find(reg, BP_KIND_BACKEND, "cpu");
    const bp_component_info *enc = bp_registry_find(reg, BP_KIND_ENCODER, "train_tiny");
    CHECK(cpu && enc);
    if (!cpu || !enc) return;
    const char *bkv[] = {"threads=1"};
    bp_paramset *bps = NULL, *eps = NULL;
    CHECK_OK(bp_paramset_from_strings(cpu->desc, bkv, 1, &bps, &err), &err);
    CHECK_OK(bp_registry_create_backend(reg, "cpu", bp_paramset_params(bps), &be, &err), &err);
    const char *ekv[] = {"width=3", "n_classes=2", "in_channels=2", "in_bins=5"};
    CHECK_OK(bp_paramset_from_strings(enc->desc, ekv, 4, &eps, &err), &err);
    train_comp tc;
    memset(&tc, 0, sizeof tc);
    tc.comp = enc;
    tc.params = eps;
    snprintf(tc.label, sizeof tc.label, "encoder (train_tiny)");
    int64_t fs[3] = {2, 6, 5};
    bp_spec feat = bp_spec_f32(3, fs, 0, NULL);
    train_model m;
    bp_status st = be ? train_model_create(&m, reg, &tc, be, &feat, "test", &err) : BP_ERR_INVALID;
    CHECK_OK(st, &err);
    if (st != BP_OK) {
        bp_paramset_free(bps);
        bp_paramset_free(eps);
        bp_backend_free(be);
        return;
    }
    CHECK(m.n_layers == 3 && m.n_params == 15);
    CHECK(m.head_port[TRAIN_HEAD_CLASS] >= 0 && m.head_width[TRAIN_HEAD_CLASS] == 2);
    CHECK(m.head_width[TRAIN_HEAD_AZIMUTH] == 360);
    train_cfg c;
    memset(&c, 0, sizeof c);
    c.beta1 = 0.9, c.beta2 = 0.95, c.eps = 1e-8, c.weight_decay = 0.05, c.layer_decay = 0.6;
    train_optim o;
    CHECK_OK(train_optim_init(&o, &m, &c, &err), &err);
    /* float64 reference state */
    double *ref_p[15] = {0}, *ref_m[15] = {0}, *ref_v[15] = {0};
    float *buf = malloc(360 * 8 * sizeof(float) * 4);
    uint64_t s = 3;
    const double lr_base = 0.01, grad_scale = 0.5;
    for (int step = 1; step <= 3; step++) {
        for (uint32_t i = 0; i < m.n_params; i++) {
            const bp_train_param *p = &m.params[i];
            if (!p->trainable) continue;
            int64_t n = bp_tensor_numel(p->value);
            if (step == 1) {
                ref_p[i] = calloc((size_t)n, sizeof(double));
                ref_m[i] = calloc((size_t)n, sizeof(double));
                ref_v[i] = calloc((size_t)n, sizeof(double));
                CHECK_OK(bp_tensor_read(p->value, buf, (size_t)n * 4, &err), &err);
                for (int64_t k = 0; k < n; k++) ref_p[i][k] = buf[k];
            }
            for (int64_t k = 0; k < n; k++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                buf[k] = (float)(((double)(s >> 11) * 0x1.0p-53 - 0.5) * (k % 3 ? 1.0 : 1e-3));
            }
            CHECK_OK(bp_tensor_write(p->grad, buf, (size_t)n * 4, &err), &err);
            /* reference update */
            double lr = lr_base * pow(0.6, 3 - 1 - p->layer_id), wd = p->decay ? 0.05 : 0.0;
            for (int64_t k = 0; k < n; k++) {
                double g = (double)buf[k] * grad_scale;
                ref_m[i][k] = 0.9 * ref_m[i][k] + 0.1 * g;
                ref_v[i][k] = 0.95 * ref_v[i][k] + 0.05 * g * g;
                double mh = ref_m[i][k] / (1 - pow(0.9, step)), vh = ref_v[i][k] / (1 - pow(0.95, step));
                ref_p[i][k] -= lr * (mh / (sqrt(vh) + 1e-8) + wd * ref_p[i][k]);
            }
        }
        CHECK_OK(train_optim_step(&o, &m, lr_base, step, (float)grad_scale, &err), &err);
    }
    double worst = 0;
    int checked = 0, decayed = 0;
    for (uint32_t i = 0; i < m.n_params; i++) {
        const bp_train_param *p = &m.params[i];
        if (!p->trainable) {
            CHECK(o.m[i] == NULL);
            continue;
        }
        checked++;
        decayed += p->decay;
        int64_t n = bp_tensor_numel(p->value);
        CHECK_OK(bp_tensor_read(p->value, buf, (size_t)n * 4, &err), &err);
        for (int64_t k = 0; k < n; k++) {
            /* relative to the value, or to the step size where updates cancel to near 0 */
            double e = fabs(buf[k] - ref_p[i][k]) / (lr_base + fabs(ref_p[i][k]));
            if (e > worst) worst = e;
        }
        free(ref_p[i]);
        free(ref_m[i]);
        free(ref_v[i]);
    }
    CHECK(checked == 12 && decayed == 5);
    CHECKF(worst < 2e-6, "AdamW vs float64: worst relative error %g", worst);
    printf("AdamW through the trainer vs float64: worst relative error %.3g over 3 steps\n", worst);
    free(buf);
    train_optim_free(&o);
    train_model_free(&m);
    bp_paramset_free(bps);
    bp_paramset_free(eps);
    bp_backend_free(be);
}

/* ------------------------------------------------------------- config -- */

static void expect_error(bp_registry *reg, const char *extra, const char *const *ov, uint32_t n_ov, const char *must1,
                         const char *must2) {
    char path[600];
    snprintf(path, sizeof path, "%s/bad.cfg", g_tmp);
    tt_write_config(path, g_tmp, "out", extra);
    bp_trainer *t = NULL;
    bp_error err = BP_ERROR_INIT;
    bp_status st = bp_train_load(reg, path, ov, n_ov, &t, &err);
    CHECKF(st != BP_OK, "expected an error containing '%s'", must1);
    CHECKF(strstr(err.msg, must1) && (!must2 || strstr(err.msg, must2)), "message '%s' lacks '%s' / '%s'", err.msg,
           must1, must2 ? must2 : "");
    bp_train_free(t);
}

static void test_config_errors(bp_registry *reg) {
    const char *ov1[] = {"optimiser.lr=0.1"};
    expect_error(reg, "", ov1, 1, "unknown key 'optimiser' (did you mean 'optimizer'?)", NULL);
    expect_error(reg, "stages = ( { steps = 5; } ); checkpoint = { evry = 5; };", NULL, 0,
                 "unknown parameter 'evry' (did you mean 'every'?)", "bad.cfg:");
    const char *ov2[] = {"batch_size=\"four\""};
    expect_error(reg, "", ov2, 1, "batch_size must be an integer", NULL);
    const char *ov3[] = {"encoder.type=\"nope\""};
    expect_error(reg, "", ov3, 1, "unknown encoder plugin 'nope'", "installed:");
    const char *ov4[] = {"frontend.type=\"mell\""};
    expect_error(reg, "", ov4, 1, "unknown frontend plugin 'mell'", NULL);
    expect_error(reg, "stages = ( { steps = 5; losses = [\"class\", \"directions\"]; } );", NULL, 0,
                 "unknown loss 'directions'", "bad.cfg:");
    expect_error(reg, "stages = ( { steps = 5; epochs = 1.0; } );", NULL, 0, "as steps or as epochs", NULL);
    expect_error(reg, "", NULL, 0, "missing 'stages'", NULL);
    expect_error(reg, "stages = ( { steps = 5; } ); augment2 = 1;", NULL, 0, "unknown key 'augment2'",
                 "did you mean 'augment'");
    expect_error(reg, "stages = ( { steps = 5; } ); optimizer2 = { };", NULL, 0, "unknown key", NULL);
    const char *ov5[] = {"augment.mixup_spatial=\"both\""};
    expect_error(reg, "stages = ( { steps = 5; } );", ov5, 1, "mixup_spatial", "none|dominant");
    const char *ov6[] = {"optimizer.beta2=1.5"};
    expect_error(reg, "stages = ( { steps = 5; } );", ov6, 1, "beta2", NULL);
    const char *ov7[] = {"encoder.widht=3"};
    expect_error(reg, "stages = ( { steps = 5; } );", ov7, 1, "unknown parameter 'widht' (did you mean 'width'?)",
                 NULL);
    expect_error(reg, "stages = ( { steps = 5; } ); eval = { metrics = ( { type = \"no_such_metric\"; } ); };", NULL, 0,
                 "unknown metric plugin 'no_such_metric'", "bad.cfg:");
    /* a warm-up as long as the run, found once the data size is known */
    const char *ov9[] = {"optimizer.warmup_steps=5"};
    expect_error(reg, "stages = ( { steps = 5; } );", ov9, 1, "warm-up (5 steps) must be shorter", NULL);
    /* the tiny encoder has 4 classes; the loss needs the dataset's */
    const char *ov10[] = {"encoder.n_classes=5"};
    expect_error(reg, "stages = ( { steps = 5; } );", ov10, 1, "has 4 classes but encoder (train_tiny)", NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) TEST_SKIP("usage: test_train_units PLUGIN_DIR");
    test_schedule();
    test_rng();
    test_loss();
    snprintf(g_tmp, sizeof g_tmp, "/tmp/bp_train_units_%d", (int)getpid());
    tt_rmtree(g_tmp); /* a leftover of an earlier failed run with the same pid */
    CHECK(tt_make_dataset(g_tmp, 8, 4) == 0);
    bp_registry *reg = make_registry(argv[1]);
    if (reg) {
        test_adamw(reg);
        test_config_errors(reg);
        bp_registry_free(reg);
    }
    tt_rmtree(g_tmp);
    return TEST_RESULT();
}
