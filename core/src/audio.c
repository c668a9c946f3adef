/* Audio files through libsndfile, rate conversion through libsamplerate. */
#include "batpipe/audio.h"

#include <errno.h>
#include <math.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strbuf.h"

#define BP_AUDIO_MAX_CHANNELS 64
#define BP_AUDIO_MAX_FRAMES ((sf_count_t)1 << 34)

static void describe_format(int fmt, char *buf, size_t cap) {
    SF_FORMAT_INFO fi;
    const char *major = "?", *sub = "?";
    memset(&fi, 0, sizeof fi);
    fi.format = fmt & SF_FORMAT_TYPEMASK;
    if (sf_command(NULL, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name) major = fi.name;
    SF_FORMAT_INFO si;
    memset(&si, 0, sizeof si);
    si.format = fmt & SF_FORMAT_SUBMASK;
    if (sf_command(NULL, SFC_GET_FORMAT_INFO, &si, sizeof si) == 0 && si.name) sub = si.name;
    snprintf(buf, cap, "%s (%s)", major, sub);
}

static bp_status open_read(const char *path, SNDFILE **out, SF_INFO *sfi, bp_error *err) {
    memset(sfi, 0, sizeof *sfi);
    if (access(path, R_OK) != 0)
        return bp_error_set(err, BP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    SNDFILE *f = sf_open(path, SFM_READ, sfi);
    if (!f) return bp_error_set(err, BP_ERR_FORMAT, "%s: not a readable audio file: %s", path, sf_strerror(NULL));
    if (sfi->channels < 1 || sfi->channels > BP_AUDIO_MAX_CHANNELS || sfi->samplerate < 1 || sfi->frames < 0 ||
        sfi->frames > BP_AUDIO_MAX_FRAMES) {
        sf_close(f);
        return bp_error_set(err, BP_ERR_FORMAT, "%s: implausible header (%d channels, %d Hz, %lld frames)", path,
                            sfi->channels, sfi->samplerate, (long long)sfi->frames);
    }
    *out = f;
    return BP_OK;
}

bp_status bp_audio_probe(const char *path, bp_audio_info *info, bp_error *err) {
    SNDFILE *f;
    SF_INFO sfi;
    bp_status st = open_read(path, &f, &sfi, err);
    if (st != BP_OK) return st;
    memset(info, 0, sizeof *info);
    info->file_rate = sfi.samplerate;
    info->channels = sfi.channels;
    info->file_frames = sfi.frames;
    describe_format(sfi.format, info->format, sizeof info->format);
    sf_close(f);
    return BP_OK;
}

static int src_type(int32_t quality) {
    switch (quality) {
    case BP_RESAMPLE_MEDIUM: return SRC_SINC_MEDIUM_QUALITY;
    case BP_RESAMPLE_FAST: return SRC_SINC_FASTEST;
    default: return SRC_SINC_BEST_QUALITY;
    }
}

bp_status bp_audio_resample(const bp_tensor *in, double in_rate, double out_rate, int32_t quality, bp_tensor **out,
                            bp_error *err) {
    *out = NULL;
    if (in->dtype != BP_DTYPE_F32 || in->ndim != 2)
        return bp_error_set(err, BP_ERR_INVALID, "resample: expected F32 [channels, samples]");
    if (!(in_rate > 0) || !(out_rate > 0))
        return bp_error_set(err, BP_ERR_INVALID, "resample: rates must be positive (%g → %g)", in_rate, out_rate);
    double ratio = out_rate / in_rate;
    if (!src_is_valid_ratio(ratio))
        return bp_error_set(err, BP_ERR_UNSUPPORTED, "resample: ratio %g (%g → %g Hz) is outside libsamplerate's range",
                            ratio, in_rate, out_rate);
    int64_t ch = in->shape[0], n_in = in->shape[1];
    int64_t n_out = (int64_t)llround((double)n_in * ratio);
    int64_t shape[2] = {ch, n_out};
    bp_tensor *t;
    bp_status st = bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, err);
    if (st != BP_OK) return st;
    if (n_in == 0 || n_out == 0) {
        *out = t;
        return BP_OK;
    }
    /* One mono pass per channel keeps the planar layout and bounds memory. */
    int64_t cap = n_out + 64;
    float *buf = malloc((size_t)cap * sizeof(float));
    if (!buf) {
        bp_tensor_free(t);
        return bp_error_set(err, BP_ERR_NOMEM, "resample: out of memory");
    }
    for (int64_t c = 0; c < ch; c++) {
        SRC_DATA d;
        memset(&d, 0, sizeof d);
        d.data_in = (const float *)in->data + c * n_in;
        d.input_frames = (long)n_in;
        d.data_out = buf;
        d.output_frames = (long)cap;
        d.src_ratio = ratio;
        int e = src_simple(&d, src_type(quality), 1);
        if (e != 0) {
            free(buf);
            bp_tensor_free(t);
            return bp_error_set(err, BP_ERR_INTERNAL, "resample: %s", src_strerror(e));
        }
        float *dst = (float *)t->data + c * n_out;
        int64_t got = d.output_frames_gen < n_out ? d.output_frames_gen : n_out;
        memcpy(dst, buf, (size_t)got * sizeof(float));
        /* the tensor was zero-filled: a short last block leaves zeros */
    }
    free(buf);
    *out = t;
    return BP_OK;
}

bp_status bp_audio_read(const char *path, double target_rate, int32_t want_channels, int32_t quality, bp_tensor **out,
                        bp_audio_info *info, bp_error *err) {
    *out = NULL;
    SNDFILE *f;
    SF_INFO sfi;
    bp_status st = open_read(path, &f, &sfi, err);
    if (st != BP_OK) return st;
    if (want_channels > 0 && sfi.channels != want_channels) {
        sf_close(f);
        return bp_error_set(err, BP_ERR_SPEC, "%s: has %d channel%s, %d needed", path, sfi.channels,
                            sfi.channels == 1 ? "" : "s", want_channels);
    }
    if (info) {
        memset(info, 0, sizeof *info);
        info->file_rate = sfi.samplerate;
        info->channels = sfi.channels;
        info->file_frames = sfi.frames;
        describe_format(sfi.format, info->format, sizeof info->format);
    }
    int64_t ch = sfi.channels, n = sfi.frames;
    float *inter = malloc((size_t)(n * ch + 1) * sizeof(float));
    int64_t shape[2] = {ch, n};
    bp_tensor *t = NULL;
    if (!inter || (st = bp_tensor_new(NULL, BP_DTYPE_F32, 2, shape, &t, err)) != BP_OK) {
        free(inter);
        sf_close(f);
        return inter ? st : bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory for %lld frames", path, (long long)n);
    }
    sf_count_t got = sf_readf_float(f, inter, n);
    int sferr = sf_error(f);
    const char *sfmsg = sf_strerror(f);
    if (got != n || sferr != SF_ERR_NO_ERROR) {
        bp_error_set(err, BP_ERR_FORMAT, "%s: truncated or corrupt audio: read %lld of %lld frames%s%s", path,
                     (long long)got, (long long)n, sferr ? ": " : "", sferr ? sfmsg : "");
        sf_close(f);
        free(inter);
        bp_tensor_free(t);
        return BP_ERR_FORMAT;
    }
    sf_close(f);
    float *planar = t->data;
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < ch; c++) {
            float v = inter[i * ch + c];
            if (!isfinite(v)) {
                free(inter);
                bp_tensor_free(t);
                return bp_error_set(err, BP_ERR_NUMERIC, "%s: sample %lld of channel %lld is %s", path, (long long)i,
                                    (long long)c, isnan(v) ? "NaN" : "infinite");
            }
            planar[c * n + i] = v;
        }
    free(inter);
    if (target_rate > 0 && target_rate != (double)sfi.samplerate) {
        bp_tensor *r;
        st = bp_audio_resample(t, sfi.samplerate, target_rate, quality, &r, err);
        bp_tensor_free(t);
        if (st != BP_OK) {
            bp_error_prefix(err, "%s: ", path);
            return st;
        }
        t = r;
    }
    *out = t;
    return BP_OK;
}

static int format_for(const char *path, const char *subtype, int *fmt, char *why, size_t cap) {
    const char *dot = strrchr(path, '.');
    const char *ext = dot ? dot + 1 : "";
    int major, sub;
    if (strcasecmp(ext, "wav") == 0) {
        major = SF_FORMAT_WAV;
        sub = SF_FORMAT_PCM_16;
    } else if (strcasecmp(ext, "flac") == 0) {
        major = SF_FORMAT_FLAC;
        sub = SF_FORMAT_PCM_16;
    } else if (strcasecmp(ext, "ogg") == 0) {
        major = SF_FORMAT_OGG;
        sub = SF_FORMAT_VORBIS;
    } else {
        snprintf(why, cap, "unknown audio extension '.%s' (use .wav, .flac or .ogg)", ext);
        return 0;
    }
    if (subtype && major != SF_FORMAT_OGG) {
        if (strcmp(subtype, "PCM_16") == 0) sub = SF_FORMAT_PCM_16;
        else if (strcmp(subtype, "PCM_24") == 0) sub = SF_FORMAT_PCM_24;
        else if (strcmp(subtype, "FLOAT") == 0 && major == SF_FORMAT_WAV) sub = SF_FORMAT_FLOAT;
        else {
            snprintf(why, cap, "sample format '%s' is not available for this container", subtype);
            return 0;
        }
    }
    *fmt = major | sub;
    return 1;
}

bp_status bp_audio_write(const char *path, const bp_tensor *audio, double rate, const char *subtype, bp_error *err) {
    if (audio->dtype != BP_DTYPE_F32 || audio->ndim != 2 || audio->shape[0] < 1 ||
        audio->shape[0] > BP_AUDIO_MAX_CHANNELS)
        return bp_error_set(err, BP_ERR_INVALID, "%s: expected F32 [channels, samples] audio", path);
    if (!(rate >= 1 && rate <= 1e6)) return bp_error_set(err, BP_ERR_INVALID, "%s: implausible sample rate %g", path, rate);
    int fmt;
    char why[160];
    if (!format_for(path, subtype, &fmt, why, sizeof why)) return bp_error_set(err, BP_ERR_INVALID, "%s: %s", path, why);
    SF_INFO sfi;
    memset(&sfi, 0, sizeof sfi);
    sfi.samplerate = (int)lround(rate);
    sfi.channels = (int)audio->shape[0];
    sfi.format = fmt;
    if (!sf_format_check(&sfi))
        return bp_error_set(err, BP_ERR_INVALID, "%s: libsndfile cannot write this format at %d Hz, %d channels", path,
                            sfi.samplerate, sfi.channels);
    char *dir = bp_dirname(path);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char *tmpl = dir ? bp_strdupf("%s/.%s.XXXXXX", dir, base) : NULL;
    free(dir);
    if (!tmpl) return bp_error_set(err, BP_ERR_NOMEM, "%s: out of memory", path);
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        int e = errno;
        free(tmpl);
        return bp_error_set(err, BP_ERR_IO, "%s: cannot create a file there: %s", path, strerror(e));
    }
    SNDFILE *f = sf_open_fd(fd, SFM_WRITE, &sfi, SF_FALSE);
    if (!f) {
        close(fd);
        unlink(tmpl);
        free(tmpl);
        return bp_error_set(err, BP_ERR_IO, "%s: cannot write: %s", path, sf_strerror(NULL));
    }
    int64_t ch = audio->shape[0], n = audio->shape[1];
    const float *planar = audio->data;
    float block[4096];
    int64_t per = (int64_t)(sizeof block / sizeof block[0]) / ch;
    bp_status st = BP_OK;
    for (int64_t i = 0; i < n && st == BP_OK; i += per) {
        int64_t m = n - i < per ? n - i : per;
        for (int64_t k = 0; k < m; k++)
            for (int64_t c = 0; c < ch; c++) block[k * ch + c] = planar[c * n + i + k];
        if (sf_writef_float(f, block, m) != m)
            st = bp_error_set(err, BP_ERR_IO, "%s: write failed: %s", path, sf_strerror(f));
    }
    if (sf_close(f) != 0 && st == BP_OK) st = bp_error_set(err, BP_ERR_IO, "%s: write failed on close", path);
    if (st == BP_OK && fsync(fd) != 0) st = bp_error_set(err, BP_ERR_IO, "%s: cannot flush: %s", path, strerror(errno));
    if (close(fd) != 0 && st == BP_OK) st = bp_error_set(err, BP_ERR_IO, "%s: write failed on close", path);
    if (st == BP_OK && chmod(tmpl, 0644) != 0)
        st = bp_error_set(err, BP_ERR_IO, "%s: cannot set permissions: %s", path, strerror(errno));
    if (st == BP_OK && rename(tmpl, path) != 0)
        st = bp_error_set(err, BP_ERR_IO, "%s: cannot move the finished file into place: %s", path, strerror(errno));
    if (st != BP_OK) unlink(tmpl);
    free(tmpl);
    return st;
}
