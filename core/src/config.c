/* Pipeline configs: a preprocessor for @include (resolved relative to the
 * including file, which libconfig 1.5 cannot do by itself), a line map from
 * the combined text back to file:line, command-line overrides at any depth,
 * and serialisation of the resolved tree. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BP_INCLUDE_DEPTH_MAX 10
#define BP_CONFIG_LINES_MAX 65535 /* libconfig 1.5 stores source lines as unsigned short */

typedef struct line_origin {
    uint32_t file;
    uint32_t line;
} line_origin;

typedef struct override_rec {
    const config_setting_t *setting;
    char *text;
} override_rec;

struct bp_config {
    config_t cfg;
    int cfg_ready;
    char *label;
    char **files;      /* files[i]: path as reached (relative to the cwd or absolute) */
    char **file_dirs;  /* directory of files[i] */
    size_t n_files, cap_files, cap_dirs;
    line_origin *lines; /* origin of line i+1 of the combined text */
    size_t n_lines, cap_lines;
    override_rec *overrides;
    size_t n_overrides, cap_overrides;
    char *cwd; /* command-line overrides resolve relative paths against it */
};

/* ------------------------------------------------------------- helpers -- */

static char *read_text_file(const char *path, const char *where, bp_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        bp_error_set(err, BP_ERR_IO, "%s%s: cannot open: %s", where, path, strerror(errno));
        return NULL;
    }
    bp_sbuf b = {0};
    char chunk[8192];
    size_t n;
    int nul = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (memchr(chunk, '\0', n)) {
            nul = 1;
            break;
        }
        bp_sbuf_printf(&b, "%.*s", (int)n, chunk);
    }
    int bad = ferror(f);
    fclose(f);
    if (nul) {
        bp_sbuf_free(&b);
        bp_error_set(err, BP_ERR_FORMAT, "%s%s: not a config file (contains NUL bytes)", where, path);
        return NULL;
    }
    if (bad || b.failed) {
        bp_sbuf_free(&b);
        bp_error_set(err, BP_ERR_IO, "%s%s: read error", where, path);
        return NULL;
    }
    return b.s ? b.s : bp_strdup("");
}

static int add_file(bp_config *c, const char *path, const char *dir) {
    if (bp_grow((void **)&c->files, &c->cap_files, c->n_files + 1, sizeof(char *)) != 0) return -1;
    if (bp_grow((void **)&c->file_dirs, &c->cap_dirs, c->n_files + 1, sizeof(char *)) != 0) return -1;
    c->files[c->n_files] = bp_strdup(path);
    /* directories are kept absolute, so that resolved paths work from anywhere */
    char *d = dir ? bp_strdup(dir) : bp_dirname(path);
    char *real = d ? realpath(d, NULL) : NULL;
    c->file_dirs[c->n_files] = real ? real : d;
    if (real) free(d);
    if (!c->files[c->n_files] || !c->file_dirs[c->n_files]) {
        free(c->files[c->n_files]);
        free(c->file_dirs[c->n_files]);
        return -1;
    }
    return (int)c->n_files++;
}

static int add_line(bp_config *c, uint32_t file, uint32_t line) {
    if (bp_grow((void **)&c->lines, &c->cap_lines, c->n_lines + 1, sizeof(line_origin)) != 0) return -1;
    c->lines[c->n_lines].file = file;
    c->lines[c->n_lines].line = line;
    c->n_lines++;
    return 0;
}

/* Returns 1 when the line is an @include directive (path copied to out,
 * *malformed set when the syntax is wrong), 0 otherwise. */
static int parse_include(const char *line, size_t len, char *out, size_t cap, int *malformed) {
    size_t i = 0;
    *malformed = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (len - i < 8 || strncmp(line + i, "@include", 8) != 0) return 0;
    i += 8;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i >= len || line[i] != '"') {
        *malformed = 1;
        return 1;
    }
    size_t start = ++i;
    while (i < len && line[i] != '"') i++;
    if (i >= len || i == start || i - start >= cap) {
        *malformed = 1;
        return 1;
    }
    memcpy(out, line + start, i - start);
    out[i - start] = '\0';
    return 1;
}

/* ---------------------------------------------------------- preprocess -- */

typedef struct pp_ctx {
    bp_config *c;
    bp_sbuf text;
    char *stack[BP_INCLUDE_DEPTH_MAX + 1]; /* realpaths of the files being expanded */
    int depth;
    bp_error *err;
} pp_ctx;

static bp_status pp_file(pp_ctx *x, const char *path, const char *where);

static bp_status pp_text(pp_ctx *x, const char *text, uint32_t file_idx) {
    bp_config *c = x->c;
    const char *p = text;
    uint32_t lineno = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        char inc[PATH_MAX];
        int malformed;
        if (parse_include(p, len, inc, sizeof inc, &malformed)) {
            if (malformed)
                return bp_error_set(x->err, BP_ERR_INVALID, "%s:%u: malformed @include (expected: @include \"file\")",
                                    c->files[file_idx], lineno);
            char *full = bp_path_join(c->file_dirs[file_idx], inc);
            char where[PATH_MAX + 32];
            snprintf(where, sizeof where, "%s:%u: @include: ", c->files[file_idx], lineno);
            bp_status st = full ? pp_file(x, full, where) : bp_error_set(x->err, BP_ERR_NOMEM, "out of memory");
            free(full);
            if (st != BP_OK) return st;
        } else {
            bp_sbuf_printf(&x->text, "%.*s\n", (int)len, p);
            if (add_line(c, file_idx, lineno) != 0 || x->text.failed)
                return bp_error_set(x->err, BP_ERR_NOMEM, "config: out of memory");
        }
        if (!nl) break;
        p = nl + 1;
    }
    return BP_OK;
}

static bp_status pp_file(pp_ctx *x, const char *path, const char *where) {
    if (x->depth >= BP_INCLUDE_DEPTH_MAX)
        return bp_error_set(x->err, BP_ERR_INVALID, "%sincludes nested deeper than %d levels (%s)", where,
                            BP_INCLUDE_DEPTH_MAX, path);
    char *real = realpath(path, NULL);
    if (!real) return bp_error_set(x->err, BP_ERR_IO, "%s%s: cannot open: %s", where, path, strerror(errno));
    for (int i = 0; i < x->depth; i++) {
        if (strcmp(x->stack[i], real) == 0) {
            bp_sbuf chain = {0};
            for (int k = i; k < x->depth; k++) bp_sbuf_printf(&chain, "%s → ", x->stack[k]);
            bp_sbuf_printf(&chain, "%s", real);
            bp_error_set(x->err, BP_ERR_INVALID, "%sinclude cycle: %s", where, chain.s ? chain.s : real);
            bp_sbuf_free(&chain);
            free(real);
            return BP_ERR_INVALID;
        }
    }
    char *text = read_text_file(path, where, x->err);
    if (!text) {
        free(real);
        return x->err ? (bp_status)x->err->code : BP_ERR_IO;
    }
    int idx = add_file(x->c, path, NULL);
    if (idx < 0) {
        free(real);
        free(text);
        return bp_error_set(x->err, BP_ERR_NOMEM, "config: out of memory");
    }
    x->stack[x->depth++] = real;
    bp_status st = pp_text(x, text, (uint32_t)idx);
    x->depth--;
    free(real);
    free(text);
    return st;
}

static bp_status finish_parse(bp_config *c, pp_ctx *x, bp_error *err) {
    if (c->n_lines > BP_CONFIG_LINES_MAX)
        return bp_error_set(err, BP_ERR_INVALID, "%s: config too long (%zu lines with includes, at most %d)", c->label,
                            c->n_lines, BP_CONFIG_LINES_MAX);
    config_init(&c->cfg);
    c->cfg_ready = 1;
    if (config_read_string(&c->cfg, x->text.s ? x->text.s : "") != CONFIG_TRUE) {
        int line = config_error_line(&c->cfg);
        const char *what = config_error_text(&c->cfg);
        const char *hint = what && strstr(what, "mismatched element type")
                               ? " (an array [...] holds one type: write 1.0 rather than 1 among floats, or use a "
                                 "list ( ... ))"
                               : "";
        if (line >= 1 && (size_t)line <= c->n_lines) {
            line_origin o = c->lines[line - 1];
            return bp_error_set(err, BP_ERR_INVALID, "%s:%u: %s%s", c->files[o.file], o.line,
                                what ? what : "syntax error", hint);
        }
        return bp_error_set(err, BP_ERR_INVALID, "%s: %s%s (at the end of the file)", c->label,
                            what ? what : "syntax error", hint);
    }
    return BP_OK;
}

bp_status bp_config_load_file(const char *path, bp_config **out, bp_error *err) {
    *out = NULL;
    bp_config *c = calloc(1, sizeof *c);
    if (!c) return bp_error_set(err, BP_ERR_NOMEM, "config: out of memory");
    c->label = bp_strdup(path);
    c->cwd = getcwd(NULL, 0);
    pp_ctx x = {.c = c, .err = err};
    bp_status st = c->label ? pp_file(&x, path, "") : bp_error_set(err, BP_ERR_NOMEM, "config: out of memory");
    if (st == BP_OK) st = finish_parse(c, &x, err);
    bp_sbuf_free(&x.text);
    if (st != BP_OK) {
        bp_config_free(c);
        return st;
    }
    *out = c;
    return BP_OK;
}

bp_status bp_config_load_text(const char *text, const char *label, const char *base_dir, bp_config **out,
                              bp_error *err) {
    *out = NULL;
    bp_config *c = calloc(1, sizeof *c);
    if (!c) return bp_error_set(err, BP_ERR_NOMEM, "config: out of memory");
    c->label = bp_strdup(label);
    c->cwd = getcwd(NULL, 0);
    pp_ctx x = {.c = c, .err = err};
    bp_status st = BP_OK;
    int idx = c->label ? add_file(c, label, base_dir ? base_dir : ".") : -1;
    if (idx < 0) st = bp_error_set(err, BP_ERR_NOMEM, "config: out of memory");
    if (st == BP_OK) st = pp_text(&x, text, (uint32_t)idx);
    if (st == BP_OK) st = finish_parse(c, &x, err);
    bp_sbuf_free(&x.text);
    if (st != BP_OK) {
        bp_config_free(c);
        return st;
    }
    *out = c;
    return BP_OK;
}

void bp_config_free(bp_config *c) {
    if (!c) return;
    if (c->cfg_ready) config_destroy(&c->cfg);
    for (size_t i = 0; i < c->n_files; i++) {
        free(c->files[i]);
        free(c->file_dirs[i]);
    }
    free(c->files);
    free(c->file_dirs);
    free(c->lines);
    for (size_t i = 0; i < c->n_overrides; i++) free(c->overrides[i].text);
    free(c->overrides);
    free(c->label);
    free(c->cwd);
    free(c);
}

config_setting_t *bp_config_root(bp_config *c) { return config_root_setting(&c->cfg); }
const char *bp_config_label(const bp_config *c) { return c->label; }

static const override_rec *find_override(const bp_config *c, const config_setting_t *s) {
    for (const config_setting_t *p = s; p; p = config_setting_parent(p))
        for (size_t i = 0; i < c->n_overrides; i++)
            if (c->overrides[i].setting == p) return &c->overrides[i];
    return NULL;
}

const char *bp_config_where(const bp_config *c, const config_setting_t *s, char *buf, size_t cap) {
    const override_rec *o = s ? find_override(c, s) : NULL;
    if (o) {
        snprintf(buf, cap, "-o %s", o->text);
        return buf;
    }
    unsigned line = s ? config_setting_source_line(s) : 0;
    if (line >= 1 && line <= c->n_lines) {
        line_origin lo = c->lines[line - 1];
        snprintf(buf, cap, "%s:%u", c->files[lo.file], lo.line);
    } else {
        snprintf(buf, cap, "%s", c->label);
    }
    return buf;
}

const char *bp_config_base_dir(const bp_config *c, const config_setting_t *s) {
    if (s && find_override(c, s)) return c->cwd ? c->cwd : ".";
    unsigned line = s ? config_setting_source_line(s) : 0;
    if (line >= 1 && line <= c->n_lines) return c->file_dirs[c->lines[line - 1].file];
    return c->n_files ? c->file_dirs[0] : ".";
}

/* --------------------------------------------------------------- values -- */

const char *bp_config_type_phrase(int type) {
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a float";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    default: return "nothing";
    }
}

config_setting_t *bp_config_copy_setting(const config_setting_t *src, config_setting_t *parent, const char *name) {
    int type = config_setting_type(src);
    config_setting_t *dst = config_setting_add(parent, name, type);
    if (!dst) return NULL;
    int ok = CONFIG_TRUE;
    switch (type) {
    case CONFIG_TYPE_INT: ok = config_setting_set_int(dst, config_setting_get_int(src)); break;
    case CONFIG_TYPE_INT64: ok = config_setting_set_int64(dst, config_setting_get_int64(src)); break;
    case CONFIG_TYPE_FLOAT: ok = config_setting_set_float(dst, config_setting_get_float(src)); break;
    case CONFIG_TYPE_BOOL: ok = config_setting_set_bool(dst, config_setting_get_bool(src)); break;
    case CONFIG_TYPE_STRING: ok = config_setting_set_string(dst, config_setting_get_string(src)); break;
    case CONFIG_TYPE_GROUP:
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST:
        for (int i = 0; i < config_setting_length(src); i++) {
            const config_setting_t *e = config_setting_get_elem(src, (unsigned)i);
            if (!bp_config_copy_setting(e, dst, type == CONFIG_TYPE_GROUP ? config_setting_name(e) : NULL))
                return NULL;
        }
        break;
    default: break;
    }
    return ok == CONFIG_TRUE ? dst : NULL;
}

bp_status bp_config_parse_value(const char *value, int bare_string_ok, config_t **scratch,
                                config_setting_t **out_setting, bp_error *err) {
    *scratch = NULL;
    *out_setting = NULL;
    config_t *t = malloc(sizeof *t);
    if (!t) return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    config_init(t);
    char *text = bp_strdupf("v = %s;", value);
    int ok = text && config_read_string(t, text) == CONFIG_TRUE;
    if (!ok && text && config_error_text(t) && strstr(config_error_text(t), "mismatched element type")) {
        /* [1, 2.5] is a mixed array, which libconfig refuses; read it as the list (1, 2.5) */
        char *open = strchr(text, '['), *close = strrchr(text, ']');
        if (open && close && close > open) {
            *open = '(';
            *close = ')';
            config_destroy(t);
            config_init(t);
            ok = config_read_string(t, text) == CONFIG_TRUE;
        }
    }
    free(text);
    if (!ok) {
        char why[256];
        snprintf(why, sizeof why, "%s", config_error_text(t) ? config_error_text(t) : "syntax error");
        config_destroy(t);
        const char *v = value;
        while (*v == ' ' || *v == '\t') v++;
        if (!bare_string_ok || *v == '[' || *v == '(' || *v == '{' || *v == '"' || *v == '\0') {
            free(t);
            return bp_error_set(err, BP_ERR_INVALID, "cannot parse value '%s': %s", value, why);
        }
        config_init(t); /* a bare word: take it as a string */
        config_setting_t *s = config_setting_add(config_root_setting(t), "v", CONFIG_TYPE_STRING);
        if (!s || config_setting_set_string(s, value) != CONFIG_TRUE) {
            config_destroy(t);
            free(t);
            return bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        }
    }
    *scratch = t;
    *out_setting = config_setting_get_member(config_root_setting(t), "v");
    return BP_OK;
}

static int is_scalar(int type) {
    return type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64 || type == CONFIG_TYPE_FLOAT ||
           type == CONFIG_TYPE_BOOL || type == CONFIG_TYPE_STRING;
}

/* Set scalar `dst` (an element of a list/array) from scalar `src`. */
static int set_scalar_in_place(config_setting_t *dst, const config_setting_t *src) {
    int dt = config_setting_type(dst), sty = config_setting_type(src);
    if (dt == CONFIG_TYPE_FLOAT && (sty == CONFIG_TYPE_INT || sty == CONFIG_TYPE_INT64))
        return config_setting_set_float(dst, (double)config_setting_get_int64(src));
    if (!((dt == sty) || ((dt == CONFIG_TYPE_INT || dt == CONFIG_TYPE_INT64) &&
                          (sty == CONFIG_TYPE_INT || sty == CONFIG_TYPE_INT64))))
        return CONFIG_FALSE;
    switch (dt) {
    case CONFIG_TYPE_INT: return config_setting_set_int(dst, (int)config_setting_get_int64(src));
    case CONFIG_TYPE_INT64: return config_setting_set_int64(dst, config_setting_get_int64(src));
    case CONFIG_TYPE_FLOAT: return config_setting_set_float(dst, config_setting_get_float(src));
    case CONFIG_TYPE_BOOL: return config_setting_set_bool(dst, config_setting_get_bool(src));
    case CONFIG_TYPE_STRING: return config_setting_set_string(dst, config_setting_get_string(src));
    default: return CONFIG_FALSE;
    }
}

static int parse_index(const char *comp, int *idx) {
    const char *p = comp;
    int bracket = 0;
    if (*p == '[') {
        bracket = 1;
        p++;
    }
    if (*p < '0' || *p > '9') return 0;
    long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > 1000000) return 0;
        p++;
    }
    if (bracket) {
        if (*p != ']') return 0;
        p++;
    }
    if (*p) return 0;
    *idx = (int)v;
    return 1;
}

static int record_override(bp_config *c, const config_setting_t *s, const char *kv) {
    if (bp_grow((void **)&c->overrides, &c->cap_overrides, c->n_overrides + 1, sizeof(override_rec)) != 0) return -1;
    c->overrides[c->n_overrides].setting = s;
    c->overrides[c->n_overrides].text = bp_strdup(kv);
    if (!c->overrides[c->n_overrides].text) return -1;
    c->n_overrides++;
    return 0;
}

bp_status bp_config_apply_override(bp_config *c, const char *kv, bp_error *err) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return bp_error_set(err, BP_ERR_INVALID, "-o %s: expected path.to.key=value (e.g. -o frontend.target_frames=0)",
                            kv);
    char path[512];
    size_t plen = (size_t)(eq - kv);
    if (plen >= sizeof path) return bp_error_set(err, BP_ERR_INVALID, "-o %s: key path too long", kv);
    memcpy(path, kv, plen);
    path[plen] = '\0';
    config_t *scratch;
    config_setting_t *val;
    bp_status st = bp_config_parse_value(eq + 1, 1, &scratch, &val, err);
    if (st != BP_OK) {
        bp_error_prefix(err, "-o %s: ", kv);
        return st;
    }
    config_setting_t *cur = config_root_setting(&c->cfg);
    char *save = NULL;
    char walked[512] = "";
    for (char *comp = strtok_r(path, ".", &save); comp; comp = strtok_r(NULL, ".", &save)) {
        int last = save == NULL || *save == '\0';
        int idx;
        int is_idx = parse_index(comp, &idx);
        size_t wl = strlen(walked);
        snprintf(walked + wl, sizeof walked - wl, "%s%s", wl ? "." : "", comp);
        if (config_setting_is_group(cur)) {
            if (is_idx) {
                st = bp_error_set(err, BP_ERR_INVALID, "-o %s: '%s' is a group; use a key name, not an index", kv, walked);
                break;
            }
            config_setting_t *child = config_setting_get_member(cur, comp);
            if (last) {
                if (child && config_setting_is_group(child) && !config_setting_is_group(val)) {
                    st = bp_error_set(err, BP_ERR_INVALID,
                                      "-o %s: '%s' is a group; set one of its keys (e.g. -o %s.type=...)", kv, walked,
                                      walked);
                    break;
                }
                int old_type = child ? config_setting_type(child) : CONFIG_TYPE_NONE;
                if (child) config_setting_remove(cur, comp);
                config_setting_t *n;
                int vt = config_setting_type(val);
                if (old_type == CONFIG_TYPE_FLOAT && (vt == CONFIG_TYPE_INT || vt == CONFIG_TYPE_INT64)) {
                    /* keep a float key a float: -o gain=2 means 2.0 */
                    n = config_setting_add(cur, comp, CONFIG_TYPE_FLOAT);
                    if (n) config_setting_set_float(n, (double)config_setting_get_int64(val));
                } else {
                    n = bp_config_copy_setting(val, cur, comp);
                }
                if (!n) {
                    st = bp_error_set(err, BP_ERR_INVALID,
                                      "-o %s: '%s' is not a valid key name (letters, digits, '_' and '-')", kv, comp);
                    break;
                }
                if (record_override(c, n, kv) != 0) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                break;
            }
            if (!child) {
                child = config_setting_add(cur, comp, CONFIG_TYPE_GROUP);
                if (!child) {
                    st = bp_error_set(err, BP_ERR_INVALID,
                                      "-o %s: '%s' is not a valid key name (letters, digits, '_' and '-')", kv, comp);
                    break;
                }
            } else if (!config_setting_is_aggregate(child)) {
                st = bp_error_set(err, BP_ERR_INVALID, "-o %s: '%s' is %s, it has no keys", kv, walked,
                                  bp_config_type_phrase(config_setting_type(child)));
                break;
            }
            cur = child;
        } else { /* list or array */
            if (!is_idx) {
                st = bp_error_set(err, BP_ERR_INVALID, "-o %s: '%.*s' is %s; use an index such as [0]", kv,
                                  (int)wl, walked, bp_config_type_phrase(config_setting_type(cur)));
                break;
            }
            config_setting_t *child = config_setting_get_elem(cur, (unsigned)idx);
            if (!child) {
                st = bp_error_set(err, BP_ERR_INVALID, "-o %s: index %d is out of range ('%.*s' has %d elements)", kv,
                                  idx, (int)wl, walked, config_setting_length(cur));
                break;
            }
            if (last) {
                if (!is_scalar(config_setting_type(child)) || !is_scalar(config_setting_type(val)) ||
                    set_scalar_in_place(child, val) != CONFIG_TRUE) {
                    st = bp_error_set(err, BP_ERR_INVALID,
                                      "-o %s: element %d of '%.*s' is %s and cannot take %s", kv, idx,
                                      (int)wl, walked, bp_config_type_phrase(config_setting_type(child)),
                                      bp_config_type_phrase(config_setting_type(val)));
                    break;
                }
                if (record_override(c, child, kv) != 0) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
                break;
            }
            if (!config_setting_is_aggregate(child)) {
                st = bp_error_set(err, BP_ERR_INVALID, "-o %s: '%s' is %s, it has no keys", kv, walked,
                                  bp_config_type_phrase(config_setting_type(child)));
                break;
            }
            cur = child;
        }
    }
    config_destroy(scratch);
    free(scratch);
    return st;
}

bp_status bp_config_to_text(bp_config *c, bp_sbuf *out, bp_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return bp_error_set(err, BP_ERR_NOMEM, "config: out of memory");
    config_write(&c->cfg, f);
    if (fclose(f) != 0) {
        free(buf);
        return bp_error_set(err, BP_ERR_NOMEM, "config: cannot serialise");
    }
    bp_sbuf_printf(out, "%.*s", (int)len, buf ? buf : "");
    free(buf);
    return out->failed ? bp_error_set(err, BP_ERR_NOMEM, "config: out of memory") : BP_OK;
}
