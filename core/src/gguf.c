/* GGUF v2/v3 reader: memory-mapped, every count, length and offset checked before use. */
#include "batpipe/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_KEY 65535u
#define GGUF_MAX_NAME 64u
#define GGUF_MIN_KV_BYTES 14u     /* u64 key length + 1 key byte + u32 type + 1 value byte */
#define GGUF_MIN_TENSOR_BYTES 25u /* u64 name length + 1 name byte + u32 n_dims + u32 type + u64 offset */

/* ----------------------------------------------------------- type tables -- */

static const struct {
    const char *name;
    uint32_t size; /* 0: variable (string, array) */
} gguf_types[BP_GGUF_TYPE_COUNT] = {
    {"u8", 1}, {"i8", 1}, {"u16", 2}, {"i16", 2}, {"u32", 4},  {"i32", 4}, {"f32", 4},
    {"bool", 1}, {"str", 0}, {"arr", 0}, {"u64", 8}, {"i64", 8}, {"f64", 8},
};

typedef struct ggml_type_info {
    const char *name; /* NULL: an id ggml removed or never used */
    uint32_t blck;    /* elements per block */
    uint32_t size;    /* bytes per block */
    int32_t dtype;    /* bp_dtype, or -1 when batpipe cannot compute with it */
} ggml_type_info;

#define GGML_NTYPES 40
static const ggml_type_info ggml_types[GGML_NTYPES] = {
    [0] = {"F32", 1, 4, BP_DTYPE_F32},
    [1] = {"F16", 1, 2, BP_DTYPE_F16},
    [2] = {"Q4_0", 32, 18, BP_DTYPE_Q4_0},
    [3] = {"Q4_1", 32, 20, BP_DTYPE_Q4_1},
    [6] = {"Q5_0", 32, 22, -1},
    [7] = {"Q5_1", 32, 24, -1},
    [8] = {"Q8_0", 32, 34, BP_DTYPE_Q8_0},
    [9] = {"Q8_1", 32, 36, -1},
    [10] = {"Q2_K", 256, 84, -1},
    [11] = {"Q3_K", 256, 110, -1},
    [12] = {"Q4_K", 256, 144, -1},
    [13] = {"Q5_K", 256, 176, -1},
    [14] = {"Q6_K", 256, 210, -1},
    [15] = {"Q8_K", 256, 292, -1},
    [16] = {"IQ2_XXS", 256, 66, -1},
    [17] = {"IQ2_XS", 256, 74, -1},
    [18] = {"IQ3_XXS", 256, 98, -1},
    [19] = {"IQ1_S", 256, 50, -1},
    [20] = {"IQ4_NL", 32, 18, -1},
    [21] = {"IQ3_S", 256, 110, -1},
    [22] = {"IQ2_S", 256, 82, -1},
    [23] = {"IQ4_XS", 256, 136, -1},
    [24] = {"I8", 1, 1, BP_DTYPE_I8},
    [25] = {"I16", 1, 2, BP_DTYPE_I16},
    [26] = {"I32", 1, 4, BP_DTYPE_I32},
    [27] = {"I64", 1, 8, BP_DTYPE_I64},
    [28] = {"F64", 1, 8, BP_DTYPE_F64},
    [29] = {"IQ1_M", 256, 56, -1},
    [30] = {"BF16", 1, 2, BP_DTYPE_BF16},
    [34] = {"TQ1_0", 256, 54, -1},
    [35] = {"TQ2_0", 256, 66, -1},
    [39] = {"MXFP4", 32, 17, -1},
};
#define GGUF_SUPPORTED "F32, F16, BF16, Q8_0, Q4_0, Q4_1, F64, I8, I16, I32, I64"

static const ggml_type_info *ggml_type_get(uint32_t t) {
    return (t < GGML_NTYPES && ggml_types[t].name) ? &ggml_types[t] : NULL;
}

const char *bp_gguf_type_name(int32_t type) {
    return (type >= 0 && type < BP_GGUF_TYPE_COUNT) ? gguf_types[type].name : "?";
}

const char *bp_gguf_ggml_type_name(int32_t ggml_type) {
    const ggml_type_info *ti = ggml_type < 0 ? NULL : ggml_type_get((uint32_t)ggml_type);
    return ti ? ti->name : "?";
}

/* ------------------------------------------------------------- the handle -- */

typedef struct gguf_kv {
    char *key;         /* owned */
    int32_t type;      /* value type; BP_GGUF_TYPE_ARRAY for arrays */
    int32_t elem_type; /* arrays: element type */
    uint64_t count;    /* arrays: element count; 1 for scalars */
    uint64_t off;      /* file offset of the scalar value or of the first array element */
    char *str;         /* string scalar: owned NUL-terminated copy */
    uint64_t str_len;
    char **strs; /* string array: `count` pointers followed by the characters (one allocation) */
} gguf_kv;

typedef struct gguf_tensor {
    bp_gguf_tensor_info info;
    char *name; /* owned; info.name points here */
} gguf_tensor;

typedef struct name_ref {
    const char *name;
    int64_t index;
} name_ref;

struct bp_gguf {
    char *path; /* label for messages; owned */
    void *map;  /* mmap'd region, or NULL for a borrowed buffer */
    size_t map_size;
    const uint8_t *base;
    uint64_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    gguf_kv *kv;
    name_ref *kv_sorted; /* by key */
    int64_t n_tensors;
    gguf_tensor *tensors;
    name_ref *tensor_sorted; /* by name */
};

void bp_gguf_close(bp_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str);
        free(g->kv[i].strs);
    }
    free(g->kv);
    free(g->kv_sorted);
    for (int64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->tensors);
    free(g->tensor_sorted);
    if (g->map) munmap(g->map, g->map_size);
    free(g->path);
    free(g);
}

/* ----------------------------------------------------------- the cursor -- */

typedef struct cursor {
    const bp_gguf *g;
    uint64_t pos;
    bp_error *err;
} cursor;

typedef unsigned long long ull;

static uint64_t left(const cursor *c) { return c->g->size - c->pos; }

static uint64_t load_le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

static bp_status need(cursor *c, uint64_t n, const char *what) {
    if (n > left(c))
        return bp_error_set(c->err, BP_ERR_FORMAT,
                            "%s: truncated at byte %llu: %s needs %llu bytes, only %llu left", c->g->path,
                            (ull)c->pos, what, (ull)n, (ull)left(c));
    return BP_OK;
}

static bp_status read_u32(cursor *c, uint32_t *v, const char *what) {
    bp_status st = need(c, 4, what);
    if (st != BP_OK) return st;
    *v = (uint32_t)load_le(c->g->base + c->pos, 4);
    c->pos += 4;
    return BP_OK;
}

static bp_status read_u64(cursor *c, uint64_t *v, const char *what) {
    bp_status st = need(c, 8, what);
    if (st != BP_OK) return st;
    *v = load_le(c->g->base + c->pos, 8);
    c->pos += 8;
    return BP_OK;
}

/* A length-prefixed string: *s points into the mapping (not NUL-terminated). */
static bp_status read_str(cursor *c, const uint8_t **s, uint64_t *len, const char *what) {
    bp_status st = read_u64(c, len, what);
    if (st == BP_OK) st = need(c, *len, what);
    if (st != BP_OK) return st;
    *s = c->g->base + c->pos;
    c->pos += *len;
    return BP_OK;
}

static char *copy_str(const uint8_t *s, uint64_t len) {
    char *d = malloc((size_t)len + 1);
    if (!d) return NULL;
    memcpy(d, s, (size_t)len);
    d[len] = '\0';
    return d;
}

/* --------------------------------------------------------------- parsing -- */

static bp_status parse_header(cursor *c, uint64_t *n_tensors, uint64_t *n_kv) {
    bp_gguf *g = (bp_gguf *)c->g;
    if (g->size < 4)
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: file is %llu bytes, too short for the GGUF magic", g->path,
                            (ull)g->size);
    if (memcmp(g->base, "GGUF", 4) != 0) {
        char m[5];
        for (int i = 0; i < 4; i++) m[i] = (g->base[i] >= 0x20 && g->base[i] < 0x7f) ? (char)g->base[i] : '?';
        m[4] = '\0';
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: bad magic '%s' (expected 'GGUF'): not a GGUF file", g->path,
                            m);
    }
    c->pos = 4;
    bp_status st = read_u32(c, &g->version, "the version");
    if (st != BP_OK) return st;
    if (g->version != 2 && g->version != 3) {
        if (g->version != 0 && (g->version & 0xffffu) == 0)
            return bp_error_set(c->err, BP_ERR_UNSUPPORTED,
                                "%s: GGUF version 0x%08x looks byte-swapped: big-endian files are not supported",
                                g->path, g->version);
        return bp_error_set(c->err, BP_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (only 2 and 3)",
                            g->path, g->version);
    }
    st = read_u64(c, n_tensors, "the tensor count");
    if (st == BP_OK) st = read_u64(c, n_kv, "the key/value count");
    if (st != BP_OK) return st;
    if (*n_kv > left(c) / GGUF_MIN_KV_BYTES)
        return bp_error_set(c->err, BP_ERR_FORMAT,
                            "%s: key/value count %llu at byte 16 is impossible: only %llu bytes follow", g->path,
                            (ull)*n_kv, (ull)left(c));
    if (*n_tensors > left(c) / GGUF_MIN_TENSOR_BYTES)
        return bp_error_set(c->err, BP_ERR_FORMAT,
                            "%s: tensor count %llu at byte 8 is impossible: only %llu bytes follow", g->path,
                            (ull)*n_tensors, (ull)left(c));
    return BP_OK;
}

/* The elements of a string array: validate, then copy into one allocation. */
static bp_status parse_string_array(cursor *c, gguf_kv *kv) {
    const bp_gguf *g = c->g;
    char what[96];
    snprintf(what, sizeof what, "element of string array '%.60s'", kv->key);
    uint64_t start = c->pos, total = 0;
    for (uint64_t k = 0; k < kv->count; k++) {
        const uint8_t *s;
        uint64_t len;
        bp_status st = read_str(c, &s, &len, what);
        if (st != BP_OK) return st;
        total += len + 1; /* bounded by the file size plus the count */
    }
    if (kv->count == 0) return BP_OK;
    size_t head = (size_t)kv->count * sizeof(char *);
    kv->strs = malloc(head + (size_t)total);
    if (!kv->strs)
        return bp_error_set(c->err, BP_ERR_NOMEM, "%s: out of memory for string array '%s'", g->path, kv->key);
    char *chars = (char *)kv->strs + head;
    uint64_t p = start;
    for (uint64_t k = 0; k < kv->count; k++) {
        uint64_t len = load_le(g->base + p, 8);
        memcpy(chars, g->base + p + 8, (size_t)len);
        chars[len] = '\0';
        kv->strs[k] = chars;
        chars += len + 1;
        p += 8 + len;
    }
    return BP_OK;
}

static bp_status parse_kv(cursor *c, int64_t i, gguf_kv *kv) {
    const bp_gguf *g = c->g;
    uint64_t at = c->pos;
    const uint8_t *s;
    uint64_t len;
    char what[96];
    snprintf(what, sizeof what, "key %lld", (long long)i);
    bp_status st = read_u64(c, &len, what);
    if (st != BP_OK) return st;
    if (len == 0)
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: key %lld at byte %llu is empty", g->path, (long long)i,
                            (ull)at);
    if (len > GGUF_MAX_KEY)
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: key %lld at byte %llu is %llu bytes long (limit %u)", g->path,
                            (long long)i, (ull)at, (ull)len, GGUF_MAX_KEY);
    st = need(c, len, what);
    if (st != BP_OK) return st;
    s = g->base + c->pos;
    c->pos += len;
    if (memchr(s, 0, (size_t)len))
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: key %lld at byte %llu contains a NUL byte", g->path,
                            (long long)i, (ull)at);
    kv->key = copy_str(s, len);
    if (!kv->key) return bp_error_set(c->err, BP_ERR_NOMEM, "%s: out of memory", g->path);

    snprintf(what, sizeof what, "the value of key '%.60s'", kv->key);
    uint32_t type;
    st = read_u32(c, &type, what);
    if (st != BP_OK) return st;
    kv->count = 1;
    if (type == BP_GGUF_TYPE_ARRAY) {
        uint32_t elem;
        st = read_u32(c, &elem, what);
        if (st == BP_OK) st = read_u64(c, &kv->count, what);
        if (st != BP_OK) return st;
        if (elem == BP_GGUF_TYPE_ARRAY)
            return bp_error_set(c->err, BP_ERR_UNSUPPORTED,
                                "%s: key '%s' at byte %llu is an array of arrays (nested arrays are not supported)",
                                g->path, kv->key, (ull)at);
        if (elem >= BP_GGUF_TYPE_COUNT)
            return bp_error_set(c->err, BP_ERR_FORMAT, "%s: key '%s' at byte %llu: unknown array element type %u",
                                g->path, kv->key, (ull)at, elem);
        kv->type = BP_GGUF_TYPE_ARRAY;
        kv->elem_type = (int32_t)elem;
        uint64_t el = elem == BP_GGUF_TYPE_STRING ? 8 : gguf_types[elem].size;
        if (kv->count > left(c) / el)
            return bp_error_set(c->err, BP_ERR_FORMAT,
                                "%s: key '%s' at byte %llu: array of %llu %s elements is larger than the %llu bytes "
                                "left",
                                g->path, kv->key, (ull)at, (ull)kv->count, gguf_types[elem].name, (ull)left(c));
        kv->off = c->pos;
        if (elem == BP_GGUF_TYPE_STRING) return parse_string_array(c, kv);
        c->pos += kv->count * el;
        return BP_OK;
    }
    if (type >= BP_GGUF_TYPE_COUNT)
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: key '%s' at byte %llu has unknown value type %u", g->path,
                            kv->key, (ull)at, type);
    kv->type = (int32_t)type;
    kv->off = c->pos;
    if (type == BP_GGUF_TYPE_STRING) {
        st = read_str(c, &s, &len, what);
        if (st != BP_OK) return st;
        kv->str = copy_str(s, len);
        kv->str_len = len;
        if (!kv->str) return bp_error_set(c->err, BP_ERR_NOMEM, "%s: out of memory", g->path);
        return BP_OK;
    }
    st = need(c, gguf_types[type].size, what);
    if (st != BP_OK) return st;
    c->pos += gguf_types[type].size;
    return BP_OK;
}

static int name_ref_cmp(const void *a, const void *b) {
    const name_ref *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r) return r;
    return (x->index > y->index) - (x->index < y->index);
}

/* Sorted (name, index) pairs; a duplicate name is reported by the caller. */
static name_ref *sort_names(int64_t n, const char *(*get)(const bp_gguf *, int64_t), const bp_gguf *g) {
    name_ref *r = malloc((size_t)(n ? n : 1) * sizeof *r);
    if (!r) return NULL;
    for (int64_t i = 0; i < n; i++) r[i] = (name_ref){get(g, i), i};
    qsort(r, (size_t)n, sizeof *r, name_ref_cmp);
    return r;
}

static const char *kv_key_of(const bp_gguf *g, int64_t i) { return g->kv[i].key; }
static const char *tensor_name_of(const bp_gguf *g, int64_t i) { return g->tensors[i].name; }

static bp_status parse_kvs(cursor *c, uint64_t n_kv) {
    bp_gguf *g = (bp_gguf *)c->g;
    g->kv = calloc((size_t)(n_kv ? n_kv : 1), sizeof *g->kv);
    if (!g->kv) return bp_error_set(c->err, BP_ERR_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = (int64_t)i + 1; /* so that close frees the partial entry */
        bp_status st = parse_kv(c, (int64_t)i, &g->kv[i]);
        if (st != BP_OK) return st;
    }
    g->kv_sorted = sort_names(g->n_kv, kv_key_of, g);
    if (!g->kv_sorted) return bp_error_set(c->err, BP_ERR_NOMEM, "%s: out of memory", g->path);
    for (int64_t i = 1; i < g->n_kv; i++)
        if (strcmp(g->kv_sorted[i - 1].name, g->kv_sorted[i].name) == 0)
            return bp_error_set(c->err, BP_ERR_FORMAT, "%s: duplicate key '%s' (entries %lld and %lld)", g->path,
                                g->kv_sorted[i].name, (long long)g->kv_sorted[i - 1].index,
                                (long long)g->kv_sorted[i].index);
    g->alignment = BP_GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = bp_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        const gguf_kv *kv = &g->kv[ai];
        if (kv->type != BP_GGUF_TYPE_UINT32)
            return bp_error_set(c->err, BP_ERR_FORMAT, "%s: general.alignment has type %s, expected u32", g->path,
                                kv->type == BP_GGUF_TYPE_ARRAY ? "arr" : gguf_types[kv->type].name);
        uint32_t a = (uint32_t)load_le(g->base + kv->off, 4);
        if (a == 0 || a % 8 != 0)
            return bp_error_set(c->err, BP_ERR_FORMAT, "%s: general.alignment is %u, must be a non-zero multiple of 8",
                                g->path, a);
        g->alignment = a;
    }
    return BP_OK;
}

static bp_status parse_tensor_info(cursor *c, int64_t i, gguf_tensor *t) {
    const bp_gguf *g = c->g;
    uint64_t at = c->pos;
    char what[96];
    snprintf(what, sizeof what, "tensor info %lld", (long long)i);
    const uint8_t *s;
    uint64_t len;
    bp_status st = read_u64(c, &len, what);
    if (st != BP_OK) return st;
    if (len == 0)
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: tensor %lld at byte %llu has an empty name", g->path,
                            (long long)i, (ull)at);
    if (len > GGUF_MAX_NAME)
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: tensor %lld at byte %llu has a name of %llu bytes (limit %u)",
                            g->path, (long long)i, (ull)at, (ull)len, GGUF_MAX_NAME);
    st = need(c, len, what);
    if (st != BP_OK) return st;
    s = g->base + c->pos;
    c->pos += len;
    if (memchr(s, 0, (size_t)len))
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: tensor %lld at byte %llu: name contains a NUL byte", g->path,
                            (long long)i, (ull)at);
    t->name = copy_str(s, len);
    if (!t->name) return bp_error_set(c->err, BP_ERR_NOMEM, "%s: out of memory", g->path);
    bp_gguf_tensor_info *ti = &t->info;
    ti->struct_size = sizeof *ti;
    ti->name = t->name;
    snprintf(what, sizeof what, "tensor info '%s'", t->name);

    uint32_t n_dims;
    st = read_u32(c, &n_dims, what);
    if (st != BP_OK) return st;
    if (n_dims > BP_GGUF_MAX_DIMS)
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: tensor '%s' at byte %llu has %u dimensions (at most %d)",
                            g->path, t->name, (ull)at, n_dims, BP_GGUF_MAX_DIMS);
    ti->n_dims = (int32_t)n_dims;
    uint64_t numel = 1;
    for (uint32_t d = 0; d < BP_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < n_dims) {
            st = read_u64(c, &ne, what);
            if (st != BP_OK) return st;
            if (ne == 0)
                return bp_error_set(c->err, BP_ERR_FORMAT, "%s: tensor '%s' at byte %llu: dimension %u is 0",
                                    g->path, t->name, (ull)at, d);
            if (ne > (uint64_t)INT64_MAX / numel)
                return bp_error_set(c->err, BP_ERR_FORMAT,
                                    "%s: tensor '%s' at byte %llu: element count overflows 63 bits at dimension %u",
                                    g->path, t->name, (ull)at, d);
            numel *= ne;
        }
        ti->ne[d] = (int64_t)ne;
    }
    uint32_t type;
    st = read_u32(c, &type, what);
    if (st != BP_OK) return st;
    const ggml_type_info *tt = ggml_type_get(type);
    if (!tt)
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: tensor '%s' at byte %llu has unknown ggml type %u", g->path,
                            t->name, (ull)at, type);
    ti->ggml_type = (int32_t)type;
    if ((uint64_t)ti->ne[0] % tt->blck != 0)
        return bp_error_set(c->err, BP_ERR_FORMAT,
                            "%s: tensor '%s' of type %s has rows of %lld elements, not a multiple of its block size "
                            "%u",
                            g->path, t->name, tt->name, (long long)ti->ne[0], tt->blck);
    uint64_t blocks = numel / tt->blck;
    if (blocks > UINT64_MAX / tt->size)
        return bp_error_set(c->err, BP_ERR_FORMAT, "%s: tensor '%s' byte size overflows 64 bits", g->path, t->name);
    ti->nbytes = blocks * tt->size;
    st = read_u64(c, &ti->offset, what);
    if (st != BP_OK) return st;
    if (ti->offset % g->alignment != 0)
        return bp_error_set(c->err, BP_ERR_FORMAT,
                            "%s: tensor '%s' has data offset %llu, not a multiple of the alignment %u", g->path,
                            t->name, (ull)ti->offset, g->alignment);
    return BP_OK;
}

static int offset_cmp(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    if (x->info.offset != y->info.offset) return x->info.offset < y->info.offset ? -1 : 1;
    if (x->info.nbytes != y->info.nbytes) return x->info.nbytes < y->info.nbytes ? -1 : 1;
    return (x > y) - (x < y); /* file order: both point into the same array */
}

static bp_status parse_tensors(cursor *c, uint64_t n_tensors) {
    bp_gguf *g = (bp_gguf *)c->g;
    g->tensors = calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *g->tensors);
    if (!g->tensors) return bp_error_set(c->err, BP_ERR_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < n_tensors; i++) {
        g->n_tensors = (int64_t)i + 1;
        bp_status st = parse_tensor_info(c, (int64_t)i, &g->tensors[i]);
        if (st != BP_OK) return st;
    }
    g->tensor_sorted = sort_names(g->n_tensors, tensor_name_of, g);
    if (!g->tensor_sorted) return bp_error_set(c->err, BP_ERR_NOMEM, "%s: out of memory", g->path);
    for (int64_t i = 1; i < g->n_tensors; i++)
        if (strcmp(g->tensor_sorted[i - 1].name, g->tensor_sorted[i].name) == 0)
            return bp_error_set(c->err, BP_ERR_FORMAT, "%s: duplicate tensor name '%s' (tensors %lld and %lld)",
                                g->path, g->tensor_sorted[i].name, (long long)g->tensor_sorted[i - 1].index,
                                (long long)g->tensor_sorted[i].index);

    /* The data section starts at the next multiple of the alignment. */
    uint64_t pad = (g->alignment - c->pos % g->alignment) % g->alignment;
    g->data_offset = c->pos + pad;
    if (n_tensors == 0) {
        if (g->data_offset > g->size) g->data_offset = g->size;
        return BP_OK;
    }
    if (pad > left(c))
        return bp_error_set(c->err, BP_ERR_FORMAT,
                            "%s: the data section would start at byte %llu, beyond the end of the file (%llu bytes; "
                            "truncated?)",
                            g->path, (ull)g->data_offset, (ull)g->size);
    uint64_t avail = g->size - g->data_offset;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const bp_gguf_tensor_info *ti = &g->tensors[i].info;
        if (ti->offset > avail || ti->nbytes > avail - ti->offset)
            return bp_error_set(c->err, BP_ERR_FORMAT,
                                "%s: tensor '%s' data [%llu, +%llu) is beyond the end of the file (the data section "
                                "at byte %llu holds %llu bytes; truncated?)",
                                g->path, ti->name, (ull)ti->offset, (ull)ti->nbytes, (ull)g->data_offset, (ull)avail);
    }
    const gguf_tensor **by_off = malloc((size_t)g->n_tensors * sizeof *by_off);
    if (!by_off) return bp_error_set(c->err, BP_ERR_NOMEM, "%s: out of memory", g->path);
    for (int64_t i = 0; i < g->n_tensors; i++) by_off[i] = &g->tensors[i];
    qsort(by_off, (size_t)g->n_tensors, sizeof *by_off, offset_cmp);
    bp_status st = BP_OK;
    for (int64_t i = 1; i < g->n_tensors && st == BP_OK; i++) {
        const bp_gguf_tensor_info *a = &by_off[i - 1]->info, *b = &by_off[i]->info;
        if (b->offset < a->offset + a->nbytes)
            st = bp_error_set(c->err, BP_ERR_FORMAT,
                              "%s: tensors '%s' [%llu, +%llu) and '%s' [%llu, +%llu) overlap in the data section",
                              g->path, a->name, (ull)a->offset, (ull)a->nbytes, b->name, (ull)b->offset,
                              (ull)b->nbytes);
    }
    free(by_off);
    return st;
}

static bp_status gguf_parse(bp_gguf *g, bp_error *err) {
    cursor c = {g, 0, err};
    uint64_t n_tensors = 0, n_kv = 0;
    bp_status st = parse_header(&c, &n_tensors, &n_kv);
    if (st == BP_OK) st = parse_kvs(&c, n_kv);
    if (st == BP_OK) st = parse_tensors(&c, n_tensors);
    return st;
}

static bp_status gguf_open_common(const uint8_t *base, size_t size, const char *label, void *map, size_t map_size,
                                  bp_gguf **out, bp_error *err) {
    bp_gguf *g = calloc(1, sizeof *g);
    char *path = malloc(strlen(label) + 1);
    if (!g || !path) {
        free(g);
        free(path);
        if (map) munmap(map, map_size);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", label);
    }
    memcpy(path, label, strlen(label) + 1);
    g->path = path;
    g->map = map;
    g->map_size = map_size;
    g->base = base;
    g->size = size;
    bp_status st = gguf_parse(g, err);
    if (st != BP_OK) {
        bp_gguf_close(g);
        return st;
    }
    *out = g;
    return BP_OK;
}

bp_status bp_gguf_open(const char *path, bp_gguf **out, bp_error *err) {
    *out = NULL;
    if (!path) return bp_error_set(err, BP_ERR_INVALID, "gguf: no path given");
    char ebuf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bp_error_set(err, errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO, "%s: cannot open: %s", path,
                            strerror_r(errno, ebuf, sizeof ebuf));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return bp_error_set(err, BP_ERR_IO, "%s: not a readable regular file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return bp_error_set(err, BP_ERR_IO, "%s: file too large to map", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 4) {
        close(fd);
        return bp_error_set(err, BP_ERR_FORMAT, "%s: file is %zu bytes, too short for the GGUF magic", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return bp_error_set(err, BP_ERR_IO, "%s: cannot map %zu bytes: %s", path, size,
                            strerror_r(e, ebuf, sizeof ebuf));
    return gguf_open_common(map, size, path, map, size, out, err);
}

bp_status bp_gguf_open_memory(const void *data, size_t size, const char *label, bp_gguf **out, bp_error *err) {
    *out = NULL;
    if (!label) label = "<memory>";
    if (!data && size) return bp_error_set(err, BP_ERR_INVALID, "%s: NULL buffer", label);
    static const uint8_t empty[1] = {0};
    return gguf_open_common(data ? data : empty, size, label, NULL, 0, out, err);
}

/* ------------------------------------------------------------- getters -- */

const char *bp_gguf_path(const bp_gguf *g) { return g ? g->path : NULL; }
uint32_t bp_gguf_version(const bp_gguf *g) { return g ? g->version : 0; }
uint32_t bp_gguf_alignment(const bp_gguf *g) { return g ? g->alignment : 0; }
uint64_t bp_gguf_data_offset(const bp_gguf *g) { return g ? g->data_offset : 0; }
int64_t bp_gguf_kv_count(const bp_gguf *g) { return g ? g->n_kv : 0; }

const char *bp_gguf_key(const bp_gguf *g, int64_t i) {
    return (g && i >= 0 && i < g->n_kv) ? g->kv[i].key : NULL;
}

int32_t bp_gguf_kv_type(const bp_gguf *g, int64_t i) {
    return (g && i >= 0 && i < g->n_kv) ? g->kv[i].type : -1;
}

static int64_t find_sorted(const name_ref *r, int64_t n, const char *name) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, r[mid].name);
        if (c == 0) return r[mid].index;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

int64_t bp_gguf_find_key(const bp_gguf *g, const char *key) {
    if (!g || !key || !g->kv_sorted) return -1;
    return find_sorted(g->kv_sorted, g->n_kv, key);
}

static const char *type_desc(const gguf_kv *kv) {
    return kv->type == BP_GGUF_TYPE_ARRAY ? "an array" : gguf_types[kv->type].name;
}

static bp_status lookup(const bp_gguf *g, const char *key, const gguf_kv **kv, bp_error *err) {
    if (!g || !key) return bp_error_set(err, BP_ERR_INVALID, "gguf: NULL argument");
    int64_t i = bp_gguf_find_key(g, key);
    if (i < 0) return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: key '%s' not found", g->path, key);
    *kv = &g->kv[i];
    return BP_OK;
}

static int is_int_type(int32_t t) {
    return t == BP_GGUF_TYPE_UINT8 || t == BP_GGUF_TYPE_INT8 || t == BP_GGUF_TYPE_UINT16 || t == BP_GGUF_TYPE_INT16 ||
           t == BP_GGUF_TYPE_UINT32 || t == BP_GGUF_TYPE_INT32 || t == BP_GGUF_TYPE_UINT64 ||
           t == BP_GGUF_TYPE_INT64;
}

/* Decode an integer of type t at p; 0 when it does not fit int64_t. */
static int decode_int(const uint8_t *p, int32_t t, int64_t *out) {
    uint64_t u = load_le(p, gguf_types[t].size);
    switch (t) {
    case BP_GGUF_TYPE_INT8: *out = (int8_t)(uint8_t)u; return 1;
    case BP_GGUF_TYPE_INT16: *out = (int16_t)(uint16_t)u; return 1;
    case BP_GGUF_TYPE_INT32: *out = (int32_t)(uint32_t)u; return 1;
    case BP_GGUF_TYPE_INT64: *out = (int64_t)u; return 1;
    case BP_GGUF_TYPE_BOOL: *out = u != 0; return 1;
    case BP_GGUF_TYPE_UINT64:
        if (u > (uint64_t)INT64_MAX) return 0;
        *out = (int64_t)u;
        return 1;
    default: *out = (int64_t)u; return 1; /* u8, u16, u32 */
    }
}

static double decode_float(const uint8_t *p, int32_t t) {
    if (t == BP_GGUF_TYPE_FLOAT32) {
        uint32_t u = (uint32_t)load_le(p, 4);
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    uint64_t u = load_le(p, 8);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

bp_status bp_gguf_get_int(const bp_gguf *g, const char *key, int64_t *out, bp_error *err) {
    const gguf_kv *kv = NULL;
    bp_status st = lookup(g, key, &kv, err);
    if (st != BP_OK) return st;
    if (!is_int_type(kv->type))
        return bp_error_set(err, BP_ERR_INVALID, "%s: key '%s' has type %s, expected an integer", g->path, key,
                            type_desc(kv));
    if (!decode_int(g->base + kv->off, kv->type, out))
        return bp_error_set(err, BP_ERR_INVALID, "%s: key '%s' = %llu does not fit in int64", g->path, key,
                            (ull)load_le(g->base + kv->off, 8));
    return BP_OK;
}

bp_status bp_gguf_get_float(const bp_gguf *g, const char *key, double *out, bp_error *err) {
    const gguf_kv *kv = NULL;
    bp_status st = lookup(g, key, &kv, err);
    if (st != BP_OK) return st;
    if (kv->type != BP_GGUF_TYPE_FLOAT32 && kv->type != BP_GGUF_TYPE_FLOAT64)
        return bp_error_set(err, BP_ERR_INVALID, "%s: key '%s' has type %s, expected f32 or f64", g->path, key,
                            type_desc(kv));
    *out = decode_float(g->base + kv->off, kv->type);
    return BP_OK;
}

bp_status bp_gguf_get_bool(const bp_gguf *g, const char *key, int32_t *out, bp_error *err) {
    const gguf_kv *kv = NULL;
    bp_status st = lookup(g, key, &kv, err);
    if (st != BP_OK) return st;
    if (kv->type != BP_GGUF_TYPE_BOOL)
        return bp_error_set(err, BP_ERR_INVALID, "%s: key '%s' has type %s, expected bool", g->path, key,
                            type_desc(kv));
    *out = g->base[kv->off] != 0;
    return BP_OK;
}

bp_status bp_gguf_get_string(const bp_gguf *g, const char *key, const char **out, uint64_t *len, bp_error *err) {
    const gguf_kv *kv = NULL;
    bp_status st = lookup(g, key, &kv, err);
    if (st != BP_OK) return st;
    if (kv->type != BP_GGUF_TYPE_STRING)
        return bp_error_set(err, BP_ERR_INVALID, "%s: key '%s' has type %s, expected str", g->path, key,
                            type_desc(kv));
    *out = kv->str;
    if (len) *len = kv->str_len;
    return BP_OK;
}

bp_status bp_gguf_get_array_info(const bp_gguf *g, const char *key, int32_t *elem_type, uint64_t *count,
                                 bp_error *err) {
    const gguf_kv *kv = NULL;
    bp_status st = lookup(g, key, &kv, err);
    if (st != BP_OK) return st;
    if (kv->type != BP_GGUF_TYPE_ARRAY)
        return bp_error_set(err, BP_ERR_INVALID, "%s: key '%s' has type %s, expected an array", g->path, key,
                            type_desc(kv));
    if (elem_type) *elem_type = kv->elem_type;
    if (count) *count = kv->count;
    return BP_OK;
}

const char *bp_gguf_array_string(const bp_gguf *g, int64_t key_index, uint64_t i) {
    if (!g || key_index < 0 || key_index >= g->n_kv) return NULL;
    const gguf_kv *kv = &g->kv[key_index];
    if (kv->type != BP_GGUF_TYPE_ARRAY || kv->elem_type != BP_GGUF_TYPE_STRING || i >= kv->count) return NULL;
    return kv->strs[i];
}

/* Check that entry key_index is an array of a wanted kind and [first, first + n) is inside it. */
static bp_status array_range(const bp_gguf *g, int64_t key_index, uint64_t first, uint64_t n, int want_float,
                             const gguf_kv **out, bp_error *err) {
    if (!g) return bp_error_set(err, BP_ERR_INVALID, "gguf: NULL handle");
    if (key_index < 0 || key_index >= g->n_kv)
        return bp_error_set(err, BP_ERR_INVALID, "%s: key index %lld out of range (%lld keys)", g->path,
                            (long long)key_index, (long long)g->n_kv);
    const gguf_kv *kv = &g->kv[key_index];
    int ok = kv->type == BP_GGUF_TYPE_ARRAY &&
             (want_float ? (kv->elem_type == BP_GGUF_TYPE_FLOAT32 || kv->elem_type == BP_GGUF_TYPE_FLOAT64)
                         : (is_int_type(kv->elem_type) || kv->elem_type == BP_GGUF_TYPE_BOOL));
    if (!ok)
        return bp_error_set(err, BP_ERR_INVALID, "%s: key '%s' is %s%s, expected an array of %s", g->path, kv->key,
                            kv->type == BP_GGUF_TYPE_ARRAY ? "an array of " : "",
                            kv->type == BP_GGUF_TYPE_ARRAY ? gguf_types[kv->elem_type].name : type_desc(kv),
                            want_float ? "f32 or f64" : "integers");
    if (first > kv->count || n > kv->count - first)
        return bp_error_set(err, BP_ERR_INVALID, "%s: key '%s': elements [%llu, %llu) out of range (%llu elements)",
                            g->path, kv->key, (ull)first, (ull)first + n, (ull)kv->count);
    *out = kv;
    return BP_OK;
}

bp_status bp_gguf_array_int(const bp_gguf *g, int64_t key_index, uint64_t i, int64_t *out, bp_error *err) {
    return bp_gguf_array_ints(g, key_index, i, 1, out, err);
}

bp_status bp_gguf_array_float(const bp_gguf *g, int64_t key_index, uint64_t i, double *out, bp_error *err) {
    const gguf_kv *kv = NULL;
    bp_status st = array_range(g, key_index, i, 1, 1, &kv, err);
    if (st != BP_OK) return st;
    *out = decode_float(g->base + kv->off + i * gguf_types[kv->elem_type].size, kv->elem_type);
    return BP_OK;
}

bp_status bp_gguf_array_ints(const bp_gguf *g, int64_t key_index, uint64_t first, uint64_t n, int64_t *dst,
                             bp_error *err) {
    const gguf_kv *kv = NULL;
    bp_status st = array_range(g, key_index, first, n, 0, &kv, err);
    if (st != BP_OK) return st;
    uint32_t el = gguf_types[kv->elem_type].size;
    const uint8_t *p = g->base + kv->off + first * el;
    for (uint64_t k = 0; k < n; k++, p += el)
        if (!decode_int(p, kv->elem_type, &dst[k]))
            return bp_error_set(err, BP_ERR_INVALID, "%s: key '%s' element %llu = %llu does not fit in int64",
                                g->path, kv->key, (ull)(first + k), (ull)load_le(p, 8));
    return BP_OK;
}

bp_status bp_gguf_array_floats(const bp_gguf *g, int64_t key_index, uint64_t first, uint64_t n, float *dst,
                               bp_error *err) {
    const gguf_kv *kv = NULL;
    bp_status st = array_range(g, key_index, first, n, 1, &kv, err);
    if (st != BP_OK) return st;
    uint32_t el = gguf_types[kv->elem_type].size;
    const uint8_t *p = g->base + kv->off + first * el;
    for (uint64_t k = 0; k < n; k++, p += el) dst[k] = (float)decode_float(p, kv->elem_type);
    return BP_OK;
}

/* --------------------------------------------------------------- tensors -- */

int64_t bp_gguf_tensor_count(const bp_gguf *g) { return g ? g->n_tensors : 0; }

const bp_gguf_tensor_info *bp_gguf_tensor_info_at(const bp_gguf *g, int64_t i) {
    return (g && i >= 0 && i < g->n_tensors) ? &g->tensors[i].info : NULL;
}

int64_t bp_gguf_find_tensor(const bp_gguf *g, const char *name) {
    if (!g || !name || !g->tensor_sorted) return -1;
    return find_sorted(g->tensor_sorted, g->n_tensors, name);
}

const void *bp_gguf_tensor_data(const bp_gguf *g, int64_t i) {
    if (!g || i < 0 || i >= g->n_tensors) return NULL;
    return g->base + g->data_offset + g->tensors[i].info.offset;
}

bp_status bp_gguf_tensor_index(const bp_gguf *g, int64_t i, bp_tensor *view, bp_error *err) {
    if (!g || !view) return bp_error_set(err, BP_ERR_INVALID, "gguf: NULL argument");
    if (i < 0 || i >= g->n_tensors)
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: tensor index %lld out of range (%lld tensors)", g->path,
                            (long long)i, (long long)g->n_tensors);
    const bp_gguf_tensor_info *ti = &g->tensors[i].info;
    const ggml_type_info *tt = ggml_type_get((uint32_t)ti->ggml_type);
    if (tt->dtype < 0)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s (%d), supported: " GGUF_SUPPORTED,
                            g->path, ti->name, tt->name, ti->ggml_type);
    int64_t shape[BP_GGUF_MAX_DIMS];
    for (int32_t d = 0; d < ti->n_dims; d++) shape[d] = ti->ne[ti->n_dims - 1 - d];
    *view = bp_tensor_view(tt->dtype, ti->n_dims, shape, (void *)(uintptr_t)bp_gguf_tensor_data(g, i));
    view->name = ti->name;
    return BP_OK;
}

bp_status bp_gguf_tensor(const bp_gguf *g, const char *name, bp_tensor *view, bp_error *err) {
    if (!g || !name || !view) return bp_error_set(err, BP_ERR_INVALID, "gguf: NULL argument");
    int64_t i = bp_gguf_find_tensor(g, name);
    if (i < 0) return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: no tensor named '%s'", g->path, name);
    return bp_gguf_tensor_index(g, i, view, err);
}
