/* batpipe — the stage interface shared by frontends, encoders and projectors.
 *
 * A stage turns one input tensor into one main output tensor and, on
 * request, named intermediates. Its life:
 *
 *   create (factory)            [main-thread] cheap; parameters are validated
 *   input_spec                  [main-thread] what it needs on its input
 *   prepare(input spec)         [main-thread] fixes the input, describes the
 *                               outputs; at load time with the negotiated spec
 *                               (dims may be BP_DIM_ANY), and again whenever the
 *                               concrete input shape changes
 *   process(input) ...          [worker-thread] one item; no allocation needed
 *                               for outputs: the host allocates them from the
 *                               shapes `prepare` gave for this input
 *   destroy                     [main-thread]
 *
 * One instance is used by one thread at a time. A stage never exits, aborts
 * or prints; it returns a status and fills the bp_error, naming the problem
 * (e.g. "input has 1 channel, melipd needs 2"). */
#ifndef BATPIPE_STAGE_H
#define BATPIPE_STAGE_H

#include <stdint.h>

#include "error.h"
#include "spec.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

#define BP_MAX_OUTPUTS 16

typedef struct bp_stage bp_stage;

struct bp_stage {
    uint32_t struct_size; /* sizeof(bp_stage) as compiled by the plugin */
    void *self;           /* the plugin's private state */

    /* Fill `want` (pre-set to all wildcards by the host) with what this
     * stage accepts on its input. */
    bp_status (*input_spec)(bp_stage *st, bp_spec *want, bp_error *err);

    /* Given the input spec, describe the outputs: write up to *n_outputs
     * (capacity, at most BP_MAX_OUTPUTS) ports and set *n_outputs to the
     * count. outputs[0] is the main output that flows to the next stage;
     * the others should be `optional` intermediates. Output names are fixed
     * for the life of the instance. */
    bp_status (*prepare)(bp_stage *st, const bp_spec *input, bp_port *outputs, uint32_t *n_outputs,
                         bp_error *err);

    /* Compute one item. `input` is borrowed for the call and matches the spec
     * given to the last `prepare`. outputs[i] were allocated by the host with
     * the shapes of that `prepare` (host memory for frontends; the pipeline's
     * backend for encoders and projectors when it has one); outputs[i] is
     * NULL when output i was not requested (never for i = 0). */
    bp_status (*process)(bp_stage *st, const bp_tensor *input, bp_tensor *const *outputs, uint32_t n_outputs,
                         bp_error *err);

    /* Optional: a stage extension by versioned id (e.g. a training
     * interface), or NULL. Owned by the stage. */
    const void *(*get_extension)(bp_stage *st, const char *id);

    void (*destroy)(bp_stage *st);
};

BP_EXTERN_C_END

#endif /* BATPIPE_STAGE_H */
