/* Link-time stand-ins for the two ops.c functions that safetensors.c (the
 * writer's host check) and tensor.c reference. The fuzz binaries compile
 * only the parsers and their helpers, not ops.c, whose dependencies reach
 * the registry and the rest of the core. The readers never call these: a
 * call traps, which the fuzzer reports. */
#include "batpipe/ops.h"

int bp_backend_is_host(const bp_backend *be) {
    (void)be;
    __builtin_trap();
}

const char *bp_backend_name(const bp_backend *be) {
    (void)be;
    __builtin_trap();
}
