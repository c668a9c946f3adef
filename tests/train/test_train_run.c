/* batpipe train through the public API on a tiny synthetic set (see
 * train_test_util.h) with the test encoder train_tiny:
 *  - a few dozen steps lower the training loss (class and spatial terms);
 *  - the JSONL log has one line per step (step, stage, lr from the schedule,
 *    every loss term) and one per evaluation (validation losses; the metric
 *    plugins map/doa/distance too when they are installed);
 *  - the final weights.safetensors has every tensor under its official name
 *    and loads through the encoder's own `weights` parameter;
 *  - a run stopped after k steps and resumed ends with the same weights,
 *    byte for byte, as an uninterrupted one, and its log lists each step once;
 *  - an output directory with checkpoints needs --resume or --restart, and a
 *    checkpoint of another configuration is refused, naming the difference.
 *
 * argv[1]: the directory of the test encoder plugin. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/audio.h"
#include "batpipe/encoder.h"
#include "batpipe/registry.h"
#include "batpipe/safetensors.h"
#include "batpipe/train.h"
#include "bp_test.h"
#include "train_test_util.h"

static char g_tmp[512];

static bp_registry *make_registry(const char *plugin_dir) {
    static bp_host host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.abi_major = BP_ABI_MAJOR;
    host.abi_minor = BP_ABI_MINOR;
    host.name = "test_train_run";
    host.version = BP_VERSION_STRING;
    bp_registry *reg = NULL;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_registry_new(&host, &reg, &err), &err);
    if (!reg) return NULL;
    CHECK_OK(bp_registry_scan_default(reg, NULL, &err), &err);
    CHECK_OK(bp_registry_scan_dir(reg, plugin_dir, &err), &err);
    return reg;
}

/* Load + run; returns the status, fills rep. */
static bp_status train(bp_registry *reg, const char *cfg, const char *const *ov, uint32_t n, int resume,
                       int64_t stop_after, bp_train_report *rep, bp_error *err) {
    bp_trainer *t = NULL;
    bp_status st = bp_train_load(reg, cfg, ov, n, &t, err);
    if (st != BP_OK) return st;
    bp_train_options o = bp_train_options_default();
    o.resume = resume;
    o.stop_after = stop_after;
    memset(rep, 0, sizeof *rep);
    rep->struct_size = sizeof *rep;
    st = bp_train_run(t, &o, rep, err);
    bp_train_free(t);
    return st;
}

typedef struct log_rows {
    int n_steps, n_evals;
    double loss[256], loss_class[256], loss_dir[256], lr[256];
    int step[256];
    char stage[256][16];
    double val_loss, val_class;
    int has_map;
} log_rows;

static void read_log(const char *path, log_rows *r) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "%s missing", path);
    if (!f) return;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        CHECKF(j != NULL, "bad log line: %s", line);
        if (!j) continue;
        json_t *ev = json_object_get(j, "eval");
        if (ev) {
            r->n_evals++;
            r->val_loss = json_number_value(json_object_get(ev, "val_loss"));
            r->val_class = json_number_value(json_object_get(ev, "val_loss_class"));
            r->has_map |= json_object_get(ev, "mAP") != NULL || json_object_get(ev, "map") != NULL;
        } else if (r->n_steps < 256) {
            int i = r->n_steps++;
            r->step[i] = (int)json_integer_value(json_object_get(j, "step"));
            r->loss[i] = json_number_value(json_object_get(j, "loss"));
            r->loss_class[i] = json_number_value(json_object_get(j, "loss_class"));
            r->loss_dir[i] = json_number_value(json_object_get(j, "loss_azimuth")) +
                             json_number_value(json_object_get(j, "loss_elevation")) +
                             json_number_value(json_object_get(j, "loss_distance"));
            r->lr[i] = json_number_value(json_object_get(j, "lr"));
            const char *s = json_string_value(json_object_get(j, "stage"));
            snprintf(r->stage[i], sizeof r->stage[i], "%s", s ? s : "");
        }
        json_decref(j);
    }
    fclose(f);
}

static double mean(const double *v, int a, int b) {
    double s = 0;
    for (int i = a; i < b; i++) s += v[i];
    return s / (b - a);
}

/* every tensor of a equals b's, byte for byte */
static int same_weights(const char *a, const char *b, int *n_out) {
    bp_st_file *fa = NULL, *fb = NULL;
    bp_error err = BP_ERROR_INIT;
    int ok = bp_st_open(a, &fa, &err) == BP_OK && bp_st_open(b, &fb, &err) == BP_OK;
    CHECKF(ok, "%s", err.msg);
    if (ok && bp_st_count(fa) != bp_st_count(fb)) ok = 0;
    for (uint32_t i = 0; ok && i < bp_st_count(fa); i++) {
        bp_tensor ta, tb;
        const char *name = bp_st_name(fa, i);
        ok = bp_st_get(fa, name, &ta, &err) == BP_OK && bp_st_get(fb, name, &tb, &err) == BP_OK &&
             bp_tensor_same_shape(&ta, &tb) && memcmp(ta.data, tb.data, bp_tensor_nbytes(&ta)) == 0;
        if (!ok) fprintf(stderr, "tensor %s differs between %s and %s\n", name, a, b);
    }
    if (n_out) *n_out = ok ? (int)bp_st_count(fa) : 0;
    bp_st_close(fa);
    bp_st_close(fb);
    return ok;
}

static void test_learns(bp_registry *reg) {
    char cfg[700], out[700], logp[800], wpath[800];
    snprintf(cfg, sizeof cfg, "%s/learn.cfg", g_tmp);
    snprintf(out, sizeof out, "%s/learn", g_tmp);
    /* with the metric plugins when this build has them */
    int metrics = bp_registry_find(reg, BP_KIND_METRIC, "map") && bp_registry_find(reg, BP_KIND_METRIC, "doa") &&
                  bp_registry_find(reg, BP_KIND_METRIC, "distance");
    char extra[1024];
    snprintf(extra, sizeof extra,
             "stages = ( { name = \"cls\"; steps = 8; losses = [\"class\"]; },\n"
             "           { name = \"all\"; epochs = 4.0; } );\n"
             "checkpoint = { every = 10; keep = 2; };\n"
             "eval = { every = 12; batch_size = 5; %s };\n",
             metrics ? "metrics = ( { type = \"map\"; }, { type = \"doa\"; }, { type = \"distance\"; } );" : "");
    if (!metrics) printf("metric plugins map/doa/distance not installed: validation losses only\n");
    tt_write_config(cfg, g_tmp, out, extra);
    bp_train_report rep;
    bp_error err = BP_ERROR_INIT;
    const char *ov[] = {"augment.mixup_prob=0.0"};
    CHECK_OK(train(reg, cfg, ov, 1, 0, 0, &rep, &err), &err);
    CHECK(rep.finished && rep.start_step == 0 && rep.end_step == 20 && rep.total_steps == 20);
    CHECK(rep.examples_per_s > 0 && rep.s_per_step > 0);
    printf("tiny run: %lld steps, %.3f s/step, %.1f examples/s\n", (long long)rep.end_step, rep.s_per_step,
           rep.examples_per_s);
    snprintf(logp, sizeof logp, "%s/train.jsonl", out);
    log_rows r;
    read_log(logp, &r);
    CHECK(r.n_steps == 20);
    CHECK(r.n_evals == 2); /* after step 12 and at the end */
    for (int i = 0; i < r.n_steps; i++) {
        CHECK(r.step[i] == i + 1);
        CHECK(strcmp(r.stage[i], i < 8 ? "cls" : "all") == 0);
        /* schedule: peak 0.02, warm-up 2, cosine to 0.001 at step 20 */
        double want = i < 2 ? 0.02 * i / 2.0 : 0.001 + (0.02 - 0.001) * 0.5 * (1 + cos(M_PI * (i - 2) / 18.0));
        CHECK_NEAR(r.lr[i], want, 1e-9);
    }
    /* stage 1 trains the class loss only: its total is 10 × BCE */
    CHECK_NEAR(r.loss[0], 10 * r.loss_class[0], 1e-6);
    double c0 = mean(r.loss_class, 0, 4), c1 = mean(r.loss_class, 16, 20);
    double d0 = mean(r.loss_dir, 8, 11), d1 = mean(r.loss_dir, 17, 20);
    printf("class loss %.4f -> %.4f, spatial losses %.3f -> %.3f, val loss %.4f\n", c0, c1, d0, d1, r.val_loss);
    CHECKF(c1 < 0.8 * c0, "class loss %.4f -> %.4f", c0, c1);
    CHECKF(d1 < d0, "spatial losses %.4f -> %.4f", d0, d1);
    CHECK(isfinite(r.val_loss) && r.val_loss > 0);
    if (metrics) {
        CHECK(r.has_map);
        int found = 0;
        for (uint32_t i = 0; i < rep.n_results; i++) {
            printf("eval %-22s %.4f %s\n", rep.results[i].name, rep.results[i].value, rep.results[i].unit);
            found += strcmp(rep.results[i].name, "val_loss") == 0;
        }
        CHECK(found == 1 && rep.n_results > 5);
    }
    /* the final weights, by name, load into the encoder */
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", out);
    CHECK(strcmp(rep.weights, wpath) == 0);
    bp_st_file *f = NULL;
    CHECK_OK(bp_st_open(wpath, &f, &err), &err);
    if (f) {
        static const char *const names[] = {"conv.weight",
                                            "conv.bias",
                                            "bn.weight",
                                            "bn.bias",
                                            "bn.running_mean",
                                            "bn.running_var",
                                            "bn.num_batches_tracked",
                                            "head.weight",
                                            "azimuth_head.bias",
                                            "elevation_head.weight"};
        bp_tensor t;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) CHECK_OK(bp_st_get(f, names[i], &t, &err), &err);
        CHECK(bp_st_count(f) == 15);
        CHECK(bp_st_get(f, "bn.num_batches_tracked", &t, &err) == BP_OK && t.dtype == BP_DTYPE_I64 &&
              *(const int64_t *)t.data == 40); /* 20 steps × 2 micro-batches */
        const char *fmt = bp_st_metadata(f, "format");
        CHECK(fmt && strcmp(fmt, "batpipe.train.weights/1") == 0);
        CHECK(bp_st_metadata(f, "step") && strcmp(bp_st_metadata(f, "step"), "20") == 0);
        bp_st_close(f);
    }
    const bp_component_info *enc = bp_registry_find(reg, BP_KIND_ENCODER, "train_tiny");
    char kv[900];
    snprintf(kv, sizeof kv, "weights=\"%s\"", wpath);
    const char *kvs[] = {kv, "in_channels=4", "width=8", "n_classes=4"};
    bp_paramset *ps = NULL;
    CHECK_OK(bp_paramset_from_strings(enc->desc, kvs, 4, &ps, &err), &err);
    bp_backend *be = NULL;
    CHECK_OK(bp_registry_create_backend(reg, "cpu", NULL, &be, &err), &err);
    void *inst = NULL;
    if (ps && be) CHECK_OK(bp_registry_create(reg, enc, bp_paramset_params(ps), be, &inst, &err), &err);
    if (inst) {
        bp_stage *st = inst;
        const bp_trainable *tr = st->get_extension(st, BP_EXT_TRAINABLE_ID);
        bp_train_param p;
        CHECK(tr && tr->param_at(st, 0, &p, &err) == BP_OK && strcmp(p.name, "conv.weight") == 0);
        bp_st_file *wf = NULL;
        CHECK_OK(bp_st_open(wpath, &wf, &err), &err);
        bp_tensor t;
        float got[8 * 4 * 9];
        if (wf && bp_st_get(wf, "conv.weight", &t, &err) == BP_OK &&
            bp_tensor_read(p.value, got, sizeof got, &err) == BP_OK)
            CHECK(memcmp(got, t.data, sizeof got) == 0);
        bp_st_close(wf);
        st->destroy(st);
    }
    bp_backend_free(be);
    bp_paramset_free(ps);
    /* a finished run's directory: refused without --resume; --resume has nothing to do */
    CHECK(train(reg, cfg, ov, 1, 0, 0, &rep, &err) == BP_ERR_INVALID && strstr(err.msg, "--resume"));
    CHECK_OK(train(reg, cfg, ov, 1, 1, 0, &rep, &err), &err);
    CHECK(rep.resumed && rep.start_step == 20 && rep.end_step == 20 && rep.finished);
    /* another configuration's checkpoints are refused, naming the difference */
    const char *ov2[] = {"augment.mixup_prob=0.0", "optimizer.lr=0.03"};
    CHECK(train(reg, cfg, ov2, 2, 1, 0, &rep, &err) == BP_ERR_INVALID && strstr(err.msg, "another configuration") &&
          strstr(err.msg, "lr"));
}

static void test_stop_resume(bp_registry *reg) {
    char cfg[700], a[700], b[700], wa[800], wb[800], la[800], lb[800], ckdir[800];
    snprintf(cfg, sizeof cfg, "%s/resume.cfg", g_tmp);
    snprintf(a, sizeof a, "%s/runa", g_tmp);
    snprintf(b, sizeof b, "%s/runb", g_tmp);
    tt_write_config(cfg, g_tmp, a,
                    "stages = ( { steps = 4; losses = [\"class\"]; }, { steps = 7; } );\n"
                    "checkpoint = { every = 3; keep = 2; };\n");
    bp_train_report rep;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(train(reg, cfg, NULL, 0, 0, 0, &rep, &err), &err);
    CHECK(rep.finished && rep.end_step == 11);
    /* the same configuration in another directory, stopped twice and resumed */
    char ovd[800];
    snprintf(ovd, sizeof ovd, "output.dir=\"%s\"", b);
    const char *ov[] = {ovd};
    CHECK_OK(train(reg, cfg, ov, 1, 0, 2, &rep, &err), &err);
    CHECK(!rep.finished && rep.end_step == 2);
    CHECK_OK(train(reg, cfg, ov, 1, 1, 5, &rep, &err), &err);
    CHECK(rep.resumed && rep.start_step == 2 && rep.end_step == 7 && !rep.finished);
    /* leftovers of writes interrupted by a kill are removed by the next start */
    char tmp1[900], tmp2[900];
    snprintf(tmp1, sizeof tmp1, "%s/checkpoints/ckpt-00000008.safetensors.tmp.Ab12Cd", b);
    snprintf(tmp2, sizeof tmp2, "%s/.train.jsonl.Xy34Zw", b);
    CHECK(tt_write_text(tmp1, "partial") == 0 && tt_write_text(tmp2, "partial") == 0);
    CHECK_OK(train(reg, cfg, ov, 1, 1, 0, &rep, &err), &err);
    CHECK(rep.resumed && rep.start_step == 7 && rep.end_step == 11 && rep.finished);
    CHECK(!tt_exists(tmp1) && !tt_exists(tmp2));
    snprintf(wa, sizeof wa, "%s/weights.safetensors", a);
    snprintf(wb, sizeof wb, "%s/weights.safetensors", b);
    int n = 0;
    CHECK(same_weights(wa, wb, &n) && n == 15);
    /* keep = 2: the newest two checkpoints (steps 9 and 11) */
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints/ckpt-00000011.safetensors", b);
    CHECK(tt_exists(ckdir));
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints/ckpt-00000009.safetensors", b);
    CHECK(tt_exists(ckdir));
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints/ckpt-00000006.safetensors", b);
    CHECK(!tt_exists(ckdir));
    /* the logs list each step once with the same losses */
    snprintf(la, sizeof la, "%s/train.jsonl", a);
    snprintf(lb, sizeof lb, "%s/train.jsonl", b);
    log_rows ra, rb;
    read_log(la, &ra);
    read_log(lb, &rb);
    CHECK(ra.n_steps == 11 && rb.n_steps == 11);
    for (int i = 0; i < 11 && i < rb.n_steps; i++) {
        CHECK(rb.step[i] == i + 1);
        CHECK(ra.loss[i] == rb.loss[i]);
    }
    /* --restart starts over: the same result again */
    bp_trainer *t = NULL;
    CHECK_OK(bp_train_load(reg, cfg, ov, 1, &t, &err), &err);
    if (t) {
        bp_train_options o = bp_train_options_default();
        o.restart = 1;
        o.stop_after = 1;
        CHECK_OK(bp_train_run(t, &o, &rep, &err), &err);
        CHECK(rep.start_step == 0 && rep.end_step == 1 && !rep.resumed);
        CHECK(bp_train_run(t, &o, &rep, &err) == BP_ERR_INVALID && strstr(err.msg, "already called"));
        bp_train_free(t);
    }
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints/ckpt-00000011.safetensors", b);
    CHECK(!tt_exists(ckdir));
}

/* normalize: the frontend's bn_mean/bn_var estimated from every training clip
 * equal the log-mel statistics computed here with the frontend directly. */
static void test_normalize(bp_registry *reg) {
    char cfg[700], out[700], wpath[800];
    snprintf(cfg, sizeof cfg, "%s/norm.cfg", g_tmp);
    snprintf(out, sizeof out, "%s/norm", g_tmp);
    tt_write_config(cfg, g_tmp, out, "stages = ( { steps = 3; } );\nnormalize = { items = 1000; };\n");
    bp_train_report rep;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(train(reg, cfg, NULL, 0, 0, 0, &rep, &err), &err);
    /* direct: melipd's logmel_raw of the 24 training clips */
    const bp_component_info *fe = bp_registry_find(reg, BP_KIND_FRONTEND, "melipd");
    const char *kv[] = {"clip_samples=8000", "target_frames=0"};
    bp_paramset *ps = NULL;
    void *inst = NULL;
    CHECK_OK(bp_paramset_from_strings(fe->desc, kv, 2, &ps, &err), &err);
    if (ps) CHECK_OK(bp_registry_create(reg, fe, bp_paramset_params(ps), NULL, &inst, &err), &err);
    double sum[2] = {0}, sum2[2] = {0}, n = 0;
    if (inst) {
        bp_stage *st = inst;
        int64_t as[2] = {2, TT_SAMPLES};
        bp_spec spec = bp_spec_f32(2, as, TT_RATE, NULL);
        bp_port ports[BP_MAX_OUTPUTS];
        uint32_t np = BP_MAX_OUTPUTS;
        CHECK_OK(st->prepare(st, &spec, ports, &np, &err), &err);
        int lm = -1;
        for (uint32_t i = 0; i < np; i++)
            if (strcmp(ports[i].name, "logmel_raw") == 0) lm = (int)i;
        CHECK(lm > 0);
        bp_tensor *outs[BP_MAX_OUTPUTS] = {0};
        for (uint32_t i = 0; lm > 0 && i < np; i++)
            if (i == 0 || (int)i == lm)
                CHECK_OK(bp_tensor_new(NULL, BP_DTYPE_F32, 3, ports[i].spec.shape, &outs[i], &err), &err);
        for (int i = 0; lm > 0 && i < 24; i++) {
            char p[900];
            snprintf(p, sizeof p, "%s/audio/c%06d.wav", g_tmp, i);
            bp_tensor *a = NULL;
            CHECK_OK(bp_audio_read(p, TT_RATE, 2, BP_RESAMPLE_BEST, &a, NULL, &err), &err);
            if (a) CHECK_OK(st->process(st, a, outs, np, &err), &err);
            bp_tensor_free(a);
            const float *x = outs[lm]->data;
            int64_t per = outs[lm]->shape[1] * outs[lm]->shape[2];
            for (int c = 0; c < 2; c++)
                for (int64_t k = 0; k < per; k++) {
                    sum[c] += x[c * per + k];
                    sum2[c] += (double)x[c * per + k] * x[c * per + k];
                }
            n += (double)per;
        }
        for (uint32_t i = 0; i < BP_MAX_OUTPUTS; i++) bp_tensor_free(outs[i]);
        st->destroy(st);
    }
    bp_paramset_free(ps);
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", out);
    bp_st_file *f = NULL;
    CHECK_OK(bp_st_open(wpath, &f, &err), &err);
    const char *ms = f ? bp_st_metadata(f, "frontend.bn_mean") : NULL,
               *vs = f ? bp_st_metadata(f, "frontend.bn_var") : NULL;
    CHECK(ms && vs);
    if (ms && vs && n > 0) {
        double m[2], v[2];
        CHECK(sscanf(ms, "[%lf, %lf]", &m[0], &m[1]) == 2 && sscanf(vs, "[%lf, %lf]", &v[0], &v[1]) == 2);
        for (int c = 0; c < 2; c++) {
            double dm = sum[c] / n, dv = sum2[c] / n - dm * dm;
            CHECK_NEAR(m[c], dm, 1e-6 * fabs(dm) + 1e-9);
            CHECK_NEAR(v[c], dv, 1e-6 * dv);
            printf("normalize: channel %d mean %.4f dB var %.3f (direct %.4f / %.3f)\n", c, m[c], v[c], dm, dv);
        }
    }
    bp_st_close(f);
    /* the estimate is part of the resolved configuration written beside the run */
    char cpath[800];
    snprintf(cpath, sizeof cpath, "%s/config.cfg", out);
    char *text = tt_read_file(cpath, NULL);
    CHECK(text && strstr(text, "bn_mean") && strstr(text, "bn_var"));
    free(text);
    /* normalize and explicit statistics exclude each other */
    const char *ov[] = {"frontend.bn_mean=[1.0, 2.0]"};
    bp_trainer *t = NULL;
    CHECK(bp_train_load(reg, cfg, ov, 1, &t, &err) == BP_ERR_INVALID && strstr(err.msg, "use one or the other"));
    bp_train_free(t);
}

int main(int argc, char **argv) {
    if (argc < 2) TEST_SKIP("usage: test_train_run PLUGIN_DIR");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/bp_train_run_%d", (int)getpid());
    tt_rmtree(g_tmp); /* a leftover of an earlier failed run with the same pid */
    if (tt_make_dataset(g_tmp, 24, 10) != 0) {
        fprintf(stderr, "cannot write the test dataset in %s\n", g_tmp);
        return 1;
    }
    bp_registry *reg = make_registry(argv[1]);
    if (reg) {
        test_learns(reg);
        test_stop_resume(reg);
        test_normalize(reg);
        bp_registry_free(reg);
    }
    if (!bp_test_failures) tt_rmtree(g_tmp);
    return TEST_RESULT();
}
