/* conv2d (NCHW, F32): im2col into the instance's scratch buffer, then one
 * cuBLAS GEMM per chunk of images (groups = 1: the weight is shared by every
 * image of the chunk) or per image (groups > 1: one GEMM per group, batched).
 * Stride, padding, dilation and groups are all supported; a 1×1 kernel with
 * stride 1 and no padding skips im2col (the input already is the column
 * matrix). The chunk is sized so the column buffer stays under the
 * `scratch_mb` parameter (at least one image at a time). */
#include "cuda_internal.h"

bp_status cuda_op_conv2d(bp_backend_impl *be, const bp_conv2d_desc *d, bp_error *err) {
    cuda_backend *cb = cuda_of(be);
    bp_status st = cuda_enter(cb, "conv2d", err);
    if (st != BP_OK) return st;
    const bp_tensor *x = d->x, *w = d->w;
    bp_tensor *y = d->y;
    const int64_t NB = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t O = w->shape[0], KH = w->shape[2], KW = w->shape[3];
    const int64_t OH = y->shape[2], OW = y->shape[3];
    const int64_t G = d->groups > 0 ? d->groups : 1;
    const int32_t dh = d->dilation_h > 0 ? d->dilation_h : 1, dw = d->dilation_w > 0 ? d->dilation_w : 1;
    const int64_t P = OH * OW;           /* output pixels per image */
    const int64_t Cg = C / G, Og = O / G; /* channels per group */
    const int64_t Kg = Cg * KH * KW;     /* GEMM depth per group */
    if (bp_tensor_numel(y) == 0) return BP_OK;
    float *yp = (float *)y->data;
    const float *xp = (const float *)x->data, *wp = (const float *)w->data;

    if (Kg == 0) { /* no input channels: the output is the bias (or 0) */
        st = cuda_check(cuda_launch_scale(cb->stream, yp, bp_tensor_numel(y), 0.0f), "conv2d", err);
    } else {
        const int direct = KH == 1 && KW == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 &&
                           d->pad_w == 0;
        const int64_t col_per_image = G * Kg * P; /* floats */
        int64_t chunk = NB;
        if (!direct) {
            int64_t fit = (int64_t)(cb->scratch_limit / sizeof(float)) / col_per_image;
            chunk = fit < 1 ? 1 : (fit < NB ? fit : NB);
            st = cuda_scratch_reserve(cb, (size_t)(chunk * col_per_image) * sizeof(float), "conv2d", err);
            if (st != BP_OK) return st;
        }
        for (int64_t n0 = 0; n0 < NB && st == BP_OK; n0 += chunk) {
            const int64_t nc = NB - n0 < chunk ? NB - n0 : chunk;
            const float *xn = xp + n0 * C * H * W;
            float *yn = yp + n0 * O * P;
            const float *col = xn;
            if (!direct) {
                st = cuda_check(cuda_launch_im2col(cb->stream, xn, (float *)cb->scratch, nc, C, H, W, KH, KW, OH,
                                                   OW, d->stride_h, d->stride_w, d->pad_h, d->pad_w, dh, dw),
                                "conv2d im2col", err);
                if (st != BP_OK) break;
                col = (const float *)cb->scratch;
            }
            if (G == 1) { /* y_i[O, P] = w[O, K] · col_i[K, P] for every image i of the chunk */
                st = cuda_gemm_rm(cb, "conv2d", CUDA_R_32F, 0, 0, O, P, Kg, 1.0f, wp, Kg, 0, col, P, Kg * P, 0.0f,
                                  yn, P, O * P, nc, err);
            } else { /* per image: y_g[Og, P] = w_g[Og, Kg] · col_g[Kg, P] for every group g */
                for (int64_t i = 0; i < nc && st == BP_OK; i++)
                    st = cuda_gemm_rm(cb, "conv2d", CUDA_R_32F, 0, 0, Og, P, Kg, 1.0f, wp, Kg, Og * Kg,
                                      col + i * col_per_image, P, Kg * P, 0.0f, yn + i * O * P, P, Og * P, G, err);
            }
        }
    }
    if (st != BP_OK || !d->bias) return st;
    return cuda_check(cuda_launch_add_bias(cb->stream, yp, (const float *)d->bias->data, bp_tensor_numel(y), P, O),
                      "conv2d bias", err);
}
