/* A progress bar with rate and ETA on stderr (a line every few seconds when
 * stderr is not a terminal). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

void cli_progress_init(cli_progress *p, int enabled) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDERR_FILENO);
    p->enabled = enabled;
    p->last_print = -1e9;
}

static void fmt_time(double s, char *buf, size_t cap) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

void cli_progress_update(void *user, uint64_t done, uint64_t total, const char *item, double elapsed) {
    cli_progress *p = user;
    if (!p->enabled) return;
    int final = done == total;
    if (!final && elapsed - p->last_print < (p->tty ? 0.1 : 5.0)) return;
    p->last_print = elapsed;
    p->last_done = done;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    char eta[32], el[32];
    fmt_time(rate > 0 ? (double)(total - done) / rate : -1, eta, sizeof eta);
    fmt_time(elapsed, el, sizeof el);
    if (p->tty) {
        int width = 30;
        int fill = total ? (int)((double)width * (double)done / (double)total) : width;
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r\033[K[%s] %llu/%llu  %.2f items/s  elapsed %s  ETA %s  %.40s", bar,
                (unsigned long long)done, (unsigned long long)total, rate, el, eta, item ? item : "");
    } else {
        fprintf(stderr, "progress: %llu/%llu items, %.2f items/s, elapsed %s, ETA %s\n", (unsigned long long)done,
                (unsigned long long)total, rate, el, eta);
    }
    fflush(stderr);
}

void cli_progress_finish(cli_progress *p) {
    if (p->enabled && p->tty) fprintf(stderr, "\n");
}
