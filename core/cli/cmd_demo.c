/* batpipe demo: generate a binaural clip whose source moves from left to
 * right, compute its mel+IPD features with the default pipeline, and show
 * what the features say about where the sound is. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batpipe/audio.h"
#include "batpipe/pipeline.h"
#include "batpipe/safetensors.h"
#include "batpipe/util.h"
#include "cli.h"

#define DEMO_RATE 32000
#define DEMO_SECONDS 10

static const char demo_config[] =
    "# The embedded default pipeline of `batpipe demo` (same schema as configs/*.cfg).\n"
    "name = \"demo\";\n"
    "description = \"mel + IPD features (Spatial-AST front end) of a generated binaural clip\";\n"
    "input = { type = \"audio\"; files = [\"demo_clip.flac\"]; };\n"
    "frontend = { type = \"melipd\"; };\n"
    "output = { dir = \"features\"; save = [\"features\", \"logmel_raw\", \"ipd_sin\"]; };\n";

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}
static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

/* The dry source: a voiced, syllable-gated harmonic complex plus short
 * noise bursts, so that both low and high bands carry energy. */
static void make_source(float *s, int64_t n) {
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    double phase = 0, hp_prev_in = 0, hp_prev_out = 0;
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / DEMO_RATE;
        double f0 = 196.0 * (1.0 + 0.01 * sin(2 * M_PI * 5.0 * t));
        phase += 2 * M_PI * f0 / DEMO_RATE;
        double v = 0;
        for (int k = 1; k <= 30; k++) v += sin(k * phase) / k;
        double syl = fmod(t, 0.33);
        double gate = syl < 0.25 ? sin(M_PI * syl / 0.25) : 0.0;
        double noise_in = rng_uniform(&rng) * 2 - 1;
        double hp = 0.95 * (hp_prev_out + noise_in - hp_prev_in); /* one-pole high-pass */
        hp_prev_in = noise_in;
        hp_prev_out = hp;
        double burst = fmod(t, 0.5) < 0.05 ? 1.0 : 0.0;
        s[i] = (float)(0.3 * v * gate + 0.4 * hp * burst);
    }
}

/* Render the source at azimuth θ(t) from −90° (left) to +90° (right) with a
 * spherical-head ITD (Woodworth) and a broadband head-shadow ILD. */
static void spatialise(const float *src, int64_t n, float *left, float *right) {
    const double head = 0.0875, c = 343.0, base = 0.001;
    double peak = 0;
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / DEMO_RATE;
        double az = (-90.0 + 180.0 * t / DEMO_SECONDS) * M_PI / 180.0;
        double itd = head / c * (sin(az) + az);
        double shadow = pow(10.0, -8.0 * fabs(sin(az)) / 20.0);
        double dl = (base + itd / 2) * DEMO_RATE, dr = (base - itd / 2) * DEMO_RATE;
        double gl = az > 0 ? shadow : 1.0, gr = az < 0 ? shadow : 1.0;
        double pos[2] = {(double)i - dl, (double)i - dr};
        double out[2];
        for (int e = 0; e < 2; e++) {
            double x = pos[e];
            int64_t k = (int64_t)floor(x);
            double fr = x - (double)k;
            double a = (k >= 0 && k < n) ? src[k] : 0.0, b = (k + 1 >= 0 && k + 1 < n) ? src[k + 1] : 0.0;
            out[e] = a + fr * (b - a);
        }
        left[i] = (float)(gl * out[0]);
        right[i] = (float)(gr * out[1]);
        if (fabs(left[i]) > peak) peak = fabs(left[i]);
        if (fabs(right[i]) > peak) peak = fabs(right[i]);
    }
    double g = peak > 0 ? 0.5 / peak : 1.0;
    for (int64_t i = 0; i < n; i++) {
        left[i] = (float)(left[i] * g);
        right[i] = (float)(right[i] * g);
    }
}

/* Per second: the mean level difference right − left of the log-mel maps. */
static int print_trajectory(const char *path) {
    bp_error err = BP_ERROR_INIT;
    bp_st_file *f;
    bp_tensor lm;
    if (bp_st_open(path, &f, &err) != BP_OK) return cli_fail("demo", (bp_status)err.code, &err);
    if (bp_st_get(f, "logmel_raw", &lm, &err) != BP_OK || lm.ndim != 3 || lm.shape[0] != 2) {
        bp_st_close(f);
        return cli_fail("demo", BP_ERR_FORMAT, &err);
    }
    int64_t T = lm.shape[1], M = lm.shape[2];
    const float *x = lm.data;
    printf("\nwhere is the sound? level difference right - left per second (from logmel_raw):\n");
    for (int sec = 0; sec < DEMO_SECONDS; sec++) {
        int64_t a = (int64_t)sec * 100, b = a + 100 < T ? a + 100 : T;
        double d = 0;
        int64_t cnt = 0;
        for (int64_t t = a; t < b; t++)
            for (int64_t m = 0; m < M; m++) {
                double l = x[t * M + m], r = x[(T + t) * M + m];
                if (l > -90 && r > -90) { /* skip silent bins */
                    d += r - l;
                    cnt++;
                }
            }
        d = cnt ? d / (double)cnt : 0;
        int pos = 20 + (int)lround(d * 2.0);
        if (pos < 0) pos = 0;
        if (pos > 40) pos = 40;
        char line[42];
        memset(line, ' ', 41);
        line[20] = '|';
        line[pos] = '*';
        line[41] = '\0';
        printf("  %2d-%2d s  %+6.2f dB  L %s R\n", sec, sec + 1, d, line);
    }
    printf("(the generated source moves from the far left to the far right)\n");
    bp_st_close(f);
    return 0;
}

int cmd_demo(cli_ctx *c, int argc, char **argv) {
    const char *out = "batpipe-demo";
    int clip_only = 0;
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--out") == 0 || strcmp(argv[i], "-d") == 0) && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--clip-only") == 0) {
            clip_only = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: batpipe demo [--out DIR] [--clip-only]\n"
                   "Generates DIR/demo_clip.flac (10 s, 32 kHz, binaural, a source moving left to right),\n"
                   "computes its mel+IPD features into DIR/features/ and prints a summary.\n"
                   "The embedded pipeline is the same as configs/demo.cfg. With --clip-only, only the clip\n"
                   "is written.\n");
            return 0;
        } else {
            fprintf(stderr, "batpipe demo: unknown argument '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    bp_error err = BP_ERROR_INIT;
    bp_status st = BP_OK;
    if ((st = bp_mkdir_p(out, &err)) != BP_OK) return cli_fail("demo", st, &err);
    int64_t n = (int64_t)DEMO_RATE * DEMO_SECONDS;
    int64_t shape[2] = {2, n};
    bp_tensor *audio = NULL;
    float *src = malloc((size_t)n * sizeof(float));
    if (!src || (st = bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &audio, &err)) != BP_OK) {
        free(src);
        return cli_fail("demo", st ? st : BP_ERR_NOMEM, &err);
    }
    make_source(src, n);
    spatialise(src, n, (float *)audio->data, (float *)audio->data + n);
    free(src);
    char clip[4096], features[4096];
    snprintf(clip, sizeof clip, "%s/demo_clip.flac", out);
    st = bp_audio_write(clip, audio, DEMO_RATE, "PCM_16", &err);
    bp_tensor_free(audio);
    if (st != BP_OK) return cli_fail("demo", st, &err);
    printf("wrote     %s (10 s, 2 channels, 32 kHz; source moves from left to right)\n", clip);
    if (clip_only) return 0;
    bp_registry *reg;
    if ((st = cli_registry(c, &reg, &err)) != BP_OK) return cli_fail("demo", st, &err);
    bp_pipeline *p;
    st = bp_pipeline_load_text(reg, demo_config, "<batpipe demo>", out, NULL, 0, &p, &err);
    if (st != BP_OK) return cli_fail("demo", st, &err);
    printf("%s", bp_pipeline_plan(p));
    fflush(stdout);
    cli_install_signals();
    cli_progress bar;
    cli_progress_init(&bar, c->verbosity >= 1);
    st = bp_pipeline_run(p, cli_progress_update, &bar, &err);
    cli_progress_finish(&bar);
    cli_print_summary(bp_pipeline_summary(p));
    snprintf(features, sizeof features, "%s", bp_pipeline_summary(p)->last_output);
    bp_pipeline_free(p);
    if (st != BP_OK) return cli_fail("demo", st, &err);
    return print_trajectory(features);
}
