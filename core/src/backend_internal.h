/* Internal: the core's backend handle. */
#ifndef BP_BACKEND_INTERNAL_H
#define BP_BACKEND_INTERNAL_H

#include "batpipe/ops.h"

struct bp_backend {
    bp_backend_impl *impl; /* owned */
};

#endif
