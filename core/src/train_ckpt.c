/* train: checkpoints and the final weights, in safetensors.
 *
 * A checkpoint ckpt-NNNNNNNN.safetensors (NNNNNNNN = optimizer steps done)
 * holds every parameter and buffer of the encoder under its official name,
 * the AdamW moments as optimizer.exp_avg.<name> / optimizer.exp_avg_sq.<name>,
 * and in its metadata the trainer state (step, examples consumed, stage) and
 * the configuration fingerprint with the settings it was made from. Files are
 * written atomically (temporary file, fsync, rename); an interrupted write
 * leaves at most a temporary file, removed by the next run. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/safetensors.h"
#include "train_internal.h"

#define CKPT_FORMAT "batpipe.train.checkpoint/1"
#define WEIGHTS_FORMAT "batpipe.train.weights/1"

char *train_ckpt_dir(const char *out_dir) { return bp_strdupf("%s/checkpoints", out_dir); }

/* "ckpt-00000042.safetensors" → 42; −1 for any other name */
static int64_t ckpt_step_of(const char *name) {
    if (strncmp(name, "ckpt-", 5) != 0) return -1;
    const char *p = name + 5;
    int64_t v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 18) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || strcmp(p, ".safetensors") != 0) return -1;
    return v;
}

static int is_temp_name(const char *name) {
    /* the safetensors writer's "<file>.tmp.XXXXXX" and bp_write_file_atomic's ".<file>.XXXXXX" */
    static const char *const files[] = {"weights.safetensors", "train.jsonl", "config.cfg", NULL};
    if (strncmp(name, "ckpt-", 5) == 0 && strstr(name, ".safetensors.tmp.")) return 1;
    for (const char *const *f = files; *f; f++) {
        size_t n = strlen(*f);
        if (strncmp(name, *f, n) == 0 && strncmp(name + n, ".tmp.", 5) == 0) return 1;
        if (name[0] == '.' && strncmp(name + 1, *f, n) == 0 && name[1 + n] == '.') return 1;
    }
    return 0;
}

static void clean_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_temp_name(e->d_name)) continue;
        char *p = bp_strdupf("%s/%s", dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
}

void train_ckpt_clean_temps(const char *ckpt_dir) {
    clean_dir(ckpt_dir);
    char *parent = bp_dirname(ckpt_dir);
    if (parent) clean_dir(parent);
    free(parent);
}

/* steps of the checkpoint files, ascending */
static int64_t *list_steps(const char *ckpt_dir, size_t *n) {
    *n = 0;
    size_t cap = 0;
    int64_t *v = NULL;
    DIR *d = opendir(ckpt_dir);
    if (!d) return NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t s = ckpt_step_of(e->d_name);
        if (s < 0) continue;
        if (bp_grow((void **)&v, &cap, *n + 1, sizeof *v) != 0) break;
        v[(*n)++] = s;
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++) /* insertion sort: a handful of files */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            int64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v;
}

static char *ckpt_path(const char *ckpt_dir, int64_t step) {
    return bp_strdupf("%s/ckpt-%08lld.safetensors", ckpt_dir, (long long)step);
}

int32_t train_ckpt_count(const char *ckpt_dir) {
    size_t n;
    free(list_steps(ckpt_dir, &n));
    return (int32_t)n;
}

bp_status train_ckpt_latest(const char *ckpt_dir, char **path, int64_t *step, bp_error *err) {
    *path = NULL;
    *step = -1;
    size_t n;
    int64_t *v = list_steps(ckpt_dir, &n);
    if (n == 0) {
        free(v);
        return BP_OK;
    }
    *path = ckpt_path(ckpt_dir, v[n - 1]);
    *step = v[n - 1];
    free(v);
    return *path ? BP_OK : bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
}

bp_status train_ckpt_remove_all(const char *ckpt_dir, bp_error *err) {
    size_t n;
    int64_t *v = list_steps(ckpt_dir, &n);
    bp_status st = BP_OK;
    for (size_t i = 0; i < n && st == BP_OK; i++) {
        char *p = ckpt_path(ckpt_dir, v[i]);
        if (!p || (unlink(p) != 0 && errno != ENOENT))
            st = bp_error_set(err, BP_ERR_IO, "%s: cannot remove: %s", p ? p : ckpt_dir, strerror(errno));
        free(p);
    }
    free(v);
    train_ckpt_clean_temps(ckpt_dir);
    return st;
}

bp_status train_ckpt_prune(const char *ckpt_dir, int64_t keep, bp_error *err) {
    size_t n;
    int64_t *v = list_steps(ckpt_dir, &n);
    bp_status st = BP_OK;
    for (size_t i = 0; i + (size_t)keep < n && st == BP_OK; i++) {
        char *p = ckpt_path(ckpt_dir, v[i]);
        if (!p || (unlink(p) != 0 && errno != ENOENT))
            st = bp_error_set(err, BP_ERR_IO, "%s: cannot remove: %s", p ? p : ckpt_dir, strerror(errno));
        free(p);
    }
    free(v);
    return st;
}

/* ------------------------------------------------------------- writing -- */

typedef struct host_copies {
    void **bufs;
    size_t n, cap;
} host_copies;

static void host_copies_free(host_copies *h) {
    for (size_t i = 0; i < h->n; i++) free(h->bufs[i]);
    free(h->bufs);
    memset(h, 0, sizeof *h);
}

/* Add a backend tensor to the writer: straight from its memory when the
 * backend's memory is the host's, else through a host copy. */
static bp_status add_tensor(bp_st_writer *w, const char *name, const bp_tensor *t, host_copies *hc, bp_error *err) {
    bp_tensor v = bp_tensor_view(t->dtype, t->ndim, t->shape, t->data);
    if (t->backend && !bp_backend_is_host(t->backend)) {
        size_t nb = bp_tensor_nbytes(t);
        void *buf = malloc(nb ? nb : 1);
        if (!buf || bp_grow((void **)&hc->bufs, &hc->cap, hc->n + 1, sizeof(void *)) != 0) {
            free(buf);
            return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
        }
        hc->bufs[hc->n++] = buf;
        bp_status st = bp_tensor_read(t, buf, nb, err);
        if (st != BP_OK) return st;
        v.data = buf;
    }
    return bp_st_writer_add(w, name, &v, err);
}

static bp_status add_meta_int(bp_st_writer *w, const char *key, int64_t v, bp_error *err) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return bp_st_writer_set_metadata(w, key, buf, err);
}

static bp_status write_common(bp_st_writer *w, const train_model *m, const train_cfg *c, const train_state *s,
                              const char *format, host_copies *hc, bp_error *err) {
    bp_status st = bp_backend_sync(m->be, err);
    for (uint32_t i = 0; i < m->n_params && st == BP_OK; i++)
        st = add_tensor(w, m->params[i].name, m->params[i].value, hc, err);
    if (st == BP_OK) st = bp_st_writer_set_metadata(w, "format", format, err);
    if (st == BP_OK) st = bp_st_writer_set_metadata(w, "batpipe_version", BP_VERSION_STRING, err);
    if (st == BP_OK) st = bp_st_writer_set_metadata(w, "encoder", c->encoder.comp->desc->name, err);
    if (st == BP_OK) st = bp_st_writer_set_metadata(w, "fingerprint", c->fingerprint, err);
    if (st == BP_OK) st = bp_st_writer_set_metadata(w, "config", c->fingerprint_text, err);
    if (st == BP_OK) st = add_meta_int(w, "step", s->step, err);
    if (st == BP_OK) st = add_meta_int(w, "examples", s->examples, err);
    if (st == BP_OK) st = add_meta_int(w, "stage", s->stage, err);
    for (int k = 0; k < 2 && st == BP_OK && c->norm_ch; k++) { /* normalize: the frontend's estimated statistics */
        char buf[512];
        size_t len = (size_t)snprintf(buf, sizeof buf, "[");
        for (uint32_t i = 0; i < c->norm_ch && len < sizeof buf; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%.9e", i ? ", " : "",
                                    k ? c->norm_var[i] : c->norm_mean[i]);
        if (len < sizeof buf) snprintf(buf + len, sizeof buf - len, "]");
        st = bp_st_writer_set_metadata(w, k ? "frontend.bn_var" : "frontend.bn_mean", buf, err);
    }
    return st;
}

bp_status train_ckpt_write(const char *ckpt_dir, const train_model *m, const train_optim *o, const train_state *s,
                           const train_cfg *c, char *path_out, size_t cap, bp_error *err) {
    bp_status st = bp_mkdir_p(ckpt_dir, err);
    if (st != BP_OK) return st;
    char *path = ckpt_path(ckpt_dir, s->step);
    bp_st_writer *w = NULL;
    host_copies hc = {0};
    if (!path) return bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    st = bp_st_writer_new(&w, err);
    if (st == BP_OK) st = write_common(w, m, c, s, CKPT_FORMAT, &hc, err);
    for (uint32_t i = 0; i < o->n && st == BP_OK; i++) {
        if (!o->m[i]) continue;
        char name[600];
        snprintf(name, sizeof name, "optimizer.exp_avg.%s", m->params[i].name);
        st = add_tensor(w, name, o->m[i], &hc, err);
        snprintf(name, sizeof name, "optimizer.exp_avg_sq.%s", m->params[i].name);
        if (st == BP_OK) st = add_tensor(w, name, o->v[i], &hc, err);
    }
    if (st == BP_OK) st = bp_st_writer_write(w, path, err);
    if (st == BP_OK && path_out) snprintf(path_out, cap, "%s", path);
    bp_st_writer_free(w);
    host_copies_free(&hc);
    free(path);
    return st;
}

/* The estimated frontend normalisation under the official names of Spatial-AST's
 * BatchNorm2d over the log-mel maps (melipd's `weights` reads them), unless the
 * encoder has tensors of those names itself. */
static bp_status add_frontend_norm(bp_st_writer *w, const train_model *m, const train_cfg *c, float *buf,
                                   bp_error *err) {
    static const char *const names[2] = {"bn.running_mean", "bn.running_var"};
    bp_status st = BP_OK;
    for (int k = 0; k < 2 && st == BP_OK; k++) {
        int taken = 0;
        for (uint32_t i = 0; i < m->n_params; i++) taken |= strcmp(m->params[i].name, names[k]) == 0;
        if (taken) continue;
        for (uint32_t i = 0; i < c->norm_ch; i++)
            buf[k * TRAIN_NORM_MAX_CH + i] = (float)(k ? c->norm_var[i] : c->norm_mean[i]);
        int64_t shape[1] = {c->norm_ch};
        bp_tensor t = bp_tensor_view(BP_DTYPE_F32, 1, shape, buf + k * TRAIN_NORM_MAX_CH);
        st = bp_st_writer_add(w, names[k], &t, err);
    }
    return st;
}

bp_status train_weights_write(const char *path, const train_model *m, const train_cfg *c, const train_state *s,
                              bp_error *err) {
    bp_st_writer *w = NULL;
    host_copies hc = {0};
    float norm[2 * TRAIN_NORM_MAX_CH];
    bp_status st = bp_st_writer_new(&w, err);
    if (st == BP_OK) st = write_common(w, m, c, s, WEIGHTS_FORMAT, &hc, err);
    if (st == BP_OK && c->norm_ch) st = add_frontend_norm(w, m, c, norm, err);
    if (st == BP_OK) st = bp_st_writer_write(w, path, err);
    bp_st_writer_free(w);
    host_copies_free(&hc);
    return st;
}

/* ------------------------------------------------------------- loading -- */

/* The first line where two config texts differ, for the mismatch message. */
static void first_difference(const char *a, const char *b, char *out, size_t cap) {
    int line = 1;
    while (*a && *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || strncmp(a, b, la) != 0) {
            snprintf(out, cap, "line %d: checkpoint has '%.*s', this run has '%.*s'", line, (int)(la > 200 ? 200 : la),
                     a, (int)(lb > 200 ? 200 : lb), b);
            return;
        }
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
        line++;
    }
    snprintf(out, cap, "line %d: one of the two ends early", line);
}

static int64_t meta_int(const bp_st_file *f, const char *key, int *ok) {
    const char *v = bp_st_metadata(f, key);
    char *end = NULL;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || end == v || *end) *ok = 0;
    return (int64_t)x;
}

static bp_status load_tensor(const bp_st_file *f, const char *name, bp_tensor *dst, bp_error *err) {
    bp_tensor t;
    bp_status st = bp_st_get_checked(f, name, dst->dtype, dst->ndim, dst->shape, &t, err);
    if (st != BP_OK) return st;
    return bp_tensor_write(dst, t.data, bp_tensor_nbytes(&t), err);
}

bp_status train_ckpt_load(const char *path, train_model *m, train_optim *o, const train_cfg *c, train_state *s,
                          bp_error *err) {
    bp_st_file *f;
    bp_status st = bp_st_open(path, &f, err);
    if (st != BP_OK) return st;
    const char *fmt = bp_st_metadata(f, "format");
    const char *fp = bp_st_metadata(f, "fingerprint");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || !fp) {
        st = bp_error_set(err, BP_ERR_FORMAT, "%s: not a batpipe training checkpoint (metadata format %s)", path,
                          fmt ? fmt : "missing");
    } else if (strcmp(fp, c->fingerprint) != 0) {
        char diff[600];
        const char *text = bp_st_metadata(f, "config");
        first_difference(text ? text : "", c->fingerprint_text, diff, sizeof diff);
        st = bp_error_set(err, BP_ERR_INVALID,
                          "%s was made by another configuration (fingerprint %s, this one %s; %s); use another "
                          "output.dir, or --restart to discard it",
                          path, fp, c->fingerprint, diff);
    }
    int ok = 1;
    memset(s, 0, sizeof *s);
    if (st == BP_OK) {
        s->step = meta_int(f, "step", &ok);
        s->examples = meta_int(f, "examples", &ok);
        s->stage = (uint32_t)meta_int(f, "stage", &ok);
        if (!ok || s->step < 0 || s->examples < 0)
            st = bp_error_set(err, BP_ERR_FORMAT, "%s: malformed trainer state in its metadata", path);
    }
    for (uint32_t i = 0; i < m->n_params && st == BP_OK; i++) {
        st = load_tensor(f, m->params[i].name, m->params[i].value, err);
        if (st == BP_OK && o->m[i]) {
            char name[600];
            snprintf(name, sizeof name, "optimizer.exp_avg.%s", m->params[i].name);
            st = load_tensor(f, name, o->m[i], err);
            snprintf(name, sizeof name, "optimizer.exp_avg_sq.%s", m->params[i].name);
            if (st == BP_OK) st = load_tensor(f, name, o->v[i], err);
        }
    }
    bp_st_close(f);
    return st;
}
