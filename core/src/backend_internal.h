/* Internal: the core's backend handle. */
#ifndef BP_BACKEND_INTERNAL_H
#define BP_BACKEND_INTERNAL_H

#include "batpipe/ops.h"

struct bp_paramset;

struct bp_backend {
    bp_backend_impl *impl;              /* owned */
    struct bp_paramset *owned_params;   /* params the impl was created with, when the core made them */
};

#endif
