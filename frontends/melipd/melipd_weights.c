/* melipd — checkpoint reading (see melipd_weights.h). */
#include "melipd_weights.h"

#include <math.h>

#include "batpipe/safetensors.h"

#define MELW_TOLERANCE 1e-6

static bp_status read_stat(const bp_st_file *f, const char *name, double out[2], bp_error *err) {
    const int64_t shape[1] = {2};
    bp_tensor t;
    bp_status st = bp_st_get_checked(f, name, BP_DTYPE_F32, 1, shape, &t, err);
    if (st != BP_OK) return st;
    const float *v = t.data;
    for (int i = 0; i < 2; i++) {
        if (!isfinite(v[i]))
            return bp_error_set(err, BP_ERR_NUMERIC, "%s: tensor '%s' element %d is not finite", bp_st_path(f), name,
                                i);
        out[i] = v[i];
    }
    return BP_OK;
}

static bp_status check_melw(const bp_st_file *f, const bp_fe_mel *mel, bp_error *err) {
    const char *name = "logmel_extractor.melW";
    bp_tensor t;
    bp_error tmp = BP_ERROR_INIT;
    if (bp_st_get(f, name, &t, &tmp) == BP_ERR_NOT_FOUND) return BP_OK; /* optional */
    const int64_t shape[2] = {mel->n_bins, mel->n_mels};
    bp_status st = bp_st_get_checked(f, name, BP_DTYPE_F32, 2, shape, &t, err);
    if (st != BP_OK) return st;
    const float *w = t.data;
    size_t n = (size_t)mel->n_bins * (size_t)mel->n_mels, worst = 0;
    double maxref = 0.0, maxdiff = 0.0;
    for (size_t i = 0; i < n; i++) {
        maxref = fmax(maxref, fabs((double)mel->dense[i]));
        double d = fabs((double)w[i] - (double)mel->dense[i]);
        if (!(d <= maxdiff)) { /* also catches NaN */
            maxdiff = isnan(d) ? INFINITY : d;
            worst = i;
        }
    }
    double rel = maxref > 0.0 ? maxdiff / maxref : maxdiff;
    if (!(rel <= MELW_TOLERANCE))
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: tensor '%s' differs from melipd's Slaney mel matrix (50-14000 Hz, 128 mels): "
                            "relative error %.3g at [%zu, %zu] (allowed %g); the checkpoint was made for another "
                            "front end",
                            bp_st_path(f), name, rel, worst / (size_t)mel->n_mels, worst % (size_t)mel->n_mels,
                            MELW_TOLERANCE);
    return BP_OK;
}

bp_status bp_melipd_load_weights(const char *path, const bp_fe_mel *mel, bp_fe_bn *bn, bp_error *err) {
    bp_st_file *f = NULL;
    bp_status st = bp_st_open(path, &f, err);
    if (st != BP_OK) return st;
    bp_fe_bn got;
    st = read_stat(f, "bn.running_mean", got.mean, err);
    if (st == BP_OK) st = read_stat(f, "bn.running_var", got.var, err);
    if (st == BP_OK && (got.var[0] < 0.0 || got.var[1] < 0.0))
        st = bp_error_set(err, BP_ERR_INVALID, "%s: tensor 'bn.running_var' has a negative variance", path);
    if (st == BP_OK) st = check_melw(f, mel, err);
    bp_st_close(f);
    if (st == BP_OK) *bn = got;
    return st;
}
