/* llama plugin — kernel selection and dtype dispatch. */
#include "llama_kernels.h"

#include "batpipe/quant.h"

const char *lm_isa_name(lm_isa isa) {
    switch (isa) {
    case LM_ISA_GENERIC: return "generic";
    case LM_ISA_AVX2: return "avx2";
    case LM_ISA_AVX512: return "avx512";
    default: return "?";
    }
}

bp_status lm_kernels_select(lm_isa want, lm_kernels *out, bp_error *err) {
    lm_kernels k;
    lm_kernels_generic(&k); /* fills every slot; the SIMD tables override what they implement */
    if (want == LM_ISA_COUNT) {
        if (!lm_kernels_avx512(&k)) lm_kernels_avx2(&k);
    } else if (want == LM_ISA_AVX512) {
        if (!lm_kernels_avx512(&k))
            return bp_error_set(err, BP_ERR_UNSUPPORTED,
                                "kernels = avx512: this CPU (or build) has no AVX-512 VNNI kernels");
    } else if (want == LM_ISA_AVX2) {
        if (!lm_kernels_avx2(&k))
            return bp_error_set(err, BP_ERR_UNSUPPORTED,
                                "kernels = avx2: this CPU (or build) has no AVX2/FMA/F16C kernels");
    }
    *out = k;
    return BP_OK;
}

void lm_matmul(const lm_kernels *kr, const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx,
               const lm_qact *qa, int64_t n, float *y, int64_t ldy) {
    if (r1 <= r0 || n <= 0) return;
    switch (w->dtype) {
    case BP_DTYPE_Q8_0: kr->mm_q8_0(w, r0, r1, qa, n, y, ldy); break;
    case BP_DTYPE_Q4_0: kr->mm_q4_0(w, r0, r1, qa, n, y, ldy); break;
    case BP_DTYPE_Q4_1: kr->mm_q4_1(w, r0, r1, qa, n, y, ldy); break;
    case BP_DTYPE_F32: kr->mm_f32(w, r0, r1, x, ldx, n, y, ldy); break;
    case BP_DTYPE_F16: kr->mm_f16(w, r0, r1, x, ldx, n, y, ldy); break;
    case BP_DTYPE_BF16: kr->mm_bf16(w, r0, r1, x, ldx, n, y, ldy); break;
    default: break; /* the loaders admit only the types above */
    }
}

void lm_matmul_f32act(const lm_kernels *kr, const lm_mat *w, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                      int64_t n, float *y, int64_t ldy) {
    if (r1 <= r0 || n <= 0) return;
    switch (w->dtype) {
    case BP_DTYPE_Q8_0: kr->mmx_q8_0(w, r0, r1, x, ldx, n, y, ldy); break;
    case BP_DTYPE_Q4_0: kr->mmx_q4_0(w, r0, r1, x, ldx, n, y, ldy); break;
    case BP_DTYPE_Q4_1: kr->mmx_q4_1(w, r0, r1, x, ldx, n, y, ldy); break;
    default: lm_matmul(kr, w, r0, r1, x, ldx, NULL, n, y, ldy); break;
    }
}

void lm_mat_row_f32(const lm_mat *w, int64_t r, float *dst) {
    /* the loaders checked the type and the row length, so this cannot fail */
    bp_dequantize_row(w->dtype, w->data + (size_t)r * w->row_bytes, dst, w->cols, NULL);
}
