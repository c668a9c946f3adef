/* seldnet plugin (through the registry, random init, small sizes):
 * declared parameters and creation errors (pool lists, sizes), spec
 * negotiation for each `input` variant, eval forward (shapes, token count
 * from the pool sizes, finite, batch-independent, seed-determined, the 1-D
 * sin-cos pos_embed), the trainable table (order, flags, layer ids),
 * training forward with frame-token masking / SpecAugment / drop path
 * (shapes, seed determinism, BatchNorm running statistics), whole-model
 * gradients with every augmentation on against finite differences, and the
 * strict weight loader (round trip; missing, renamed and mis-shaped tensors
 * each reported by name). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/encoder.h"
#include "batpipe/registry.h"
#include "batpipe/safetensors.h"
#include "bp_test.h"

enum { OUT_TOKENS, OUT_CLASS, OUT_DIST, OUT_AZI, OUT_ELE, N_OUT };

typedef struct env {
    bp_registry *reg;
    bp_backend *be;
    const bp_component_info *comp;
} env;

/* A small model: 4 filters, pools (time x freq) 4x4, 2x4, 2x2 → 64 frames x 4 bins. */
#define SMALL "filters=4", "freq_pool=[4, 4, 2]", "time_pool=[4, 2, 2]"
#define SMALL_FRAMES 64

/* Finite-difference tolerances (relative): see test_gradients. */
#ifndef FD_TOL_SMOOTH
#define FD_TOL_SMOOTH 1e-3
#endif
#ifndef FD_TOL_POOLED
#define FD_TOL_POOLED 2e-2
#endif

static bp_stage *make(env *e, const char *const *kv, uint32_t n, bp_paramset **ps, bp_error *err) {
    *ps = NULL;
    if (bp_paramset_from_strings(e->comp->desc, kv, n, ps, err) != BP_OK) return NULL;
    void *inst = NULL;
    if (bp_registry_create(e->reg, e->comp, bp_paramset_params(*ps), e->be, &inst, err) != BP_OK) {
        bp_paramset_free(*ps);
        *ps = NULL;
        return NULL;
    }
    return inst;
}

static void drop(bp_stage *st, bp_paramset *ps) {
    if (st) st->destroy(st);
    bp_paramset_free(ps);
}

static float *read_all(const bp_tensor *t) {
    bp_error err = BP_ERROR_INIT;
    float *v = malloc((size_t)bp_tensor_numel(t) * sizeof *v);
    CHECK_OK(bp_tensor_read(t, v, bp_tensor_nbytes(t), &err), &err);
    return v;
}

static void write_all(bp_tensor *t, const float *v) {
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_tensor_write(t, v, bp_tensor_nbytes(t), &err), &err);
}

static bp_tensor *new_t(env *e, int32_t ndim, const int64_t *shape) {
    bp_error err = BP_ERROR_INIT;
    bp_tensor *t = NULL;
    CHECK_OK(bp_tensor_new(e->be, BP_DTYPE_F32, ndim, shape, &t, &err), &err);
    return t;
}

static void fill(bp_tensor *t, uint64_t seed, double scale) {
    int64_t n = bp_tensor_numel(t);
    float *v = malloc((size_t)n * sizeof *v);
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int64_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = (float)(scale * ((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0));
    }
    write_all(t, v);
    free(v);
}

static int prepare(bp_stage *st, int64_t B, int64_t C, bp_port *ports, bp_error *err) {
    const int64_t s[4] = {B, C, 1024, 128};
    bp_tensor probe = bp_tensor_view(BP_DTYPE_F32, 4, s, NULL);
    bp_spec have = bp_spec_of(&probe, 0.0);
    uint32_t n = BP_MAX_OUTPUTS;
    bp_status rc = st->prepare(st, &have, ports, &n, err);
    return rc == BP_OK ? (int)n : -1;
}

static void alloc_outputs(env *e, bp_stage *st, int64_t B, int64_t C, bp_tensor **outs) {
    bp_error err = BP_ERROR_INIT;
    bp_port ports[BP_MAX_OUTPUTS];
    CHECK(prepare(st, B, C, ports, &err) == N_OUT);
    for (uint32_t i = 0; i < N_OUT; i++) outs[i] = new_t(e, ports[i].spec.ndim, ports[i].spec.shape);
}

static void free_outputs(bp_tensor **outs) {
    for (int i = 0; i < N_OUT; i++) bp_tensor_free(outs[i]), outs[i] = NULL;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

static const bp_trainable *trainable(bp_stage *st) {
    return st->get_extension ? st->get_extension(st, BP_EXT_TRAINABLE_ID) : NULL;
}

static bp_train_param param(bp_stage *st, const char *name) {
    const bp_trainable *tr = trainable(st);
    bp_train_param p;
    memset(&p, 0, sizeof p);
    bp_error err = BP_ERROR_INIT;
    for (uint32_t i = 0; tr && i < tr->param_count(st); i++) {
        CHECK_OK(tr->param_at(st, i, &p, &err), &err);
        if (!strcmp(p.name, name)) return p;
    }
    memset(&p, 0, sizeof p);
    return p;
}

static void test_descriptor(env *e) {
    const bp_descriptor *d = e->comp->desc;
    const char *names[] = {"weights", "dim",     "depth",     "heads",     "mlp_ratio", "n_classes",
                           "input",   "filters", "freq_pool", "time_pool", "init_seed", "head_init_std", "drop_path", "precision"};
    const uint32_t n_names = sizeof names / sizeof names[0];
    CHECK(d->n_params == n_names);
    for (uint32_t i = 0; i < d->n_params && i < n_names; i++) {
        CHECKF(!strcmp(d->params[i].name, names[i]), "param %u is %s", i, d->params[i].name);
        CHECK(d->params[i].help && strlen(d->params[i].help) > 10);
    }
    struct {
        const char *kv[3];
        const char *msg;
    } bad[] = {
        {{"dim=30", "heads=4", NULL}, "'dim'"},
        {{"freq_pool=[4, 4]", NULL, NULL}, "same length"},
        {{"freq_pool=[4, 4, 2.5]", NULL, NULL}, "whole numbers"},
        {{"freq_pool=[4, 4, 16]", NULL, NULL}, "conv block 2"},
        {{"freq_pool=[1, 1, 1, 1, 1, 1, 1, 1, 1]", "time_pool=[1, 1, 1, 1, 1, 1, 1, 1, 1]", NULL}, "1 to 8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bp_error err = BP_ERROR_INIT;
        bp_paramset *ps = NULL;
        uint32_t n = 0;
        while (n < 3 && bad[i].kv[n]) n++;
        bp_stage *st = make(e, bad[i].kv, n, &ps, &err);
        CHECKF(st == NULL && strstr(err.msg, bad[i].msg), "case %zu: %s", i, err.msg);
        drop(st, ps);
    }
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps = NULL;
    const char *badin[] = {"input=\"stereo\""};
    CHECK(make(e, badin, 1, &ps, &err) == NULL);
    /* no backend */
    void *inst = NULL;
    CHECK_OK(bp_paramset_from_strings(d, NULL, 0, &ps, &err), &err);
    CHECK(bp_registry_create(e->reg, e->comp, bp_paramset_params(ps), NULL, &inst, &err) != BP_OK);
    CHECK(strstr(err.msg, "backend") != NULL);
    bp_paramset_free(ps);
}

static void test_variants(env *e) {
    const char *inputs[3] = {"input=\"melipd\"", "input=\"mel_binaural\"", "input=\"mel_mono\""};
    const int64_t maps[3] = {4, 2, 1};
    for (int v = 0; v < 3; v++) {
        bp_error err = BP_ERROR_INIT;
        bp_paramset *ps;
        /* default pools: 1024/2 = 512 frame tokens, 128/32 = 4 bins */
        const char *kv[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", inputs[v], "filters=3"};
        bp_stage *st = make(e, kv, 6, &ps, &err);
        CHECKF(st != NULL, "%s", err.msg);
        if (!st) continue;
        bp_spec want = bp_spec_any();
        CHECK_OK(st->input_spec(st, &want, &err), &err);
        CHECK(want.ndim == 4 && want.shape[0] == BP_DIM_ANY && want.shape[1] == maps[v] && want.shape[2] == 1024 &&
              want.shape[3] == 128);
        bp_train_param p = param(st, "conv_blocks.0.conv.weight");
        CHECK(p.value && p.value->shape[0] == 3 && p.value->shape[1] == maps[v] && p.value->shape[2] == 3 &&
              p.value->shape[3] == 3);
        p = param(st, "bridge.weight");
        CHECK(p.value && p.value->shape[0] == 16 && p.value->shape[1] == 3 * 4);
        p = param(st, "pos_embed");
        CHECK(p.value && p.value->ndim == 3 && p.value->shape[1] == 512 && p.value->shape[2] == 16);
        bp_port ports[BP_MAX_OUTPUTS];
        CHECK(prepare(st, 2, maps[v], ports, &err) == N_OUT);
        CHECK(!strcmp(ports[OUT_TOKENS].name, "tokens") && ports[OUT_TOKENS].spec.shape[1] == 515 &&
              !ports[OUT_TOKENS].optional);
        CHECK(!strcmp(ports[OUT_CLASS].name, "logits_class") && ports[OUT_CLASS].spec.shape[1] == 5);
        CHECK(!strcmp(ports[OUT_DIST].name, "logits_distance") && ports[OUT_DIST].spec.shape[1] == 21);
        CHECK(!strcmp(ports[OUT_AZI].name, "logits_azimuth") && ports[OUT_AZI].spec.shape[1] == 360);
        CHECK(!strcmp(ports[OUT_ELE].name, "logits_elevation") && ports[OUT_ELE].spec.shape[1] == 180);
        /* a wrong map count / size is refused, naming both numbers */
        const int64_t wrong[4] = {2, maps[v] + 1, 1024, 128}, small[4] = {2, maps[v], 1000, 128};
        bp_tensor pw = bp_tensor_view(BP_DTYPE_F32, 4, wrong, NULL), ps2 = bp_tensor_view(BP_DTYPE_F32, 4, small, NULL);
        bp_spec hw = bp_spec_of(&pw, 0.0), hs = bp_spec_of(&ps2, 0.0);
        uint32_t n = BP_MAX_OUTPUTS;
        CHECK(st->prepare(st, &hw, ports, &n, &err) == BP_ERR_SPEC);
        char want_msg[64];
        snprintf(want_msg, sizeof want_msg, "needs %lld", (long long)maps[v]);
        CHECKF(strstr(err.msg, want_msg) != NULL, "%s", err.msg);
        n = BP_MAX_OUTPUTS;
        CHECK(st->prepare(st, &hs, ports, &n, &err) == BP_ERR_SPEC && strstr(err.msg, "1024x128"));
        drop(st, ps);
    }
}

static void test_eval(env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps, *ps2, *ps3;
    const char *kv[] = {"dim=32", "depth=2", "heads=2", "n_classes=10", "init_seed=7", SMALL};
    bp_stage *st = make(e, kv, 8, &ps, &err);
    CHECKF(st != NULL, "%s", err.msg);
    if (!st) return;
    const int64_t B = 3, sx[4] = {B, 4, 1024, 128}, s1[4] = {1, 4, 1024, 128};
    bp_tensor *x = new_t(e, 4, sx), *outs[N_OUT], *outs1[N_OUT];
    fill(x, 1, 2.0);
    alloc_outputs(e, st, B, 4, outs);
    CHECK(outs[OUT_TOKENS]->shape[1] == 3 + SMALL_FRAMES && outs[OUT_TOKENS]->shape[2] == 32 &&
          outs[OUT_CLASS]->shape[1] == 10 && outs[OUT_DIST]->shape[1] == 21 && outs[OUT_AZI]->shape[1] == 360 &&
          outs[OUT_ELE]->shape[1] == 180);
    CHECK_OK(st->process(st, x, outs, N_OUT, &err), &err);
    CHECK_OK(bp_tensor_check_finite(outs[OUT_TOKENS], "tokens", &err), &err);
    float *all[N_OUT];
    for (int i = 0; i < N_OUT; i++) all[i] = read_all(outs[i]);
    /* logits requested in part (NULL outputs are skipped, the others unchanged) */
    bp_tensor *partial[N_OUT] = {outs[0], NULL, NULL, outs[OUT_AZI], NULL};
    CHECK_OK(bp_op_fill(e->be, outs[OUT_AZI], 0.0f, &err), &err);
    CHECK_OK(st->process(st, x, partial, N_OUT, &err), &err);
    float *azi = read_all(outs[OUT_AZI]);
    CHECK(max_abs_diff(azi, all[OUT_AZI], B * 360) == 0.0);
    free(azi);
    /* sample 1 alone = row 1 of the batch */
    float *xv = read_all(x);
    bp_tensor *x1 = new_t(e, 4, s1);
    write_all(x1, xv + 4 * 1024 * 128);
    alloc_outputs(e, st, 1, 4, outs1);
    CHECK_OK(st->process(st, x1, outs1, N_OUT, &err), &err);
    double worst = 0;
    for (int i = 0; i < N_OUT; i++) {
        float *one = read_all(outs1[i]);
        int64_t n = bp_tensor_numel(outs1[i]);
        double d = max_abs_diff(one, all[i] + n, n), m = 0;
        for (int64_t k = 0; k < n; k++) m = fmax(m, fabs(one[k]));
        worst = fmax(worst, d / (m > 0 ? m : 1));
        free(one);
    }
    printf("eval: batch of 3 vs sample alone: rel diff %.2e\n", worst);
    CHECK(worst < 1e-5);
    /* the same seed gives the same model (bit-identical outputs), another seed another */
    bp_stage *st2 = make(e, kv, 8, &ps2, &err);
    const char *kv3[] = {"dim=32", "depth=2", "heads=2", "n_classes=10", "init_seed=8", SMALL};
    bp_stage *st3 = make(e, kv3, 8, &ps3, &err);
    CHECK(st2 && st3);
    if (st2 && st3) {
        CHECK_OK(st2->process(st2, x, outs, N_OUT, &err), &err);
        for (int i = 0; i < N_OUT; i++) {
            float *again = read_all(outs[i]);
            CHECK(max_abs_diff(again, all[i], bp_tensor_numel(outs[i])) == 0.0);
            free(again);
        }
        CHECK_OK(st3->process(st3, x, outs, N_OUT, &err), &err);
        float *other = read_all(outs[OUT_TOKENS]);
        CHECK(max_abs_diff(other, all[OUT_TOKENS], bp_tensor_numel(outs[OUT_TOKENS])) > 1e-3);
        free(other);
    }
    /* initialisation: cls N(0, 0.02), heads 2e-5, conv U(±1/√36), pos_embed row t = sincos(t) */
    bp_train_param pc = param(st, "cls_tokens"), ph = param(st, "azimuth_head.weight"), pp = param(st, "pos_embed"),
                   pw = param(st, "conv_blocks.0.conv.weight");
    float *c = read_all(pc.value), *h = read_all(ph.value), *pe = read_all(pp.value), *w = read_all(pw.value);
    double sc = 0, sh = 0, wmax = 0;
    for (int i = 0; i < 96; i++) sc += (double)c[i] * c[i];
    for (int i = 0; i < 360 * 32; i++) sh += (double)h[i] * h[i];
    for (int i = 0; i < 4 * 4 * 9; i++) wmax = fmax(wmax, fabs(w[i]));
    sc = sqrt(sc / 96), sh = sqrt(sh / (360 * 32));
    printf("init: cls_tokens std %.4f (0.02), azimuth_head std %.2e (2e-5), conv max %.3f (<= 1/6)\n", sc, sh, wmax);
    CHECK(sc > 0.012 && sc < 0.028 && sh > 1.5e-5 && sh < 2.5e-5 && wmax <= 1.0 / 6.0 && wmax > 0.12);
    const float *r5 = pe + 5 * 32;
    CHECK(fabs(r5[0] - sin(5.0)) < 1e-6 && fabs(r5[16] - cos(5.0)) < 1e-6 &&
          fabs(r5[3] - sin(5.0 * pow(10000.0, -3.0 / 16.0))) < 1e-6);
    CHECK(pe[0] == 0.0f && pe[16] == 1.0f);
    free(c);
    free(h);
    free(pe);
    free(w);
    for (int i = 0; i < N_OUT; i++) free(all[i]);
    free(xv);
    free_outputs(outs);
    free_outputs(outs1);
    bp_tensor_free(x);
    bp_tensor_free(x1);
    drop(st, ps);
    drop(st2, ps2);
    drop(st3, ps3);
}

static void test_trainable_table(env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps;
    const char *kv[] = {"dim=16", "depth=3", "heads=2", "n_classes=5", SMALL};
    bp_stage *st = make(e, kv, 7, &ps, &err);
    CHECK(st != NULL);
    if (!st) return;
    const bp_trainable *tr = trainable(st);
    CHECK(tr && tr->struct_size == sizeof *tr);
    if (!tr) {
        drop(st, ps);
        return;
    }
    CHECK(tr->n_layers(st) == 5);
    /* pos, cls, 3 conv blocks x (conv 2 + bn 5), bridge 2, 3 blocks x 12, 3 norms x 2, 4 heads x 2 */
    CHECK(tr->param_count(st) == 2 + 21 + 2 + 36 + 6 + 8);
    const char *first[] = {"pos_embed",
                           "cls_tokens",
                           "conv_blocks.0.conv.weight",
                           "conv_blocks.0.conv.bias",
                           "conv_blocks.0.bn.weight",
                           "conv_blocks.0.bn.bias",
                           "conv_blocks.0.bn.running_mean",
                           "conv_blocks.0.bn.running_var",
                           "conv_blocks.0.bn.num_batches_tracked",
                           "conv_blocks.1.conv.weight"};
    bp_train_param p;
    for (uint32_t i = 0; i < sizeof first / sizeof first[0]; i++) {
        CHECK_OK(tr->param_at(st, i, &p, &err), &err);
        CHECKF(!strcmp(p.name, first[i]), "param %u is %s", i, p.name);
    }
    CHECK_OK(tr->param_at(st, 23, &p, &err), &err);
    CHECK(!strcmp(p.name, "bridge.weight"));
    CHECK_OK(tr->param_at(st, tr->param_count(st) - 1, &p, &err), &err);
    CHECK(!strcmp(p.name, "elevation_head.bias"));
    CHECK(tr->param_at(st, tr->param_count(st), &p, &err) == BP_ERR_NOT_FOUND);
    struct {
        const char *name;
        int trainable, decay, layer;
    } want[] = {{"pos_embed", 0, 0, 0},
                {"cls_tokens", 1, 0, 4},
                {"conv_blocks.0.conv.weight", 1, 1, 0},
                {"conv_blocks.2.conv.bias", 1, 0, 0},
                {"conv_blocks.1.bn.weight", 1, 0, 0},
                {"conv_blocks.1.bn.running_mean", 0, 0, 0},
                {"conv_blocks.2.bn.num_batches_tracked", 0, 0, 0},
                {"bridge.weight", 1, 1, 0},
                {"bridge.bias", 1, 0, 0},
                {"blocks.0.attn.qkv.weight", 1, 1, 1},
                {"blocks.2.mlp.fc2.bias", 1, 0, 3},
                {"blocks.1.norm2.weight", 1, 0, 2},
                {"dis_norm.bias", 1, 0, 4},
                {"head.weight", 1, 1, 4},
                {"elevation_head.weight", 1, 1, 4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        p = param(st, want[i].name);
        CHECKF(p.name && p.trainable == want[i].trainable && p.decay == want[i].decay && p.layer_id == want[i].layer &&
                   (p.grad != NULL) == want[i].trainable,
               "%s: trainable %d decay %d layer %d", want[i].name, p.trainable, p.decay, p.layer_id);
    }
    p = param(st, "conv_blocks.0.bn.num_batches_tracked");
    CHECK(p.value && p.value->dtype == BP_DTYPE_I64 && p.value->ndim == 0);
    drop(st, ps);
}

/* L = Σ r ⊙ logits (all four heads) + Σ r_tok ⊙ tokens, in double. */
static double project(bp_tensor **outs, float *const *r) {
    double s = 0;
    for (int i = 0; i < N_OUT; i++) {
        float *v = read_all(outs[i]);
        for (int64_t k = 0; k < bp_tensor_numel(outs[i]); k++) s += (double)v[k] * r[i][k];
        free(v);
    }
    return s;
}

static int64_t read_i64(const bp_tensor *t) {
    int64_t v = -1;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_tensor_read(t, &v, sizeof v, &err), &err);
    return v;
}

/* The finite-difference comparison of one tensor's gradient.
 * directional: a step h along u = g / max|g| (every entry at once: the
 * signal Σ g·u = Σ g²/max|g| stands far above the rounding noise of L);
 * otherwise single entries (the up to 3 largest gradients) with step h. */
static double fd_one(bp_stage *st, bp_tensor *x, const bp_train_step *step, bp_tensor **touts, float *const *r,
                     bp_tensor *val, const bp_tensor *grad, int directional, double h, int n_entries,
                     const char *name) {
    bp_error err = BP_ERROR_INIT;
    const bp_trainable *tr = trainable(st);
    float *v = read_all(val), *g = read_all(grad);
    const int64_t n = bp_tensor_numel(val);
    double gmax = 0, rel;
    for (int64_t k = 0; k < n; k++) gmax = fmax(gmax, fabs(g[k]));
    if (directional) {
        float *xp = malloc((size_t)n * sizeof *xp);
        double dir = 0, l[2];
        for (int64_t k = 0; k < n; k++) dir += (double)g[k] * g[k] / gmax;
        for (int sgn = 0; sgn < 2; sgn++) {
            for (int64_t k = 0; k < n; k++) xp[k] = v[k] + (float)((sgn ? -h : h) * g[k] / gmax);
            write_all(val, xp);
            CHECK_OK(tr->forward(st, x, step, touts, N_OUT, &err), &err);
            l[sgn] = project(touts, r);
        }
        write_all(val, v);
        rel = fabs((l[0] - l[1]) / (2 * h) - dir) / fabs(dir);
        printf("    %-28s along the gradient (h %.0e): %.6e  fd err %.3e\n", name, h, dir, rel);
        free(xp);
    } else {
        int64_t pick[3] = {-1, -1, -1};
        double emax = 0;
        for (int j = 0; j < n_entries && j < 3; j++)
            for (int64_t k = 0; k < n; k++) {
                int used = 0;
                for (int q = 0; q < j; q++) used |= pick[q] == k;
                if (!used && (pick[j] < 0 || fabs(g[k]) > fabs(g[pick[j]]))) pick[j] = k;
            }
        for (int j = 0; j < 3; j++) {
            if (pick[j] < 0) continue;
            const float keep = v[pick[j]];
            double l[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                v[pick[j]] = keep + (float)(sgn ? -h : h);
                write_all(val, v);
                CHECK_OK(tr->forward(st, x, step, touts, N_OUT, &err), &err);
                l[sgn] = project(touts, r);
            }
            v[pick[j]] = keep;
            write_all(val, v);
            emax = fmax(emax, fabs((l[0] - l[1]) / (2 * h) - g[pick[j]]));
        }
        rel = gmax > 0 ? emax / gmax : INFINITY;
        printf("    %-28s max|grad| %.3e  fd err %.3e\n", name, gmax, rel);
    }
    free(v);
    free(g);
    return rel;
}

typedef struct fd_target {
    const char *name; /* a parameter, or "input" */
    int directional;
} fd_target;

/* A training step (forward with every augmentation on, backward of
 * L = Σ r ⊙ outputs) on a fresh model, then each target against finite
 * differences. Returns the worst error (each is also CHECKed against tol). */
static double grad_check(env *e, const char *label, const char *const *kv, uint32_t n_kv, int64_t frames,
                         float bn_shift, const fd_target *targets, size_t n_targets, double h_dir, double tol_dir,
                         double tol_entry) {
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps;
    bp_stage *st = make(e, kv, n_kv, &ps, &err);
    CHECKF(st != NULL, "%s", err.msg);
    if (!st) return INFINITY;
    const bp_trainable *tr = trainable(st);
    const int64_t B = 2, D = 16, sx[4] = {B, 4, 1024, 128};
    bp_tensor *x = new_t(e, 4, sx), *dx = new_t(e, 4, sx), *outs[N_OUT];
    fill(x, 2, 1.5);
    alloc_outputs(e, st, B, 4, outs);
    /* heads with visible weights (2e-5 would hide every path) */
    const char *bigger[] = {"head.weight", "distance_head.weight", "azimuth_head.weight", "elevation_head.weight"};
    for (int i = 0; i < 4; i++) fill(param(st, bigger[i]).value, 10 + i, 0.3);
    for (int i = 0; bn_shift != 0.0f && i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "conv_blocks.%d.bn.bias", i);
        CHECK_OK(bp_op_fill(e->be, param(st, name).value, bn_shift, &err), &err);
    }
    CHECK_OK(tr->set_training(st, 1, &err), &err);
    bp_train_step step;
    memset(&step, 0, sizeof step);
    step.struct_size = sizeof step;
    step.seed = 11;
    step.mask_t_prob = 0.25f;
    step.specaug_time = 192;
    step.specaug_freq = 48;
    step.drop_path = 0.5f; /* high, so that some branch is dropped for B = 2 */
    const int64_t stk[3] = {B, 3 + frames * 3 / 4, D};
    bp_tensor *tok = new_t(e, 3, stk);
    bp_tensor *touts[N_OUT] = {tok, outs[1], outs[2], outs[3], outs[4]};
    float *r[N_OUT] = {NULL};
    bp_tensor *dl[N_OUT] = {NULL};
    for (int i = 0; i < N_OUT; i++) {
        dl[i] = new_t(e, touts[i]->ndim, touts[i]->shape);
        fill(dl[i], 20 + (uint64_t)i, i == OUT_TOKENS ? 0.05 : 1.0);
        r[i] = read_all(dl[i]);
    }
    CHECK_OK(tr->zero_grad(st, &err), &err);
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    CHECK_OK(tr->backward(st, (const bp_tensor *const *)dl, N_OUT, dx, &err), &err);
    const int under_vg = getenv("BP_UNDER_VALGRIND") != NULL;
    printf("  %s (frame masking, SpecAugment, drop path on):\n", label);
    double worst = 0;
    /* under valgrind (memory checking, ~50x slower) every code path has run
     * once above: compare the first two targets only */
    if (under_vg && n_targets > 2) n_targets = 2;
    for (size_t w = 0; w < n_targets; w++) {
        bp_tensor *val = x, *grad = dx;
        if (strcmp(targets[w].name, "input") != 0) {
            bp_train_param p = param(st, targets[w].name);
            val = p.value, grad = p.grad;
        }
        CHECKF(val && grad, "%s: no value/grad", targets[w].name);
        if (!val || !grad) continue;
        const int dir = targets[w].directional;
        const double h = dir ? h_dir : !strcmp(targets[w].name, "cls_tokens") ? 1e-3 : 1e-2;
        double rel = fd_one(st, x, &step, touts, r, val, grad, dir, h, under_vg ? 1 : 3, targets[w].name);
        CHECKF(rel <= (dir ? tol_dir : tol_entry), "%s: %s: fd err %g", label, targets[w].name, rel);
        worst = fmax(worst, rel);
    }
    printf("  %s: worst %.3e\n", label, worst);
    for (int i = 0; i < N_OUT; i++) {
        bp_tensor_free(dl[i]);
        free(r[i]);
    }
    bp_tensor_free(tok);
    bp_tensor_free(x);
    bp_tensor_free(dx);
    free_outputs(outs);
    drop(st, ps);
    return worst;
}

static void test_gradients(env *e) {
    /* 1. A kink-free configuration: pools of size 1 (no max-pool ties) and
     *    BatchNorm biases of +6 (ReLU inputs ≈ N(6, 1): no sign change under
     *    the step). The whole chain input → conv stack → bridge → blocks →
     *    heads then matches to O(h²) (measured: the conv-side errors fall
     *    ~9x per 3x smaller step down to h = 1e-3, where they are <= 3e-4). */
    const char *smooth[] = {"dim=16",    "depth=2",           "heads=2",           "n_classes=6", "init_seed=3",
                            "filters=4", "freq_pool=[1, 1, 1]", "time_pool=[1, 1, 1]"};
    const fd_target all[] = {{"input", 1},
                             {"conv_blocks.0.conv.weight", 1},
                             {"conv_blocks.1.bn.weight", 1},
                             {"conv_blocks.2.conv.weight", 1},
                             {"conv_blocks.2.bn.bias", 1},
                             {"cls_tokens", 0},
                             {"bridge.weight", 0},
                             {"bridge.bias", 0},
                             {"blocks.0.attn.qkv.weight", 0},
                             {"blocks.1.mlp.fc1.bias", 0},
                             {"doa_norm.weight", 0},
                             {"head.bias", 0}};
    grad_check(e, "smooth (1x1 pools, BN bias +6)", smooth, 8, 1024, 6.0f, all, sizeof all / sizeof all[0], 1e-3,
               FD_TOL_SMOOTH, 2e-3);
    /* 2. The default-like configuration with max pooling: a step moves some
     *    of the ~10^6 pooled values past a near-tie (an error of order h), so
     *    the conv side is held to a looser bound (a missing or wrong term is
     *    an error of order 1). */
    const char *pooled[] = {"dim=16", "depth=2", "heads=2", "n_classes=6", "init_seed=3", SMALL};
    const fd_target conv_side[] = {{"input", 1},
                                   {"conv_blocks.0.conv.weight", 1},
                                   {"conv_blocks.1.bn.weight", 1},
                                   {"conv_blocks.2.conv.weight", 1},
                                   {"bridge.weight", 0},
                                   {"blocks.0.attn.qkv.weight", 0}};
    grad_check(e, "pooled (4x4, 2x4, 2x2)", pooled, 8, SMALL_FRAMES, 0.0f, conv_side,
               sizeof conv_side / sizeof conv_side[0], 1e-3, FD_TOL_POOLED, 2e-3);
}

static void test_training(env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps;
    const char *kv[] = {"dim=16", "depth=2", "heads=2", "n_classes=6", "init_seed=3", SMALL};
    bp_stage *st = make(e, kv, 8, &ps, &err);
    CHECK(st != NULL);
    if (!st) return;
    const bp_trainable *tr = trainable(st);
    const int64_t B = 2, D = 16, sx[4] = {B, 4, 1024, 128};
    bp_tensor *x = new_t(e, 4, sx), *dx = new_t(e, 4, sx), *outs[N_OUT];
    fill(x, 2, 1.5);
    alloc_outputs(e, st, B, 4, outs);
    const char *bigger[] = {"head.weight", "distance_head.weight", "azimuth_head.weight", "elevation_head.weight"};
    for (int i = 0; i < 4; i++) fill(param(st, bigger[i]).value, 10 + i, 0.3);
    CHECK_OK(tr->set_training(st, 1, &err), &err);
    bp_train_step step;
    memset(&step, 0, sizeof step);
    step.struct_size = sizeof step;
    step.seed = 11;
    step.mask_t_prob = 0.25f;
    step.mask_f_prob = 0.5f; /* no frequency axis on frame tokens: ignored */
    step.specaug_time = 192;
    step.specaug_freq = 48;
    step.drop_path = 0.5f;
    /* masking keeps 48 of the 64 frames: a [B, 67, D] tokens output is refused */
    bp_status s = tr->forward(st, x, &step, outs, N_OUT, &err);
    CHECKF(s == BP_ERR_INVALID && strstr(err.msg, "tokens") && strstr(err.msg, "51"), "%s", err.msg);
    const int64_t stk[3] = {B, 3 + 48, D};
    bp_tensor *tok = new_t(e, 3, stk);
    bp_tensor *touts[N_OUT] = {tok, outs[1], outs[2], outs[3], outs[4]};
    bp_train_param nbt = param(st, "conv_blocks.1.bn.num_batches_tracked");
    const int64_t nbt0 = read_i64(nbt.value);
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    CHECK(read_i64(nbt.value) == nbt0 + 1);
    /* the same step seed gives the same result, another seed another */
    float *l1 = read_all(outs[OUT_AZI]);
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    float *l2 = read_all(outs[OUT_AZI]);
    CHECK(max_abs_diff(l1, l2, B * 360) == 0.0);
    step.seed = 12;
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    float *l3 = read_all(outs[OUT_AZI]);
    CHECK(max_abs_diff(l1, l3, B * 360) > 1e-6);
    free(l1);
    free(l2);
    free(l3);
    /* no masking: all 64 frames (mask_f alone changes nothing) */
    step.mask_t_prob = 0.0f;
    CHECK_OK(tr->forward(st, x, &step, outs, N_OUT, &err), &err);

    /* backward: the SpecAugment rows/columns get a zero input gradient; a
     * conv bias ahead of a training-mode BatchNorm is cancelled by the batch
     * mean (zero gradient up to rounding); without d_input the parameter
     * grads are the same */
    bp_tensor *dl[N_OUT] = {NULL};
    for (int i = OUT_CLASS; i < N_OUT; i++) {
        dl[i] = new_t(e, 2, outs[i]->shape);
        fill(dl[i], 30 + (uint64_t)i, 1.0);
    }
    CHECK_OK(tr->zero_grad(st, &err), &err);
    CHECK_OK(tr->forward(st, x, &step, outs, N_OUT, &err), &err);
    CHECK_OK(tr->backward(st, (const bp_tensor *const *)dl, N_OUT, dx, &err), &err);
    float *g = read_all(dx);
    int64_t zeros = 0;
    for (int64_t k = 0; k < bp_tensor_numel(dx); k++) zeros += g[k] == 0.0f;
    CHECK(zeros >= 2 * 4 * 128); /* at least one masked time row per map */
    free(g);
    bp_train_param pb = param(st, "conv_blocks.1.conv.bias"), pw = param(st, "conv_blocks.0.conv.weight");
    float *gb = read_all(pb.grad), *g1 = read_all(pw.grad);
    double mb = 0, mw = 0;
    for (int64_t k = 0; k < bp_tensor_numel(pb.grad); k++) mb = fmax(mb, fabs(gb[k]));
    for (int64_t k = 0; k < bp_tensor_numel(pw.grad); k++) mw = fmax(mw, fabs(g1[k]));
    printf("conv bias ahead of BatchNorm: max|grad| %.2e (weights %.2e)\n", mb, mw);
    CHECK(mw > 0 && mb < 1e-4 * mw);
    CHECK_OK(tr->zero_grad(st, &err), &err);
    CHECK_OK(tr->forward(st, x, &step, outs, N_OUT, &err), &err);
    CHECK_OK(tr->backward(st, (const bp_tensor *const *)dl, N_OUT, NULL, &err), &err);
    float *g2 = read_all(pw.grad);
    CHECK(max_abs_diff(g1, g2, bp_tensor_numel(pw.grad)) == 0.0);
    free(gb);
    free(g1);
    free(g2);
    /* backward errors */
    const int64_t sbad[4] = {B, 3, 1024, 128};
    bp_tensor *bad = new_t(e, 4, sbad);
    CHECK(tr->backward(st, (const bp_tensor *const *)dl, N_OUT, bad, &err) == BP_ERR_INVALID);
    CHECK(strstr(err.msg, "input gradient") != NULL);
    CHECK_OK(tr->set_training(st, 0, &err), &err);
    CHECK(tr->backward(st, (const bp_tensor *const *)dl, N_OUT, NULL, &err) == BP_ERR_INVALID);
    /* the training forwards updated the running statistics evaluation uses */
    bp_train_param rm = param(st, "conv_blocks.0.bn.running_mean");
    float *rmv = read_all(rm.value);
    double rsum = 0;
    for (int k = 0; k < 4; k++) rsum += fabs(rmv[k]);
    CHECK(rsum > 0);
    free(rmv);
    bp_tensor_free(bad);
    for (int i = 0; i < N_OUT; i++) bp_tensor_free(dl[i]);
    bp_tensor_free(tok);
    bp_tensor_free(x);
    bp_tensor_free(dx);
    free_outputs(outs);
    drop(st, ps);
}

/* Write every tensor of a stage's state (optionally renaming / dropping /
 * shrinking one) to a safetensors file. */
static void save_state_x(bp_stage *st, const char *path, const char *skip, const char *rename_from,
                         const char *rename_to, const char *shrink, const char *extra, int64_t extra_len) {
    bp_error err = BP_ERROR_INIT;
    const bp_trainable *tr = trainable(st);
    bp_st_writer *w = NULL;
    CHECK_OK(bp_st_writer_new(&w, &err), &err);
    uint32_t n = tr->param_count(st);
    void **bufs = calloc(n, sizeof *bufs);
    for (uint32_t i = 0; i < n; i++) {
        bp_train_param p;
        CHECK_OK(tr->param_at(st, i, &p, &err), &err);
        if (skip && !strcmp(p.name, skip)) continue;
        bufs[i] = malloc(bp_tensor_nbytes(p.value) ? bp_tensor_nbytes(p.value) : 1);
        CHECK_OK(bp_tensor_read(p.value, bufs[i], bp_tensor_nbytes(p.value), &err), &err);
        bp_tensor h = bp_tensor_view(p.value->dtype, p.value->ndim, p.value->shape, bufs[i]);
        if (shrink && !strcmp(p.name, shrink)) h.shape[h.ndim - 1]--;
        const char *name = rename_from && !strcmp(p.name, rename_from) ? rename_to : p.name;
        CHECK_OK(bp_st_writer_add(w, name, &h, &err), &err);
    }
    float xv[8] = {-20.0f, -21.0f, -22.0f, -23.0f, -24.0f, -25.0f, -26.0f, -27.0f};
    if (extra) {
        bp_tensor h = bp_tensor_view(BP_DTYPE_F32, 1, &extra_len, xv);
        CHECK_OK(bp_st_writer_add(w, extra, &h, &err), &err);
    }
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
    for (uint32_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
}

static void save_state(bp_stage *st, const char *path, const char *skip, const char *rename_from,
                       const char *rename_to, const char *shrink) {
    save_state_x(st, path, skip, rename_from, rename_to, shrink, NULL, 0);
}

static void test_weights(env *e) {
    bp_error err = BP_ERROR_INIT;
    char dir[] = "/tmp/bp_seldnet_unit_XXXXXX", good[256], bad[256], wg[300], wb[300];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    snprintf(wg, sizeof wg, "weights=\"%s\"", good);
    snprintf(wb, sizeof wb, "weights=\"%s\"", bad);
    bp_paramset *ps, *ps2, *ps3;
    const char *kv[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", "init_seed=21", SMALL};
    bp_stage *a = make(e, kv, 8, &ps, &err);
    CHECK(a != NULL);
    if (!a) return;
    /* one training step first, so the BatchNorm buffers are not at their defaults */
    const bp_trainable *tr = trainable(a);
    const int64_t sx[4] = {2, 4, 1024, 128};
    bp_tensor *x = new_t(e, 4, sx), *oa[N_OUT], *ob[N_OUT];
    fill(x, 5, 1.0);
    alloc_outputs(e, a, 2, 4, oa);
    CHECK_OK(tr->set_training(a, 1, &err), &err);
    CHECK_OK(tr->forward(a, x, NULL, oa, N_OUT, &err), &err);
    CHECK_OK(tr->set_training(a, 0, &err), &err);
    save_state(a, good, NULL, NULL, NULL, NULL);
    const char *kv2[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", "init_seed=99", SMALL, wg};
    bp_stage *b = make(e, kv2, 9, &ps2, &err);
    CHECKF(b != NULL, "%s", err.msg);
    if (b) {
        alloc_outputs(e, b, 2, 4, ob);
        CHECK_OK(a->process(a, x, oa, N_OUT, &err), &err);
        CHECK_OK(b->process(b, x, ob, N_OUT, &err), &err);
        for (int i = 0; i < N_OUT; i++) {
            float *va = read_all(oa[i]), *vb = read_all(ob[i]);
            CHECK(max_abs_diff(va, vb, bp_tensor_numel(oa[i])) == 0.0);
            free(va);
            free(vb);
        }
        bp_train_param na = param(a, "conv_blocks.0.bn.num_batches_tracked"),
                       nb = param(b, "conv_blocks.0.bn.num_batches_tracked");
        CHECK(read_i64(na.value) == 1 && read_i64(nb.value) == 1);
        free_outputs(ob);
    }
    free_outputs(oa);
    bp_tensor_free(x);
    /* the front end's normalisation statistics written by `batpipe train` (Spatial-AST's
     * names, one per log-mel map) are accepted; with the wrong size they are named */
    save_state_x(a, bad, NULL, NULL, NULL, NULL, "bn.running_mean", 2);
    const char *kvn[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", SMALL, wb};
    bp_stage *c = make(e, kvn, 8, &ps3, &err);
    CHECKF(c != NULL, "%s", err.msg);
    drop(c, ps3);
    save_state_x(a, bad, NULL, NULL, NULL, NULL, "bn.running_var", 3);
    c = make(e, kvn, 8, &ps3, &err);
    CHECKF(c == NULL && strstr(err.msg, "bn.running_var F32[3] (expected F32[2])"), "%s", err.msg);
    /* head.bias missing, blocks.0.norm1.weight renamed, bridge.weight mis-shaped */
    save_state(a, bad, "head.bias", "blocks.0.norm1.weight", "blocks.0.norm1.weigth", "bridge.weight");
    const char *kv3[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", SMALL, wb};
    c = make(e, kv3, 8, &ps3, &err);
    CHECK(c == NULL);
    printf("loader: %s\n", err.msg);
    CHECK(strstr(err.msg, "parameter 'weights'") != NULL && strstr(err.msg, "seldnet") != NULL);
    CHECK(strstr(err.msg, "missing: blocks.0.norm1.weight, head.bias") != NULL);
    CHECK(strstr(err.msg, "bridge.weight F32[16,15] (expected F32[16,16])") != NULL);
    CHECK(strstr(err.msg, "unexpected: blocks.0.norm1.weigth") != NULL);
    /* a model with other sizes: every mismatch is reported by name */
    const char *kv4[] = {"dim=16", "depth=2", "heads=2", "n_classes=5", "filters=4", "freq_pool=[4, 4, 2]",
                         "time_pool=[2, 2, 2]", wg};
    c = make(e, kv4, 8, &ps3, &err);
    printf("loader (other sizes): %s\n", err.msg);
    CHECK(c == NULL && strstr(err.msg, "missing: blocks.1.norm1.weight") &&
          strstr(err.msg, "pos_embed F32[1,64,16] (expected F32[1,128,16])"));
    drop(a, ps);
    drop(b, ps2);
    unlink(good);
    unlink(bad);
    rmdir(dir);
}

int main(void) {
    bp_error err = BP_ERROR_INIT;
    env e = {NULL, NULL, NULL};
    CHECK_OK(bp_registry_new(NULL, &e.reg, &err), &err);
    CHECK_OK(bp_registry_scan_default(e.reg, NULL, &err), &err);
    const char *kv[] = {"threads=2"};
    bp_paramset *bps = NULL;
    const bp_component_info *cpu = bp_registry_find(e.reg, BP_KIND_BACKEND, "cpu");
    if (!cpu) TEST_SKIP("no cpu backend");
    CHECK_OK(bp_paramset_from_strings(cpu->desc, kv, 1, &bps, &err), &err);
    CHECK_OK(bp_registry_create_backend(e.reg, "cpu", bp_paramset_params(bps), &e.be, &err), &err);
    e.comp = bp_registry_find(e.reg, BP_KIND_ENCODER, "seldnet");
    CHECKF(e.comp != NULL, "seldnet not found");
    if (!e.be || !e.comp) return TEST_RESULT();
    test_descriptor(&e);
    test_variants(&e);
    test_eval(&e);
    test_trainable_table(&e);
    test_training(&e);
    test_gradients(&e);
    test_weights(&e);
    bp_backend_free(e.be);
    bp_paramset_free(bps);
    bp_registry_free(e.reg);
    return TEST_RESULT();
}
