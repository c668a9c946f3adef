/* synth: sampling one scene. Everything is drawn from seeds derived from
 * (global seed, split, kind, scene index, stream), so a scene is the same
 * whichever thread, shard or run renders it. Balance: the class of each
 * source and its distance class come from seeded permutations over blocks of
 * consecutive scenes (every class and every distance class once per block);
 * then a room that can hold the distance, then positions (the listener is
 * placed after the direction of the farthest source is drawn, so far sources
 * need no rejection against the walls). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth_internal.h"

uint64_t synth_seed(uint64_t global, int32_t split, int32_t kind, int64_t index, uint32_t stream) {
    uint64_t h = synth_mix64(global ^ 0x62617470697065ull); /* "batpipe" */
    h = synth_mix64(h ^ ((uint64_t)(uint32_t)split << 32) ^ (uint64_t)(uint32_t)kind);
    h = synth_mix64(h ^ (uint64_t)index);
    return synth_mix64(h ^ ((uint64_t)stream * 0xd6e8feb86659fd93ull));
}

int32_t synth_stratified(uint64_t global, int32_t split, int32_t kind, uint32_t stream, int64_t index, int32_t n) {
    if (n <= 1) return 0;
    int64_t block = index / n, pos = index % n;
    synth_rng r;
    synth_rng_seed(&r, synth_seed(global, split, kind, block, 0x1000u + stream));
    /* a seeded Fisher–Yates shuffle of 0..n-1 (n is small: classes or distance classes) */
    int32_t small[256];
    int32_t *perm = n <= 256 ? small : malloc((size_t)n * sizeof *perm);
    if (!perm) return (int32_t)(index % n); /* out of memory: still balanced, only not shuffled */
    for (int32_t i = 0; i < n; i++) perm[i] = i;
    for (int32_t i = n - 1; i > 0; i--) {
        int32_t j = (int32_t)synth_rng_below(&r, (uint32_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int32_t v = perm[pos];
    if (perm != small) free(perm);
    return v;
}

void synth_scene_id(int32_t split, int32_t kind, int64_t index, char *buf, size_t cap) {
    snprintf(buf, cap, "%s-%s-%06lld", synth_split_name(split), synth_kind_name(kind), (long long)index);
}

int synth_scene_id_parse(const char *id, int32_t *split, int32_t *kind, int64_t *index) {
    for (int32_t s = 0; s < SYNTH_SPLITS; s++)
        for (int32_t k = 0; k < SYNTH_KINDS; k++) {
            char prefix[32];
            int n = snprintf(prefix, sizeof prefix, "%s-%s-", synth_split_name(s), synth_kind_name(k));
            if (strncmp(id, prefix, (size_t)n) != 0) continue;
            const char *p = id + n;
            if (!*p) return -1;
            int64_t v = 0;
            for (; *p; p++) {
                if (*p < '0' || *p > '9' || v > INT64_MAX / 10 - 10) return -1;
                v = v * 10 + (*p - '0');
            }
            *split = s;
            *kind = k;
            *index = v;
            return 0;
        }
    return -1;
}

void synth_scene_clear(synth_scene *s) {
    for (uint32_t k = 0; k < SYNTH_MAX_SOURCES; k++)
        if (s->src[k].replaced) json_decref(s->src[k].replaced);
    memset(s, 0, sizeof *s);
}

/* A row of `cls` in `split`: a recording uniformly, then one of its files. */
static uint32_t pick_row(const synth_ctx *x, synth_rng *rng, int32_t split, int32_t cls) {
    const synth_pool *p = synth_corpus_pool(x->corpus, split, cls);
    uint32_t rec = synth_rng_below(rng, p->n_recordings);
    uint32_t a = p->rec_start[rec], b = p->rec_start[rec + 1];
    return p->rows[a + synth_rng_below(rng, b - a)];
}

static int in_room(const synth_cfg *cfg, const synth_room *room, const double p[3]) {
    double m = cfg->wall_margin;
    for (int k = 0; k < 3; k++)
        if (p[k] < m - 1e-9 || p[k] > room->size[k] - m + 1e-9) return 0;
    return 1;
}

/* Height limits of sources in this room. */
static void source_heights(const synth_cfg *cfg, const synth_room *room, double *lo, double *hi) {
    *lo = fmax(cfg->source_height[0], cfg->wall_margin);
    *hi = fmin(cfg->source_height[1], room->size[1] - cfg->wall_margin);
}

/* Vertical offset range of a source `d` away from a listener at height hl. */
static int dy_range(const synth_cfg *cfg, const synth_room *room, double hl, double d, double *lo, double *hi) {
    double ys_lo, ys_hi;
    source_heights(cfg, room, &ys_lo, &ys_hi);
    *lo = fmax(-d, ys_lo - hl);
    *hi = fmin(d, ys_hi - hl);
    if (!cfg->keep_low_elevation) *lo = fmax(*lo, d * sin(cfg->min_elevation * M_PI / 180.0));
    return *lo <= *hi;
}

static void quantize_point(double p[3]) {
    for (int k = 0; k < 3; k++) p[k] = synth_quantize(p[k], 0.001);
}

/* Check a placed source: inside the room, its distance class as drawn, its
 * elevation allowed; fills the label. */
static int source_ok(const synth_cfg *cfg, const synth_room *room, const double listener[3], synth_src *s) {
    if (!in_room(cfg, room, s->pos)) return 0;
    if (bp_spatial_label_compute(s->pos, listener, &s->label, NULL) != BP_OK) return 0;
    if (s->label.distance_class != s->drawn_distance_class || s->label.distance < cfg->min_distance) return 0;
    s->below_hrtf = s->label.elevation_deg < cfg->min_elevation;
    if (s->below_hrtf && !cfg->keep_low_elevation) return 0;
    return 1;
}

/* Place the farthest source and the listener together: the horizontal
 * direction th is given (drawn before the room, uniformly), the listener goes
 * uniformly where both fit. */
static int place_first(const synth_cfg *cfg, const synth_room *room, synth_rng *rng, double d, double th,
                       double listener[3], synth_src *s) {
    double m = cfg->wall_margin;
    for (int t = 0; t < 64; t++) {
        double hl = synth_rng_range(rng, cfg->listener_height[0], cfg->listener_height[1]);
        hl = fmin(fmax(hl, m), room->size[1] - m);
        double lo, hi;
        if (!dy_range(cfg, room, hl, d, &lo, &hi)) continue;
        double dy = synth_rng_range(rng, lo, hi);
        double r = sqrt(fmax(0, d * d - dy * dy));
        double ox = r * cos(th), oz = -r * sin(th);
        double x0 = m + fmax(0, -ox), x1 = room->size[0] - m - fmax(0, ox);
        double z0 = m + fmax(0, -oz), z1 = room->size[2] - m - fmax(0, oz);
        if (x0 > x1 || z0 > z1) continue;
        listener[0] = synth_rng_range(rng, x0, x1);
        listener[1] = hl;
        listener[2] = synth_rng_range(rng, z0, z1);
        quantize_point(listener);
        s->pos[0] = listener[0] + ox;
        s->pos[1] = listener[1] + dy;
        s->pos[2] = listener[2] + oz;
        quantize_point(s->pos);
        if (in_room(cfg, room, listener) && source_ok(cfg, room, listener, s)) return 1;
    }
    return 0;
}

/* Place another source around a fixed listener. */
static int place_other(const synth_cfg *cfg, const synth_room *room, synth_rng *rng, double d, const double listener[3],
                       synth_src *s, const synth_src *other) {
    double lo, hi;
    if (!dy_range(cfg, room, listener[1], d, &lo, &hi)) return 0;
    for (int t = 0; t < 256; t++) {
        double dy = synth_rng_range(rng, lo, hi);
        double r = sqrt(fmax(0, d * d - dy * dy));
        double th = synth_rng_range(rng, 0, 2 * M_PI);
        s->pos[0] = listener[0] + r * cos(th);
        s->pos[1] = listener[1] + dy;
        s->pos[2] = listener[2] - r * sin(th);
        quantize_point(s->pos);
        if (!source_ok(cfg, room, listener, s)) continue;
        if (other && memcmp(other->label.side, s->label.side, sizeof s->label.side) == 0) continue; /* same octant */
        return 1;
    }
    return 0;
}

static double draw_distance(const synth_cfg *cfg, synth_rng *rng, int32_t cls) {
    double lo = fmax(cfg->min_distance, cls * 0.5 - 0.25), hi = cls * 0.5 + 0.25;
    return synth_rng_range(rng, lo, hi);
}

bp_status synth_scene_sample(const synth_ctx *x, int32_t split, int32_t kind, int64_t index, synth_scene *sc,
                             bp_error *err) {
    const synth_cfg *cfg = x->cfg;
    const synth_corpus *co = x->corpus;
    memset(sc, 0, sizeof *sc);
    synth_scene_id(split, kind, index, sc->id, sizeof sc->id);
    sc->split = split;
    sc->kind = kind;
    sc->index = index;
    sc->seed = synth_seed(cfg->seed, split, kind, index, SYNTH_STREAM_SCENE);
    sc->n_src = kind == SYNTH_SINGLE ? 1 : 2;
    synth_rng rng;
    synth_rng_seed(&rng, sc->seed);
    int32_t nc = (int32_t)co->n_classes;
    /* classes and recordings */
    for (uint32_t k = 0; k < sc->n_src; k++)
        sc->src[k].class_id = synth_stratified(cfg->seed, split, kind, SYNTH_STREAM_CLASS0 + k, index, nc);
    if (sc->n_src == 2 && sc->src[1].class_id == sc->src[0].class_id)
        sc->src[1].class_id = (sc->src[0].class_id + 1 + (int32_t)synth_rng_below(&rng, (uint32_t)nc - 1)) % nc;
    sc->src[0].row = pick_row(x, &rng, split, sc->src[0].class_id);
    if (sc->n_src == 2) {
        int ok = 0;
        for (int t = 0; t < 64 && !ok; t++) {
            if (t && t % 8 == 0) /* this class keeps overlapping: another class */
                sc->src[1].class_id = (sc->src[0].class_id + 1 + (int32_t)synth_rng_below(&rng, (uint32_t)nc - 1)) % nc;
            sc->src[1].row = pick_row(x, &rng, split, sc->src[1].class_id);
            ok = !synth_rows_overlap(&co->rows[sc->src[0].row], &co->rows[sc->src[1].row]);
        }
        if (!ok)
            return bp_error_set(err, BP_ERR_INVALID,
                                "synth: scene %s: no recording of another class without a label in common with %s",
                                sc->id, co->rows[sc->src[0].row].file);
    }
    /* distances */
    double d[SYNTH_MAX_SOURCES];
    int32_t nd = (int32_t)cfg->n_distance_classes;
    for (uint32_t k = 0; k < sc->n_src; k++)
        sc->src[k].drawn_distance_class =
            cfg->distance_classes[synth_stratified(cfg->seed, split, kind, SYNTH_STREAM_DIST0 + k, index, nd)];
    /* room and positions */
    for (int attempt = 0; attempt < 64; attempt++) {
        for (uint32_t k = 0; k < sc->n_src; k++) d[k] = draw_distance(cfg, &rng, sc->src[k].drawn_distance_class);
        uint32_t far = sc->n_src == 2 && d[1] > d[0] ? 1 : 0;
        double th = synth_rng_range(&rng, 0, 2 * M_PI); /* azimuth of the farthest source, uniform */
        bp_status st = synth_room_sample(cfg, &rng, d[far] * fabs(cos(th)), d[far] * fabs(sin(th)), &sc->room, err);
        if (st != BP_OK) {
            bp_error_prefix(err, "scene %s: ", sc->id);
            return st;
        }
        for (int la = 0; la < 16; la++) {
            if (!place_first(cfg, &sc->room, &rng, d[far], th, sc->listener, &sc->src[far])) continue;
            if (sc->n_src == 1) return BP_OK;
            uint32_t near = 1 - far;
            if (place_other(cfg, &sc->room, &rng, d[near], sc->listener, &sc->src[near], &sc->src[far])) return BP_OK;
        }
    }
    if (sc->n_src == 1)
        return bp_error_set(err, BP_ERR_INVALID,
                            "synth: scene %s: could not place the source at distance class %d in 64 rooms; check "
                            "geometry.source_height, listener_height and min_elevation against the room types",
                            sc->id, sc->src[0].drawn_distance_class);
    return bp_error_set(
        err, BP_ERR_INVALID,
        "synth: scene %s: could not place two sources (distance classes %d and %d) in different octants "
        "in 64 rooms; check geometry.source_height, listener_height and min_elevation against the "
        "room types",
        sc->id, sc->src[0].drawn_distance_class, sc->src[1].drawn_distance_class);
}

int synth_scene_replace_row(const synth_ctx *x, synth_scene *sc, uint32_t k, const uint32_t *failed,
                            uint32_t n_failed) {
    const synth_pool *p = synth_corpus_pool(x->corpus, sc->split, sc->src[k].class_id);
    uint32_t at = 0;
    for (uint32_t i = 0; i < p->n_rows; i++)
        if (p->rows[i] == sc->src[k].row) at = i;
    for (uint32_t step = 1; step <= p->n_rows; step++) {
        uint32_t row = p->rows[(at + step) % p->n_rows];
        int bad = 0;
        for (uint32_t f = 0; f < n_failed; f++)
            if (failed[f] == row) bad = 1;
        if (bad) continue;
        if (sc->n_src == 2 && synth_rows_overlap(&x->corpus->rows[row], &x->corpus->rows[sc->src[1 - k].row])) continue;
        sc->src[k].row = row;
        return 0;
    }
    return -1;
}
