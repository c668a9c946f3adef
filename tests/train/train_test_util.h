/* Helpers of the trainer tests: a tiny synthetic dataset in the layout
 * `batpipe synth` writes (binaural clips + a QA JSON with ground-truth
 * "sources" + class_labels_indices.csv, read by the spatialsoundqa dataset
 * plugin), training configs, and file helpers.
 *
 * Clip i (0.25 s, 32 kHz, stereo): class k = i mod 4 is a tone at 500·2^k Hz
 * with a weak noise floor; its source is on the right (azimuth 0, the right
 * ear louder and earlier) or on the left (azimuth 180) by (i / 4) mod 2; near
 * (distance class 2, loud) or far (class 6, quiet) by (i / 8) mod 2;
 * elevation class 90. */
#ifndef TRAIN_TEST_UTIL_H
#define TRAIN_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batpipe/audio.h"
#include "batpipe/tensor.h"

#define TT_RATE 32000
#define TT_SAMPLES 8000 /* 0.25 s */

static inline int tt_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static inline char *tt_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = '\0';
    if (len) *len = (size_t)n;
    return b;
}

static inline int tt_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* rm -r of a test directory (files and subdirectories) */
static inline void tt_rmtree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            tt_rmtree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static inline int tt_mkdir(const char *p) { return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -1; }

/* Write the dataset into dir (dir/audio/cNNNNNN.wav, dir/train.json, dir/eval.json,
 * dir/class_labels_indices.csv): n_train + n_eval clips. */
static inline int tt_make_dataset(const char *dir, int n_train, int n_eval) {
    char p[4096];
    if (tt_mkdir(dir) || (snprintf(p, sizeof p, "%s/audio", dir), tt_mkdir(p))) return -1;
    snprintf(p, sizeof p, "%s/class_labels_indices.csv", dir);
    if (tt_write_text(p, "index,mid,display_name\n0,/m/t0,Tone0\n1,/m/t1,Tone1\n2,/m/t2,Tone2\n3,/m/t3,Tone3\n"))
        return -1;
    for (int split = 0; split < 2; split++) {
        int n = split ? n_eval : n_train, base = split ? 100000 : 0;
        size_t cap = (size_t)n * 600 + 64, len = 0;
        char *json = malloc(cap);
        if (!json) return -1;
        len += (size_t)snprintf(json + len, cap - len, "{\"data\": [\n");
        for (int i = 0; i < n; i++) {
            int id = base + i, k = i % 4, left = (i / 4) % 2, far = (i / 8) % 2;
            int64_t shape[2] = {2, TT_SAMPLES};
            bp_tensor *t;
            bp_error err = BP_ERROR_INIT;
            if (bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, &err) != BP_OK) {
                free(json);
                return -1;
            }
            float *x = t->data;
            double f = 500.0 * pow(2.0, k), amp = far ? 0.08 : 0.4;
            uint32_t s = 2463534242u ^ (uint32_t)id * 2654435761u;
            int delay = 8; /* samples: the far ear hears it later and weaker */
            for (int64_t j = 0; j < TT_SAMPLES; j++) {
                s ^= s << 13, s ^= s >> 17, s ^= s << 5;
                double noise = ((double)(s & 0xffff) / 65535.0 - 0.5) * 0.002;
                double near_v = amp * sin(2 * M_PI * f * (double)j / TT_RATE);
                double far_v = j >= delay ? 0.5 * amp * sin(2 * M_PI * f * (double)(j - delay) / TT_RATE) : 0.0;
                x[j] = (float)((left ? near_v : far_v) + noise);              /* channel 0 = left */
                x[TT_SAMPLES + j] = (float)((left ? far_v : near_v) - noise); /* channel 1 = right */
            }
            snprintf(p, sizeof p, "%s/audio/c%06d.wav", dir, id);
            bp_status st = bp_audio_write(p, t, TT_RATE, "FLOAT", &err);
            bp_tensor_free(t);
            if (st != BP_OK) {
                free(json);
                return -1;
            }
            len += (size_t)snprintf(
                json + len, cap - len,
                "%s{\"audio_id\": \"c%06d\", \"reverb_id\": \"r%06d\", \"audio_id2\": null, \"reverb_id2\": null, "
                "\"question_id\": %d, \"question_type\": \"CLASSIFICATION\", \"type\": \"A\", \"question\": \"q\", "
                "\"answer\": \"Tone%d\", \"audio_path\": \"audio/c%06d.wav\", \"gain_db\": 0.0, \"sources\": "
                "[{\"labels\": [\"Tone%d\"], \"azimuth\": %d, \"elevation_class\": 90, \"distance_class\": %d}]}\n",
                i ? "," : "", id, id, id, k, id, k, left ? 180 : 0, far ? 6 : 2);
        }
        len += (size_t)snprintf(json + len, cap - len, "]}\n");
        snprintf(p, sizeof p, "%s/%s.json", dir, split ? "eval" : "train");
        int rc = tt_write_text(p, json);
        free(json);
        if (rc) return -1;
    }
    return 0;
}

/* A training config for the tiny encoder on that dataset; `extra` is
 * appended (later settings of the same key are errors in libconfig, so
 * pass what the base leaves out, or use -o overrides). */
static inline int tt_write_config(const char *path, const char *data_dir, const char *out_dir, const char *extra) {
    char text[8192];
    snprintf(text, sizeof text,
             "name = \"tiny\";\n"
             "seed = 7;\n"
             "threads = 1;\n"
             "batch_size = 4;\n"
             "accum_steps = 2;\n"
             "data = {\n"
             "  train = { type = \"spatialsoundqa\"; json = \"%s/train.json\"; clip_seconds = 0.25; };\n"
             "  eval = { type = \"spatialsoundqa\"; json = \"%s/eval.json\"; clip_seconds = 0.25; };\n"
             "};\n"
             "frontend = { type = \"melipd\"; clip_samples = %d; target_frames = 0; };\n"
             "encoder = { type = \"train_tiny\"; in_channels = 4; width = 8; n_classes = 4; init_seed = 3; };\n"
             "optimizer = { lr = 0.02; min_lr = 0.001; warmup_steps = 2; weight_decay = 0.01; layer_decay = 0.75; };\n"
             "augment = { mask_t_prob = 0.2; mask_f_prob = 0.1; specaug_freq = 0; specaug_time = 0; drop_path = 0.0;\n"
             "            mixup_prob = 0.5; mixup_alpha = 10.0; };\n"
             "losses = { class = 10.0; distance = 1.0; direction = 1.0; };\n"
             "output = { dir = \"%s\"; };\n"
             "%s\n",
             data_dir, data_dir, TT_SAMPLES, out_dir, extra ? extra : "");
    return tt_write_text(path, text);
}

#endif
