/* Spec comparison and description. */
#include <stdio.h>
#include <string.h>

#include "batpipe/spec.h"

/* The i-th comma-separated name of `dims`, or "dim<i>". */
static void dim_name(const char *dims, int32_t i, char *out, size_t cap) {
    const char *p = dims;
    for (int32_t k = 0; k < i && p; k++) {
        p = strchr(p, ',');
        if (p) p++;
    }
    if (p && *p) {
        size_t n = strcspn(p, ",");
        if (n >= cap) n = cap - 1;
        memcpy(out, p, n);
        out[n] = '\0';
        if (n) return;
    }
    snprintf(out, cap, "dim%d", i);
}

int bp_spec_satisfies(const bp_spec *have, const bp_spec *want, char *why, size_t cap) {
    if (want->dtype >= 0 && have->dtype != want->dtype) {
        snprintf(why, cap, "dtype: have %s, want %s", have->dtype >= 0 ? bp_dtype_name(have->dtype) : "any",
                 bp_dtype_name(want->dtype));
        return 0;
    }
    if (want->ndim >= 0 && have->ndim != want->ndim) {
        snprintf(why, cap, "rank: have %d dims (%s), want %d (%s)", have->ndim, have->dims, want->ndim, want->dims);
        return 0;
    }
    if (want->ndim >= 0) {
        for (int32_t i = 0; i < want->ndim && i < BP_MAX_DIMS; i++) {
            if (want->shape[i] == BP_DIM_ANY) continue;
            if (have->shape[i] != want->shape[i]) {
                char name[32];
                dim_name(want->dims[0] ? want->dims : have->dims, i, name, sizeof name);
                if (have->shape[i] == BP_DIM_ANY)
                    snprintf(why, cap, "%s: have a variable size, want %lld", name, (long long)want->shape[i]);
                else
                    snprintf(why, cap, "%s: have %lld, want %lld", name, (long long)have->shape[i],
                             (long long)want->shape[i]);
                return 0;
            }
        }
    }
    if (want->rate > 0 && have->rate != want->rate) {
        snprintf(why, cap, "rate: have %g, want %g", have->rate, want->rate);
        return 0;
    }
    if (cap) why[0] = '\0';
    return 1;
}

const char *bp_spec_describe(const bp_spec *s, char *buf, size_t cap) {
    size_t off = 0;
#define PUT(...)                                                     \
    do {                                                             \
        if (off < cap) {                                             \
            int w_ = snprintf(buf + off, cap - off, __VA_ARGS__);    \
            if (w_ > 0) off += (size_t)w_;                           \
        }                                                            \
    } while (0)
    PUT("%s", s->dtype >= 0 ? bp_dtype_name(s->dtype) : "any");
    if (s->ndim < 0) {
        PUT("[any rank]");
    } else {
        PUT("[");
        for (int32_t i = 0; i < s->ndim && i < BP_MAX_DIMS; i++) {
            char name[32];
            dim_name(s->dims, i, name, sizeof name);
            if (s->shape[i] == BP_DIM_ANY)
                PUT("%s%s=any", i ? ", " : "", name);
            else
                PUT("%s%s=%lld", i ? ", " : "", name, (long long)s->shape[i]);
        }
        PUT("]");
    }
    if (s->rate > 0) PUT(" @ %g Hz", s->rate);
#undef PUT
    return buf;
}

bp_spec bp_spec_of(const bp_tensor *t, double rate) {
    bp_spec s = bp_spec_any();
    s.dtype = t->dtype;
    s.ndim = t->ndim;
    for (int32_t i = 0; i < t->ndim && i < BP_MAX_DIMS; i++) s.shape[i] = t->shape[i];
    s.rate = rate;
    return s;
}
