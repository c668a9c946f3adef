/* batpipe — datasets (kind "batpipe.dataset/1"): indexed items of named
 * tensors and strings (audio, labels, question/answer text).
 *
 * Item tensors are host memory owned by the dataset and valid until the next
 * `get` or `destroy`. One thread at a time. */
#ifndef BATPIPE_DATASET_H
#define BATPIPE_DATASET_H

#include <stdint.h>

#include "error.h"
#include "spec.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

#define BP_MAX_ITEM_FIELDS 32

typedef struct bp_item {
    uint32_t struct_size;                     /* sizeof(bp_item) */
    char id[128];                             /* stable id of the item ("scene_000123") */
    uint32_t n_tensors;
    const char *tensor_names[BP_MAX_ITEM_FIELDS];
    const bp_tensor *tensors[BP_MAX_ITEM_FIELDS];
    uint32_t n_strings;
    const char *string_names[BP_MAX_ITEM_FIELDS]; /* "question", "answer", "question_type" */
    const char *strings[BP_MAX_ITEM_FIELDS];
} bp_item;

typedef struct bp_dataset bp_dataset;

struct bp_dataset {
    uint32_t struct_size; /* sizeof(bp_dataset) as compiled by the plugin */
    void *self;

    int64_t (*count)(bp_dataset *ds);
    /* The tensors every item carries (names + specs, e.g. "audio"
     * F32[2, any] @ 32000 Hz); up to *n (capacity), *n set to the count. */
    bp_status (*item_ports)(bp_dataset *ds, bp_port *ports, uint32_t *n, bp_error *err);
    /* Load item `index` (0 ≤ index < count). */
    bp_status (*get)(bp_dataset *ds, int64_t index, bp_item *out, bp_error *err);
    void (*destroy)(bp_dataset *ds);
};

BP_EXTERN_C_END

#endif /* BATPIPE_DATASET_H */
