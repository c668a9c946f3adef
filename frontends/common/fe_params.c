/* frontends/common — shared parameter parsing (see fe_params.h). */
#include "fe_params.h"

#include <math.h>
#include <string.h>

bp_status bp_fe_downmix_parse(const char *s, const char *what, bp_fe_source *out, bp_error *err) {
    if (!s || strcmp(s, "mean") == 0) *out = BP_FE_SRC_MEAN;
    else if (strcmp(s, "left") == 0) *out = BP_FE_SRC_CH0;
    else if (strcmp(s, "right") == 0) *out = BP_FE_SRC_CH1;
    else
        return bp_error_set(err, BP_ERR_INVALID, "%s: parameter 'downmix' is \"%s\"; valid: mean, left, right", what,
                            s);
    return BP_OK;
}

bp_status bp_fe_param_list(const bp_params *params, const char *name, uint32_t want, int allow_one,
                           const char *what, double *out, bp_error *err) {
    const bp_param_value *v = bp_params_find(params, name);
    if (!v || v->type != BP_PARAM_FLOAT_LIST)
        return bp_error_set(err, BP_ERR_INVALID, "%s: parameter '%s' is missing or not a list of numbers", what, name);
    if (v->count == want) {
        for (uint32_t i = 0; i < want; i++) out[i] = v->list[i];
    } else if (allow_one && v->count == 1) {
        for (uint32_t i = 0; i < want; i++) out[i] = v->list[0];
    } else {
        return bp_error_set(err, BP_ERR_INVALID, "%s: parameter '%s' (%s) has %u element%s, expected %u%s", what,
                            name, v->origin ? v->origin : "?", (unsigned)v->count, v->count == 1 ? "" : "s",
                            (unsigned)want, allow_one && want != 1 ? " (or 1 for all channels)" : "");
    }
    for (uint32_t i = 0; i < want; i++)
        if (!isfinite(out[i]))
            return bp_error_set(err, BP_ERR_INVALID, "%s: parameter '%s' element %u is not finite", what, name,
                                (unsigned)i);
    return BP_OK;
}
