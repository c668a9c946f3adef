/* batpipe — command-line entry point. */
#include <stdio.h>
#include <string.h>

#include "batpipe/registry.h"
#include "batpipe/version.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "batpipe %s — spatial-audio perception and reasoning toolkit (plugin ABI %d.%d)\n"
            "\n"
            "usage: batpipe [-q|-v|-vv] COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  run FILE.cfg [-o key=value ...]   run a pipeline (see docs/config.md)\n"
            "  plugins [NAME | --validate F.so]  list plugins, describe one, or check a plugin file\n"
            "  demo [--out DIR]                  features of a generated binaural clip, end to end\n"
            "  synth DATA.cfg | synth merge DIR  generate a SpatialSoundQA-style set (docs/synth.md)\n"
            "  sources fetch|build|import ...    the real-recordings source corpus (docs/sources.md)\n"
            "  report DIR... [-o TABLE.md]       evaluation reports of several runs as one table (docs/metrics.md)\n"
            "  train FILE.cfg [--resume]         train an encoder (docs/train.md)\n"
            "  version                           print versions\n"
            "  help                              this text\n"
            "\n"
            "options:\n"
            "  -q   errors only      -v   more detail (plugin load problems, info logs)\n"
            "environment:\n"
            "  BATPIPE_PLUGIN_PATH   extra plugin directories, searched first (colon-separated)\n",
            BP_VERSION_STRING, BP_ABI_MAJOR, BP_ABI_MINOR);
}

int main(int argc, char **argv) {
    cli_ctx c;
    memset(&c, 0, sizeof c);
    c.verbosity = 1;
    c.argv0 = argv[0];
    cli_host_init(&c);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-q") == 0) c.verbosity = 0;
        else if (strcmp(argv[i], "-v") == 0) c.verbosity = 2;
        else if (strcmp(argv[i], "-vv") == 0) c.verbosity = 3;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("batpipe %s (plugin ABI %d.%d)\n", BP_VERSION_STRING, BP_ABI_MAJOR, BP_ABI_MINOR);
            return 0;
        } else {
            fprintf(stderr, "batpipe: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    int rc;
    if (strcmp(cmd, "run") == 0) rc = cmd_run(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "plugins") == 0) rc = cmd_plugins(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "demo") == 0) rc = cmd_demo(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "synth") == 0) rc = cmd_synth(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "sources") == 0) rc = cmd_sources(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "ask") == 0) rc = cmd_ask(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "report") == 0) rc = cmd_report(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "train") == 0) rc = cmd_train(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "version") == 0) {
        printf("batpipe %s (plugin ABI %d.%d)\n", BP_VERSION_STRING, BP_ABI_MAJOR, BP_ABI_MINOR);
        rc = 0;
    } else if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        rc = 0;
    } else {
        fprintf(stderr, "batpipe: unknown command '%s'\n\n", cmd);
        usage(stderr);
        rc = 2;
    }
    bp_registry_free(c.reg);
    return rc;
}
