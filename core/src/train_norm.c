/* train: the frontend's log-mel normalisation, estimated from training clips.
 *
 * Spatial-AST normalises the two log-mel maps with BatchNorm2d(2,
 * affine=False): batch statistics while training, running statistics after.
 * batpipe's frontends (melipd, mel) apply that normalisation with fixed
 * statistics (bn_mean, bn_var), so training from scratch needs the values the
 * running statistics would reach: the per-channel mean and variance of the
 * unnormalised log-mel ("logmel_raw") over the training set, estimated here
 * from `items` clips drawn from the seed. */
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

bp_status train_norm_estimate(train_data *d, uint64_t seed, int64_t items, double *mean, double *var, uint32_t *n_ch,
                              bp_error *err) {
    train_frontend *f = d->fe;
    int port = -1;
    for (uint32_t i = 0; i < f->n_ports; i++)
        if (strcmp(f->ports[i].name, "logmel_raw") == 0) port = (int)i;
    if (port < 0)
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "normalize: %s has no 'logmel_raw' output to estimate from",
                            f->label);
    const bp_spec *s = &f->ports[port].spec;
    if (s->ndim != 3 || s->shape[0] < 1 || s->shape[0] > TRAIN_NORM_MAX_CH || s->shape[1] < 1 || s->shape[2] < 1)
        return bp_error_set(err, BP_ERR_SPEC, "normalize: %s's logmel_raw is not [channels <= %d, frames, mels]",
                            f->label, TRAIN_NORM_MAX_CH);
    if (items > d->n_items) items = d->n_items;
    int64_t *perm = malloc((size_t)d->n_items * sizeof *perm);
    bp_tensor *lm = NULL;
    bp_status st = perm ? bp_tensor_new(NULL, BP_DTYPE_F32, 3, s->shape, &lm, err)
                        : bp_error_set(err, BP_ERR_NOMEM, "train: out of memory");
    uint32_t C = (uint32_t)s->shape[0];
    double sum[TRAIN_NORM_MAX_CH] = {0}, sum2[TRAIN_NORM_MAX_CH] = {0};
    int64_t per = s->shape[1] * s->shape[2], count = 0;
    if (st == BP_OK) train_permutation(train_hash(seed, TRAIN_RNG_NORM, 0, 0), 0, perm, d->n_items);
    for (int64_t k = 0; k < items && st == BP_OK; k++) {
        bp_item it;
        const bp_tensor *audio;
        if ((st = train_data_clip(d, perm[k], &it, &audio, err)) != BP_OK) break;
        bp_spec as = bp_spec_of(audio, d->audio_spec.rate);
        if ((st = train_frontend_prepare(f, &as, err)) != BP_OK) break;
        if (lm->shape[1] != f->ports[port].spec.shape[1] || lm->shape[2] != f->ports[port].spec.shape[2]) {
            st = bp_error_set(err, BP_ERR_SPEC, "normalize: item %s: clips of different lengths", it.id);
            break;
        }
        bp_tensor *outs[BP_MAX_OUTPUTS] = {0};
        outs[0] = f->outputs[0];
        outs[port] = lm;
        bp_error e2 = BP_ERROR_INIT;
        if ((st = f->st->process(f->st, audio, outs, f->n_ports, &e2)) != BP_OK) {
            bp_error_set(err, st, "normalize: item %s: %s: %s", it.id, f->label, e2.msg);
            break;
        }
        const float *x = lm->data;
        for (uint32_t c = 0; c < C; c++) {
            double a = 0, b = 0;
            for (int64_t i = 0; i < per; i++) {
                double v = x[c * per + i];
                a += v;
                b += v * v;
            }
            sum[c] += a;
            sum2[c] += b;
        }
        count += per;
    }
    if (st == BP_OK && count == 0) st = bp_error_set(err, BP_ERR_INVALID, "normalize: no clips");
    if (st == BP_OK) {
        *n_ch = C;
        for (uint32_t c = 0; c < C; c++) {
            mean[c] = sum[c] / (double)count;
            var[c] = sum2[c] / (double)count - mean[c] * mean[c];
            if (var[c] < 1e-12) var[c] = 1e-12;
        }
    }
    bp_tensor_free(lm);
    free(perm);
    return st;
}
