/* bench_melipd — throughput of the melipd frontend on 10 s binaural clips,
 * through the plugin exactly as a pipeline drives it (registry, create,
 * prepare, process with only the main "features" output), excluding file
 * I/O: the clips are synthesised in memory.
 *
 *   bench_melipd [-t 1,2] [-s SECONDS] [-w WARMUP]
 *
 * For each thread count: WARMUP untimed clips, then clips until SECONDS of
 * wall time have passed (at least 10); prints one line per thread count:
 *   melipd threads=N clips=K seconds=S clips_per_s=R ms_per_clip=M median_ms=D best_ms=B
 * clips_per_s and ms_per_clip are wall-clock averages; median_ms (the median
 * time of one clip) is the robust figure on a machine with other load. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TIMED 100000

#include "batpipe/frontend.h"
#include "batpipe/registry.h"
#include "batpipe/spec.h"

#define SR 32000
#define N_SAMPLES 320000

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A binaural test clip: tones, a chirp and noise, right ear delayed. */
static void synth(float *x) {
    uint32_t s = 1u;
    for (int64_t i = 0; i < N_SAMPLES; i++) {
        double t = (double)i / SR;
        s = s * 1664525u + 1013904223u;
        double noise = ((double)(s >> 8) / 16777216.0 - 0.5) * 0.02;
        double v = 0.3 * sin(2.0 * M_PI * 440.0 * t) + 0.1 * sin(2.0 * M_PI * (200.0 + 700.0 * t) * t) + noise;
        x[i] = (float)v;
    }
    for (int64_t i = 0; i < N_SAMPLES; i++) x[N_SAMPLES + i] = i >= 9 ? 0.7f * x[i - 9] : 0.0f;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench(bp_registry *reg, int32_t threads, double seconds, int warmup, const bp_tensor *clip) {
    bp_error err = BP_ERROR_INIT;
    const bp_component_info *comp = bp_registry_find(reg, BP_KIND_FRONTEND, "melipd");
    if (!comp) {
        fprintf(stderr, "bench_melipd: the melipd plugin was not found (set BATPIPE_PLUGIN_PATH)\n");
        return 1;
    }
    bp_registry_set_threads(reg, threads);
    bp_paramset *ps = NULL;
    void *inst = NULL;
    bp_tensor *feat = NULL;
    double *times = NULL;
    int rc = 1;
    if (bp_paramset_from_strings(comp->desc, NULL, 0, &ps, &err) != BP_OK ||
        bp_registry_create(reg, comp, bp_paramset_params(ps), NULL, &inst, &err) != BP_OK) {
        fprintf(stderr, "bench_melipd: %s\n", err.msg);
        bp_paramset_free(ps);
        return 1;
    }
    bp_stage *st = inst;
    bp_spec have = bp_spec_of(clip, SR);
    bp_port ports[BP_MAX_OUTPUTS];
    uint32_t n = BP_MAX_OUTPUTS;
    bp_tensor *outs[BP_MAX_OUTPUTS] = {NULL};
    if (st->prepare(st, &have, ports, &n, &err) != BP_OK ||
        bp_tensor_new(NULL, BP_DTYPE_F32, ports[0].spec.ndim, ports[0].spec.shape, &feat, &err) != BP_OK) {
        fprintf(stderr, "bench_melipd: %s\n", err.msg);
        goto done;
    }
    outs[0] = feat; /* intermediates not requested, as in a pipeline */
    for (int i = 0; i < warmup; i++)
        if (st->process(st, clip, outs, n, &err) != BP_OK) {
            fprintf(stderr, "bench_melipd: %s\n", err.msg);
            goto done;
        }
    times = malloc(MAX_TIMED * sizeof *times);
    if (!times) goto done;
    int64_t clips = 0;
    double t0 = now_s(), t = t0;
    while ((clips < 10 || t - t0 < seconds) && clips < MAX_TIMED) {
        double a = now_s();
        if (st->process(st, clip, outs, n, &err) != BP_OK) {
            fprintf(stderr, "bench_melipd: %s\n", err.msg);
            goto done;
        }
        t = now_s();
        times[clips++] = t - a;
    }
    double el = t - t0;
    qsort(times, (size_t)clips, sizeof *times, cmp_double);
    double median = clips % 2 ? times[clips / 2] : 0.5 * (times[clips / 2 - 1] + times[clips / 2]);
    printf("melipd threads=%d clips=%lld seconds=%.3f clips_per_s=%.2f ms_per_clip=%.3f median_ms=%.3f best_ms=%.3f\n",
           (int)threads, (long long)clips, el, (double)clips / el, 1e3 * el / (double)clips, 1e3 * median,
           1e3 * times[0]);
    rc = 0;
done:
    free(times);
    bp_tensor_free(feat);
    st->destroy(st);
    bp_paramset_free(ps);
    return rc;
}

int main(int argc, char **argv) {
    const char *threads_arg = "1,2";
    double seconds = 3.0;
    int warmup = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) threads_arg = argv[++i];
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) warmup = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-t 1,2] [-s seconds] [-w warmup]\n", argv[0]);
            return 2;
        }
    }
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg = NULL;
    if (bp_registry_new(NULL, &reg, &err) != BP_OK || bp_registry_scan_default(reg, argv[0], &err) != BP_OK) {
        fprintf(stderr, "bench_melipd: %s\n", err.msg);
        bp_registry_free(reg);
        return 1;
    }
    const int64_t shape[2] = {2, N_SAMPLES};
    bp_tensor *clip = NULL;
    if (bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &clip, &err) != BP_OK) {
        fprintf(stderr, "bench_melipd: %s\n", err.msg);
        bp_registry_free(reg);
        return 1;
    }
    synth(clip->data);
    int rc = 0;
    char *list = strdup(threads_arg), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save))
        rc = bench(reg, (int32_t)atoi(tok), seconds, warmup, clip);
    free(list);
    bp_tensor_free(clip);
    bp_registry_free(reg);
    return rc;
}
