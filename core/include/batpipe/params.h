/* batpipe — declared parameters of a plugin component and their values.
 *
 * A component declares its parameters (name, type, default, range, choices,
 * help) in its descriptor. The host validates a config section against the
 * declaration before creating anything: unknown keys, wrong types and
 * out-of-range values are errors that name file:line and list valid choices.
 * The component then receives a bp_params holding every declared parameter,
 * defaults filled in, already checked. All of it is plain data: plugins need
 * not link libbatpipe to read it. */
#ifndef BATPIPE_PARAMS_H
#define BATPIPE_PARAMS_H

#include <stdint.h>
#include <string.h>

#include "error.h"

BP_EXTERN_C_BEGIN

typedef enum bp_param_type {
    BP_PARAM_BOOL = 1,        /* true / false */
    BP_PARAM_INT = 2,         /* 64-bit integer */
    BP_PARAM_FLOAT = 3,       /* double; an integer literal is accepted */
    BP_PARAM_STRING = 4,      /* UTF-8; `choices` may restrict it */
    BP_PARAM_PATH = 5,        /* a file path; relative paths are resolved against the
                                 directory of the config file that set it (or the
                                 current directory for command-line overrides) */
    BP_PARAM_FLOAT_LIST = 6,  /* [1.0, 2.0, ...]; min/max apply to each element */
    BP_PARAM_STRING_LIST = 7  /* ["a", "b"] */
} bp_param_type;

/* One declared parameter. Arrays of these are read with a stride of the first
 * element's struct_size, so later minors can append fields. */
typedef struct bp_param_spec {
    uint32_t struct_size;      /* sizeof(bp_param_spec) */
    const char *name;          /* [a-z0-9_]+ */
    int32_t type;              /* bp_param_type */
    const char *default_value; /* in config syntax: "1024", "0.5", "true", "\"hann\"", "[-20.0, -21.0]";
                                  NULL = required (no default) */
    double min, max;           /* inclusive range for INT/FLOAT/FLOAT_LIST; ignored when min > max */
    const char *choices;       /* STRING: allowed values separated by '|', NULL = any */
    const char *help;          /* one line, shown by `batpipe plugins NAME` */
} bp_param_spec;

#define BP_NO_RANGE 1.0, 0.0 /* min > max: no range check */

typedef struct bp_param_value {
    const char *name;    /* same pointer as the spec's name */
    int32_t type;        /* bp_param_type */
    int32_t from_config; /* 1 = set in the config or an override, 0 = the default */
    int64_t i;           /* BOOL (0/1) and INT */
    double f;            /* FLOAT */
    const char *s;       /* STRING and PATH (resolved) */
    const double *list;  /* FLOAT_LIST elements */
    const char *const *strs; /* STRING_LIST elements */
    uint32_t count;      /* number of list elements */
    const char *origin;  /* "file.cfg:12", "-o override" or "default" (for messages) */
} bp_param_value;

/* Every declared parameter of one component, in declaration order.
 * Owned by the host; valid until the component is destroyed. */
typedef struct bp_params {
    uint32_t struct_size;   /* sizeof(bp_params) */
    uint32_t count;
    const bp_param_value *values;
    const char *section;    /* the config path of this component, e.g. "frontend" */
} bp_params;

static inline const bp_param_value *bp_params_find(const bp_params *p, const char *name) {
    if (!p) return NULL;
    for (uint32_t i = 0; i < p->count; i++)
        if (strcmp(p->values[i].name, name) == 0) return &p->values[i];
    return NULL;
}
/* Accessors for declared parameters (the host guarantees presence and type;
 * a name that was not declared returns 0 / NULL). */
static inline int64_t bp_params_int(const bp_params *p, const char *name) {
    const bp_param_value *v = bp_params_find(p, name);
    return v ? v->i : 0;
}
static inline double bp_params_float(const bp_params *p, const char *name) {
    const bp_param_value *v = bp_params_find(p, name);
    return v ? v->f : 0.0;
}
static inline int bp_params_bool(const bp_params *p, const char *name) {
    const bp_param_value *v = bp_params_find(p, name);
    return v ? (int)v->i : 0;
}
static inline const char *bp_params_string(const bp_params *p, const char *name) {
    const bp_param_value *v = bp_params_find(p, name);
    return v ? v->s : NULL;
}

BP_EXTERN_C_END

#endif /* BATPIPE_PARAMS_H */
