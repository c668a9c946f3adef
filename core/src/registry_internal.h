/* Internal: registry access for the plugin validator. */
#ifndef BP_REGISTRY_INTERNAL_H
#define BP_REGISTRY_INTERNAL_H

#include "batpipe/registry.h"

/* Load `path` (if not yet loaded) and return its entry and info. */
bp_status bp_registry_load_entry(bp_registry *r, const char *path, const bp_plugin_entry **entry,
                                 const bp_plugin_info **info, bp_error *err);

#endif
