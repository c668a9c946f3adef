/* batpipe sources: the real-recordings source corpus (docs/sources.md).
 *
 *   batpipe sources fetch  [--dir D] [--heavy] [--packages a,b] ...  download, extract, convert, split
 *   batpipe sources build  STAGE.tsv [--dir D] ...                    convert and split a stage list
 *   batpipe sources import LIST.csv [--dir D] [--name N] ...          a user's labelled files
 *
 * Download and extraction are done by scripts/sources/fetch.py (Python 3
 * standard library + apt-get/dpkg-deb); decoding, resampling, measuring,
 * the curation rules that need audio, and the split are done here in C with
 * batpipe's own audio I/O so that every machine gets identical clips. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "sources.h"

#define DEFAULT_DIR "data/sources"
#define DEFAULT_IMPORT_DIR "data/sources/user"
#define CLASSES_REL "data/curation/audioset_classes.tsv"
#define FETCH_REL "scripts/sources/fetch.py"

static void usage(FILE *f) {
    fprintf(f,
            "usage: batpipe sources fetch [--dir D] [--heavy] [--packages P1,P2] [common options]\n"
            "       batpipe sources build STAGE.tsv [--dir D] [common options]\n"
            "       batpipe sources import LIST.csv [--dir D] [--name NAME] [--license L] [common options]\n"
            "\n"
            "fetch    download the Debian packages of the recommended set (apt-get download, no root),\n"
            "         extract their audio (deb, zip, Qt .rcc, WavPack), convert and split\n"
            "         (default dir " DEFAULT_DIR ")\n"
            "  --heavy              also the optional heavy packages (0ad-data 1.4 GB, supertuxkart-data 0.6 GB, ...)\n"
            "  --packages P1,P2     only these packages of the set\n"
            "  --offline            use only what is already downloaded\n"
            "build    convert a stage list (input, label, package, license, source_path[, placement])\n"
            "import   a user's CSV of file,labels (labels: AudioSet display names or ids, ';'-separated)\n"
            "         (default dir " DEFAULT_IMPORT_DIR ")\n"
            "  --name NAME          the 'package' column and clips/NAME/ (default: the CSV's file name)\n"
            "  --license L          licence for rows without one (default: unknown)\n"
            "\n"
            "common options:\n"
            "  --dir D              corpus directory (clips/, corpus.tsv, classes.tsv, skipped.tsv)\n"
            "  --jobs N             conversion threads (default: number of CPUs)\n"
            "  --min-recordings N   drop classes with fewer distinct recordings (default 5; import: 1)\n"
            "  --eval-fraction F    per-class share of recordings in eval (default 0.2)\n"
            "  --max-seconds S      keep at most the first S seconds of a recording (default 30)\n"
            "  --split-salt S       salt of the split hash (default batpipe-sources-v1)\n"
            "  --ontology F         AudioSet class table (default: " CLASSES_REL ")\n"
            "  --no-progress        no progress bar\n");
}

typedef struct opts {
    const char *dir;
    const char *input;
    const char *name;
    const char *license;
    const char *packages;
    const char *ontology;
    const char *salt;
    int heavy, offline, jobs, min_recordings, progress;
    double eval_fraction, max_seconds;
} opts;

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

/* Returns 0, or the exit code of a usage error. */
static int parse_opts(const char *sub, int argc, char **argv, opts *o) {
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                      \
    do {                                                                                  \
        if (!v) {                                                                         \
            fprintf(stderr, "batpipe sources %s: %s needs a value\n", sub, a);           \
            return 2;                                                                     \
        }                                                                                 \
        i++;                                                                              \
    } while (0)
#define BAD_VALUE(what)                                                                   \
    do {                                                                                  \
        fprintf(stderr, "batpipe sources %s: %s: '%s' is not %s\n", sub, a, v, what);    \
        return 2;                                                                         \
    } while (0)
        if (strcmp(a, "--dir") == 0) {
            NEED_VALUE();
            o->dir = v;
        } else if (strcmp(a, "--heavy") == 0 && strcmp(sub, "fetch") == 0) {
            o->heavy = 1;
        } else if (strcmp(a, "--offline") == 0 && strcmp(sub, "fetch") == 0) {
            o->offline = 1;
        } else if (strcmp(a, "--packages") == 0 && strcmp(sub, "fetch") == 0) {
            NEED_VALUE();
            o->packages = v;
        } else if (strcmp(a, "--name") == 0 && strcmp(sub, "import") == 0) {
            NEED_VALUE();
            o->name = v;
        } else if (strcmp(a, "--license") == 0 && strcmp(sub, "import") == 0) {
            NEED_VALUE();
            o->license = v;
        } else if (strcmp(a, "--jobs") == 0) {
            NEED_VALUE();
            if (parse_int(v, 1, 64, &o->jobs) != 0) BAD_VALUE("an integer in 1..64");
        } else if (strcmp(a, "--min-recordings") == 0) {
            NEED_VALUE();
            if (parse_int(v, 1, 1000000, &o->min_recordings) != 0) BAD_VALUE("a positive integer");
        } else if (strcmp(a, "--eval-fraction") == 0) {
            NEED_VALUE();
            if (parse_double(v, 0.0, 0.9, &o->eval_fraction) != 0) BAD_VALUE("a number in 0..0.9");
        } else if (strcmp(a, "--max-seconds") == 0) {
            NEED_VALUE();
            if (parse_double(v, 10.0, 36000.0, &o->max_seconds) != 0) BAD_VALUE("a number of seconds >= 10");
        } else if (strcmp(a, "--split-salt") == 0) {
            NEED_VALUE();
            o->salt = v;
        } else if (strcmp(a, "--ontology") == 0) {
            NEED_VALUE();
            o->ontology = v;
        } else if (strcmp(a, "--no-progress") == 0) {
            o->progress = 0;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        } else if (a[0] == '-') {
            fprintf(stderr, "batpipe sources %s: unknown option '%s'\n", sub, a);
            usage(stderr);
            return 2;
        } else if (!o->input && strcmp(sub, "fetch") != 0) {
            o->input = a;
        } else {
            fprintf(stderr, "batpipe sources %s: unexpected argument '%s'\n", sub, a);
            return 2;
        }
#undef NEED_VALUE
#undef BAD_VALUE
    }
    return 0;
}

/* ------------------------------------------------- finding our files ---- */

static int is_file(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

/* The first of: $BATPIPE_SOURCE_DIR, the current directory, the source tree
 * above the build directory of this executable (BUILD/bin/batpipe), the
 * install prefix's share/batpipe — that holds `rel`. Caller frees. */
static char *find_file(const char *rel) {
    const char *env = getenv("BATPIPE_SOURCE_DIR");
    if (env && env[0]) {
        char *p = sources_strdupf("%s/%s", env, rel);
        if (p && is_file(p)) return p;
        free(p);
    }
    if (is_file(rel)) return sources_strdup(rel);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        const char *ups[] = {"%s/../../%s", "%s/../share/batpipe/%s"};
        for (size_t k = 0; k < sizeof ups / sizeof ups[0]; k++) {
            char *p = sources_strdupf(ups[k], exe, rel);
            if (p && is_file(p)) return p;
            free(p);
        }
    }
    return NULL;
}

/* ----------------------------------------------------------- logging ---- */

typedef struct log_ctx {
    const cli_ctx *c;
    cli_progress *progress;
    FILE *extra; /* a copy of every line, or NULL */
} log_ctx;

static void log_line(void *user, const char *msg) {
    log_ctx *l = user;
    if (l->c->verbosity < 1) return;
    if (l->progress && l->progress->tty) fputs("\r\033[K", stderr); /* clear the progress bar line */
    fprintf(stderr, "batpipe sources: %s\n", msg);
}

static int load_ontology(const opts *o, sources_ontology *ont) {
    char *path = o->ontology ? sources_strdup(o->ontology) : find_file(CLASSES_REL);
    if (!path) {
        fprintf(stderr,
                "batpipe sources: error: cannot find %s (run from the batpipe source tree, set BATPIPE_SOURCE_DIR, "
                "or pass --ontology)\n",
                CLASSES_REL);
        return 2;
    }
    bp_error err = BP_ERROR_INIT;
    bp_status st = sources_ontology_load(path, ont, &err);
    free(path);
    if (st != BP_OK) return cli_fail("sources", st, &err);
    return 0;
}

static void print_report(const cli_ctx *c, const opts *o, const sources_build_report *r) {
    if (c->verbosity < 1) return;
    fprintf(stderr,
            "batpipe sources: %zu files: %zu converted, %zu already done, %zu skipped (see %s/skipped.tsv)\n"
            "batpipe sources: %zu classes kept (%zu dropped: fewer than %d distinct recordings), "
            "%zu distinct recordings, %zu rows (%zu train, %zu eval), %.1f minutes\n",
            r->inputs, r->converted, r->reused, r->skipped, o->dir, r->classes, r->classes_dropped,
            o->min_recordings, r->recordings, r->rows, r->train_rows, r->eval_rows, r->minutes);
    char *path = sources_strdupf("%s/classes.tsv", o->dir);
    char *text = NULL;
    bp_error err = BP_ERROR_INIT;
    if (path && sources_read_text(path, &text, NULL, &err) == BP_OK) {
        printf("%-44s %5s %5s %5s %8s\n", "class", "recs", "train", "eval", "minutes");
        char *cursor = text;
        int first = 1;
        for (char *line; (line = sources_next_line(&cursor)) != NULL;) {
            if (first) {
                first = 0;
                continue;
            }
            char *f[8] = {0};
            int nf = 0;
            f[nf++] = line;
            for (char *p = line; *p && nf < 8; p++)
                if (*p == '\t') {
                    *p = '\0';
                    f[nf++] = p + 1;
                }
            if (nf >= 6) printf("%-44.44s %5s %5s %5s %8s\n", f[0], f[2], f[3], f[4], f[5]);
        }
        printf("corpus: %s/corpus.tsv\n", o->dir);
    }
    free(text);
    free(path);
}

static int run_build(cli_ctx *c, const opts *o, const sources_list *list) {
    cli_progress prog;
    cli_progress_init(&prog, o->progress && c->verbosity >= 1);
    log_ctx lc = {c, &prog, NULL};
    sources_build_opts bo;
    memset(&bo, 0, sizeof bo);
    bo.dir = o->dir;
    bo.convert.max_seconds = o->max_seconds;
    bo.convert.min_seconds = 0.05;
    bo.convert.silence_dbfs = -70.0;
    bo.split.min_recordings = o->min_recordings;
    bo.split.eval_fraction = o->eval_fraction;
    bo.split.salt = o->salt;
    bo.jobs = o->jobs;
    bo.log = log_line;
    bo.log_user = &lc;
    bo.progress = cli_progress_update;
    bo.progress_user = &prog;
    bo.cancelled = cli_cancelled;
    sources_build_report rep;
    bp_error err = BP_ERROR_INIT;
    if (c->verbosity >= 1)
        fprintf(stderr, "batpipe sources: converting %zu recordings to 32 kHz mono FLAC in %s/clips (%d threads)\n",
                list->n, o->dir, o->jobs);
    bp_status st = sources_build(list, &bo, &rep, &err);
    cli_progress_finish(&prog);
    if (st != BP_OK) return cli_fail("sources", st, &err);
    print_report(c, o, &rep);
    return rep.rows > 0 ? 0 : 1;
}

/* Relative inputs of a stage list are relative to the list's directory. */
static int build_from_stage(cli_ctx *c, const opts *o, const char *stage) {
    sources_ontology ont;
    int rc = load_ontology(o, &ont);
    if (rc) return rc;
    char *base_dir = sources_dirname(stage);
    if (!base_dir) {
        sources_ontology_free(&ont);
        return 1;
    }
    sources_list list;
    log_ctx lc = {c, NULL, NULL};
    bp_error err = BP_ERROR_INIT;
    bp_status st = sources_stage_read(stage, base_dir, &ont, &list, log_line, &lc, &err);
    free(base_dir);
    if (st != BP_OK) {
        sources_ontology_free(&ont);
        return cli_fail("sources", st, &err);
    }
    rc = run_build(c, o, &list);
    sources_list_free(&list);
    sources_ontology_free(&ont);
    return rc;
}

/* ------------------------------------------------------------- fetch ---- */

static int run_fetch(cli_ctx *c, const opts *o) {
    char *script = find_file(FETCH_REL);
    if (!script) {
        fprintf(stderr, "batpipe sources fetch: error: cannot find %s (run from the batpipe source tree or set "
                        "BATPIPE_SOURCE_DIR)\n", FETCH_REL);
        return 2;
    }
    char *stage = sources_strdupf("%s/build/stage.tsv", o->dir);
    if (!stage) {
        free(script);
        return 1;
    }
    const char *argv[16];
    int n = 0;
    argv[n++] = "python3";
    argv[n++] = script;
    argv[n++] = "--dir";
    argv[n++] = o->dir;
    argv[n++] = "--stage";
    argv[n++] = stage;
    if (o->heavy) argv[n++] = "--heavy";
    if (o->offline) argv[n++] = "--offline";
    if (o->packages) {
        argv[n++] = "--packages";
        argv[n++] = o->packages;
    }
    if (c->verbosity == 0) argv[n++] = "--quiet";
    argv[n] = NULL;
    if (c->verbosity >= 2) {
        fprintf(stderr, "batpipe sources fetch: running");
        for (int i = 0; i < n; i++) fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "batpipe sources fetch: error: cannot start python3: %s\n", strerror(errno));
        free(script);
        free(stage);
        return 1;
    }
    if (pid == 0) {
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "batpipe sources fetch: error: cannot run python3: %s\n", strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    free(script);
    int rc = 0;
    if (WIFSIGNALED(status) || cli_cancelled()) {
        fprintf(stderr, "batpipe sources fetch: stopped; run again to resume\n");
        rc = 130;
    } else if (WEXITSTATUS(status) != 0) {
        fprintf(stderr, "batpipe sources fetch: error: %s failed (exit %d); nothing was converted\n", FETCH_REL,
                WEXITSTATUS(status));
        rc = WEXITSTATUS(status) == 2 ? 2 : 1;
    }
    if (rc == 0) rc = build_from_stage(c, o, stage);
    free(stage);
    return rc;
}

/* ------------------------------------------------------------ import ---- */

static int run_import(cli_ctx *c, const opts *o) {
    sources_ontology ont;
    int rc = load_ontology(o, &ont);
    if (rc) return rc;
    char *name = NULL;
    if (o->name) {
        name = sources_strdup(o->name);
    } else {
        const char *base = strrchr(o->input, '/') ? strrchr(o->input, '/') + 1 : o->input;
        name = sources_strdup(base);
        char *dot = name ? strrchr(name, '.') : NULL;
        if (dot && dot != name) *dot = '\0';
    }
    if (!name) {
        sources_ontology_free(&ont);
        return 1;
    }
    sources_list list;
    log_ctx lc = {c, NULL, NULL};
    bp_error err = BP_ERROR_INIT;
    bp_status st = sources_import_csv(o->input, &ont, name, o->license, &list, log_line, &lc, &err);
    free(name);
    if (st != BP_OK) {
        sources_ontology_free(&ont);
        return cli_fail("sources import", st, &err);
    }
    rc = run_build(c, o, &list);
    sources_list_free(&list);
    sources_ontology_free(&ont);
    return rc;
}

/* ------------------------------------------------------------ entry ----- */

int cmd_sources(cli_ctx *c, int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "fetch") != 0 && strcmp(sub, "build") != 0 && strcmp(sub, "import") != 0) {
        fprintf(stderr, "batpipe sources: unknown subcommand '%s'\n", sub);
        usage(stderr);
        return 2;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    opts o;
    memset(&o, 0, sizeof o);
    o.dir = strcmp(sub, "import") == 0 ? DEFAULT_IMPORT_DIR : DEFAULT_DIR;
    o.license = "unknown";
    o.salt = "batpipe-sources-v1";
    o.jobs = ncpu > 0 ? (ncpu > 64 ? 64 : (int)ncpu) : 1;
    o.min_recordings = strcmp(sub, "import") == 0 ? 1 : 5;
    o.eval_fraction = 0.2;
    o.max_seconds = 30.0;
    o.progress = 1;
    int rc = parse_opts(sub, argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    cli_install_signals();
    if (strcmp(sub, "fetch") == 0) return run_fetch(c, &o);
    if (!o.input) {
        fprintf(stderr, "batpipe sources %s: missing the %s\n", sub,
                strcmp(sub, "build") == 0 ? "stage list (STAGE.tsv)" : "list (LIST.csv)");
        return 2;
    }
    if (strcmp(sub, "build") == 0) {
        return build_from_stage(c, &o, o.input);
    }
    return run_import(c, &o);
}
