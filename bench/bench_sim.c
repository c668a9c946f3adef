/* bench_sim — binaural room responses per second of the ism_binaural
 * simulator, through the registry as `batpipe synth` drives it, on 1 and 2
 * threads (one instance per thread; responses, not the work inside one, are
 * spread over the threads).
 *
 *   bench_sim [-t 1,2] [-n RESPONSES] [-s SECONDS] [-p key=value]... [--dump FILE]
 *
 *   -t LIST      thread counts (default 1,2)
 *   -n N         responses per measurement (default 200)
 *   -s SECONDS   length of each response (default 2.0, BAT's crop)
 *   -p KEY=VAL   a simulator parameter (repeatable), e.g. -p max_order=10 -p tail=false
 *   --dump FILE  write the N requests as CSV (for sim_pyroomacoustics.py) and exit
 *
 * The requests: a fixed table of 8 shoebox rooms from 3×2.5×4 m to
 * 12×3.5×10 m with octave-band materials (α 0.05–0.5), a listener at
 * 1.2–1.8 m height and a source anywhere at least 0.5 m away, drawn with a
 * fixed seed, so every run and every thread count renders the same set.
 * Prints one line per thread count:
 *   ism_binaural threads=T responses=N seconds=S responses_per_s=R ms_per_response=M median_ms=D
 *                mean_images=I mean_tail_diracs=J */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batpipe/registry.h"
#include "batpipe/simulator.h"

#define SR 32000.0
#define MAX_THREADS 16
#define MAX_PARAMS 16
#define N_BANDS 7

/* ------------------------------------------------------------------ rooms -- */

/* energy absorption at 125 Hz … 8 kHz */
static const double mat_plaster[N_BANDS] = {0.10, 0.08, 0.06, 0.05, 0.05, 0.05, 0.05};
static const double mat_brick[N_BANDS] = {0.05, 0.05, 0.05, 0.05, 0.06, 0.07, 0.07};
static const double mat_wood_floor[N_BANDS] = {0.15, 0.11, 0.10, 0.07, 0.06, 0.07, 0.07};
static const double mat_carpet[N_BANDS] = {0.08, 0.12, 0.25, 0.40, 0.50, 0.50, 0.50};
static const double mat_tile_ceiling[N_BANDS] = {0.30, 0.35, 0.45, 0.50, 0.50, 0.50, 0.50};
static const double mat_curtains[N_BANDS] = {0.07, 0.20, 0.40, 0.50, 0.50, 0.50, 0.50};
static const double mat_furnished[N_BANDS] = {0.20, 0.25, 0.30, 0.35, 0.35, 0.35, 0.35}; /* walls with furniture */

typedef struct bench_room {
    double size[3];
    const double *walls[6]; /* x−, x+, floor, ceiling, z−, z+ */
} bench_room;

static const bench_room rooms[8] = {
    {{3.0, 2.5, 4.0}, {mat_plaster, mat_furnished, mat_carpet, mat_plaster, mat_plaster, mat_curtains}},
    {{4.0, 2.6, 3.5}, {mat_furnished, mat_plaster, mat_wood_floor, mat_tile_ceiling, mat_curtains, mat_plaster}},
    {{5.0, 2.7, 4.0}, {mat_plaster, mat_plaster, mat_carpet, mat_plaster, mat_furnished, mat_furnished}},
    {{6.0, 3.0, 5.0}, {mat_brick, mat_furnished, mat_wood_floor, mat_tile_ceiling, mat_plaster, mat_curtains}},
    {{7.0, 2.8, 5.5}, {mat_furnished, mat_furnished, mat_carpet, mat_plaster, mat_brick, mat_plaster}},
    {{8.0, 3.0, 6.0}, {mat_plaster, mat_curtains, mat_wood_floor, mat_tile_ceiling, mat_furnished, mat_plaster}},
    {{10.0, 3.2, 8.0}, {mat_brick, mat_furnished, mat_carpet, mat_tile_ceiling, mat_curtains, mat_furnished}},
    {{12.0, 3.5, 10.0}, {mat_furnished, mat_brick, mat_wood_floor, mat_tile_ceiling, mat_furnished, mat_curtains}},
};

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_uniform(uint64_t *s, double lo, double hi) {
    return lo + (hi - lo) * (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

typedef struct job {
    bp_sim_room room;
    bp_sim_request req;
    int room_index;
} job;

static void make_jobs(job *jobs, int n, double seconds) {
    uint64_t s = 20240601;
    for (int i = 0; i < n; i++) {
        job *j = &jobs[i];
        const bench_room *r = &rooms[i % 8];
        memset(j, 0, sizeof *j);
        j->room_index = i % 8;
        j->room.struct_size = sizeof j->room;
        for (int a = 0; a < 3; a++) j->room.size[a] = r->size[a];
        j->room.n_bands = N_BANDS;
        for (int b = 0; b < N_BANDS; b++) {
            j->room.band_hz[b] = 125.0 * (double)(1 << b);
            for (int w = 0; w < 6; w++) j->room.absorption[w][b] = r->walls[w][b];
            j->room.scattering[b] = 0.1;
        }
        j->room.temperature_c = 20.0;
        j->room.humidity = 50.0;
        j->req.struct_size = sizeof j->req;
        j->req.room = &j->room;
        double d2;
        do {
            j->req.listener[0] = rng_uniform(&s, 0.5, r->size[0] - 0.5);
            j->req.listener[1] = rng_uniform(&s, 1.2, fmin(1.8, r->size[1] - 0.3));
            j->req.listener[2] = rng_uniform(&s, 0.5, r->size[2] - 0.5);
            d2 = 0.0;
            for (int a = 0; a < 3; a++) {
                j->req.source[a] = rng_uniform(&s, 0.3, r->size[a] - 0.3);
                d2 += (j->req.source[a] - j->req.listener[a]) * (j->req.source[a] - j->req.listener[a]);
            }
        } while (d2 < 0.25);
        j->req.sample_rate = SR;
        j->req.max_seconds = seconds;
        j->req.seed = (uint64_t)i;
    }
}

static int dump_jobs(const job *jobs, int n, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "index,room,lx,ly,lz,temperature_c,humidity,sx,sy,sz,rx,ry,rz,seconds");
    for (int w = 0; w < 6; w++)
        for (int b = 0; b < N_BANDS; b++) fprintf(f, ",a%d_%d", w, (int)(125 << b));
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        const job *j = &jobs[i];
        fprintf(f, "%d,%d,%g,%g,%g,%g,%g,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%g", i, j->room_index, j->room.size[0],
                j->room.size[1], j->room.size[2], j->room.temperature_c, j->room.humidity, j->req.source[0],
                j->req.source[1], j->req.source[2], j->req.listener[0], j->req.listener[1], j->req.listener[2],
                j->req.max_seconds);
        for (int w = 0; w < 6; w++)
            for (int b = 0; b < N_BANDS; b++) fprintf(f, ",%g", j->room.absorption[w][b]);
        fputc('\n', f);
    }
    return fclose(f) == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- threads -- */

typedef struct shared {
    const job *jobs;
    int n;
    atomic_int next;
    double *ms;     /* [n] time of each response */
    double *images; /* [n] */
    double *diracs; /* [n] */
    atomic_int failed;
} shared;

typedef struct worker {
    shared *sh;
    bp_simulator *sim;
    pthread_t tid;
    char err[BP_ERROR_MSG_MAX];
} worker;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double stat_of(bp_simulator *sim, const char *name) {
    const char *names[64];
    double values[64];
    uint32_t n = 0;
    bp_error err = BP_ERROR_INIT;
    if (sim->last_stats(sim, names, values, 64, &n, &err) != BP_OK) return NAN;
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return values[i];
    return NAN;
}

static void *work(void *arg) {
    worker *w = arg;
    shared *sh = w->sh;
    bp_error err = BP_ERROR_INIT;
    for (;;) {
        int i = atomic_fetch_add(&sh->next, 1);
        if (i >= sh->n) break;
        const bp_tensor *rir = NULL;
        double t0 = now_s();
        if (w->sim->render(w->sim, &sh->jobs[i].req, &rir, &err) != BP_OK) {
            snprintf(w->err, sizeof w->err, "%s", err.msg);
            atomic_fetch_add(&sh->failed, 1);
            break;
        }
        sh->ms[i] = 1e3 * (now_s() - t0);
        sh->images[i] = stat_of(w->sim, "n_images");
        sh->diracs[i] = stat_of(w->sim, "n_tail_diracs");
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench(bp_registry *reg, const bp_params *params, int threads, const job *jobs, int n) {
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_SIMULATOR, "ism_binaural");
    worker w[MAX_THREADS];
    memset(w, 0, sizeof w);
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.jobs = jobs;
    sh.n = n;
    sh.ms = calloc((size_t)n, sizeof(double));
    sh.images = calloc((size_t)n, sizeof(double));
    sh.diracs = calloc((size_t)n, sizeof(double));
    int rc = 1, made = 0;
    bp_error err = BP_ERROR_INIT;
    if (!sh.ms || !sh.images || !sh.diracs) goto done;
    /* instances are created on the main thread (the factory's rule), one per worker */
    for (; made < threads; made++) {
        void *inst = NULL;
        if (bp_registry_create(reg, comp, params, NULL, &inst, &err) != BP_OK) {
            fprintf(stderr, "bench_sim: %s\n", err.msg);
            goto done;
        }
        w[made].sim = inst;
        w[made].sh = &sh;
        const bp_tensor *rir = NULL; /* warm-up: first-touch of the buffers */
        if (w[made].sim->render(w[made].sim, &jobs[made % n].req, &rir, &err) != BP_OK) {
            fprintf(stderr, "bench_sim: %s\n", err.msg);
            made++;
            goto done;
        }
    }
    atomic_store(&sh.next, 0);
    double t0 = now_s();
    for (int t = 0; t < threads; t++) pthread_create(&w[t].tid, NULL, work, &w[t]);
    for (int t = 0; t < threads; t++) pthread_join(w[t].tid, NULL);
    double secs = now_s() - t0;
    if (atomic_load(&sh.failed)) {
        for (int t = 0; t < threads; t++)
            if (w[t].err[0]) fprintf(stderr, "bench_sim: %s\n", w[t].err);
        goto done;
    }
    double img = 0.0, dir = 0.0;
    for (int i = 0; i < n; i++) {
        img += sh.images[i];
        dir += sh.diracs[i];
    }
    qsort(sh.ms, (size_t)n, sizeof(double), cmp_double);
    printf("ism_binaural threads=%d responses=%d seconds=%.3f responses_per_s=%.1f ms_per_response=%.3f median_ms=%.3f "
           "mean_images=%.0f mean_tail_diracs=%.0f\n",
           threads, n, secs, n / secs, 1e3 * secs / n, sh.ms[n / 2], img / n, dir / n);
    fflush(stdout);
    rc = 0;
done:
    for (int t = 0; t < made; t++) w[t].sim->destroy(w[t].sim);
    free(sh.ms);
    free(sh.images);
    free(sh.diracs);
    return rc;
}

/* ------------------------------------------------------------------ main -- */

static void usage(void) {
    fprintf(stderr, "usage: bench_sim [-t 1,2] [-n RESPONSES] [-s SECONDS] [-p key=value]... [--dump FILE]\n");
}

int main(int argc, char **argv) {
    const char *thread_list = "1,2", *dump = NULL;
    const char *kv[MAX_PARAMS];
    uint32_t n_kv = 0;
    int n = 200;
    double seconds = 2.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            thread_list = argv[++i];
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc && n_kv < MAX_PARAMS)
            kv[n_kv++] = argv[++i];
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            dump = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    if (n < 1 || !(seconds > 0.0)) {
        usage();
        return 2;
    }
    job *jobs = calloc((size_t)n, sizeof *jobs);
    if (!jobs) return 1;
    make_jobs(jobs, n, seconds);
    if (dump) {
        int rc = dump_jobs(jobs, n, dump);
        free(jobs);
        return rc;
    }
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg = NULL;
    int rc = 1;
    bp_paramset *ps = NULL;
    if (bp_registry_new(NULL, &reg, &err) != BP_OK || bp_registry_scan_default(reg, argv[0], &err) != BP_OK) {
        fprintf(stderr, "bench_sim: %s\n", err.msg);
        goto out;
    }
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_SIMULATOR, "ism_binaural");
    if (!comp) {
        fprintf(stderr, "bench_sim: the ism_binaural plugin was not found (set BATPIPE_PLUGIN_PATH)\n");
        goto out;
    }
    if (bp_paramset_from_strings(comp->desc, kv, n_kv, &ps, &err) != BP_OK) {
        fprintf(stderr, "bench_sim: %s\n", err.msg);
        goto out;
    }
    rc = 0;
    for (const char *p = thread_list; *p && rc == 0;) {
        int t = atoi(p);
        if (t < 1 || t > MAX_THREADS) {
            fprintf(stderr, "bench_sim: thread count %d out of range\n", t);
            rc = 2;
            break;
        }
        rc = bench(reg, bp_paramset_params(ps), t, jobs, n);
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
    }
out:
    bp_paramset_free(ps);
    bp_registry_free(reg);
    free(jobs);
    return rc;
}
