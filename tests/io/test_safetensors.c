/* safetensors reader/writer: round trip of every dtype, a real PyTorch file,
 * malformed headers, and atomic writes. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batpipe/safetensors.h"
#include "bp_test.h"

/* ------------------------------------------------------------- helpers -- */

static char tmpdir[256];

static void path_in_tmp(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tmpdir, name); }

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Number of directory entries other than . and .. */
static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    *size = (size_t)n;
    return b;
}

/* A safetensors image: u64 header length, the JSON text, then `data_len` bytes of data. */
static uint8_t *make_st(const char *json, size_t data_len, size_t *size) {
    size_t n = strlen(json);
    *size = 8 + n + data_len;
    uint8_t *b = calloc(1, *size);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(((uint64_t)n >> (8 * i)) & 0xff);
    memcpy(b + 8, json, n);
    for (size_t i = 0; i < data_len; i++) b[8 + n + i] = (uint8_t)(i * 7 + 1);
    return b;
}

/* Open an in-memory image and require status `code` with `needle` in the message. */
static void expect_fail_buf(const uint8_t *b, size_t size, bp_status code, const char *needle, int line) {
    bp_error err = BP_ERROR_INIT;
    bp_st_file *f = NULL;
    bp_status st = bp_st_open_memory(b, size, "bad.safetensors", &f, &err);
    CHECKF(st == code, "line %d: status %s, expected %s (%s)", line, bp_status_name(st), bp_status_name(code),
           err.msg);
    CHECKF(f == NULL, "line %d: handle returned on failure", line);
    CHECKF(strstr(err.msg, "bad.safetensors") != NULL, "line %d: message does not name the file: %s", line, err.msg);
    CHECKF(strstr(err.msg, needle) != NULL, "line %d: message '%s' lacks '%s'", line, err.msg, needle);
    bp_st_close(f);
}

static void expect_fail(const char *json, size_t data_len, bp_status code, const char *needle, int line) {
    size_t size;
    uint8_t *b = make_st(json, data_len, &size);
    expect_fail_buf(b, size, code, needle, line);
    free(b);
}
#define EXPECT_FAIL(json, data_len, code, needle) expect_fail(json, data_len, code, needle, __LINE__)

/* ----------------------------------------------------------- round trip -- */

typedef struct rt_tensor {
    const char *name;
    int32_t dtype;
    int32_t ndim;
    int64_t shape[3];
} rt_tensor;

static const rt_tensor rt_tensors[] = {
    {"f64", BP_DTYPE_F64, 2, {2, 3}},   {"f32", BP_DTYPE_F32, 1, {5}},       {"f16", BP_DTYPE_F16, 2, {3, 2}},
    {"bf16", BP_DTYPE_BF16, 1, {7}},    {"i64", BP_DTYPE_I64, 1, {3}},       {"i32", BP_DTYPE_I32, 3, {2, 1, 2}},
    {"i16", BP_DTYPE_I16, 1, {3}},      {"i8", BP_DTYPE_I8, 1, {3}},         {"u8", BP_DTYPE_U8, 2, {1, 5}},
    {"bool", BP_DTYPE_BOOL, 1, {4}},    {"scalar", BP_DTYPE_F32, 0, {0}},    {"empty", BP_DTYPE_F32, 2, {0, 3}},
    {"after.empty", BP_DTYPE_F64, 1, {2}}, /* misaligned after the odd-sized tensors above */
};
#define RT_N (sizeof rt_tensors / sizeof rt_tensors[0])

static int64_t rt_numel(const rt_tensor *t) {
    int64_t n = 1;
    for (int32_t d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

static void fill_bytes(uint8_t *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 31 + seed * 17 + 3) & 0xff);
    (void)seed;
}

static void check_file_against(const bp_st_file *f, uint8_t *const *data) {
    bp_error err = BP_ERROR_INIT;
    CHECK(bp_st_count(f) == RT_N);
    for (uint32_t i = 0; i < RT_N; i++) {
        const rt_tensor *rt = &rt_tensors[i];
        /* the writer puts data back to back in insertion order, so file order = insertion order */
        CHECKF(bp_st_name(f, i) && strcmp(bp_st_name(f, i), rt->name) == 0, "tensor %u is '%s', expected '%s'", i,
               bp_st_name(f, i) ? bp_st_name(f, i) : "(null)", rt->name);
        bp_tensor t;
        CHECK_OK(bp_st_get(f, rt->name, &t, &err), &err);
        CHECK(t.dtype == rt->dtype);
        CHECK(t.ndim == rt->ndim);
        CHECK(t.owns_data == 0 && t.backend == NULL);
        CHECK(t.struct_size == sizeof(bp_tensor));
        CHECK(t.name && strcmp(t.name, rt->name) == 0);
        for (int32_t d = 0; d < rt->ndim; d++) CHECK(t.shape[d] == rt->shape[d]);
        size_t nb = (size_t)rt_numel(rt) * bp_dtype_block_bytes(rt->dtype);
        CHECK(bp_tensor_nbytes(&t) == nb);
        if (nb) {
            CHECKF((uintptr_t)t.data % bp_dtype_block_bytes(rt->dtype) == 0, "tensor '%s' data is misaligned",
                   rt->name);
            CHECKF(memcmp(t.data, data[i], nb) == 0, "tensor '%s' data differs", rt->name);
        }
        bp_tensor t2;
        CHECK_OK(bp_st_get_index(f, i, &t2, &err), &err);
        CHECK(t2.data == t.data);
    }
    CHECK(bp_st_metadata_count(f) == 2);
    CHECK(bp_st_metadata(f, "format") && strcmp(bp_st_metadata(f, "format"), "pt") == 0);
    CHECK(bp_st_metadata(f, "note") && strcmp(bp_st_metadata(f, "note"), "ünïcødé \"quoted\"\n") == 0);
    CHECK(bp_st_metadata(f, "missing") == NULL);
    const char *k = NULL, *v = NULL;
    bp_st_metadata_at(f, 0, &k, &v);
    CHECK(k && v && ((strcmp(k, "format") == 0 && strcmp(v, "pt") == 0) || strcmp(k, "note") == 0));
    bp_st_metadata_at(f, 2, &k, &v);
    CHECK(k == NULL && v == NULL);
}

static void test_round_trip(void) {
    bp_error err = BP_ERROR_INIT;
    uint8_t *data[RT_N];
    bp_st_writer *w = NULL;
    CHECK_OK(bp_st_writer_new(&w, &err), &err);
    for (uint32_t i = 0; i < RT_N; i++) {
        const rt_tensor *rt = &rt_tensors[i];
        size_t nb = (size_t)rt_numel(rt) * bp_dtype_block_bytes(rt->dtype);
        data[i] = malloc(nb ? nb : 1);
        fill_bytes(data[i], nb, i);
        if (rt->dtype == BP_DTYPE_BOOL)
            for (size_t j = 0; j < nb; j++) data[i][j] &= 1;
        bp_tensor t = bp_tensor_view(rt->dtype, rt->ndim, rt->shape, data[i]);
        CHECK_OK(bp_st_writer_add(w, rt->name, &t, &err), &err);
    }
    CHECK_OK(bp_st_writer_set_metadata(w, "format", "old", &err), &err);
    CHECK_OK(bp_st_writer_set_metadata(w, "note", "ünïcødé \"quoted\"\n", &err), &err);
    CHECK_OK(bp_st_writer_set_metadata(w, "format", "pt", &err), &err); /* replaces */

    /* writer argument errors */
    bp_tensor dup = bp_tensor_view(BP_DTYPE_F32, 1, (int64_t[]){1}, data[1]);
    CHECK(bp_st_writer_add(w, "f32", &dup, &err) == BP_ERR_INVALID && strstr(err.msg, "duplicate"));
    CHECK(bp_st_writer_add(w, "__metadata__", &dup, &err) == BP_ERR_INVALID && strstr(err.msg, "reserved"));
    CHECK(bp_st_writer_add(w, "", &dup, &err) == BP_ERR_INVALID);
    CHECK(bp_st_writer_add(w, "bad\xff", &dup, &err) == BP_ERR_INVALID && strstr(err.msg, "UTF-8"));
    bp_tensor q = bp_tensor_view(BP_DTYPE_Q8_0, 1, (int64_t[]){32}, data[1]);
    CHECK(bp_st_writer_add(w, "q", &q, &err) == BP_ERR_INVALID && strstr(err.msg, "Q8_0"));
    bp_tensor neg = bp_tensor_view(BP_DTYPE_F32, 1, (int64_t[]){-2}, data[1]);
    CHECK(bp_st_writer_add(w, "neg", &neg, &err) == BP_ERR_INVALID && strstr(err.msg, "negative"));
    bp_tensor nodata = bp_tensor_view(BP_DTYPE_F32, 1, (int64_t[]){2}, NULL);
    CHECK(bp_st_writer_add(w, "nodata", &nodata, &err) == BP_ERR_INVALID && strstr(err.msg, "no data"));

    char path[512];
    path_in_tmp(path, sizeof path, "rt.safetensors");
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
    CHECK(dir_entries(tmpdir) == 1); /* no temporary left behind */

    /* header layout: 8 + N is a multiple of 8, the padding is spaces */
    size_t size = 0;
    uint8_t *bytes = read_file(path, &size);
    CHECK(bytes != NULL && size > 8);
    if (bytes) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | bytes[i];
        CHECK((8 + n) % 8 == 0);
        CHECK(bytes[8] == '{');
        CHECK(n < size && (bytes[8 + n - 1] == ' ' || bytes[8 + n - 1] == '}'));
        CHECK(memmem(bytes + 8, (size_t)n, "\"__metadata__\"", 14) != NULL);
    }
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644);

    bp_st_file *f = NULL;
    CHECK_OK(bp_st_open(path, &f, &err), &err);
    if (f) {
        CHECK(strcmp(bp_st_path(f), path) == 0);
        check_file_against(f, data);

        /* checked getters */
        bp_tensor t;
        CHECK_OK(bp_st_get_checked(f, "f64", BP_DTYPE_F64, 2, (int64_t[]){2, 3}, &t, &err), &err);
        CHECK_OK(bp_st_get_checked(f, "scalar", BP_DTYPE_F32, 0, NULL, &t, &err), &err);
        CHECK(bp_st_get_checked(f, "f64", BP_DTYPE_F64, 2, (int64_t[]){3, 2}, &t, &err) == BP_ERR_SPEC);
        CHECKF(strstr(err.msg, "tensor 'f64' has shape [2,3], expected [3,2]") != NULL, "%s", err.msg);
        CHECK(strstr(err.msg, path) != NULL);
        CHECK(bp_st_get_checked(f, "f64", BP_DTYPE_F64, 1, (int64_t[]){6}, &t, &err) == BP_ERR_SPEC);
        CHECKF(strstr(err.msg, "has shape [2,3], expected [6]") != NULL, "%s", err.msg);
        CHECK(bp_st_get_checked(f, "f64", BP_DTYPE_F32, 2, (int64_t[]){2, 3}, &t, &err) == BP_ERR_SPEC);
        CHECKF(strstr(err.msg, "tensor 'f64' has dtype F64, expected F32") != NULL, "%s", err.msg);
        CHECK(bp_st_get(f, "nope", &t, &err) == BP_ERR_NOT_FOUND);
        CHECKF(strstr(err.msg, "'nope'") && strstr(err.msg, path), "%s", err.msg);
        CHECK(bp_st_get_index(f, 99, &t, &err) == BP_ERR_NOT_FOUND);
        CHECK(bp_st_name(f, 99) == NULL);
        bp_st_close(f);
    }

    /* the same bytes through the memory reader, from an odd address (forces aligned copies) */
    if (bytes) {
        uint8_t *shifted = malloc(size + 1);
        memcpy(shifted + 1, bytes, size);
        f = NULL;
        CHECK_OK(bp_st_open_memory(shifted + 1, size, "mem", &f, &err), &err);
        if (f) {
            check_file_against(f, data);
            bp_st_close(f);
        }
        free(shifted);
    }
    free(bytes);
    unlink(path);
    for (uint32_t i = 0; i < RT_N; i++) free(data[i]);
}

/* Empty writer: a header of "{}" padded to 8 bytes. */
static void test_empty_file(void) {
    bp_error err = BP_ERROR_INIT;
    bp_st_writer *w = NULL;
    CHECK_OK(bp_st_writer_new(&w, &err), &err);
    char path[512];
    path_in_tmp(path, sizeof path, "empty.safetensors");
    CHECK_OK(bp_st_writer_write(w, path, &err), &err);
    bp_st_writer_free(w);
    bp_st_file *f = NULL;
    CHECK_OK(bp_st_open(path, &f, &err), &err);
    CHECK(f && bp_st_count(f) == 0 && bp_st_metadata_count(f) == 0);
    bp_st_close(f);
    size_t size = 0;
    uint8_t *b = read_file(path, &size);
    CHECK(size == 16 && b && memcmp(b + 8, "{}      ", 8) == 0);
    free(b);
    unlink(path);
}

/* ------------------------------------------------- a real PyTorch file -- */

static void test_golden_file(void) {
    const char *dir = getenv("BP_TEST_DATA");
    if (!dir) {
        fprintf(stderr, "BP_TEST_DATA not set: skipping the PyTorch file check\n");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/io/metrics.safetensors", dir);
    bp_error err = BP_ERROR_INIT;
    bp_st_file *f = NULL;
    CHECK_OK(bp_st_open(path, &f, &err), &err);
    if (!f) return;
    CHECK(bp_st_count(f) == 16);
    CHECK(strcmp(bp_st_name(f, 0), "scores") == 0);  /* offset order */
    CHECK(strcmp(bp_st_name(f, 15), "der") == 0);
    bp_tensor t;
    CHECK_OK(bp_st_get_checked(f, "scores", BP_DTYPE_F32, 2, (int64_t[]){200, 20}, &t, &err), &err);
    if (t.data) {
        const float *s = t.data;
        CHECK(s[0] == 0.0f && s[1] == -2.0f && s[2] == -1.0f && s[3] == 0.5f);
        CHECK(s[20] == 0.5f && s[21] == 1.0f && s[22] == -0.5f);
        CHECK_NEAR(s[199 * 20 + 19], -0.3498660922050476, 1e-7);
    }
    CHECK_OK(bp_st_get_checked(f, "ap_per_class", BP_DTYPE_F32, 1, (int64_t[]){20}, &t, &err), &err);
    if (t.data) {
        const float *a = t.data;
        CHECK_NEAR(a[0], 0.642886757850647, 1e-7);
        CHECK(isnan(a[7])); /* the empty class */
        CHECK(a[12] == 1.0f);
    }
    CHECK_OK(bp_st_get_checked(f, "mae", BP_DTYPE_F32, 1, (int64_t[]){1}, &t, &err), &err);
    if (t.data) CHECK_NEAR(((const float *)t.data)[0], 40.70403289794922, 1e-5);
    CHECK_OK(bp_st_get(f, "az_pred", &t, &err), &err);
    CHECK(t.ndim == 1 && t.shape[0] == 500);
    if (t.data) CHECK(((const float *)t.data)[0] == 118.0f && ((const float *)t.data)[499] == 253.0f);
    CHECK(bp_st_metadata_count(f) == 11);
    CHECK(bp_st_metadata(f, "seed") && strcmp(bp_st_metadata(f, "seed"), "31337") == 0);
    CHECK(bp_st_metadata(f, "n_classes") && strcmp(bp_st_metadata(f, "n_classes"), "20") == 0);
    CHECK(bp_st_metadata(f, "description") && strstr(bp_st_metadata(f, "description"), "mAP"));
    bp_st_close(f);
}

/* --------------------------------------------------------- malformed -- */

static void test_malformed(void) {
    /* lengths and framing */
    static const uint8_t tiny[5] = {1, 0, 0, 0, 0};
    expect_fail_buf(tiny, sizeof tiny, BP_ERR_FORMAT, "too short", __LINE__);
    expect_fail_buf(tiny, 0, BP_ERR_FORMAT, "too short", __LINE__);
    {
        size_t size;
        uint8_t *b = make_st("{}", 0, &size);
        b[5] = 1; /* header length 2^40 + 2 */
        expect_fail_buf(b, size, BP_ERR_FORMAT, "exceeds the 100000000-byte limit", __LINE__);
        b[5] = 0;
        b[0] = 200; /* 200 > the 2 bytes that follow */
        expect_fail_buf(b, size, BP_ERR_FORMAT, "extends beyond the end of the file", __LINE__);
        free(b);
    }
    /* JSON shape */
    EXPECT_FAIL("{\"a\": {\"dtype\": \"F32\", ", 0, BP_ERR_FORMAT, "not valid JSON");
    EXPECT_FAIL("[1, 2]", 0, BP_ERR_FORMAT, "expected a JSON object");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, BP_ERR_FORMAT, "duplicate");
    EXPECT_FAIL("{\"a\": 3}", 0, BP_ERR_FORMAT, "tensor 'a' entry is an integer, expected an object");
    EXPECT_FAIL("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, BP_ERR_FORMAT, "tensor 'a' has no \"dtype\"");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, BP_ERR_FORMAT,
                "tensor 'a' has an integer \"shape\"");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, BP_ERR_FORMAT,
                "malformed \"data_offsets\"");
    EXPECT_FAIL("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, BP_ERR_FORMAT, "empty name");
    EXPECT_FAIL("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, BP_ERR_FORMAT,
                "not valid JSON");
    /* dtypes */
    EXPECT_FAIL("{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, BP_ERR_UNSUPPORTED,
                "tensor 'w' has unknown dtype 'Q7'");
    /* shapes */
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,4]}}", 4, BP_ERR_FORMAT,
                "tensor 'a' shape[1] is -3, must be non-negative");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, BP_ERR_FORMAT,
                "shape[0] is a real number");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],"
                "\"data_offsets\":[0,4]}}",
                4, BP_ERR_FORMAT, "overflows");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4,
                BP_ERR_FORMAT, "overflows");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4,
                BP_ERR_FORMAT, "not valid JSON"); /* beyond 64 bits */
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, BP_ERR_FORMAT,
                "not a whole number of bytes");
    /* offsets and sizes */
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24, BP_ERR_FORMAT,
                "span 20 bytes, but F32 with 6 elements needs 24");
    EXPECT_FAIL("{\"blocks.0.attn.qkv.weight\":{\"dtype\":\"F32\",\"shape\":[200],\"data_offsets\":[100,900]}}",
                512, BP_ERR_FORMAT,
                "tensor 'blocks.0.attn.qkv.weight' data_offsets [100, 900] end beyond the data section (512 bytes)");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, BP_ERR_FORMAT,
                "end before begin");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8, BP_ERR_FORMAT,
                "data_offsets[0] is -4, must be non-negative");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 8, BP_ERR_FORMAT,
                "data_offsets[0] is a string");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12, BP_ERR_FORMAT, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                8, BP_ERR_FORMAT, "overlap");
    EXPECT_FAIL("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 8,
                BP_ERR_FORMAT, "not valid JSON");
    /* metadata */
    EXPECT_FAIL("{\"__metadata__\":{\"n\":3}}", 0, BP_ERR_FORMAT, "__metadata__ entry 'n' is an integer");
    EXPECT_FAIL("{\"__metadata__\":[\"a\"]}", 0, BP_ERR_FORMAT, "__metadata__ is an array");
    EXPECT_FAIL("{\"__metadata__\":{\"n\":{\"x\":\"y\"}}}", 0, BP_ERR_FORMAT, "is an object, expected a string");

    /* valid files whose tensors batpipe cannot represent: they open; only the get fails */
    {
        size_t size;
        uint8_t *b = make_st("{\"f8\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]},"
                             "\"deep\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[4,5]},"
                             "\"u64\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[8,16]}}",
                             16, &size);
        bp_error err = BP_ERROR_INIT;
        bp_st_file *f = NULL;
        CHECK_OK(bp_st_open_memory(b, size, "odd.safetensors", &f, &err), &err);
        if (f) {
            bp_tensor t;
            CHECK(bp_st_count(f) == 3);
            CHECK(bp_st_get(f, "f8", &t, &err) == BP_ERR_UNSUPPORTED);
            CHECKF(strstr(err.msg, "odd.safetensors: tensor 'f8' has dtype F8_E4M3") != NULL, "%s", err.msg);
            CHECK(bp_st_get(f, "u64", &t, &err) == BP_ERR_UNSUPPORTED && strstr(err.msg, "U64"));
            CHECK(bp_st_get(f, "deep", &t, &err) == BP_ERR_UNSUPPORTED && strstr(err.msg, "9 dimensions"));
            bp_st_close(f);
        }
        free(b);
    }

    /* truncation anywhere in a valid file gives a clean error */
    {
        size_t size;
        uint8_t *b = make_st("{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                             "\"data_offsets\":[0,16]},"
                             "\"b\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[16,19]}}",
                             19, &size);
        bp_error err = BP_ERROR_INIT;
        bp_st_file *f = NULL;
        CHECK_OK(bp_st_open_memory(b, size, "full", &f, &err), &err);
        bp_st_close(f);
        int clean = 1;
        for (size_t n = 0; n < size; n++) {
            uint8_t *cut = malloc(n ? n : 1);
            memcpy(cut, b, n);
            f = NULL;
            bp_error_clear(&err);
            bp_status st = bp_st_open_memory(cut, n, "cut.safetensors", &f, &err);
            if (st != BP_ERR_FORMAT || f != NULL || !strstr(err.msg, "cut.safetensors")) {
                fprintf(stderr, "truncated at %zu: %s (%s)\n", n, bp_status_name(st), err.msg);
                clean = 0;
            }
            bp_st_close(f);
            free(cut);
        }
        CHECK(clean);
        free(b);
    }
}

/* -------------------------------------------------------- atomic write -- */

static bp_status write_one(const char *path, float value, int64_t n, bp_error *err) {
    float *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = value;
    bp_st_writer *w = NULL;
    bp_status st = bp_st_writer_new(&w, err);
    bp_tensor t = bp_tensor_view(BP_DTYPE_F32, 1, &n, d);
    if (st == BP_OK) st = bp_st_writer_add(w, "x", &t, err);
    if (st == BP_OK) st = bp_st_writer_write(w, path, err);
    bp_st_writer_free(w);
    free(d);
    return st;
}

static float read_first(const char *path) {
    bp_error err = BP_ERROR_INIT;
    bp_st_file *f = NULL;
    float v = -1.0f;
    if (bp_st_open(path, &f, &err) == BP_OK) {
        bp_tensor t;
        if (bp_st_get(f, "x", &t, &err) == BP_OK) v = ((const float *)t.data)[0];
    }
    bp_st_close(f);
    return v;
}

static void test_atomic_write(void) {
    bp_error err = BP_ERROR_INIT;
    char path[512], sub[300], missing[512];
    path_in_tmp(sub, sizeof sub, "atomic");
    CHECK(mkdir(sub, 0755) == 0);
    snprintf(path, sizeof path, "%s/w.safetensors", sub);

    /* into a directory that does not exist: fails and creates nothing */
    snprintf(missing, sizeof missing, "%s/nope/w.safetensors", sub);
    CHECK(write_one(missing, 1.0f, 4, &err) == BP_ERR_IO);
    CHECKF(strstr(err.msg, "nope/w.safetensors") && strstr(err.msg, "No such file"), "%s", err.msg);
    CHECK(dir_entries(sub) == 0);

    /* a new file, then replacing it */
    CHECK_OK(write_one(path, 1.0f, 4, &err), &err);
    CHECK(read_first(path) == 1.0f);
    CHECK_OK(write_one(path, 2.0f, 8, &err), &err);
    CHECK(read_first(path) == 2.0f);
    CHECK(dir_entries(sub) == 1);

    /* a failing write (file size limit) keeps the old file and leaves no temporary */
    struct rlimit old;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = old;
    lim.rlim_cur = 4096;
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        bp_status st = write_one(path, 3.0f, 100000, &err);
        setrlimit(RLIMIT_FSIZE, &old);
        CHECK(st == BP_ERR_IO);
        CHECKF(strstr(err.msg, "write of the temporary file failed") != NULL, "%s", err.msg);
        CHECK(read_first(path) == 2.0f);
        CHECK(dir_entries(sub) == 1);
    } else {
        fprintf(stderr, "setrlimit(RLIMIT_FSIZE) failed: skipping the failing-write case\n");
    }
    signal(SIGXFSZ, prev);

    /* renaming over a directory fails: the directory stays, no temporary is left */
    char dpath[512];
    snprintf(dpath, sizeof dpath, "%s/isdir", sub);
    CHECK(mkdir(dpath, 0755) == 0);
    CHECK(write_one(dpath, 4.0f, 4, &err) == BP_ERR_IO);
    CHECKF(strstr(err.msg, "rename") != NULL, "%s", err.msg);
    struct stat sb;
    CHECK(stat(dpath, &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK(dir_entries(sub) == 2);

    /* open errors */
    bp_st_file *f = NULL;
    CHECK(bp_st_open(missing, &f, &err) == BP_ERR_NOT_FOUND && strstr(err.msg, "nope/w.safetensors"));
    CHECK(bp_st_open(dpath, &f, &err) != BP_OK && f == NULL);
    CHECK(!file_exists(missing));
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bp_test_st_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp failed: %s\n", strerror(errno));
        return 1;
    }
    test_round_trip();
    test_empty_file();
    test_golden_file();
    test_malformed();
    test_atomic_write();
    remove_tree(tmpdir);
    return TEST_RESULT();
}
