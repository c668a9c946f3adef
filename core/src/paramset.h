/* Internal: validating a component's config section against its declared
 * parameters and building the bp_params it receives. */
#ifndef BP_PARAMSET_H
#define BP_PARAMSET_H

#include "batpipe/plugin.h"
#include "batpipe/registry.h"
#include "config.h"

/* Parameter spec i of a descriptor, honouring the plugin's struct stride;
 * NULL if the array is malformed. */
const bp_param_spec *bp_desc_param(const bp_descriptor *d, uint32_t i);

/* Check a descriptor's parameter declarations (names, types, defaults,
 * ranges); returns BP_OK or an error naming the first problem. */
bp_status bp_desc_check_params(const bp_descriptor *d, const char *label, bp_error *err);

/* Build params for `d` from `group` (may be NULL: defaults only) of config
 * `cfg`. Keys listed in `reserved` (NULL-terminated) are skipped. `label`
 * names the section in messages ("frontend (melipd)"). */
bp_status bp_paramset_build(const bp_descriptor *d, const char *label, bp_config *cfg, const config_setting_t *group,
                            const char *const *reserved, bp_paramset **out, bp_error *err);

/* Write every parameter value (defaults included) back into `group`, so a
 * serialised config is fully explicit. */
bp_status bp_paramset_write_back(const bp_paramset *ps, config_setting_t *group, bp_error *err);

#endif
