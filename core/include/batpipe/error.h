/* batpipe — status codes and the error record that carries a message.
 *
 * Every fallible call, in the library and across the plugin ABI, returns a
 * bp_status and fills a caller-owned bp_error with a human-readable message
 * that names the file/stage and what is wrong. Library code never prints.
 * The helpers here are static inline so that plugins need not link
 * libbatpipe to use them. */
#ifndef BATPIPE_ERROR_H
#define BATPIPE_ERROR_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "version.h"

BP_EXTERN_C_BEGIN

typedef enum bp_status {
    BP_OK = 0,
    BP_ERR_INVALID = -1,     /* invalid argument, config value or input data */
    BP_ERR_IO = -2,          /* a file could not be opened, read or written */
    BP_ERR_FORMAT = -3,      /* a file is malformed, truncated or corrupt */
    BP_ERR_NOMEM = -4,       /* an allocation failed */
    BP_ERR_UNSUPPORTED = -5, /* valid but not implemented by this component */
    BP_ERR_SPEC = -6,        /* stages disagree on rate, channels, shape or dtype */
    BP_ERR_ABI = -7,         /* a plugin was built for an incompatible ABI */
    BP_ERR_NOT_FOUND = -8,   /* a plugin, tensor, key or file does not exist */
    BP_ERR_CANCELLED = -9,   /* the user asked to stop */
    BP_ERR_NUMERIC = -10,    /* NaN or infinity where a finite number is needed */
    BP_ERR_DEVICE = -11,     /* no usable device, or a device call failed */
    BP_ERR_INTERNAL = -12    /* a broken invariant: a bug */
} bp_status;

#define BP_ERROR_MSG_MAX 1024

/* Caller-owned. `code` mirrors the returned status; `msg` is NUL-terminated. */
typedef struct bp_error {
    uint32_t struct_size; /* sizeof(bp_error) */
    int32_t code;
    char msg[BP_ERROR_MSG_MAX];
} bp_error;

#define BP_ERROR_INIT {sizeof(bp_error), 0, {0}}

static inline void bp_error_clear(bp_error *err) {
    if (!err) return;
    err->struct_size = sizeof(bp_error);
    err->code = 0;
    err->msg[0] = '\0';
}

static inline const char *bp_status_name(bp_status s) {
    switch (s) {
    case BP_OK: return "ok";
    case BP_ERR_INVALID: return "invalid input";
    case BP_ERR_IO: return "I/O error";
    case BP_ERR_FORMAT: return "malformed file";
    case BP_ERR_NOMEM: return "out of memory";
    case BP_ERR_UNSUPPORTED: return "unsupported";
    case BP_ERR_SPEC: return "spec mismatch";
    case BP_ERR_ABI: return "ABI mismatch";
    case BP_ERR_NOT_FOUND: return "not found";
    case BP_ERR_CANCELLED: return "cancelled";
    case BP_ERR_NUMERIC: return "non-finite value";
    case BP_ERR_DEVICE: return "device error";
    case BP_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

#if defined(__GNUC__) || defined(__clang__)
#define BP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BP_PRINTF(a, b)
#endif

/* Record `code` and a formatted message; returns `code` so that callers can
 * write `return bp_error_set(err, BP_ERR_IO, "%s: cannot open", path);`. */
static inline BP_PRINTF(3, 4) bp_status bp_error_set(bp_error *err, bp_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->struct_size = sizeof(bp_error);
        err->code = (int32_t)code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Prepend context ("features.cfg:12: ") to an existing message. */
static inline BP_PRINTF(2, 3) void bp_error_prefix(bp_error *err, const char *fmt, ...) {
    if (!err) return;
    char head[BP_ERROR_MSG_MAX];
    char old[BP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    size_t h = strlen(head), o = strlen(old);
    if (h > sizeof err->msg - 1) h = sizeof err->msg - 1;
    if (o > sizeof err->msg - 1 - h) o = sizeof err->msg - 1 - h;
    memcpy(err->msg, head, h);
    memcpy(err->msg + h, old, o);
    err->msg[h + o] = '\0';
}

BP_EXTERN_C_END

#endif /* BATPIPE_ERROR_H */
