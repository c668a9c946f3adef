/* ism_binaural through the registry, as `batpipe synth` uses it:
 *  - the direct sound arrives at d/c (within one sample; onset = first
 *    crossing of −20 dB of the peak, as the plugin defines the HRIR's time
 *    zero) with 1/d amplitude (energy ratios of two distances);
 *  - fully absorbing walls (α = 1) leave only the direct sound;
 *  - a source at +x (BAT azimuth 0°) is louder and earlier at the right ear
 *    (ITD 0.6–0.8 ms), mirrored at −x; front and back give ITD ≈ 0;
 *  - direction stats: BAT azimuth, the HRIR used, elevations below −40°;
 *  - Sabine / Eyring stats against the formulas;
 *  - same seed → same bytes (also across instances and with two instances
 *    rendering at once on two threads), another seed → another tail;
 *  - bad input: missing or corrupt SOFA, positions outside the room or too
 *    close to a wall, NaN/Inf, another sample rate, bad bands. */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "ism_test_util.h"

#define C20 (331.3 * sqrt(1.0 + 20.0 / 273.15)) /* speed of sound at 20 °C */

/* ------------------------------------------------------------ direct path -- */

static void test_direct(test_sim def, test_sim dry) {
    bp_error err = BP_ERROR_INIT;
    bp_sim_room room = test_room(10.0, 4.0, 10.0, 1.0);
    const double lis[3] = {5.0, 1.6, 6.0};
    const double dist[3] = {1.0, 2.0, 3.7};
    double energy[3] = {0};
    for (int i = 0; i < 3; i++) {
        const double src[3] = {5.0, 1.6, 6.0 - dist[i]}; /* straight ahead (−z) */
        bp_sim_request q = test_request(&room, src, lis, 0.1, 1);
        int64_t n = 0;
        float *x = test_render(def.sim, &q, &n, &err);
        CHECK_OK(x ? BP_OK : err.code, &err);
        if (!x) continue;
        double expect = dist[i] / C20 * FS;
        double on_l = test_onset(x, n), on_r = test_onset(x + n, n);
        CHECKF(fabs(0.5 * (on_l + on_r) - expect) <= 1.0, "d = %g m: onset %.3f / %.3f samples, d/c = %.3f", dist[i],
               on_l, on_r, expect);
        CHECK_NEAR(test_stat(def.sim, "direct_delay_s"), dist[i] / C20, 1e-6);
        CHECK_NEAR(test_stat(def.sim, "direct_distance_m"), dist[i], 1e-9);
        CHECK_NEAR(test_stat(def.sim, "direct_azimuth_deg"), 90.0, 1e-9);
        CHECK(test_stat(def.sim, "n_images") == 1.0);
        fprintf(stderr, "direct d = %.1f m: onset L %.3f R %.3f samples, d/c·fs = %.3f\n", dist[i], on_l, on_r, expect);
        free(x);
        /* 1/d: energy ∝ 1/d² without air absorption */
        x = test_render(dry.sim, &q, &n, &err);
        CHECK_OK(x ? BP_OK : err.code, &err);
        if (!x) continue;
        energy[i] = test_energy(x, 0, 2 * n);
        free(x);
    }
    for (int i = 1; i < 3; i++) {
        double ratio = energy[i] / energy[0], expect = (dist[0] / dist[i]) * (dist[0] / dist[i]);
        CHECKF(fabs(ratio / expect - 1.0) < 0.01, "energy ratio d=%g/d=%g: %.5f, 1/d² gives %.5f", dist[i], dist[0],
               ratio, expect);
        fprintf(stderr, "1/d: E(%.1f)/E(%.1f) = %.5f (1/d²: %.5f): amplitude ratio %.5f (1/d: %.5f)\n", dist[i],
                dist[0], ratio, expect, sqrt(ratio), dist[0] / dist[i]);
    }
}

/* α = 1 on every wall: only the direct sound, no reflections, no tail. */
static void test_anechoic(test_sim t) {
    bp_error err = BP_ERROR_INIT;
    const double lis[3] = {2.0, 1.5, 2.5}, src[3] = {3.2, 1.1, 1.0};
    const double d = sqrt(1.2 * 1.2 + 0.4 * 0.4 + 1.5 * 1.5);
    for (int pass = 0; pass < 2; pass++) {
        bp_sim_room room = test_room(4.0, 2.7, 5.0, pass == 0 ? 1.0 : 0.3);
        bp_sim_request q = test_request(&room, src, lis, 1.0, 3);
        int64_t n = 0;
        float *x = test_render(t.sim, &q, &n, &err);
        CHECK_OK(x ? BP_OK : err.code, &err);
        if (!x) continue;
        int64_t a = (int64_t)((d / C20 - 0.002) * FS), b = (int64_t)((d / C20 + 0.02) * FS);
        double total = test_energy(x, 0, n) + test_energy(x + n, 0, n);
        double outside =
            test_energy(x, 0, a) + test_energy(x, b, n) + test_energy(x + n, 0, a) + test_energy(x + n, b, n);
        if (pass == 0) {
            CHECKF(outside < 1e-9 * total, "anechoic: energy outside the direct sound %.3g of %.3g", outside, total);
            CHECK(test_stat(t.sim, "n_images") == 1.0);
            CHECK(test_stat(t.sim, "n_tail_diracs") == 0.0);
            CHECK(test_stat(t.sim, "rt60_eyring_1000hz") == 0.0);
            fprintf(stderr, "alpha = 1: energy outside the direct sound %.3g of %.3g\n", outside, total);
        } else {
            CHECKF(outside > 0.1 * total, "alpha = 0.3: energy outside the direct sound only %.3g of %.3g", outside,
                   total);
            CHECK(test_stat(t.sim, "n_images") > 100.0);
            CHECK(test_stat(t.sim, "n_tail_diracs") > 100.0);
        }
        free(x);
    }
}

/* ---------------------------------------------------------------- binaural -- */

typedef struct ear_cues {
    double itd_ms, ild_db, onset_l, onset_r;
} ear_cues;

static ear_cues cues(bp_simulator *sim, const double src[3], bp_error *err) {
    ear_cues c = {NAN, NAN, NAN, NAN};
    bp_sim_room room = test_room(10.0, 4.0, 10.0, 1.0);
    const double lis[3] = {5.0, 1.6, 5.0};
    bp_sim_request q = test_request(&room, src, lis, 0.05, 1);
    int64_t n = 0;
    float *x = test_render(sim, &q, &n, err);
    if (!x) return c;
    c.itd_ms = test_itd_ms(x, x + n, 0, n, 40);
    c.ild_db = 10.0 * log10(test_energy(x + n, 0, n) / test_energy(x, 0, n));
    c.onset_l = test_onset(x, n);
    c.onset_r = test_onset(x + n, n);
    free(x);
    return c;
}

static void test_binaural(test_sim t) {
    bp_error err = BP_ERROR_INIT;
    const double right[3] = {7.0, 1.6, 5.0}, left[3] = {3.0, 1.6, 5.0}, front[3] = {5.0, 1.6, 3.0},
                 back[3] = {5.0, 1.6, 7.0};
    ear_cues r = cues(t.sim, right, &err);
    CHECK_NEAR(test_stat(t.sim, "direct_azimuth_deg"), 0.0, 1e-9);
    CHECK_NEAR(test_stat(t.sim, "direct_hrir_azimuth_deg"), 270.0, 1e-3);
    CHECK_NEAR(test_stat(t.sim, "direct_hrir_elevation_deg"), 0.0, 1e-3);
    ear_cues l = cues(t.sim, left, &err);
    CHECK_NEAR(test_stat(t.sim, "direct_azimuth_deg"), 180.0, 1e-9);
    CHECK_NEAR(test_stat(t.sim, "direct_hrir_azimuth_deg"), 90.0, 1e-3);
    ear_cues f = cues(t.sim, front, &err);
    CHECK_NEAR(test_stat(t.sim, "direct_azimuth_deg"), 90.0, 1e-9);
    CHECK_NEAR(test_stat(t.sim, "direct_hrir_azimuth_deg"), 0.0, 1e-3);
    ear_cues b = cues(t.sim, back, &err);
    CHECK_NEAR(test_stat(t.sim, "direct_azimuth_deg"), 270.0, 1e-9);
    CHECK_NEAR(test_stat(t.sim, "direct_hrir_azimuth_deg"), 180.0, 1e-3);
    fprintf(stderr,
            "+x: ITD %.3f ms ILD %.2f dB onsets L %.2f R %.2f | -x: ITD %.3f ms ILD %.2f dB | front: ITD %.3f "
            "ILD %.2f | back: ITD %.3f ILD %.2f\n",
            r.itd_ms, r.ild_db, r.onset_l, r.onset_r, l.itd_ms, l.ild_db, f.itd_ms, f.ild_db, b.itd_ms, b.ild_db);
    /* +x: right ear louder and earlier, ITD of KEMAR at 90° */
    CHECKF(r.ild_db > 6.0, "+x: ILD %.2f dB", r.ild_db);
    CHECKF(r.onset_r < r.onset_l - 10.0, "+x: onsets L %.2f R %.2f", r.onset_l, r.onset_r);
    CHECKF(r.itd_ms > 0.6 && r.itd_ms < 0.8, "+x: ITD %.3f ms", r.itd_ms);
    /* −x: mirrored */
    CHECKF(fabs(l.itd_ms + r.itd_ms) < 0.02, "mirror: ITD %.3f vs %.3f ms", l.itd_ms, r.itd_ms);
    CHECKF(fabs(l.ild_db + r.ild_db) < 0.2, "mirror: ILD %.2f vs %.2f dB", l.ild_db, r.ild_db);
    CHECKF(l.onset_l < l.onset_r - 10.0, "-x: onsets L %.2f R %.2f", l.onset_l, l.onset_r);
    /* front and back: no interaural difference */
    CHECKF(fabs(f.itd_ms) < 0.04 && fabs(b.itd_ms) < 0.04, "front/back ITD %.3f / %.3f ms", f.itd_ms, b.itd_ms);
    CHECKF(fabs(f.ild_db) < 0.5 && fabs(b.ild_db) < 0.5, "front/back ILD %.2f / %.2f dB", f.ild_db, b.ild_db);

    /* below the lowest measured elevation (−40°): the −40° ring, reported */
    bp_sim_room room = test_room(10.0, 4.0, 10.0, 0.5);
    const double lis[3] = {5.0, 1.8, 5.0}, low[3] = {5.5, 0.3, 5.0};
    bp_sim_request q = test_request(&room, low, lis, 0.2, 1);
    const bp_tensor *rir = NULL;
    CHECK_OK(t.sim->render(t.sim, &q, &rir, &err), &err);
    CHECK_NEAR(test_stat(t.sim, "direct_elevation_deg"), atan2(-1.5, 0.5) * 180.0 / M_PI, 1e-9);
    CHECK(test_stat(t.sim, "direct_elevation_clamped") == 1.0);
    CHECK_NEAR(test_stat(t.sim, "direct_hrir_elevation_deg"), -40.0, 1e-3);
    CHECK_NEAR(test_stat(t.sim, "direct_hrir_azimuth_deg"), 270.0, 1e-3);
    CHECK(test_stat(t.sim, "n_images_below_hrtf") >= 1.0);
    /* and one above it is not clamped */
    const double level[3] = {5.5, 1.5, 5.0};
    q = test_request(&room, level, lis, 0.2, 1);
    CHECK_OK(t.sim->render(t.sim, &q, &rir, &err), &err);
    CHECK(test_stat(t.sim, "direct_elevation_clamped") == 0.0);
}

/* ------------------------------------------------------------------- stats -- */

static void test_stats(test_sim t) {
    bp_error err = BP_ERROR_INIT;
    bp_sim_room room = test_room(5.0, 3.0, 4.0, 0.3);
    room.absorption[2][3] = 0.6; /* floor at 1 kHz */
    const double src[3] = {1.5, 1.2, 1.0}, lis[3] = {3.0, 1.6, 2.5};
    bp_sim_request q = test_request(&room, src, lis, 2.0, 9);
    const bp_tensor *rir = NULL;
    CHECK_OK(t.sim->render(t.sim, &q, &rir, &err), &err);
    CHECK(rir && rir->ndim == 2 && rir->shape[0] == 2 && rir->shape[1] == 64000 && rir->dtype == BP_DTYPE_F32);
    if (rir) {
        int finite = 1;
        const float *x = rir->data;
        for (int64_t i = 0; i < 2 * rir->shape[1]; i++) finite &= isfinite(x[i]) ? 1 : 0;
        CHECK(finite);
    }
    const double v = 60.0, s = 94.0, k60 = 24.0 * log(10.0);
    const double a1k = (0.3 * (94.0 - 20.0) + 0.6 * 20.0) / s; /* floor: 5 × 4 m² */
    CHECK_NEAR(test_stat(t.sim, "volume_m3"), v, 1e-9);
    CHECK_NEAR(test_stat(t.sim, "surface_m2"), s, 1e-9);
    CHECK_NEAR(test_stat(t.sim, "speed_of_sound_m_s"), C20, 1e-3);
    CHECK_NEAR(test_stat(t.sim, "rt60_sabine_500hz"), k60 * v / (C20 * s * 0.3), 1e-4);
    CHECK_NEAR(test_stat(t.sim, "rt60_eyring_500hz"), k60 * v / (C20 * -s * log(1.0 - 0.3)), 1e-4);
    CHECK_NEAR(test_stat(t.sim, "rt60_eyring_1000hz"), k60 * v / (C20 * -s * log(1.0 - a1k)), 1e-4);
    CHECK_NEAR(test_stat(t.sim, "mean_absorption_1000hz"), a1k, 1e-12);
    CHECK(test_stat(t.sim, "early_end_s") == 0.08);
    CHECK(test_stat(t.sim, "tail_window_s") >= 0.01 - 1e-9);
    CHECK(isfinite(test_stat(t.sim, "tail_level_db_1000hz")));
    double n_img = test_stat(t.sim, "n_images"), est = 4.0 * M_PI * pow(C20 * 0.08, 3.0) / (3.0 * v);
    CHECKF(fabs(n_img / est - 1.0) < 0.1, "image count %.0f vs 4π(cT)³/3V = %.0f", n_img, est);
    /* last_stats: count query and a short buffer */
    uint32_t n = 0;
    CHECK_OK(t.sim->last_stats(t.sim, NULL, NULL, 0, &n, &err), &err);
    CHECK(n == 20 + 4 * 7);
    const char *names[3];
    double values[3];
    CHECK_OK(t.sim->last_stats(t.sim, names, values, 3, &n, &err), &err);
    CHECK(n == 3 && strcmp(names[0], "n_images") == 0 && values[0] == n_img);
}

/* ------------------------------------------------------------- determinism -- */

typedef struct render_job {
    bp_simulator *sim;
    bp_sim_request q;
    float *out;
    int64_t n;
    bp_error err;
} render_job;

static void *render_thread(void *arg) {
    render_job *j = arg;
    j->err = (bp_error)BP_ERROR_INIT;
    j->out = test_render(j->sim, &j->q, &j->n, &j->err);
    return NULL;
}

static void test_determinism(test_sim a, test_sim b) {
    bp_error err = BP_ERROR_INIT;
    bp_sim_room room = test_room(6.0, 3.0, 5.0, 0.2);
    const double src[3] = {1.5, 1.2, 1.5}, lis[3] = {4.0, 1.6, 3.5};
    bp_sim_request q = test_request(&room, src, lis, 2.0, 42);
    int64_t n1 = 0, n2 = 0, n3 = 0, n4 = 0;
    float *x1 = test_render(a.sim, &q, &n1, &err);
    float *x2 = test_render(a.sim, &q, &n2, &err);
    float *x3 = test_render(b.sim, &q, &n3, &err);
    q.seed = 43;
    float *x4 = test_render(a.sim, &q, &n4, &err);
    CHECK(x1 && x2 && x3 && x4);
    if (x1 && x2 && x3 && x4) {
        CHECK(n1 == 64000 && n2 == n1 && n3 == n1 && n4 == n1);
        CHECK(memcmp(x1, x2, 2 * (size_t)n1 * sizeof(float)) == 0);
        CHECK(memcmp(x1, x3, 2 * (size_t)n1 * sizeof(float)) == 0);
        CHECK(memcmp(x1, x4, 2 * (size_t)n1 * sizeof(float)) != 0);
        /* the seed only changes the tail: the early part before T − 20 ms is the same */
        int64_t early = (int64_t)((0.08 - 0.02) * FS);
        CHECK(memcmp(x1, x4, (size_t)early * sizeof(float)) == 0);
        CHECK(memcmp(x1 + n1, x4 + n1, (size_t)early * sizeof(float)) == 0);
    }
    /* two instances rendering at the same time on two threads give the same bytes as one after the other */
    render_job jobs[2] = {{a.sim, q, NULL, 0, BP_ERROR_INIT}, {b.sim, q, NULL, 0, BP_ERROR_INIT}};
    jobs[0].q.seed = 42;
    pthread_t tid[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&tid[i], NULL, render_thread, &jobs[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(tid[i], NULL);
    CHECK(jobs[0].out && jobs[1].out);
    if (jobs[0].out && jobs[1].out && x1 && x4) {
        CHECK(memcmp(jobs[0].out, x1, 2 * (size_t)n1 * sizeof(float)) == 0);
        CHECK(memcmp(jobs[1].out, x4, 2 * (size_t)n4 * sizeof(float)) == 0);
    }
    for (int i = 0; i < 2; i++) free(jobs[i].out);
    free(x1);
    free(x2);
    free(x3);
    free(x4);
}

/* ------------------------------------------------------------------ orders -- */

/* max_order: without a tail every image of order <= N is kept (the lattice has
 * (2N+1)(2N²+2N+3)/3 of them); with a tail the early part stops at the first
 * image of order N+1 and the tail starts there. */
static void test_orders(bp_registry *reg) {
    bp_error err = BP_ERROR_INIT;
    const char *kv_notail[] = {"max_order=3", "tail=false", "max_time_s=1.0", "delay_steps=1",
                               "hrir_resampler=\"fastest\""};
    const char *kv_tail[] = {"max_order=3", "delay_steps=1", "hrir_resampler=\"fastest\""};
    bp_sim_room room = test_room(5.0, 3.0, 4.0, 0.3);
    const double src[3] = {1.2, 1.3, 1.1}, lis[3] = {3.1, 1.6, 2.7};
    bp_sim_request q = test_request(&room, src, lis, 0.5, 1);
    const bp_tensor *rir = NULL;
    test_sim t;
    CHECK_OK(test_sim_open(reg, kv_notail, 5, &t, &err), &err);
    if (t.sim) {
        CHECK_OK(t.sim->render(t.sim, &q, &rir, &err), &err);
        CHECK(test_stat(t.sim, "n_images") == 63.0);
        CHECK(test_stat(t.sim, "max_order_rendered") == 3.0);
        CHECK(test_stat(t.sim, "early_end_s") == 1.0);
        CHECK(test_stat(t.sim, "n_tail_diracs") == 0.0);
    }
    test_sim_close(&t);
    CHECK_OK(test_sim_open(reg, kv_tail, 3, &t, &err), &err);
    if (t.sim) {
        CHECK_OK(t.sim->render(t.sim, &q, &rir, &err), &err);
        double t_end = test_stat(t.sim, "early_end_s"), n_img = test_stat(t.sim, "n_images");
        /* brute force over the lattice: the nearest image of order 4, and the images of order <= 3 before it */
        double dmin = INFINITY;
        int before = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int kx = -6; kx <= 6; kx++)
                for (int px = 0; px < 2; px++)
                    for (int ky = -6; ky <= 6; ky++)
                        for (int py = 0; py < 2; py++)
                            for (int kz = -6; kz <= 6; kz++)
                                for (int pz = 0; pz < 2; pz++) {
                                    const int k[3] = {kx, ky, kz}, pp[3] = {px, py, pz};
                                    double d2 = 0.0;
                                    int order = 0;
                                    for (int a = 0; a < 3; a++) {
                                        double x = (pp[a] ? -src[a] : src[a]) + 2.0 * k[a] * room.size[a] - lis[a];
                                        d2 += x * x;
                                        order += abs(k[a] - pp[a]) + abs(k[a]);
                                    }
                                    if (pass == 0 && order > 3) dmin = fmin(dmin, sqrt(d2));
                                    if (pass == 1 && order <= 3 && sqrt(d2) < dmin) before++;
                                }
        CHECK_NEAR(t_end, dmin / C20, 1e-9);
        CHECK(n_img == (double)before);
        CHECK(test_stat(t.sim, "max_order_rendered") <= 3.0);
        CHECK(test_stat(t.sim, "n_tail_diracs") > 0.0);
        fprintf(stderr, "max_order 3 with tail: early part ends at %.2f ms with %.0f images\n", 1e3 * t_end, n_img);
    }
    test_sim_close(&t);
}

/* ------------------------------------------------------------------ errors -- */

static void expect_render_error(bp_simulator *sim, const bp_sim_request *q, bp_status code, const char *needle) {
    bp_error err = BP_ERROR_INIT;
    const bp_tensor *rir = NULL;
    bp_status st = sim->render(sim, q, &rir, &err);
    CHECKF(st == code, "expected %s, got %s: %s", bp_status_name(code), bp_status_name(st), err.msg);
    CHECKF(!needle || strstr(err.msg, needle), "message \"%s\" does not name \"%s\"", err.msg, needle);
    CHECK(rir == NULL);
    uint32_t n = 7;
    CHECK_OK(sim->last_stats(sim, NULL, NULL, 0, &n, &err), &err);
    CHECK(n == 0);
}

static void test_errors(bp_registry *reg) {
    bp_error err = BP_ERROR_INIT;
    test_sim t;
    /* missing SOFA file */
    const char *kv_missing[] = {"hrtf=\"/nonexistent/dir/head.sofa\""};
    bp_status st = test_sim_open(reg, kv_missing, 1, &t, &err);
    CHECKF(st == BP_ERR_NOT_FOUND && strstr(err.msg, "/nonexistent/dir/head.sofa"), "%s: %s", bp_status_name(st),
           err.msg);
    test_sim_close(&t);
    /* a file that is not SOFA */
    char path[] = "/tmp/ism_binaural_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        const char junk[] = "this is not an HDF5 file";
        CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
        close(fd);
        char kv[128];
        snprintf(kv, sizeof kv, "hrtf=\"%s\"", path);
        const char *kv_bad[] = {kv};
        err = (bp_error)BP_ERROR_INIT;
        st = test_sim_open(reg, kv_bad, 1, &t, &err);
        CHECKF(st == BP_ERR_FORMAT && strstr(err.msg, path), "%s: %s", bp_status_name(st), err.msg);
        test_sim_close(&t);
        unlink(path);
    }
    /* bands */
    const char *kv_desc[] = {"bands=[1000.0, 500.0]"};
    st = test_sim_open(reg, kv_desc, 1, &t, &err);
    CHECKF(st == BP_ERR_INVALID && strstr(err.msg, "ascending"), "%s: %s", bp_status_name(st), err.msg);
    test_sim_close(&t);
    const char *kv_nyq[] = {"sample_rate=16000"};
    st = test_sim_open(reg, kv_nyq, 1, &t, &err);
    CHECKF(st == BP_ERR_INVALID && strstr(err.msg, "8000"), "%s: %s", bp_status_name(st), err.msg);
    test_sim_close(&t);

    /* requests */
    const char *kv_fast[] = {"delay_steps=1", "hrir_resampler=\"fastest\""};
    CHECK_OK(test_sim_open(reg, kv_fast, 2, &t, &err), &err);
    if (!t.sim) return;
    bp_sim_room room = test_room(10.0, 4.0, 8.0, 0.3);
    const double lis[3] = {5.0, 1.6, 4.0}, src[3] = {6.0, 1.5, 3.0};
    bp_sim_request q = test_request(&room, src, lis, 0.5, 1);
    const bp_tensor *rir = NULL;
    CHECK_OK(t.sim->render(t.sim, &q, &rir, &err), &err);

    bp_sim_request bad = q;
    bad.source[0] = 12.0;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "source at (12, 1.5, 3)");
    bad = q;
    bad.listener[1] = 0.05;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "listener at (5, 0.05, 4)");
    bad = q;
    bad.source[2] = 7.95; /* inside, but 5 cm from the z+ wall */
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "closer than 0.1 m to a wall");
    bad = q;
    bad.source[1] = NAN;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "source[1]");
    bad = q;
    bad.listener[0] = INFINITY;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "listener[0]");
    bad = q;
    bad.max_seconds = NAN;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "max_seconds");
    bad = q;
    bad.sample_rate = 48000.0;
    expect_render_error(t.sim, &bad, BP_ERR_SPEC, "48000");
    bad = q;
    for (int a = 0; a < 3; a++) bad.source[a] = lis[a] + 0.01;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "from the listener");
    bad = q;
    bad.struct_size = 8;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "struct_size");
    bad = q;
    bad.room = NULL;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "room");
    bp_sim_room r2 = room;
    r2.absorption[3][2] = 1.5;
    bad = q;
    bad.room = &r2;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "ceiling");
    r2 = room;
    r2.absorption[0][0] = NAN;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "absorption[0][0]");
    r2 = room;
    r2.temperature_c = INFINITY;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "temperature");
    r2 = room;
    r2.band_hz[3] = r2.band_hz[2];
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "ascending");
    r2 = room;
    r2.size[1] = NAN;
    expect_render_error(t.sim, &bad, BP_ERR_INVALID, "room.size[1]");
    test_sim_close(&t);

    /* the direct path must arrive inside the early part */
    const char *kv_short[] = {"max_time_s=0.005", "delay_steps=1", "hrir_resampler=\"fastest\""};
    CHECK_OK(test_sim_open(reg, kv_short, 3, &t, &err), &err);
    if (!t.sim) return;
    const double far[3] = {1.0, 1.6, 1.0};
    q = test_request(&room, far, lis, 0.5, 1);
    expect_render_error(t.sim, &q, BP_ERR_INVALID, "max_time_s");
    test_sim_close(&t);
}

int main(void) {
    if (!kemar_present()) TEST_SKIP("%s is missing (install libmysofa1)", KEMAR);
    bp_registry *reg = test_registry();
    CHECK(reg != NULL);
    if (!reg) return TEST_RESULT();
    if (!bp_registry_find(reg, BP_KIND_SIMULATOR, "ism_binaural")) {
        fprintf(stderr, "ism_binaural plugin not found on BATPIPE_PLUGIN_PATH\n");
        bp_registry_free(reg);
        return 1;
    }
    /* three instances serve every check (creating one resamples the HRIR set: slow under valgrind) */
    bp_error err = BP_ERROR_INIT;
    const char *kv_dry[] = {"air_absorption=false"};
    test_sim def, def2, dry;
    CHECK_OK(test_sim_open(reg, NULL, 0, &def, &err), &err);
    CHECK_OK(test_sim_open(reg, NULL, 0, &def2, &err), &err);
    CHECK_OK(test_sim_open(reg, kv_dry, 1, &dry, &err), &err);
    if (def.sim && def2.sim && dry.sim) {
        test_direct(def, dry);
        test_anechoic(def);
        test_binaural(def);
        test_stats(dry);
        test_determinism(def, def2);
    }
    test_sim_close(&def);
    test_sim_close(&def2);
    test_sim_close(&dry);
    test_orders(reg);
    test_errors(reg);
    bp_registry_free(reg);
    return TEST_RESULT();
}
