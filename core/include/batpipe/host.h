/* batpipe — what the host offers to plugins.
 *
 * A bp_host is handed to a plugin's init and to every create call. It is
 * owned by the host and outlives every component created with it. */
#ifndef BATPIPE_HOST_H
#define BATPIPE_HOST_H

#include <stdint.h>

#include "error.h"

BP_EXTERN_C_BEGIN

typedef enum bp_log_level {
    BP_LOG_ERROR = 0,
    BP_LOG_WARN = 1,
    BP_LOG_INFO = 2,
    BP_LOG_DEBUG = 3
} bp_log_level;

struct bp_backend;

typedef struct bp_host {
    uint32_t struct_size;    /* sizeof(bp_host) */
    uint16_t abi_major;      /* BP_ABI_MAJOR of the host */
    uint16_t abi_minor;      /* BP_ABI_MINOR of the host */
    const char *name;        /* "batpipe" */
    const char *version;     /* BP_VERSION_STRING of the host */
    void *host_data;         /* reserved for the host */

    /* [thread-safe] Report something to the user. `source` is the component
     * name ("melipd"); `msg` is one line without a trailing newline. Errors
     * that make a call fail go into its bp_error instead. */
    void (*log)(const struct bp_host *host, int32_t level, const char *source, const char *msg);

    /* [thread-safe] Non-zero once the user asked to stop (Ctrl-C). Long work
     * should poll it and return BP_ERR_CANCELLED. */
    int32_t (*cancelled)(const struct bp_host *host);

    /* [main-thread] Progress of long work inside one call (loading weights,
     * rendering): `done` of `total` units (total 0 = unknown). May be NULL. */
    void (*progress)(const struct bp_host *host, const char *what, uint64_t done, uint64_t total);

    /* [thread-safe] Host extensions by versioned id ("batpipe.x/1"); NULL if
     * unsupported. The returned table is owned by the host. */
    const void *(*get_extension)(const struct bp_host *host, const char *id);

    /* The compute backend of the pipeline (NULL when the pipeline has none).
     * Components that compute through the core's op interface use it. */
    struct bp_backend *backend;

    /* How many threads a component may use for its own work (>= 1). */
    int32_t n_threads;
} bp_host;

/* printf-style logging helper for plugins (no libbatpipe needed). */
static inline BP_PRINTF(4, 5) void bp_logf(const bp_host *host, int32_t level, const char *source, const char *fmt, ...) {
    if (!host || !host->log) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    host->log(host, level, source, buf);
}

BP_EXTERN_C_END

#endif /* BATPIPE_HOST_H */
