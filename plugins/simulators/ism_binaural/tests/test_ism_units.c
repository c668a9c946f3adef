/* ism_binaural internals, compiled into the test:
 *  - ISO 9613-1 air absorption against ISO 9613-2 Table 2 (48 values);
 *  - speed of sound, Sabine / Eyring, absorption interpolation across bands;
 *  - the crossover: responses add up to 1, taps to a unit impulse;
 *  - the HRIR set: nearest-direction lookup against libmysofa's own
 *    (mysofa_lookup) on random directions, the clamp below −40°, left/right
 *    receivers, mirror symmetry of KEMAR, fractional-delay phases,
 *    diffuse-field normalisation, errors for missing and corrupt files;
 *  - the seeded random numbers. */
#include <mysofa.h>
#include <stdint.h>
#include <unistd.h>

#include "bp_test.h"
#include "ism_acoustics.h"
#include "ism_bands.h"
#include "ism_hrtf.h"
#include "ism_rng.h"

#define KEMAR "/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa"

/* ------------------------------------------------------------- acoustics -- */

static void test_air(void) {
    /* ISO 9613-2:1996 Table 2, dB/km at the exact octave midbands 63 Hz … 8 kHz */
    static const struct {
        double t, rh, db_km[8];
    } table[6] = {
        {10, 70, {0.1, 0.4, 1.0, 1.9, 3.7, 9.7, 32.8, 117}},   {20, 70, {0.1, 0.3, 1.1, 2.8, 5.0, 9.0, 22.9, 76.6}},
        {30, 70, {0.1, 0.3, 1.0, 3.1, 7.4, 12.7, 23.1, 59.3}}, {15, 20, {0.3, 0.6, 1.2, 2.7, 8.2, 28.2, 88.8, 202}},
        {15, 50, {0.1, 0.5, 1.2, 2.2, 4.2, 10.8, 36.2, 129}},  {15, 80, {0.1, 0.3, 1.1, 2.4, 4.1, 8.3, 23.7, 82.8}},
    };
    for (int r = 0; r < 6; r++)
        for (int k = 0; k < 8; k++) {
            double f = 1000.0 * pow(10.0, 0.3 * (k - 4)), want = table[r].db_km[k];
            double got = 1000.0 * ism_air_absorption_db(f, table[r].t, table[r].rh);
            CHECKF(fabs(got - want) <= 0.05 + 0.01 * want, "%g °C %g %%, %.0f Hz: %.3f dB/km, table %.1f", table[r].t,
                   table[r].rh, f, got, want);
        }
    /* energy coefficient: 10·log10(e)·m = dB per metre */
    CHECK_NEAR(ism_air_energy_coeff(4000.0, 20.0, 50.0) * 10.0 * log10(exp(1.0)),
               ism_air_absorption_db(4000.0, 20.0, 50.0), 1e-12);
    CHECK_NEAR(ism_speed_of_sound(20.0), 343.2146, 1e-3);
    CHECK_NEAR(ism_speed_of_sound(0.0), 331.3, 1e-9);
}

static void test_decay(void) {
    const double size[3] = {5.0, 3.0, 4.0};
    double alpha[6][ISM_MAX_BANDS] = {{0}};
    double air[ISM_MAX_BANDS] = {0.0, 0.0, 0.01, 0.0};
    for (int w = 0; w < 6; w++) {
        alpha[w][0] = 0.3;
        alpha[w][1] = 1.0;
        alpha[w][2] = 0.3;
        alpha[w][3] = 0.0;
    }
    ism_room_acoustics ra;
    ism_room_acoustics_compute(size, (const double(*)[ISM_MAX_BANDS])alpha, air, 4, 343.0, &ra);
    const double v = 60.0, s = 94.0, k60 = 24.0 * log(10.0);
    CHECK_NEAR(ra.volume, v, 1e-12);
    CHECK_NEAR(ra.surface, s, 1e-12);
    CHECK_NEAR(ra.sabine[0], k60 * v / (343.0 * s * 0.3), 1e-12);
    CHECK_NEAR(ra.eyring[0], k60 * v / (343.0 * -s * log(0.7)), 1e-12);
    CHECK_NEAR(ra.decay[0] * ra.eyring[0], 6.0 * log(10.0), 1e-9); /* 60 dB in T60 */
    CHECK(ra.eyring[1] == 0.0 && isinf(ra.decay[1]));              /* α = 1: no reverberation */
    CHECK_NEAR(ra.eyring[2], k60 * v / (343.0 * (-s * log(0.7) + 4.0 * 0.01 * v)), 1e-12);
    CHECK(ra.sabine[3] == ISM_T60_MAX && ra.eyring[3] == ISM_T60_MAX); /* nothing absorbs */
    CHECK(ra.eyring[0] < ra.sabine[0]);

    /* absorption given at 250/1000/4000 Hz, read at octave centres (log-frequency interpolation) */
    bp_sim_room room;
    memset(&room, 0, sizeof room);
    room.n_bands = 3;
    room.band_hz[0] = 250.0;
    room.band_hz[1] = 1000.0;
    room.band_hz[2] = 4000.0;
    for (int w = 0; w < 6; w++) {
        room.absorption[w][0] = 0.1 + 0.01 * w;
        room.absorption[w][1] = 0.3;
        room.absorption[w][2] = 0.5;
    }
    const double hz[5] = {125.0, 500.0, 1000.0, 2000.0, 8000.0};
    double out[6][ISM_MAX_BANDS];
    ism_absorption_at_bands(&room, hz, 5, out);
    CHECK_NEAR(out[0][0], 0.1, 1e-12); /* below the first band: held */
    CHECK_NEAR(out[5][0], 0.15, 1e-12);
    CHECK_NEAR(out[0][1], 0.2, 1e-12); /* 500 Hz: half-way (in octaves) from 250 to 1000 */
    CHECK_NEAR(out[0][2], 0.3, 1e-12);
    CHECK_NEAR(out[0][3], 0.4, 1e-12);
    CHECK_NEAR(out[0][4], 0.5, 1e-12); /* above the last band: held */
}

/* ----------------------------------------------------------------- bands -- */

static void test_bands(void) {
    bp_error err = BP_ERROR_INIT;
    const double hz[7] = {125, 250, 500, 1000, 2000, 4000, 8000};
    ism_bands bands;
    CHECK_OK(ism_bands_init(&bands, hz, 7, 32000.0, &err), &err);
    if (!bands.taps) return;
    const int32_t len = 2 * bands.half + 1;
    CHECK(bands.half == 512);
    double worst = 0.0;
    for (int32_t i = 0; i < len; i++) {
        double s = 0.0;
        for (int b = 0; b < 7; b++) s += bands.taps[(size_t)b * (size_t)len + (size_t)i];
        worst = fmax(worst, fabs(s - (i == bands.half ? 1.0 : 0.0)));
    }
    CHECKF(worst < 1e-6, "band taps do not add up to a unit impulse: %.3g", worst);
    const int32_t nfft = 8192, nbin = nfft / 2 + 1;
    float *resp = malloc((size_t)7 * (size_t)nbin * sizeof(float));
    CHECK_OK(ism_bands_response(&bands, nfft, resp, &err), &err);
    double sum_err = 0.0;
    for (int32_t k = 0; k < nbin; k++) {
        double s = 0.0;
        for (int b = 0; b < 7; b++) s += resp[(size_t)b * (size_t)nbin + (size_t)k];
        sum_err = fmax(sum_err, fabs(s - 1.0));
    }
    CHECKF(sum_err < 1e-5, "band responses do not add up to 1: %.3g", sum_err);
    for (int b = 0; b < 7; b++) {
        int32_t kc = (int32_t)lround(hz[b] * nfft / 32000.0);
        double at_centre = resp[(size_t)b * (size_t)nbin + (size_t)kc];
        /* the ±16 ms truncation smooths the two lowest bands (an octave there is only 125–250 Hz wide) */
        CHECKF(fabs(at_centre - 1.0) < (b < 2 ? 0.07 : 0.03), "band %g Hz: response %.3f at its centre", hz[b],
               at_centre);
        if (b + 2 < 7) {
            int32_t k2 = (int32_t)lround(hz[b + 2] * nfft / 32000.0);
            CHECKF(fabs(resp[(size_t)b * (size_t)nbin + (size_t)k2]) < 0.02, "band %g Hz leaks %.3f two octaves up",
                   hz[b], resp[(size_t)b * (size_t)nbin + (size_t)k2]);
        }
    }
    free(resp);
    ism_bands_free(&bands);
    const double bad1[2] = {1000.0, 500.0}, bad2[2] = {1000.0, 16000.0};
    CHECK(ism_bands_init(&bands, bad1, 2, 32000.0, &err) == BP_ERR_INVALID && strstr(err.msg, "ascending"));
    CHECK(ism_bands_init(&bands, bad2, 2, 32000.0, &err) == BP_ERR_INVALID && strstr(err.msg, "Nyquist"));
    CHECK(ism_bands_init(&bands, bad2, 0, 32000.0, &err) == BP_ERR_INVALID);
}

/* ------------------------------------------------------------------ HRTF -- */

static double ir_energy(const float *v, int32_t n) {
    double s = 0.0;
    for (int32_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return s;
}

/* energy-weighted mean time of an IR, in samples */
static double ir_centroid(const float *v, int32_t n) {
    double s = 0.0, w = 0.0;
    for (int32_t i = 0; i < n; i++) {
        s += (double)v[i] * v[i] * i;
        w += (double)v[i] * v[i];
    }
    return s / w;
}

static int32_t find_dir(const ism_hrtf *h, double az, double el) {
    for (int32_t m = 0; m < h->m; m++)
        if (fabs(h->az[m] - az) < 1e-3 && fabs(h->el[m] - el) < 1e-3) return m;
    return -1;
}

static void test_hrtf(void) {
    bp_error err = BP_ERROR_INIT;
    ism_hrtf h;
    const int32_t phases = 4;
    CHECK_OK(ism_hrtf_load(&h, KEMAR, 32000.0, phases, ISM_RESAMPLE_FASTEST, &err), &err);
    if (!h.ir) return;
    CHECK(h.m == 710 && h.phases == phases && h.len % 8 == 0 && h.len >= 372 && h.len < 512);
    CHECK_NEAR(h.min_elevation, -40.0, 1e-4);
    CHECK_NEAR(h.fs_file, 44100.0, 1e-9);
    CHECK(h.onset > 0.0 && h.onset < h.len);
    CHECK_NEAR(h.az[h.front], 0.0, 1e-4);
    CHECK_NEAR(h.el[h.front], 0.0, 1e-4);

    /* nearest direction: the same angular distance as libmysofa's kd-tree lookup */
    int e = 0;
    struct MYSOFA_HRTF *s = mysofa_load(KEMAR, &e);
    CHECK(s != NULL);
    if (s) {
        mysofa_tocartesian(s);
        struct MYSOFA_LOOKUP *lk = mysofa_lookup_init(s);
        ism_rng rng;
        ism_rng_seed(&rng, 5);
        int mismatch = 0;
        for (int i = 0; i < 5000; i++) {
            double z = 2.0 * ism_rng_open01(&rng) - 1.0, ph = 2.0 * M_PI * ism_rng_open01(&rng);
            double r = sqrt(fmax(0.0, 1.0 - z * z));
            double v[3] = {r * cos(ph), r * sin(ph), z};
            float c[3] = {(float)(1.4 * v[0]), (float)(1.4 * v[1]), (float)(1.4 * v[2])};
            int ref = mysofa_lookup(lk, c);
            int32_t mine = ism_hrtf_nearest(&h, v[0], v[1], v[2]);
            const float *dr = h.dir + 3 * ref, *dm = h.dir + 3 * mine;
            double cr = v[0] * dr[0] + v[1] * dr[1] + v[2] * dr[2], cm = v[0] * dm[0] + v[1] * dm[1] + v[2] * dm[2];
            if (fabs(cr - cm) > 1e-6) mismatch++;
            /* below the lowest ring: the lowest ring (elevation clamped) */
            if (asin(z) * 180.0 / M_PI < -40.0) CHECK(fabs(h.el[mine] + 40.0) < 1e-3);
        }
        CHECKF(mismatch == 0, "%d of 5000 directions differ from mysofa_lookup", mismatch);
        mysofa_lookup_free(lk);
        mysofa_free(s);
    }

    /* ears: SOFA +y is left; a source at azimuth 90° is louder in ear 0 */
    int32_t left90 = find_dir(&h, 90.0, 0.0), right90 = find_dir(&h, 270.0, 0.0);
    CHECK(left90 >= 0 && right90 >= 0);
    if (left90 >= 0 && right90 >= 0) {
        double l = ir_energy(ism_hrtf_ir(&h, left90, 0, 0), h.len), r = ir_energy(ism_hrtf_ir(&h, left90, 0, 1), h.len);
        CHECKF(10.0 * log10(l / r) > 8.0, "az 90°: left %.3g right %.3g", l, r);
        /* KEMAR's normal-pinna set is mirror-symmetric: left(az) = right(−az) */
        const float *a = ism_hrtf_ir(&h, left90, 0, 0), *b = ism_hrtf_ir(&h, right90, 0, 1);
        double diff = 0.0;
        for (int32_t i = 0; i < h.len; i++) diff = fmax(diff, fabs((double)a[i] - b[i]));
        CHECKF(diff < 1e-6, "mirror: %.3g", diff);
        CHECK(ism_hrtf_nearest(&h, 0.0, 1.0, 0.0) == left90); /* SOFA +y: left */
        CHECK(ism_hrtf_nearest(&h, 0.0, -1.0, 0.0) == right90);
    }

    /* fractional phases: phase q is the IR delayed by q/phases of a sample */
    for (int32_t q = 1; q < phases; q++) {
        double d =
            ir_centroid(ism_hrtf_ir(&h, h.front, q, 0), h.len) - ir_centroid(ism_hrtf_ir(&h, h.front, 0, 0), h.len);
        CHECKF(fabs(d - (double)q / phases) < 0.02, "phase %d: centroid moved %.4f samples", q, d);
        double eq = ir_energy(ism_hrtf_ir(&h, h.front, q, 0), h.len),
               e0 = ir_energy(ism_hrtf_ir(&h, h.front, 0, 0), h.len);
        CHECKF(fabs(eq / e0 - 1.0) < 0.02, "phase %d: energy ratio %.4f", q, eq / e0);
    }

    /* diffuse-field normalisation over the tail's directions */
    double mean = 0.0;
    for (int i = 0; i < ISM_TAIL_DIRS; i++)
        for (int ear = 0; ear < 2; ear++) mean += ir_energy(ism_hrtf_ir(&h, h.tail_dirs[i], 0, ear), h.len);
    CHECK_NEAR(mean / (2.0 * ISM_TAIL_DIRS), 1.0, 1e-4);
    /* the tail's directions cover the sphere: about (1 − sin 40°)/2 of them clamp to the −40° ring or below */
    int low = 0;
    for (int i = 0; i < ISM_TAIL_DIRS; i++) low += h.el[h.tail_dirs[i]] < -39.0;
    CHECKF(low > 0.15 * ISM_TAIL_DIRS && low < 0.25 * ISM_TAIL_DIRS, "%d of %d tail directions on the -40° ring", low,
           ISM_TAIL_DIRS);
    ism_hrtf_free(&h);

    /* errors name the file */
    bp_status st = ism_hrtf_load(&h, "/nonexistent/x.sofa", 32000.0, 1, ISM_RESAMPLE_FASTEST, &err);
    CHECK(st == BP_ERR_NOT_FOUND && strstr(err.msg, "/nonexistent/x.sofa"));
    char path[] = "/tmp/ism_units_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, "\x89HDF\r\n\x1a\n garbage", 17) == 17);
        close(fd);
        st = ism_hrtf_load(&h, path, 32000.0, 1, ISM_RESAMPLE_FASTEST, &err);
        CHECK(st == BP_ERR_FORMAT && strstr(err.msg, path));
        unlink(path);
    }
    st = ism_hrtf_load(&h, "", 32000.0, 1, ISM_RESAMPLE_FASTEST, &err);
    CHECK(st == BP_ERR_INVALID);
}

/* ------------------------------------------------------------------- rng -- */

static void test_rng(void) {
    ism_rng a, b, c;
    ism_rng_seed(&a, 42);
    ism_rng_seed(&b, 42);
    ism_rng_seed(&c, 43);
    int same = 1, differ = 0;
    double sum = 0.0, lo = 1.0, hi = 0.0;
    for (int i = 0; i < 100000; i++) {
        uint64_t x = ism_rng_next(&a), y = ism_rng_next(&b), z = ism_rng_next(&c);
        same &= x == y;
        differ += x != z;
        double u = ism_rng_open01(&a);
        ism_rng_open01(&b);
        sum += u;
        lo = fmin(lo, u);
        hi = fmax(hi, u);
    }
    CHECK(same && differ > 99990);
    CHECK(lo > 0.0 && hi <= 1.0);
    CHECK_NEAR(sum / 100000.0, 0.5, 0.005);
}

int main(void) {
    test_air();
    test_decay();
    test_bands();
    test_rng();
    if (access(KEMAR, R_OK) != 0) TEST_SKIP("%s is missing (install libmysofa1); the HRTF checks were skipped", KEMAR);
    test_hrtf();
    return TEST_RESULT();
}
