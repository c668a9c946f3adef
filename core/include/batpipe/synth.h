/* batpipe — SpatialSoundQA-style dataset generation (`batpipe synth`).
 *
 * A generator configuration (libconfig, see docs/synth.md) names a source
 * corpus (corpus.tsv), a simulator plugin (kind "batpipe.simulator/1"), the
 * room distribution, how many single- and two-source scenes of each split to
 * render, and how many questions of each type (A–E) to ask about each scene.
 *
 * Output directory layout (paths inside the JSON files are relative to the
 * file that holds them):
 *   synth.json                      the manifest: every setting, the corpus
 *                                   hash, the simulator, the fingerprint
 *   synth.cfg                       the configuration as loaded (provenance)
 *   audio/<split>/<scene>.flac      10 s binaural renders, 32 kHz
 *   scenes/<split>/<scene>.json     one record per finished scene (metadata
 *                                   and its QA pairs); its presence marks the
 *                                   scene done
 *   train.json, eval.json           every QA pair of a split ({"data": [...]})
 *   stage1-clsdoa/ stage2-single/ stage3-mixup/
 *                                   curriculum files (official names)
 *   scenes-train.json, scenes-eval.json   scene metadata of each split
 *   class_labels_indices.csv        the class list (index,mid,display_name)
 *   skipped_sources.tsv             unusable corpus files and why
 *   summary/                        summary.json, summary.md, *.svg
 * The files after scenes/ are written only when every scene is present.
 *
 * Determinism: every random choice of a scene comes from a seed derived from
 * the global seed, the split, the kind and the scene's index, never from the
 * order of generation, so the same configuration, corpus and simulator give
 * byte-identical files whatever the thread count, sharding or resumption.
 *
 * Thread rules: bp_synth_load, bp_synth_run and bp_synth_merge are
 * main-thread calls (they create plugin instances and FFT plans); run uses
 * worker threads internally. */
#ifndef BATPIPE_SYNTH_H
#define BATPIPE_SYNTH_H

#include <stdint.h>
#include <string.h>

#include "error.h"
#include "pipeline.h"
#include "registry.h"

BP_EXTERN_C_BEGIN

typedef struct bp_synth bp_synth;

/* Load and validate a generator configuration with "key.path=value"
 * overrides applied: unknown keys, types, ranges, the corpus (unknown
 * classes, classes without recordings in a split, unreadable files: those
 * are skipped and reported), the simulator (created once, so a missing HRTF
 * file fails here) and the geometry (a room too small for the largest asked
 * distance is an error naming the setting). `reg` is borrowed and must
 * outlive the generator. */
BP_API bp_status bp_synth_load(bp_registry *reg, const char *path, const char *const *overrides, uint32_t n,
                               bp_synth **out, bp_error *err);
BP_API void bp_synth_free(bp_synth *s);

/* What will be generated: counts, classes, corpus, simulator, output. */
BP_API const char *bp_synth_plan(const bp_synth *s);
/* Corpus files found unusable while loading (missing, corrupt, silent):
 * count, and "path: reason" for each. */
BP_API uint32_t bp_synth_skipped_count(const bp_synth *s);
BP_API const char *bp_synth_skipped_at(const bp_synth *s, uint32_t i);

typedef struct bp_synth_options {
    uint32_t struct_size;    /* sizeof(bp_synth_options) */
    const char *out_dir;     /* NULL: the configuration's output.dir */
    uint32_t shard_index;    /* render the scenes whose global number g has */
    uint32_t shard_count;    /*   g mod shard_count == shard_index; 0 or 1 = all */
    int32_t n_threads;       /* ≤ 0: the configuration's `threads` (0 = every core) */
    int64_t max_scenes;      /* > 0: stop after rendering this many new scenes */
    int32_t finalize;        /* 1: when every scene is present, write the final files */
    bp_progress_fn progress; /* may be NULL; called from the calling thread */
    void *progress_user;
} bp_synth_options;

static inline bp_synth_options bp_synth_options_default(void) {
    bp_synth_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.shard_count = 1;
    o.finalize = 1;
    return o;
}

typedef struct bp_synth_report {
    uint32_t struct_size;     /* sizeof(bp_synth_report) */
    int64_t scenes_total;     /* scenes of the whole set */
    int64_t scenes_in_shard;  /* scenes this call was responsible for */
    int64_t scenes_rendered;  /* rendered by this call */
    int64_t scenes_existing;  /* found finished (resumed) */
    int64_t scenes_missing;   /* of the whole set, still missing after this call */
    int64_t scenes_scaled;    /* rendered scenes attenuated below output.gain_db to avoid clipping */
    int64_t sources_replaced; /* recordings that failed to decode and were replaced */
    int64_t qa_pairs;         /* written to the final files (0 if not finalized) */
    int32_t finalized;        /* 1: the final files were written */
    double seconds;
    char out_dir[1024];
} bp_synth_report;

/* Render this shard's missing scenes into the output directory, skipping
 * scenes already finished there (resume) and refusing a directory made with
 * another configuration. Returns BP_ERR_CANCELLED when the host's
 * `cancelled` says so or `max_scenes` was reached (finished scenes stay). */
BP_API bp_status bp_synth_run(bp_synth *s, const bp_synth_options *opt, bp_synth_report *report, bp_error *err);

/* Merge shard directories into `out_dir` (scenes missing there are copied or
 * hard-linked from each of `shard_dirs`; all must have the same
 * fingerprint), then write the final files. Needs only the manifest in
 * `out_dir` (or in the first shard directory when out_dir has none): no
 * configuration, corpus or simulator. Fails, naming the first missing scene,
 * when the set is incomplete. */
BP_API bp_status bp_synth_merge(const char *out_dir, const char *const *shard_dirs, uint32_t n_shard_dirs,
                                bp_synth_report *report, bp_error *err);

BP_EXTERN_C_END

#endif /* BATPIPE_SYNTH_H */
