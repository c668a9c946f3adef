/* batpipe — audio files (libsndfile) and sample-rate conversion (libsamplerate).
 *
 * Audio tensors are host F32 [channels, samples] (planar), samples in
 * [-1, 1]. Reading resamples to the requested rate with a band-limited sinc
 * converter; writing picks the container from the extension (.wav, .flac,
 * .ogg) and is atomic (temporary file + rename). */
#ifndef BATPIPE_AUDIO_H
#define BATPIPE_AUDIO_H

#include <stdint.h>

#include "error.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

typedef struct bp_audio_info {
    double file_rate;     /* rate stored in the file */
    int32_t channels;
    int64_t file_frames;  /* samples per channel in the file */
    char format[64];      /* "WAV (PCM 16)", "FLAC (PCM 24)", ... */
} bp_audio_info;

typedef enum bp_resample_quality {
    BP_RESAMPLE_BEST = 0,   /* libsamplerate SRC_SINC_BEST_QUALITY */
    BP_RESAMPLE_MEDIUM = 1, /* SRC_SINC_MEDIUM_QUALITY */
    BP_RESAMPLE_FAST = 2    /* SRC_SINC_FASTEST (still band-limited) */
} bp_resample_quality;

/* Header only: rate, channels, frames, format. Unreadable or corrupt files
 * are BP_ERR_FORMAT/BP_ERR_IO naming the file and libsndfile's reason. */
BP_API bp_status bp_audio_probe(const char *path, bp_audio_info *info, bp_error *err);
/* Read `path` into a new host tensor [channels, samples]; if target_rate > 0
 * and differs from the file's rate, resample to it. If want_channels > 0 and
 * the file has another channel count, fail (BP_ERR_SPEC) naming both. NaN or
 * infinite samples are an error (BP_ERR_NUMERIC). `info` may be NULL. */
BP_API bp_status bp_audio_read(const char *path, double target_rate, int32_t want_channels, int32_t quality,
                               bp_tensor **out, bp_audio_info *info, bp_error *err);
/* Write [channels, samples] at `rate`; `subtype` "PCM_16", "PCM_24", "FLOAT"
 * or NULL (PCM_16 for WAV/FLAC, Vorbis for OGG). Samples outside [-1, 1] are
 * clipped by libsndfile's normalisation. */
BP_API bp_status bp_audio_write(const char *path, const bp_tensor *audio, double rate, const char *subtype,
                                bp_error *err);
/* Resample a host [channels, samples] tensor (band-limited sinc). The output
 * has round(samples · out_rate / in_rate) samples, aligned with the input. */
BP_API bp_status bp_audio_resample(const bp_tensor *in, double in_rate, double out_rate, int32_t quality,
                                   bp_tensor **out, bp_error *err);

BP_EXTERN_C_END

#endif /* BATPIPE_AUDIO_H */
