/* Kill/resume exactness and checkpoint atomicity, through the CLI.
 *
 * 1. `batpipe train` runs the tiny configuration uninterrupted (reference).
 * 2. The same configuration into another directory is started with --resume,
 *    SIGKILLed after a random delay, started again, ... (checkpoints after
 *    every step, so kills land inside checkpoint writes too), then resumed to
 *    the end. After each kill every checkpoint file present must be complete
 *    (opens, validates, has the trainer metadata); at the end no temporary
 *    file is left and the final weights equal the reference's byte for byte,
 *    as does the log's loss of every step.
 *
 * argv[1]: the test encoder plugin directory. Environment (bp_add_test):
 * BP_BINARY_DIR (the batpipe CLI), BATPIPE_PLUGIN_PATH. */
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batpipe/safetensors.h"
#include "bp_test.h"
#include "train_test_util.h"

static char g_tmp[512], g_cli[1024];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static pid_t spawn(const char *cfg, const char *out_dir, int dry) {
    char ov[900];
    snprintf(ov, sizeof ov, "output.dir=\"%s\"", out_dir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        char log[900];
        snprintf(log, sizeof log, "%s.stderr", out_dir);
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        FILE *o = freopen("/dev/null", "w", stdout);
        (void)o;
        execl(g_cli, g_cli, "-q", "train", cfg, "-o", ov, dry ? "--dry-run" : "--resume", "--no-progress",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Every checkpoint file is complete; count temporaries (*.tmp.*); the newest step. */
static void check_dir(const char *out_dir, int *n_ckpt, int *n_tmp, int *newest) {
    char dir[900];
    snprintf(dir, sizeof dir, "%s/checkpoints", out_dir);
    *n_ckpt = *n_tmp = 0;
    *newest = 0;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.')) continue;
        if (strstr(e->d_name, ".tmp.")) {
            (*n_tmp)++;
            continue;
        }
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        bp_st_file *f = NULL;
        bp_error err = BP_ERROR_INIT;
        CHECKF(bp_st_open(p, &f, &err) == BP_OK, "incomplete checkpoint %s: %s", p, err.msg);
        if (f) {
            const char *fmt = bp_st_metadata(f, "format");
            CHECKF(fmt && strcmp(fmt, "batpipe.train.checkpoint/1") == 0 && bp_st_metadata(f, "step"),
                   "%s: no trainer metadata", p);
            int step = bp_st_metadata(f, "step") ? atoi(bp_st_metadata(f, "step")) : 0;
            if (step > *newest) *newest = step;
            bp_tensor t;
            CHECK(bp_st_get(f, "optimizer.exp_avg_sq.head.weight", &t, &err) == BP_OK);
            bp_st_close(f);
        }
        (*n_ckpt)++;
    }
    closedir(d);
}

static int count_temps_anywhere(const char *out_dir) {
    int n = 0;
    const char *dirs[2] = {out_dir, NULL};
    char ck[900];
    snprintf(ck, sizeof ck, "%s/checkpoints", out_dir);
    dirs[1] = ck;
    for (int i = 0; i < 2; i++) {
        DIR *d = opendir(dirs[i]);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (strstr(e->d_name, ".tmp.") || (e->d_name[0] == '.' && e->d_name[1] && e->d_name[1] != '.')) n++;
        closedir(d);
    }
    return n;
}

static int read_losses(const char *out_dir, double *loss, int cap) {
    char p[900];
    snprintf(p, sizeof p, "%s/train.jsonl", out_dir);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (j && !json_object_get(j, "eval")) {
            int s = (int)json_integer_value(json_object_get(j, "step"));
            CHECKF(s == n + 1, "log line %d has step %d", n + 1, s);
            if (n < cap) loss[n] = json_number_value(json_object_get(j, "loss"));
            n++;
        }
        json_decref(j);
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) TEST_SKIP("usage: test_train_resume PLUGIN_DIR");
    const char *bin = getenv("BP_BINARY_DIR");
    if (!bin) TEST_SKIP("BP_BINARY_DIR is not set");
    snprintf(g_cli, sizeof g_cli, "%s/bin/batpipe", bin);
    if (access(g_cli, X_OK) != 0) TEST_SKIP("%s is not built", g_cli);
    const char *pp = getenv("BATPIPE_PLUGIN_PATH");
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", argv[1], pp && *pp ? ":" : "", pp ? pp : "");
    setenv("BATPIPE_PLUGIN_PATH", path, 1);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/bp_train_resume_%d", (int)getpid());
    tt_rmtree(g_tmp); /* a leftover of an earlier failed run with the same pid */
    if (tt_make_dataset(g_tmp, 24, 6) != 0) {
        fprintf(stderr, "cannot write the test dataset\n");
        return 1;
    }
    enum { STEPS = 60 };
    char cfg[700], ref[700], kil[700];
    snprintf(cfg, sizeof cfg, "%s/kill.cfg", g_tmp);
    snprintf(ref, sizeof ref, "%s/ref", g_tmp);
    snprintf(kil, sizeof kil, "%s/killed", g_tmp);
    tt_write_config(cfg, g_tmp, ref,
                    "stages = ( { steps = 20; losses = [\"class\"]; }, { steps = 40; } );\n"
                    "checkpoint = { every = 1; keep = 2; };\n"
                    "eval = { every = 10; };\n");
    /* 1. the uninterrupted reference */
    double t0 = now_s();
    int rc = wait_exit(spawn(cfg, ref, 0));
    double t_ref = now_s() - t0;
    CHECKF(rc == 0, "reference run exited %d (see %s.stderr)", rc, ref);
    printf("reference run: %.2f s\n", t_ref);
    /* 2. interrupted at targets spread over the run: once the log shows the target step, wait a
     * random part of a step (so the kill lands anywhere in the next step or checkpoint write) */
    static const int targets[] = {4, 12, 21, 30, 38, 47, 55};
    enum { N_TARGETS = sizeof targets / sizeof targets[0] };
    double step_s = t_ref / STEPS;
    uint64_t s = 0x5eed ^ (uint64_t)getpid();
    int kills = 0, finished = 0, tmp_seen = 0, mid_run = 0, last_step = 0;
    char where[512] = "";
    for (int attempt = 0; attempt < 3 * N_TARGETS && !finished; attempt++) {
        while (kills < N_TARGETS && targets[kills] < last_step) kills++; /* already past it */
        pid_t pid = spawn(cfg, kil, 0);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double extra = step_s * 1.5 * (double)(s >> 11) * 0x1.0p-53, armed = -1;
        int status = 0, done = 0, target = kills < N_TARGETS ? targets[kills] : STEPS + 1;
        for (;;) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                done = 1;
                break;
            }
            if (armed < 0) {
                double ls[64];
                if (read_losses(kil, ls, 64) >= target) armed = now_s();
            } else if (now_s() - armed >= extra) {
                break;
            }
            usleep(1000);
        }
        if (!done) {
            /* the first interruption is a Ctrl-C (SIGINT): stop after the step, checkpoint, exit 130 */
            int sig = kills == 0 ? SIGINT : SIGKILL;
            kill(pid, sig);
            int code = wait_exit(pid);
            if (sig == SIGINT) CHECKF(code == 130, "SIGINT: exit code %d, expected 130", code);
            kills++;
            int n_ckpt, n_tmp, newest;
            check_dir(kil, &n_ckpt, &n_tmp, &newest);
            if (sig == SIGINT) { /* the checkpoint of the step it stopped after: the log's last step */
                double ls[64];
                int nl = read_losses(kil, ls, 64);
                CHECKF(nl == newest && n_tmp == 0, "SIGINT: log has %d steps, newest checkpoint %d", nl, newest);
            }
            tmp_seen += n_tmp;
            mid_run += newest > last_step && newest < STEPS;
            last_step = newest;
            size_t wl = strlen(where);
            snprintf(where + wl, sizeof where - wl, "%s%d", wl ? ", " : "", newest);
        } else {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            CHECKF(rc == 0, "resumed run exited %d (see %s.stderr)", rc, kil);
            finished = 1;
        }
    }
    printf("interrupted %d times (SIGINT, then SIGKILL), newest checkpoint at each: step %s of %d (%d temporary "
           "checkpoint files seen after kills), then finished\n",
           kills, where, STEPS, tmp_seen);
    CHECK(finished);
    CHECKF(mid_run >= 5, "only %d interruptions landed while training made progress", mid_run);
    CHECK(count_temps_anywhere(kil) == 0);
    int n_ckpt, n_tmp, newest;
    check_dir(kil, &n_ckpt, &n_tmp, &newest);
    CHECK(newest == STEPS);
    CHECK(n_ckpt == 2 && n_tmp == 0);
    /* 3. the same weights, byte for byte, and the same losses */
    char wa[900], wb[900];
    snprintf(wa, sizeof wa, "%s/weights.safetensors", ref);
    snprintf(wb, sizeof wb, "%s/weights.safetensors", kil);
    bp_st_file *fa = NULL, *fb = NULL;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_st_open(wa, &fa, &err), &err);
    CHECK_OK(bp_st_open(wb, &fb, &err), &err);
    if (fa && fb) {
        CHECK(bp_st_count(fa) == bp_st_count(fb) && bp_st_count(fa) == 15);
        int same = 0;
        for (uint32_t i = 0; i < bp_st_count(fa); i++) {
            bp_tensor ta, tb;
            const char *name = bp_st_name(fa, i);
            int ok = bp_st_get(fa, name, &ta, &err) == BP_OK && bp_st_get(fb, name, &tb, &err) == BP_OK &&
                     bp_tensor_same_shape(&ta, &tb) && memcmp(ta.data, tb.data, bp_tensor_nbytes(&ta)) == 0;
            CHECKF(ok, "tensor %s differs after kills and resumes", name);
            same += ok;
        }
        printf("final weights: %d of %u tensors identical byte for byte\n", same, bp_st_count(fa));
    }
    bp_st_close(fa);
    bp_st_close(fb);
    double la[64], lb[64];
    int na = read_losses(ref, la, 64), nb = read_losses(kil, lb, 64);
    CHECK(na == STEPS && nb == STEPS);
    for (int i = 0; i < STEPS && i < na && i < nb; i++)
        CHECKF(la[i] == lb[i], "step %d: loss %.9g vs %.9g", i + 1, la[i], lb[i]);
    if (!bp_test_failures) tt_rmtree(g_tmp);
    return TEST_RESULT();
}
