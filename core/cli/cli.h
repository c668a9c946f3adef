/* The batpipe command-line tool: shared pieces of the subcommands. */
#ifndef BP_CLI_H
#define BP_CLI_H

#include <stdint.h>

#include "batpipe/error.h"
#include "batpipe/host.h"
#include "batpipe/registry.h"

typedef struct cli_ctx {
    int verbosity;       /* 0 quiet, 1 normal, 2 verbose, 3 debug */
    const char *argv0;
    bp_host host;
    bp_registry *reg;    /* created on first use */
} cli_ctx;

/* cli_host.c */
void cli_host_init(cli_ctx *c);
/* Install SIGINT/SIGTERM handlers that set the cancel flag. */
void cli_install_signals(void);
int cli_cancelled(void);
/* Create the registry and scan the default search path. */
bp_status cli_registry(cli_ctx *c, bp_registry **out, bp_error *err);
/* Print "batpipe: error: <msg>" and return the exit code for a status. */
int cli_fail(const char *cmd, bp_status st, const bp_error *err);

/* progress.c */
typedef struct cli_progress {
    int tty;
    int enabled;
    double last_print;
    uint64_t last_done;
} cli_progress;
void cli_progress_init(cli_progress *p, int enabled);
void cli_progress_update(void *user, uint64_t done, uint64_t total, const char *item, double elapsed);
void cli_progress_finish(cli_progress *p);

/* subcommands */
int cmd_run(cli_ctx *c, int argc, char **argv);
int cmd_plugins(cli_ctx *c, int argc, char **argv);
int cmd_demo(cli_ctx *c, int argc, char **argv);
int cmd_synth(cli_ctx *c, int argc, char **argv);
int cmd_sources(cli_ctx *c, int argc, char **argv);
int cmd_ask(cli_ctx *c, int argc, char **argv);
int cmd_report(cli_ctx *c, int argc, char **argv);
int cmd_train(cli_ctx *c, int argc, char **argv);

/* run.c: print a run summary */
struct bp_run_summary;
void cli_print_summary(const struct bp_run_summary *s);

#endif
