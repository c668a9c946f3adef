/* batpipe plugins [NAME] [--validate FILE.so] */
#include <stdio.h>
#include <string.h>

#include "batpipe/registry.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: batpipe plugins              list every plugin component found\n"
            "       batpipe plugins NAME         describe a component and its parameters\n"
            "       batpipe plugins --validate FILE.so\n"
            "                                    load FILE.so the way batpipe does and check it\n"
            "Plugins are searched in $BATPIPE_PLUGIN_PATH (colon-separated), then next to the\n"
            "batpipe executable (../lib/batpipe/plugins), then the install directory.\n");
}

static const char *type_name(int32_t t) {
    switch (t) {
    case BP_PARAM_BOOL: return "bool";
    case BP_PARAM_INT: return "int";
    case BP_PARAM_FLOAT: return "float";
    case BP_PARAM_STRING: return "string";
    case BP_PARAM_PATH: return "path";
    case BP_PARAM_FLOAT_LIST: return "float list";
    case BP_PARAM_STRING_LIST: return "string list";
    default: return "?";
    }
}

static int list_all(bp_registry *reg) {
    uint32_t n = bp_registry_count(reg);
    printf("%-10s %-14s %-9s %s\n", "KIND", "NAME", "VERSION", "PLUGIN FILE");
    for (int32_t k = 0; k < BP_KIND_COUNT; k++)
        for (uint32_t i = 0; i < n; i++) {
            const bp_component_info *c = bp_registry_at(reg, i);
            if (c->kind != k) continue;
            printf("%-10s %-14s %-9s %s", bp_kind_name(c->kind), c->desc->name, c->desc->version, c->plugin->path);
            if (c->plugin->score <= 0) printf("  [cannot run on this machine]");
            if (c->shadowed) printf("  [shadowed by an earlier plugin of the same name]");
            printf("\n");
        }
    if (n == 0) printf("(no plugins found)\n");
    printf("\nsearch path:\n");
    for (uint32_t i = 0; i < bp_registry_dir_count(reg); i++) printf("  %s\n", bp_registry_dir_at(reg, i));
    if (bp_registry_problem_count(reg)) {
        printf("\nfiles that could not be used:\n");
        for (uint32_t i = 0; i < bp_registry_problem_count(reg); i++)
            printf("  %s\n", bp_registry_problem_at(reg, i).message);
    }
    return 0;
}

static int show(bp_registry *reg, const char *name) {
    int found = 0;
    for (uint32_t i = 0; i < bp_registry_count(reg); i++) {
        const bp_component_info *c = bp_registry_at(reg, i);
        if (strcmp(c->desc->name, name) != 0) continue;
        const bp_descriptor *d = c->desc;
        if (found++) printf("\n");
        printf("%s %s %s — %s\n", bp_kind_name(c->kind), d->name, d->version, d->description ? d->description : "");
        printf("  plugin     %s %s (%s), ABI %u.%u, licence %s%s\n", c->plugin->plugin_name, c->plugin->plugin_version,
               c->plugin->path, c->plugin->abi_major, c->plugin->abi_minor, c->plugin->license,
               c->plugin->score <= 0 ? ", cannot run on this machine" : "");
        if (d->reference) printf("  reference  %s\n", d->reference);
        switch (c->kind) {
        case BP_KIND_METRIC: printf("  config     metrics = ( { type = \"%s\"; ... } );\n", d->name); break;
        case BP_KIND_DATASET: printf("  config     input = { type = \"%s\"; ... };\n", d->name); break;
        default: printf("  config     %s = { type = \"%s\"; ... };\n", bp_kind_name(c->kind), d->name); break;
        }
        if (!d->n_params) printf("  (no parameters)\n");
        for (uint32_t k = 0; k < d->n_params; k++) {
            const bp_param_spec *s =
                (const bp_param_spec *)((const char *)d->params + (size_t)k * d->params[0].struct_size);
            printf("  %-16s %-11s default %s", s->name, type_name(s->type),
                   s->default_value ? s->default_value : "(required)");
            if (s->min <= s->max) printf(", range [%g, %g]", s->min, s->max);
            if (s->choices) printf(", one of %s", s->choices);
            printf("\n  %16s %s\n", "", s->help);
        }
    }
    if (!found) {
        fprintf(stderr, "batpipe plugins: no component named '%s'; run 'batpipe plugins' for the list\n", name);
        return 2;
    }
    return 0;
}

static void report_line(void *user, int ok, const char *line) {
    (void)user;
    printf("  [%s] %s\n", ok ? " ok " : "FAIL", line);
}

int cmd_plugins(cli_ctx *c, int argc, char **argv) {
    const char *validate = NULL, *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--validate") == 0) {
            if (i + 1 >= argc) {
                usage(stderr);
                return 2;
            }
            validate = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "batpipe plugins: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            name = argv[i];
        }
    }
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg;
    if (validate) {
        /* A fresh registry: the file is checked on its own, not shadowed by installed copies. */
        bp_status st = bp_registry_new(&c->host, &reg, &err);
        if (st != BP_OK) return cli_fail("plugins", st, &err);
        printf("validating %s\n", validate);
        int32_t problems = bp_registry_validate_file(reg, validate, report_line, NULL);
        bp_registry_free(reg);
        if (problems < 0) {
            printf("result: cannot be loaded\n");
            return 1;
        }
        printf("result: %d problem%s\n", problems, problems == 1 ? "" : "s");
        return problems ? 1 : 0;
    }
    bp_status st = cli_registry(c, &reg, &err);
    if (st != BP_OK) return cli_fail("plugins", st, &err);
    return name ? show(reg, name) : list_all(reg);
}
