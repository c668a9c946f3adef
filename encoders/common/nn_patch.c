/* bp_nn: ViT patch embedding (conv → time-major tokens) and the fixed 2-D sin-cos table. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn_internal.h"

bp_status bp_nn_patch_embed_init(bp_nn_patch_embed *p, bp_nn_params *ps, const char *prefix, int64_t in,
                                 int64_t dim, int64_t kernel, int32_t stride, int32_t flags, int32_t layer_id,
                                 bp_error *err) {
    char name[256];
    p->dim = dim;
    p->gh = p->gw = 0;
    snprintf(name, sizeof name, "%s.proj", prefix);
    return bp_nn_conv2d_init(&p->proj, ps, name, in, dim, kernel, kernel, stride, 0, 1, flags, layer_id, err);
}

bp_status bp_nn_patch_embed_forward(bp_nn_patch_embed *p, const bp_nn_ctx *c, const bp_tensor *x, bp_tensor *y,
                                    bp_error *err) {
    const char *who = nn_name(p->proj.w);
    if (!x || x->ndim != 4 || x->shape[1] != p->proj.in) {
        char buf[96];
        return bp_error_set(err, BP_ERR_INVALID, "%s: input %s must be [batch, %lld, H, W]", who,
                            x ? bp_tensor_describe(x, buf, sizeof buf) : "NULL", (long long)p->proj.in);
    }
    const int64_t B = x->shape[0], D = p->dim;
    const int64_t gh = bp_nn_conv2d_out_size(x->shape[2], p->proj.kh, p->proj.stride_h, 0);
    const int64_t gw = bp_nn_conv2d_out_size(x->shape[3], p->proj.kw, p->proj.stride_w, 0);
    if (gh < 1 || gw < 1 || !y || y->ndim != 3 || y->shape[0] != B || y->shape[1] != gh * gw || y->shape[2] != D) {
        char bx[96], by[96];
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: input %s gives a %lldx%lld grid; output %s must be [%lld, %lld, %lld]",
                            who, bp_tensor_describe(x, bx, sizeof bx), (long long)gh, (long long)gw,
                            y ? bp_tensor_describe(y, by, sizeof by) : "NULL", (long long)B, (long long)(gh * gw),
                            (long long)D);
    }
    p->gh = gh;
    p->gw = gw;
    /* The conv output [B, D, gh, gw] is a temporary: backward needs only x. */
    const size_t mark = bp_nn_arena_mark(c->arena);
    const int64_t sg[4] = {B, D, gh, gw}, s3[3] = {B, D, gh * gw};
    bp_tensor *grid;
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, sg, &grid, err));
    bp_status st = bp_nn_conv2d_forward(&p->proj, c, x, grid, err);
    if (st == BP_OK) {
        bp_tensor g3 = bp_nn_reshape(grid, 3, s3);
        const int32_t perm[3] = {0, 2, 1};
        st = bp_op_permute(c->be, &g3, perm, y, err);
        if (st != BP_OK) bp_error_prefix(err, "%s: ", who);
    }
    bp_nn_arena_rewind(c->arena, mark);
    return st;
}

bp_status bp_nn_patch_embed_backward(bp_nn_patch_embed *p, const bp_nn_ctx *c, const bp_tensor *dy, bp_tensor *dx,
                                     bp_error *err) {
    const char *who = nn_name(p->proj.w);
    if (!p->proj.x) return bp_error_set(err, BP_ERR_INVALID, "%s: backward without a kept forward", who);
    const int64_t B = p->proj.x->shape[0], D = p->dim;
    const size_t mark = bp_nn_arena_mark(c->arena);
    const int64_t sg[4] = {B, D, p->gh, p->gw}, s3[3] = {B, D, p->gh * p->gw};
    bp_tensor *dgrid;
    NN_TRY(bp_nn_arena_get(c->arena, BP_DTYPE_F32, 4, sg, &dgrid, err));
    bp_tensor g3 = bp_nn_reshape(dgrid, 3, s3);
    const int32_t perm[3] = {0, 2, 1};
    bp_status st = bp_op_permute(c->be, dy, perm, &g3, err);
    if (st != BP_OK) bp_error_prefix(err, "%s: ", who);
    if (st == BP_OK) st = bp_nn_conv2d_backward(&p->proj, c, dgrid, dx, err);
    bp_nn_arena_rewind(c->arena, mark);
    return st;
}

void bp_nn_sincos_1d(int64_t width, double p, float *out) {
    const int64_t h = width / 2;
    for (int64_t k = 0; k < h; k++) {
        double omega = 1.0 / pow(10000.0, (double)k / (double)h);
        out[k] = (float)sin(p * omega);
        out[h + k] = (float)cos(p * omega);
    }
}

void bp_nn_sincos_2d(int64_t dim, int64_t gh, int64_t gw, float *out) {
    const int64_t half = dim / 2;
    memset(out, 0, (size_t)dim * sizeof *out);
    for (int64_t i = 0; i < gh; i++)
        for (int64_t j = 0; j < gw; j++) {
            float *row = out + (1 + i * gw + j) * dim;
            bp_nn_sincos_1d(half, (double)j, row);
            bp_nn_sincos_1d(half, (double)i, row + half);
        }
}
