/* batpipe — the plugin registry: finding, loading, checking and creating
 * components.
 *
 * Search path, in order (the first plugin offering a kind+name wins, later
 * ones are listed as shadowed):
 *   1. the directories in BATPIPE_PLUGIN_PATH (colon-separated);
 *   2. the plugin directory next to the running executable
 *      (<bindir>/../lib/batpipe/plugins, same layout in the build tree);
 *   3. the compiled-in install directory.
 * Every *.so in those directories is loaded with dlopen(RTLD_NOW|RTLD_LOCAL);
 * a file that fails (no entry symbol, wrong ABI, unresolved symbols) is
 * recorded as a problem naming the file and is not used. */
#ifndef BATPIPE_REGISTRY_H
#define BATPIPE_REGISTRY_H

#include <stdint.h>

#include "error.h"
#include "host.h"
#include "ops.h"
#include "params.h"
#include "plugin.h"

BP_EXTERN_C_BEGIN

typedef struct bp_registry bp_registry;

/* A loaded plugin file. */
typedef struct bp_plugin_info {
    const char *path;
    const char *plugin_name;
    const char *plugin_version;
    const char *license;
    uint16_t abi_major, abi_minor;
    int32_t score;   /* 0: cannot run on this machine (listed, not used) */
} bp_plugin_info;

/* One component offered by a loaded plugin. */
typedef struct bp_component_info {
    int32_t kind;                  /* bp_kind */
    const bp_descriptor *desc;     /* owned by the plugin */
    const bp_plugin_info *plugin;  /* owned by the registry */
    uint32_t index;                /* index in its factory */
    int32_t shadowed;              /* 1: an earlier plugin offers the same kind+name */
} bp_component_info;

/* A file that could not be used, and why. */
typedef struct bp_plugin_problem {
    const char *path;
    const char *message;
} bp_plugin_problem;

/* `host` is borrowed and must outlive the registry. */
BP_API bp_status bp_registry_new(const bp_host *host, bp_registry **out, bp_error *err);
/* Unloads every plugin; every instance must have been destroyed. */
BP_API void bp_registry_free(bp_registry *reg);

/* Add the default search path (see above); `exe_path` is the running
 * program's path (argv[0] or /proc/self/exe), may be NULL. */
BP_API bp_status bp_registry_scan_default(bp_registry *reg, const char *exe_path, bp_error *err);
/* Scan one directory (missing directories are ignored). */
BP_API bp_status bp_registry_scan_dir(bp_registry *reg, const char *dir, bp_error *err);
/* Load one file; on failure the error names the file and the problem
 * (also recorded as a problem). */
BP_API bp_status bp_registry_load_file(bp_registry *reg, const char *path, bp_error *err);

BP_API uint32_t bp_registry_count(const bp_registry *reg);
BP_API const bp_component_info *bp_registry_at(const bp_registry *reg, uint32_t i);
BP_API uint32_t bp_registry_problem_count(const bp_registry *reg);
BP_API bp_plugin_problem bp_registry_problem_at(const bp_registry *reg, uint32_t i);
/* The searched directories, in order. */
BP_API uint32_t bp_registry_dir_count(const bp_registry *reg);
BP_API const char *bp_registry_dir_at(const bp_registry *reg, uint32_t i);

/* The usable (non-shadowed, score > 0) component of a kind and name, or NULL. */
BP_API const bp_component_info *bp_registry_find(const bp_registry *reg, int32_t kind, const char *name);
/* "melipd, mel, fbank": the usable names of a kind, for messages. */
BP_API const char *bp_registry_choices(const bp_registry *reg, int32_t kind, char *buf, size_t cap);

/* Threads given to components created from now on (host->n_threads);
 * n <= 0 means all online CPUs. */
BP_API void bp_registry_set_threads(bp_registry *reg, int32_t n);
BP_API int32_t bp_registry_threads(const bp_registry *reg);
/* The host given to plugins (the application's callbacks, with defaults
 * filled in for those it left NULL). */
BP_API const bp_host *bp_registry_host(const bp_registry *reg);

/* --- parameters ----------------------------------------------------------- */

typedef struct bp_paramset bp_paramset; /* owns a bp_params and its strings */

/* Build validated parameters from "key=value" strings (value in config
 * syntax; a bare word is taken as a string). Unknown keys, wrong types,
 * out-of-range values and missing required parameters are errors naming the
 * key and listing the valid ones. */
BP_API bp_status bp_paramset_from_strings(const bp_descriptor *desc, const char *const *kv, uint32_t n,
                                          bp_paramset **out, bp_error *err);
BP_API const bp_params *bp_paramset_params(const bp_paramset *ps);
BP_API void bp_paramset_free(bp_paramset *ps);

/* --- instances ------------------------------------------------------------ */

/* Create a component; *instance is the kind's struct (see plugin.h). The
 * host passed to the plugin is the registry's, with `backend` and `n_threads`
 * taken from `backend` (may be NULL). `params` must outlive the instance. */
BP_API bp_status bp_registry_create(bp_registry *reg, const bp_component_info *c, const bp_params *params,
                                    bp_backend *backend, void **instance, bp_error *err);
/* Make a backend handle from the backend component `name` ("cpu", "cuda"). */
BP_API bp_status bp_registry_create_backend(bp_registry *reg, const char *name, const bp_params *params,
                                            bp_backend **out, bp_error *err);

/* --- validation ------------------------------------------------------------ */

/* Exercise a plugin file the way the host does (load, ABI, descriptors,
 * parameter declarations and defaults, create/destroy with defaults where
 * possible, spec negotiation for stages) and report every problem through
 * `report` (one call per line; ok = 1 for a passed check). Returns the number
 * of problems found, or a negative status if the file could not be loaded. */
typedef void (*bp_validate_report_fn)(void *user, int ok, const char *line);
BP_API int32_t bp_registry_validate_file(bp_registry *reg, const char *path, bp_validate_report_fn report,
                                         void *user);

BP_EXTERN_C_END

#endif /* BATPIPE_REGISTRY_H */
