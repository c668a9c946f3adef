/* batpipe — the plugin entry point, factories and component descriptors.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * `bp_entry` (BP_ENTRY_SYMBOL), a const bp_plugin_entry. Everything else in
 * the .so should be hidden (-fvisibility=hidden). The host:
 *   1. dlopens the file (RTLD_NOW | RTLD_LOCAL) and looks up `bp_entry`;
 *   2. checks struct_size and the ABI version: another major, or a newer
 *      minor than the host's, is rejected with a message naming the file and
 *      both versions;
 *   3. calls `score` (if any): 0 means "cannot run on this machine" (e.g. a
 *      CUDA backend without a GPU) and the plugin is listed but not used;
 *   4. calls `init` once (if any);
 *   5. asks `get_factory(kind id)` for each kind; each factory lists
 *      descriptors (name, version, parameters) and creates instances;
 *   6. calls `deinit` once before unloading.
 *
 * Ownership: the entry, factories, descriptors and parameter specs are static
 * data owned by the plugin and valid while it is loaded. Instances are created
 * by `create` and released only through their own `destroy`. */
#ifndef BATPIPE_PLUGIN_H
#define BATPIPE_PLUGIN_H

#include <stdint.h>

#include "error.h"
#include "host.h"
#include "params.h"
#include "version.h"

BP_EXTERN_C_BEGIN

#define BP_ENTRY_SYMBOL "bp_entry"

/* Factory ids: one per kind; the number is the kind's own interface version. */
#define BP_KIND_FRONTEND_ID "batpipe.frontend/1"
#define BP_KIND_ENCODER_ID "batpipe.encoder/1"
#define BP_KIND_PROJECTOR_ID "batpipe.projector/1"
#define BP_KIND_LLM_ID "batpipe.llm/1"
#define BP_KIND_METRIC_ID "batpipe.metric/1"
#define BP_KIND_BACKEND_ID "batpipe.backend/1"
#define BP_KIND_SIMULATOR_ID "batpipe.simulator/1"
#define BP_KIND_DATASET_ID "batpipe.dataset/1"

typedef enum bp_kind {
    BP_KIND_FRONTEND = 0,
    BP_KIND_ENCODER,
    BP_KIND_PROJECTOR,
    BP_KIND_LLM,
    BP_KIND_METRIC,
    BP_KIND_BACKEND,
    BP_KIND_SIMULATOR,
    BP_KIND_DATASET,
    BP_KIND_COUNT
} bp_kind;

/* Static description of one component: what `batpipe plugins NAME` prints and
 * what configs are validated against. */
typedef struct bp_descriptor {
    uint32_t struct_size;          /* sizeof(bp_descriptor) */
    const char *name;              /* [a-z0-9_]+, unique within its kind */
    const char *version;           /* version of this component, "1.0.0" */
    const char *description;       /* one line */
    const char *reference;         /* what it reproduces or was checked against; may be NULL */
    const bp_param_spec *params;   /* declared parameters (see params.h); may be NULL when n_params = 0 */
    uint32_t n_params;
} bp_descriptor;

/* The components of one kind in this plugin. */
typedef struct bp_factory {
    uint32_t struct_size;                      /* sizeof(bp_factory) */
    uint32_t count;                            /* number of components */
    const bp_descriptor *const *descriptors;   /* [count] */
    /* [main-thread] Create component `index` with validated `params`.
     * On success *instance points to the kind's instance struct (bp_frontend,
     * bp_encoder, bp_projector: bp_stage; bp_llm; bp_metric; bp_backend_impl;
     * bp_simulator; bp_dataset), owned by the caller, released through its
     * `destroy`. Creation should be cheap except where it must load weights.
     * `params` and `host` are borrowed and stay valid until destroy. */
    bp_status (*create)(const bp_host *host, uint32_t index, const bp_params *params, void **instance,
                        bp_error *err);
} bp_factory;

typedef struct bp_plugin_entry {
    uint32_t struct_size;       /* sizeof(bp_plugin_entry) */
    uint16_t abi_major;         /* BP_ABI_MAJOR the plugin was built against */
    uint16_t abi_minor;         /* BP_ABI_MINOR the plugin was built against */
    const char *plugin_name;    /* the library's name, "melipd" */
    const char *plugin_version; /* "1.0.0" */
    const char *license;        /* SPDX id, "MIT" */

    /* [main-thread, optional] 0 = cannot run on this machine, >0 = can
     * (higher is better when several plugins offer the same component). */
    int32_t (*score)(void);
    /* [main-thread, optional] Called once after loading, before any factory. */
    bp_status (*init)(const bp_host *host, bp_error *err);
    /* [main-thread, optional] Called once before unloading, after every instance is destroyed. */
    void (*deinit)(void);
    /* [main-thread] The factory for a kind id (BP_KIND_*_ID), or NULL. */
    const bp_factory *(*get_factory)(const char *kind_id);
} bp_plugin_entry;

/* Fill in the version fields of an entry: use as
 *   BP_PLUGIN_EXPORT const bp_plugin_entry bp_entry = { BP_PLUGIN_ENTRY_HEAD, "name", ... }; */
#define BP_PLUGIN_ENTRY_HEAD sizeof(bp_plugin_entry), BP_ABI_MAJOR, BP_ABI_MINOR

static inline const char *bp_kind_name(int32_t k) {
    static const char *const names[BP_KIND_COUNT] = {"frontend", "encoder", "projector", "llm",
                                                     "metric",   "backend", "simulator", "dataset"};
    return (k >= 0 && k < BP_KIND_COUNT) ? names[k] : "?";
}

static inline const char *bp_kind_id(int32_t k) {
    static const char *const ids[BP_KIND_COUNT] = {
        BP_KIND_FRONTEND_ID, BP_KIND_ENCODER_ID, BP_KIND_PROJECTOR_ID, BP_KIND_LLM_ID,
        BP_KIND_METRIC_ID,   BP_KIND_BACKEND_ID, BP_KIND_SIMULATOR_ID, BP_KIND_DATASET_ID};
    return (k >= 0 && k < BP_KIND_COUNT) ? ids[k] : NULL;
}

BP_EXTERN_C_END

#endif /* BATPIPE_PLUGIN_H */
