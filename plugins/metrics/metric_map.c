/* map: per-class average precision and their macro mean, as sklearn's
 * average_precision_score: the non-interpolated step sum
 * Σ_n (R_n − R_{n−1})·P_n over the distinct scores in decreasing order, all
 * items sharing a score entering at the same threshold. A class without
 * positives: `empty_class` = skip (AP NaN, excluded from the mean), zero
 * (AP 0, as sklearn ≥ 1.1) or nan (AP NaN and the mean NaN, as sklearn <
 * 1.1). Values are reported in percent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

enum { EMPTY_SKIP = 0, EMPTY_ZERO = 1, EMPTY_NAN = 2 };

static const bp_param_spec map_params[] = {
    {sizeof(bp_param_spec), "scores", BP_PARAM_STRING, "\"logits_class\"", BP_NO_RANGE, NULL,
     "tensor of class scores [batch, n_classes]: logits or probabilities (AP is rank-based)"},
    {sizeof(bp_param_spec), "targets", BP_PARAM_STRING, "\"classes\"", BP_NO_RANGE, NULL,
     "multi-hot targets [batch, n_classes] (>= 0.5 = positive); rows with a negative entry (unknown) are skipped"},
    {sizeof(bp_param_spec), "empty_class", BP_PARAM_STRING, "\"skip\"", BP_NO_RANGE, "skip|zero|nan",
     "a class without positives: skip (AP NaN, left out of the mean), zero (sklearn >= 1.1), nan (mean NaN)"},
    {sizeof(bp_param_spec), "class_list", BP_PARAM_PATH, "\"\"", BP_NO_RANGE, NULL,
     "optional CSV index,mid,display_name naming the classes in the per-class results"},
    {sizeof(bp_param_spec), "per_class", BP_PARAM_BOOL, "true", BP_NO_RANGE, NULL,
     "also report each class's AP, as results named AP/<class>"},
};

const bp_descriptor mx_map_descriptor = {
    sizeof(bp_descriptor),
    "map",
    "1.0.0",
    "mean average precision over classes (sklearn average_precision_score, macro), in percent",
    "sklearn.metrics.average_precision_score; Spatial-AST engine_finetune.py (golden: metrics.safetensors)",
    map_params,
    sizeof map_params / sizeof map_params[0],
};

typedef struct map_state {
    bp_metric m;
    char *scores_name, *targets_name;
    const char *names[2];
    int empty;
    int per_class;
    char **class_names;
    int64_t n_class_names;
    int64_t n_classes; /* -1 until the first batch */
    double *scores;    /* [n_items, n_classes] */
    uint8_t *pos;      /* [n_items, n_classes] */
    int64_t n_items, cap_items, n_skipped;
} map_state;

typedef struct scored {
    double s;
    uint8_t pos;
} scored;

static bp_status map_inputs(bp_metric *m, const char *const **names, uint32_t *n, bp_error *err) {
    (void)err;
    map_state *s = m->self;
    *names = s->names;
    *n = 2;
    return BP_OK;
}

static bp_status map_reset(bp_metric *m, bp_error *err) {
    (void)err;
    map_state *s = m->self;
    s->n_items = 0;
    s->n_skipped = 0;
    s->n_classes = -1;
    return BP_OK;
}

static bp_status map_update(bp_metric *m, const bp_tensor *const *in, uint32_t n, bp_error *err) {
    map_state *s = m->self;
    if (n != 2) return bp_error_set(err, BP_ERR_INVALID, "map: %u inputs given, 2 expected", n);
    int64_t batch = -1;
    bp_status st = mx_check_input("map", s->scores_name, in[0], 2, 2, &batch, err);
    if (st == BP_OK) st = mx_check_input("map", s->targets_name, in[1], 2, 2, &batch, err);
    if (st != BP_OK) return st;
    int64_t c = in[0]->shape[1];
    if (in[1]->shape[1] != c)
        return bp_error_set(err, BP_ERR_INVALID, "map: '%s' has %lld classes but '%s' has %lld", s->scores_name,
                            (long long)c, s->targets_name, (long long)in[1]->shape[1]);
    if (c < 1) return bp_error_set(err, BP_ERR_INVALID, "map: '%s' has no classes", s->scores_name);
    if (s->n_classes >= 0 && c != s->n_classes)
        return bp_error_set(err, BP_ERR_INVALID, "map: '%s' has %lld classes, earlier batches had %lld",
                            s->scores_name, (long long)c, (long long)s->n_classes);
    s->n_classes = c;
    if (s->n_items + batch > s->cap_items) {
        int64_t nc = s->cap_items ? s->cap_items : 256;
        while (nc < s->n_items + batch) nc *= 2;
        double *ns = realloc(s->scores, (size_t)(nc * c) * sizeof *ns);
        if (ns) s->scores = ns;
        uint8_t *np = realloc(s->pos, (size_t)(nc * c));
        if (np) s->pos = np;
        if (!ns || !np) return bp_error_set(err, BP_ERR_NOMEM, "map: out of memory");
        s->cap_items = nc;
    }
    for (int64_t b = 0; b < batch; b++) {
        int unknown = 0;
        for (int64_t k = 0; k < c; k++) {
            double t = mx_value(in[1], b * c + k);
            if (isnan(t))
                return bp_error_set(err, BP_ERR_NUMERIC, "map: '%s' has NaN at batch row %lld", s->targets_name,
                                    (long long)b);
            if (t < 0) unknown = 1;
        }
        if (unknown) {
            s->n_skipped++;
            continue;
        }
        double *dst = s->scores + s->n_items * c;
        uint8_t *pd = s->pos + s->n_items * c;
        for (int64_t k = 0; k < c; k++) {
            double v = mx_value(in[0], b * c + k);
            if (isnan(v))
                return bp_error_set(err, BP_ERR_NUMERIC, "map: '%s' has NaN at batch row %lld, class %lld",
                                    s->scores_name, (long long)b, (long long)k);
            dst[k] = v;
            pd[k] = mx_value(in[1], b * c + k) >= 0.5;
        }
        s->n_items++;
    }
    return BP_OK;
}

static int by_score_desc(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x < y) - (x > y);
}

/* AP of one class; *n_pos receives the number of positives (AP NaN when 0). */
static double class_ap(map_state *s, int64_t k, scored *buf, int64_t *n_pos) {
    int64_t n = s->n_items, c = s->n_classes, p = 0;
    for (int64_t i = 0; i < n; i++) {
        buf[i].s = s->scores[i * c + k];
        buf[i].pos = s->pos[i * c + k];
        p += buf[i].pos;
    }
    *n_pos = p;
    if (p == 0) return NAN;
    qsort(buf, (size_t)n, sizeof *buf, by_score_desc);
    double ap = 0, r_prev = 0;
    int64_t tp = 0, seen = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && buf[j].s == buf[i].s) tp += buf[j++].pos;
        seen = j;
        double r = (double)tp / (double)p, prec = (double)tp / (double)seen;
        ap += (r - r_prev) * prec;
        r_prev = r;
        i = j;
    }
    return ap;
}

static void class_label(const map_state *s, int64_t k, char *buf, size_t cap) {
    if (k < s->n_class_names && s->class_names[k])
        snprintf(buf, cap, "%s", s->class_names[k]);
    else
        snprintf(buf, cap, "%lld", (long long)k);
}

static bp_status map_compute(bp_metric *m, bp_metric_result *res, uint32_t cap, uint32_t *n_out, bp_error *err) {
    map_state *s = m->self;
    *n_out = 0;
    if (cap < 1) return bp_error_set(err, BP_ERR_INVALID, "map: no room for results");
    char note[160];
    if (s->n_items == 0 || s->n_classes < 1) {
        snprintf(note, sizeof note, "no clips with known classes (%lld skipped: unknown classes)",
                 (long long)s->n_skipped);
        mx_result(&res[0], "mAP", NAN, "%", note);
        *n_out = 1;
        return BP_OK;
    }
    int64_t c = s->n_classes;
    double *ap = malloc((size_t)c * sizeof *ap);
    int64_t *np = malloc((size_t)c * sizeof *np);
    scored *buf = malloc((size_t)s->n_items * sizeof *buf);
    if (!ap || !np || !buf) {
        free(ap), free(np), free(buf);
        return bp_error_set(err, BP_ERR_NOMEM, "map: out of memory");
    }
    double sum = 0;
    int64_t used = 0, empty = 0, first_empty = -1;
    for (int64_t k = 0; k < c; k++) {
        ap[k] = class_ap(s, k, buf, &np[k]);
        if (np[k] == 0) {
            empty++;
            if (first_empty < 0) first_empty = k;
            if (s->empty == EMPTY_ZERO) ap[k] = 0;
        }
        if (np[k] > 0 || s->empty != EMPTY_SKIP) {
            sum += ap[k];
            used++;
        }
    }
    double map = used ? 100.0 * sum / (double)used : NAN;
    static const char *const policy[] = {"skip", "zero", "nan"};
    char first[80];
    class_label(s, first_empty < 0 ? 0 : first_empty, first, sizeof first);
    if (empty)
        snprintf(note, sizeof note, "%lld clips, %lld classes; %lld without positives (first: %s), empty_class=%s%s",
                 (long long)s->n_items, (long long)c, (long long)empty, first, policy[s->empty],
                 s->empty == EMPTY_SKIP ? ": left out" : "");
    else
        snprintf(note, sizeof note, "%lld clips, %lld classes, all with positives", (long long)s->n_items,
                 (long long)c);
    if (s->n_skipped) {
        size_t len = strlen(note);
        snprintf(note + len, sizeof note - len, "; %lld skipped (unknown)", (long long)s->n_skipped);
    }
    mx_result(&res[0], "mAP", map, "%", note);
    uint32_t n = 1;
    for (int64_t k = 0; s->per_class && k < c && n < cap; k++) {
        char name[64], label[80];
        class_label(s, k, label, sizeof label);
        snprintf(name, sizeof name, "AP/%s", label);
        if (np[k] == 0)
            snprintf(note, sizeof note, "no positives: %s",
                     s->empty == EMPTY_SKIP ? "left out of the mean" : s->empty == EMPTY_ZERO ? "AP 0" : "AP NaN");
        else
            snprintf(note, sizeof note, "%lld positive%s", (long long)np[k], np[k] == 1 ? "" : "s");
        mx_result(&res[n++], name, isnan(ap[k]) ? NAN : 100.0 * ap[k], "%", note);
    }
    *n_out = n;
    free(ap), free(np), free(buf);
    return BP_OK;
}

static void map_destroy(bp_metric *m) {
    map_state *s = m->self;
    free(s->scores_name);
    free(s->targets_name);
    free(s->scores);
    free(s->pos);
    mx_class_names_free(s->class_names, s->n_class_names);
    free(s);
}

bp_status mx_map_create(const bp_params *params, bp_metric **out, bp_error *err) {
    map_state *s = calloc(1, sizeof *s);
    if (!s) return bp_error_set(err, BP_ERR_NOMEM, "map: out of memory");
    s->scores_name = mx_strdup(bp_params_string(params, "scores"));
    s->targets_name = mx_strdup(bp_params_string(params, "targets"));
    const char *e = bp_params_string(params, "empty_class");
    s->empty = strcmp(e, "zero") == 0 ? EMPTY_ZERO : strcmp(e, "nan") == 0 ? EMPTY_NAN : EMPTY_SKIP;
    s->per_class = bp_params_bool(params, "per_class");
    s->n_classes = -1;
    s->m.struct_size = sizeof s->m;
    s->m.self = s;
    s->m.inputs = map_inputs;
    s->m.reset = map_reset;
    s->m.update = map_update;
    s->m.compute = map_compute;
    s->m.destroy = map_destroy;
    if (!s->scores_name || !s->targets_name) {
        map_destroy(&s->m);
        return bp_error_set(err, BP_ERR_NOMEM, "map: out of memory");
    }
    s->names[0] = s->scores_name;
    s->names[1] = s->targets_name;
    const char *cl = bp_params_string(params, "class_list");
    if (cl && cl[0]) {
        bp_status st = mx_class_names_load(cl, &s->class_names, &s->n_class_names, err);
        if (st != BP_OK) {
            map_destroy(&s->m);
            return st;
        }
    }
    *out = &s->m;
    return BP_OK;
}
