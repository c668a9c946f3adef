/* Parameter validation: a config section (or "key=value" strings) checked
 * against a component's declared parameters, defaults filled in. */
#include "paramset.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct bp_paramset {
    bp_params params;
    bp_param_value *values;
    /* everything the values point to */
    char **strings;
    size_t n_strings, cap_strings;
    void **blocks;
    size_t n_blocks, cap_blocks;
};

const bp_param_spec *bp_desc_param(const bp_descriptor *d, uint32_t i) {
    if (!d->params || i >= d->n_params) return NULL;
    uint32_t stride = d->params[0].struct_size;
    if (stride < offsetof(bp_param_spec, help) + sizeof(const char *)) return NULL;
    return (const bp_param_spec *)((const char *)d->params + (size_t)i * stride);
}

static char *keep_string(bp_paramset *ps, const char *s) {
    if (bp_grow((void **)&ps->strings, &ps->cap_strings, ps->n_strings + 1, sizeof(char *)) != 0) return NULL;
    char *c = bp_strdup(s);
    if (c) ps->strings[ps->n_strings++] = c;
    return c;
}

static void *keep_block(bp_paramset *ps, size_t bytes) {
    if (bp_grow((void **)&ps->blocks, &ps->cap_blocks, ps->n_blocks + 1, sizeof(void *)) != 0) return NULL;
    void *b = calloc(1, bytes ? bytes : 1);
    if (b) ps->blocks[ps->n_blocks++] = b;
    return b;
}

void bp_paramset_free(bp_paramset *ps) {
    if (!ps) return;
    for (size_t i = 0; i < ps->n_strings; i++) free(ps->strings[i]);
    for (size_t i = 0; i < ps->n_blocks; i++) free(ps->blocks[i]);
    free(ps->strings);
    free(ps->blocks);
    free(ps->values);
    free(ps);
}

const bp_params *bp_paramset_params(const bp_paramset *ps) { return &ps->params; }

static const char *type_word(int32_t t) {
    switch (t) {
    case BP_PARAM_BOOL: return "a boolean (true or false)";
    case BP_PARAM_INT: return "an integer";
    case BP_PARAM_FLOAT: return "a number";
    case BP_PARAM_STRING: return "a string";
    case BP_PARAM_PATH: return "a path (string)";
    case BP_PARAM_FLOAT_LIST: return "a list of numbers";
    case BP_PARAM_STRING_LIST: return "a list of strings";
    default: return "an unknown type";
    }
}

static int has_range(const bp_param_spec *s) { return s->min <= s->max; }

static int choice_ok(const char *choices, const char *v) {
    if (!choices) return 1;
    size_t n = strlen(v);
    const char *p = choices;
    while (*p) {
        size_t len = strcspn(p, "|");
        if (len == n && strncmp(p, v, n) == 0) return 1;
        p += len;
        if (*p == '|') p++;
    }
    return 0;
}

static int is_number(const config_setting_t *s) {
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 || t == CONFIG_TYPE_FLOAT;
}

/* Convert one setting into a value; `where` names it for messages. */
static bp_status convert(bp_paramset *ps, const bp_param_spec *sp, const config_setting_t *s, const char *where,
                         const char *label, const char *base_dir, bp_param_value *v, bp_error *err) {
    int t = config_setting_type(s);
    const char *got = bp_config_type_phrase(t);
    switch (sp->type) {
    case BP_PARAM_BOOL:
        if (t != CONFIG_TYPE_BOOL) goto wrong_type;
        v->i = config_setting_get_bool(s) ? 1 : 0;
        return BP_OK;
    case BP_PARAM_INT:
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) goto wrong_type;
        v->i = config_setting_get_int64(s);
        if (has_range(sp) && ((double)v->i < sp->min || (double)v->i > sp->max))
            return bp_error_set(err, BP_ERR_INVALID, "%s: %s: %s = %lld is outside the range [%g, %g]", where, label,
                                sp->name, (long long)v->i, sp->min, sp->max);
        return BP_OK;
    case BP_PARAM_FLOAT:
        if (!is_number(s)) goto wrong_type;
        v->f = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s) : (double)config_setting_get_int64(s);
        if (!isfinite(v->f))
            return bp_error_set(err, BP_ERR_INVALID, "%s: %s: %s is not a finite number", where, label, sp->name);
        if (has_range(sp) && (v->f < sp->min || v->f > sp->max))
            return bp_error_set(err, BP_ERR_INVALID, "%s: %s: %s = %g is outside the range [%g, %g]", where, label,
                                sp->name, v->f, sp->min, sp->max);
        return BP_OK;
    case BP_PARAM_STRING:
    case BP_PARAM_PATH: {
        if (t != CONFIG_TYPE_STRING) goto wrong_type;
        const char *str = config_setting_get_string(s);
        if (sp->type == BP_PARAM_STRING && !choice_ok(sp->choices, str))
            return bp_error_set(err, BP_ERR_INVALID, "%s: %s: %s = \"%s\" is not one of: %s", where, label, sp->name,
                                str, sp->choices);
        if (sp->type == BP_PARAM_PATH && str[0] && str[0] != '/') {
            char *full = bp_path_join(base_dir, str);
            v->s = full ? keep_string(ps, full) : NULL;
            free(full);
        } else {
            v->s = keep_string(ps, str);
        }
        if (!v->s) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        return BP_OK;
    }
    case BP_PARAM_FLOAT_LIST: {
        if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) goto wrong_type;
        int n = config_setting_length(s);
        double *list = keep_block(ps, (size_t)n * sizeof(double));
        if (!list) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        for (int i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (!is_number(e))
                return bp_error_set(err, BP_ERR_INVALID, "%s: %s: %s[%d] is %s, expected a number", where, label,
                                    sp->name, i, bp_config_type_phrase(config_setting_type(e)));
            list[i] = config_setting_type(e) == CONFIG_TYPE_FLOAT ? config_setting_get_float(e)
                                                                   : (double)config_setting_get_int64(e);
            if (!isfinite(list[i]) || (has_range(sp) && (list[i] < sp->min || list[i] > sp->max)))
                return bp_error_set(err, BP_ERR_INVALID, "%s: %s: %s[%d] = %g is outside the range [%g, %g]", where,
                                    label, sp->name, i, list[i], sp->min, sp->max);
        }
        v->list = list;
        v->count = (uint32_t)n;
        return BP_OK;
    }
    case BP_PARAM_STRING_LIST: {
        if (t == CONFIG_TYPE_STRING) { /* one string is a list of one */
            const char **strs = keep_block(ps, sizeof(char *));
            if (!strs || !(strs[0] = keep_string(ps, config_setting_get_string(s))))
                return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
            v->strs = strs;
            v->count = 1;
            return BP_OK;
        }
        if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) goto wrong_type;
        int n = config_setting_length(s);
        const char **strs = keep_block(ps, (size_t)(n + 1) * sizeof(char *));
        if (!strs) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        for (int i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_STRING)
                return bp_error_set(err, BP_ERR_INVALID, "%s: %s: %s[%d] is %s, expected a string", where, label,
                                    sp->name, i, bp_config_type_phrase(config_setting_type(e)));
            if (!(strs[i] = keep_string(ps, config_setting_get_string(e))))
                return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        }
        v->strs = strs;
        v->count = (uint32_t)n;
        return BP_OK;
    }
    default:
        return bp_error_set(err, BP_ERR_INTERNAL, "%s: parameter %s has unknown type %d", label, sp->name, sp->type);
    }
wrong_type:
    return bp_error_set(err, BP_ERR_INVALID, "%s: %s: %s must be %s, got %s", where, label, sp->name,
                        type_word(sp->type), got);
}

static int valid_name(const char *n) {
    if (!n || !n[0] || strlen(n) > 47) return 0;
    for (const char *p = n; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_')) return 0;
    return 1;
}

bp_status bp_desc_check_params(const bp_descriptor *d, const char *label, bp_error *err) {
    if (d->n_params && !bp_desc_param(d, 0))
        return bp_error_set(err, BP_ERR_ABI, "%s: parameter array is missing or its struct_size (%u) is too small",
                            label, d->params ? d->params[0].struct_size : 0);
    for (uint32_t i = 0; i < d->n_params; i++) {
        const bp_param_spec *s = bp_desc_param(d, i);
        if (!valid_name(s->name))
            return bp_error_set(err, BP_ERR_ABI, "%s: parameter %u has an invalid name '%s' (want [a-z0-9_]+)", label,
                                i, s->name ? s->name : "(null)");
        if (s->type < BP_PARAM_BOOL || s->type > BP_PARAM_STRING_LIST)
            return bp_error_set(err, BP_ERR_ABI, "%s: parameter '%s' has unknown type %d", label, s->name, s->type);
        if (!s->help || !s->help[0])
            return bp_error_set(err, BP_ERR_ABI, "%s: parameter '%s' has no help text", label, s->name);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(bp_desc_param(d, j)->name, s->name) == 0)
                return bp_error_set(err, BP_ERR_ABI, "%s: parameter '%s' is declared twice", label, s->name);
        if (strcmp(s->name, "type") == 0)
            return bp_error_set(err, BP_ERR_ABI, "%s: 'type' is reserved and cannot be a parameter", label);
    }
    /* Every default must parse and satisfy its own type, range and choices. */
    for (uint32_t i = 0; i < d->n_params; i++) {
        const bp_param_spec *s = bp_desc_param(d, i);
        if (!s->default_value) continue;
        bp_descriptor one = *d;
        one.params = s;
        one.n_params = 1;
        bp_paramset *ps = NULL;
        bp_status st = bp_paramset_build(&one, label, NULL, NULL, NULL, &ps, err);
        bp_paramset_free(ps);
        if (st != BP_OK) {
            bp_error_prefix(err, "bad default: ");
            return st == BP_ERR_NOMEM ? st : BP_ERR_ABI;
        }
    }
    return BP_OK;
}

static void list_names(const bp_descriptor *d, char *buf, size_t cap) {
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < d->n_params && off < cap; i++) {
        int w = snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", bp_desc_param(d, i)->name);
        if (w > 0) off += (size_t)w;
    }
    if (!d->n_params) snprintf(buf, cap, "(none)");
}

static int is_reserved(const char *const *reserved, const char *name) {
    for (const char *const *r = reserved; r && *r; r++)
        if (strcmp(*r, name) == 0) return 1;
    return 0;
}

bp_status bp_paramset_build(const bp_descriptor *d, const char *label, bp_config *cfg, const config_setting_t *group,
                            const char *const *reserved, bp_paramset **out, bp_error *err) {
    *out = NULL;
    if (d->n_params && !bp_desc_param(d, 0))
        return bp_error_set(err, BP_ERR_ABI, "%s: malformed parameter declarations", label);
    char where[600];
    /* Unknown keys first: they are the most common typo. */
    if (group) {
        for (int i = 0; i < config_setting_length(group); i++) {
            const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
            const char *name = config_setting_name(m);
            if (is_reserved(reserved, name)) continue;
            uint32_t k;
            for (k = 0; k < d->n_params; k++)
                if (strcmp(bp_desc_param(d, k)->name, name) == 0) break;
            if (k < d->n_params) continue;
            const char *best = NULL;
            int best_d = 3;
            for (k = 0; k < d->n_params; k++) {
                int e = bp_edit_distance(name, bp_desc_param(d, k)->name);
                if (e < best_d) {
                    best_d = e;
                    best = bp_desc_param(d, k)->name;
                }
            }
            char names[700];
            list_names(d, names, sizeof names);
            bp_config_where(cfg, m, where, sizeof where);
            if (best)
                return bp_error_set(err, BP_ERR_INVALID, "%s: %s: unknown parameter '%s' (did you mean '%s'?); valid: %s",
                                    where, label, name, best, names);
            return bp_error_set(err, BP_ERR_INVALID, "%s: %s: unknown parameter '%s'; valid: %s", where, label, name,
                                names);
        }
    }
    bp_paramset *ps = calloc(1, sizeof *ps);
    if (!ps) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    ps->values = calloc(d->n_params ? d->n_params : 1, sizeof *ps->values);
    if (!ps->values) {
        free(ps);
        return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    ps->params.struct_size = sizeof ps->params;
    ps->params.count = d->n_params;
    ps->params.values = ps->values;
    ps->params.section = label;
    bp_status st = BP_OK;
    for (uint32_t i = 0; i < d->n_params && st == BP_OK; i++) {
        const bp_param_spec *sp = bp_desc_param(d, i);
        bp_param_value *v = &ps->values[i];
        v->name = sp->name;
        v->type = sp->type;
        const config_setting_t *m = group ? config_setting_get_member(group, sp->name) : NULL;
        if (m) {
            bp_config_where(cfg, m, where, sizeof where);
            v->from_config = 1;
            v->origin = keep_string(ps, where);
            st = convert(ps, sp, m, where, label, bp_config_base_dir(cfg, m), v, err);
        } else if (sp->default_value) {
            config_t *scratch;
            config_setting_t *dv;
            snprintf(where, sizeof where, "default of %s", sp->name);
            v->origin = keep_string(ps, "default");
            st = bp_config_parse_value(sp->default_value, 0, &scratch, &dv, err);
            if (st == BP_OK) {
                st = convert(ps, sp, dv, "default", label, ".", v, err);
                config_destroy(scratch);
                free(scratch);
            } else {
                bp_error_prefix(err, "%s: default of %s: ", label, sp->name);
            }
        } else {
            st = bp_error_set(err, BP_ERR_INVALID, "%s%s%s: missing required parameter '%s' (%s: %s)",
                              group ? bp_config_where(cfg, group, where, sizeof where) : "",
                              group ? ": " : "", label, sp->name, type_word(sp->type), sp->help);
        }
        if (st == BP_OK && !v->origin) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    }
    if (st != BP_OK) {
        bp_paramset_free(ps);
        return st;
    }
    *out = ps;
    return BP_OK;
}

bp_status bp_paramset_from_strings(const bp_descriptor *desc, const char *const *kv, uint32_t n, bp_paramset **out,
                                   bp_error *err) {
    *out = NULL;
    bp_config *cfg;
    char label[160];
    snprintf(label, sizeof label, "parameters of %s", desc->name ? desc->name : "?");
    bp_status st = bp_config_load_text("", label, ".", &cfg, err);
    if (st != BP_OK) return st;
    for (uint32_t i = 0; i < n && st == BP_OK; i++) st = bp_config_apply_override(cfg, kv[i], err);
    if (st == BP_OK) st = bp_paramset_build(desc, desc->name ? desc->name : "?", cfg, bp_config_root(cfg), NULL, out, err);
    bp_config_free(cfg);
    return st;
}

bp_status bp_paramset_write_back(const bp_paramset *ps, config_setting_t *group, bp_error *err) {
    for (uint32_t i = 0; i < ps->params.count; i++) {
        const bp_param_value *v = &ps->values[i];
        if (config_setting_get_member(group, v->name)) config_setting_remove(group, v->name);
        config_setting_t *s = NULL;
        int ok = CONFIG_FALSE;
        switch (v->type) {
        case BP_PARAM_BOOL:
            s = config_setting_add(group, v->name, CONFIG_TYPE_BOOL);
            ok = s && config_setting_set_bool(s, (int)v->i);
            break;
        case BP_PARAM_INT:
            s = config_setting_add(group, v->name, CONFIG_TYPE_INT64);
            ok = s && config_setting_set_int64(s, v->i);
            break;
        case BP_PARAM_FLOAT:
            s = config_setting_add(group, v->name, CONFIG_TYPE_FLOAT);
            ok = s && config_setting_set_float(s, v->f);
            break;
        case BP_PARAM_STRING:
        case BP_PARAM_PATH:
            s = config_setting_add(group, v->name, CONFIG_TYPE_STRING);
            ok = s && config_setting_set_string(s, v->s);
            break;
        case BP_PARAM_FLOAT_LIST:
            s = config_setting_add(group, v->name, CONFIG_TYPE_ARRAY);
            ok = s != NULL;
            for (uint32_t k = 0; ok && k < v->count; k++)
                ok = config_setting_set_float_elem(s, -1, v->list[k]) != NULL;
            break;
        case BP_PARAM_STRING_LIST:
            s = config_setting_add(group, v->name, CONFIG_TYPE_ARRAY);
            ok = s != NULL;
            for (uint32_t k = 0; ok && k < v->count; k++)
                ok = config_setting_set_string_elem(s, -1, v->strs[k]) != NULL;
            break;
        default: break;
        }
        if (!ok) return bp_error_set(err, BP_ERR_INTERNAL, "cannot record parameter %s in the resolved config", v->name);
    }
    return BP_OK;
}
