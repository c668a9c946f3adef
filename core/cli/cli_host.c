/* The CLI's bp_host: logging to stderr, Ctrl-C cancellation, registry set-up. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t g_cancel = 0;

static void on_signal(int sig) {
    (void)sig;
    if (g_cancel) _exit(130); /* second Ctrl-C: stop now */
    g_cancel = 1;
}

void cli_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_cancelled(void) { return g_cancel != 0; }

static void host_log(const bp_host *h, int32_t level, const char *source, const char *msg) {
    const cli_ctx *c = h->host_data;
    int threshold = c ? c->verbosity : 1;
    /* quiet: errors only; normal: + warnings; verbose: + info; debug: everything */
    if ((level == BP_LOG_WARN && threshold < 1) || (level == BP_LOG_INFO && threshold < 2) ||
        (level == BP_LOG_DEBUG && threshold < 3))
        return;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    const char *ln = level >= 0 && level <= 3 ? names[level] : "log";
    fprintf(stderr, "\r\033[K%s: %s: %s\n", source ? source : "batpipe", ln, msg);
}

static int32_t host_cancelled(const bp_host *h) {
    (void)h;
    return g_cancel != 0;
}

void cli_host_init(cli_ctx *c) {
    memset(&c->host, 0, sizeof c->host);
    c->host.struct_size = sizeof c->host;
    c->host.abi_major = BP_ABI_MAJOR;
    c->host.abi_minor = BP_ABI_MINOR;
    c->host.name = "batpipe";
    c->host.version = BP_VERSION_STRING;
    c->host.host_data = c;
    c->host.log = host_log;
    c->host.cancelled = host_cancelled;
}

bp_status cli_registry(cli_ctx *c, bp_registry **out, bp_error *err) {
    if (!c->reg) {
        bp_status st = bp_registry_new(&c->host, &c->reg, err);
        if (st != BP_OK) return st;
        st = bp_registry_scan_default(c->reg, c->argv0, err);
        if (st != BP_OK) return st;
        if (c->verbosity >= 2)
            for (uint32_t i = 0; i < bp_registry_problem_count(c->reg); i++) {
                bp_plugin_problem pr = bp_registry_problem_at(c->reg, i);
                fprintf(stderr, "batpipe: warning: skipped plugin %s\n", pr.message);
            }
    }
    *out = c->reg;
    return BP_OK;
}

int cli_fail(const char *cmd, bp_status st, const bp_error *err) {
    fprintf(stderr, "\r\033[Kbatpipe %s: error: %s\n", cmd, err && err->msg[0] ? err->msg : bp_status_name(st));
    switch (st) {
    case BP_ERR_CANCELLED: return 130;
    case BP_ERR_INVALID:
    case BP_ERR_SPEC:
    case BP_ERR_NOT_FOUND: return 2;
    default: return 1;
    }
}
