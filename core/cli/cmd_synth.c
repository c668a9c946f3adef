/* batpipe synth CONFIG.cfg [-o key.path=value ...] [--out DIR] [--shard I/N] ...
 * batpipe synth merge OUT_DIR [SHARD_DIR ...] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/synth.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: batpipe synth CONFIG.cfg [-o key.path=value ...] [--out DIR] [--shard I/N] [--threads N]\n"
               "                    [--max-scenes K] [--dry-run] [--no-progress]\n"
               "       batpipe synth merge OUT_DIR [SHARD_DIR ...]\n"
               "\n"
               "Generates a SpatialSoundQA-style set (binaural scenes, QA JSON of types A-E, curriculum files,\n"
               "summary with plots) as CONFIG.cfg describes (see docs/synth.md, configs/synth/mini.cfg).\n"
               "  -o key.path=value  override any setting, e.g. -o scenes.train.single=100 -o seed=7\n"
               "  --out DIR          output directory (default: output.dir of the configuration)\n"
               "  --shard I/N        render only the scenes whose number g has g mod N = I (0 <= I < N);\n"
               "                     shards may share DIR or use their own; then `batpipe synth merge`\n"
               "  --threads N        worker threads (default: the configuration's `threads`, 0 = every core)\n"
               "  --max-scenes K     stop after rendering K new scenes (rerun to resume); the environment\n"
               "                     variable BATPIPE_SYNTH_STOP_AFTER=K does the same (for tests)\n"
               "  --dry-run          load and check everything, print the plan, render nothing\n"
               "  --no-progress      no progress bar\n"
               "Finished scenes in DIR are kept and skipped, so an interrupted run resumes where it stopped.\n"
               "merge: copies (or hard-links) the scenes of each SHARD_DIR missing in OUT_DIR, then writes the\n"
               "final files; with no SHARD_DIR it finalises a directory that shards shared.\n");
}

static void print_report(const bp_synth_report *r, int finalize_asked) {
    printf("scenes    %lld rendered, %lld already there, of %lld in this run (%lld in the set) in %.1f s",
           (long long)r->scenes_rendered, (long long)r->scenes_existing, (long long)r->scenes_in_shard,
           (long long)r->scenes_total, r->seconds);
    if (r->scenes_rendered && r->seconds > 0) printf(" (%.2f scenes/s)", (double)r->scenes_rendered / r->seconds);
    printf("\n");
    if (r->scenes_scaled)
        printf("scaled    %lld scene(s) attenuated below output.gain_db to avoid clipping\n",
               (long long)r->scenes_scaled);
    if (r->sources_replaced)
        printf("replaced  %lld recording(s) that failed to decode (listed in the scene records)\n",
               (long long)r->sources_replaced);
    printf("output    %s\n", r->out_dir);
    if (r->finalized)
        printf("final     %lld QA pairs: train.json, eval.json, stage1-clsdoa/, stage2-single/, stage3-mixup/, "
               "summary/summary.md\n",
               (long long)r->qa_pairs);
    else if (finalize_asked && r->scenes_missing)
        printf("missing   %lld scene(s) of the set; when every shard is done: batpipe synth merge %s\n",
               (long long)r->scenes_missing, r->out_dir);
}

static int cmd_merge(cli_ctx *c, int argc, char **argv) {
    (void)c;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    bp_synth_report rep;
    bp_error err = BP_ERROR_INIT;
    bp_status st = bp_synth_merge(argv[1], (const char *const *)(argv + 2), (uint32_t)(argc - 2), &rep, &err);
    if (st != BP_OK) return cli_fail("synth merge", st, &err);
    printf("merged    %lld scene(s) copied in; %lld scenes in the set\n", (long long)rep.scenes_existing,
           (long long)rep.scenes_total);
    printf("final     %lld QA pairs in %s (train.json, eval.json, stage*/, summary/)\n", (long long)rep.qa_pairs,
           rep.out_dir);
    return 0;
}

static int parse_shard(const char *s, uint32_t *i, uint32_t *n) {
    char *e;
    unsigned long a = strtoul(s, &e, 10);
    if (e == s || *e != '/') return -1;
    const char *t = e + 1;
    unsigned long b = strtoul(t, &e, 10);
    if (e == t || *e || b == 0 || a >= b || b > 100000) return -1;
    *i = (uint32_t)a;
    *n = (uint32_t)b;
    return 0;
}

int cmd_synth(cli_ctx *c, int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "merge") == 0) return cmd_merge(c, argc - 1, argv + 1);
    const char *path = NULL;
    const char **ov = calloc((size_t)argc + 1, sizeof *ov);
    uint32_t n_ov = 0;
    int dry = 0, progress = 1;
    bp_synth_options opt = bp_synth_options_default();
    if (!ov) return 1;
    int rc = -1;
    for (int i = 1; i < argc && rc < 0; i++) {
        const char *a = argv[i];
        int has_next = i + 1 < argc;
        if ((strcmp(a, "-o") == 0 || strcmp(a, "--set") == 0) && has_next) {
            ov[n_ov++] = argv[++i];
        } else if (strncmp(a, "-o", 2) == 0 && a[2]) {
            ov[n_ov++] = a + 2;
        } else if (strcmp(a, "--out") == 0 && has_next) {
            opt.out_dir = argv[++i];
        } else if (strcmp(a, "--shard") == 0 && has_next) {
            if (parse_shard(argv[++i], &opt.shard_index, &opt.shard_count) != 0) {
                fprintf(stderr, "batpipe synth: --shard wants I/N with 0 <= I < N, got '%s'\n", argv[i]);
                rc = 2;
            }
        } else if (strcmp(a, "--threads") == 0 && has_next) {
            opt.n_threads = atoi(argv[++i]);
        } else if (strcmp(a, "--max-scenes") == 0 && has_next) {
            opt.max_scenes = atoll(argv[++i]);
            if (opt.max_scenes <= 0) {
                fprintf(stderr, "batpipe synth: --max-scenes wants a positive number\n");
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
            fprintf(stderr, "batpipe synth: unknown option '%s' (or it misses its value)\n", a);
            usage(stderr);
            rc = 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "batpipe synth: more than one configuration given ('%s' and '%s')\n", path, a);
            rc = 2;
        }
    }
    if (rc < 0 && !path) {
        usage(stderr);
        rc = 2;
    }
    if (rc >= 0) {
        free(ov);
        return rc;
    }
    const char *stop = getenv("BATPIPE_SYNTH_STOP_AFTER");
    if (stop && *stop && opt.max_scenes <= 0) opt.max_scenes = atoll(stop);
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg;
    bp_synth *s = NULL;
    bp_status st = cli_registry(c, &reg, &err);
    if (st == BP_OK) st = bp_synth_load(reg, path, ov, n_ov, &s, &err);
    free(ov);
    if (st != BP_OK) return cli_fail("synth", st, &err);
    if (c->verbosity >= 1 || dry) printf("%s", bp_synth_plan(s));
    if (dry) {
        printf("dry run: configuration, corpus and simulator valid, nothing rendered\n");
        bp_synth_free(s);
        return 0;
    }
    fflush(stdout);
    cli_install_signals();
    cli_progress bar;
    cli_progress_init(&bar, progress && c->verbosity >= 1);
    opt.progress = cli_progress_update;
    opt.progress_user = &bar;
    bp_synth_report rep;
    st = bp_synth_run(s, &opt, &rep, &err);
    cli_progress_finish(&bar);
    if (c->verbosity >= 1 || st != BP_OK) print_report(&rep, opt.shard_count > 1);
    bp_synth_free(s);
    if (st != BP_OK) return cli_fail("synth", st, &err);
    return 0;
}
