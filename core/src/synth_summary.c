/* synth: the summary of a generated set (summary/summary.json,
 * summary/summary.md, summary/distributions.svg, summary/classes.svg):
 * scenes and questions per split and type, sources per class, histograms
 * of azimuth, elevation, distance class and RT60, room types, the Yes/No
 * balance of binary questions, scenes scaled to avoid clipping, sources
 * below the HRTF's lowest elevation, and replaced recordings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth_internal.h"

#define AZ_BINS 36   /* 10° */
#define EL_BINS 18   /* 10°, −90..90 */
#define DIST_BINS 41 /* classes 0..40 */
#define RT_BINS 30   /* 0.05 s, 0..1.5 s (last bin: ≥ 1.45 s) */
#define MAX_QTYPES 16
#define MAX_ROOMS 16

typedef struct split_stats {
    int64_t scenes[SYNTH_KINDS];
    int64_t sources;
    int64_t qa[SYNTH_QA_TYPES];
    char qtype_names[MAX_QTYPES][40];
    int64_t qtype_count[MAX_QTYPES], qtype_yes[MAX_QTYPES], qtype_no[MAX_QTYPES];
    uint32_t n_qtypes;
    double az[AZ_BINS], el[EL_BINS], dist[DIST_BINS], rt[RT_BINS];
    char room_names[MAX_ROOMS][40];
    double room_count[MAX_ROOMS];
    uint32_t n_rooms;
    int64_t scaled, below_hrtf, replaced;
    double rt_sum, rt_min, rt_max;
    double t60_err_sum; /* |simulator rt60 − Eyring mid| */
    int64_t t60_err_n;
} split_stats;

static uint32_t qtype_slot(split_stats *s, const char *name) {
    for (uint32_t i = 0; i < s->n_qtypes; i++)
        if (strcmp(s->qtype_names[i], name) == 0) return i;
    if (s->n_qtypes >= MAX_QTYPES) return MAX_QTYPES - 1;
    snprintf(s->qtype_names[s->n_qtypes], sizeof s->qtype_names[0], "%s", name);
    return s->n_qtypes++;
}

static double num(const json_t *j) { return json_number_value(j); }

static void collect(split_stats *st, double *class_counts, const json_t *manifest, const json_t *rec,
                    json_t *replaced) {
    const json_t *classes = json_object_get(manifest, "classes");
    const char *kind = json_string_value(json_object_get(rec, "kind"));
    st->scenes[kind && strcmp(kind, "two") == 0 ? SYNTH_TWO : SYNTH_SINGLE]++;
    const json_t *srcs = json_object_get(rec, "sources");
    for (size_t k = 0; k < json_array_size(srcs); k++) {
        const json_t *s = json_array_get(srcs, k);
        st->sources++;
        const char *cls = json_string_value(json_object_get(s, "class"));
        for (size_t c = 0; c < json_array_size(classes); c++)
            if (cls && strcmp(cls, json_string_value(json_object_get(json_array_get(classes, c), "display_name"))) == 0)
                class_counts[c] += 1;
        int az = (int)json_integer_value(json_object_get(s, "azimuth"));
        int el = (int)json_integer_value(json_object_get(s, "elevation"));
        int dc = (int)json_integer_value(json_object_get(s, "distance_class"));
        st->az[(az / 10) % AZ_BINS] += 1;
        int eb = (el + 90) / 10;
        st->el[eb < 0 ? 0 : eb >= EL_BINS ? EL_BINS - 1 : eb] += 1;
        st->dist[dc < 0 ? 0 : dc >= DIST_BINS ? DIST_BINS - 1 : dc] += 1;
        if (json_is_true(json_object_get(s, "below_hrtf"))) st->below_hrtf++;
        const json_t *rep = json_object_get(s, "replaced");
        for (size_t i = 0; i < json_array_size(rep); i++) {
            st->replaced++;
            if (replaced) json_array_append(replaced, json_array_get(rep, i));
        }
    }
    double rt = num(json_object_get(rec, "rt60"));
    int rb = (int)(rt / 0.05);
    st->rt[rb < 0 ? 0 : rb >= RT_BINS ? RT_BINS - 1 : rb] += 1;
    st->rt_sum += rt;
    if (st->rt_min == 0 || rt < st->rt_min) st->rt_min = rt;
    if (rt > st->rt_max) st->rt_max = rt;
    const json_t *ey = json_object_get(json_object_get(rec, "room"), "eyring_t60");
    double mid = 0.5 * (num(json_array_get(ey, 2)) + num(json_array_get(ey, 3)));
    if (mid > 0) {
        st->t60_err_sum += fabs(rt - mid) / mid;
        st->t60_err_n++;
    }
    const char *room = json_string_value(json_object_get(json_object_get(rec, "room"), "type"));
    uint32_t r;
    for (r = 0; r < st->n_rooms; r++)
        if (room && strcmp(st->room_names[r], room) == 0) break;
    if (r == st->n_rooms && r < MAX_ROOMS)
        snprintf(st->room_names[st->n_rooms++], sizeof st->room_names[0], "%s", room ? room : "?");
    if (r < MAX_ROOMS) st->room_count[r] += 1;
    if (json_is_true(json_object_get(rec, "scaled"))) st->scaled++;
    const json_t *qa = json_object_get(rec, "qa");
    for (size_t i = 0; i < json_array_size(qa); i++) {
        const json_t *q = json_array_get(qa, i);
        const char *t = json_string_value(json_object_get(q, "type"));
        if (t && t[0] >= 'A' && t[0] <= 'E') st->qa[t[0] - 'A']++;
        const char *qt = json_string_value(json_object_get(q, "question_type"));
        uint32_t slot = qtype_slot(st, qt ? qt : "?");
        st->qtype_count[slot]++;
        const char *a = json_string_value(json_object_get(q, "answer"));
        if (a && strcmp(a, "Yes") == 0) st->qtype_yes[slot]++;
        if (a && strcmp(a, "No") == 0) st->qtype_no[slot]++;
    }
}

static json_t *jhist(const double *h, uint32_t n) {
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++) json_array_append_new(a, json_integer((json_int_t)h[i]));
    return a;
}

static json_t *split_json(const split_stats *s) {
    json_t *j = json_object();
    json_t *sc = json_object();
    json_object_set_new(sc, "single", json_integer(s->scenes[0]));
    json_object_set_new(sc, "two", json_integer(s->scenes[1]));
    json_object_set_new(j, "scenes", sc);
    json_object_set_new(j, "sources", json_integer(s->sources));
    json_t *qa = json_object();
    for (int t = 0; t < SYNTH_QA_TYPES; t++) json_object_set_new(qa, synth_qa_type_letter(t), json_integer(s->qa[t]));
    json_object_set_new(j, "questions_by_type", qa);
    json_t *qt = json_object();
    for (uint32_t i = 0; i < s->n_qtypes; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "count", json_integer(s->qtype_count[i]));
        if (s->qtype_yes[i] + s->qtype_no[i]) {
            json_object_set_new(o, "yes", json_integer(s->qtype_yes[i]));
            json_object_set_new(o, "no", json_integer(s->qtype_no[i]));
        }
        json_object_set_new(qt, s->qtype_names[i], o);
    }
    json_object_set_new(j, "questions_by_question_type", qt);
    json_object_set_new(j, "azimuth_hist_10deg", jhist(s->az, AZ_BINS));
    json_object_set_new(j, "elevation_hist_10deg_from_-90", jhist(s->el, EL_BINS));
    json_object_set_new(j, "distance_class_hist", jhist(s->dist, DIST_BINS));
    json_object_set_new(j, "rt60_hist_50ms", jhist(s->rt, RT_BINS));
    json_t *rooms = json_object();
    for (uint32_t r = 0; r < s->n_rooms; r++)
        json_object_set_new(rooms, s->room_names[r], json_integer((json_int_t)s->room_count[r]));
    json_object_set_new(j, "room_types", rooms);
    json_t *rt = json_object();
    int64_t n = s->scenes[0] + s->scenes[1];
    json_object_set_new(rt, "mean", json_real(synth_quantize(n ? s->rt_sum / (double)n : 0, 1e-4)));
    json_object_set_new(rt, "min", json_real(synth_quantize(s->rt_min, 1e-4)));
    json_object_set_new(rt, "max", json_real(synth_quantize(s->rt_max, 1e-4)));
    json_object_set_new(rt, "mean_relative_difference_to_eyring",
                        json_real(synth_quantize(s->t60_err_n ? s->t60_err_sum / (double)s->t60_err_n : 0, 1e-4)));
    json_object_set_new(j, "rt60_s", rt);
    json_object_set_new(j, "scenes_scaled_to_avoid_clipping", json_integer(s->scaled));
    json_object_set_new(j, "sources_below_hrtf_elevation", json_integer(s->below_hrtf));
    json_object_set_new(j, "recordings_replaced", json_integer(s->replaced));
    return j;
}

static void md_split(bp_sbuf *b, const char *name, const split_stats *s) {
    bp_sbuf_printf(b, "\n## %s\n\n", name);
    bp_sbuf_printf(b, "Scenes: %lld single-source, %lld two-source (%lld sources). ", (long long)s->scenes[0],
                   (long long)s->scenes[1], (long long)s->sources);
    int64_t n = s->scenes[0] + s->scenes[1];
    bp_sbuf_printf(b,
                   "RT60 %.2f–%.2f s (mean %.2f s). Scaled to avoid clipping: %lld. Below the HRTF's elevations: %lld. "
                   "Replaced recordings: %lld.\n\n",
                   s->rt_min, s->rt_max, n ? s->rt_sum / (double)n : 0, (long long)s->scaled, (long long)s->below_hrtf,
                   (long long)s->replaced);
    bp_sbuf_printf(b, "| question type | count | Yes | No | Yes share |\n|---|---:|---:|---:|---:|\n");
    for (uint32_t i = 0; i < s->n_qtypes; i++) {
        int64_t y = s->qtype_yes[i], no = s->qtype_no[i];
        if (y + no)
            bp_sbuf_printf(b, "| %s | %lld | %lld | %lld | %.1f%% |\n", s->qtype_names[i], (long long)s->qtype_count[i],
                           (long long)y, (long long)no, 100.0 * (double)y / (double)(y + no));
        else
            bp_sbuf_printf(b, "| %s | %lld | | | |\n", s->qtype_names[i], (long long)s->qtype_count[i]);
    }
    bp_sbuf_printf(b, "\nBy type:");
    for (int t = 0; t < SYNTH_QA_TYPES; t++)
        bp_sbuf_printf(b, " %s %lld%s", synth_qa_type_letter(t), (long long)s->qa[t], t < 4 ? "," : ".\n");
    bp_sbuf_printf(b, "\nRoom types:");
    for (uint32_t r = 0; r < s->n_rooms; r++)
        bp_sbuf_printf(b, "%s %s %.0f", r ? "," : "", s->room_names[r], s->room_count[r]);
    bp_sbuf_printf(b, "%s\n", s->n_rooms ? "." : " none.");
}

struct synth_summary {
    const json_t *manifest; /* borrowed */
    uint32_t nc;
    split_stats st[SYNTH_SPLITS];
    double *cc;             /* [split][class] sources */
    json_t *replaced;
};

synth_summary *synth_summary_new(const json_t *manifest) {
    synth_summary *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->manifest = manifest;
    s->nc = (uint32_t)json_array_size(json_object_get(manifest, "classes"));
    s->cc = calloc((size_t)SYNTH_SPLITS * (s->nc ? s->nc : 1), sizeof *s->cc);
    s->replaced = json_array();
    if (!s->cc || !s->replaced) {
        synth_summary_free(s);
        return NULL;
    }
    return s;
}

void synth_summary_free(synth_summary *s) {
    if (!s) return;
    free(s->cc);
    json_decref(s->replaced);
    free(s);
}

void synth_summary_add(synth_summary *s, const json_t *record) {
    const char *sp = json_string_value(json_object_get(record, "split"));
    int32_t k = sp && strcmp(sp, "eval") == 0 ? SYNTH_EVAL : SYNTH_TRAIN;
    collect(&s->st[k], s->cc + (size_t)k * s->nc, s->manifest, record, s->replaced);
}

bp_status synth_summary_stage(synth_summary *sum, synth_staged *staged, const char *dir, bp_error *err) {
    const json_t *manifest = sum->manifest, *classes = json_object_get(manifest, "classes");
    uint32_t nc = sum->nc;
    const split_stats *s = sum->st;
    const double *cc = sum->cc;
    /* summary.json */
    json_t *j = json_object();
    json_object_set(j, "fingerprint", json_object_get(manifest, "fingerprint"));
    json_object_set_new(j, "train", split_json(&s[0]));
    json_object_set_new(j, "eval", split_json(&s[1]));
    json_t *jc = json_array();
    for (uint32_t c = 0; c < nc; c++) {
        json_t *o = json_object();
        json_object_set(o, "display_name", json_object_get(json_array_get(classes, c), "display_name"));
        json_object_set_new(o, "train_sources", json_integer((json_int_t)cc[c]));
        json_object_set_new(o, "eval_sources", json_integer((json_int_t)cc[nc + c]));
        json_array_append_new(jc, o);
    }
    json_object_set_new(j, "classes", jc);
    json_object_set(j, "replaced_recordings", sum->replaced);
    char *path = bp_strdupf("%s/summary/summary.json", dir);
    char *text = synth_json_text(j, 0);
    bp_status st = path && text ? synth_staged_add(staged, path, text, strlen(text), err)
                                : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
    free(path);
    free(text);
    json_decref(j);
    /* SVGs */
    const char *const series[2] = {"train", "eval"};
    if (st == BP_OK) {
        double az[2 * AZ_BINS], el[2 * EL_BINS], dist[2 * 21], rt[2 * RT_BINS];
        for (int k = 0; k < 2; k++) {
            memcpy(az + k * AZ_BINS, s[k].az, sizeof s[k].az);
            memcpy(el + k * EL_BINS, s[k].el, sizeof s[k].el);
            memcpy(dist + k * 21, s[k].dist, 21 * sizeof(double));
            memcpy(rt + k * RT_BINS, s[k].rt, sizeof s[k].rt);
        }
        static const char *const dlab[21] = {"0",   "0.5", "1",   "1.5", "2",   "2.5", "3",   "3.5", "4",   "4.5", "5",
                                             "5.5", "6",   "6.5", "7",   "7.5", "8",   "8.5", "9",   "9.5", "10"};
        synth_panel p[4] = {
            {"Azimuth (0° right, 90° front, 180° left, 270° behind)", "azimuth, degrees (10° bins)", "% of sources",
             AZ_BINS, az, 2, series, 0, 10, NULL, 3},
            {"Elevation", "elevation, degrees (10° bins)", "% of sources", EL_BINS, el, 2, series, -90, 10, NULL, 1},
            {"Distance class (0.5 m bins)", "distance, metres (class / 2)", "% of sources", 21, dist, 2, series, 0, 0.5,
             dlab, 1},
            {"RT60 (simulator's mid-band T60 when it reports one, else Eyring)", "RT60, seconds (50 ms bins)",
             "% of scenes", RT_BINS, rt, 2, series, 0, 0.05, NULL, 2},
        };
        bp_sbuf b = {0};
        synth_svg_panels(&b, "SpatialSoundQA-style set: source and room distributions", p, 4);
        path = bp_strdupf("%s/summary/distributions.svg", dir);
        st = path && !b.failed ? synth_staged_add(staged, path, b.s, b.len, err)
                               : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        free(path);
        bp_sbuf_free(&b);
    }
    if (st == BP_OK) {
        const char **names = calloc(nc ? nc : 1, sizeof *names);
        bp_sbuf b = {0};
        if (names) {
            for (uint32_t c = 0; c < nc; c++)
                names[c] = json_string_value(json_object_get(json_array_get(classes, c), "display_name"));
            synth_svg_hbars(&b, "Sources per class", names, cc, nc, 2, series);
        }
        path = bp_strdupf("%s/summary/classes.svg", dir);
        st = names && path && !b.failed ? synth_staged_add(staged, path, b.s, b.len, err)
                                        : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        free(path);
        free(names);
        bp_sbuf_free(&b);
    }
    /* summary.md */
    if (st == BP_OK) {
        bp_sbuf b = {0};
        bp_sbuf_printf(
            &b,
            "# Summary of the generated set\n\nFingerprint `%s`. Figures: [distributions](distributions.svg), "
            "[classes](classes.svg).\n",
            json_string_value(json_object_get(manifest, "fingerprint")));
        md_split(&b, "train", &s[0]);
        md_split(&b, "eval", &s[1]);
        bp_sbuf_printf(&b, "\n## Classes (sources per split)\n\n| class | train | eval |\n|---|---:|---:|\n");
        for (uint32_t c = 0; c < nc; c++)
            bp_sbuf_printf(&b, "| %s | %.0f | %.0f |\n",
                           json_string_value(json_object_get(json_array_get(classes, c), "display_name")), cc[c],
                           cc[nc + c]);
        bp_sbuf_printf(&b,
                       "\n## Distance classes (sources)\n\n| class | metres | train | eval |\n|---:|---:|---:|---:|\n");
        for (int d = 0; d < DIST_BINS; d++)
            if (s[0].dist[d] + s[1].dist[d] > 0)
                bp_sbuf_printf(&b, "| %d | %.1f | %.0f | %.0f |\n", d, d * 0.5, s[0].dist[d], s[1].dist[d]);
        path = bp_strdupf("%s/summary/summary.md", dir);
        st = path && !b.failed ? synth_staged_add(staged, path, b.s, b.len, err)
                               : bp_error_set(err, BP_ERR_NOMEM, "out of memory");
        free(path);
        bp_sbuf_free(&b);
    }
    if (st != BP_OK && staged->n) synth_staged_abort(staged);
    return st;
}
