/* batpipe run FILE.cfg [-o key.path=value ...] [--dry-run] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/pipeline.h"
#include "batpipe/report.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: batpipe run FILE.cfg [-o key.path=value ...] [--dry-run] [--no-progress]\n"
            "\n"
            "Runs the pipeline described by FILE.cfg (see docs/config.md).\n"
            "  -o key.path=value  override any setting at any depth, e.g. -o frontend.target_frames=0,\n"
            "                     -o input.files=clip.wav, -o output.dir=out, -o threads=1\n"
            "                     (values in config syntax; a bare word is a string)\n"
            "  --dry-run          validate, negotiate and print the plan; compute nothing\n"
            "  --no-progress      no progress bar\n");
}

void cli_print_summary(const bp_run_summary *s) {
    printf("items     %llu done", (unsigned long long)s->items_done);
    if (s->items_skipped) printf(", %llu skipped (outputs existed)", (unsigned long long)s->items_skipped);
    if (s->items_failed) printf(", %llu FAILED (first: %s)", (unsigned long long)s->items_failed, s->first_failure);
    printf(" of %llu in %.2f s", (unsigned long long)s->items_total, s->seconds);
    if (s->items_done && s->seconds > 0) printf(" (%.2f items/s)", (double)s->items_done / s->seconds);
    printf("\n");
    for (uint32_t i = 0; i < s->n_tensors; i++) {
        const bp_tensor_summary *t = &s->tensors[i];
        if (isfinite(t->min))
            printf("tensor    %-12s %-20s min %.4g  max %.4g  mean %.4g\n", t->name, t->shape, t->min, t->max, t->mean);
        else
            printf("tensor    %-12s %s\n", t->name, t->shape);
    }
    if (s->output_dir[0]) {
        printf("output    %s\n", s->output_dir);
        if (s->last_output[0]) printf("last file %s\n", s->last_output);
        if (s->resolved_config[0]) printf("resolved  %s\n", s->resolved_config);
    }
}

int cmd_run(cli_ctx *c, int argc, char **argv) {
    const char *path = NULL;
    const char **ov = calloc((size_t)argc + 1, sizeof *ov);
    uint32_t n_ov = 0;
    int dry = 0, progress = 1;
    if (!ov) return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--set") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "batpipe run: -o needs key.path=value\n");
                free(ov);
                return 2;
            }
            ov[n_ov++] = argv[++i];
        } else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2]) {
            ov[n_ov++] = argv[i] + 2;
        } else if (strcmp(argv[i], "--dry-run") == 0 || strcmp(argv[i], "-n") == 0) {
            dry = 1;
        } else if (strcmp(argv[i], "--no-progress") == 0) {
            progress = 0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            free(ov);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "batpipe run: unknown option '%s'\n", argv[i]);
            usage(stderr);
            free(ov);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "batpipe run: more than one config file given ('%s' and '%s')\n", path, argv[i]);
            free(ov);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        free(ov);
        return 2;
    }
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg;
    bp_status st = cli_registry(c, &reg, &err);
    bp_pipeline *p = NULL;
    if (st == BP_OK) st = bp_pipeline_load(reg, path, ov, n_ov, &p, &err);
    free(ov);
    if (st != BP_OK) return cli_fail("run", st, &err);
    if (c->verbosity >= 1 || dry) printf("%s", bp_pipeline_plan(p));
    if (dry) {
        printf("dry run: configuration valid, nothing computed\n");
        bp_pipeline_free(p);
        return 0;
    }
    fflush(stdout);
    cli_install_signals();
    cli_progress bar;
    cli_progress_init(&bar, progress && c->verbosity >= 1);
    st = bp_pipeline_run(p, cli_progress_update, &bar, &err);
    cli_progress_finish(&bar);
    int rc = 0;
    if (c->verbosity >= 1 || st != BP_OK) cli_print_summary(bp_pipeline_summary(p));
    if (st == BP_OK)
        for (uint32_t i = 0; i < bp_pipeline_result_count(p); i++) {
            const char *metric = NULL;
            const bp_metric_result *r = bp_pipeline_result_at(p, i, &metric);
            if (r && !strchr(r->name, '/')) /* per-class details (AP/<class>) stay in the report */
                printf("metric    %-16s %10.4f %s (%s)\n", r->name, r->value, r->unit, metric ? metric : "");
        }
    if (st != BP_OK) rc = cli_fail("run", st, &err);
    else if (bp_pipeline_summary(p)->items_failed) rc = 3;
    bp_pipeline_free(p);
    return rc;
}
