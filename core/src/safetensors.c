/* safetensors: validating memory-mapped reader and atomic writer. */
#include "batpipe/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batpipe/ops.h"

#define ST_MAX_HEADER 100000000ull /* the reference implementation's limit */
#define ST_ALIGN 64

/* ------------------------------------------------------------- dtypes -- */

typedef struct st_dtype_info {
    const char *name;
    int32_t dtype; /* bp_dtype, or -1: a safetensors dtype batpipe cannot represent */
    uint32_t bits; /* bits per element */
} st_dtype_info;

static const st_dtype_info st_dtypes[] = {
    {"F64", BP_DTYPE_F64, 64},  {"F32", BP_DTYPE_F32, 32},   {"F16", BP_DTYPE_F16, 16}, {"BF16", BP_DTYPE_BF16, 16},
    {"I64", BP_DTYPE_I64, 64},  {"I32", BP_DTYPE_I32, 32},   {"I16", BP_DTYPE_I16, 16}, {"I8", BP_DTYPE_I8, 8},
    {"U8", BP_DTYPE_U8, 8},     {"BOOL", BP_DTYPE_BOOL, 8},  {"U64", -1, 64},          {"U32", -1, 32},
    {"U16", -1, 16},            {"C64", -1, 64},             {"F8_E4M3", -1, 8},       {"F8_E5M2", -1, 8},
    {"F8_E8M0", -1, 8},         {"F6_E2M3", -1, 6},          {"F6_E3M2", -1, 6},       {"F4", -1, 4},
};
#define ST_NDTYPES (sizeof st_dtypes / sizeof st_dtypes[0])
#define ST_SUPPORTED "F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL"

static const st_dtype_info *st_dtype_find(const char *name) {
    for (size_t i = 0; i < ST_NDTYPES; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return &st_dtypes[i];
    return NULL;
}

static const char *st_dtype_from_bp(int32_t dtype) {
    for (size_t i = 0; i < ST_NDTYPES; i++)
        if (st_dtypes[i].dtype == dtype && dtype >= 0) return st_dtypes[i].name;
    return NULL;
}

/* ------------------------------------------------------------- reader -- */

typedef struct st_entry {
    char *name;              /* owned */
    const st_dtype_info *dt; /* static */
    int32_t ndim;            /* true rank; only the first BP_MAX_DIMS dims are kept */
    int64_t shape[BP_MAX_DIMS];
    uint64_t begin, end; /* relative to the data section */
    void *copy;          /* owned aligned copy when the mapped data is misaligned, else NULL */
} st_entry;

struct bp_st_file {
    char *path; /* label used in messages; owned */
    void *map;  /* mmap'd region (bp_st_open) or NULL (memory) */
    size_t map_size;
    const uint8_t *data; /* start of the data section */
    uint64_t data_size;
    uint32_t count;
    st_entry *entries; /* file (offset) order */
    uint32_t *by_name; /* indices into entries, sorted by name */
    uint32_t meta_count;
    char **meta_keys; /* owned */
    char **meta_values;
};

static char *str_dup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void bp_st_close(bp_st_file *f) {
    if (!f) return;
    for (uint32_t i = 0; i < f->count; i++) {
        free(f->entries[i].name);
        free(f->entries[i].copy);
    }
    free(f->entries);
    free(f->by_name);
    for (uint32_t i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    if (f->map) munmap(f->map, f->map_size);
    free(f->path);
    free(f);
}

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static bp_status parse_metadata(bp_st_file *f, json_t *meta, bp_error *err) {
    if (!json_is_object(meta))
        return bp_error_set(err, BP_ERR_FORMAT, "%s: __metadata__ is %s, expected an object of strings", f->path,
                            json_kind(meta));
    size_t n = json_object_size(meta);
    if (n == 0) return BP_OK;
    f->meta_keys = calloc(n, sizeof *f->meta_keys);
    f->meta_values = calloc(n, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", f->path);
    const char *key;
    json_t *value;
    json_object_foreach(meta, key, value) {
        if (!json_is_string(value))
            return bp_error_set(err, BP_ERR_FORMAT, "%s: __metadata__ entry '%s' is %s, expected a string", f->path,
                                key, json_kind(value));
        uint32_t i = f->meta_count;
        f->meta_keys[i] = str_dup(key);
        f->meta_values[i] = str_dup(json_string_value(value));
        if (!f->meta_keys[i] || !f->meta_values[i]) {
            free(f->meta_keys[i]);
            free(f->meta_values[i]);
            return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", f->path);
        }
        f->meta_count++;
    }
    return BP_OK;
}

/* Read a non-negative JSON integer; `what` names it in errors. */
static bp_status json_uint(const bp_st_file *f, const char *name, const char *what, const json_t *v, uint64_t *out,
                           bp_error *err) {
    if (!json_is_integer(v))
        return bp_error_set(err, BP_ERR_FORMAT, "%s: tensor '%s' %s is %s, expected a non-negative integer", f->path,
                            name, what, json_kind(v));
    json_int_t x = json_integer_value(v);
    if (x < 0)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: tensor '%s' %s is %lld, must be non-negative", f->path, name,
                            what, (long long)x);
    *out = (uint64_t)x;
    return BP_OK;
}

static bp_status parse_entry(bp_st_file *f, const char *name, json_t *v, st_entry *e, bp_error *err) {
    if (name[0] == '\0') return bp_error_set(err, BP_ERR_FORMAT, "%s: a tensor has an empty name", f->path);
    if (!json_is_object(v))
        return bp_error_set(err, BP_ERR_FORMAT, "%s: tensor '%s' entry is %s, expected an object", f->path, name,
                            json_kind(v));
    json_t *jd = json_object_get(v, "dtype");
    json_t *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    if (!jd || !json_is_string(jd))
        return bp_error_set(err, BP_ERR_FORMAT, "%s: tensor '%s' has %s \"dtype\", expected a string", f->path, name,
                            jd ? json_kind(jd) : "no");
    if (!js || !json_is_array(js))
        return bp_error_set(err, BP_ERR_FORMAT, "%s: tensor '%s' has %s \"shape\", expected an array", f->path, name,
                            js ? json_kind(js) : "no");
    if (!jo || !json_is_array(jo) || json_array_size(jo) != 2)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: tensor '%s' has %s \"data_offsets\", expected [begin, end]",
                            f->path, name, jo ? (json_is_array(jo) ? "a malformed" : json_kind(jo)) : "no");
    e->dt = st_dtype_find(json_string_value(jd));
    if (!e->dt)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: tensor '%s' has unknown dtype '%s'", f->path, name,
                            json_string_value(jd));

    size_t ndim = json_array_size(js);
    if (ndim > INT32_MAX)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: tensor '%s' has too many dimensions", f->path, name);
    e->ndim = (int32_t)ndim;
    /* Element count, overflow-checked; a zero dimension makes it 0 whatever the others are. */
    uint64_t numel = 1;
    int overflow = 0, has_zero = 0;
    for (size_t d = 0; d < ndim; d++) {
        char what[32];
        snprintf(what, sizeof what, "shape[%zu]", d);
        uint64_t dim;
        bp_status st = json_uint(f, name, what, json_array_get(js, d), &dim, err);
        if (st != BP_OK) return st;
        if (d < BP_MAX_DIMS) e->shape[d] = (int64_t)dim;
        if (dim == 0)
            has_zero = 1;
        else if (numel > (uint64_t)INT64_MAX / dim)
            overflow = 1;
        else
            numel *= dim;
    }
    if (has_zero) numel = 0, overflow = 0;
    if (overflow || numel > UINT64_MAX / e->dt->bits)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: tensor '%s' shape has too many elements (overflows 64 bits)",
                            f->path, name);
    uint64_t bits = numel * e->dt->bits;
    if (bits % 8 != 0)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: tensor '%s' of %llu %s elements is not a whole number of bytes",
                            f->path, name, (unsigned long long)numel, e->dt->name);
    uint64_t nbytes = bits / 8;

    bp_status st = json_uint(f, name, "data_offsets[0]", json_array_get(jo, 0), &e->begin, err);
    if (st == BP_OK) st = json_uint(f, name, "data_offsets[1]", json_array_get(jo, 1), &e->end, err);
    if (st != BP_OK) return st;
    if (e->end < e->begin)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: tensor '%s' data_offsets [%llu, %llu] end before begin",
                            f->path, name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end - e->begin != nbytes)
        return bp_error_set(err, BP_ERR_FORMAT,
                            "%s: tensor '%s' data_offsets [%llu, %llu] span %llu bytes, but %s with %llu elements "
                            "needs %llu",
                            f->path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                            (unsigned long long)(e->end - e->begin), e->dt->name, (unsigned long long)numel,
                            (unsigned long long)nbytes);
    if (e->end > f->data_size)
        return bp_error_set(err, BP_ERR_FORMAT,
                            "%s: tensor '%s' data_offsets [%llu, %llu] end beyond the data section (%llu bytes)",
                            f->path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                            (unsigned long long)f->data_size);
    e->name = str_dup(name);
    if (!e->name) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", f->path);
    return BP_OK;
}

static int entry_cmp_offset(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* qsort has no context argument: sort (name, index) pairs instead. */
typedef struct st_name_ref {
    const char *name;
    uint32_t index;
} st_name_ref;

static int name_ref_cmp(const void *a, const void *b) {
    return strcmp(((const st_name_ref *)a)->name, ((const st_name_ref *)b)->name);
}

static bp_status build_indexes(bp_st_file *f, bp_error *err) {
    if (f->count == 0) return BP_OK;
    qsort(f->entries, f->count, sizeof *f->entries, entry_cmp_offset);
    for (uint32_t i = 1; i < f->count; i++) {
        const st_entry *a = &f->entries[i - 1], *b = &f->entries[i];
        if (b->begin < a->end)
            return bp_error_set(err, BP_ERR_FORMAT, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                                f->path, a->name, (unsigned long long)a->begin, (unsigned long long)a->end, b->name,
                                (unsigned long long)b->begin, (unsigned long long)b->end);
    }
    st_name_ref *refs = malloc(f->count * sizeof *refs);
    f->by_name = malloc(f->count * sizeof *f->by_name);
    if (!refs || !f->by_name) {
        free(refs);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", f->path);
    }
    for (uint32_t i = 0; i < f->count; i++) refs[i] = (st_name_ref){f->entries[i].name, i};
    qsort(refs, f->count, sizeof *refs, name_ref_cmp);
    for (uint32_t i = 0; i < f->count; i++) f->by_name[i] = refs[i].index;
    free(refs);
    return BP_OK;
}

/* Copy tensors whose mapped address is not aligned to their element size. */
static bp_status align_entries(bp_st_file *f, bp_error *err) {
    for (uint32_t i = 0; i < f->count; i++) {
        st_entry *e = &f->entries[i];
        if (e->dt->dtype < 0 || e->end == e->begin) continue;
        size_t el = bp_dtype_block_bytes(e->dt->dtype);
        if ((uintptr_t)(f->data + e->begin) % el == 0) continue;
        size_t n = (size_t)(e->end - e->begin);
        size_t rounded = (n + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
        e->copy = aligned_alloc(ST_ALIGN, rounded);
        if (!e->copy)
            return bp_error_set(err, BP_ERR_NOMEM, "%s: cannot allocate %zu bytes for misaligned tensor '%s'",
                                f->path, n, e->name);
        memcpy(e->copy, f->data + e->begin, n);
    }
    return BP_OK;
}

static bp_status parse_file(bp_st_file *f, const uint8_t *base, size_t size, bp_error *err) {
    if (size < 8)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header length "
                            "(truncated?)", f->path, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | base[i];
    if (n > ST_MAX_HEADER)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: header length %llu exceeds the %llu-byte limit (corrupt file?)",
                            f->path, (unsigned long long)n, ST_MAX_HEADER);
    if (n > (uint64_t)size - 8)
        return bp_error_set(err, BP_ERR_FORMAT,
                            "%s: header length %llu extends beyond the end of the file (%zu bytes; truncated?)",
                            f->path, (unsigned long long)n, size);
    f->data = base + 8 + n;
    f->data_size = (uint64_t)size - 8 - n;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)base + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return bp_error_set(err, BP_ERR_FORMAT, "%s: header is not valid JSON: %s (header byte %d)", f->path,
                            jerr.text, jerr.position);
    bp_status st = BP_OK;
    if (!json_is_object(root)) {
        st = bp_error_set(err, BP_ERR_FORMAT, "%s: header is %s, expected a JSON object", f->path, json_kind(root));
        goto done;
    }
    size_t total = json_object_size(root);
    if (total > UINT32_MAX) {
        st = bp_error_set(err, BP_ERR_FORMAT, "%s: too many tensors", f->path);
        goto done;
    }
    f->entries = calloc(total ? total : 1, sizeof *f->entries);
    if (!f->entries) {
        st = bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", f->path);
        goto done;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0) {
            st = parse_metadata(f, value, err);
        } else {
            st = parse_entry(f, key, value, &f->entries[f->count], err);
            if (st == BP_OK) f->count++;
        }
        if (st != BP_OK) goto done;
    }
    st = build_indexes(f, err);
    if (st == BP_OK) st = align_entries(f, err);
done:
    json_decref(root);
    return st;
}

static bp_status st_open_common(const uint8_t *base, size_t size, const char *label, void *map, size_t map_size,
                                bp_st_file **out, bp_error *err) {
    bp_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        if (map) munmap(map, map_size);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", label);
    }
    f->map = map;
    f->map_size = map_size;
    f->path = str_dup(label);
    if (!f->path) {
        bp_st_close(f);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", label);
    }
    bp_status st = parse_file(f, base, size, err);
    if (st != BP_OK) {
        bp_st_close(f);
        return st;
    }
    *out = f;
    return BP_OK;
}

bp_status bp_st_open(const char *path, bp_st_file **out, bp_error *err) {
    *out = NULL;
    if (!path) return bp_error_set(err, BP_ERR_INVALID, "safetensors: no path given");
    char ebuf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bp_error_set(err, errno == ENOENT ? BP_ERR_NOT_FOUND : BP_ERR_IO, "%s: cannot open: %s", path,
                            strerror_r(errno, ebuf, sizeof ebuf));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return bp_error_set(err, BP_ERR_IO, "%s: cannot stat: %s", path, strerror_r(e, ebuf, sizeof ebuf));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return bp_error_set(err, BP_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return bp_error_set(err, BP_ERR_IO, "%s: file too large to map", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return bp_error_set(err, BP_ERR_FORMAT,
                            "%s: file is %zu bytes, too short for the 8-byte header length (truncated?)", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return bp_error_set(err, BP_ERR_IO, "%s: cannot map %zu bytes: %s", path, size,
                            strerror_r(e, ebuf, sizeof ebuf));
    return st_open_common(map, size, path, map, size, out, err);
}

bp_status bp_st_open_memory(const void *data, size_t size, const char *label, bp_st_file **out, bp_error *err) {
    *out = NULL;
    if (!label) label = "<memory>";
    if (!data && size) return bp_error_set(err, BP_ERR_INVALID, "%s: NULL buffer", label);
    static const uint8_t empty[1] = {0};
    return st_open_common(data ? data : empty, size, label, NULL, 0, out, err);
}

const char *bp_st_path(const bp_st_file *f) { return f ? f->path : NULL; }

uint32_t bp_st_count(const bp_st_file *f) { return f ? f->count : 0; }

const char *bp_st_name(const bp_st_file *f, uint32_t i) {
    return (f && i < f->count) ? f->entries[i].name : NULL;
}

static const st_entry *find_entry(const bp_st_file *f, const char *name) {
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const st_entry *e = &f->entries[f->by_name[mid]];
        int c = strcmp(name, e->name);
        if (c == 0) return e;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bp_status entry_view(const bp_st_file *f, const st_entry *e, bp_tensor *out, bp_error *err) {
    if (e->dt->dtype < 0)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s, which batpipe does not support "
                            "(supported: " ST_SUPPORTED ")", f->path, e->name, e->dt->name);
    if (e->ndim > BP_MAX_DIMS)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions, at most %d are supported",
                            f->path, e->name, e->ndim, BP_MAX_DIMS);
    void *data = e->copy ? e->copy : (void *)(uintptr_t)(f->data + e->begin);
    *out = bp_tensor_view(e->dt->dtype, e->ndim, e->shape, data);
    out->name = e->name;
    return BP_OK;
}

bp_status bp_st_get(const bp_st_file *f, const char *name, bp_tensor *out, bp_error *err) {
    if (!f || !name || !out) return bp_error_set(err, BP_ERR_INVALID, "safetensors: bp_st_get: NULL argument");
    const st_entry *e = find_entry(f, name);
    if (!e) return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: no tensor named '%s'", f->path, name);
    return entry_view(f, e, out, err);
}

bp_status bp_st_get_index(const bp_st_file *f, uint32_t i, bp_tensor *out, bp_error *err) {
    if (!f || !out) return bp_error_set(err, BP_ERR_INVALID, "safetensors: bp_st_get_index: NULL argument");
    if (i >= f->count)
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: tensor index %u out of range (%u tensors)", f->path, i,
                            f->count);
    return entry_view(f, &f->entries[i], out, err);
}

static void shape_str(char *buf, size_t cap, int32_t ndim, const int64_t *shape) {
    size_t off = 0;
    buf[0] = '\0';
    int w = snprintf(buf, cap, "[");
    off = w > 0 ? (size_t)w : 0;
    for (int32_t i = 0; i < ndim && off < cap; i++) {
        w = snprintf(buf + off, cap - off, "%s%lld", i ? "," : "", (long long)shape[i]);
        if (w < 0) return;
        off += (size_t)w;
    }
    if (off < cap) snprintf(buf + off, cap - off, "]");
}

bp_status bp_st_get_checked(const bp_st_file *f, const char *name, int32_t dtype, int32_t ndim,
                            const int64_t *shape, bp_tensor *out, bp_error *err) {
    bp_tensor t;
    bp_status st = bp_st_get(f, name, &t, err);
    if (st != BP_OK) return st;
    if (t.dtype != dtype)
        return bp_error_set(err, BP_ERR_SPEC, "%s: tensor '%s' has dtype %s, expected %s", f->path, name,
                            bp_dtype_name(t.dtype), bp_dtype_name(dtype));
    int same = t.ndim == ndim;
    for (int32_t i = 0; same && i < ndim; i++) same = shape && t.shape[i] == shape[i];
    if (!same) {
        char have[256], want[256];
        shape_str(have, sizeof have, t.ndim, t.shape);
        if (ndim < 0 || ndim > BP_MAX_DIMS || (!shape && ndim > 0))
            snprintf(want, sizeof want, "(invalid rank %d)", ndim);
        else
            shape_str(want, sizeof want, ndim, shape);
        return bp_error_set(err, BP_ERR_SPEC, "%s: tensor '%s' has shape %s, expected %s", f->path, name, have, want);
    }
    *out = t;
    return BP_OK;
}

const char *bp_st_metadata(const bp_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (uint32_t i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

uint32_t bp_st_metadata_count(const bp_st_file *f) { return f ? f->meta_count : 0; }

void bp_st_metadata_at(const bp_st_file *f, uint32_t i, const char **key, const char **value) {
    int ok = f && i < f->meta_count;
    if (key) *key = ok ? f->meta_keys[i] : NULL;
    if (value) *value = ok ? f->meta_values[i] : NULL;
}

/* ------------------------------------------------------------- writer -- */

typedef struct st_wentry {
    char *name; /* owned */
    bp_tensor t; /* data borrowed */
    uint64_t nbytes;
} st_wentry;

struct bp_st_writer {
    st_wentry *entries;
    uint32_t count, cap;
    char **meta_keys, **meta_values; /* owned */
    uint32_t meta_count, meta_cap;
};

bp_status bp_st_writer_new(bp_st_writer **out, bp_error *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return bp_error_set(err, BP_ERR_NOMEM, "safetensors writer: out of memory");
    return BP_OK;
}

void bp_st_writer_free(bp_st_writer *w) {
    if (!w) return;
    for (uint32_t i = 0; i < w->count; i++) free(w->entries[i].name);
    free(w->entries);
    for (uint32_t i = 0; i < w->meta_count; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

static int utf8_ok(const char *s) {
    json_t *j = json_string(s);
    if (!j) return 0;
    json_decref(j);
    return 1;
}

bp_status bp_st_writer_add(bp_st_writer *w, const char *name, const bp_tensor *t, bp_error *err) {
    if (!w || !name || !t) return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: NULL argument");
    if (name[0] == '\0') return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: empty tensor name");
    if (strcmp(name, "__metadata__") == 0)
        return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: '__metadata__' is reserved, not a tensor name");
    if (!utf8_ok(name))
        return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: tensor name '%s' is not valid UTF-8", name);
    for (uint32_t i = 0; i < w->count; i++)
        if (strcmp(w->entries[i].name, name) == 0)
            return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: duplicate tensor name '%s'", name);
    if (!st_dtype_from_bp(t->dtype))
        return bp_error_set(err, BP_ERR_INVALID,
                            "safetensors writer: tensor '%s' has dtype %s, which safetensors cannot store "
                            "(supported: " ST_SUPPORTED ")", name, bp_dtype_name(t->dtype));
    if (t->ndim < 0 || t->ndim > BP_MAX_DIMS)
        return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: tensor '%s' has rank %d outside 0..%d", name,
                            t->ndim, BP_MAX_DIMS);
    if (t->backend && !bp_backend_is_host(t->backend))
        return bp_error_set(err, BP_ERR_INVALID,
                            "safetensors writer: tensor '%s' lives on backend '%s'; copy it to the host first", name,
                            bp_backend_name(t->backend));
    uint64_t numel = 1;
    for (int32_t i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0)
            return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: tensor '%s' has negative dimension %lld",
                                name, (long long)t->shape[i]);
        if (t->shape[i] && numel > (uint64_t)INT64_MAX / (uint64_t)t->shape[i])
            return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: tensor '%s' element count overflows", name);
        numel *= (uint64_t)t->shape[i];
    }
    size_t el = bp_dtype_block_bytes(t->dtype);
    if (numel > (uint64_t)INT64_MAX / el)
        return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: tensor '%s' is too large", name);
    uint64_t nbytes = numel * el;
    if (nbytes && !t->data)
        return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: tensor '%s' has no data", name);
    if (w->count == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : 16;
        st_wentry *ne = realloc(w->entries, cap * sizeof *ne);
        if (!ne) return bp_error_set(err, BP_ERR_NOMEM, "safetensors writer: out of memory");
        w->entries = ne;
        w->cap = cap;
    }
    st_wentry *e = &w->entries[w->count];
    e->name = str_dup(name);
    if (!e->name) return bp_error_set(err, BP_ERR_NOMEM, "safetensors writer: out of memory");
    e->t = *t;
    e->t.name = NULL;
    e->nbytes = nbytes;
    w->count++;
    return BP_OK;
}

bp_status bp_st_writer_set_metadata(bp_st_writer *w, const char *key, const char *value, bp_error *err) {
    if (!w || !key || !value) return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: NULL argument");
    if (!utf8_ok(key) || !utf8_ok(value))
        return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: metadata '%s' is not valid UTF-8", key);
    char *v = str_dup(value);
    if (!v) return bp_error_set(err, BP_ERR_NOMEM, "safetensors writer: out of memory");
    for (uint32_t i = 0; i < w->meta_count; i++) {
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return BP_OK;
        }
    }
    if (w->meta_count == w->meta_cap) {
        uint32_t cap = w->meta_cap ? w->meta_cap * 2 : 8;
        char **nk = realloc(w->meta_keys, cap * sizeof *nk);
        if (nk) w->meta_keys = nk;
        char **nv = nk ? realloc(w->meta_values, cap * sizeof *nv) : NULL;
        if (nv) w->meta_values = nv;
        if (!nk || !nv) {
            free(v);
            return bp_error_set(err, BP_ERR_NOMEM, "safetensors writer: out of memory");
        }
        w->meta_cap = cap;
    }
    char *k = str_dup(key);
    if (!k) {
        free(v);
        return bp_error_set(err, BP_ERR_NOMEM, "safetensors writer: out of memory");
    }
    w->meta_keys[w->meta_count] = k;
    w->meta_values[w->meta_count] = v;
    w->meta_count++;
    return BP_OK;
}

/* The JSON header (without padding), malloc'd; NULL on allocation failure. */
static char *build_header(const bp_st_writer *w) {
    json_t *root = json_object();
    if (!root) return NULL;
    int bad = 0;
    if (w->meta_count) {
        json_t *meta = json_object();
        bad |= json_object_set_new(root, "__metadata__", meta) != 0;
        for (uint32_t i = 0; !bad && i < w->meta_count; i++)
            bad |= json_object_set_new(meta, w->meta_keys[i], json_string(w->meta_values[i])) != 0;
    }
    uint64_t off = 0;
    for (uint32_t i = 0; !bad && i < w->count; i++) {
        const st_wentry *e = &w->entries[i];
        json_t *shape = json_array();
        for (int32_t d = 0; shape && d < e->t.ndim; d++)
            bad |= json_array_append_new(shape, json_integer((json_int_t)e->t.shape[d])) != 0;
        json_t *ent = json_pack("{s:s, s:o, s:[I, I]}", "dtype", st_dtype_from_bp(e->t.dtype), "shape", shape,
                                "data_offsets", (json_int_t)off, (json_int_t)(off + e->nbytes));
        bad |= !ent || json_object_set_new(root, e->name, ent) != 0;
        off += e->nbytes;
    }
    char *s = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}

static int write_all(int fd, const void *buf, uint64_t n) {
    const uint8_t *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t k = write(fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) {
            errno = EIO;
            return -1;
        }
        p += k;
        n -= (uint64_t)k;
    }
    return 0;
}

/* Best effort: make the rename durable. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + 1) : str_dup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

bp_status bp_st_writer_write(bp_st_writer *w, const char *path, bp_error *err) {
    if (!w || !path || !path[0]) return bp_error_set(err, BP_ERR_INVALID, "safetensors writer: no path given");
    uint64_t total = 0;
    for (uint32_t i = 0; i < w->count; i++) {
        if (w->entries[i].nbytes > (uint64_t)INT64_MAX - total)
            return bp_error_set(err, BP_ERR_INVALID, "%s: total tensor size overflows", path);
        total += w->entries[i].nbytes;
    }
    char *json = build_header(w);
    if (!json) return bp_error_set(err, BP_ERR_NOMEM, "%s: cannot build the JSON header", path);
    size_t jlen = strlen(json);
    size_t padded = (jlen + 7) / 8 * 8; /* 8 + padded is a multiple of 8 */
    uint8_t *head = malloc(8 + padded);
    if (!head) {
        free(json);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)(((uint64_t)padded >> (8 * i)) & 0xff);
    memcpy(head + 8, json, jlen);
    memset(head + 8 + jlen, ' ', padded - jlen);
    free(json);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmp.XXXXXX");
    if (!tmp) {
        free(head);
        return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");

    char ebuf[128];
    bp_status st = BP_OK;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        st = bp_error_set(err, BP_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                          strerror_r(errno, ebuf, sizeof ebuf));
        free(tmp);
        free(head);
        return st;
    }
    /* mkstemp creates 0600; keep an existing file's mode, else use 0644. */
    struct stat sb;
    mode_t mode = (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) ? (sb.st_mode & 07777) : 0644;
    const char *step = "chmod";
    if (fchmod(fd, mode) != 0) goto fail;
    step = "write";
    if (write_all(fd, head, 8 + padded) != 0) goto fail;
    for (uint32_t i = 0; i < w->count; i++)
        if (write_all(fd, w->entries[i].t.data, w->entries[i].nbytes) != 0) goto fail;
    step = "fsync";
    if (fsync(fd) != 0) goto fail;
    step = "close";
    int rc = close(fd);
    fd = -1;
    if (rc != 0) goto fail;
    step = "rename";
    if (rename(tmp, path) != 0) goto fail;
    sync_parent_dir(path);
    free(tmp);
    free(head);
    return BP_OK;
fail:
    st = bp_error_set(err, BP_ERR_IO, "%s: %s of the temporary file failed: %s (the path is left unchanged)", path,
                      step, strerror_r(errno, ebuf, sizeof ebuf));
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    free(head);
    return st;
}
