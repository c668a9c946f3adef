/* GGUF reader: files built in memory by a tiny writer below, read back in
 * full; every malformation the reader must reject; truncation at every
 * length. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batpipe/gguf.h"
#include "batpipe/quant.h"
#include "bp_test.h"

/* ---------------------------------------------------- the tiny writer -- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(buf *b, uint32_t v) {
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, t, 4);
}
static void put_u64(buf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_f32(buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(b, u);
}
static void put_f64(buf *b, double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    put_u64(b, u);
}
static void pad_to(buf *b, size_t align) {
    while (b->n % align) put_u8(b, 0);
}

static void kv_head(buf *b, const char *key, uint32_t type) {
    put_str(b, key);
    put_u32(b, type);
}

/* A tensor for the writer: ggml type, dims, payload. */
typedef struct wt {
    const char *name;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[4];
    uint8_t *data;
    size_t nbytes;
    float *values; /* source values (F32) where they exist */
} wt;

static size_t ggml_bytes(uint32_t type, const uint64_t *ne, uint32_t n_dims) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) n *= ne[d];
    switch (type) {
    case 0: return n * 4;
    case 1: case 30: case 25: return n * 2;
    case 2: return n / 32 * 18;
    case 3: return n / 32 * 20;
    case 8: return n / 32 * 34;
    case 13: return n / 256 * 176;
    case 24: return n;
    case 26: return n * 4;
    case 27: case 28: return n * 8;
    default: return 0;
    }
}

/* Header + KVs produced by `kvs`, then tensor infos, padding and data. */
static buf build(uint32_t version, uint64_t n_kv, void (*kvs)(buf *), const wt *ts, uint64_t nt, size_t align) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, version);
    put_u64(&b, nt);
    put_u64(&b, n_kv);
    if (kvs) kvs(&b);
    uint64_t off = 0;
    for (uint64_t i = 0; i < nt; i++) {
        put_str(&b, ts[i].name);
        put_u32(&b, ts[i].n_dims);
        for (uint32_t d = 0; d < ts[i].n_dims; d++) put_u64(&b, ts[i].ne[d]);
        put_u32(&b, ts[i].type);
        put_u64(&b, off);
        off += (ts[i].nbytes + align - 1) / align * align;
    }
    pad_to(&b, align);
    for (uint64_t i = 0; i < nt; i++) {
        put(&b, ts[i].data, ts[i].nbytes);
        pad_to(&b, align);
    }
    return b;
}

/* ------------------------------------------------------ the full file -- */

static void full_kvs(buf *b) {
    kv_head(b, "general.architecture", 8), put_str(b, "llama");
    kv_head(b, "general.alignment", 4), put_u32(b, 64);
    kv_head(b, "t.u8", 0), put_u8(b, 200);
    kv_head(b, "t.i8", 1), put_u8(b, (uint8_t)-5);
    kv_head(b, "t.u16", 2), put_u8(b, 0x34), put_u8(b, 0xf2); /* 0xf234 */
    kv_head(b, "t.i16", 3), put_u8(b, 0xfe), put_u8(b, 0xff); /* -2 */
    kv_head(b, "t.u32", 4), put_u32(b, 4000000000u);
    kv_head(b, "t.i32", 5), put_u32(b, (uint32_t)-123456);
    kv_head(b, "t.f32", 6), put_f32(b, 0.15625f);
    kv_head(b, "t.bool", 7), put_u8(b, 1);
    kv_head(b, "t.u64", 10), put_u64(b, 18446744073709551615ull);
    kv_head(b, "t.i64", 11), put_u64(b, (uint64_t)-9000000000ll);
    kv_head(b, "t.f64", 12), put_f64(b, -2.5e-300);
    kv_head(b, "t.str_nul", 8), put_u64(b, 3), put(b, "a\0b", 3);
    kv_head(b, "tokenizer.ggml.tokens", 9), put_u32(b, 8), put_u64(b, 4);
    put_str(b, "<s>"), put_str(b, ""), put_str(b, "▁hello"), put_str(b, "x");
    kv_head(b, "t.arr_i32", 9), put_u32(b, 5), put_u64(b, 3), put_u32(b, 1), put_u32(b, (uint32_t)-2), put_u32(b, 3);
    kv_head(b, "t.arr_f32", 9), put_u32(b, 6), put_u64(b, 2), put_f32(b, 0.5f), put_f32(b, -1.25f);
    kv_head(b, "t.arr_f64", 9), put_u32(b, 12), put_u64(b, 1), put_f64(b, 1e100);
    kv_head(b, "t.arr_u64", 9), put_u32(b, 10), put_u64(b, 2), put_u64(b, 7), put_u64(b, 1ull << 63);
    kv_head(b, "t.arr_bool", 9), put_u32(b, 7), put_u64(b, 3), put_u8(b, 1), put_u8(b, 0), put_u8(b, 1);
    kv_head(b, "t.arr_u8_empty", 9), put_u32(b, 0), put_u64(b, 0);
    kv_head(b, "t.arr_str_empty", 9), put_u32(b, 8), put_u64(b, 0);
}
#define FULL_NKV 22

enum { T_F32, T_F16, T_BF16, T_Q80, T_Q40, T_Q41, T_I32, T_F64, T_I8, T_Q5K, T_SCALAR, NT };

static void make_tensors(wt *ts) {
    bp_error err = BP_ERROR_INIT;
    static const struct { const char *name; uint32_t type, n_dims; uint64_t ne[4]; } spec[NT] = {
        [T_F32] = {"f32.weight", 0, 2, {4, 3}},        [T_F16] = {"f16", 1, 1, {8}},
        [T_BF16] = {"bf16", 30, 3, {2, 2, 2}},         [T_Q80] = {"blk.0.attn_q.weight", 8, 2, {64, 2}},
        [T_Q40] = {"q40", 2, 2, {32, 3}},              [T_Q41] = {"q41", 3, 4, {32, 1, 2, 1}},
        [T_I32] = {"i32", 26, 1, {5}},                 [T_F64] = {"f64", 28, 1, {3}},
        [T_I8] = {"i8", 24, 1, {3}},                   [T_Q5K] = {"blk.0.ffn.weight", 13, 1, {256}},
        [T_SCALAR] = {"scalar", 0, 0, {0}},
    };
    for (int i = 0; i < NT; i++) {
        wt *t = &ts[i];
        t->name = spec[i].name, t->type = spec[i].type, t->n_dims = spec[i].n_dims;
        uint64_t n = 1;
        for (uint32_t d = 0; d < 4; d++) t->ne[d] = d < t->n_dims ? spec[i].ne[d] : 1, n *= t->ne[d];
        t->nbytes = ggml_bytes(t->type, t->ne, t->n_dims);
        t->data = calloc(1, t->nbytes);
        t->values = malloc(n * sizeof(float));
        for (uint64_t k = 0; k < n; k++) t->values[k] = (float)((int)(k * 37 % 23) - 11) * 0.25f;
        int32_t dt = -1;
        switch (t->type) {
        case 0: dt = BP_DTYPE_F32; break;
        case 1: dt = BP_DTYPE_F16; break;
        case 30: dt = BP_DTYPE_BF16; break;
        case 8: dt = BP_DTYPE_Q8_0; break;
        case 2: dt = BP_DTYPE_Q4_0; break;
        case 3: dt = BP_DTYPE_Q4_1; break;
        }
        if (dt >= 0) {
            CHECK_OK(bp_quantize_row(dt, t->values, t->data, (int64_t)n, &err), &err);
        } else if (t->type == 26) {
            for (uint64_t k = 0; k < n; k++) {
                int32_t v = (int32_t)k * -1000 + 7;
                memcpy(t->data + 4 * k, &v, 4);
            }
        } else if (t->type == 28) {
            for (uint64_t k = 0; k < n; k++) {
                double v = 1.0 / (double)(k + 3);
                memcpy(t->data + 8 * k, &v, 8);
            }
        } else {
            for (size_t k = 0; k < t->nbytes; k++) t->data[k] = (uint8_t)(k * 13 + 5);
        }
    }
}

static void free_tensors(wt *ts, int n) {
    for (int i = 0; i < n; i++) {
        free(ts[i].data);
        free(ts[i].values);
    }
}

static int32_t expected_dtype(uint32_t type) {
    switch (type) {
    case 0: return BP_DTYPE_F32;
    case 1: return BP_DTYPE_F16;
    case 30: return BP_DTYPE_BF16;
    case 8: return BP_DTYPE_Q8_0;
    case 2: return BP_DTYPE_Q4_0;
    case 3: return BP_DTYPE_Q4_1;
    case 26: return BP_DTYPE_I32;
    case 28: return BP_DTYPE_F64;
    case 24: return BP_DTYPE_I8;
    default: return -1;
    }
}

static void check_kvs(const bp_gguf *g) {
    bp_error err = BP_ERROR_INIT;
    int64_t iv;
    double fv;
    int32_t bv;
    const char *sv;
    uint64_t len;
    CHECK(bp_gguf_kv_count(g) == FULL_NKV);
    CHECK(strcmp(bp_gguf_key(g, 0), "general.architecture") == 0);
    CHECK(bp_gguf_kv_type(g, 0) == BP_GGUF_TYPE_STRING);
    CHECK(bp_gguf_key(g, FULL_NKV) == NULL && bp_gguf_kv_type(g, -1) == -1);
    CHECK(bp_gguf_find_key(g, "t.f64") == 12 && bp_gguf_find_key(g, "t.f6") == -1);
    CHECK_OK(bp_gguf_get_string(g, "general.architecture", &sv, &len, &err), &err);
    CHECK(strcmp(sv, "llama") == 0 && len == 5);
    CHECK_OK(bp_gguf_get_string(g, "t.str_nul", &sv, &len, &err), &err);
    CHECK(len == 3 && memcmp(sv, "a\0b", 4) == 0);
    CHECK_OK(bp_gguf_get_int(g, "general.alignment", &iv, &err), &err);
    CHECK(iv == 64);
    CHECK_OK(bp_gguf_get_int(g, "t.u8", &iv, &err), &err);
    CHECK(iv == 200);
    CHECK_OK(bp_gguf_get_int(g, "t.i8", &iv, &err), &err);
    CHECK(iv == -5);
    CHECK_OK(bp_gguf_get_int(g, "t.u16", &iv, &err), &err);
    CHECK(iv == 0xf234);
    CHECK_OK(bp_gguf_get_int(g, "t.i16", &iv, &err), &err);
    CHECK(iv == -2);
    CHECK_OK(bp_gguf_get_int(g, "t.u32", &iv, &err), &err);
    CHECK(iv == 4000000000ll);
    CHECK_OK(bp_gguf_get_int(g, "t.i32", &iv, &err), &err);
    CHECK(iv == -123456);
    CHECK_OK(bp_gguf_get_int(g, "t.i64", &iv, &err), &err);
    CHECK(iv == -9000000000ll);
    CHECK(bp_gguf_get_int(g, "t.u64", &iv, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "t.u64") && strstr(err.msg, "18446744073709551615"), "%s", err.msg);
    CHECK(bp_gguf_get_int(g, "t.f32", &iv, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "key 't.f32' has type f32, expected an integer"), "%s", err.msg);
    CHECK(bp_gguf_get_int(g, "t.missing", &iv, &err) == BP_ERR_NOT_FOUND);
    CHECKF(strstr(err.msg, "full.gguf: key 't.missing' not found"), "%s", err.msg);
    CHECK_OK(bp_gguf_get_float(g, "t.f32", &fv, &err), &err);
    CHECK(fv == 0.15625);
    CHECK_OK(bp_gguf_get_float(g, "t.f64", &fv, &err), &err);
    CHECK(fv == -2.5e-300);
    CHECK(bp_gguf_get_float(g, "t.i32", &fv, &err) == BP_ERR_INVALID);
    CHECK_OK(bp_gguf_get_bool(g, "t.bool", &bv, &err), &err);
    CHECK(bv == 1);
    CHECK(bp_gguf_get_bool(g, "t.u8", &bv, &err) == BP_ERR_INVALID);
    CHECK(bp_gguf_get_string(g, "t.u8", &sv, NULL, &err) == BP_ERR_INVALID);

    int32_t et;
    uint64_t count;
    CHECK_OK(bp_gguf_get_array_info(g, "tokenizer.ggml.tokens", &et, &count, &err), &err);
    CHECK(et == BP_GGUF_TYPE_STRING && count == 4);
    int64_t ti = bp_gguf_find_key(g, "tokenizer.ggml.tokens");
    CHECK(bp_gguf_kv_type(g, ti) == BP_GGUF_TYPE_ARRAY);
    CHECK(strcmp(bp_gguf_array_string(g, ti, 0), "<s>") == 0);
    CHECK(strcmp(bp_gguf_array_string(g, ti, 1), "") == 0);
    CHECK(strcmp(bp_gguf_array_string(g, ti, 2), "▁hello") == 0);
    CHECK(strcmp(bp_gguf_array_string(g, ti, 3), "x") == 0);
    CHECK(bp_gguf_array_string(g, ti, 4) == NULL);
    CHECK(bp_gguf_array_string(g, 0, 0) == NULL); /* not an array */
    CHECK(bp_gguf_get_array_info(g, "t.u8", &et, &count, &err) == BP_ERR_INVALID);

    int64_t ai = bp_gguf_find_key(g, "t.arr_i32"), ints[3];
    CHECK_OK(bp_gguf_array_ints(g, ai, 0, 3, ints, &err), &err);
    CHECK(ints[0] == 1 && ints[1] == -2 && ints[2] == 3);
    CHECK_OK(bp_gguf_array_int(g, ai, 1, &iv, &err), &err);
    CHECK(iv == -2);
    CHECK(bp_gguf_array_int(g, ai, 3, &iv, &err) == BP_ERR_INVALID && strstr(err.msg, "out of range"));
    CHECK(bp_gguf_array_ints(g, ai, 2, 2, ints, &err) == BP_ERR_INVALID);
    CHECK(bp_gguf_array_float(g, ai, 0, &fv, &err) == BP_ERR_INVALID && strstr(err.msg, "array of i32"));
    int64_t fi = bp_gguf_find_key(g, "t.arr_f32");
    float fl[2];
    CHECK_OK(bp_gguf_array_floats(g, fi, 0, 2, fl, &err), &err);
    CHECK(fl[0] == 0.5f && fl[1] == -1.25f);
    CHECK_OK(bp_gguf_array_float(g, fi, 1, &fv, &err), &err);
    CHECK(fv == -1.25);
    CHECK_OK(bp_gguf_array_float(g, bp_gguf_find_key(g, "t.arr_f64"), 0, &fv, &err), &err);
    CHECK(fv == 1e100);
    int64_t ui = bp_gguf_find_key(g, "t.arr_u64");
    CHECK_OK(bp_gguf_array_int(g, ui, 0, &iv, &err), &err);
    CHECK(iv == 7);
    CHECK(bp_gguf_array_int(g, ui, 1, &iv, &err) == BP_ERR_INVALID && strstr(err.msg, "does not fit"));
    int64_t bi = bp_gguf_find_key(g, "t.arr_bool");
    CHECK_OK(bp_gguf_array_ints(g, bi, 0, 3, ints, &err), &err);
    CHECK(ints[0] == 1 && ints[1] == 0 && ints[2] == 1);
    CHECK_OK(bp_gguf_get_array_info(g, "t.arr_u8_empty", &et, &count, &err), &err);
    CHECK(et == BP_GGUF_TYPE_UINT8 && count == 0);
    CHECK_OK(bp_gguf_array_ints(g, bp_gguf_find_key(g, "t.arr_u8_empty"), 0, 0, ints, &err), &err);
    CHECK_OK(bp_gguf_get_array_info(g, "t.arr_str_empty", &et, &count, &err), &err);
    CHECK(et == BP_GGUF_TYPE_STRING && count == 0);
    CHECK(bp_gguf_array_string(g, bp_gguf_find_key(g, "t.arr_str_empty"), 0) == NULL);
    CHECK(bp_gguf_array_int(g, 99, 0, &iv, &err) == BP_ERR_INVALID);
}

static void check_tensors(const bp_gguf *g, const wt *ts, size_t align) {
    bp_error err = BP_ERROR_INIT;
    CHECK(bp_gguf_tensor_count(g) == NT);
    CHECK(bp_gguf_data_offset(g) % align == 0);
    for (int i = 0; i < NT; i++) {
        const wt *w = &ts[i];
        const bp_gguf_tensor_info *ti = bp_gguf_tensor_info_at(g, i);
        CHECK(ti != NULL);
        if (!ti) continue;
        CHECK(ti->struct_size == sizeof *ti);
        CHECK(strcmp(ti->name, w->name) == 0);
        CHECK(ti->ggml_type == (int32_t)w->type);
        CHECK(ti->n_dims == (int32_t)w->n_dims);
        for (int d = 0; d < 4; d++) CHECK(ti->ne[d] == (int64_t)w->ne[d]);
        CHECK(ti->offset % align == 0);
        CHECK(ti->nbytes == w->nbytes);
        CHECK(bp_gguf_find_tensor(g, w->name) == i);
        const uint8_t *raw = bp_gguf_tensor_data(g, i);
        CHECK(raw && memcmp(raw, w->data, w->nbytes) == 0);

        bp_tensor v;
        bp_status st = bp_gguf_tensor(g, w->name, &v, &err);
        int32_t dt = expected_dtype(w->type);
        if (dt < 0) {
            CHECK(st == BP_ERR_UNSUPPORTED);
            CHECKF(strstr(err.msg, "full.gguf: tensor 'blk.0.ffn.weight' has type Q5_K (13), supported: F32, F16, "
                                   "BF16, Q8_0, Q4_0, Q4_1"),
                   "%s", err.msg);
            continue;
        }
        CHECK_OK(st, &err);
        if (st != BP_OK) continue;
        CHECK(v.dtype == dt && v.ndim == (int32_t)w->n_dims && v.owns_data == 0 && v.backend == NULL);
        CHECK(v.data == raw && strcmp(v.name, w->name) == 0);
        for (uint32_t d = 0; d < w->n_dims; d++) CHECK(v.shape[d] == (int64_t)w->ne[w->n_dims - 1 - d]);
        CHECK(bp_tensor_nbytes(&v) == w->nbytes);
        if (dt == BP_DTYPE_F32 || dt == BP_DTYPE_F16 || dt == BP_DTYPE_BF16 || dt == BP_DTYPE_Q8_0 ||
            dt == BP_DTYPE_Q4_0 || dt == BP_DTYPE_Q4_1) {
            int64_t n = bp_tensor_numel(&v);
            float *y = malloc((size_t)n * sizeof *y);
            CHECK_OK(bp_dequantize_row(dt, v.data, y, n, &err), &err);
            float tol = dt == BP_DTYPE_F32 ? 0.0f : dt == BP_DTYPE_F16 ? 1e-3f : dt == BP_DTYPE_BF16 ? 1e-2f
                        : dt == BP_DTYPE_Q8_0 ? 0.03f : 0.4f;
            float worst = 0;
            for (int64_t k = 0; k < n; k++) worst = fmaxf(worst, fabsf(y[k] - w->values[k]));
            CHECKF(worst <= tol, "tensor '%s': dequantized error %g > %g", w->name, worst, tol);
            free(y);
        }
    }
    /* the F32 tensor [ne0 = 4, ne1 = 3] is a 3x4 row-major matrix in batpipe order */
    bp_tensor v;
    CHECK_OK(bp_gguf_tensor(g, "f32.weight", &v, &err), &err);
    CHECK(v.ndim == 2 && v.shape[0] == 3 && v.shape[1] == 4);
    CHECK(((const float *)v.data)[1 * 4 + 2] == ts[T_F32].values[6]);
    CHECK_OK(bp_gguf_tensor(g, "i32", &v, &err), &err);
    CHECK(((const int32_t *)v.data)[4] == -3993);
    CHECK_OK(bp_gguf_tensor(g, "f64", &v, &err), &err);
    CHECK(((const double *)v.data)[2] == 0.2);
    CHECK_OK(bp_gguf_tensor(g, "scalar", &v, &err), &err);
    CHECK(v.ndim == 0 && bp_tensor_numel(&v) == 1);
    CHECK(bp_gguf_tensor(g, "nope", &v, &err) == BP_ERR_NOT_FOUND && strstr(err.msg, "'nope'"));
    CHECK(bp_gguf_tensor_index(g, NT, &v, &err) == BP_ERR_NOT_FOUND);
    CHECK(bp_gguf_tensor_info_at(g, NT) == NULL && bp_gguf_tensor_data(g, -1) == NULL);
    CHECK(bp_gguf_find_tensor(g, "nope") == -1);
}

static void test_full(void) {
    wt ts[NT];
    make_tensors(ts);
    bp_error err = BP_ERROR_INIT;
    for (uint32_t version = 2; version <= 3; version++) {
        buf b = build(version, FULL_NKV, full_kvs, ts, NT, 64);
        bp_gguf *g = NULL;
        CHECK_OK(bp_gguf_open_memory(b.p, b.n, "full.gguf", &g, &err), &err);
        if (g) {
            CHECK(bp_gguf_version(g) == version && bp_gguf_alignment(g) == 64);
            CHECK(strcmp(bp_gguf_path(g), "full.gguf") == 0);
            check_kvs(g);
            check_tensors(g, ts, 64);
            bp_gguf_close(g);
        }
        if (version == 3) {
            /* the same file from disk (mmap) */
            char path[] = "/tmp/bp_test_gguf_XXXXXX";
            int fd = mkstemp(path);
            CHECK(fd >= 0 && write(fd, b.p, b.n) == (ssize_t)b.n);
            close(fd);
            g = NULL;
            bp_error_clear(&err);
            CHECK_OK(bp_gguf_open(path, &g, &err), &err);
            if (g) {
                CHECK(bp_gguf_tensor_count(g) == NT && strcmp(bp_gguf_path(g), path) == 0);
                bp_tensor v;
                CHECK_OK(bp_gguf_tensor(g, "blk.0.attn_q.weight", &v, &err), &err);
                CHECK(v.dtype == BP_DTYPE_Q8_0 && v.shape[0] == 2 && v.shape[1] == 64);
                bp_gguf_close(g);
            }
            unlink(path);
            CHECK(bp_gguf_open(path, &g, &err) == BP_ERR_NOT_FOUND && g == NULL);
        }
        free(b.p);
    }
    /* default alignment (no general.alignment key), no KVs */
    buf b = build(3, 0, NULL, ts, 3, 32);
    bp_gguf *g = NULL;
    CHECK_OK(bp_gguf_open_memory(b.p, b.n, "plain.gguf", &g, &err), &err);
    if (g) {
        CHECK(bp_gguf_alignment(g) == 32 && bp_gguf_kv_count(g) == 0 && bp_gguf_tensor_count(g) == 3);
        CHECK(bp_gguf_data_offset(g) % 32 == 0);
        bp_gguf_close(g);
    }
    free(b.p);
    /* no tensors at all */
    b = build(3, FULL_NKV, full_kvs, NULL, 0, 64);
    g = NULL;
    CHECK_OK(bp_gguf_open_memory(b.p, b.n, "full.gguf", &g, &err), &err);
    if (g) {
        check_kvs(g);
        CHECK(bp_gguf_tensor_count(g) == 0);
        bp_gguf_close(g);
    }
    free(b.p);
    free_tensors(ts, NT);
}

/* ------------------------------------------------------------ malformed -- */

static void expect_fail(const buf *b, bp_status code, const char *needle, int line) {
    bp_error err = BP_ERROR_INIT;
    bp_gguf *g = NULL;
    bp_status st = bp_gguf_open_memory(b->p, b->n, "model.gguf", &g, &err);
    CHECKF(st == code, "line %d: status %s, expected %s (%s)", line, bp_status_name(st), bp_status_name(code),
           err.msg);
    CHECKF(g == NULL, "line %d: handle returned on failure", line);
    CHECKF(strstr(err.msg, "model.gguf: ") == err.msg, "line %d: message does not start with the file: %s", line,
           err.msg);
    CHECKF(strstr(err.msg, needle) != NULL, "line %d: message '%s' lacks '%s'", line, err.msg, needle);
    bp_gguf_close(g);
}
#define EXPECT_FAIL(b, code, needle) expect_fail(&(b), code, needle, __LINE__)

/* One KV (given by `kv`), one tensor described by the arguments; data of `data_len` bytes after padding. */
static buf one_tensor(void (*kv)(buf *), uint64_t n_kv, const char *name, uint32_t n_dims, const uint64_t *ne,
                      uint32_t type, uint64_t offset, size_t data_len) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, 1);
    put_u64(&b, n_kv);
    if (kv) kv(&b);
    put_str(&b, name);
    put_u32(&b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) put_u64(&b, ne[d]);
    put_u32(&b, type);
    put_u64(&b, offset);
    pad_to(&b, 32);
    for (size_t i = 0; i < data_len; i++) put_u8(&b, (uint8_t)i);
    return b;
}

static void kv_align_12(buf *b) { kv_head(b, "general.alignment", 4), put_u32(b, 12); }
static void kv_align_0(buf *b) { kv_head(b, "general.alignment", 4), put_u32(b, 0); }
static void kv_align_u64(buf *b) { kv_head(b, "general.alignment", 10), put_u64(b, 32); }
static void kv_dup(buf *b) {
    kv_head(b, "a.key", 4), put_u32(b, 1);
    kv_head(b, "b.key", 4), put_u32(b, 2);
    kv_head(b, "a.key", 8), put_str(b, "again");
}
static void kv_nested(buf *b) { kv_head(b, "a.nested", 9), put_u32(b, 9), put_u64(b, 1), put_u32(b, 4), put_u64(b, 0); }
static void kv_bad_type(buf *b) { kv_head(b, "a.weird", 13), put_u32(b, 0); }
static void kv_bad_elem(buf *b) { kv_head(b, "a.weird", 9), put_u32(b, 77), put_u64(b, 1), put_u32(b, 0); }
static void kv_huge_array(buf *b) { kv_head(b, "a.big", 9), put_u32(b, 4), put_u64(b, 1ull << 60); }
static void kv_huge_str_array(buf *b) { kv_head(b, "a.big", 9), put_u32(b, 8), put_u64(b, UINT64_MAX / 8); }
static void kv_str_overflow(buf *b) { kv_head(b, "a.s", 8), put_u64(b, UINT64_MAX), put_u32(b, 0); }
static void kv_arr_str_overflow(buf *b) {
    kv_head(b, "a.toks", 9), put_u32(b, 8), put_u64(b, 2), put_str(b, "ok"), put_u64(b, UINT64_MAX - 3);
}
static void kv_empty_key(buf *b) { put_u64(b, 0), put_u32(b, 4), put_u32(b, 1); }
static void kv_long_key(buf *b) {
    char *k = malloc(70000);
    memset(k, 'k', 69999);
    k[69999] = '\0';
    kv_head(b, k, 4), put_u32(b, 1);
    free(k);
}
static void kv_nul_key(buf *b) { put_u64(b, 3), put(b, "a\0b", 3), put_u32(b, 4), put_u32(b, 1); }

static void test_malformed(void) {
    const uint64_t ne32[1] = {32}, ne4[2] = {4, 3};
    buf b;

    /* magic, version, header */
    b = (buf){0};
    put(&b, "GGUX", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 0);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "bad magic 'GGUX'");
    b.p[0] = 0x89, b.p[3] = 'F';
    EXPECT_FAIL(b, BP_ERR_FORMAT, "bad magic '?GUF'");
    memcpy(b.p, "GGUF", 4);
    b.p[4] = 1;
    EXPECT_FAIL(b, BP_ERR_UNSUPPORTED, "GGUF version 1 is not supported");
    b.p[4] = 4;
    EXPECT_FAIL(b, BP_ERR_UNSUPPORTED, "GGUF version 4 is not supported");
    b.p[4] = 0, b.p[7] = 3;
    EXPECT_FAIL(b, BP_ERR_UNSUPPORTED, "byte-swapped");
    b.p[4] = 3, b.p[7] = 0;
    b.p[8 + 7] = 0x10; /* tensor count 2^60 */
    EXPECT_FAIL(b, BP_ERR_FORMAT, "tensor count 1152921504606846976 at byte 8 is impossible");
    b.p[8 + 7] = 0, b.p[16 + 6] = 1; /* KV count 2^48 */
    EXPECT_FAIL(b, BP_ERR_FORMAT, "key/value count 281474976710656 at byte 16 is impossible");
    free(b.p);

    /* key/value section */
    b = one_tensor(kv_dup, 3, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "duplicate key 'a.key' (entries 0 and 2)");
    free(b.p);
    b = one_tensor(kv_nested, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_UNSUPPORTED, "key 'a.nested' at byte 24 is an array of arrays");
    free(b.p);
    b = one_tensor(kv_bad_type, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "key 'a.weird' at byte 24 has unknown value type 13");
    free(b.p);
    b = one_tensor(kv_bad_elem, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "unknown array element type 77");
    free(b.p);
    b = one_tensor(kv_huge_array, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "array of 1152921504606846976 u32 elements is larger than");
    free(b.p);
    b = one_tensor(kv_huge_str_array, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "str elements is larger than");
    free(b.p);
    b = one_tensor(kv_str_overflow, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "the value of key 'a.s' needs 18446744073709551615 bytes");
    free(b.p);
    b = one_tensor(kv_arr_str_overflow, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "element of string array 'a.toks' needs 18446744073709551612 bytes");
    free(b.p);
    b = one_tensor(kv_empty_key, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "key 0 at byte 24 is empty");
    free(b.p);
    b = one_tensor(kv_long_key, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "is 69999 bytes long (limit 65535)");
    free(b.p);
    b = one_tensor(kv_nul_key, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "key 0 at byte 24 contains a NUL byte");
    free(b.p);
    b = one_tensor(kv_align_12, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "general.alignment is 12, must be a non-zero multiple of 8");
    free(b.p);
    b = one_tensor(kv_align_0, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "general.alignment is 0");
    free(b.p);
    b = one_tensor(kv_align_u64, 1, "t", 1, ne32, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "general.alignment has type u64, expected u32");
    free(b.p);

    /* tensor infos */
    const uint64_t ne5[5] = {2, 2, 2, 2, 2};
    b = one_tensor(NULL, 0, "t5", 5, ne5, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "tensor 't5' at byte 24 has 5 dimensions (at most 4)");
    free(b.p);
    const uint64_t ne0[2] = {4, 0};
    b = one_tensor(NULL, 0, "z", 2, ne0, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "tensor 'z' at byte 24: dimension 1 is 0");
    free(b.p);
    const uint64_t nebig[3] = {1ull << 32, 1ull << 32, 4};
    b = one_tensor(NULL, 0, "big", 3, nebig, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "element count overflows 63 bits at dimension 1");
    free(b.p);
    const uint64_t nebytes[1] = {1ull << 62};
    b = one_tensor(NULL, 0, "big", 1, nebytes, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "tensor 'big' byte size overflows 64 bits");
    free(b.p);
    b = one_tensor(NULL, 0, "odd", 1, ne32, 99, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "tensor 'odd' at byte 24 has unknown ggml type 99");
    free(b.p);
    b = one_tensor(NULL, 0, "odd", 1, ne32, 4, 0, 128); /* Q4_2: removed from ggml */
    EXPECT_FAIL(b, BP_ERR_FORMAT, "unknown ggml type 4");
    free(b.p);
    const uint64_t ne40[1] = {40};
    b = one_tensor(NULL, 0, "q", 1, ne40, 8, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT,
                "tensor 'q' of type Q8_0 has rows of 40 elements, not a multiple of its block size 32");
    free(b.p);
    b = one_tensor(NULL, 0, "mis", 2, ne4, 0, 16, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "tensor 'mis' has data offset 16, not a multiple of the alignment 32");
    free(b.p);
    b = one_tensor(NULL, 0, "far", 2, ne4, 0, 96, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "tensor 'far' data [96, +48) is beyond the end of the file");
    free(b.p);
    b = one_tensor(NULL, 0, "far", 2, ne4, 0, 0xffffffffffffffe0ull, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "is beyond the end of the file");
    free(b.p);
    b = one_tensor(NULL, 0, "", 2, ne4, 0, 0, 128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "tensor 0 at byte 24 has an empty name");
    free(b.p);
    b = one_tensor(NULL, 0, "a_name_that_is_far_too_long_for_ggml_because_it_has_more_than_64_bytes", 2, ne4, 0, 0,
                   128);
    EXPECT_FAIL(b, BP_ERR_FORMAT, "has a name of 70 bytes (limit 64)");
    free(b.p);

    /* duplicate tensor names, overlapping tensors, data section beyond the file */
    {
        wt ts[2] = {{"same", 0, 1, {8, 1, 1, 1}, NULL, 32, NULL}, {"same", 0, 1, {8, 1, 1, 1}, NULL, 32, NULL}};
        uint8_t zeros[32] = {0};
        ts[0].data = ts[1].data = zeros;
        b = build(3, 0, NULL, ts, 2, 32);
        EXPECT_FAIL(b, BP_ERR_FORMAT, "duplicate tensor name 'same' (tensors 0 and 1)");
        free(b.p);
        ts[1].name = "other";
        b = build(3, 0, NULL, ts, 2, 32);
        /* point the second tensor's offset (last 8 bytes of its info) at the first */
        size_t info_end = 24 + (8 + 4) + 4 + 8 + 4 + 8 + (8 + 5) + 4 + 8 + 4 + 8;
        memset(b.p + info_end - 8, 0, 8);
        EXPECT_FAIL(b, BP_ERR_FORMAT, "tensors 'same' [0, +32) and 'other' [0, +32) overlap");
        /* cut the file right after the infos: the padded data section start is beyond the end */
        b.n = info_end + 1;
        EXPECT_FAIL(b, BP_ERR_FORMAT, "the data section would start at byte 128, beyond the end of the file");
        free(b.p);
    }
}

/* Every truncation of a small valid file (all KV kinds, several tensors) fails cleanly. */
static void test_truncation(void) {
    wt ts[NT];
    make_tensors(ts);
    buf b = build(3, FULL_NKV, full_kvs, ts, NT, 64);
    bp_error err = BP_ERROR_INIT;
    bp_gguf *g = NULL;
    CHECK_OK(bp_gguf_open_memory(b.p, b.n, "full.gguf", &g, &err), &err);
    bp_gguf_close(g);
    /* the last tensor's data ends before the final padding; lengths from there on are valid */
    const bp_gguf_tensor_info *last = NULL;
    g = NULL;
    CHECK_OK(bp_gguf_open_memory(b.p, b.n, "full.gguf", &g, &err), &err);
    size_t valid_from = b.n;
    if (g) {
        for (int64_t i = 0; i < bp_gguf_tensor_count(g); i++) {
            const bp_gguf_tensor_info *ti = bp_gguf_tensor_info_at(g, i);
            if (!last || ti->offset > last->offset) last = ti;
        }
        valid_from = (size_t)(bp_gguf_data_offset(g) + last->offset + last->nbytes);
        bp_gguf_close(g);
    }
    int bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, b.p, n);
        g = NULL;
        bp_error_clear(&err);
        bp_status st = bp_gguf_open_memory(cut, n, "cut.gguf", &g, &err);
        int ok = n < valid_from ? (st == BP_ERR_FORMAT && g == NULL && strstr(err.msg, "cut.gguf: ") == err.msg)
                                : (st == BP_OK && g != NULL);
        if (!ok && bad++ < 5) fprintf(stderr, "truncated at %zu: %s (%s)\n", n, bp_status_name(st), err.msg);
        bp_gguf_close(g);
        free(cut);
    }
    CHECKF(bad == 0, "%d truncation lengths misbehaved", bad);
    free(b.p);
    free_tensors(ts, NT);
}

/* ------------------------------------------- a file from the gguf-py writer -- */

static void test_gguf_py_file(void) {
    const char *dir = getenv("BP_TEST_DATA");
    if (!dir) {
        fprintf(stderr, "BP_TEST_DATA not set: skipping the gguf-py file check\n");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/io/gguf_py_tiny.gguf", dir);
    bp_error err = BP_ERROR_INIT;
    bp_gguf *g = NULL;
    CHECK_OK(bp_gguf_open(path, &g, &err), &err);
    if (!g) return;
    CHECK(bp_gguf_version(g) == 3 && bp_gguf_alignment(g) == 32);
    CHECK(bp_gguf_kv_count(g) == 8 && bp_gguf_tensor_count(g) == 5);
    const char *s;
    int64_t iv;
    double fv;
    int32_t bv, et;
    uint64_t count;
    CHECK_OK(bp_gguf_get_string(g, "general.architecture", &s, NULL, &err), &err);
    CHECK(s && strcmp(s, "llama") == 0);
    CHECK_OK(bp_gguf_get_string(g, "general.name", &s, NULL, &err), &err);
    CHECK(s && strcmp(s, "tiny") == 0);
    CHECK_OK(bp_gguf_get_int(g, "llama.block_count", &iv, &err), &err);
    CHECK(iv == 2);
    CHECK_OK(bp_gguf_get_float(g, "llama.rope.freq_base", &fv, &err), &err);
    CHECK(fv == 10000.0);
    CHECK_OK(bp_gguf_get_bool(g, "t.flag", &bv, &err), &err);
    CHECK(bv == 1);
    CHECK_OK(bp_gguf_get_array_info(g, "tokenizer.ggml.tokens", &et, &count, &err), &err);
    CHECK(et == BP_GGUF_TYPE_STRING && count == 3);
    CHECK(strcmp(bp_gguf_array_string(g, bp_gguf_find_key(g, "tokenizer.ggml.tokens"), 2), "bc") == 0);
    float scores[3];
    CHECK_OK(bp_gguf_array_floats(g, bp_gguf_find_key(g, "tokenizer.ggml.scores"), 0, 3, scores, &err), &err);
    CHECK(scores[0] == 0.0f && scores[1] == -1.0f && scores[2] == 2.5f);
    int64_t types[3];
    CHECK_OK(bp_gguf_array_ints(g, bp_gguf_find_key(g, "tokenizer.ggml.token_type"), 0, 3, types, &err), &err);
    CHECK(types[0] == 3 && types[1] == 1 && types[2] == 1);

    bp_tensor x;
    CHECK_OK(bp_gguf_tensor(g, "f32", &x, &err), &err);
    if (!x.data) {
        bp_gguf_close(g);
        return;
    }
    CHECK(x.dtype == BP_DTYPE_F32 && x.ndim == 2 && x.shape[0] == 3 && x.shape[1] == 64);
    const float *xv = x.data;
    CHECK_NEAR(xv[64 + 0], 0.32896963, 1e-7);
    CHECK_NEAR(xv[64 + 2], 1.5834728, 1e-7);
    CHECK_NEAR(xv[2 * 64 + 63], -1.3077532, 1e-7);
    static const struct { const char *name; int32_t dtype; float tol; } q[] = {
        {"f16", BP_DTYPE_F16, 2e-3f}, {"q8_0", BP_DTYPE_Q8_0, 0.02f}, {"q4_0", BP_DTYPE_Q4_0, 0.5f},
        {"q4_1", BP_DTYPE_Q4_1, 0.3f}};
    for (size_t k = 0; k < sizeof q / sizeof q[0]; k++) {
        bp_tensor v;
        CHECK_OK(bp_gguf_tensor(g, q[k].name, &v, &err), &err);
        if (!v.data) continue;
        CHECK(v.dtype == q[k].dtype && v.ndim == 2 && v.shape[0] == 3 && v.shape[1] == 64);
        size_t nb = bp_tensor_nbytes(&v);
        uint8_t *mine = malloc(nb);
        float y[192];
        CHECK_OK(bp_quantize_row(q[k].dtype, xv, mine, 192, &err), &err);
        CHECKF(memcmp(mine, v.data, nb) == 0, "%s: bp_quantize_row differs from gguf-py", q[k].name);
        CHECK_OK(bp_dequantize_row(q[k].dtype, v.data, y, 192, &err), &err);
        float worst = 0;
        for (int i = 0; i < 192; i++) worst = fmaxf(worst, fabsf(y[i] - xv[i]));
        CHECKF(worst <= q[k].tol, "%s: error %g > %g", q[k].name, worst, q[k].tol);
        free(mine);
    }
    bp_gguf_close(g);
}

int main(void) {
    test_full();
    test_gguf_py_file();
    test_malformed();
    test_truncation();
    return TEST_RESULT();
}
