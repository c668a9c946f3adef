/* Audio I/O: round trips through WAV/FLAC/OGG, resampling accuracy,
 * channel checks, corrupt/truncated/NaN files, atomic writes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batpipe/audio.h"
#include "bp_test.h"

static char dir[128];

static char *p(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static bp_tensor *sine(int64_t ch, int64_t n, double rate, double f) {
    int64_t shape[2] = {ch, n};
    bp_tensor *t;
    bp_error err = BP_ERROR_INIT;
    if (bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, &err) != BP_OK) abort();
    float *x = t->data;
    for (int64_t c = 0; c < ch; c++)
        for (int64_t i = 0; i < n; i++) x[c * n + i] = (float)(0.5 * sin(2 * M_PI * f * (double)i / rate + c));
    return t;
}

/* Amplitude of frequency f in x (a single-bin DFT), over the middle part. */
static double tone_amp(const float *x, int64_t n, double rate, double f) {
    double re = 0, im = 0;
    int64_t a = n / 4, b = 3 * n / 4;
    for (int64_t i = a; i < b; i++) {
        re += x[i] * cos(2 * M_PI * f * (double)i / rate);
        im += x[i] * sin(2 * M_PI * f * (double)i / rate);
    }
    return 2 * sqrt(re * re + im * im) / (double)(b - a);
}

static int count_files(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        pclose(f);
    }
    return n;
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/bp_test_audio_%d", (int)getpid());
    mkdir(dir, 0755);
    bp_error err = BP_ERROR_INIT;
    bp_tensor *x = sine(2, 32000, 32000, 440), *y = NULL;
    const char *names[] = {"a.wav", "a.flac", "a.ogg"};
    double tol[] = {1e-4, 1e-4, 0.05};
    for (int k = 0; k < 3; k++) {
        CHECK_OK(bp_audio_write(p(names[k]), x, 32000, NULL, &err), &err);
        bp_audio_info info;
        CHECK_OK(bp_audio_read(p(names[k]), 0, 2, BP_RESAMPLE_BEST, &y, &info, &err), &err);
        if (!y) continue;
        CHECK(info.channels == 2 && info.file_rate == 32000);
        CHECKF(y->shape[0] == 2 && (k == 2 || y->shape[1] == 32000), "%s shape %lld", names[k], (long long)y->shape[1]);
        double maxd = 0;
        int64_t n = y->shape[1] < 32000 ? y->shape[1] : 32000;
        for (int64_t c = 0; c < 2; c++)
            for (int64_t i = 2000; i < n - 2000; i++) {
                double d = fabs(((float *)y->data)[c * y->shape[1] + i] - ((float *)x->data)[c * 32000 + i]);
                if (d > maxd) maxd = d;
            }
        CHECKF(maxd < tol[k], "%s: max error %g", names[k], maxd);
        bp_tensor_free(y);
        y = NULL;
    }
    /* float WAV keeps exact values */
    CHECK_OK(bp_audio_write(p("f.wav"), x, 32000, "FLOAT", &err), &err);
    CHECK_OK(bp_audio_read(p("f.wav"), 0, 0, 0, &y, NULL, &err), &err);
    if (y) CHECK(memcmp(y->data, x->data, bp_tensor_nbytes(x)) == 0);
    bp_tensor_free(y);

    /* resampling 44.1 kHz → 32 kHz: length, frequency and amplitude preserved */
    bp_tensor *h = sine(1, 44100, 44100, 1000);
    CHECK_OK(bp_audio_write(p("h.wav"), h, 44100, "FLOAT", &err), &err);
    CHECK_OK(bp_audio_read(p("h.wav"), 32000, 1, BP_RESAMPLE_BEST, &y, NULL, &err), &err);
    if (y) {
        CHECK(y->shape[1] == 32000);
        double amp = tone_amp(y->data, y->shape[1], 32000, 1000);
        double off = tone_amp(y->data, y->shape[1], 32000, 1100);
        CHECKF(fabs(amp - 0.5) < 0.005, "1 kHz amplitude after resampling %g", amp);
        CHECKF(off < 0.01, "energy at 1.1 kHz %g", off);
        bp_tensor_free(y);
    }
    /* band limiting: a 15 kHz tone at 44.1 kHz has no place below 16 kHz... it stays; 20 kHz must vanish */
    bp_tensor *hi = sine(1, 44100, 44100, 20000);
    CHECK_OK(bp_audio_resample(hi, 44100, 32000, BP_RESAMPLE_BEST, &y, &err), &err);
    if (y) {
        double rms = 0;
        for (int64_t i = 1000; i < y->shape[1] - 1000; i++) rms += ((float *)y->data)[i] * ((float *)y->data)[i];
        rms = sqrt(rms / (double)(y->shape[1] - 2000));
        CHECKF(rms < 1e-3, "20 kHz tone leaked through the 32 kHz resampler: rms %g", rms);
        bp_tensor_free(y);
    }
    bp_tensor_free(hi);
    bp_tensor_free(h);

    /* wrong channel count */
    CHECK(bp_audio_read(p("a.wav"), 0, 1, 0, &y, NULL, &err) == BP_ERR_SPEC);
    CHECKF(strstr(err.msg, "a.wav") && strstr(err.msg, "2 channels, 1 needed"), "msg %s", err.msg);
    /* missing, corrupt, truncated */
    CHECK(bp_audio_read(p("none.wav"), 0, 0, 0, &y, NULL, &err) == BP_ERR_IO);
    CHECKF(strstr(err.msg, "none.wav"), "msg %s", err.msg);
    FILE *f = fopen(p("junk.wav"), "wb");
    fputs("RIFF....WAVEjunkjunkjunk", f);
    fclose(f);
    CHECK(bp_audio_read(p("junk.wav"), 0, 0, 0, &y, NULL, &err) == BP_ERR_FORMAT);
    CHECKF(strstr(err.msg, "junk.wav") && strstr(err.msg, "not a readable audio file"), "msg %s", err.msg);
    /* truncate the FLAC file in the middle of its frames */
    struct stat sb;
    stat(p("a.flac"), &sb);
    CHECK(truncate(p("a.flac"), sb.st_size / 2) == 0);
    bp_status st = bp_audio_read(p("a.flac"), 0, 0, 0, &y, NULL, &err);
    CHECKF(st == BP_ERR_FORMAT, "truncated flac: status %d (%s)", st, err.msg);
    if (st == BP_OK) bp_tensor_free(y);
    /* NaN in a float WAV */
    ((float *)x->data)[12345] = NAN;
    CHECK_OK(bp_audio_write(p("nan.wav"), x, 32000, "FLOAT", &err), &err);
    CHECK(bp_audio_read(p("nan.wav"), 0, 0, 0, &y, NULL, &err) == BP_ERR_NUMERIC);
    CHECKF(strstr(err.msg, "nan.wav") && strstr(err.msg, "NaN"), "msg %s", err.msg);
    /* writing: unknown extension, missing directory; nothing half-written */
    int before = count_files();
    CHECK(bp_audio_write(p("x.mp3"), x, 32000, NULL, &err) == BP_ERR_INVALID);
    CHECKF(strstr(err.msg, "unknown audio extension"), "msg %s", err.msg);
    CHECK(bp_audio_write(p("no/such/dir/x.wav"), x, 32000, NULL, &err) == BP_ERR_IO);
    CHECK(count_files() == before);
    /* a failed overwrite keeps the old file */
    CHECK(bp_audio_write(p("a.wav"), x, -5, NULL, &err) == BP_ERR_INVALID);
    CHECK_OK(bp_audio_read(p("a.wav"), 0, 2, 0, &y, NULL, &err), &err);
    bp_tensor_free(y);
    bp_tensor_free(x);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return TEST_RESULT();
}
