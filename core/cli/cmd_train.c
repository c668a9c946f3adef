/* batpipe train FILE.cfg [-o key.path=value ...] [--resume | --restart] [--dry-run] ... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/train.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: batpipe train FILE.cfg [-o key.path=value ...] [--resume | --restart] [--stop-after N]\n"
               "                     [--dry-run] [--no-progress]\n"
               "\n"
               "Trains the encoder FILE.cfg describes (see docs/train.md, configs/mini/).\n"
               "  -o key.path=value  override any setting, e.g. -o batch_size=4 -o stages.[0].steps=100\n"
               "  --resume           continue from the newest checkpoint in output.dir (exactly: same result as an\n"
               "                     uninterrupted run); starts at step 0 when there is none\n"
               "  --restart          delete output.dir's checkpoints and log, start at step 0\n"
               "  --stop-after N     stop after N steps of this call (a checkpoint is written; --resume goes on)\n"
               "  --dry-run          load and check everything, print the plan, train nothing\n"
               "  --no-progress      no progress bar\n"
               "Ctrl-C stops after the current step and writes a checkpoint (twice: stop at once).\n");
}

static void print_report(const bp_train_report *r) {
    printf("steps     %lld -> %lld of %lld in %.1f s", (long long)r->start_step, (long long)r->end_step,
           (long long)r->total_steps, r->seconds);
    if (r->end_step > r->start_step) printf(" (%.3f s/step, %.2f examples/s)", r->s_per_step, r->examples_per_s);
    printf("%s\n", r->resumed ? ", resumed" : "");
    if (r->end_step > r->start_step) printf("loss      %.6g (last step)\n", r->last_loss);
    for (uint32_t i = 0; i < r->n_results; i++) {
        const bp_metric_result *m = &r->results[i];
        printf("eval      %-20s %.6g%s%s", m->name, m->value, m->unit[0] ? " " : "", m->unit);
        if (m->note[0]) printf("  (%s)", m->note);
        printf("\n");
    }
    if (r->last_checkpoint[0]) printf("ckpt      %s\n", r->last_checkpoint);
    printf("log       %s\n", r->log);
    if (r->finished) printf("weights   %s\n", r->weights);
}

int cmd_train(cli_ctx *c, int argc, char **argv) {
    const char *path = NULL;
    const char **ov = calloc((size_t)argc + 1, sizeof *ov);
    uint32_t n_ov = 0;
    int dry = 0, progress = 1, rc = -1;
    bp_train_options opt = bp_train_options_default();
    if (!ov) return 1;
    for (int i = 1; i < argc && rc < 0; i++) {
        const char *a = argv[i];
        int has_next = i + 1 < argc;
        if ((strcmp(a, "-o") == 0 || strcmp(a, "--set") == 0) && has_next) {
            ov[n_ov++] = argv[++i];
        } else if (strncmp(a, "-o", 2) == 0 && a[2]) {
            ov[n_ov++] = a + 2;
        } else if (strcmp(a, "--resume") == 0) {
            opt.resume = 1;
        } else if (strcmp(a, "--restart") == 0) {
            opt.restart = 1;
        } else if (strcmp(a, "--stop-after") == 0 && has_next) {
            char *end;
            opt.stop_after = strtoll(argv[++i], &end, 10);
            if (*end || opt.stop_after <= 0) {
                fprintf(stderr, "batpipe train: --stop-after wants a positive number of steps\n");
                rc = 2;
            }
        } else if (strcmp(a, "--dry-run") == 0 || strcmp(a, "-n") == 0) {
            dry = 1;
        } else if (strcmp(a, "--no-progress") == 0) {
            progress = 0;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            rc = 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "batpipe train: unknown option '%s' (or it misses its value)\n", a);
            usage(stderr);
            rc = 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "batpipe train: more than one configuration given ('%s' and '%s')\n", path, a);
            rc = 2;
        }
    }
    if (rc < 0 && !path) {
        usage(stderr);
        rc = 2;
    }
    if (rc < 0 && opt.resume && opt.restart) {
        fprintf(stderr, "batpipe train: --resume and --restart exclude each other\n");
        rc = 2;
    }
    if (rc >= 0) {
        free(ov);
        return rc;
    }
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg;
    bp_trainer *t = NULL;
    bp_status st = cli_registry(c, &reg, &err);
    if (st == BP_OK) st = bp_train_load(reg, path, ov, n_ov, &t, &err);
    free(ov);
    if (st != BP_OK) return cli_fail("train", st, &err);
    if (c->verbosity >= 1 || dry) printf("%s", bp_train_plan(t));
    if (dry) {
        printf("dry run: configuration, data, frontend and encoder valid, nothing trained\n");
        bp_train_free(t);
        return 0;
    }
    fflush(stdout);
    cli_install_signals();
    cli_progress bar;
    cli_progress_init(&bar, progress && c->verbosity >= 1);
    opt.progress = cli_progress_update;
    opt.progress_user = &bar;
    bp_train_report rep;
    memset(&rep, 0, sizeof rep);
    rep.struct_size = sizeof rep;
    st = bp_train_run(t, &opt, &rep, &err);
    cli_progress_finish(&bar);
    if (c->verbosity >= 1 || st != BP_OK) print_report(&rep);
    bp_train_free(t);
    if (st != BP_OK) return cli_fail("train", st, &err);
    return 0;
}
