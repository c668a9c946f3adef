/* The metric components of bp-metrics.so against the golden vectors
 * (tests/data/io/metrics.safetensors, golden README §5):
 *  - map: per-class AP and the macro mean with each empty-class policy
 *    (skip, zero, nan), batches of uneven size, unknown rows skipped,
 *    class names from a CSV;
 *  - doa: logits built so that their argmax is the stored prediction; every
 *    pair's angular error (one batch of one each), MAE and ER20;
 *  - distance: DER with pairs exactly 0.5 m apart counted as correct;
 *  - bad input: NaN logits, mismatched batches, wrong head widths. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/metric.h"
#include "batpipe/registry.h"
#include "batpipe/safetensors.h"
#include "bp_test.h"

static bp_registry *reg;
static bp_st_file *gold;

typedef struct inst {
    bp_metric *m;
    bp_paramset *ps;
} inst;

static int make(const char *name, const char *const *kv, uint32_t n, inst *out) {
    bp_error err = BP_ERROR_INIT;
    memset(out, 0, sizeof *out);
    const bp_component_info *c = bp_registry_find(reg, BP_KIND_METRIC, name);
    CHECK(c != NULL);
    if (!c) return -1;
    CHECK_OK(bp_paramset_from_strings(c->desc, kv, n, &out->ps, &err), &err);
    if (!out->ps) return -1;
    void *m = NULL;
    CHECK_OK(bp_registry_create(reg, c, bp_paramset_params(out->ps), NULL, &m, &err), &err);
    out->m = m;
    if (!m) {
        bp_paramset_free(out->ps);
        return -1;
    }
    CHECK_OK(out->m->reset(out->m, &err), &err);
    return 0;
}

static void drop(inst *in) {
    if (in->m) in->m->destroy(in->m);
    bp_paramset_free(in->ps);
}

static bp_tensor golden(const char *name) {
    bp_tensor t;
    bp_error err = BP_ERROR_INIT;
    memset(&t, 0, sizeof t);
    CHECK_OK(bp_st_get(gold, name, &t, &err), &err);
    return t;
}

static const bp_metric_result *find(const bp_metric_result *r, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(r[i].name, name) == 0) return &r[i];
    return NULL;
}

/* Rows [r0, r1) of a 2-D F32 tensor as a view. */
static bp_tensor rows(const bp_tensor *t, int64_t r0, int64_t r1) {
    int64_t shape[2] = {r1 - r0, t->shape[1]};
    return bp_tensor_view(BP_DTYPE_F32, 2, shape, (float *)t->data + r0 * t->shape[1]);
}

static uint32_t compute(inst *in, bp_metric_result *res, uint32_t cap) {
    bp_error err = BP_ERROR_INIT;
    uint32_t n = 0;
    CHECK_OK(in->m->compute(in->m, res, cap, &n, &err), &err);
    return n;
}

/* ---------------------------------------------------------------- map -- */

static void feed_map(inst *in, const bp_tensor *scores, const bp_tensor *targets) {
    static const int64_t cuts[] = {0, 7, 57, 200};
    bp_error err = BP_ERROR_INIT;
    for (int i = 0; i < 3; i++) {
        bp_tensor s = rows(scores, cuts[i], cuts[i + 1]), t = rows(targets, cuts[i], cuts[i + 1]);
        const bp_tensor *inputs[2] = {&s, &t};
        CHECK_OK(in->m->update(in->m, inputs, 2, &err), &err);
    }
}

static void test_map(void) {
    bp_tensor scores = golden("scores"), targets = golden("targets");
    bp_tensor ap = golden("ap_per_class"), ap_sk = golden("ap_per_class_sklearn");
    bp_tensor map_skip = golden("map_macro_skip_empty"), map_all = golden("map_macro_all_sklearn");
    bp_metric_result res[64];
    char name[32];
    /* skip (default): class 7 NaN and left out */
    inst in;
    if (make("map", NULL, 0, &in) != 0) return;
    const char *const *names;
    uint32_t nn;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(in.m->inputs(in.m, &names, &nn, &err), &err);
    CHECK(nn == 2 && strcmp(names[0], "logits_class") == 0 && strcmp(names[1], "classes") == 0);
    feed_map(&in, &scores, &targets);
    uint32_t n = compute(&in, res, 64);
    CHECK(n == 21 && strcmp(res[0].name, "mAP") == 0 && strcmp(res[0].unit, "%") == 0);
    CHECK_NEAR(res[0].value / 100, ((float *)map_skip.data)[0], 1e-6);
    CHECKF(strstr(res[0].note, "200 clips, 20 classes; 1 without positives (first: 7), empty_class=skip"), "%s",
           res[0].note);
    for (int k = 0; k < 20; k++) {
        snprintf(name, sizeof name, "AP/%d", k);
        const bp_metric_result *r = find(res, n, name);
        CHECK(r != NULL);
        if (!r) continue;
        double want = ((float *)ap.data)[k];
        if (isnan(want))
            CHECKF(isnan(r->value) && strstr(r->note, "no positives"), "class %d: %g %s", k, r->value, r->note);
        else
            CHECKF(fabs(r->value / 100 - want) <= 1e-6, "class %d: %.9g vs %.9g", k, r->value / 100, want);
    }
    CHECK_NEAR(find(res, n, "AP/12")->value, 100.0, 1e-9); /* all positive */
    /* unknown rows (any negative target) are skipped */
    float junk_s[20], junk_t[20];
    for (int k = 0; k < 20; k++) junk_s[k] = 100.0f, junk_t[k] = -1.0f;
    int64_t shp[2] = {1, 20};
    bp_tensor js = bp_tensor_view(BP_DTYPE_F32, 2, shp, junk_s), jt = bp_tensor_view(BP_DTYPE_F32, 2, shp, junk_t);
    const bp_tensor *ji[2] = {&js, &jt};
    CHECK_OK(in.m->update(in.m, ji, 2, &err), &err);
    n = compute(&in, res, 64);
    CHECK_NEAR(res[0].value / 100, ((float *)map_skip.data)[0], 1e-6);
    CHECKF(strstr(res[0].note, "1 skipped (unknown)"), "%s", res[0].note);
    /* reset clears everything */
    CHECK_OK(in.m->reset(in.m, &err), &err);
    n = compute(&in, res, 64);
    CHECK(n == 1 && isnan(res[0].value) && strstr(res[0].note, "no clips"));
    drop(&in);

    /* zero: sklearn >= 1.1 */
    const char *kz[] = {"empty_class=zero"};
    if (make("map", kz, 1, &in) != 0) return;
    feed_map(&in, &scores, &targets);
    n = compute(&in, res, 64);
    CHECK_NEAR(res[0].value / 100, ((float *)map_all.data)[0], 1e-6);
    for (int k = 0; k < 20; k++) {
        snprintf(name, sizeof name, "AP/%d", k);
        const bp_metric_result *r = find(res, n, name);
        CHECK(r && fabs(r->value / 100 - ((float *)ap_sk.data)[k]) <= 1e-6);
    }
    drop(&in);

    /* nan: the mean is NaN; per_class off; fewer results than classes fit */
    const char *kn[] = {"empty_class=nan", "per_class=false"};
    if (make("map", kn, 2, &in) != 0) return;
    feed_map(&in, &scores, &targets);
    n = compute(&in, res, 64);
    CHECK(n == 1 && isnan(res[0].value) && strstr(res[0].note, "empty_class=nan"));
    drop(&in);
    if (make("map", NULL, 0, &in) != 0) return;
    feed_map(&in, &scores, &targets);
    n = compute(&in, res, 5);
    CHECK(n == 5 && strcmp(res[4].name, "AP/3") == 0);
    drop(&in);

    /* class names from an AudioSet-style CSV, quotes and commas included */
    char csv[128];
    snprintf(csv, sizeof csv, "/tmp/bp_test_metrics_%d.csv", (int)getpid());
    FILE *f = fopen(csv, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "index,mid,display_name\n0,/m/09x0r,\"Speech, human voice\"\n1,/m/0bt9lr,Dog\n7,/m/x,\"The "
               "\"\"empty\"\" one\"\n");
    fclose(f);
    char kv[200];
    snprintf(kv, sizeof kv, "class_list=%s", csv);
    const char *kc[] = {kv};
    if (make("map", kc, 1, &in) == 0) {
        feed_map(&in, &scores, &targets);
        n = compute(&in, res, 64);
        CHECK(find(res, n, "AP/Speech, human voice") && find(res, n, "AP/Dog") && find(res, n, "AP/2"));
        CHECKF(strstr(res[0].note, "(first: The \"empty\" one)"), "%s", res[0].note);
        drop(&in);
    }
    /* a malformed list fails at create, naming the file and line */
    f = fopen(csv, "w");
    if (f) {
        fprintf(f, "index,mid,display_name\nzero,/m/x,Bad\n");
        fclose(f);
    }
    const bp_component_info *c = bp_registry_find(reg, BP_KIND_METRIC, "map");
    bp_paramset *ps = NULL;
    CHECK_OK(bp_paramset_from_strings(c->desc, kc, 1, &ps, &err), &err);
    void *m = NULL;
    CHECK(bp_registry_create(reg, c, bp_paramset_params(ps), NULL, &m, &err) == BP_ERR_FORMAT);
    CHECKF(strstr(err.msg, ":2: expected index,mid,display_name"), "%s", err.msg);
    bp_paramset_free(ps);
    remove(csv);
}

/* ---------------------------------------------------------------- doa -- */

/* Logits whose argmax is `cls`: a deterministic ramp below 1, 5 at cls. */
static void one_hot_row(float *row, int64_t n, int64_t cls, int64_t seed) {
    for (int64_t k = 0; k < n; k++) row[k] = (float)(((k * 37 + seed * 11) % 101) / 101.0);
    row[cls] = 5.0f;
}

static void test_doa(void) {
    bp_tensor az_p = golden("az_pred"), el_p = golden("el_pred"), az_t = golden("az_true"), el_t = golden("el_true");
    bp_tensor ang = golden("angular_error"), mae = golden("mae"), er20 = golden("er20");
    int64_t N = az_p.shape[0];
    float *la = malloc((size_t)N * 360 * sizeof *la), *le = malloc((size_t)N * 180 * sizeof *le);
    int32_t *ya = malloc((size_t)N * 2 * sizeof *ya), *ye = malloc((size_t)N * 2 * sizeof *ye);
    if (!la || !le || !ya || !ye) abort();
    for (int64_t i = 0; i < N; i++) {
        int64_t a = (int64_t)((float *)az_p.data)[i], e = (int64_t)((float *)el_p.data)[i] + 90;
        one_hot_row(la + i * 360, 360, a, i);
        one_hot_row(le + i * 180, 180, e, i + 1);
        ya[2 * i] = (int32_t)((float *)az_t.data)[i];
        ye[2 * i] = (int32_t)((float *)el_t.data)[i] + 90;
        ya[2 * i + 1] = ye[2 * i + 1] = -1;
    }
    inst in;
    if (make("doa", NULL, 0, &in) != 0) return;
    bp_error err = BP_ERROR_INIT;
    bp_metric_result res[4];
    /* each pair alone: its angular error */
    double worst = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t s1[2] = {1, 360}, s2[2] = {1, 180}, s3[2] = {1, 2};
        bp_tensor a = bp_tensor_view(BP_DTYPE_F32, 2, s1, la + i * 360),
                  e = bp_tensor_view(BP_DTYPE_F32, 2, s2, le + i * 180);
        bp_tensor ta = bp_tensor_view(BP_DTYPE_I32, 2, s3, ya + 2 * i),
                  te = bp_tensor_view(BP_DTYPE_I32, 2, s3, ye + 2 * i);
        const bp_tensor *inputs[4] = {&a, &e, &ta, &te};
        CHECK_OK(in.m->reset(in.m, &err), &err);
        CHECK_OK(in.m->update(in.m, inputs, 4, &err), &err);
        uint32_t n = compute(&in, res, 4);
        if (n < 1) continue;
        double d = fabs(res[0].value - ((float *)ang.data)[i]);
        if (d > worst) worst = d;
        CHECKF(d <= 1e-4, "pair %lld: %.9g vs %.9g", (long long)i, res[0].value, ((float *)ang.data)[i]);
    }
    printf("doa: worst per-pair angular error difference %.3g deg\n", worst);
    /* all pairs in batches of 64 */
    CHECK_OK(in.m->reset(in.m, &err), &err);
    for (int64_t i0 = 0; i0 < N; i0 += 64) {
        int64_t b = N - i0 < 64 ? N - i0 : 64;
        int64_t s1[2] = {b, 360}, s2[2] = {b, 180}, s3[2] = {b, 2};
        bp_tensor a = bp_tensor_view(BP_DTYPE_F32, 2, s1, la + i0 * 360),
                  e = bp_tensor_view(BP_DTYPE_F32, 2, s2, le + i0 * 180);
        bp_tensor ta = bp_tensor_view(BP_DTYPE_I32, 2, s3, ya + 2 * i0),
                  te = bp_tensor_view(BP_DTYPE_I32, 2, s3, ye + 2 * i0);
        const bp_tensor *inputs[4] = {&a, &e, &ta, &te};
        CHECK_OK(in.m->update(in.m, inputs, 4, &err), &err);
    }
    uint32_t n = compute(&in, res, 4);
    CHECK(n == 2 && strcmp(res[0].name, "MAE_deg") == 0 && strcmp(res[0].unit, "deg") == 0);
    CHECK(strcmp(res[1].name, "ER20_percent") == 0 && strcmp(res[1].unit, "%") == 0);
    CHECK_NEAR(res[0].value, ((float *)mae.data)[0], 1e-4);
    CHECK_NEAR(res[1].value, ((float *)er20.data)[0], 1e-4);
    CHECKF(strstr(res[0].note, "500 clips (source 0); none skipped"), "%s", res[0].note);
    /* an unknown label is skipped and counted; source 1 of these labels is all unknown */
    int32_t unk[2] = {-1, -1};
    int64_t s1[2] = {1, 360}, s2[2] = {1, 180}, s3[2] = {1, 2};
    bp_tensor a = bp_tensor_view(BP_DTYPE_F32, 2, s1, la), e = bp_tensor_view(BP_DTYPE_F32, 2, s2, le);
    bp_tensor tu = bp_tensor_view(BP_DTYPE_I32, 2, s3, unk), te = bp_tensor_view(BP_DTYPE_I32, 2, s3, ye);
    const bp_tensor *ui[4] = {&a, &e, &tu, &te};
    CHECK_OK(in.m->update(in.m, ui, 4, &err), &err);
    n = compute(&in, res, 4);
    CHECK_NEAR(res[0].value, ((float *)mae.data)[0], 1e-4);
    CHECKF(strstr(res[0].note, "1 skipped (label -1)"), "%s", res[0].note);
    /* errors: NaN logits, batch mismatch, wrong head width, out-of-range label */
    float nanrow[360];
    memcpy(nanrow, la, sizeof nanrow);
    nanrow[3] = NAN;
    bp_tensor an = bp_tensor_view(BP_DTYPE_F32, 2, s1, nanrow);
    bp_tensor ta = bp_tensor_view(BP_DTYPE_I32, 2, s3, ya);
    const bp_tensor *ni[4] = {&an, &e, &ta, &te};
    CHECK(in.m->update(in.m, ni, 4, &err) == BP_ERR_NUMERIC);
    CHECKF(strstr(err.msg, "doa: input 'logits_azimuth' has NaN at batch row 0, column 3"), "%s", err.msg);
    int64_t s4[2] = {2, 2};
    bp_tensor t2 = bp_tensor_view(BP_DTYPE_I32, 2, s4, ya);
    const bp_tensor *bi[4] = {&a, &e, &t2, &te};
    CHECK(in.m->update(in.m, bi, 4, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "has a batch of 2, the other inputs 1"), "%s", err.msg);
    const bp_tensor *wi[4] = {&e, &a, &ta, &te};
    CHECK(in.m->update(in.m, wi, 4, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "want 360 and 180"), "%s", err.msg);
    int32_t big[2] = {360, 0};
    bp_tensor tb = bp_tensor_view(BP_DTYPE_I32, 2, s3, big);
    const bp_tensor *oi[4] = {&a, &e, &tb, &te};
    CHECK(in.m->update(in.m, oi, 4, &err) == BP_ERR_INVALID);
    drop(&in);
    /* a tie in the logits resolves to the first class, as torch.argmax */
    if (make("doa", NULL, 0, &in) == 0) {
        float ta2[360] = {0}, te2[180] = {0};
        ta2[10] = ta2[200] = 1; /* → azimuth 10 */
        te2[90] = 1;
        int32_t yl[2] = {10, -1}, ylel[2] = {90, -1};
        bp_tensor x1 = bp_tensor_view(BP_DTYPE_F32, 2, s1, ta2), x2 = bp_tensor_view(BP_DTYPE_F32, 2, s2, te2);
        bp_tensor y1 = bp_tensor_view(BP_DTYPE_I32, 2, s3, yl), y2 = bp_tensor_view(BP_DTYPE_I32, 2, s3, ylel);
        const bp_tensor *ti[4] = {&x1, &x2, &y1, &y2};
        CHECK_OK(in.m->update(in.m, ti, 4, &err), &err);
        n = compute(&in, res, 4);
        CHECK(n == 2 && res[0].value < 1e-5 && res[1].value == 0);
        drop(&in);
    }
    free(la), free(le), free(ya), free(ye);
}

/* ----------------------------------------------------------- distance -- */

static void test_distance(void) {
    bp_tensor dp = golden("d_pred"), dt = golden("d_true"), der = golden("der");
    int64_t N = dp.shape[0];
    float *lg = malloc((size_t)N * 21 * sizeof *lg);
    int64_t *y = malloc((size_t)N * sizeof *y);
    if (!lg || !y) abort();
    double mae = 0;
    int64_t exact_half = 0;
    for (int64_t i = 0; i < N; i++) {
        double p = ((float *)dp.data)[i], t = ((float *)dt.data)[i];
        one_hot_row(lg + i * 21, 21, (int64_t)llround(p / 0.5), i);
        y[i] = (int64_t)llround(t / 0.5);
        mae += fabs(p - t);
        exact_half += fabs(fabs(p - t) - 0.5) < 1e-9;
    }
    CHECK(exact_half == 192); /* the golden README's count of pairs exactly 0.5 m apart */
    inst in;
    if (make("distance", NULL, 0, &in) != 0) return;
    bp_error err = BP_ERROR_INIT;
    for (int64_t i0 = 0; i0 < N; i0 += 100) {
        int64_t s1[2] = {100, 21}, s2[1] = {100};
        bp_tensor l = bp_tensor_view(BP_DTYPE_F32, 2, s1, lg + i0 * 21),
                  t = bp_tensor_view(BP_DTYPE_I64, 1, s2, y + i0);
        const bp_tensor *inputs[2] = {&l, &t};
        CHECK_OK(in.m->update(in.m, inputs, 2, &err), &err);
    }
    bp_metric_result res[4];
    uint32_t n = compute(&in, res, 4);
    CHECK(n == 2 && strcmp(res[0].name, "DER_percent") == 0 && strcmp(res[1].name, "distance_MAE_m") == 0);
    CHECK_NEAR(res[0].value, ((float *)der.data)[0], 1e-4);
    CHECK_NEAR(res[1].value, mae / (double)N, 1e-9);
    /* labels [batch] have one source only */
    drop(&in);
    const char *kv[] = {"source=1"};
    if (make("distance", kv, 1, &in) == 0) {
        int64_t s1[2] = {1, 21}, s2[1] = {1};
        bp_tensor l = bp_tensor_view(BP_DTYPE_F32, 2, s1, lg), t = bp_tensor_view(BP_DTYPE_I64, 1, s2, y);
        const bp_tensor *inputs[2] = {&l, &t};
        CHECK(in.m->update(in.m, inputs, 2, &err) == BP_ERR_INVALID);
        CHECKF(strstr(err.msg, "has 1 source per item, source 1 asked"), "%s", err.msg);
        drop(&in);
    }
    free(lg), free(y);
}

int main(void) {
    const char *data = getenv("BP_TEST_DATA");
    const char *pp = getenv("BATPIPE_PLUGIN_PATH");
    if (!data || !pp) TEST_SKIP("BP_TEST_DATA / BATPIPE_PLUGIN_PATH not set (run through ctest)");
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    bp_registry_scan_dir(reg, pp, &err);
    if (!bp_registry_find(reg, BP_KIND_METRIC, "map")) TEST_SKIP("bp-metrics.so is not built");
    char path[1024];
    snprintf(path, sizeof path, "%s/io/metrics.safetensors", data);
    CHECK_OK(bp_st_open(path, &gold, &err), &err);
    if (gold) {
        test_map();
        test_doa();
        test_distance();
        bp_st_close(gold);
    }
    bp_registry_free(reg);
    return TEST_RESULT();
}
