/* libFuzzer target: the GGUF reader over arbitrary bytes, then every
 * metadata and tensor accessor on whatever it accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/gguf.h"
#include "batpipe/quant.h"

#define LABEL "fuzz.gguf"
#define REQUIRE(c) \
    do {           \
        if (!(c)) __builtin_trap(); \
    } while (0)
#define MAX_ELEMS 64 /* array elements visited at each end */

static volatile uint8_t sink;

static void touch(const void *p, size_t n) {
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc ^= b[i];
    sink = acc;
}

static void check_array(const bp_gguf *g, int64_t i, const char *key) {
    bp_error err = BP_ERROR_INIT;
    int32_t et = -1;
    uint64_t count = 0;
    REQUIRE(bp_gguf_get_array_info(g, key, &et, &count, &err) == BP_OK);
    REQUIRE(et >= 0 && et < BP_GGUF_TYPE_COUNT && et != BP_GGUF_TYPE_ARRAY);
    for (uint64_t k = 0; k < count; k++) {
        if (k == MAX_ELEMS && count > 2 * MAX_ELEMS) k = count - MAX_ELEMS;
        int64_t iv;
        double fv;
        const char *s = bp_gguf_array_string(g, i, k);
        REQUIRE((s != NULL) == (et == BP_GGUF_TYPE_STRING));
        if (s) touch(s, strlen(s));
        bp_status si = bp_gguf_array_int(g, i, k, &iv, &err);
        bp_status sf = bp_gguf_array_float(g, i, k, &fv, &err);
        REQUIRE(sf == (et == BP_GGUF_TYPE_FLOAT32 || et == BP_GGUF_TYPE_FLOAT64 ? BP_OK : BP_ERR_INVALID));
        REQUIRE(si == BP_OK || si == BP_ERR_INVALID);
    }
    REQUIRE(bp_gguf_array_string(g, i, count) == NULL);
    int64_t ints[8];
    float floats[8];
    uint64_t n = count < 8 ? count : 8;
    (void)bp_gguf_array_ints(g, i, count - n, n, ints, &err);
    (void)bp_gguf_array_floats(g, i, count - n, n, floats, &err);
    REQUIRE(bp_gguf_array_ints(g, i, count, 1, ints, &err) == BP_ERR_INVALID);
}

static void check_kv(const bp_gguf *g, int64_t i) {
    bp_error err = BP_ERROR_INIT;
    const char *key = bp_gguf_key(g, i);
    REQUIRE(key != NULL && key[0] != '\0');
    REQUIRE(bp_gguf_find_key(g, key) == i);
    int32_t type = bp_gguf_kv_type(g, i);
    REQUIRE(type >= 0 && type < BP_GGUF_TYPE_COUNT);
    (void)bp_gguf_type_name(type);
    int64_t iv;
    double fv;
    int32_t bv;
    const char *sv;
    uint64_t len;
    bp_status si = bp_gguf_get_int(g, key, &iv, &err);
    bp_status sf = bp_gguf_get_float(g, key, &fv, &err);
    bp_status sb = bp_gguf_get_bool(g, key, &bv, &err);
    bp_status ss = bp_gguf_get_string(g, key, &sv, &len, &err);
    REQUIRE(si == BP_OK || si == BP_ERR_INVALID);
    REQUIRE((sf == BP_OK) == (type == BP_GGUF_TYPE_FLOAT32 || type == BP_GGUF_TYPE_FLOAT64));
    REQUIRE((sb == BP_OK) == (type == BP_GGUF_TYPE_BOOL));
    REQUIRE((ss == BP_OK) == (type == BP_GGUF_TYPE_STRING));
    if (sb == BP_OK) REQUIRE(bv == 0 || bv == 1);
    if (ss == BP_OK) {
        REQUIRE(sv[len] == '\0');
        touch(sv, len);
    }
    if (type == BP_GGUF_TYPE_ARRAY) check_array(g, i, key);
}

static void check_tensor(const bp_gguf *g, int64_t i, size_t size) {
    bp_error err = BP_ERROR_INIT;
    const bp_gguf_tensor_info *ti = bp_gguf_tensor_info_at(g, i);
    REQUIRE(ti && ti->name && ti->struct_size == sizeof *ti);
    REQUIRE(bp_gguf_find_tensor(g, ti->name) == i);
    REQUIRE(ti->n_dims >= 0 && ti->n_dims <= BP_GGUF_MAX_DIMS);
    REQUIRE(ti->offset % bp_gguf_alignment(g) == 0);
    uint64_t avail = size - bp_gguf_data_offset(g); /* data_offset <= size is checked by the caller */
    REQUIRE(ti->offset <= avail && ti->nbytes <= avail - ti->offset);
    (void)bp_gguf_ggml_type_name(ti->ggml_type);
    const uint8_t *raw = bp_gguf_tensor_data(g, i);
    REQUIRE(raw != NULL);
    touch(raw, (size_t)ti->nbytes);
    bp_tensor v, v2;
    bp_status st = bp_gguf_tensor_index(g, i, &v, &err);
    if (st != BP_OK) {
        REQUIRE(st == BP_ERR_UNSUPPORTED && strstr(err.msg, ti->name));
        return;
    }
    REQUIRE(v.data == raw && bp_tensor_nbytes(&v) == ti->nbytes && v.ndim == ti->n_dims);
    REQUIRE(bp_gguf_tensor(g, ti->name, &v2, &err) == BP_OK && v2.data == v.data);
    if (v.ndim > 0 && (v.dtype == BP_DTYPE_F32 || v.dtype == BP_DTYPE_F16 || v.dtype == BP_DTYPE_BF16 ||
                       v.dtype == BP_DTYPE_Q8_0 || v.dtype == BP_DTYPE_Q4_0 || v.dtype == BP_DTYPE_Q4_1)) {
        float row[512];
        int64_t n = v.shape[v.ndim - 1];
        if (n > 512) n = 512; /* a multiple of 32 stays a multiple of 32 */
        REQUIRE(bp_dequantize_row(v.dtype, v.data, row, n, &err) == BP_OK);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bp_error err = BP_ERROR_INIT;
    bp_gguf *g = NULL;
    bp_status st = bp_gguf_open_memory(data, size, LABEL, &g, &err);
    if (st != BP_OK) {
        REQUIRE(g == NULL && err.code == st && strncmp(err.msg, LABEL ": ", strlen(LABEL) + 2) == 0);
        REQUIRE(st == BP_ERR_FORMAT || st == BP_ERR_UNSUPPORTED || st == BP_ERR_NOMEM);
        return 0;
    }
    REQUIRE(bp_gguf_version(g) == 2 || bp_gguf_version(g) == 3);
    REQUIRE(bp_gguf_alignment(g) > 0 && bp_gguf_alignment(g) % 8 == 0);
    REQUIRE(bp_gguf_data_offset(g) <= size);
    for (int64_t i = 0; i < bp_gguf_kv_count(g); i++) check_kv(g, i);
    REQUIRE(bp_gguf_key(g, bp_gguf_kv_count(g)) == NULL);
    for (int64_t i = 0; i < bp_gguf_tensor_count(g); i++) check_tensor(g, i, size);
    REQUIRE(bp_gguf_tensor_info_at(g, bp_gguf_tensor_count(g)) == NULL);
    bp_gguf_close(g);
    return 0;
}
