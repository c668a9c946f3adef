/* spatial_ast plugin (through the registry, random init, small sizes):
 * declared parameters, creation errors, spec negotiation (maps per `input`
 * variant, frame/mel sizes), eval forward (finite, batch-independent,
 * seed-determined), the official initialisation's statistics and sin-cos
 * pos_embed, the trainable table (order, flags, layer ids), training
 * forward with token masking / SpecAugment / drop path (shapes, seed
 * determinism), whole-model gradients with all augmentations on against
 * finite differences, and the strict weight loader (round trip; missing,
 * renamed and mis-shaped tensors each reported by name). */
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

/* Outputs for a prepared batch. */
static void alloc_outputs(env *e, bp_stage *st, int64_t B, int64_t C, bp_tensor **outs) {
    bp_error err = BP_ERROR_INIT;
    const int64_t s[4] = {B, C, 1024, 128};
    bp_tensor probe = bp_tensor_view(BP_DTYPE_F32, 4, s, NULL);
    bp_spec have = bp_spec_of(&probe, 0.0);
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n = BP_MAX_OUTPUTS;
    CHECK_OK(st->prepare(st, &have, ports, &n, &err), &err);
    CHECK(n == N_OUT);
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
    const char *names[] = {"weights", "dim", "depth", "heads", "mlp_ratio", "n_classes", "input", "init_seed",
                           "head_init_std", "drop_path", "precision"};
    CHECK(d->n_params == 11);
    for (uint32_t i = 0; i < d->n_params && i < 11; i++) {
        CHECK(!strcmp(d->params[i].name, names[i]));
        CHECK(d->params[i].help && strlen(d->params[i].help) > 10);
    }
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps = NULL;
    const char *bad[] = {"dim=30", "heads=4"};
    CHECK(make(e, bad, 2, &ps, &err) == NULL);
    CHECK(strstr(err.msg, "'dim'") != NULL);
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
        const char *kv[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", inputs[v]};
        bp_stage *st = make(e, kv, 5, &ps, &err);
        CHECKF(st != NULL, "%s", err.msg);
        if (!st) continue;
        bp_spec want = bp_spec_any();
        CHECK_OK(st->input_spec(st, &want, &err), &err);
        CHECK(want.ndim == 4 && want.shape[0] == BP_DIM_ANY && want.shape[1] == maps[v] && want.shape[2] == 1024 &&
              want.shape[3] == 128);
        bp_train_param p = param(st, "conv_downsample.0.weight");
        CHECK(p.value && p.value->shape[0] == 1 && p.value->shape[1] == maps[v] && p.value->shape[2] == 3);
        /* a wrong map count / size is refused, naming both numbers */
        const int64_t wrong[4] = {2, maps[v] + 1, 1024, 128}, small[4] = {2, maps[v], 1000, 128};
        bp_tensor pw = bp_tensor_view(BP_DTYPE_F32, 4, wrong, NULL), ps2 = bp_tensor_view(BP_DTYPE_F32, 4, small, NULL);
        bp_spec hw = bp_spec_of(&pw, 0.0), hs = bp_spec_of(&ps2, 0.0);
        bp_port ports[BP_MAX_OUTPUTS];
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
    const char *kv[] = {"dim=32", "depth=2", "heads=2", "n_classes=10", "init_seed=7"};
    bp_stage *st = make(e, kv, 5, &ps, &err);
    CHECKF(st != NULL, "%s", err.msg);
    if (!st) return;
    const int64_t B = 3, sx[4] = {B, 4, 1024, 128}, s1[4] = {1, 4, 1024, 128};
    bp_tensor *x = new_t(e, 4, sx), *outs[N_OUT], *outs1[N_OUT];
    fill(x, 1, 2.0);
    alloc_outputs(e, st, B, 4, outs);
    CHECK(outs[OUT_TOKENS]->shape[1] == 515 && outs[OUT_TOKENS]->shape[2] == 32 && outs[OUT_CLASS]->shape[1] == 10 &&
          outs[OUT_DIST]->shape[1] == 21 && outs[OUT_AZI]->shape[1] == 360 && outs[OUT_ELE]->shape[1] == 180);
    CHECK_OK(st->process(st, x, outs, N_OUT, &err), &err);
    CHECK_OK(bp_tensor_check_finite(outs[OUT_TOKENS], "tokens", &err), &err);
    /* logits only requested in part (NULL outputs are skipped) */
    bp_tensor *partial[N_OUT] = {outs[0], NULL, NULL, outs[OUT_AZI], NULL};
    CHECK_OK(st->process(st, x, partial, N_OUT, &err), &err);
    /* sample 1 alone = row 1 of the batch */
    float *xv = read_all(x), *all[N_OUT];
    for (int i = 0; i < N_OUT; i++) all[i] = read_all(outs[i]);
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
    /* the same seed gives the same model, another seed another */
    bp_stage *st2 = make(e, kv, 5, &ps2, &err);
    const char *kv3[] = {"dim=32", "depth=2", "heads=2", "n_classes=10", "init_seed=8"};
    bp_stage *st3 = make(e, kv3, 5, &ps3, &err);
    CHECK(st2 && st3);
    if (st2 && st3) {
        CHECK_OK(st2->process(st2, x, outs, N_OUT, &err), &err);
        float *again = read_all(outs[OUT_TOKENS]);
        CHECK(max_abs_diff(again, all[OUT_TOKENS], bp_tensor_numel(outs[OUT_TOKENS])) == 0.0);
        free(again);
        CHECK_OK(st3->process(st3, x, outs, N_OUT, &err), &err);
        float *other = read_all(outs[OUT_TOKENS]);
        CHECK(max_abs_diff(other, all[OUT_TOKENS], bp_tensor_numel(outs[OUT_TOKENS])) > 1e-3);
        free(other);
    }
    /* official init: cls N(0, 0.02), heads 2e-5, sin-cos pos_embed (row 9 = [sincos(8), sincos(0)]) */
    bp_train_param pc = param(st, "cls_tokens"), ph = param(st, "azimuth_head.weight"), pp = param(st, "pos_embed");
    float *c = read_all(pc.value), *h = read_all(ph.value), *pe = read_all(pp.value);
    double sc = 0, sh = 0;
    for (int i = 0; i < 96; i++) sc += (double)c[i] * c[i];
    for (int i = 0; i < 360 * 32; i++) sh += (double)h[i] * h[i];
    sc = sqrt(sc / 96), sh = sqrt(sh / (360 * 32));
    printf("init: cls_tokens std %.4f (0.02), azimuth_head std %.2e (2e-5)\n", sc, sh);
    CHECK(sc > 0.012 && sc < 0.028 && sh > 1.5e-5 && sh < 2.5e-5);
    const float *r9 = pe + 9 * 32;
    CHECK(fabs(r9[0] - sin(8.0)) < 1e-6 && fabs(r9[8] - cos(8.0)) < 1e-6 && r9[16] == 0.0f && r9[24] == 1.0f);
    CHECK(pe[0] == 0.0f && pe[31] == 0.0f);
    free(c);
    free(h);
    free(pe);
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
    const char *kv[] = {"dim=16", "depth=3", "heads=2", "n_classes=5"};
    bp_stage *st = make(e, kv, 4, &ps, &err);
    CHECK(st != NULL);
    if (!st) return;
    const bp_trainable *tr = trainable(st);
    CHECK(tr && tr->struct_size == sizeof *tr);
    if (!tr) return;
    CHECK(tr->n_layers(st) == 5);
    /* pos, cls, patch (2), 3 blocks x 12, head (2), conv, bn (5), 3 norms x 2, 3 heads x 2 */
    CHECK(tr->param_count(st) == 2 + 2 + 36 + 2 + 1 + 5 + 6 + 6);
    const char *first[] = {"pos_embed", "cls_tokens", "patch_embed.proj.weight", "patch_embed.proj.bias",
                           "blocks.0.norm1.weight"};
    bp_train_param p;
    for (uint32_t i = 0; i < 5; i++) {
        CHECK_OK(tr->param_at(st, i, &p, &err), &err);
        CHECKF(!strcmp(p.name, first[i]), "param %u is %s", i, p.name);
    }
    CHECK(tr->param_at(st, tr->param_count(st), &p, &err) == BP_ERR_NOT_FOUND);
    struct {
        const char *name;
        int trainable, decay, layer;
    } want[] = {{"pos_embed", 0, 0, 0},
                {"cls_tokens", 1, 1, 4},   /* decayed, as the official recipe */
                {"patch_embed.proj.weight", 1, 1, 0},
                {"patch_embed.proj.bias", 1, 0, 0},
                {"blocks.0.attn.qkv.weight", 1, 1, 1},
                {"blocks.2.mlp.fc2.bias", 1, 0, 3},
                {"blocks.1.norm2.weight", 1, 0, 2},
                {"head.weight", 1, 1, 4},
                {"conv_downsample.0.weight", 1, 1, 4},
                {"conv_downsample.1.weight", 1, 0, 4},
                {"conv_downsample.1.running_var", 0, 0, 4},
                {"conv_downsample.1.num_batches_tracked", 0, 0, 4},
                {"doa_norm.bias", 1, 0, 4},
                {"elevation_head.weight", 1, 1, 4}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        p = param(st, want[i].name);
        CHECKF(p.name && p.trainable == want[i].trainable && p.decay == want[i].decay && p.layer_id == want[i].layer &&
                   (p.grad != NULL) == want[i].trainable,
               "%s: trainable %d decay %d layer %d", want[i].name, p.trainable, p.decay, p.layer_id);
    }
    p = param(st, "conv_downsample.1.num_batches_tracked");
    CHECK(p.value && p.value->dtype == BP_DTYPE_I64 && p.value->ndim == 0);
    drop(st, ps);
}

/* L = Σ r ⊙ logits (all four heads), in double. */
static double project(bp_tensor **outs, float *const *r) {
    double s = 0;
    for (int i = OUT_CLASS; i < N_OUT; i++) {
        float *v = read_all(outs[i]);
        for (int64_t k = 0; k < bp_tensor_numel(outs[i]); k++) s += (double)v[k] * r[i][k];
        free(v);
    }
    return s;
}

static void test_training(env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps;
    const char *kv[] = {"dim=16", "depth=2", "heads=2", "n_classes=6", "init_seed=3"};
    bp_stage *st = make(e, kv, 5, &ps, &err);
    CHECK(st != NULL);
    if (!st) return;
    const bp_trainable *tr = trainable(st);
    const int64_t B = 2, D = 16, sx[4] = {B, 4, 1024, 128};
    bp_tensor *x = new_t(e, 4, sx), *dx = new_t(e, 4, sx), *outs[N_OUT];
    fill(x, 2, 1.5);
    alloc_outputs(e, st, B, 4, outs);
    /* heads with visible weights (the official 2e-5 would hide every path) */
    const char *bigger[] = {"head.weight", "distance_head.weight", "azimuth_head.weight", "elevation_head.weight"};
    for (int i = 0; i < 4; i++) fill(param(st, bigger[i]).value, 10 + i, 0.3);
    CHECK_OK(tr->set_training(st, 1, &err), &err);
    bp_train_step step;
    memset(&step, 0, sizeof step);
    step.struct_size = sizeof step;
    step.seed = 11;
    step.mask_t_prob = 0.25f;
    step.mask_f_prob = 0.25f;
    step.specaug_time = 192;
    step.specaug_freq = 48;
    step.drop_path = 0.5f; /* high, so that some branch is dropped for B = 2 */
    /* masking keeps 48 x 6 tokens: a [B, 515, D] tokens output is refused */
    bp_status s = tr->forward(st, x, &step, outs, N_OUT, &err);
    CHECK(s == BP_ERR_INVALID && strstr(err.msg, "tokens") && strstr(err.msg, "291"));
    const int64_t stk[3] = {B, 3 + 48 * 6, D};
    bp_tensor *tok = new_t(e, 3, stk);
    bp_tensor *touts[N_OUT] = {tok, outs[1], outs[2], outs[3], outs[4]};
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    float *l1 = read_all(outs[OUT_AZI]);
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    float *l2 = read_all(outs[OUT_AZI]);
    CHECK(max_abs_diff(l1, l2, B * 360) == 0.0);
    step.seed = 12;
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    float *l3 = read_all(outs[OUT_AZI]);
    CHECK(max_abs_diff(l1, l3, B * 360) > 1e-4);
    free(l1);
    free(l2);
    free(l3);
    step.seed = 11;

    /* gradients with every augmentation on vs finite differences */
    float *r[N_OUT] = {NULL};
    bp_tensor *dl[N_OUT] = {NULL};
    for (int i = OUT_CLASS; i < N_OUT; i++) {
        dl[i] = new_t(e, 2, outs[i]->shape);
        fill(dl[i], 20 + (uint64_t)i, 1.0);
        r[i] = read_all(dl[i]);
    }
    CHECK_OK(tr->zero_grad(st, &err), &err);
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    CHECK_OK(tr->backward(st, (const bp_tensor *const *)dl, N_OUT, dx, &err), &err);
    const int under_vg = getenv("BP_UNDER_VALGRIND") != NULL;
    const char *wrt[] = {"cls_tokens", "conv_downsample.0.weight", "conv_downsample.1.bias", "patch_embed.proj.bias",
                         "blocks.0.attn.qkv.weight", "blocks.1.mlp.fc1.bias", "doa_norm.weight", "input"};
    double worst = 0;
    for (size_t w = 0; w < sizeof wrt / sizeof wrt[0]; w++) {
        bp_tensor *val = NULL, *grad = NULL;
        if (!strcmp(wrt[w], "input")) {
            val = x, grad = dx;
        } else {
            bp_train_param p = param(st, wrt[w]);
            val = p.value, grad = p.grad;
        }
        if (!val || !grad) continue;
        float *v = read_all(val), *g = read_all(grad);
        int64_t n = bp_tensor_numel(val);
        double gmax = 0, emax = 0;
        for (int64_t k = 0; k < n; k++) gmax = fmax(gmax, fabs(g[k]));
        /* the entries with the largest gradients (most informative), up to 3 */
        int64_t pick[3] = {-1, -1, -1};
        for (int j = 0; j < (under_vg ? 1 : 3); j++)
            for (int64_t k = 0; k < n; k++) {
                int used = 0;
                for (int q = 0; q < j; q++) used |= pick[q] == k;
                if (!used && (pick[j] < 0 || fabs(g[k]) > fabs(g[pick[j]]))) pick[j] = k;
            }
        if (val == x) {
            /* The input: one pixel's gradient is tiny next to the rounding
             * noise of L, so check the directional derivative along a random
             * ±1 direction over every element instead: Σ g·u vs FD. */
            const double h = 1e-2;
            float *u = malloc((size_t)n * sizeof *u), *xp = malloc((size_t)n * sizeof *xp);
            double dir = 0, gsum = 0;
            for (int64_t k = 0; k < n; k++) {
                u[k] = ((k * 2654435761u) >> 7) & 1 ? 1.0f : -1.0f;
                dir += (double)g[k] * u[k];
                gsum += fabs((double)g[k]);
            }
            for (int64_t k = 0; k < n; k++) xp[k] = v[k] + (float)h * u[k];
            write_all(val, xp);
            CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
            double lp = project(outs, r);
            for (int64_t k = 0; k < n; k++) xp[k] = v[k] - (float)h * u[k];
            write_all(val, xp);
            CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
            double lm = project(outs, r);
            write_all(val, v);
            double rel = fabs((lp - lm) / (2 * h) - dir) / fabs(dir);
            printf("  whole model, augmented: %-28s directional derivative %.6e  fd err %.3e (Σ|g| %.3e)\n", "input",
                   dir, rel, gsum);
            CHECKF(rel < 2e-3, "input: directional fd err %g", rel);
            worst = fmax(worst, rel);
            free(u);
            free(xp);
            free(v);
            free(g);
            continue;
        }
        for (int j = 0; j < 3; j++) {
            if (pick[j] < 0) continue;
            /* cls tokens are O(0.02) and feed a LayerNorm: a smaller step */
            const double h = !strcmp(wrt[w], "cls_tokens") ? 1e-3 : 1e-2;
            float keep = v[pick[j]];
            v[pick[j]] = keep + (float)h;
            write_all(val, v);
            CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
            double lp = project(outs, r);
            v[pick[j]] = keep - (float)h;
            write_all(val, v);
            CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
            double lm = project(outs, r);
            v[pick[j]] = keep;
            write_all(val, v);
            emax = fmax(emax, fabs((lp - lm) / (2 * h) - g[pick[j]]));
        }
        double rel = gmax > 0 ? emax / gmax : INFINITY;
        printf("  whole model, augmented: %-28s max|grad| %.3e  fd err %.3e\n", wrt[w], gmax, rel);
        CHECKF(rel < 2e-3, "%s: fd err %g", wrt[w], rel);
        worst = fmax(worst, rel);
        free(v);
        free(g);
    }
    printf("whole-model finite differences (masking, SpecAugment, drop path on): worst %.3e\n", worst);
    /* backward errors */
    const int64_t sbad[4] = {B, 3, 1024, 128};
    bp_tensor *bad = new_t(e, 4, sbad);
    CHECK(tr->backward(st, (const bp_tensor *const *)dl, N_OUT, bad, &err) == BP_ERR_INVALID);
    CHECK(strstr(err.msg, "input gradient") != NULL);
    CHECK_OK(tr->set_training(st, 0, &err), &err);
    CHECK(tr->backward(st, (const bp_tensor *const *)dl, N_OUT, NULL, &err) == BP_ERR_INVALID);
    bp_tensor_free(bad);
    for (int i = 0; i < N_OUT; i++) {
        bp_tensor_free(dl[i]);
        free(r[i]);
    }
    bp_tensor_free(tok);
    bp_tensor_free(x);
    bp_tensor_free(dx);
    free_outputs(outs);
    drop(st, ps);
}

/* Write every tensor of a stage's state (optionally renaming / dropping /
 * reshaping one) to a safetensors file. */
static void save_state(bp_stage *st, const char *path, const char *skip, const char *rename_from,
                       const char *rename_to, const char *shrink) {
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
        bufs[i] = malloc(bp_tensor_nbytes(p.value));
        CHECK_OK(bp_tensor_read(p.value, bufs[i], bp_tensor_nbytes(p.value), &err), &err);
        bp_tensor h = bp_tensor_view(p.value->dtype, p.value->ndim, p.value->shape, bufs[i]);
        if (shrink && !strcmp(p.name, shrink)) h.shape[0]--;
        const char *name = rename_from && !strcmp(p.name, rename_from) ? rename_to : p.name;
        CHECK_OK(bp_st_writer_add(w, name, &h, &err), &err);
    }
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
    for (uint32_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
}

static void test_weights(env *e) {
    bp_error err = BP_ERROR_INIT;
    char dir[] = "/tmp/bp_sast_unit_XXXXXX", good[256], bad[256], wg[300], wb[300];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    snprintf(wg, sizeof wg, "weights=\"%s\"", good);
    snprintf(wb, sizeof wb, "weights=\"%s\"", bad);
    bp_paramset *ps, *ps2, *ps3;
    const char *kv[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", "init_seed=21"};
    bp_stage *a = make(e, kv, 5, &ps, &err);
    CHECK(a != NULL);
    if (!a) return;
    save_state(a, good, NULL, NULL, NULL, NULL);
    const char *kv2[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", "init_seed=99", wg};
    bp_stage *b = make(e, kv2, 6, &ps2, &err);
    CHECKF(b != NULL, "%s", err.msg);
    if (b) {
        const int64_t sx[4] = {1, 4, 1024, 128};
        bp_tensor *x = new_t(e, 4, sx), *oa[N_OUT], *ob[N_OUT];
        fill(x, 5, 1.0);
        alloc_outputs(e, a, 1, 4, oa);
        alloc_outputs(e, b, 1, 4, ob);
        CHECK_OK(a->process(a, x, oa, N_OUT, &err), &err);
        CHECK_OK(b->process(b, x, ob, N_OUT, &err), &err);
        for (int i = 0; i < N_OUT; i++) {
            float *va = read_all(oa[i]), *vb = read_all(ob[i]);
            CHECK(max_abs_diff(va, vb, bp_tensor_numel(oa[i])) == 0.0);
            free(va);
            free(vb);
        }
        free_outputs(oa);
        free_outputs(ob);
        bp_tensor_free(x);
    }
    /* head.bias missing, blocks.0.norm1.weight renamed, fc_norm.bias mis-shaped */
    save_state(a, bad, "head.bias", "blocks.0.norm1.weight", "blocks.0.norm1.weigth", "fc_norm.bias");
    const char *kv3[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", wb};
    bp_stage *c = make(e, kv3, 5, &ps3, &err);
    CHECK(c == NULL);
    printf("loader: %s\n", err.msg);
    CHECK(strstr(err.msg, "parameter 'weights'") != NULL);
    CHECK(strstr(err.msg, "missing: blocks.0.norm1.weight, head.bias") != NULL);
    CHECK(strstr(err.msg, "fc_norm.bias F32[15] (expected F32[16])") != NULL);
    CHECK(strstr(err.msg, "unexpected: blocks.0.norm1.weigth") != NULL);
    /* a model of another size: every mismatch is reported */
    const char *kv4[] = {"dim=16", "depth=2", "heads=2", "n_classes=5", wg};
    c = make(e, kv4, 5, &ps3, &err);
    CHECK(c == NULL && strstr(err.msg, "missing: blocks.1.norm1.weight"));
    drop(a, ps);
    drop(b, ps2);
    unlink(good);
    unlink(bad);
    rmdir(dir);
}

/* The state plus the front end's log-mel BatchNorm statistics with bn_ch
 * channels, as `batpipe train` writes them into weights.safetensors. */
static void save_with_bn(bp_stage *st, const char *path, int64_t bn_ch) {
    bp_error err = BP_ERROR_INIT;
    const bp_trainable *tr = trainable(st);
    bp_st_writer *w = NULL;
    CHECK_OK(bp_st_writer_new(&w, &err), &err);
    uint32_t n = tr->param_count(st);
    void **bufs = calloc(n, sizeof *bufs);
    for (uint32_t i = 0; i < n; i++) {
        bp_train_param p;
        CHECK_OK(tr->param_at(st, i, &p, &err), &err);
        bufs[i] = malloc(bp_tensor_nbytes(p.value));
        CHECK_OK(bp_tensor_read(p.value, bufs[i], bp_tensor_nbytes(p.value), &err), &err);
        bp_tensor h = bp_tensor_view(p.value->dtype, p.value->ndim, p.value->shape, bufs[i]);
        CHECK_OK(bp_st_writer_add(w, p.name, &h, &err), &err);
    }
    float mean[2] = {-40.0f, -41.0f}, var[2] = {700.0f, 710.0f};
    bp_tensor tm = bp_tensor_view(BP_DTYPE_F32, 1, &bn_ch, mean), tv = bp_tensor_view(BP_DTYPE_F32, 1, &bn_ch, var);
    CHECK_OK(bp_st_writer_add(w, "bn.running_mean", &tm, &err), &err);
    CHECK_OK(bp_st_writer_add(w, "bn.running_var", &tv, &err), &err);
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
    for (uint32_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
}

/* bn.* belongs to the front end: one channel per ear, one for the monaural
 * variant; the encoder accepts it with that shape and rejects the other. */
static void test_weights_frontend_bn(env *e) {
    bp_error err = BP_ERROR_INIT;
    char dir[] = "/tmp/bp_sast_bn_XXXXXX", f1[256], f2[256], w1[300], w2[300];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(f1, sizeof f1, "%s/mono.safetensors", dir);
    snprintf(f2, sizeof f2, "%s/bin.safetensors", dir);
    snprintf(w1, sizeof w1, "weights=\"%s\"", f1);
    snprintf(w2, sizeof w2, "weights=\"%s\"", f2);
    const char *inputs[2] = {"input=\"mel_mono\"", "input=\"mel_binaural\""};
    const char *files[2] = {f1, f2}, *wparams[2] = {w1, w2};
    for (int k = 0; k < 2; k++) {
        bp_paramset *ps = NULL, *ps2 = NULL;
        const char *kv[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", inputs[k]};
        bp_stage *a = make(e, kv, 5, &ps, &err);
        CHECKF(a != NULL, "%s", err.msg);
        if (!a) continue;
        save_with_bn(a, files[k], k == 0 ? 1 : 2);
        const char *kv2[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", inputs[k], wparams[k]};
        bp_stage *b = make(e, kv2, 6, &ps2, &err);
        CHECKF(b != NULL, "%s: %s", inputs[k], err.msg);
        if (b) drop(b, ps2);
        /* the other variant's statistics do not fit */
        const char *kv3[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", inputs[k], wparams[1 - k]};
        save_with_bn(a, files[1 - k], k == 0 ? 2 : 1);
        b = make(e, kv3, 6, &ps2, &err);
        CHECKF(b == NULL && strstr(err.msg, "bn.running_mean"), "%s: %s", inputs[k], err.msg);
        if (b) drop(b, ps2);
        drop(a, ps);
        unlink(f1);
        unlink(f2);
    }
    rmdir(dir);
}

/* precision = "bf16": inference matmuls in BF16 stay within BF16 rounding of
 * the F32 model (and differ from it: the BF16 path ran); the cached BF16
 * weights follow a change made through the trainable interface; a training
 * forward is F32 either way; an unknown precision is refused. */
static double rel_diff(bp_tensor *a, bp_tensor *b) {
    float *va = read_all(a), *vb = read_all(b);
    int64_t n = bp_tensor_numel(a);
    double d = max_abs_diff(va, vb, n), m = 0;
    for (int64_t k = 0; k < n; k++) m = fmax(m, fabs(vb[k]));
    free(va);
    free(vb);
    return d / (m > 0 ? m : 1);
}

static void test_bf16(env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps32, *ps16, *psx;
    const char *k32[] = {"dim=32", "depth=2", "heads=2", "n_classes=10", "init_seed=5", "head_init_std=0.02"};
    const char *k16[] = {"dim=32", "depth=2", "heads=2", "n_classes=10", "init_seed=5", "head_init_std=0.02",
                         "precision=\"bf16\""};
    bp_stage *a = make(e, k32, 6, &ps32, &err), *b = make(e, k16, 7, &ps16, &err);
    CHECKF(a && b, "%s", err.msg);
    if (!a || !b) return;
    const int64_t B = 2, sx[4] = {B, 4, 1024, 128};
    bp_tensor *x = new_t(e, 4, sx), *oa[N_OUT], *ob[N_OUT];
    fill(x, 3, 2.0);
    alloc_outputs(e, a, B, 4, oa);
    alloc_outputs(e, b, B, 4, ob);
    CHECK_OK(a->process(a, x, oa, N_OUT, &err), &err);
    CHECK_OK(b->process(b, x, ob, N_OUT, &err), &err);
    double dt = rel_diff(ob[OUT_TOKENS], oa[OUT_TOKENS]), dc = rel_diff(ob[OUT_CLASS], oa[OUT_CLASS]);
    printf("bf16: tokens rel diff %.2e, class logits %.2e (vs F32)\n", dt, dc);
    CHECK(dt > 1e-6 && dt < 3e-2 && dc > 1e-6 && dc < 3e-2);
    /* change a weight through the trainable interface in both: the BF16 copy is renewed */
    const char *names[] = {"blocks.1.mlp.fc1.weight", "head.weight"};
    for (int i = 0; i < 2; i++) {
        bp_train_param pa = param(a, names[i]), pb = param(b, names[i]);
        fill(pa.value, 11 + (uint64_t)i, 0.5);
        fill(pb.value, 11 + (uint64_t)i, 0.5);
    }
    CHECK_OK(a->process(a, x, oa, N_OUT, &err), &err);
    CHECK_OK(b->process(b, x, ob, N_OUT, &err), &err);
    dc = rel_diff(ob[OUT_CLASS], oa[OUT_CLASS]);
    printf("bf16: after a weight change, class logits rel diff %.2e\n", dc);
    CHECK(dc > 1e-6 && dc < 3e-2);
    /* training forward: F32 in both (bit-identical) */
    const bp_trainable *ta = trainable(a), *tb = trainable(b);
    CHECK_OK(ta->set_training(a, 1, &err), &err);
    CHECK_OK(tb->set_training(b, 1, &err), &err);
    bp_train_step step;
    memset(&step, 0, sizeof step);
    step.struct_size = sizeof step;
    step.seed = 9;
    CHECK_OK(ta->forward(a, x, &step, oa, N_OUT, &err), &err);
    CHECK_OK(tb->forward(b, x, &step, ob, N_OUT, &err), &err);
    CHECK(rel_diff(ob[OUT_CLASS], oa[OUT_CLASS]) == 0.0);
    free_outputs(oa);
    free_outputs(ob);
    bp_tensor_free(x);
    drop(a, ps32);
    drop(b, ps16);
    const char *kx[] = {"dim=32", "depth=2", "heads=2", "n_classes=10", "precision=\"fp16\""};
    bp_stage *c = make(e, kx, 5, &psx, &err);
    CHECK(c == NULL);
    printf("bf16: unknown precision: %s\n", err.msg);
    CHECK(strstr(err.msg, "precision") != NULL);
    if (c) drop(c, psx);
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
    e.comp = bp_registry_find(e.reg, BP_KIND_ENCODER, "spatial_ast");
    CHECKF(e.comp != NULL, "spatial_ast not found");
    if (!e.be || !e.comp) return TEST_RESULT();
    test_descriptor(&e);
    test_variants(&e);
    test_eval(&e);
    test_trainable_table(&e);
    test_training(&e);
    test_weights(&e);
    test_weights_frontend_bn(&e);
    test_bf16(&e);
    bp_backend_free(e.be);
    bp_paramset_free(bps);
    bp_registry_free(e.reg);
    return TEST_RESULT();
}
