/* Internal: pipeline config files (libconfig) with includes resolved
 * relative to the including file, command-line overrides at any depth, and
 * file:line origins for every setting. */
#ifndef BP_CONFIG_H
#define BP_CONFIG_H

#include <libconfig.h>

#include "batpipe/error.h"
#include "strbuf.h"

typedef struct bp_config bp_config;

/* Read a config file; `@include "x"` lines are resolved against the
 * directory of the file that contains them (depth ≤ 10, cycles rejected). */
bp_status bp_config_load_file(const char *path, bp_config **out, bp_error *err);
/* Parse config text; `label` names it in messages, `base_dir` resolves
 * includes and relative paths. */
bp_status bp_config_load_text(const char *text, const char *label, const char *base_dir, bp_config **out,
                              bp_error *err);
void bp_config_free(bp_config *c);

/* Apply "a.b.[0].c=value" (value in config syntax; a bare word is a
 * string). Missing groups on the way are created. */
bp_status bp_config_apply_override(bp_config *c, const char *kv, bp_error *err);

config_setting_t *bp_config_root(bp_config *c);
/* "file.cfg:12", "-o a.b=1" or "label:3": where a setting came from. */
const char *bp_config_where(const bp_config *c, const config_setting_t *s, char *buf, size_t cap);
/* The directory relative paths in setting `s` resolve against. */
const char *bp_config_base_dir(const bp_config *c, const config_setting_t *s);
/* The top-level file (or label). */
const char *bp_config_label(const bp_config *c);
/* Serialise the current tree (includes inlined, overrides applied). */
bp_status bp_config_to_text(bp_config *c, bp_sbuf *out, bp_error *err);

/* Parse one value in config syntax into a scratch config; *out_setting is
 * its setting named "v" (owned by *scratch, which the caller destroys with
 * config_destroy + free). */
bp_status bp_config_parse_value(const char *value, int bare_string_ok, config_t **scratch,
                                config_setting_t **out_setting, bp_error *err);
/* Copy a setting (recursively) into `parent` under `name` (NULL for list elements). */
config_setting_t *bp_config_copy_setting(const config_setting_t *src, config_setting_t *parent, const char *name);
/* "an integer", "a float", ... */
const char *bp_config_type_phrase(int type);

#endif
