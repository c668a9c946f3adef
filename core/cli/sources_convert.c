/* `batpipe sources`: one recording → a 32 kHz mono FLAC (PCM 24) clip, and
 * the measurements of the stored clip (duration, RMS, peak, content md5). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "batpipe/audio.h"
#include "batpipe/util.h"
#include "sources.h"

/* Keep the stored peak at most this (−0.01 dBFS): values at +1.0 cannot be
 * represented in PCM 24 and libsndfile does not clip on conversion. */
#define PEAK_LIMIT 0.99885

static void measure_samples(const float *x, int64_t n, sources_clip_stats *s) {
    sources_md5 m;
    sources_md5_init(&m);
    double sum = 0, peak = 0;
    uint8_t buf[3 * 1024];
    size_t fill = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        sum += v * v;
        if (fabs(v) > peak) peak = fabs(v);
        long q = lrint(v * 8388608.0);
        if (q > 8388607) q = 8388607;
        if (q < -8388608) q = -8388608;
        uint32_t u = (uint32_t)q;
        buf[fill++] = (uint8_t)(u & 0xff);
        buf[fill++] = (uint8_t)((u >> 8) & 0xff);
        buf[fill++] = (uint8_t)((u >> 16) & 0xff);
        if (fill == sizeof buf) {
            sources_md5_update(&m, buf, fill);
            fill = 0;
        }
    }
    sources_md5_update(&m, buf, fill);
    uint8_t d[16];
    sources_md5_final(&m, d);
    sources_md5_hex(d, s->md5);
    double rms = n > 0 ? sqrt(sum / (double)n) : 0;
    s->rms_dbfs = rms > 0 ? 20.0 * log10(rms) : -INFINITY;
    s->peak = peak;
    s->duration_s = (double)n / SOURCES_RATE;
}

bp_status sources_measure(const char *path, sources_clip_stats *stats, bp_error *err) {
    bp_tensor *t;
    bp_audio_info info;
    bp_status st = bp_audio_read(path, 0, 1, BP_RESAMPLE_BEST, &t, &info, err);
    if (st != BP_OK) return st;
    if (info.file_rate != SOURCES_RATE) {
        bp_tensor_free(t);
        return bp_error_set(err, BP_ERR_SPEC, "%s: stored at %g Hz, %d expected", path, info.file_rate, SOURCES_RATE);
    }
    double gain = stats->gain_db, rate = stats->source_rate;
    int32_t ch = stats->source_channels, used = stats->channel;
    measure_samples(t->data, t->shape[1], stats);
    stats->gain_db = gain;
    stats->source_rate = rate;
    stats->source_channels = ch;
    stats->channel = used;
    bp_tensor_free(t);
    return BP_OK;
}

static int up_to_date(const char *input, const char *output) {
    struct stat si, so;
    if (stat(output, &so) != 0 || !S_ISREG(so.st_mode) || so.st_size == 0) return 0;
    if (stat(input, &si) != 0) return 1; /* input gone: keep what we have */
    if (so.st_mtim.tv_sec != si.st_mtim.tv_sec) return so.st_mtim.tv_sec > si.st_mtim.tv_sec;
    return so.st_mtim.tv_nsec >= si.st_mtim.tv_nsec;
}

static bp_status check_result(const char *input, const sources_convert_opts *opt, const sources_clip_stats *s,
                              bp_error *err) {
    if (opt->min_seconds > 0 && s->duration_s < opt->min_seconds)
        return bp_error_set(err, BP_ERR_INVALID, "%s: too short (%.3f s < %.3f s)", input, s->duration_s,
                            opt->min_seconds);
    if (!(s->rms_dbfs > opt->silence_dbfs))
        return bp_error_set(err, BP_ERR_INVALID, "%s: silent (RMS %.1f dBFS <= %.1f dBFS)", input, s->rms_dbfs,
                            opt->silence_dbfs);
    return BP_OK;
}

bp_status sources_convert(const char *input, const char *output, const sources_convert_opts *opt,
                          sources_clip_stats *stats, int *converted, bp_error *err) {
    memset(stats, 0, sizeof *stats);
    *converted = 0;
    if (up_to_date(input, output)) {
        bp_status st = sources_measure(output, stats, err);
        if (st == BP_OK) return check_result(input, opt, stats, err);
        /* unreadable leftover: convert again */
    }
    bp_tensor *t = NULL;
    bp_audio_info info;
    bp_status st = bp_audio_read(input, 0, 0, BP_RESAMPLE_BEST, &t, &info, err);
    if (st != BP_OK) return st;
    stats->source_rate = info.file_rate;
    stats->source_channels = info.channels;
    int64_t n = t->shape[1];
    if (n == 0) {
        bp_tensor_free(t);
        return bp_error_set(err, BP_ERR_INVALID, "%s: no samples", input);
    }
    /* channel 0 (as BAT does), unless it is digitally silent while another
     * channel is not (some packages ship stereo files with an empty left
     * channel); cut to a little more than max_seconds before resampling */
    int64_t keep = n;
    if (opt->max_seconds > 0) {
        int64_t lim = (int64_t)ceil((opt->max_seconds + 0.1) * info.file_rate);
        if (lim < keep) keep = lim;
    }
    const float *planar = t->data;
    int32_t channel = 0;
    for (int32_t c = 0; c < info.channels; c++) {
        int any = 0;
        for (int64_t i = 0; i < keep && !any; i++) any = planar[c * n + i] != 0.0f;
        if (any) {
            channel = c;
            break;
        }
    }
    stats->channel = channel;
    int64_t shape[2] = {1, keep};
    bp_tensor mono = bp_tensor_view(BP_DTYPE_F32, 2, shape, (float *)t->data + (size_t)channel * (size_t)n);
    bp_tensor *r = NULL;
    if (info.file_rate != SOURCES_RATE) {
        st = bp_audio_resample(&mono, info.file_rate, SOURCES_RATE, BP_RESAMPLE_BEST, &r, err);
        if (st != BP_OK) {
            bp_tensor_free(t);
            bp_error_prefix(err, "%s: ", input);
            return st;
        }
    } else {
        st = bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &r, err);
        if (st != BP_OK) {
            bp_tensor_free(t);
            return st;
        }
        memcpy(r->data, mono.data, (size_t)keep * sizeof(float));
    }
    bp_tensor_free(t);
    if (opt->max_seconds > 0) {
        int64_t lim = (int64_t)llround(opt->max_seconds * SOURCES_RATE);
        if (r->shape[1] > lim) r->shape[1] = lim; /* the buffer stays allocated; only the view shrinks */
    }
    float *x = r->data;
    int64_t m = r->shape[1];
    double peak = 0;
    for (int64_t i = 0; i < m; i++)
        if (fabs(x[i]) > peak) peak = fabs(x[i]);
    double gain = 1.0;
    if (peak > PEAK_LIMIT) {
        gain = PEAK_LIMIT / peak;
        for (int64_t i = 0; i < m; i++) x[i] = (float)(x[i] * gain);
    }
    /* a result that would be rejected is not written */
    sources_clip_stats pre;
    memset(&pre, 0, sizeof pre);
    measure_samples(x, m, &pre);
    st = check_result(input, opt, &pre, err);
    if (st == BP_OK) {
        char *dir = sources_dirname(output);
        if (!dir) st = bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        else st = bp_mkdir_p(dir, err);
        free(dir);
    }
    if (st == BP_OK) st = bp_audio_write(output, r, SOURCES_RATE, "PCM_24", err);
    bp_tensor_free(r);
    if (st != BP_OK) return st;
    *converted = 1;
    stats->gain_db = 20.0 * log10(gain);
    st = sources_measure(output, stats, err);
    if (st != BP_OK) return st;
    return check_result(input, opt, stats, err);
}
