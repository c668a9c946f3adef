/* Pieces of the generator, compiled in from core/src: balanced (stratified)
 * draws, seeds, ISO 9613-1 air absorption against the standard's table,
 * Eyring/Sabine against their closed forms, the room sampler's T60 steering,
 * placement of recordings in the window (cut, repeat, loop, once), scene
 * geometry invariants (drawn distance class, different octants, inside the
 * room, elevation limit, azimuth coverage), and Yes/No balance. */
#include <math.h>
#include <string.h>

#include "bp_test.h"
#include "synth_internal.h"
#include "synth_test_util.h"

static char root[256];

static bp_status cfg_from(const char *extra, bp_config **cfg, synth_cfg *c, bp_error *err) {
    char text[4096];
    snprintf(text, sizeof text,
             "seed = 11;\ncorpus = { file = \"corpus/corpus.tsv\"; };\n"
             "scenes = { train = { single = 10; two = 10; }; eval = { single = 2; two = 2; }; };\n"
             "simulator = { type = \"x\"; };\n%s",
             extra);
    bp_status st = bp_config_load_text(text, "units.cfg", root, cfg, err);
    if (st != BP_OK) return st;
    st = synth_config_parse(*cfg, c, err);
    if (st != BP_OK) {
        bp_config_free(*cfg);
        *cfg = NULL;
    }
    return st;
}

static void test_stratified(void) {
    for (int32_t n = 1; n <= 40; n += 13) {
        for (int64_t block = 0; block < 5; block++) {
            int seen[64] = {0};
            for (int64_t i = 0; i < n; i++) {
                int32_t v = synth_stratified(42, 0, 1, SYNTH_STREAM_DIST0, block * n + i, n);
                CHECK(v >= 0 && v < n);
                if (v >= 0 && v < n) seen[v]++;
            }
            for (int32_t v = 0; v < n; v++)
                CHECKF(seen[v] == 1, "n %d block %lld value %d seen %d", n, (long long)block, v, seen[v]);
        }
    }
    /* blocks are shuffled differently, and streams are independent */
    int same = 0, same_stream = 0;
    for (int64_t i = 0; i < 21; i++) {
        same += synth_stratified(42, 0, 1, 4, i, 21) == synth_stratified(42, 0, 1, 4, 21 + i, 21);
        same_stream += synth_stratified(42, 0, 1, 4, i, 21) == synth_stratified(42, 0, 1, 5, i, 21);
    }
    CHECK(same < 21 && same_stream < 21);
    CHECK(synth_seed(1, 0, 0, 5, 1) != synth_seed(1, 0, 0, 5, 2) &&
          synth_seed(1, 0, 0, 5, 1) != synth_seed(1, 0, 0, 6, 1));
    CHECK(synth_seed(1, 0, 0, 5, 1) != synth_seed(1, 1, 0, 5, 1) &&
          synth_seed(1, 0, 0, 5, 1) != synth_seed(2, 0, 0, 5, 1));
    CHECK(synth_seed(1, 0, 0, 5, 1) == synth_seed(1, 0, 0, 5, 1));
    synth_rng r;
    synth_rng_seed(&r, 9);
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++) hist[synth_rng_below(&r, 7)]++;
    for (int i = 0; i < 7; i++) CHECK(abs(hist[i] - 10000) < 500);
}

static void test_acoustics(void) {
    /* ISO 9613-1 table, 20 °C, 50 % RH, dB/km */
    static const double hz[7] = {125, 250, 500, 1000, 2000, 4000, 8000};
    static const double iso[7] = {0.44, 1.31, 2.73, 4.66, 9.86, 29.7, 105};
    for (int b = 0; b < 7; b++) {
        double db_km = synth_air_absorption(hz[b], 20, 50) * 10 * log10(exp(1.0)) * 1000;
        CHECKF(fabs(db_km - iso[b]) / iso[b] < 0.02, "%g Hz: %g dB/km vs %g", hz[b], db_km, iso[b]);
    }
    CHECK(fabs(synth_speed_of_sound(20) - 343.2) < 0.2);
    /* Eyring and Sabine of a uniform room against their closed forms */
    bp_config *cfg;
    synth_cfg c;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(cfg_from("", &cfg, &c, &err), &err);
    synth_room room;
    memset(&room, 0, sizeof room);
    room.size[0] = 6, room.size[1] = 3, room.size[2] = 5;
    for (int w = 0; w < 6; w++)
        for (int b = 0; b < SYNTH_BANDS; b++) room.alpha[w][b] = 0.2;
    synth_room_t60(&c, &room);
    double V = 90, S = 2 * (18 + 30 + 15), k = 24 * log(10) / synth_speed_of_sound(20);
    for (int b = 0; b < SYNTH_BANDS; b++) {
        double m4v = 4 * synth_air_absorption(synth_band_hz[b], 20, 50) * V;
        CHECK_NEAR(room.eyring_t60[b], k * V / (-S * log(0.8) + m4v), 1e-9);
        CHECK_NEAR(room.sabine_t60[b], k * V / (S * 0.2 + m4v), 1e-9);
        CHECK(room.eyring_t60[b] < room.sabine_t60[b]);
    }
    CHECK_NEAR(room.volume, V, 1e-12);
    CHECK_NEAR(room.surface, S, 1e-12);
    /* the sampler steers the mid-band T60 into each type's range */
    synth_rng r;
    synth_rng_seed(&r, 5);
    int in_range = 0, n = 400;
    double lo = 10, hi = 0;
    for (int i = 0; i < n; i++) {
        double d = synth_rng_range(&r, 0.5, 9.5), th = synth_rng_range(&r, 0, 2 * M_PI);
        CHECK_OK(synth_room_sample(&c, &r, d * fabs(cos(th)), d * fabs(sin(th)), &room, &err), &err);
        const synth_room_type *t = &c.rooms[room.type];
        double t60 = synth_mid_t60(room.eyring_t60);
        in_range += t60 >= t->t60_min * 0.97 && t60 <= t->t60_max * 1.03;
        lo = fmin(lo, t60), hi = fmax(hi, t60);
        CHECK(synth_room_fits(&c, room.size, d * fabs(cos(th)), d * fabs(sin(th))));
        for (int w = 0; w < 6; w++)
            for (int b = 0; b < SYNTH_BANDS; b++) CHECK(room.alpha[w][b] > 0 && room.alpha[w][b] <= 0.99);
    }
    CHECKF(in_range >= n * 95 / 100, "%d of %d rooms in their T60 range (%.2f..%.2f s)", in_range, n, lo, hi);
    CHECKF(lo >= 0.18 && hi <= 0.95, "T60 %.2f..%.2f s", lo, hi);
    synth_config_free(&c);
    bp_config_free(cfg);
}

/* A corpus of one recording per placement case, with a DC clip so that the
 * placement is visible in the placed buffer. */
static void test_placement(void) {
    char p[600];
    snprintf(p, sizeof p, "%s/pc", root);
    mkdir(p, 0755);
    int64_t n_short = 9600, n_long = 96000; /* 0.3 s and 3 s at 32 kHz */
    for (int k = 0; k < 2; k++) {
        int64_t n = k ? n_long : n_short, shape[2] = {1, n};
        bp_tensor *t;
        bp_error err = BP_ERROR_INIT;
        bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, &err);
        for (int64_t i = 0; i < n; i++) ((float *)t->data)[i] = k ? (float)(0.1 + 0.8 * (double)i / (double)n) : 0.25f;
        snprintf(p, sizeof p, "%s/pc/%s.wav", root, k ? "long" : "short");
        CHECK_OK(bp_audio_write(p, t, 32000, "FLOAT", &err), &err);
        if (!k) { /* the same content under another file: rows of one file would be one multi-label clip */
            snprintf(p, sizeof p, "%s/pc/short2.wav", root);
            CHECK_OK(bp_audio_write(p, t, 32000, "FLOAT", &err), &err);
        }
        bp_tensor_free(t);
    }
    snprintf(p, sizeof p, "%s/pc/corpus.tsv", root);
    tu_write_text(p, "file\tlabel\tsplit\tplacement\n"
                     "short.wav\tBell\ttrain\trepeat\nshort2.wav\tRain\ttrain\tloop\nlong.wav\tWind\ttrain\tcut\n"
                     "short.wav\tBell\teval\trepeat\nshort2.wav\tRain\teval\tloop\nlong.wav\tWind\teval\tcut\n");
    static const char *const modes[] = {"corpus", "once"};
    for (int mode = 0; mode < 2; mode++) {
        char extra[512];
        snprintf(extra, sizeof extra,
                 "corpus = { file = \"pc/corpus.tsv\"; };\naudio = { seconds = 2.0; rir_seconds = 0.1; placement = "
                 "\"%s\"; };\n",
                 modes[mode]);
        bp_config *cfg;
        synth_cfg c;
        synth_corpus co;
        bp_error err = BP_ERROR_INIT;
        char text[2048];
        snprintf(text, sizeof text,
                 "seed = 4;\nscenes = { train = { single = 30; two = 0; }; eval = { single = 0; two = 0; }; };\n"
                 "simulator = { type = \"x\"; };\n%s",
                 extra);
        CHECK_OK(bp_config_load_text(text, "pc.cfg", root, &cfg, &err), &err);
        CHECK_OK(synth_config_parse(cfg, &c, &err), &err);
        CHECK_OK(synth_corpus_load(&c, &co, &err), &err);
        CHECK(co.n_classes == 3);
        synth_fft *fft;
        synth_render *r;
        CHECK_OK(synth_fft_new(c.clip_samples, 3200, &fft, &err), &err);
        CHECK_OK(synth_render_new(fft, &r, &err), &err);
        synth_ctx x = {&c, &co};
        int seen[5] = {0};
        for (int64_t i = 0; i < 30; i++) {
            synth_scene sc;
            CHECK_OK(synth_scene_sample(&x, SYNTH_TRAIN, SYNTH_SINGLE, i, &sc, &err), &err);
            CHECK_OK(synth_render_source(r, &x, &sc, 0, &err), &err);
            const synth_src *s = &sc.src[0];
            const float *y = synth_render_placed(r);
            int64_t W = c.clip_samples;
            double g = pow(10.0, s->norm_gain_db / 20.0), sum2 = 0;
            seen[s->placement]++;
            const char *cls = co.classes[s->class_id];
            if (strcmp(cls, "Wind") == 0) {
                /* cut: a 2 s window of the ramp, normalised over the window */
                CHECK(s->placement == SYNTH_PLACE_CUT && s->copies == 1);
                int64_t a = (int64_t)llround(s->window_s * 32000);
                CHECK(a >= 0 && a <= n_long - W);
                for (int64_t k = 0; k < W; k++) sum2 += (double)y[k] * y[k];
                CHECK_NEAR(10 * log10(sum2 / (double)W), -14.0, 0.01);
                CHECK_NEAR(y[0] / g, 0.1 + 0.8 * (double)a / (double)n_long, 1e-5);
            } else if (mode == 1) {
                /* once: the clip once at an onset in [0, 0.5] s, zeros elsewhere */
                CHECK(s->placement == SYNTH_PLACE_ONCE && s->copies == 1 && s->start_s <= 0.5 + 1e-9);
                int64_t on = (int64_t)llround(s->start_s * 32000), nz = 0;
                for (int64_t k = 0; k < W; k++) nz += y[k] != 0;
                CHECK(nz == n_short && y[on] != 0 && (on == 0 || y[on - 1] == 0));
            } else if (strcmp(cls, "Bell") == 0) {
                /* repeat: occurrences of 0.3 s separated by 0.25–1.0 s gaps, the first in [0, 0.5] s */
                CHECK(s->placement == SYNTH_PLACE_REPEAT);
                CHECK(s->start_s >= 0 && s->start_s <= 0.5 + 1e-9);
                int64_t runs = 0, k = 0, prev_end = -1;
                while (k < W) {
                    while (k < W && y[k] == 0) k++;
                    if (k >= W) break;
                    int64_t b = k;
                    while (k < W && y[k] != 0) k++;
                    runs++;
                    CHECK(k - b == n_short || k == W);
                    if (prev_end >= 0) CHECK(b - prev_end >= 8000 - 1 && b - prev_end <= 32000 + 1);
                    CHECK_NEAR(y[b] / g, 0.25, 1e-6);
                    prev_end = k;
                }
                CHECK(runs == s->copies && runs >= 2);
                if (y[W - 1] != 0) CHECK(fabs(y[W - 1]) < fabs(y[W - 321]) * 0.1); /* faded out at the cut */
            } else {
                /* loop: the window is filled; a constant clip stays constant through the cross-fades */
                CHECK(s->placement == SYNTH_PLACE_LOOP && s->copies >= 6);
                double mn = 1e9, mx = 0;
                for (int64_t k = 0; k < W; k++) mn = fmin(mn, y[k] / g), mx = fmax(mx, y[k] / g);
                CHECK_NEAR(mn, 0.25, 1e-5);
                CHECK_NEAR(mx, 0.25, 1e-5);
            }
            /* RMS of a short clip is normalised over the clip itself */
            if (s->placement != SYNTH_PLACE_CUT) CHECK_NEAR(20 * log10(0.25 * g), -14.0, 1e-6);
            synth_scene_clear(&sc);
        }
        if (mode == 0) CHECK(seen[SYNTH_PLACE_CUT] && seen[SYNTH_PLACE_REPEAT] && seen[SYNTH_PLACE_LOOP]);
        synth_render_free(r);
        synth_fft_free(fft);
        synth_corpus_free(&co);
        synth_config_free(&c);
        bp_config_free(cfg);
    }
}

static void test_scenes(void) {
    bp_config *cfg;
    synth_cfg c;
    synth_corpus co;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(cfg_from("", &cfg, &c, &err), &err);
    CHECK_OK(synth_corpus_load(&c, &co, &err), &err);
    synth_ctx x = {&c, &co};
    int az_bins[8] = {0}, dist[BP_DISTANCE_CLASSES] = {0}, yes[2] = {0, 0}, no[2] = {0, 0}, n = 0;
    int64_t N = 1050; /* 50 blocks of the 21 distance classes */
    for (int64_t i = 0; i < N; i++) {
        synth_scene sc;
        CHECK_OK(synth_scene_sample(&x, SYNTH_TRAIN, SYNTH_TWO, i, &sc, &err), &err);
        CHECK(strncmp(sc.id, "train-two-", 10) == 0);
        for (uint32_t k = 0; k < 2; k++) {
            const synth_src *s = &sc.src[k];
            CHECK(s->label.distance_class == s->drawn_distance_class);
            CHECK(s->label.elevation_deg >= -40.0 && s->label.distance >= c.min_distance);
            for (int a = 0; a < 3; a++)
                CHECK(s->pos[a] >= c.wall_margin - 1e-9 && s->pos[a] <= sc.room.size[a] - c.wall_margin + 1e-9);
            if (k == 0) dist[s->label.distance_class]++;
            az_bins[s->label.azimuth / 45]++;
        }
        for (int a = 0; a < 3; a++)
            CHECK(sc.listener[a] >= c.wall_margin - 1e-9 && sc.listener[a] <= sc.room.size[a] - c.wall_margin + 1e-9);
        CHECK(sc.listener[1] >= 1.5 - 1e-9 && sc.listener[1] <= 1.6 + 1e-9);
        CHECK(memcmp(sc.src[0].label.side, sc.src[1].label.side, sizeof sc.src[0].label.side) != 0);
        CHECK(sc.src[0].class_id != sc.src[1].class_id);
        /* the scene does not depend on what was sampled before it */
        synth_scene again;
        CHECK_OK(synth_scene_sample(&x, SYNTH_TRAIN, SYNTH_TWO, i, &again, &err), &err);
        CHECK(memcmp(again.src[0].pos, sc.src[0].pos, sizeof sc.src[0].pos) == 0 &&
              again.room.size[2] == sc.room.size[2]);
        synth_qa qa[SYNTH_MAX_QA];
        uint32_t nq;
        CHECK_OK(synth_qa_generate(&x, &sc, qa, SYNTH_MAX_QA, &nq, &err), &err);
        CHECK(nq == 5); /* C 1, D 1, E 3 */
        for (uint32_t q = 0; q < nq; q++) {
            int dist_q = strcmp(qa[q].question_type, "MIXUP_BINARY_DISTANCE") == 0;
            yes[dist_q] += strcmp(qa[q].answer, "Yes") == 0;
            no[dist_q] += strcmp(qa[q].answer, "No") == 0;
        }
        synth_qa_free(qa, nq);
        synth_scene_clear(&sc);
        synth_scene_clear(&again);
        n++;
    }
    for (int d = 0; d < BP_DISTANCE_CLASSES; d++) CHECKF(dist[d] == 50, "distance class %d: %d", d, dist[d]);
    for (int b = 0; b < 8; b++) CHECKF(az_bins[b] > 2 * N / 8 * 0.7, "azimuth octant %d: %d", b, az_bins[b]);
    for (int k = 0; k < 2; k++) /* binary direction, binary distance: balanced within 4 % */
        CHECKF(yes[k] + no[k] > 300 && fabs((double)yes[k] / (yes[k] + no[k]) - 0.5) < 0.04, "%s: yes %d no %d",
               k ? "distance" : "direction", yes[k], no[k]);
    synth_corpus_free(&co);
    synth_config_free(&c);
    bp_config_free(cfg);
}

/* A clip listed once per label (docs/sources.md) is one multi-label recording. */
static void test_multilabel(void) {
    char p[600];
    snprintf(p, sizeof p, "%s/ml", root);
    mkdir(p, 0755);
    const char *files[] = {"a.flac", "b.flac", "c.flac"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/ml/%s", root, files[i]);
        CHECK(tu_write_clip(p, i, 0.4, 32000, 1, (unsigned)(70 + i), "PCM_16") == 0);
    }
    snprintf(p, sizeof p, "%s/ml/corpus.tsv", root);
    tu_write_text(p, "file\tlabel\tmid\tsplit\trecording\n"
                     "a.flac\tDog\t/m/0bt9lr\ttrain\tra\na.flac\tBark\t/m/05tny_\ttrain\tra\n"
                     "b.flac\tSpeech\t/m/09x0r\ttrain\trb\nc.flac\tBark; Speech\t/m/05tny_; /m/09x0r\ttrain\trc\n");
    bp_config *cfg;
    synth_cfg c;
    synth_corpus co;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_config_load_text("corpus = { file = \"ml/corpus.tsv\"; };\n"
                                 "scenes = { train = { single = 4; two = 0; }; };\nsimulator = { type = \"x\"; };\n",
                                 "ml.cfg", root, &cfg, &err),
             &err);
    CHECK_OK(synth_config_parse(cfg, &c, &err), &err);
    CHECK_OK(synth_corpus_load(&c, &co, &err), &err);
    CHECK(co.n_rows == 3 && co.n_classes == 3); /* Bark, Dog, Speech */
    char ans[256];
    synth_row_answer(&co, &co.rows[0], ans, sizeof ans);
    CHECKF(strcmp(ans, "bark; dog") == 0, "'%s'", ans);
    CHECK(strcmp(co.rows[0].mids[1], "/m/05tny_") == 0);
    synth_row_answer(&co, &co.rows[2], ans, sizeof ans);
    CHECKF(strcmp(ans, "bark; speech") == 0, "'%s'", ans);
    CHECK(synth_rows_overlap(&co.rows[0], &co.rows[2]) && !synth_rows_overlap(&co.rows[0], &co.rows[1]));
    CHECK(synth_corpus_pool(&co, SYNTH_TRAIN, 0)->n_recordings == 2); /* Bark: ra, rc */
    synth_corpus_free(&co);
    synth_config_free(&c);
    bp_config_free(cfg);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/bp_test_synth_units_%d", (int)getpid());
    mkdir(root, 0755);
    if (tu_make_corpus(root) != 0) return 1;
    test_stratified();
    test_acoustics();
    test_placement();
    test_multilabel();
    test_scenes();
    if (!bp_test_failures) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    }
    return TEST_RESULT();
}
