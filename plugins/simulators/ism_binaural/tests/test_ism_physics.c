/* ism_binaural physics (slow; not under valgrind):
 *  1. T30 (Schroeder, −5…−35 dB, least squares) of the broadband energy of
 *     both ears of a full-length image-source response (no tail, every
 *     order, the same absorption on every wall and band, no air absorption,
 *     so one Eyring T60 for all bands) agrees with Eyring within 10 % in three
 *     near-cubic rooms (the ear signals' energy lies mostly at 1–6 kHz, the
 *     KEMAR ear-canal resonance), and so does T30 in the octave bands 1, 2
 *     and 4 kHz. The 500 Hz band is printed only: at low frequencies (few
 *     modes) a specular box is not diffuse and decays slower than Eyring;
 *  2. in elongated rooms, where a specular shoebox is not diffuse and decays
 *     slower than Eyring, broadband T30 agrees within 5 % with the decay the
 *     image-source lattice itself predicts: E(t) ∝ ⟨(1 − α)^(c·t·Σ|u_i|/L_i)⟩
 *     over directions u (computed here by quadrature, independent of the
 *     plugin);
 *  3. the diffuse tail continues the early part without a level jump: the
 *     level of the early part's last window (the one the plugin reads)
 *     equals, within 1 dB, the tail's level there, extrapolated back along a
 *     line fitted to the tail's first 40 ms (levels averaged over seeds),
 *     for every geometry; and lines fitted to the level 30 ms either side of
 *     T meet within 1 dB on average over random geometries;
 *  4. the number of image sources before T matches 4π(cT)³/(3V);
 *  5. the direct-to-reverberant ratio falls with distance. */
#include <stdint.h>

#include "ism_test_util.h"

#define C20 (331.3 * sqrt(1.0 + 20.0 / 273.15)) /* speed of sound at 20 °C */

/* Energy of both ears at each sample, optionally in one octave band. */
static double *ear_energy(const float *x, int64_t n, double fc) {
    double *e = calloc((size_t)n, sizeof(double)), *y = malloc((size_t)n * sizeof(double));
    for (int ear = 0; ear < 2; ear++) {
        test_octave(x + (size_t)ear * (size_t)n, n, fc, y);
        for (int64_t i = 0; i < n; i++) e[i] += y[i] * y[i];
    }
    free(y);
    return e;
}

/* ------------------------------------------------------------ 1. Eyring -- */

typedef struct cube_room {
    double size[3];
    double alpha; /* every wall, every band */
    double src[3], lis[3];
} cube_room;

static void test_t30_eyring(bp_registry *reg) {
    const cube_room rooms[3] = {
        {{4.0, 4.0, 4.0}, 0.3, {1.2, 1.4, 1.1}, {2.6, 1.6, 2.9}},
        {{5.0, 4.5, 5.0}, 0.25, {1.0, 1.2, 3.8}, {3.3, 1.6, 1.9}},
        {{3.5, 3.0, 3.2}, 0.35, {2.7, 0.9, 0.8}, {1.3, 1.7, 2.2}},
    };
    const double bands[4] = {500.0, 1000.0, 2000.0, 4000.0};
    for (int r = 0; r < 3; r++) {
        const cube_room *cr = &rooms[r];
        bp_sim_room room = test_room(cr->size[0], cr->size[1], cr->size[2], cr->alpha);
        const double v = cr->size[0] * cr->size[1] * cr->size[2];
        const double s = 2.0 * (cr->size[0] * cr->size[1] + cr->size[1] * cr->size[2] + cr->size[0] * cr->size[2]);
        const double a = -log(1.0 - cr->alpha), eyring = 24.0 * log(10.0) * v / (C20 * s * a);
        /* the response must reach ~−50 dB: about 1.2 × Eyring's T60 (the ISM decays slower) */
        char kv_time[64];
        snprintf(kv_time, sizeof kv_time, "max_time_s=%.4f", 1.2 * eyring);
        const char *kv[] = {"tail=false", "air_absorption=false", kv_time};
        bp_error err = BP_ERROR_INIT;
        test_sim t;
        CHECK_OK(test_sim_open(reg, kv, 3, &t, &err), &err);
        if (!t.sim) continue;
        bp_sim_request q = test_request(&room, cr->src, cr->lis, 1.2 * eyring + 0.03, 1);
        int64_t n = 0;
        float *x = test_render(t.sim, &q, &n, &err);
        CHECK_OK(x ? BP_OK : err.code, &err);
        if (x) {
            CHECK_NEAR(test_stat(t.sim, "rt60_eyring_1000hz"), eyring, 1e-4);
            double *e = ear_energy(x, n, 0.0);
            double t30 = test_schroeder(e, n, -5.0, -35.0);
            free(e);
            fprintf(stderr,
                    "room %gx%gx%g, alpha %.2f, %g images: broadband T30 %.3f s, Eyring %.3f s (%+.1f %%), "
                    "Sabine %.3f s\n",
                    cr->size[0], cr->size[1], cr->size[2], cr->alpha, test_stat(t.sim, "n_images"), t30, eyring,
                    100.0 * (t30 / eyring - 1.0), test_stat(t.sim, "rt60_sabine_1000hz"));
            CHECKF(fabs(t30 / eyring - 1.0) < 0.10, "room %d: broadband T30 %.3f vs Eyring %.3f", r, t30, eyring);
            for (int b = 0; b < 4; b++) {
                e = ear_energy(x, n, bands[b]);
                double tb = test_schroeder(e, n, -5.0, -35.0);
                free(e);
                fprintf(stderr, "    %4g Hz: T30 %.3f s (Eyring %+.1f %%)\n", bands[b], tb,
                        100.0 * (tb / eyring - 1.0));
                /* 500 Hz is printed only: a specular box is not diffuse at low frequencies (few modes) */
                if (b > 0)
                    CHECKF(fabs(tb / eyring - 1.0) < 0.10, "room %d, %g Hz: T30 %.3f vs Eyring %.3f", r, bands[b], tb,
                           eyring);
            }
            free(x);
        }
        test_sim_close(&t);
    }
}

/* Absorption that changes with frequency, air absorption on. The bands'
 * filters overlap (raised cosines an octave wide), so an octave measured
 * between two band centres holds both decays and its late part follows the
 * slower one: each band's T30 must fall with rising absorption and lie
 * between its own Eyring T60 and that of the band below (±10 %). */
static void test_t30_bands(bp_registry *reg) {
    const double size[3] = {4.5, 4.0, 4.2}, alpha[7] = {0.1, 0.12, 0.15, 0.2, 0.28, 0.38, 0.45};
    const double src[3] = {0.8, 1.1, 1.0}, lis[3] = {3.0, 1.5, 2.9};
    const double bands[4] = {500.0, 1000.0, 2000.0, 4000.0};
    bp_sim_room room = test_room(size[0], size[1], size[2], 0.0);
    for (int b = 0; b < 7; b++)
        for (int w = 0; w < 6; w++) room.absorption[w][b] = alpha[b];
    const char *kv[] = {"tail=false", "max_time_s=0.55"};
    bp_error err = BP_ERROR_INIT;
    test_sim t;
    CHECK_OK(test_sim_open(reg, kv, 2, &t, &err), &err);
    if (!t.sim) return;
    bp_sim_request q = test_request(&room, src, lis, 0.58, 1);
    int64_t n = 0;
    float *x = test_render(t.sim, &q, &n, &err);
    CHECK_OK(x ? BP_OK : err.code, &err);
    double prev = INFINITY, ey_below = NAN;
    for (int b = 0; x && b < 4; b++) {
        char name[64];
        snprintf(name, sizeof name, "rt60_eyring_%ghz", bands[b]);
        double ey = test_stat(t.sim, name);
        double *e = ear_energy(x, n, bands[b]);
        double tb = test_schroeder(e, n, -5.0, -35.0);
        free(e);
        fprintf(stderr, "room %gx%gx%g, alpha %.2f at %g Hz, air on: T30 %.3f s, Eyring %.3f s (%+.1f %%)%s\n", size[0],
                size[1], size[2], alpha[b + 2], bands[b], tb, ey, 100.0 * (tb / ey - 1.0),
                b == 0 ? " (printed only)" : "");
        if (b > 0) {
            CHECKF(tb > 0.9 * ey && tb < 1.1 * ey_below, "%g Hz: T30 %.3f outside [%.3f, %.3f]", bands[b], tb, 0.9 * ey,
                   1.1 * ey_below);
            CHECKF(tb < prev, "%g Hz: T30 %.3f does not fall with rising absorption", bands[b], tb);
        }
        prev = tb;
        ey_below = ey;
    }
    free(x);
    test_sim_close(&t);
}

/* ------------------------------------------------- 2. lattice prediction -- */

/* T30 of E(t) = ⟨exp(−a·c·t·Σ|u_i|/L_i)⟩ (a = −ln(1 − α)), by quadrature over a Fibonacci sphere. */
static double lattice_t30(const double size[3], double alpha, double tmax) {
    const int nd = 20000, nt = (int)(tmax * 4000.0);
    double *g = malloc(nd * sizeof(double)), *e = malloc((size_t)nt * sizeof(double));
    const double golden = M_PI * (3.0 - sqrt(5.0)), a = -log(1.0 - alpha);
    for (int i = 0; i < nd; i++) {
        double z = 1.0 - (2.0 * i + 1.0) / nd, r = sqrt(1.0 - z * z), ph = golden * i;
        g[i] = fabs(r * cos(ph)) / size[0] + fabs(z) / size[1] + fabs(r * sin(ph)) / size[2];
    }
    for (int k = 0; k < nt; k++) {
        double t = k / 4000.0, s = 0.0;
        for (int i = 0; i < nd; i++) s += exp(-a * C20 * t * g[i]);
        e[k] = s / nd;
    }
    /* Schroeder on the 4 kHz grid (test_schroeder assumes FS: rescale the result) */
    double t30 = test_schroeder(e, nt, -5.0, -35.0) * FS / 4000.0;
    free(g);
    free(e);
    return t30;
}

static void test_t30_lattice(bp_registry *reg) {
    const double sizes[2][3] = {{5.0, 3.0, 4.0}, {7.0, 3.0, 5.0}};
    const double alpha = 0.3;
    const double src[2][3] = {{1.5, 1.2, 1.2}, {1.5, 1.1, 1.2}}, lis[2][3] = {{3.2, 1.6, 2.6}, {4.6, 1.6, 3.1}};
    for (int r = 0; r < 2; r++) {
        double pred = lattice_t30(sizes[r], alpha, 2.0);
        char kv_time[64];
        snprintf(kv_time, sizeof kv_time, "max_time_s=%.4f", 0.9 * pred);
        const char *kv[] = {"tail=false", "air_absorption=false", kv_time};
        bp_error err = BP_ERROR_INIT;
        test_sim t;
        CHECK_OK(test_sim_open(reg, kv, 3, &t, &err), &err);
        if (!t.sim) continue;
        bp_sim_room room = test_room(sizes[r][0], sizes[r][1], sizes[r][2], alpha);
        bp_sim_request q = test_request(&room, src[r], lis[r], 0.9 * pred + 0.03, 1);
        int64_t n = 0;
        float *x = test_render(t.sim, &q, &n, &err);
        CHECK_OK(x ? BP_OK : err.code, &err);
        if (x) {
            double *e = ear_energy(x, n, 0.0);
            double t30 = test_schroeder(e, n, -5.0, -35.0), ey = test_stat(t.sim, "rt60_eyring_1000hz");
            free(e);
            fprintf(stderr,
                    "room %gx%gx%g, alpha %.2f, broadband: T30 %.3f s, lattice prediction %.3f s (%+.1f %%), "
                    "Eyring %.3f s (T30 %+.1f %%), Sabine %.3f s\n",
                    sizes[r][0], sizes[r][1], sizes[r][2], alpha, t30, pred, 100.0 * (t30 / pred - 1.0), ey,
                    100.0 * (t30 / ey - 1.0), test_stat(t.sim, "rt60_sabine_1000hz"));
            CHECKF(fabs(t30 / pred - 1.0) < 0.05, "T30 %.3f vs lattice prediction %.3f", t30, pred);
            free(x);
        }
        test_sim_close(&t);
    }
}

/* ------------------------------------------------------- 3. tail level -- */

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}
static double uniform(uint64_t *s, double lo, double hi) {
    return lo + (hi - lo) * (double)lcg(s) / 9007199254740992.0;
}

/* Mean energy per sample (both ears) over [a, b) s, each sample decayed to `ref` at rate k. */
static double window_energy(const float *x, int64_t n, double a, double b, double k, double ref) {
    int64_t i0 = (int64_t)lround(a * FS), i1 = (int64_t)lround(b * FS);
    double s = 0.0;
    for (int64_t i = i0; i < i1; i++) {
        double w = exp(-k * (ref - (double)i / FS));
        s += ((double)x[i] * x[i] + (double)x[n + i] * x[n + i]) * w;
    }
    return s / (double)(i1 - i0);
}

/* Level (dB) of a line fitted to 5 ms window levels over [a, b), evaluated at t. */
static double fitted_level(float *const *xs, int nx, int64_t n, double a, double b, double t) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (double w0 = a; w0 < b - 1e-9; w0 += 0.005, m++) {
        double l = 0.0;
        for (int k = 0; k < nx; k++) l += 10.0 * log10(window_energy(xs[k], n, w0, w0 + 0.005, 0.0, 0.0));
        l /= nx;
        double tc = w0 + 0.0025;
        sx += tc;
        sy += l;
        sxx += tc * tc;
        sxy += tc * l;
    }
    double slope = (m * sxy - sx * sy) / (m * sxx - sx * sx), icpt = (sy - slope * sx) / m;
    return icpt + slope * t;
}

static void test_tail_level(bp_registry *reg) {
    bp_error err = BP_ERROR_INIT;
    test_sim t;
    CHECK_OK(test_sim_open(reg, NULL, 0, &t, &err), &err);
    if (!t.sim) return;
    const double sizes[3][3] = {{3.0, 2.5, 4.0}, {6.0, 3.0, 5.0}, {12.0, 3.5, 10.0}};
    const double alphas[3] = {0.3, 0.2, 0.15};
    uint64_t rng = 12345;
    for (int r = 0; r < 3; r++) {
        bp_sim_room room = test_room(sizes[r][0], sizes[r][1], sizes[r][2], alphas[r]);
        double worst = 0.0, fit_sum = 0.0;
        int n_fit = 0;
        for (int g = 0; g < 16; g++) {
            double src[3], lis[3], d2;
            do {
                d2 = 0.0;
                for (int a = 0; a < 3; a++) {
                    src[a] = uniform(&rng, 0.3, sizes[r][a] - 0.3);
                    lis[a] = uniform(&rng, 0.3, sizes[r][a] - 0.3);
                    d2 += (src[a] - lis[a]) * (src[a] - lis[a]);
                }
            } while (d2 < 0.25);
            const int seeds = g < 4 ? 8 : 4;
            float *xs[8] = {0};
            int64_t n = 0;
            double T = 0.0, win = 0.0, win_end = 0.0;
            for (int s = 0; s < seeds; s++) {
                bp_sim_request q = test_request(&room, src, lis, 0.3, (uint64_t)(100 * g + s));
                xs[s] = test_render(t.sim, &q, &n, &err);
                CHECK_OK(xs[s] ? BP_OK : err.code, &err);
                if (!xs[s]) break;
                T = test_stat(t.sim, "early_end_s");
                win = test_stat(t.sim, "tail_window_s");
                win_end = test_stat(t.sim, "tail_window_end_s");
            }
            int ok = 1;
            for (int s = 0; s < seeds; s++) ok &= xs[s] != NULL;
            if (ok && g < 4) {
                /* the early part's last complete window (the one the plugin reads, ending one band-filter half
                   length before T) against the tail's level there, extrapolated back along a line fitted to
                   the tail's first 40 ms after the same gap (levels averaged over the seeds) */
                double gap = T - win_end;
                CHECK(gap > 0.0 && gap < 0.03);
                double before = 10.0 * log10(window_energy(xs[0], n, win_end - win, win_end, 0.0, 0.0));
                double after = fitted_level(xs, seeds, n, T + gap, T + gap + 0.04, win_end - 0.5 * win);
                double step = after - before;
                fprintf(stderr,
                        "    geometry %d: source (%.2f, %.2f, %.2f), listener (%.2f, %.2f, %.2f): step %+.2f dB\n", g,
                        src[0], src[1], src[2], lis[0], lis[1], lis[2], step);
                worst = fmax(worst, fabs(step));
                CHECKF(fabs(step) < 1.0, "room %d geometry %d: level step %.2f dB at the crossover", r, g, step);
            }
            if (ok) {
                fit_sum += fitted_level(xs, seeds, n, T, T + 0.03, T) - fitted_level(xs, seeds, n, T - 0.03, T, T);
                n_fit++;
            }
            for (int s = 0; s < seeds; s++) free(xs[s]);
        }
        double fit_mean = n_fit ? fit_sum / n_fit : NAN;
        fprintf(stderr,
                "room %gx%gx%g: window level step max %.2f dB (4 geometries); fitted-line step mean %.2f dB "
                "(%d geometries)\n",
                sizes[r][0], sizes[r][1], sizes[r][2], worst, fit_mean, n_fit);
        CHECKF(fabs(fit_mean) < 1.0, "room %d: mean fitted-line step %.2f dB", r, fit_mean);
    }
    test_sim_close(&t);
}

/* ------------------------------------------- 4. image count, 5. DRR -- */

static void test_counts_and_drr(bp_registry *reg) {
    bp_error err = BP_ERROR_INIT;
    const char *kv[] = {"max_time_s=0.2", "tail=false"};
    test_sim t;
    CHECK_OK(test_sim_open(reg, kv, 2, &t, &err), &err);
    if (!t.sim) return;
    const double sizes[3][3] = {{3.0, 2.5, 4.0}, {6.0, 3.0, 5.0}, {12.0, 3.5, 10.0}};
    for (int r = 0; r < 3; r++) {
        bp_sim_room room = test_room(sizes[r][0], sizes[r][1], sizes[r][2], 0.3);
        const double src[3] = {0.7, 1.1, 0.9}, lis[3] = {sizes[r][0] - 1.1, 1.6, sizes[r][2] - 1.3};
        bp_sim_request q = test_request(&room, src, lis, 0.25, 1);
        const bp_tensor *rir = NULL;
        CHECK_OK(t.sim->render(t.sim, &q, &rir, &err), &err);
        double v = sizes[r][0] * sizes[r][1] * sizes[r][2], est = 4.0 * M_PI * pow(C20 * 0.2, 3.0) / (3.0 * v);
        double got = test_stat(t.sim, "n_images");
        fprintf(stderr, "room %gx%gx%g: %.0f image sources before 0.2 s, 4π(cT)³/3V = %.0f\n", sizes[r][0], sizes[r][1],
                sizes[r][2], got, est);
        CHECKF(fabs(got / est - 1.0) < 0.05, "image count %.0f vs %.0f", got, est);
    }
    test_sim_close(&t);

    CHECK_OK(test_sim_open(reg, NULL, 0, &t, &err), &err);
    if (!t.sim) return;
    bp_sim_room room = test_room(8.0, 3.0, 8.0, 0.25);
    const double lis[3] = {4.0, 1.6, 6.5};
    double prev = INFINITY;
    for (int i = 0; i < 4; i++) {
        double d = 0.5 * (double)(1 << i); /* 0.5, 1, 2, 4 m straight ahead */
        const double src[3] = {4.0, 1.6, 6.5 - d};
        bp_sim_request q = test_request(&room, src, lis, 1.0, 1);
        int64_t n = 0;
        float *x = test_render(t.sim, &q, &n, &err);
        CHECK_OK(x ? BP_OK : err.code, &err);
        if (!x) continue;
        int64_t a = (int64_t)((d / C20 - 0.001) * FS), b = (int64_t)((d / C20 + 0.0025) * FS);
        double direct = test_energy(x, a, b) + test_energy(x + n, a, b);
        double total = test_energy(x, 0, n) + test_energy(x + n, 0, n);
        double drr = 10.0 * log10(direct / (total - direct));
        fprintf(stderr, "DRR at %.1f m: %.2f dB\n", d, drr);
        CHECKF(drr < prev - 2.0, "DRR %.2f dB at %.1f m does not fall (previous %.2f dB)", drr, d, prev);
        prev = drr;
        free(x);
    }
    test_sim_close(&t);
}

int main(void) {
    if (!kemar_present()) TEST_SKIP("%s is missing (install libmysofa1)", KEMAR);
    bp_registry *reg = test_registry();
    CHECK(reg && bp_registry_find(reg, BP_KIND_SIMULATOR, "ism_binaural"));
    if (!reg || !bp_registry_find(reg, BP_KIND_SIMULATOR, "ism_binaural")) {
        bp_registry_free(reg);
        return TEST_RESULT();
    }
    test_t30_eyring(reg);
    test_t30_bands(reg);
    test_t30_lattice(reg);
    test_tail_level(reg);
    test_counts_and_drr(reg);
    bp_registry_free(reg);
    return TEST_RESULT();
}
