/* train: bp_train_load (create and check everything, the plan) and
 * bp_train_run (the loop: batches, forward, losses, backward, accumulation,
 * AdamW, log, evaluation, checkpoints, resumption). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

struct bp_trainer {
    bp_registry *reg;
    train_cfg cfg;
    bp_backend *be;
    train_frontend fe;
    train_data train, eval;
    int has_eval;
    train_model model;
    train_optim optim;
    train_eval ev;
    char *ckpt_dir;
    bp_sbuf plan;
    int ran; /* bp_train_run was called (the model is no longer at its initial state) */
};

static const char *const loss_names[TRAIN_LOSS_COUNT] = {"class", "distance", "direction"};
static const char *const head_names[TRAIN_HEAD_COUNT] = {"logits_class", "logits_distance", "logits_azimuth",
                                                         "logits_elevation"};

/* --------------------------------------------------------------- load -- */

/* Every loss a stage turns on needs its heads, and the class loss the dataset's classes. */
static bp_status check_heads(bp_trainer *t, bp_error *err) {
    const train_cfg *c = &t->cfg;
    const train_model *m = &t->model;
    for (uint32_t s = 0; s < c->n_stages; s++) {
        const train_stage_cfg *sc = &c->stages[s];
        static const int heads_of[TRAIN_LOSS_COUNT][2] = {
            {TRAIN_HEAD_CLASS, -1}, {TRAIN_HEAD_DISTANCE, -1}, {TRAIN_HEAD_AZIMUTH, TRAIN_HEAD_ELEVATION}};
        for (int l = 0; l < TRAIN_LOSS_COUNT; l++) {
            if (!sc->loss_on[l]) continue;
            for (int k = 0; k < 2; k++) {
                int h = heads_of[l][k];
                if (h >= 0 && m->head_port[h] < 0)
                    return bp_error_set(err, BP_ERR_SPEC, "%s: stage %s turns on the %s loss, but %s has no %s output",
                                        sc->where, sc->name, loss_names[l], m->label, head_names[h]);
            }
            if (l == TRAIN_LOSS_CLASS) {
                if (t->train.n_classes <= 0)
                    return bp_error_set(err, BP_ERR_SPEC,
                                        "%s: stage %s turns on the class loss, but %s has no 'classes' tensor",
                                        sc->where, sc->name, t->train.label);
                if (t->train.n_classes != m->head_width[TRAIN_HEAD_CLASS])
                    return bp_error_set(err, BP_ERR_SPEC,
                                        "%s has %lld classes but %s's logits_class has %lld (set its n_classes)",
                                        t->train.label, (long long)t->train.n_classes, m->label,
                                        (long long)m->head_width[TRAIN_HEAD_CLASS]);
            }
        }
    }
    return BP_OK;
}

static void write_plan(bp_trainer *t) {
    const train_cfg *c = &t->cfg;
    const train_model *m = &t->model;
    bp_sbuf *b = &t->plan;
    char s1[256], s2[256];
    int64_t per_step = c->batch_size * c->accum_steps;
    bp_sbuf_printf(b, "train     %s (fingerprint %s)\n", bp_config_label(c->cfg), c->fingerprint);
    bp_sbuf_printf(b, "data      train: %s, %lld items", t->train.label, (long long)t->train.n_items);
    if (t->train.n_classes) bp_sbuf_printf(b, ", %lld classes", (long long)t->train.n_classes);
    if (t->has_eval) bp_sbuf_printf(b, "; eval: %s, %lld items", t->eval.label, (long long)t->eval.n_items);
    bp_sbuf_printf(b, "\n");
    bp_sbuf_printf(b, "frontend  %s %s: audio %s -> features %s\n", c->frontend.comp->desc->name,
                   c->frontend.comp->desc->version, bp_spec_describe(&t->fe.prepared, s1, sizeof s1),
                   bp_spec_describe(&t->fe.ports[0].spec, s2, sizeof s2));
    bp_sbuf_printf(b, "encoder   %s %s (%s): %.3f M trainable values in %u tensors, %lld buffer values; %d layer ids\n",
                   c->encoder.comp->desc->name, c->encoder.comp->desc->version, c->encoder.comp->plugin->path,
                   (double)m->n_trainable_values / 1e6, m->n_params, (long long)m->n_buffer_values, m->n_layers);
    bp_sbuf_printf(b, "heads    ");
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++)
        if (m->head_port[h] >= 0) bp_sbuf_printf(b, " %s[%lld]", head_names[h], (long long)m->head_width[h]);
    bp_sbuf_printf(b, "\n");
    if (c->init_weights)
        bp_sbuf_printf(b, "init      %s (%s)\n", c->init_weights, c->init_strict ? "strict" : "what matches by name");
    if (c->norm_ch) {
        bp_sbuf_printf(b, "normalize %s bn_mean/bn_var from %lld training clips:", t->fe.label,
                       (long long)c->norm_items);
        for (uint32_t i = 0; i < c->norm_ch; i++) bp_sbuf_printf(b, " %.4g/%.4g", c->norm_mean[i], c->norm_var[i]);
        bp_sbuf_printf(b, "\n");
    }
    bp_sbuf_printf(b, "backend   %s: %s, %d threads\n", bp_backend_name(t->be), bp_backend_device(t->be),
                   bp_backend_threads(t->be));
    bp_sbuf_printf(b, "batch     %lld x %lld accumulation = %lld examples per step; %.2f steps per epoch\n",
                   (long long)c->batch_size, (long long)c->accum_steps, (long long)per_step,
                   (double)t->train.n_items / (double)per_step);
    if (c->lr > 0)
        bp_sbuf_printf(b, "optimizer AdamW lr %g", c->lr);
    else
        bp_sbuf_printf(b, "optimizer AdamW lr %g (blr %g x %lld / 256)", train_cfg_peak_lr(c), c->blr,
                       (long long)per_step);
    bp_sbuf_printf(b, ", betas %g/%g, eps %g, weight decay %g, layer decay %g, min lr %g\n", c->beta1, c->beta2, c->eps,
                   c->weight_decay, c->layer_decay, c->min_lr);
    bp_sbuf_printf(b, "losses    %g x BCE(class) + %g x CE(distance) + %g x (CE(azimuth) + CE(elevation))\n",
                   c->w_class, c->w_distance, c->w_direction);
    int64_t total = train_cfg_total_steps(c), at = 0;
    bp_sbuf_printf(b, "schedule  warm-up %lld steps, half-cosine to step %lld\n", (long long)c->warmup_steps,
                   (long long)total);
    for (uint32_t s = 0; s < c->n_stages; s++) {
        const train_stage_cfg *sc = &c->stages[s];
        bp_sbuf_printf(b, "%s %s: steps %lld-%lld (%lld", s == 0 ? "stages   " : "         ", sc->name, (long long)at,
                       (long long)(at + sc->steps - 1), (long long)sc->steps);
        if (sc->epochs > 0) bp_sbuf_printf(b, " = %g epochs", sc->epochs);
        bp_sbuf_printf(b, "), losses");
        for (int l = 0; l < TRAIN_LOSS_COUNT; l++)
            if (sc->loss_on[l]) bp_sbuf_printf(b, " %s", loss_names[l]);
        bp_sbuf_printf(b, "\n");
        at += sc->steps;
    }
    bp_sbuf_printf(b, "augment   token masking t %g f %g, SpecAugment %d/%d, drop path %g, mixup p %g alpha %g (%s)\n",
                   c->mask_t_prob, c->mask_f_prob, c->specaug_freq, c->specaug_time, c->drop_path, c->mixup_prob,
                   c->mixup_alpha,
                   c->mixup_spatial == TRAIN_MIXUP_SPATIAL_DOMINANT ? "spatial targets of the larger-lambda clip"
                                                                    : "no spatial loss on mixed examples");
    if (t->has_eval) {
        bp_sbuf_printf(b, "eval      ");
        if (c->eval_every)
            bp_sbuf_printf(b, "every %lld steps and at the end", (long long)c->eval_every);
        else
            bp_sbuf_printf(b, "at the end");
        bp_sbuf_printf(b, ": validation losses");
        for (uint32_t k = 0; k < c->n_metrics; k++) bp_sbuf_printf(b, ", %s", c->metrics[k].comp->desc->name);
        bp_sbuf_printf(b, "\n");
    } else {
        bp_sbuf_printf(b, "eval      none (no data.eval)\n");
    }
    bp_sbuf_printf(b, "output    %s: checkpoints/ (", c->out_dir);
    if (c->ckpt_every) bp_sbuf_printf(b, "every %lld steps, ", (long long)c->ckpt_every);
    bp_sbuf_printf(b, "keep %lld), train.jsonl, weights.safetensors\n", (long long)c->ckpt_keep);
}

static bp_status load(bp_trainer *t, const char *path, const char *const *overrides, uint32_t n, bp_error *err) {
    train_cfg *c = &t->cfg;
    bp_status st = train_cfg_load(t->reg, path, overrides, n, c, err);
    if (st != BP_OK) return st;
    t->ckpt_dir = train_ckpt_dir(c->out_dir);
    if (!t->ckpt_dir) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    if ((st = bp_registry_create_backend(t->reg, c->backend.comp->desc->name, bp_paramset_params(c->backend.params),
                                         &t->be, err)) != BP_OK)
        return st;
    /* threads = 0 means "every core": what decides the bits is the count the backend uses */
    char line[160];
    snprintf(line, sizeof line, "# backend %s runs %d threads", bp_backend_name(t->be), bp_backend_threads(t->be));
    if ((st = train_cfg_fingerprint_add(c, line, err)) != BP_OK) return st;
    if ((st = train_frontend_create(&t->fe, t->reg, &c->frontend, err)) != BP_OK) return st;
    if ((st = train_data_open(&t->train, t->reg, &c->data_train, &t->fe, err)) != BP_OK) return st;
    int64_t shape[3];
    if ((st = train_data_feature_shape(&t->train, shape, err)) != BP_OK) return st;
    if (c->norm_items > 0) { /* estimate the frontend's normalisation, then recreate it with it */
        double mean[TRAIN_NORM_MAX_CH], var[TRAIN_NORM_MAX_CH];
        uint32_t n_ch = 0;
        if ((st = train_norm_estimate(&t->train, c->seed, c->norm_items, mean, var, &n_ch, err)) != BP_OK) return st;
        if ((st = train_cfg_set_frontend_norm(c, mean, var, n_ch, err)) != BP_OK) return st;
        train_frontend_free(&t->fe);
        if ((st = train_frontend_create(&t->fe, t->reg, &c->frontend, err)) != BP_OK) return st;
        if ((st = train_data_feature_shape(&t->train, shape, err)) != BP_OK) return st;
    }
    bp_spec features = t->fe.ports[0].spec;
    if (c->has_eval_data) {
        if ((st = train_data_open(&t->eval, t->reg, &c->data_eval, &t->fe, err)) != BP_OK) return st;
        t->has_eval = 1;
        int64_t es[3];
        if ((st = train_data_feature_shape(&t->eval, es, err)) != BP_OK) return st;
        if (memcmp(es, shape, sizeof es) != 0)
            return bp_error_set(err, BP_ERR_SPEC,
                                "%s gives features [%lld, %lld, %lld] for the evaluation clips but [%lld, %lld, %lld] "
                                "for the training clips (give both datasets the same clip length)",
                                t->fe.label, (long long)es[0], (long long)es[1], (long long)es[2], (long long)shape[0],
                                (long long)shape[1], (long long)shape[2]);
        if ((st = train_data_feature_shape(&t->train, shape, err)) != BP_OK) return st;
    }
    if ((st = train_cfg_resolve_steps(c, t->train.n_items, err)) != BP_OK) return st;
    if ((st = train_model_create(&t->model, t->reg, &c->encoder, t->be, &features, t->fe.label, err)) != BP_OK)
        return st;
    if ((st = check_heads(t, err)) != BP_OK) return st;
    if (c->init_weights && (st = train_model_init_weights(&t->model, c->init_weights, c->init_strict,
                                                          bp_registry_host(t->reg), err)) != BP_OK)
        return st;
    if ((st = train_optim_init(&t->optim, &t->model, c, err)) != BP_OK) return st;
    if (t->has_eval && (st = train_eval_create(&t->ev, t->reg, c, &t->model, &t->eval, err)) != BP_OK) return st;
    write_plan(t);
    return t->plan.failed ? bp_error_set(err, BP_ERR_NOMEM, "train: out of memory") : BP_OK;
}

bp_status bp_train_load(bp_registry *reg, const char *path, const char *const *overrides, uint32_t n, bp_trainer **out,
                        bp_error *err) {
    *out = NULL;
    if (!reg || !path) return bp_error_set(err, BP_ERR_INVALID, "train: NULL registry or path");
    bp_trainer *t = calloc(1, sizeof *t);
    if (!t) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    t->reg = reg;
    bp_status st = load(t, path, overrides, n, err);
    if (st != BP_OK) {
        bp_train_free(t);
        return st;
    }
    *out = t;
    return BP_OK;
}

void bp_train_free(bp_trainer *t) {
    if (!t) return;
    train_eval_free(&t->ev);
    train_optim_free(&t->optim);
    train_model_free(&t->model);
    train_data_close(&t->eval);
    train_data_close(&t->train);
    train_frontend_free(&t->fe);
    bp_backend_free(t->be);
    train_cfg_free(&t->cfg);
    free(t->ckpt_dir);
    bp_sbuf_free(&t->plan);
    free(t);
}

const char *bp_train_plan(const bp_trainer *t) { return t && t->plan.s ? t->plan.s : ""; }

/* ---------------------------------------------------------------- run -- */

typedef struct run_bufs {
    float *features;
    float *logits[TRAIN_HEAD_COUNT];
    float *grads[TRAIN_HEAD_COUNT];
    train_targets tg;
} run_bufs;

static void run_bufs_free(run_bufs *b) {
    free(b->features);
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++) {
        free(b->logits[h]);
        free(b->grads[h]);
    }
    train_targets_free(&b->tg);
    memset(b, 0, sizeof *b);
}

static bp_status run_bufs_alloc(run_bufs *b, const bp_trainer *t, bp_error *err) {
    memset(b, 0, sizeof *b);
    int64_t B = t->cfg.batch_size;
    int64_t feat = t->fe.feat_shape[0] * t->fe.feat_shape[1] * t->fe.feat_shape[2];
    int ok = (b->features = malloc((size_t)(B * feat) * sizeof(float))) != NULL;
    for (int h = 0; h < TRAIN_HEAD_COUNT && ok; h++) {
        if (t->model.head_port[h] < 0) continue;
        size_t n = (size_t)(B * t->model.head_width[h]);
        ok = (b->logits[h] = malloc(n * sizeof(float))) && (b->grads[h] = malloc(n * sizeof(float)));
    }
    if (!ok) {
        run_bufs_free(b);
        return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    }
    return train_targets_alloc(&b->tg, B, t->train.n_classes, err);
}

static train_loss_weights stage_weights(const bp_trainer *t, uint32_t stage) {
    const train_cfg *c = &t->cfg;
    const train_stage_cfg *sc = &c->stages[stage];
    train_loss_weights w;
    memset(&w, 0, sizeof w);
    w.w[TRAIN_HEAD_CLASS] = c->w_class;
    w.w[TRAIN_HEAD_DISTANCE] = c->w_distance;
    w.w[TRAIN_HEAD_AZIMUTH] = w.w[TRAIN_HEAD_ELEVATION] = c->w_direction;
    w.on[TRAIN_HEAD_CLASS] = sc->loss_on[TRAIN_LOSS_CLASS];
    w.on[TRAIN_HEAD_DISTANCE] = sc->loss_on[TRAIN_LOSS_DISTANCE];
    w.on[TRAIN_HEAD_AZIMUTH] = w.on[TRAIN_HEAD_ELEVATION] = sc->loss_on[TRAIN_LOSS_DIRECTION];
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++)
        if (t->model.head_port[h] < 0) w.on[h] = 0;
    return w;
}

/* One optimizer step: accum_steps × (batch → forward → losses → backward), then AdamW. */
static bp_status train_step(bp_trainer *t, run_bufs *b, int64_t step, double lr, train_loss *mean, uint32_t *n_mixed,
                            double *data_s, bp_error *err) {
    const train_cfg *c = &t->cfg;
    train_model *m = &t->model;
    train_loss_weights w = stage_weights(t, train_cfg_stage_of(c, step));
    memset(mean, 0, sizeof *mean);
    *n_mixed = 0;
    *data_s = 0;
    bp_status st = train_model_zero_grad(m, err);
    for (int64_t k = 0; k < c->accum_steps && st == BP_OK; k++) {
        int64_t micro = step * c->accum_steps + k;
        train_batch_req req;
        memset(&req, 0, sizeof req);
        req.first = micro * c->batch_size;
        req.batch = c->batch_size;
        req.shuffle = 1;
        req.seed = c->seed;
        req.mixup_prob = c->mixup_prob;
        req.mixup_alpha = c->mixup_alpha;
        req.mixup_spatial = c->mixup_spatial;
        double d0 = bp_now();
        if ((st = train_data_batch(&t->train, &req, b->features, &b->tg, err)) != BP_OK) break;
        *data_s += bp_now() - d0;
        *n_mixed += b->tg.n_mixed;
        if ((st = train_model_upload(m, b->features, err)) != BP_OK) break;
        bp_train_step ts;
        memset(&ts, 0, sizeof ts);
        ts.struct_size = sizeof ts;
        ts.seed = train_hash(c->seed, TRAIN_RNG_ENCODER, (uint64_t)micro, 0);
        ts.mask_t_prob = (float)c->mask_t_prob;
        ts.mask_f_prob = (float)c->mask_f_prob;
        ts.specaug_freq = c->specaug_freq;
        ts.specaug_time = c->specaug_time;
        ts.drop_path = (float)c->drop_path;
        if ((st = train_model_forward(m, &ts, err)) != BP_OK) break;
        for (int h = 0; h < TRAIN_HEAD_COUNT && st == BP_OK; h++)
            if (b->logits[h]) st = train_model_read_head(m, h, b->logits[h], err);
        if (st != BP_OK) break;
        train_loss loss;
        if ((st = train_loss_compute((const float *const *)b->logits, m->head_width, &b->tg, &w, &loss, b->grads,
                                     err)) != BP_OK) {
            bp_error_prefix(err, "step %lld: ", (long long)step + 1);
            break;
        }
        for (int h = 0; h < TRAIN_HEAD_COUNT; h++) {
            mean->term[h] += loss.term[h] / (double)c->accum_steps;
            mean->count[h] += loss.count[h];
        }
        mean->total += loss.total / (double)c->accum_steps;
        float *g[TRAIN_HEAD_COUNT];
        for (int h = 0; h < TRAIN_HEAD_COUNT; h++) g[h] = w.on[h] ? b->grads[h] : NULL;
        st = train_model_backward(m, g, err);
    }
    if (st == BP_OK) st = train_optim_step(&t->optim, m, lr, step + 1, (float)(1.0 / (double)c->accum_steps), err);
    return st;
}

static void json_num(json_t *o, const char *k, double v) {
    json_object_set_new(o, k, isfinite(v) ? json_real(v) : json_null());
}

static bp_status log_step(bp_trainer *t, train_log *lg, int64_t step, double lr, const train_loss *loss,
                          uint32_t n_mixed, double step_s, double data_s, double elapsed, bp_error *err) {
    const train_cfg *c = &t->cfg;
    json_t *o = json_object();
    if (!o) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    int64_t per_step = c->batch_size * c->accum_steps;
    json_object_set_new(o, "step", json_integer(step + 1));
    json_object_set_new(o, "stage", json_string(c->stages[train_cfg_stage_of(c, step)].name));
    json_num(o, "epoch", (double)((step + 1) * per_step) / (double)t->train.n_items);
    json_num(o, "lr", lr);
    json_num(o, "loss", loss->total);
    static const char *const keys[TRAIN_HEAD_COUNT] = {"loss_class", "loss_distance", "loss_azimuth", "loss_elevation"};
    for (int h = 0; h < TRAIN_HEAD_COUNT; h++)
        if (t->model.head_port[h] >= 0) json_num(o, keys[h], loss->term[h]);
    json_object_set_new(o, "mixed", json_integer(n_mixed));
    json_num(o, "examples_per_s", step_s > 0 ? (double)per_step / step_s : 0.0);
    json_num(o, "s_per_step", step_s);
    json_num(o, "data_s", data_s);
    json_num(o, "time_s", elapsed);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    bp_status st = train_log_line(lg, s, err);
    free(s);
    return st;
}

static bp_status log_eval(train_log *lg, int64_t step, const bp_metric_result *r, uint32_t n, bp_error *err) {
    json_t *o = json_object(), *ev = json_object();
    if (!o || !ev) {
        json_decref(o);
        json_decref(ev);
        return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    }
    json_object_set_new(o, "step", json_integer(step));
    for (uint32_t i = 0; i < n; i++) json_num(ev, r[i].name, r[i].value);
    json_object_set_new(o, "eval", ev);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    bp_status st = train_log_line(lg, s, err);
    free(s);
    return st;
}

static void logf_host(const bp_trainer *t, int32_t level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_host(const bp_trainer *t, int32_t level, const char *fmt, ...) {
    const bp_host *h = bp_registry_host(t->reg);
    if (!h || !h->log) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    h->log(h, level, "train", buf);
}

static bp_status write_config_copy(const bp_trainer *t, bp_error *err) {
    bp_sbuf text = {0};
    bp_status st = bp_config_to_text(t->cfg.cfg, &text, err);
    char *path = bp_strdupf("%s/config.cfg", t->cfg.out_dir);
    if (st == BP_OK && !path) st = bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    if (st == BP_OK) st = bp_write_file_atomic(path, text.s ? text.s : "", text.len, err);
    free(path);
    bp_sbuf_free(&text);
    return st;
}

/* Evaluate, log every result, and keep the summary ones (names without '/',
 * i.e. not per-class values) in the report. */
static bp_status run_eval(bp_trainer *t, int64_t step, train_log *lg, bp_train_report *rep, bp_error *err) {
    train_loss_weights w = stage_weights(t, train_cfg_stage_of(&t->cfg, step > 0 ? step - 1 : 0));
    uint32_t n = 0;
    bp_metric_result *res = calloc(TRAIN_MAX_EVAL_RESULTS, sizeof *res);
    if (!res) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    bp_status st = train_eval_run(&t->ev, &t->model, &t->eval, &t->cfg, &w, res, TRAIN_MAX_EVAL_RESULTS, &n, err);
    if (st != BP_OK) bp_error_prefix(err, "evaluation after step %lld: ", (long long)step);
    if (st == BP_OK) {
        rep->n_results = 0;
        for (uint32_t i = 0; i < n && rep->n_results < BP_TRAIN_MAX_RESULTS; i++)
            if (!strchr(res[i].name, '/')) rep->results[rep->n_results++] = res[i];
        st = train_model_set_batch(&t->model, t->cfg.batch_size, err);
    }
    if (st == BP_OK) st = log_eval(lg, step, res, n, err);
    free(res);
    return st;
}

bp_status bp_train_run(bp_trainer *t, const bp_train_options *opt, bp_train_report *rep, bp_error *err) {
    if (t->ran)
        return bp_error_set(err, BP_ERR_INVALID,
                            "train: bp_train_run was already called on this trainer; load the configuration again");
    t->ran = 1;
    bp_train_options o = bp_train_options_default();
    if (opt) memcpy(&o, opt, opt->struct_size < sizeof o ? opt->struct_size : sizeof o);
    bp_train_report r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    train_cfg *c = &t->cfg;
    const bp_host *host = bp_registry_host(t->reg);
    double t0 = bp_now();
    int64_t total = train_cfg_total_steps(c);
    r.total_steps = total;
    snprintf(r.out_dir, sizeof r.out_dir, "%s", c->out_dir);
    snprintf(r.log, sizeof r.log, "%s/train.jsonl", c->out_dir);
    train_log lg;
    memset(&lg, 0, sizeof lg);
    run_bufs bufs;
    memset(&bufs, 0, sizeof bufs);
    train_state state;
    memset(&state, 0, sizeof state);

    bp_status st = bp_mkdir_p(t->ckpt_dir, err);
    if (st == BP_OK) train_ckpt_clean_temps(t->ckpt_dir);
    int32_t existing = st == BP_OK ? train_ckpt_count(t->ckpt_dir) : 0;
    if (st == BP_OK && o.restart) {
        st = train_ckpt_remove_all(t->ckpt_dir, err);
        existing = 0;
    } else if (st == BP_OK && existing > 0 && !o.resume) {
        char *latest = NULL;
        int64_t ls = -1;
        train_ckpt_latest(t->ckpt_dir, &latest, &ls, err);
        st = bp_error_set(err, BP_ERR_INVALID,
                          "%s already holds %d checkpoint(s) (newest: step %lld): pass --resume to continue that run "
                          "or --restart to start it over",
                          t->ckpt_dir, existing, (long long)ls);
        free(latest);
    }
    if (st == BP_OK && o.resume && existing > 0) {
        char *latest = NULL;
        int64_t ls = -1;
        st = train_ckpt_latest(t->ckpt_dir, &latest, &ls, err);
        if (st == BP_OK && latest) st = train_ckpt_load(latest, &t->model, &t->optim, c, &state, err);
        if (st == BP_OK) {
            r.resumed = 1;
            snprintf(r.last_checkpoint, sizeof r.last_checkpoint, "%s", latest);
            logf_host(t, BP_LOG_INFO, "resumed from %s (step %lld of %lld)", latest, (long long)state.step,
                      (long long)total);
        }
        free(latest);
    }
    r.start_step = r.end_step = state.step;
    if (st == BP_OK) st = write_config_copy(t, err);
    if (st == BP_OK) st = train_log_open(&lg, c->out_dir, r.resumed ? state.step : -1, err);
    if (st == BP_OK) st = run_bufs_alloc(&bufs, t, err);
    if (st == BP_OK) st = train_model_set_training(&t->model, 1, err);
    if (st == BP_OK) st = train_model_set_batch(&t->model, c->batch_size, err);

    bp_lr_schedule sched = {sizeof sched, train_cfg_peak_lr(c), c->min_lr, c->warmup_steps, total};
    int64_t per_step = c->batch_size * c->accum_steps;
    int64_t steps_here = 0, todo = total - state.step;
    if (o.stop_after > 0 && o.stop_after < todo) todo = o.stop_after;
    double loop_t0 = bp_now(), ema = NAN;
    int stop = 0;
    while (st == BP_OK && state.step < total && !stop) {
        int64_t step = state.step;
        double s0 = bp_now();
        double lr = bp_lr_at(&sched, step);
        train_loss loss;
        uint32_t n_mixed = 0;
        double data_s = 0;
        st = train_step(t, &bufs, step, lr, &loss, &n_mixed, &data_s, err);
        if (st != BP_OK) break;
        double step_s = bp_now() - s0;
        state.step = step + 1;
        state.examples += per_step;
        state.stage = train_cfg_stage_of(c, state.step);
        steps_here++;
        r.end_step = state.step;
        r.last_loss = loss.total;
        ema = isnan(ema) ? loss.total : 0.9 * ema + 0.1 * loss.total;
        int last = state.step == total;
        stop = steps_here >= todo || (host && host->cancelled && host->cancelled(host));
        if (state.step % c->log_every == 0 || last)
            st = log_step(t, &lg, step, lr, &loss, n_mixed, step_s, data_s, bp_now() - t0, err);
        if (st == BP_OK && t->has_eval && ((c->eval_every && state.step % c->eval_every == 0) || last))
            st = run_eval(t, state.step, &lg, &r, err);
        if (st == BP_OK && ((c->ckpt_every && state.step % c->ckpt_every == 0) || last || stop)) {
            st = train_ckpt_write(t->ckpt_dir, &t->model, &t->optim, &state, c, r.last_checkpoint,
                                  sizeof r.last_checkpoint, err);
            if (st == BP_OK) st = train_ckpt_prune(t->ckpt_dir, c->ckpt_keep, err);
        }
        if (o.progress) {
            char item[160];
            snprintf(item, sizeof item, "step %lld/%lld %s loss %.4g lr %.3g", (long long)state.step, (long long)total,
                     c->stages[train_cfg_stage_of(c, step)].name, ema, lr);
            o.progress(o.progress_user, (uint64_t)steps_here, (uint64_t)todo, item, bp_now() - loop_t0);
        }
    }
    double loop_s = bp_now() - loop_t0;
    if (steps_here > 0 && loop_s > 0) {
        r.s_per_step = loop_s / (double)steps_here;
        r.examples_per_s = (double)(steps_here * per_step) / loop_s;
    }
    if (st == BP_OK && state.step >= total) {
        char *wpath = bp_strdupf("%s/weights.safetensors", c->out_dir);
        if (!wpath) st = bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
        if (st == BP_OK) st = train_weights_write(wpath, &t->model, c, &state, err);
        if (st == BP_OK) {
            snprintf(r.weights, sizeof r.weights, "%s", wpath);
            r.finished = 1;
        }
        free(wpath);
    } else if (st == BP_OK && host && host->cancelled && host->cancelled(host)) {
        st = bp_error_set(err, BP_ERR_CANCELLED, "train: stopped at step %lld of %lld (checkpoint %s)",
                          (long long)state.step, (long long)total, r.last_checkpoint);
    }
    train_log_close(&lg);
    run_bufs_free(&bufs);
    r.seconds = bp_now() - t0;
    if (rep) memcpy(rep, &r, rep->struct_size && rep->struct_size < sizeof r ? rep->struct_size : sizeof r);
    return st;
}
