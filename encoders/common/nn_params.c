/* bp_nn: the parameter registry (names, values, grads, flags) and its strict
 * safetensors loader. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/safetensors.h"
#include "bp_nn.h"

void bp_nn_params_init(bp_nn_params *ps, bp_backend *be) {
    memset(ps, 0, sizeof *ps);
    ps->be = be;
}

void bp_nn_params_free(bp_nn_params *ps) {
    if (!ps) return;
    for (uint32_t i = 0; i < ps->count; i++) {
        bp_tensor_free(ps->items[i].value);
        bp_tensor_free(ps->items[i].grad);
        bp_tensor_free(ps->items[i].bf16);
        free(ps->items[i].name);
    }
    free(ps->items);
    memset(ps, 0, sizeof *ps);
}

bp_nn_param *bp_nn_params_find(const bp_nn_params *ps, const char *name) {
    for (uint32_t i = 0; i < ps->count; i++)
        if (strcmp(ps->items[i].name, name) == 0) return &ps->items[i];
    return NULL;
}

bp_status bp_nn_params_bf16_of(bp_nn_params *ps, const bp_tensor *value, const bp_tensor **bf16, bp_error *err) {
    *bf16 = NULL;
    for (uint32_t i = 0; i < ps->count; i++) {
        bp_nn_param *p = &ps->items[i];
        if (p->value != value) continue;
        if (!p->bf16) {
            bp_tensor *t = NULL;
            bp_status st = bp_tensor_new(ps->be, BP_DTYPE_BF16, value->ndim, value->shape, &t, err);
            if (st == BP_OK) st = bp_op_convert(ps->be, value, t, err);
            if (st != BP_OK) {
                bp_tensor_free(t);
                bp_error_prefix(err, "bp_nn: BF16 copy of '%s': ", p->name);
                return st;
            }
            p->bf16 = t;
        }
        *bf16 = p->bf16;
        return BP_OK;
    }
    return bp_error_set(err, BP_ERR_INTERNAL, "bp_nn: BF16 copy asked for a tensor that is not a parameter");
}

void bp_nn_params_drop_bf16(bp_nn_params *ps) {
    for (uint32_t i = 0; i < ps->count; i++) {
        bp_tensor_free(ps->items[i].bf16);
        ps->items[i].bf16 = NULL;
    }
}

bp_tensor *bp_nn_params_grad_of(const bp_nn_params *ps, const bp_tensor *value) {
    for (uint32_t i = 0; i < ps->count; i++)
        if (ps->items[i].value == value) return ps->items[i].grad;
    return NULL;
}

bp_status bp_nn_params_add(bp_nn_params *ps, const char *name, int32_t dtype, int32_t ndim, const int64_t *shape,
                           int32_t flags, int32_t layer_id, bp_tensor **value, bp_error *err) {
    if (value) *value = NULL;
    if (bp_nn_params_find(ps, name))
        return bp_error_set(err, BP_ERR_INTERNAL, "bp_nn: parameter '%s' registered twice", name);
    if (ps->count == ps->cap) {
        uint32_t nc = ps->cap ? 2 * ps->cap : 64;
        bp_nn_param *p = realloc(ps->items, nc * sizeof *p);
        if (!p) return bp_error_set(err, BP_ERR_NOMEM, "bp_nn: out of memory registering '%s'", name);
        ps->items = p;
        ps->cap = nc;
    }
    bp_nn_param *p = &ps->items[ps->count];
    memset(p, 0, sizeof *p);
    p->name = strdup(name);
    if (!p->name) return bp_error_set(err, BP_ERR_NOMEM, "bp_nn: out of memory registering '%s'", name);
    bp_status st = bp_tensor_new(ps->be, dtype, ndim, shape, &p->value, err);
    if (st == BP_OK && dtype == BP_DTYPE_F32) st = bp_op_fill(ps->be, p->value, 0.0f, err);
    if (st == BP_OK && dtype != BP_DTYPE_F32) { /* small buffers (num_batches_tracked): zeros from the host */
        size_t nb = bp_tensor_nbytes(p->value);
        void *zeros = calloc(1, nb ? nb : 1);
        st = zeros ? bp_tensor_write(p->value, zeros, nb, err) : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        free(zeros);
    }
    if (st == BP_OK && (flags & BP_NN_TRAINABLE)) {
        st = bp_tensor_new(ps->be, dtype, ndim, shape, &p->grad, err);
        if (st == BP_OK) st = bp_op_fill(ps->be, p->grad, 0.0f, err);
    }
    if (st != BP_OK) {
        bp_error_prefix(err, "bp_nn: parameter '%s': ", name);
        bp_tensor_free(p->value);
        bp_tensor_free(p->grad);
        free(p->name);
        return st;
    }
    p->value->name = p->name;
    if (p->grad) p->grad->name = p->name;
    p->flags = flags;
    p->layer_id = layer_id;
    ps->count++;
    if (value) *value = p->value;
    return BP_OK;
}

bp_status bp_nn_params_zero_grad(bp_nn_params *ps, bp_error *err) {
    for (uint32_t i = 0; i < ps->count; i++) {
        if (!ps->items[i].grad) continue;
        bp_status st = bp_op_fill(ps->be, ps->items[i].grad, 0.0f, err);
        if (st != BP_OK) return st;
    }
    return BP_OK;
}

int64_t bp_nn_params_trainable_numel(const bp_nn_params *ps) {
    int64_t n = 0;
    for (uint32_t i = 0; i < ps->count; i++)
        if (ps->items[i].flags & BP_NN_TRAINABLE) n += bp_tensor_numel(ps->items[i].value);
    return n;
}

/* ------------------------------------------------------------------ load -- */

/* Problem lists, printed in one message. */
typedef struct problems {
    char missing[640], shape[640], unexpected[640];
    int n_missing, n_shape, n_unexpected;
} problems;

static void list_add(char *buf, size_t cap, int *n, const char *fmt, ...) BP_PRINTF(4, 5);
static void list_add(char *buf, size_t cap, int *n, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 8 < cap) {
        if (*n > 0) {
            snprintf(buf + len, cap - len, ", ");
            len = strlen(buf);
        }
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf + len, cap - len, fmt, ap);
        va_end(ap);
    }
    (*n)++;
}

static int is_float(int32_t t) {
    return t == BP_DTYPE_F32 || t == BP_DTYPE_F16 || t == BP_DTYPE_BF16 || t == BP_DTYPE_F64;
}

static int same_shape(const bp_tensor *a, int32_t ndim, const int64_t *shape) {
    if (a->ndim != ndim) return 0;
    for (int32_t i = 0; i < ndim; i++)
        if (a->shape[i] != shape[i]) return 0;
    return 1;
}

static const bp_nn_extra_name *find_extra(const bp_nn_extra_name *extra, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(extra[i].name);
        if (len > 0 && extra[i].name[len - 1] == '*') {
            if (strncmp(extra[i].name, name, len - 1) == 0) return &extra[i];
        } else if (strcmp(extra[i].name, name) == 0) {
            return &extra[i];
        }
    }
    return NULL;
}

/* Copy one file tensor into a registered one (converting floats to F32). */
static bp_status load_one(const bp_tensor *src, bp_tensor *dst, bp_error *err) {
    if (src->dtype == dst->dtype) return bp_tensor_write(dst, src->data, bp_tensor_nbytes(src), err);
    int64_t n = bp_tensor_numel(src);
    float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof *buf);
    if (!buf) return bp_error_set(err, BP_ERR_NOMEM, "out of memory converting %lld values", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        switch (src->dtype) {
        case BP_DTYPE_F16: buf[i] = bp_f16_to_f32(((const uint16_t *)src->data)[i]); break;
        case BP_DTYPE_BF16: buf[i] = bp_bf16_to_f32(((const uint16_t *)src->data)[i]); break;
        default: buf[i] = (float)((const double *)src->data)[i]; break;
        }
    }
    bp_status st = bp_tensor_write(dst, buf, (size_t)n * sizeof *buf, err);
    free(buf);
    return st;
}

bp_status bp_nn_params_load(bp_nn_params *ps, const char *path, const bp_nn_extra_name *extra, uint32_t n_extra,
                            const char *who, bp_error *err) {
    bp_nn_params_drop_bf16(ps); /* the values are about to change */
    bp_st_file *f = NULL;
    bp_status st = bp_st_open(path, &f, err);
    if (st != BP_OK) {
        bp_error_prefix(err, "%s: ", who);
        return st;
    }
    problems *pr = calloc(1, sizeof *pr);
    if (!pr) {
        bp_st_close(f);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", who);
    }
    char sa[96], sb[96];
    /* 1. every registered tensor */
    for (uint32_t i = 0; i < ps->count; i++) {
        const bp_nn_param *p = &ps->items[i];
        bp_tensor t;
        bp_error e2 = BP_ERROR_INIT;
        if (bp_st_get(f, p->name, &t, &e2) != BP_OK) {
            if (!(p->flags & BP_NN_OPTIONAL)) list_add(pr->missing, sizeof pr->missing, &pr->n_missing, "%s", p->name);
            continue;
        }
        int dtype_ok = p->value->dtype == BP_DTYPE_F32 ? is_float(t.dtype) : t.dtype == p->value->dtype;
        if (!dtype_ok || !same_shape(&t, p->value->ndim, p->value->shape))
            list_add(pr->shape, sizeof pr->shape, &pr->n_shape, "%s %s (expected %s)", p->name,
                     bp_tensor_describe(&t, sa, sizeof sa), bp_tensor_describe(p->value, sb, sizeof sb));
    }
    /* 2. every file tensor */
    for (uint32_t i = 0; i < bp_st_count(f); i++) {
        const char *name = bp_st_name(f, i);
        if (bp_nn_params_find(ps, name)) continue;
        const bp_nn_extra_name *x = find_extra(extra, n_extra, name);
        if (!x) {
            list_add(pr->unexpected, sizeof pr->unexpected, &pr->n_unexpected, "%s", name);
            continue;
        }
        bp_tensor t;
        bp_error e2 = BP_ERROR_INIT;
        size_t xl = strlen(x->name);
        int prefix = xl > 0 && x->name[xl - 1] == '*';
        if (!prefix && x->ndim >= 0 && bp_st_get_index(f, i, &t, &e2) == BP_OK &&
            !same_shape(&t, x->ndim, x->shape)) {
            bp_tensor want = bp_tensor_view(t.dtype, x->ndim, x->shape, NULL);
            list_add(pr->shape, sizeof pr->shape, &pr->n_shape, "%s %s (expected %s)", name,
                     bp_tensor_describe(&t, sa, sizeof sa), bp_tensor_describe(&want, sb, sizeof sb));
        }
    }
    int n_problems = pr->n_missing + pr->n_shape + pr->n_unexpected;
    if (n_problems > 0) {
        st = bp_error_set(err, BP_ERR_FORMAT, "%s: %s: %d tensor%s do%s not match the model:%s%s%s%s%s%s%s%s%s", who,
                          path, n_problems, n_problems == 1 ? "" : "s", n_problems == 1 ? "es" : "",
                          pr->n_missing ? " missing: " : "", pr->missing, pr->n_missing ? ";" : "",
                          pr->n_shape ? " wrong shape or dtype: " : "", pr->shape, pr->n_shape ? ";" : "",
                          pr->n_unexpected ? " unexpected: " : "", pr->unexpected, pr->n_unexpected ? ";" : "");
        size_t len = strlen(err->msg);
        if (len > 0 && err->msg[len - 1] == ';') err->msg[len - 1] = '\0';
    }
    /* 3. copy (only when everything matched) */
    for (uint32_t i = 0; st == BP_OK && i < ps->count; i++) {
        bp_tensor t;
        bp_error e2 = BP_ERROR_INIT;
        if (bp_st_get(f, ps->items[i].name, &t, &e2) != BP_OK) continue; /* optional and absent */
        st = load_one(&t, ps->items[i].value, err);
        if (st != BP_OK) bp_error_prefix(err, "%s: %s: tensor '%s': ", who, path, ps->items[i].name);
    }
    free(pr);
    bp_st_close(f);
    return st;
}
