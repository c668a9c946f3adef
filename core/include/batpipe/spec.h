/* batpipe — tensor specs, used by stages to agree on what flows between them.
 *
 * At load time the host asks each stage what it needs on its input
 * (`input_spec`) and what it will produce (`prepare`), and compares the two
 * field by field before any compute. A mismatch is an error that names both
 * stages and the field. Wildcards: dtype -1, ndim -1, a shape entry
 * BP_DIM_ANY, rate 0. */
#ifndef BATPIPE_SPEC_H
#define BATPIPE_SPEC_H

#include "tensor.h"

BP_EXTERN_C_BEGIN

#define BP_DIM_ANY (-1)

typedef struct bp_spec {
    uint32_t struct_size;        /* sizeof(bp_spec) */
    int32_t dtype;               /* bp_dtype, -1 = any */
    int32_t ndim;                /* rank, -1 = any */
    int64_t shape[BP_MAX_DIMS];  /* BP_DIM_ANY = any size */
    double rate;                 /* audio: samples per second; features: frames per second; 0 = n/a or any */
    char dims[64];               /* dimension names, comma-separated ("channel,time"); for messages */
} bp_spec;

/* A named input or output of a stage. */
typedef struct bp_port {
    uint32_t struct_size; /* sizeof(bp_port) */
    char name[48];        /* "features", "logmel_raw": [a-z0-9_]+ */
    bp_spec spec;
    int32_t optional;     /* outputs: 1 = an intermediate, computed only when someone asks for it */
    char help[160];       /* one line: what the tensor holds */
} bp_port;

/* A spec with every field a wildcard. */
static inline bp_spec bp_spec_any(void) {
    bp_spec s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.dtype = -1;
    s.ndim = -1;
    for (int i = 0; i < BP_MAX_DIMS; i++) s.shape[i] = BP_DIM_ANY;
    return s;
}

/* A fixed-rank F32 spec; pass BP_DIM_ANY for variable dims. */
static inline bp_spec bp_spec_f32(int32_t ndim, const int64_t *shape, double rate, const char *dims) {
    bp_spec s = bp_spec_any();
    s.dtype = BP_DTYPE_F32;
    s.ndim = ndim;
    for (int32_t i = 0; i < ndim && i < BP_MAX_DIMS; i++) s.shape[i] = shape[i];
    s.rate = rate;
    if (dims) snprintf(s.dims, sizeof s.dims, "%s", dims);
    return s;
}

/* Does `have` satisfy `want`? On a mismatch returns 0 and writes e.g.
 * "channels: have 1, want 2" into why (the host adds the stage names). */
BP_API int bp_spec_satisfies(const bp_spec *have, const bp_spec *want, char *why, size_t cap);
/* "F32[channel=2, time=any] @ 32000 Hz" into buf; returns buf. */
BP_API const char *bp_spec_describe(const bp_spec *s, char *buf, size_t cap);
/* The spec of a concrete tensor. */
BP_API bp_spec bp_spec_of(const bp_tensor *t, double rate);

BP_EXTERN_C_END

#endif /* BATPIPE_SPEC_H */
