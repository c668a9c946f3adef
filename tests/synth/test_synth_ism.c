/* batpipe synth with the real simulator plugin (ism_binaural), skipped when
 * it is not built: a missing HRTF file given through the simulator's
 * parameter is a clear error at load; a few scenes render; the simulator's
 * own view of each direct path (distance, azimuth, elevation in BAT's frame)
 * agrees with the labels the generator wrote; the scene's RT60 is the
 * simulator's mid-band Eyring T60; for lateral sources the near ear is
 * louder in the first 150 ms after the direct sound (the click-train test clip clicks every 125 ms). */
#include <jansson.h>
#include <string.h>

#include "batpipe/synth.h"
#include "bp_test.h"
#include "synth_test_util.h"

static char root[256];

int main(void) {
    bp_error err = BP_ERROR_INIT;
    bp_registry *reg;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    const char *pp = getenv("BATPIPE_PLUGIN_PATH");
    if (pp) bp_registry_scan_dir(reg, pp, &err);
    if (!bp_registry_find(reg, BP_KIND_SIMULATOR, "ism_binaural")) {
        bp_registry_free(reg);
        TEST_SKIP("the ism_binaural simulator plugin is not built");
    }
    if (!tu_exists("/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa")) {
        bp_registry_free(reg);
        TEST_SKIP("the MIT KEMAR SOFA file (libmysofa1) is not installed");
    }
    snprintf(root, sizeof root, "/tmp/bp_test_synth_ism_%d", (int)getpid());
    mkdir(root, 0755);
    if (tu_make_corpus(root) != 0) return 1;
    char cfg[600], text[1024];
    snprintf(cfg, sizeof cfg, "%s/data.cfg", root);
    snprintf(text, sizeof text,
             "seed = 9;\ncorpus = { file = \"corpus/corpus.tsv\"; };\n"
             "scenes = { train = { single = 8; two = 2; }; eval = { single = 0; two = 0; }; };\n"
             "audio = { seconds = 1.0; rir_seconds = 0.5; };\n"
             "geometry = { distance_classes = [1, 2, 3, 4, 5, 6]; };\n"
             "simulator = { type = \"ism_binaural\"; };\noutput = { dir = \"out\"; };\n");
    tu_write_text(cfg, text);
    bp_synth *s = NULL;
    const char *bad[] = {"simulator.hrtf=\"/nonexistent/kemar.sofa\""};
    bp_status st = bp_synth_load(reg, cfg, bad, 1, &s, &err);
    CHECKF(st != BP_OK && strstr(err.msg, "/nonexistent/kemar.sofa") && strstr(err.msg, "data.cfg:"), "%s", err.msg);
    CHECK_OK(bp_synth_load(reg, cfg, NULL, 0, &s, &err), &err);
    bp_synth_report rep;
    if (s) CHECK_OK(bp_synth_run(s, NULL, &rep, &err), &err);
    bp_synth_free(s);
    char path[900];
    snprintf(path, sizeof path, "%s/out/scenes-train.json", root);
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    CHECK(doc != NULL);
    const json_t *data = json_object_get(doc, "data");
    int lateral = 0;
    for (size_t i = 0; i < json_array_size(data); i++) {
        const json_t *rec = json_array_get(data, i), *srcs = json_object_get(rec, "sources");
        for (size_t k = 0; k < json_array_size(srcs); k++) {
            const json_t *src = json_array_get(srcs, k), *sim = json_object_get(src, "simulator");
            double d = json_number_value(json_object_get(sim, "direct_distance_m"));
            double az = json_number_value(json_object_get(sim, "direct_azimuth_deg"));
            double el = json_number_value(json_object_get(sim, "direct_elevation_deg"));
            CHECK_NEAR(d, json_number_value(json_object_get(src, "distance")), 1e-3);
            double az_label = (double)json_integer_value(json_object_get(src, "azimuth"));
            double daz = fmod(fabs(az - az_label), 360.0);
            CHECKF(fmin(daz, 360 - daz) <= 0.5 + 1e-6, "azimuth: simulator %g, label %g", az, az_label);
            CHECK(fabs(el - (double)json_integer_value(json_object_get(src, "elevation"))) <= 0.5 + 1e-6);
            if (k == 0) {
                double e500 = json_number_value(json_object_get(sim, "rt60_eyring_500hz"));
                double e1k = json_number_value(json_object_get(sim, "rt60_eyring_1000hz"));
                CHECK(e500 > 0 && e1k > 0);
                CHECK_NEAR(json_number_value(json_object_get(rec, "rt60")), 0.5 * (e500 + e1k), 1e-3);
            }
            /* near ear louder just after the direct sound (single-source scenes, clearly lateral) */
            double dx = json_number_value(json_array_get(json_object_get(src, "position"), 0)) -
                        json_number_value(json_array_get(json_object_get(rec, "listener"), 0));
            if (json_array_size(srcs) != 1 || fabs(dx) < 0.7 * d) continue;
            snprintf(path, sizeof path, "%s/out/%s", root, json_string_value(json_object_get(rec, "audio_path")));
            bp_tensor *t;
            CHECK_OK(bp_audio_read(path, 0, 2, 0, &t, NULL, &err), &err);
            if (!t) continue;
            const float *x = t->data;
            int64_t n = t->shape[1], a = (int64_t)(json_number_value(json_object_get(src, "start_seconds")) * 32000);
            a += (int64_t)(json_number_value(json_object_get(sim, "direct_delay_s")) * 32000);
            double el2 = 0, er2 = 0;
            for (int64_t j = a; j < a + 4800 && j < n; j++) el2 += x[j] * x[j], er2 += x[n + j] * x[n + j];
            CHECKF((dx > 0) == (er2 > el2), "dx %g: left %g right %g", dx, el2, er2);
            lateral++;
            bp_tensor_free(t);
        }
    }
    fprintf(stderr, "%d lateral sources checked\n", lateral);
    CHECK(lateral > 0);
    json_decref(doc);
    bp_registry_free(reg);
    if (!bp_test_failures) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    }
    return TEST_RESULT();
}
