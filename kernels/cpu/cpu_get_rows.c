/* cpu backend — get_rows: gather table rows by I32 ids into F32, with
 * dequantization of the ggml block formats (32 elements per block):
 *   Q8_0: f16 d, int8 q[32]            value = d·q
 *   Q4_0: f16 d, uint8 qs[16]          value = d·(nibble − 8)
 *   Q4_1: f16 d, f16 m, uint8 qs[16]   value = d·nibble + m
 * with element j < 16 in the low nibble of qs[j] and element j + 16 in its
 * high nibble. Every id is checked against the table before anything is
 * written. */
#include <omp.h>
#include <string.h>

#include "cpu_internal.h"
#include "cpu_math.h"

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

BP_CPU_CLONES static void dequant_q8_0(const uint8_t *row, float *y, int64_t blocks) {
    for (int64_t b = 0; b < blocks; b++, row += 34, y += BP_QK) {
        float d = cm_f16_to_f32(load_u16(row));
        const int8_t *q = (const int8_t *)(row + 2);
#pragma omp simd
        for (int j = 0; j < BP_QK; j++) y[j] = d * (float)q[j];
    }
}

BP_CPU_CLONES static void dequant_q4_0(const uint8_t *row, float *y, int64_t blocks) {
    for (int64_t b = 0; b < blocks; b++, row += 18, y += BP_QK) {
        float d = cm_f16_to_f32(load_u16(row));
        const uint8_t *qs = row + 2;
#pragma omp simd
        for (int j = 0; j < BP_QK / 2; j++) {
            y[j] = d * (float)((int)(qs[j] & 0x0f) - 8);
            y[j + BP_QK / 2] = d * (float)((int)(qs[j] >> 4) - 8);
        }
    }
}

BP_CPU_CLONES static void dequant_q4_1(const uint8_t *row, float *y, int64_t blocks) {
    for (int64_t b = 0; b < blocks; b++, row += 20, y += BP_QK) {
        float d = cm_f16_to_f32(load_u16(row));
        float m = cm_f16_to_f32(load_u16(row + 2));
        const uint8_t *qs = row + 4;
#pragma omp simd
        for (int j = 0; j < BP_QK / 2; j++) {
            y[j] = d * (float)(qs[j] & 0x0f) + m;
            y[j + BP_QK / 2] = d * (float)(qs[j] >> 4) + m;
        }
    }
}

static void gather_row(int32_t dtype, const uint8_t *row, float *y, int64_t d) {
    switch (dtype) {
    case BP_DTYPE_F32: memcpy(y, row, (size_t)d * sizeof(float)); break;
    case BP_DTYPE_F16: bp_cpu_f16_to_f32_row((const uint16_t *)(const void *)row, y, d); break;
    case BP_DTYPE_BF16: bp_cpu_bf16_to_f32_row((const uint16_t *)(const void *)row, y, d); break;
    case BP_DTYPE_Q8_0: dequant_q8_0(row, y, d / BP_QK); break;
    case BP_DTYPE_Q4_0: dequant_q4_0(row, y, d / BP_QK); break;
    default: dequant_q4_1(row, y, d / BP_QK); break;
    }
}

bp_status bp_cpu_get_rows(bp_backend_impl *be, const bp_tensor *table, const bp_tensor *ids, bp_tensor *y,
                          bp_error *err) {
    int32_t t = table->dtype;
    if (t != BP_DTYPE_F32 && t != BP_DTYPE_F16 && t != BP_DTYPE_BF16 && t != BP_DTYPE_Q8_0 && t != BP_DTYPE_Q4_0 &&
        t != BP_DTYPE_Q4_1)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "cpu get_rows: table dtype %s is not supported",
                            bp_dtype_name(t));
    int64_t v = table->shape[0], d = table->shape[1], n = ids->shape[0];
    if (bp_dtype_block_elems(t) > 1 && d % BP_QK != 0)
        return bp_error_set(err, BP_ERR_INVALID,
                            "cpu get_rows: %s table rows of %lld elements are not whole blocks of %d",
                            bp_dtype_name(t), (long long)d, BP_QK);
    const int32_t *id = ids->data;
    for (int64_t i = 0; i < n; i++)
        if (id[i] < 0 || id[i] >= v)
            return bp_error_set(err, BP_ERR_INVALID, "cpu get_rows: ids[%lld] = %d is outside the table's %lld rows",
                                (long long)i, (int)id[i], (long long)v);
    size_t row_bytes = (size_t)(d / bp_dtype_block_elems(t)) * bp_dtype_block_bytes(t);
    const uint8_t *tab = table->data;
    float *ys = y->data;
    int nt = bp_cpu_threads_for(bp_cpu_of(be), n * d);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (int64_t i = 0; i < n; i++) gather_row(t, tab + (size_t)id[i] * row_bytes, ys + i * d, d);
    return BP_OK;
}
