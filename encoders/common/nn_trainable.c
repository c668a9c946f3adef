/* bp_nn: the parts of the trainable extension (trainable.h) that every
 * encoder built on bp_nn shares: describing a registered parameter to the
 * trainer, checking the bp_train_step a training forward receives, and
 * reading the shared `precision` parameter. */
#include <string.h>

#include "bp_nn.h"

bp_status bp_nn_params_describe(bp_nn_params *ps, uint32_t index, const char *who, bp_train_param *out,
                                bp_error *err) {
    bp_nn_params_drop_bf16(ps); /* the caller may write the values */
    if (index >= ps->count)
        return bp_error_set(err, BP_ERR_NOT_FOUND, "%s: no parameter %u (there are %u)", who, (unsigned)index,
                            (unsigned)ps->count);
    const bp_nn_param *p = &ps->items[index];
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    out->name = p->name;
    out->value = p->value;
    out->grad = p->grad;
    out->trainable = (p->flags & BP_NN_TRAINABLE) != 0;
    out->decay = (p->flags & BP_NN_DECAY) != 0;
    out->layer_id = p->layer_id;
    return BP_OK;
}

bp_status bp_nn_train_step_check(const bp_train_step *step, const char *who, bp_error *err) {
    if (step->struct_size < sizeof *step)
        return bp_error_set(err, BP_ERR_ABI, "%s: bp_train_step of %u bytes, expected %zu", who,
                            (unsigned)step->struct_size, sizeof *step);
    if (!(step->mask_t_prob >= 0 && step->mask_t_prob < 1 && step->mask_f_prob >= 0 && step->mask_f_prob < 1 &&
          step->specaug_time >= 0 && step->specaug_freq >= 0 && step->drop_path < 1))
        return bp_error_set(err, BP_ERR_INVALID,
                            "%s: step needs 0 <= mask probabilities < 1, SpecAugment widths >= 0, drop_path < 1",
                            who);
    return BP_OK;
}

int bp_nn_precision_bf16(const bp_params *params) {
    const char *prec = bp_params_string(params, "precision");
    return prec && strcmp(prec, "bf16") == 0;
}
