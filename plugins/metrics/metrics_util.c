/* Shared helpers of the metric components: input checks, reading labels and
 * logits of any numeric dtype, argmax, class-name lists. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

char *mx_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

bp_status mx_check_input(const char *metric, const char *name, const bp_tensor *t, int32_t ndim_min, int32_t ndim_max,
                         int64_t *batch, bp_error *err) {
    if (!t) return bp_error_set(err, BP_ERR_INVALID, "%s: input '%s' is missing", metric, name);
    if (t->backend)
        return bp_error_set(err, BP_ERR_INVALID, "%s: input '%s' is not in host memory", metric, name);
    if (t->ndim < ndim_min || t->ndim > ndim_max)
        return bp_error_set(err, BP_ERR_INVALID, "%s: input '%s' has %d dimension%s, want %d..%d (batch first)",
                            metric, name, t->ndim, t->ndim == 1 ? "" : "s", ndim_min, ndim_max);
    if (*batch >= 0 && t->shape[0] != *batch)
        return bp_error_set(err, BP_ERR_INVALID, "%s: input '%s' has a batch of %lld, the other inputs %lld", metric,
                            name, (long long)t->shape[0], (long long)*batch);
    switch (t->dtype) {
    case BP_DTYPE_F32: case BP_DTYPE_F64: case BP_DTYPE_F16: case BP_DTYPE_BF16: case BP_DTYPE_I8:
    case BP_DTYPE_U8: case BP_DTYPE_I16: case BP_DTYPE_I32: case BP_DTYPE_I64: case BP_DTYPE_BOOL: break;
    default:
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: input '%s' has dtype %s, which is not supported", metric,
                            name, bp_dtype_name(t->dtype));
    }
    *batch = t->shape[0];
    return BP_OK;
}

double mx_value(const bp_tensor *t, int64_t i) {
    switch (t->dtype) {
    case BP_DTYPE_F32: return ((const float *)t->data)[i];
    case BP_DTYPE_F64: return ((const double *)t->data)[i];
    case BP_DTYPE_F16: return bp_f16_to_f32(((const uint16_t *)t->data)[i]);
    case BP_DTYPE_BF16: return bp_bf16_to_f32(((const uint16_t *)t->data)[i]);
    case BP_DTYPE_I8: return ((const int8_t *)t->data)[i];
    case BP_DTYPE_U8: case BP_DTYPE_BOOL: return ((const uint8_t *)t->data)[i];
    case BP_DTYPE_I16: return ((const int16_t *)t->data)[i];
    case BP_DTYPE_I32: return ((const int32_t *)t->data)[i];
    case BP_DTYPE_I64: return (double)((const int64_t *)t->data)[i];
    default: return NAN;
    }
}

bp_status mx_argmax_row(const char *metric, const char *name, const bp_tensor *t, int64_t row, int64_t n,
                        int64_t *idx, bp_error *err) {
    int64_t best = 0;
    double bv = -INFINITY;
    for (int64_t k = 0; k < n; k++) {
        double v = mx_value(t, row * n + k);
        if (isnan(v))
            return bp_error_set(err, BP_ERR_NUMERIC, "%s: input '%s' has NaN at batch row %lld, column %lld", metric,
                                name, (long long)row, (long long)k);
        if (k == 0 || v > bv) {
            bv = v;
            best = k;
        }
    }
    *idx = best;
    return BP_OK;
}

bp_status mx_label(const char *metric, const char *name, const bp_tensor *t, int64_t row, int64_t source,
                   int64_t *label, bp_error *err) {
    int64_t cols = t->ndim == 1 ? 1 : t->shape[1];
    if (source >= cols)
        return bp_error_set(err, BP_ERR_INVALID, "%s: label '%s' has %lld source%s per item, source %lld asked", metric,
                            name, (long long)cols, cols == 1 ? "" : "s", (long long)source);
    double v = mx_value(t, row * cols + source);
    if (!isfinite(v) || v != floor(v) || v < -1 || v > 1e9)
        return bp_error_set(err, BP_ERR_INVALID, "%s: label '%s' of batch row %lld is %g, not a class index or -1",
                            metric, name, (long long)row, v);
    *label = (int64_t)v;
    return BP_OK;
}

void mx_result(bp_metric_result *r, const char *name, double value, const char *unit, const char *note) {
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->value = value;
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    snprintf(r->note, sizeof r->note, "%s", note ? note : "");
}

/* ---------------------------------------------------------- class names -- */

/* Split one CSV line into fields (quotes, "" inside quotes); returns the count. */
static int csv_fields(char *line, char **fields, int cap) {
    int n = 0;
    char *r = line, *w = line;
    while (n < cap) {
        fields[n++] = w;
        int quoted = *r == '"';
        if (quoted) r++;
        for (;;) {
            if (!*r || *r == '\n' || *r == '\r') break;
            if (quoted && *r == '"') {
                if (r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                    continue;
                }
                quoted = 0;
                r++;
                continue;
            }
            if (!quoted && *r == ',') break;
            *w++ = *r++;
        }
        int more = *r == ',';
        *w++ = '\0';
        if (!more) break;
        r++;
    }
    return n;
}

bp_status mx_class_names_load(const char *path, char ***names, int64_t *n, bp_error *err) {
    *names = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return bp_error_set(err, BP_ERR_IO, "map: class_list: cannot open '%s': %s", path, strerror(errno));
    char line[4096];
    char **v = NULL;
    int64_t cap = 0, count = 0;
    unsigned lineno = 0;
    bp_status st = BP_OK;
    while (st == BP_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *fl[8];
        int nf = csv_fields(line, fl, 8);
        if (lineno == 1 && strcmp(fl[0], "index") == 0) continue;
        if (nf == 1 && fl[0][0] == '\0') continue;
        char *end;
        long long idx = strtoll(fl[0], &end, 10);
        if (nf < 3 || end == fl[0] || *end || idx < 0 || idx > 1000000) {
            st = bp_error_set(err, BP_ERR_FORMAT, "map: %s:%u: expected index,mid,display_name", path, lineno);
            break;
        }
        if (idx >= cap) {
            int64_t nc = cap ? cap : 64;
            while (nc <= idx) nc *= 2;
            char **nv = realloc(v, (size_t)nc * sizeof *nv);
            if (!nv) {
                st = bp_error_set(err, BP_ERR_NOMEM, "map: out of memory");
                break;
            }
            memset(nv + cap, 0, (size_t)(nc - cap) * sizeof *nv);
            v = nv;
            cap = nc;
        }
        free(v[idx]);
        if (!(v[idx] = mx_strdup(fl[2]))) st = bp_error_set(err, BP_ERR_NOMEM, "map: out of memory");
        if (idx + 1 > count) count = idx + 1;
    }
    fclose(f);
    if (st != BP_OK) {
        mx_class_names_free(v, cap);
        return st;
    }
    *names = v;
    *n = count;
    return BP_OK;
}

void mx_class_names_free(char **names, int64_t n) {
    for (int64_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}
