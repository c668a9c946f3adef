/* libFuzzer target: the safetensors reader over arbitrary bytes, then every
 * accessor on whatever it accepted. Crashes, sanitizer reports, leaks and a
 * broken invariant (trapped below) are findings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/quant.h"
#include "batpipe/safetensors.h"

#define LABEL "fuzz.safetensors"
#define REQUIRE(c) \
    do {           \
        if (!(c)) __builtin_trap(); \
    } while (0)

static volatile uint8_t sink;

/* Read every byte so that ASan sees any view that escapes its buffer. */
static void touch(const void *p, size_t n) {
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc ^= b[i];
    sink = acc;
}

static void check_tensor(const bp_st_file *f, uint32_t i) {
    bp_error err = BP_ERROR_INIT;
    const char *name = bp_st_name(f, i);
    REQUIRE(name != NULL);
    bp_tensor t, t2;
    bp_status st = bp_st_get_index(f, i, &t, &err);
    if (st != BP_OK) {
        REQUIRE(st == BP_ERR_UNSUPPORTED && strstr(err.msg, LABEL) && strstr(err.msg, name));
        REQUIRE(bp_st_get(f, name, &t2, &err) == BP_ERR_UNSUPPORTED);
        return;
    }
    REQUIRE(t.owns_data == 0 && t.backend == NULL && t.ndim >= 0 && t.ndim <= BP_MAX_DIMS);
    REQUIRE(strcmp(t.name, name) == 0);
    size_t nb = bp_tensor_nbytes(&t);
    REQUIRE((uintptr_t)t.data % bp_dtype_block_bytes(t.dtype) == 0 || nb == 0);
    touch(t.data, nb);
    REQUIRE(bp_st_get(f, name, &t2, &err) == BP_OK && t2.data == t.data && t2.dtype == t.dtype);
    REQUIRE(bp_st_get_checked(f, name, t.dtype, t.ndim, t.shape, &t2, &err) == BP_OK);
    int64_t wrong[BP_MAX_DIMS + 1] = {0};
    for (int32_t d = 0; d < t.ndim; d++) wrong[d] = t.shape[d] + 1;
    REQUIRE(bp_st_get_checked(f, name, t.dtype, t.ndim + 1, wrong, &t2, &err) == BP_ERR_SPEC);
    if (t.dtype == BP_DTYPE_F32 || t.dtype == BP_DTYPE_F16 || t.dtype == BP_DTYPE_BF16) {
        float row[256];
        int64_t n = bp_tensor_numel(&t);
        if (n > 256) n = 256;
        REQUIRE(bp_dequantize_row(t.dtype, t.data, row, n, &err) == BP_OK);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bp_error err = BP_ERROR_INIT;
    bp_st_file *f = NULL;
    bp_status st = bp_st_open_memory(data, size, LABEL, &f, &err);
    if (st != BP_OK) {
        REQUIRE(f == NULL && err.code == st && strncmp(err.msg, LABEL ": ", strlen(LABEL) + 2) == 0);
        REQUIRE(st == BP_ERR_FORMAT || st == BP_ERR_UNSUPPORTED || st == BP_ERR_NOMEM);
        return 0;
    }
    uint32_t n = bp_st_count(f);
    for (uint32_t i = 0; i < n; i++) check_tensor(f, i);
    REQUIRE(bp_st_name(f, n) == NULL);
    bp_tensor t;
    REQUIRE(bp_st_get(f, "\x01 not a tensor", &t, &err) == BP_ERR_NOT_FOUND);
    for (uint32_t i = 0; i < bp_st_metadata_count(f); i++) {
        const char *k, *v;
        bp_st_metadata_at(f, i, &k, &v);
        REQUIRE(k && v);
        touch(v, strlen(v));
        REQUIRE(bp_st_metadata(f, k) == v);
    }
    bp_st_close(f);
    return 0;
}
