/* audiomae plugin (through the registry, random init, small sizes):
 * declared parameters and creation errors, spec negotiation (one fbank map
 * of 1024x128), eval forward (shapes, finite, batch-independent,
 * seed-determined, the initialisation and the (8, 64) sin-cos pos_embed
 * layout), the trainable table (AudioMAE's names and order, flags, MAE's
 * layer ids), training forward with 2-D patch masking / SpecAugment / drop
 * path (token count, seed determinism), whole-model gradients with every
 * augmentation on against finite differences (logits and tokens), and the
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

enum { OUT_TOKENS, OUT_CLASS, N_OUT };

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


/* Write every tensor of a stage's state (optionally renaming / dropping /
 * shrinking one) to a safetensors file. */
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
        bufs[i] = malloc(bp_tensor_nbytes(p.value) ? bp_tensor_nbytes(p.value) : 1);
        CHECK_OK(bp_tensor_read(p.value, bufs[i], bp_tensor_nbytes(p.value), &err), &err);
        bp_tensor h = bp_tensor_view(p.value->dtype, p.value->ndim, p.value->shape, bufs[i]);
        if (shrink && !strcmp(p.name, shrink)) h.shape[h.ndim - 1]--;
        const char *name = rename_from && !strcmp(p.name, rename_from) ? rename_to : p.name;
        CHECK_OK(bp_st_writer_add(w, name, &h, &err), &err);
    }
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
    for (uint32_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
}


static void test_descriptor(env *e) {
    const bp_descriptor *d = e->comp->desc;
    const char *names[] = {"weights", "dim", "depth", "heads", "mlp_ratio", "n_classes", "init_seed", "head_init_std", "drop_path", "precision"};
    const uint32_t n_names = sizeof names / sizeof names[0];
    CHECK(d->n_params == n_names);
    for (uint32_t i = 0; i < d->n_params && i < n_names; i++) {
        CHECKF(!strcmp(d->params[i].name, names[i]), "param %u is %s", i, d->params[i].name);
        CHECK(d->params[i].help && strlen(d->params[i].help) > 10);
    }
    CHECK(!strcmp(d->params[5].default_value, "527"));
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps = NULL;
    const char *bad[] = {"dim=30", "heads=5"};
    CHECK(make(e, bad, 2, &ps, &err) == NULL);
    CHECKF(strstr(err.msg, "'dim'") != NULL, "%s", err.msg);
    const char *bad2[] = {"dim=32", "heads=3"};
    CHECK(make(e, bad2, 2, &ps, &err) == NULL);
    /* no backend */
    void *inst = NULL;
    CHECK_OK(bp_paramset_from_strings(d, NULL, 0, &ps, &err), &err);
    CHECK(bp_registry_create(e->reg, e->comp, bp_paramset_params(ps), NULL, &inst, &err) != BP_OK);
    CHECK(strstr(err.msg, "backend") != NULL);
    bp_paramset_free(ps);
}

static void test_spec(env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps;
    const char *kv[] = {"dim=16", "depth=1", "heads=2", "n_classes=5"};
    bp_stage *st = make(e, kv, 4, &ps, &err);
    CHECKF(st != NULL, "%s", err.msg);
    if (!st) return;
    bp_spec want = bp_spec_any();
    CHECK_OK(st->input_spec(st, &want, &err), &err);
    CHECK(want.ndim == 4 && want.shape[0] == BP_DIM_ANY && want.shape[1] == 1 && want.shape[2] == 1024 &&
          want.shape[3] == 128);
    bp_port ports[BP_MAX_OUTPUTS];
    CHECK(prepare(st, 3, 1, ports, &err) == N_OUT);
    CHECK(!strcmp(ports[OUT_TOKENS].name, "tokens") && ports[OUT_TOKENS].spec.shape[0] == 3 &&
          ports[OUT_TOKENS].spec.shape[1] == 513 && ports[OUT_TOKENS].spec.shape[2] == 16 &&
          !ports[OUT_TOKENS].optional);
    CHECK(!strcmp(ports[OUT_CLASS].name, "logits_class") && ports[OUT_CLASS].spec.shape[1] == 5 &&
          ports[OUT_CLASS].optional);
    /* no spatial heads: two outputs only */
    for (int i = 0; i < N_OUT; i++) CHECK(strstr(ports[i].name, "azimuth") == NULL);
    /* the binaural maps (melipd) or another size are refused with a message */
    CHECK(prepare(st, 2, 4, ports, &err) < 0);
    CHECKF(strstr(err.msg, "needs 1") && strstr(err.msg, "fbank"), "%s", err.msg);
    const int64_t small[4] = {2, 1, 998, 128};
    bp_tensor p2 = bp_tensor_view(BP_DTYPE_F32, 4, small, NULL);
    bp_spec h2 = bp_spec_of(&p2, 0.0);
    uint32_t n = BP_MAX_OUTPUTS;
    CHECK(st->prepare(st, &h2, ports, &n, &err) == BP_ERR_SPEC);
    CHECKF(strstr(err.msg, "998x128") && strstr(err.msg, "1024x128"), "%s", err.msg);
    drop(st, ps);
}

static void test_eval(env *e) {
    bp_error err = BP_ERROR_INIT;
    bp_paramset *ps, *ps2, *ps3;
    const char *kv[] = {"dim=32", "depth=2", "heads=4", "n_classes=10", "init_seed=7"};
    bp_stage *st = make(e, kv, 5, &ps, &err);
    CHECKF(st != NULL, "%s", err.msg);
    if (!st) return;
    /* heads with visible weights (the fine-tuning init 2e-5 makes logits ≈ bias) */
    fill(param(st, "head.weight").value, 3, 0.3);
    const int64_t B = 3, sx[4] = {B, 1, 1024, 128}, s1[4] = {1, 1, 1024, 128};
    bp_tensor *x = new_t(e, 4, sx), *outs[N_OUT], *outs1[N_OUT];
    fill(x, 1, 2.0);
    alloc_outputs(e, st, B, 1, outs);
    CHECK_OK(st->process(st, x, outs, N_OUT, &err), &err);
    CHECK_OK(bp_tensor_check_finite(outs[OUT_TOKENS], "tokens", &err), &err);
    CHECK_OK(bp_tensor_check_finite(outs[OUT_CLASS], "logits", &err), &err);
    float *all[N_OUT];
    for (int i = 0; i < N_OUT; i++) all[i] = read_all(outs[i]);
    /* the logits are head(fc_norm(mean of tokens 1..512)): recompute from the tokens */
    {
        float *w = read_all(param(st, "head.weight").value), *bias = read_all(param(st, "head.bias").value);
        double worst = 0, lmax = 0;
        for (int64_t b = 0; b < B; b++) {
            double mean[32] = {0}, mu = 0, var = 0;
            for (int64_t n = 1; n < 513; n++)
                for (int d = 0; d < 32; d++) mean[d] += all[OUT_TOKENS][(b * 513 + n) * 32 + d] / 512.0;
            for (int d = 0; d < 32; d++) mu += mean[d] / 32.0;
            for (int d = 0; d < 32; d++) var += (mean[d] - mu) * (mean[d] - mu) / 32.0;
            for (int k = 0; k < 10; k++) {
                double s = bias[k];
                for (int d = 0; d < 32; d++) s += (mean[d] - mu) / sqrt(var + 1e-6) * w[k * 32 + d];
                worst = fmax(worst, fabs(s - all[OUT_CLASS][b * 10 + k]));
                lmax = fmax(lmax, fabs(s));
            }
        }
        printf("eval: logits vs head(fc_norm(mean of patch tokens)) from the tokens: %.2e (max %.2f)\n", worst, lmax);
        CHECK(worst < 1e-4 * fmax(1.0, lmax) && lmax > 0.1);
        free(w);
        free(bias);
    }
    /* logits not requested: tokens unchanged */
    bp_tensor *partial[N_OUT] = {outs[OUT_TOKENS], NULL};
    CHECK_OK(st->process(st, x, partial, N_OUT, &err), &err);
    float *again0 = read_all(outs[OUT_TOKENS]);
    CHECK(max_abs_diff(again0, all[OUT_TOKENS], bp_tensor_numel(outs[OUT_TOKENS])) == 0.0);
    free(again0);
    /* sample 1 alone = row 1 of the batch */
    float *xv = read_all(x);
    bp_tensor *x1 = new_t(e, 4, s1);
    write_all(x1, xv + 1024 * 128);
    alloc_outputs(e, st, 1, 1, outs1);
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
    bp_stage *st2 = make(e, kv, 5, &ps2, &err);
    const char *kv3[] = {"dim=32", "depth=2", "heads=4", "n_classes=10", "init_seed=8"};
    bp_stage *st3 = make(e, kv3, 5, &ps3, &err);
    CHECK(st2 && st3);
    if (st2 && st3) {
        fill(param(st2, "head.weight").value, 3, 0.3);
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
    /* initialisation: cls_token and block weights trunc_normal(0.02), head 2e-5, patch
     * conv U(±1/16); pos_embed = AudioMAE's (8, 64) sin-cos table: row 1 + n =
     * [sincos_16(n mod 64), sincos_16(n div 64)], row 0 = 0 */
    bp_paramset *ps4;
    bp_stage *st4 = make(e, kv, 5, &ps4, &err);
    bp_train_param pq = param(st4, "blocks.1.attn.qkv.weight"), ph = param(st4, "head.weight"),
                   pp = param(st4, "pos_embed"), pw = param(st4, "patch_embed.proj.weight");
    float *q = read_all(pq.value), *h = read_all(ph.value), *pe = read_all(pp.value), *w = read_all(pw.value);
    double sq = 0, sh = 0, wmax = 0;
    for (int i = 0; i < 96 * 32; i++) sq += (double)q[i] * q[i];
    for (int i = 0; i < 10 * 32; i++) sh += (double)h[i] * h[i];
    for (int i = 0; i < 32 * 256; i++) wmax = fmax(wmax, fabs(w[i]));
    sq = sqrt(sq / (96 * 32)), sh = sqrt(sh / (10 * 32));
    printf("init: qkv std %.4f (0.02), head std %.2e (2e-5), patch conv max %.4f (<= 1/16)\n", sq, sh, wmax);
    CHECK(sq > 0.017 && sq < 0.023 && sh > 1.2e-5 && sh < 2.8e-5 && wmax <= 1.0 / 16 && wmax > 0.06);
    const float *r9 = pe + 9 * 32, *r70 = pe + 70 * 32; /* patches 8 (t=1, f=0) and 69 */
    CHECK(fabs(r9[0] - sin(8.0)) < 1e-6 && fabs(r9[8] - cos(8.0)) < 1e-6 && r9[16] == 0.0f && r9[24] == 1.0f);
    CHECK(fabs(r70[0] - sin(5.0)) < 1e-6 && fabs(r70[16] - sin(1.0)) < 1e-6);
    CHECK(pe[0] == 0.0f && pe[31] == 0.0f);
    free(q);
    free(h);
    free(pe);
    free(w);
    drop(st4, ps4);
    /* head_init_std: the heads' weights are drawn with the given std instead (from scratch) */
    const char *kv5[] = {"dim=32", "depth=2", "heads=4", "n_classes=10", "init_seed=7", "head_init_std=0.02"};
    bp_paramset *ps5;
    bp_stage *st5 = make(e, kv5, 6, &ps5, &err);
    CHECK_OK(st5 ? BP_OK : BP_ERR_INVALID, &err);
    if (st5) {
        float *h5 = read_all(param(st5, "head.weight").value);
        double sh5 = 0;
        for (int i = 0; i < 10 * 32; i++) sh5 += (double)h5[i] * h5[i];
        sh5 = sqrt(sh5 / (10 * 32));
        printf("init: head_init_std=0.02 gives head std %.4f\n", sh5);
        CHECK(sh5 > 0.017 && sh5 < 0.023);
        free(h5);
        drop(st5, ps5);
    }
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
    if (!tr) {
        drop(st, ps);
        return;
    }
    CHECK(tr->n_layers(st) == 5);
    /* cls, pos, patch (2), 3 blocks x 12, head (2), fc_norm (2) */
    CHECK(tr->param_count(st) == 2 + 2 + 36 + 2 + 2);
    const char *order[] = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
                           "blocks.0.norm1.weight"};
    bp_train_param p;
    for (uint32_t i = 0; i < 5; i++) {
        CHECK_OK(tr->param_at(st, i, &p, &err), &err);
        CHECKF(!strcmp(p.name, order[i]), "param %u is %s", i, p.name);
    }
    const char *last[] = {"head.weight", "head.bias", "fc_norm.weight", "fc_norm.bias"};
    for (uint32_t i = 0; i < 4; i++) {
        CHECK_OK(tr->param_at(st, tr->param_count(st) - 4 + i, &p, &err), &err);
        CHECKF(!strcmp(p.name, last[i]), "param %u is %s", tr->param_count(st) - 4 + i, p.name);
    }
    CHECK(tr->param_at(st, tr->param_count(st), &p, &err) == BP_ERR_NOT_FOUND);
    struct {
        const char *name;
        int trainable, decay, layer;
        int64_t numel;
    } want[] = {{"cls_token", 1, 0, 0, 16},
                {"pos_embed", 0, 0, 0, 513 * 16},
                {"patch_embed.proj.weight", 1, 1, 0, 16 * 256},
                {"patch_embed.proj.bias", 1, 0, 0, 16},
                {"blocks.0.attn.qkv.weight", 1, 1, 1, 48 * 16},
                {"blocks.2.mlp.fc2.bias", 1, 0, 3, 16},
                {"blocks.1.norm2.weight", 1, 0, 2, 16},
                {"head.weight", 1, 1, 4, 5 * 16},
                {"head.bias", 1, 0, 4, 5},
                {"fc_norm.weight", 1, 0, 4, 16}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        p = param(st, want[i].name);
        CHECKF(p.name && p.trainable == want[i].trainable && p.decay == want[i].decay && p.layer_id == want[i].layer &&
                   (p.grad != NULL) == want[i].trainable && bp_tensor_numel(p.value) == want[i].numel,
               "%s: trainable %d decay %d layer %d", want[i].name, p.trainable, p.decay, p.layer_id);
    }
    drop(st, ps);
}

/* L = Σ r ⊙ outputs (logits and tokens), in double. */
static double project(bp_tensor **outs, float *const *r) {
    double s = 0;
    for (int i = 0; i < N_OUT; i++) {
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
    const int64_t B = 2, D = 16, sx[4] = {B, 1, 1024, 128};
    bp_tensor *x = new_t(e, 4, sx), *dx = new_t(e, 4, sx), *outs[N_OUT];
    fill(x, 2, 1.5);
    alloc_outputs(e, st, B, 1, outs);
    fill(param(st, "head.weight").value, 10, 0.3); /* visible head (2e-5 would hide every path) */
    CHECK_OK(tr->set_training(st, 1, &err), &err);
    bp_train_step step;
    memset(&step, 0, sizeof step);
    step.struct_size = sizeof step;
    step.seed = 11;
    step.mask_t_prob = 0.2f; /* AudioMAE fine-tuning: keep int(64·0.8) = 51 rows, int(8·0.8) = 6 columns */
    step.mask_f_prob = 0.2f;
    step.specaug_time = 192;
    step.specaug_freq = 48;
    step.drop_path = 0.5f;
    /* masking keeps 51 x 6 patches: a [B, 513, D] tokens output is refused */
    bp_status s = tr->forward(st, x, &step, outs, N_OUT, &err);
    CHECKF(s == BP_ERR_INVALID && strstr(err.msg, "tokens") && strstr(err.msg, "307"), "%s", err.msg);
    const int64_t stk[3] = {B, 1 + 51 * 6, D};
    bp_tensor *tok = new_t(e, 3, stk);
    bp_tensor *touts[N_OUT] = {tok, outs[OUT_CLASS]};
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    float *l1 = read_all(outs[OUT_CLASS]);
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    float *l2 = read_all(outs[OUT_CLASS]);
    CHECK(max_abs_diff(l1, l2, B * 6) == 0.0);
    step.seed = 12;
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    float *l3 = read_all(outs[OUT_CLASS]);
    CHECK(max_abs_diff(l1, l3, B * 6) > 1e-4);
    free(l1);
    free(l2);
    free(l3);
    step.seed = 11;

    /* gradients with every augmentation on vs finite differences (the model is
     * smooth: GELU, softmax, LayerNorm, mean) */
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
    /* Single entries (the up to 3 largest gradients, h = 1e-2) where the
     * gradients are large; where they are small next to the rounding noise of
     * L (the CLS token reaches the pooled logits only as an attention key,
     * the norm weights of a near-identity block, one input pixel), the
     * derivative along u = g / max|g| instead (every entry at once). */
    struct {
        const char *name;
        int directional;
        double h;
    } wrt[] = {{"cls_token", 1, 1e-3},
               {"patch_embed.proj.weight", 0, 1e-2},
               {"patch_embed.proj.bias", 0, 1e-2},
               {"blocks.0.attn.qkv.weight", 0, 1e-2},
               {"blocks.1.mlp.fc1.bias", 0, 1e-2},
               {"blocks.1.norm1.weight", 1, 1e-2},
               {"fc_norm.weight", 0, 1e-2},
               {"fc_norm.bias", 0, 1e-2},
               {"head.weight", 0, 1e-2},
               {"input", 1, 1e-2}};
    double worst = 0;
    for (size_t w = 0; w < sizeof wrt / sizeof wrt[0]; w++) {
        bp_tensor *val = x, *grad = dx;
        if (strcmp(wrt[w].name, "input") != 0) {
            bp_train_param p = param(st, wrt[w].name);
            val = p.value, grad = p.grad;
        }
        CHECKF(val && grad, "%s: no value/grad", wrt[w].name);
        if (!val || !grad) continue;
        float *v = read_all(val), *g = read_all(grad);
        int64_t n = bp_tensor_numel(val);
        double gmax = 0, emax = 0;
        const double h = wrt[w].h;
        for (int64_t k = 0; k < n; k++) gmax = fmax(gmax, fabs(g[k]));
        if (wrt[w].directional) {
            float *xp = malloc((size_t)n * sizeof *xp);
            double dir = 0, l[2];
            for (int64_t k = 0; k < n; k++) dir += (double)g[k] * g[k] / gmax;
            for (int sg = 0; sg < 2; sg++) {
                for (int64_t k = 0; k < n; k++) xp[k] = v[k] + (float)((sg ? -h : h) * g[k] / gmax);
                write_all(val, xp);
                CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
                l[sg] = project(touts, r);
            }
            write_all(val, v);
            double rel = fabs((l[0] - l[1]) / (2 * h) - dir) / fabs(dir);
            printf("  whole model, augmented: %-28s along the gradient: %.6e  fd err %.3e\n", wrt[w].name, dir, rel);
            CHECKF(rel < 1e-3, "%s: directional fd err %g", wrt[w].name, rel);
            worst = fmax(worst, rel);
            free(xp);
            free(v);
            free(g);
            continue;
        }
        int64_t pick[3] = {-1, -1, -1};
        for (int j = 0; j < (under_vg ? 1 : 3); j++)
            for (int64_t k = 0; k < n; k++) {
                int used = 0;
                for (int q = 0; q < j; q++) used |= pick[q] == k;
                if (!used && (pick[j] < 0 || fabs(g[k]) > fabs(g[pick[j]]))) pick[j] = k;
            }
        for (int j = 0; j < 3; j++) {
            if (pick[j] < 0) continue;
            const float keep = v[pick[j]];
            double l[2];
            for (int sg = 0; sg < 2; sg++) {
                v[pick[j]] = keep + (float)(sg ? -h : h);
                write_all(val, v);
                CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
                l[sg] = project(touts, r);
            }
            v[pick[j]] = keep;
            write_all(val, v);
            emax = fmax(emax, fabs((l[0] - l[1]) / (2 * h) - g[pick[j]]));
        }
        double rel = gmax > 0 ? emax / gmax : INFINITY;
        printf("  whole model, augmented: %-28s max|grad| %.3e  fd err %.3e\n", wrt[w].name, gmax, rel);
        CHECKF(rel < 2e-3, "%s: fd err %g", wrt[w].name, rel);
        worst = fmax(worst, rel);
        free(v);
        free(g);
    }
    printf("whole-model finite differences (2-D patch masking, SpecAugment, drop path on): worst %.3e\n", worst);
    /* pos_embed is frozen: no gradient; only logits given → same cls_token grad as with zero tokens grad */
    CHECK(param(st, "pos_embed").grad == NULL);
    bp_train_param pc = param(st, "cls_token");
    CHECK_OK(tr->zero_grad(st, &err), &err);
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    const bp_tensor *only_logits[N_OUT] = {NULL, dl[OUT_CLASS]};
    CHECK_OK(tr->backward(st, only_logits, N_OUT, NULL, &err), &err);
    float *g1 = read_all(pc.grad);
    CHECK_OK(bp_op_fill(e->be, dl[OUT_TOKENS], 0.0f, &err), &err);
    CHECK_OK(tr->zero_grad(st, &err), &err);
    CHECK_OK(tr->forward(st, x, &step, touts, N_OUT, &err), &err);
    CHECK_OK(tr->backward(st, (const bp_tensor *const *)dl, N_OUT, NULL, &err), &err);
    float *g2 = read_all(pc.grad);
    CHECK(max_abs_diff(g1, g2, D) == 0.0);
    free(g1);
    free(g2);
    /* backward errors */
    const int64_t sbad[4] = {B, 2, 1024, 128};
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

static void test_weights(env *e) {
    bp_error err = BP_ERROR_INIT;
    char dir[] = "/tmp/bp_audiomae_unit_XXXXXX", good[256], bad[256], wg[300], wb[300];
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
    fill(param(a, "head.weight").value, 4, 0.3);
    fill(param(a, "pos_embed").value, 5, 0.3); /* a loaded pos_embed replaces the generated table */
    save_state(a, good, NULL, NULL, NULL, NULL);
    const char *kv2[] = {"dim=16", "depth=1", "heads=2", "n_classes=5", "init_seed=99", wg};
    bp_stage *b = make(e, kv2, 6, &ps2, &err);
    CHECKF(b != NULL, "%s", err.msg);
    if (b) {
        const int64_t sx[4] = {1, 1, 1024, 128};
        bp_tensor *x = new_t(e, 4, sx), *oa[N_OUT], *ob[N_OUT];
        fill(x, 5, 1.0);
        alloc_outputs(e, a, 1, 1, oa);
        alloc_outputs(e, b, 1, 1, ob);
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
    CHECK(strstr(err.msg, "parameter 'weights'") != NULL && strstr(err.msg, "audiomae") != NULL);
    CHECK(strstr(err.msg, "missing: blocks.0.norm1.weight, head.bias") != NULL);
    CHECK(strstr(err.msg, "fc_norm.bias F32[15] (expected F32[16])") != NULL);
    CHECK(strstr(err.msg, "unexpected: blocks.0.norm1.weigth") != NULL);
    /* another head size (a 527-class checkpoint into a 5-class model) is named */
    const char *kv4[] = {"dim=16", "depth=1", "heads=2", "n_classes=7", wg};
    c = make(e, kv4, 5, &ps3, &err);
    CHECK(c == NULL && strstr(err.msg, "head.weight F32[5,16] (expected F32[7,16])"));
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
    e.comp = bp_registry_find(e.reg, BP_KIND_ENCODER, "audiomae");
    CHECKF(e.comp != NULL, "audiomae not found");
    if (!e.be || !e.comp) return TEST_RESULT();
    test_descriptor(&e);
    test_spec(&e);
    test_eval(&e);
    test_trainable_table(&e);
    test_training(&e);
    test_weights(&e);
    bp_backend_free(e.be);
    bp_paramset_free(bps);
    bp_registry_free(e.reg);
    return TEST_RESULT();
}
