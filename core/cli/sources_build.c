/* `batpipe sources`: the corpus build. Converts every listed recording (in
 * parallel, resumable), applies the per-class rules and the split, and writes
 * corpus.tsv, classes.tsv and skipped.tsv. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batpipe/util.h"
#include "sources.h"

/* ------------------------------------------------------ string builder -- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static BP_PRINTF(2, 3) void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (sources_grow((void **)&b->s, &b->cap, b->len + (size_t)n + 1, 1) != 0) {
            b->failed = 1;
            return;
        }
    }
}

static bp_status sb_write(sbuf *b, const char *dir, const char *name, bp_error *err) {
    if (b->failed) return bp_error_set(err, BP_ERR_NOMEM, "%s/%s: out of memory", dir, name);
    char *path = sources_strdupf("%s/%s", dir, name);
    if (!path) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    bp_status st = bp_write_file_atomic(path, b->s ? b->s : "", b->len, err);
    free(path);
    return st;
}

/* ------------------------------------------------------------ workers --- */

typedef struct result {
    bp_status status;
    char *message;     /* reason of a skip */
    sources_clip_stats stats;
    int converted;
} result;

typedef struct build_ctx {
    const sources_list *list;
    const sources_build_opts *opt;
    char **files;      /* clip path relative to dir, per item */
    result *res;
    atomic_size_t next;
    size_t done;
    int stop;
    pthread_mutex_t lock;
    double t0;
} build_ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *worker(void *arg) {
    build_ctx *c = arg;
    const sources_build_opts *o = c->opt;
    for (;;) {
        size_t i = atomic_fetch_add(&c->next, 1);
        if (i >= c->list->n) break;
        pthread_mutex_lock(&c->lock);
        int stop = c->stop || (o->cancelled && o->cancelled());
        if (stop) c->stop = 1;
        pthread_mutex_unlock(&c->lock);
        if (stop) break;
        const sources_item *it = &c->list->items[i];
        result *r = &c->res[i];
        char *out = sources_strdupf("%s/%s", o->dir, c->files[i]);
        bp_error err = BP_ERROR_INIT;
        if (!out) {
            r->status = bp_error_set(&err, BP_ERR_NOMEM, "out of memory");
        } else {
            r->status = sources_convert(it->input, out, &o->convert, &r->stats, &r->converted, &err);
        }
        free(out);
        if (r->status != BP_OK) r->message = sources_strdup(err.msg[0] ? err.msg : bp_status_name(r->status));
        pthread_mutex_lock(&c->lock);
        c->done++;
        if (r->status == BP_OK && r->converted && r->stats.channel != 0 && o->log) {
            char msg[1200];
            snprintf(msg, sizeof msg, "note %s (%s): channel 0 is silent, kept channel %d", it->source_path,
                     it->package, (int)r->stats.channel);
            o->log(o->log_user, msg);
        }
        if (r->status != BP_OK && o->log) {
            char msg[1200];
            snprintf(msg, sizeof msg, "skip %s (%s): %s", it->source_path, it->package,
                     r->message ? r->message : "out of memory");
            o->log(o->log_user, msg);
        }
        if (o->progress) o->progress(o->progress_user, c->done, c->list->n, it->source_path, now_s() - c->t0);
        pthread_mutex_unlock(&c->lock);
    }
    return NULL;
}

/* ------------------------------------------------------- clip names ----- */

static int cmp_name_idx(const void *pa, const void *pb, void *ctx) {
    char **files = ctx;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    int c = strcmp(files[a], files[b]);
    if (c) return c;
    return a < b ? -1 : (a > b);
}

/* One clip file per item; items whose names collide get a hash suffix. */
static bp_status name_clips(const sources_list *l, char **files, bp_error *err) {
    for (size_t i = 0; i < l->n; i++) {
        files[i] = sources_clip_name(l->items[i].package, l->items[i].source_path);
        if (!files[i]) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    size_t *idx = malloc((l->n ? l->n : 1) * sizeof *idx);
    if (!idx) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++) idx[i] = i;
    qsort_r(idx, l->n, sizeof *idx, cmp_name_idx, files);
    for (size_t k = 1; k < l->n; k++) {
        size_t a = idx[k - 1], b = idx[k];
        if (strcmp(files[a], files[b]) != 0) continue;
        /* same name (e.g. x.ogg and x.wav): the later item gets "-<hash of its source path>" before ".flac";
         * the source path, not the input, so that the name does not depend on where files were extracted */
        uint64_t h = sources_split_key(l->items[b].package, l->items[b].source_path);
        size_t len = strlen(files[b]);
        char *nn = sources_strdupf("%.*s-%08llx.flac", (int)(len - 5), files[b], (unsigned long long)(h >> 32));
        if (!nn) {
            free(idx);
            return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        }
        free(files[b]);
        files[b] = nn;
    }
    free(idx);
    return BP_OK;
}

/* ------------------------------------------------------------ writing --- */

static const char *placement_of(const sources_item *it, double duration_s) {
    if (duration_s >= 10.0 - 1e-9) return "cut";
    if (it->placement && it->placement[0]) return it->placement;
    return "repeat";
}

static int cmp_out_row(const void *pa, const void *pb) {
    const sources_row *a = pa, *b = pb;
    if (a->keep != b->keep) return a->keep ? -1 : 1;
    int c = strcmp(a->cls->name, b->cls->name);
    if (c) return c;
    c = strcmp(a->file, b->file);
    if (c) return c;
    return a->item < b->item ? -1 : (a->item > b->item);
}

typedef struct class_sum {
    const sources_class *cls;
    size_t rows, train, eval;
    double seconds;
    char packages[512];
    const char *placement;
} class_sum;

static void add_package(char *list, size_t cap, const char *pkg) {
    size_t lp = strlen(pkg);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == lp && strncmp(p, pkg, lp) == 0) return;
        p = e ? e + 1 : p + len;
    }
    size_t n = strlen(list);
    if (n + lp + 2 >= cap) return;
    if (n) list[n++] = ',';
    memcpy(list + n, pkg, lp + 1);
}

static bp_status write_outputs(const sources_list *l, const sources_build_opts *o, sources_row *rows, size_t nrows,
                               const result *res, sources_build_report *rep, bp_error *err) {
    qsort(rows, nrows, sizeof *rows, cmp_out_row);
    sbuf corpus = {0}, classes = {0}, skipped = {0};
    sb_printf(&corpus, "file\tlabel\tmid\tpackage\tlicense\tduration_s\trms_dbfs\trecording\tsplit\tsource_path\t"
                       "placement\n");
    class_sum *sums = calloc(nrows ? nrows : 1, sizeof *sums);
    if (!sums) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    size_t ns = 0;
    unsigned char *item_kept = calloc(l->n ? l->n : 1, 1);
    double seconds = 0;
    if (!item_kept) {
        free(sums);
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < nrows; k++) {
        const sources_row *r = &rows[k];
        if (!r->keep) continue;
        const sources_item *it = &l->items[r->item];
        const char *pl = placement_of(it, r->duration_s);
        sb_printf(&corpus, "%s\t%s\t%s\t%s\t%s\t%.6f\t%.2f\t%s\t%s\t%s\t%s\n", r->file, r->cls->name, r->cls->mid,
                  it->package, it->license, r->duration_s, r->rms_dbfs, r->recording, r->split ? "eval" : "train",
                  it->source_path, pl);
        if (ns == 0 || sums[ns - 1].cls != r->cls) {
            sums[ns].cls = r->cls;
            sums[ns].placement = it->placement && it->placement[0] ? it->placement : "repeat";
            ns++;
        }
        class_sum *s = &sums[ns - 1];
        s->rows++;
        if (r->split) s->eval++;
        else s->train++;
        s->seconds += r->duration_s;
        add_package(s->packages, sizeof s->packages, it->package);
        rep->rows++;
        if (r->split) rep->eval_rows++;
        else rep->train_rows++;
        if (!item_kept[r->item]) { /* a clip with several labels counts once */
            item_kept[r->item] = 1;
            seconds += r->duration_s;
        }
    }
    rep->classes = ns;
    rep->minutes = seconds / 60.0;
    sb_printf(&classes, "label\tmid\trecordings\ttrain\teval\tminutes\tplacement\tpackages\n");
    for (size_t s = 0; s < ns; s++)
        sb_printf(&classes, "%s\t%s\t%zu\t%zu\t%zu\t%.2f\t%s\t%s\n", sums[s].cls->name, sums[s].cls->mid, sums[s].rows,
                  sums[s].train, sums[s].eval, sums[s].seconds / 60.0, sums[s].placement, sums[s].packages);
    /* skipped: files that failed, then rows dropped by the rules */
    sb_printf(&skipped, "source_path\tpackage\tlabel\treason\n");
    for (size_t i = 0; i < l->n; i++)
        if (res[i].status != BP_OK && res[i].message) {
            const sources_item *it = &l->items[i];
            sb_printf(&skipped, "%s\t%s\t%s\t", it->source_path, it->package, it->labels[0]->name);
            for (const char *p = res[i].message; *p; p++)
                sb_printf(&skipped, "%c", *p == '\t' || *p == '\n' ? ' ' : *p);
            sb_printf(&skipped, "\n");
        }
    size_t dropped_classes = 0;
    const sources_class *last = NULL;
    for (size_t k = 0; k < nrows; k++) {
        const sources_row *r = &rows[k];
        if (r->keep) continue;
        const sources_item *it = &l->items[r->item];
        sb_printf(&skipped, "%s\t%s\t%s\t%s\n", it->source_path, it->package, r->cls->name, r->why);
        if (r->why && strstr(r->why, "too few") && r->cls != last) {
            dropped_classes++;
            last = r->cls;
        }
    }
    rep->classes_dropped = dropped_classes;
    bp_status st = sb_write(&corpus, o->dir, "corpus.tsv", err);
    if (st == BP_OK) st = sb_write(&classes, o->dir, "classes.tsv", err);
    if (st == BP_OK) st = sb_write(&skipped, o->dir, "skipped.tsv", err);
    free(corpus.s);
    free(classes.s);
    free(skipped.s);
    free(sums);
    free(item_kept);
    return st;
}

/* --------------------------------------------------------------- build -- */

static int cmp_id(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static int cmp_rows_by_class_reason(const void *pa, const void *pb) {
    const sources_row *a = pa, *b = pb;
    if (a->keep != b->keep) return a->keep ? -1 : 1;
    return strcmp(a->cls->name, b->cls->name);
}

bp_status sources_build(const sources_list *l, const sources_build_opts *o, sources_build_report *rep,
                        bp_error *err) {
    memset(rep, 0, sizeof *rep);
    rep->inputs = l->n;
    bp_status st = bp_mkdir_p(o->dir, err);
    if (st != BP_OK) return st;
    build_ctx c;
    memset(&c, 0, sizeof c);
    c.list = l;
    c.opt = o;
    size_t n = l->n ? l->n : 1;
    c.files = calloc(n, sizeof *c.files);
    c.res = calloc(n, sizeof *c.res);
    sources_row *rows = NULL;
    size_t nrows = 0, cap = 0;
    if (!c.files || !c.res) {
        st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        goto done;
    }
    st = name_clips(l, c.files, err);
    if (st != BP_OK) goto done;
    atomic_init(&c.next, 0);
    pthread_mutex_init(&c.lock, NULL);
    c.t0 = now_s();
    int jobs = o->jobs < 1 ? 1 : (o->jobs > 64 ? 64 : o->jobs);
    pthread_t th[64];
    int started = 0;
    for (int j = 1; j < jobs; j++) {
        if (pthread_create(&th[started], NULL, worker, &c) != 0) break;
        started++;
    }
    worker(&c);
    for (int j = 0; j < started; j++) pthread_join(th[j], NULL);
    pthread_mutex_destroy(&c.lock);
    if (c.stop) {
        st = bp_error_set(err, BP_ERR_CANCELLED, "stopped after %zu of %zu files; run again to resume", c.done, l->n);
        goto done;
    }
    for (size_t i = 0; i < l->n; i++) {
        const result *r = &c.res[i];
        if (r->status != BP_OK) {
            rep->skipped++;
            continue;
        }
        if (r->converted) rep->converted++;
        else rep->reused++;
        for (int k = 0; k < l->items[i].n_labels; k++) {
            if (sources_grow((void **)&rows, &cap, nrows + 1, sizeof *rows) != 0) {
                st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                goto done;
            }
            sources_row *row = &rows[nrows++];
            memset(row, 0, sizeof *row);
            row->item = i;
            row->cls = l->items[i].labels[k];
            snprintf(row->recording, sizeof row->recording, "r%.12s", r->stats.md5);
            row->keep = 1;
            row->file = c.files[i];
            row->duration_s = r->stats.duration_s;
            row->rms_dbfs = r->stats.rms_dbfs;
        }
    }
    st = sources_split(rows, nrows, &o->split, err);
    if (st != BP_OK) goto done;
    /* distinct recordings over the kept rows */
    {
        qsort(rows, nrows, sizeof *rows, cmp_rows_by_class_reason);
        char (*ids)[16] = malloc((nrows ? nrows : 1) * sizeof *ids);
        if (!ids) {
            st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            goto done;
        }
        size_t m = 0;
        for (size_t k = 0; k < nrows; k++)
            if (rows[k].keep) memcpy(ids[m++], rows[k].recording, 16);
        qsort(ids, m, sizeof *ids, cmp_id);
        size_t u = 0;
        for (size_t k = 0; k < m; k++)
            if (k == 0 || strcmp(ids[k], ids[k - 1]) != 0) u++;
        rep->recordings = u;
        free(ids);
    }
    st = write_outputs(l, o, rows, nrows, c.res, rep, err);
done:
    if (c.files)
        for (size_t i = 0; i < l->n; i++) free(c.files[i]);
    if (c.res)
        for (size_t i = 0; i < l->n; i++) free(c.res[i].message);
    free(c.files);
    free(c.res);
    free(rows);
    return st;
}
