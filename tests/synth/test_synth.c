/* batpipe synth end to end with the stand-in simulator (stub_direct) and a
 * generated corpus: same seed → identical bytes (thread count irrelevant),
 * shards merged (own or shared directories) = one run, resume after a
 * simulated kill and after --max-scenes, every QA answer recomputed from the
 * scene geometry for every question type, the official schema and the
 * curriculum files, the summary, and bad input (missing SOFA file, unknown
 * class, unknown key, room too small, corrupt and truncated recordings, a
 * full disk, a failing simulator, a directory made with another
 * configuration, an incomplete merge): clear errors or reported skips, and
 * nothing half-written. argv[1] = the stub simulator's plugin directory. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "batpipe/labels.h"
#include "batpipe/synth.h"
#include "bp_test.h"
#include "synth_test_util.h"

static char root[256];
static bp_registry *reg;

static char *P(const char *rel) {
    static char buf[8][700];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

static const char *cfg_text =
    "name = \"test\";\n"
    "seed = 7;\n"
    "threads = 2;\n"
    "corpus = { file = \"corpus/corpus.tsv\"; };\n"
    "scenes = { train = { single = 6; two = 6; }; eval = { single = 3; two = 3; }; };\n"
    "audio = { seconds = 1.0; rir_seconds = 0.1; gap_seconds = [0.05, 0.2]; lead_seconds = [0.0, 0.1]; };\n"
    "simulator = { type = \"stub_direct\"; };\n"
    "qa = { two = { C = 2; D = 2; E = 4; }; };\n"
    "output = { dir = \"out_default\"; };\n";

static bp_status load(const char *const *ov, uint32_t n, bp_synth **s, bp_error *err) {
    return bp_synth_load(reg, P("data.cfg"), ov, n, s, err);
}

/* Load and run into `dir` (relative to root). */
static bp_status gen(const char *dir, const char *const *ov, uint32_t n, bp_synth_options *o, bp_synth_report *rep,
                     bp_error *err) {
    bp_synth *s;
    bp_status st = load(ov, n, &s, err);
    if (st != BP_OK) return st;
    bp_synth_options opt = o ? *o : bp_synth_options_default();
    opt.out_dir = P(dir);
    st = bp_synth_run(s, &opt, rep, err);
    bp_synth_free(s);
    return st;
}

/* ------------------------------------------------------- QA agreement -- */

static json_t *jload(const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fprintf(stderr, "%s: %s\n", path, je.text);
    return j;
}

static void src_pos(const json_t *src, double p[3]) {
    for (int k = 0; k < 3; k++) p[k] = json_number_value(json_array_get(json_object_get(src, "position"), (size_t)k));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "dog; speech" from a record source's labels. */
static void classes_answer(const json_t *src, char *buf, size_t cap) {
    const json_t *labels = json_object_get(src, "labels");
    char low[16][128];
    const char *ptr[16];
    size_t n = json_array_size(labels) < 16 ? json_array_size(labels) : 16;
    for (size_t i = 0; i < n; i++) {
        snprintf(low[i], sizeof low[i], "%s", json_string_value(json_array_get(labels, i)));
        for (char *c = low[i]; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        ptr[i] = low[i];
    }
    qsort(ptr, n, sizeof *ptr, cmp_str);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "; " : "", ptr[i]);
}

static const char *lower_class(const json_t *src, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", json_string_value(json_object_get(src, "class")));
    for (char *c = buf; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    return buf;
}

static int axis_of(const char *axis) {
    return strcmp(axis, "left_right") == 0 ? 0 : strcmp(axis, "front_behind") == 0 ? 1 : 2;
}

/* Side of a relative to b along a label axis, −1 within the margin. */
static int rel_side(const double a[3], const double b[3], int axis, double margin) {
    static const int coord[3] = {0, 2, 1};
    double d = a[coord[axis]] - b[coord[axis]];
    if (fabs(d) < margin || d == 0) return -1;
    if (axis == 0) return d > 0 ? BP_SIDE_RIGHT : BP_SIDE_LEFT;
    if (axis == 1) return d < 0 ? BP_SIDE_FRONT : BP_SIDE_BEHIND;
    return d > 0 ? BP_SIDE_ABOVE : BP_SIDE_BELOW;
}

typedef struct qa_tally {
    int by_type[5];
    int yes, no;
    int families[8];
} qa_tally;

/* Recompute the answer of one entry from its scene record. */
static void check_entry(const json_t *e, const json_t *rec, double rel_margin, double dist_margin, qa_tally *t) {
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *q = json_string_value(json_object_get(e, "question"));
    const char *ans = json_string_value(json_object_get(e, "answer"));
    const char *qt = json_string_value(json_object_get(e, "question_type"));
    const json_t *query = json_object_get(e, "query");
    const char *fam = json_string_value(json_object_get(query, "family"));
    const json_t *srcs = json_object_get(rec, "sources");
    CHECK(type && q && ans && qt && fam && *q && *ans);
    if (!type || !q || !ans || !qt || !fam) return;
    t->by_type[type[0] - 'A']++;
    double lis[3];
    for (int k = 0; k < 3; k++) lis[k] = json_number_value(json_array_get(json_object_get(rec, "listener"), (size_t)k));
    /* the official fields */
    CHECK(json_is_string(json_object_get(e, "audio_id")) && json_is_string(json_object_get(e, "reverb_id")));
    CHECK(json_is_integer(json_object_get(e, "question_id")));
    int two = json_array_size(srcs) == 2;
    CHECK(two ? json_is_string(json_object_get(e, "audio_id2")) : json_is_null(json_object_get(e, "audio_id2")));
    CHECK(two ? json_is_string(json_object_get(e, "reverb_id2")) : json_is_null(json_object_get(e, "reverb_id2")));
    CHECK((type[0] <= 'B') == !two);
    char want[512], name[128], name2[128];
    if (strcmp(fam, "classes") == 0 || strcmp(fam, "classes_at") == 0) {
        int k = (int)json_integer_value(json_object_get(query, "source"));
        const json_t *s = json_array_get(srcs, (size_t)k);
        classes_answer(s, want, sizeof want);
        CHECKF(strcmp(ans, want) == 0, "%s: '%s' vs '%s'", q, ans, want);
        CHECK(strcmp(qt, type[0] == 'A' ? "CLASSIFICATION" : "MIXUP_CLASSIFICATION") == 0);
        if (type[0] == 'C') { /* the question names the source's octant and distance */
            double p[3];
            src_pos(s, p);
            bp_spatial_label l;
            bp_error err = BP_ERROR_INIT;
            CHECK_OK(bp_spatial_label_compute(p, lis, &l, &err), &err);
            char dir[48], words[48];
            bp_spatial_direction_text(&l, dir, sizeof dir);
            CHECKF(strstr(q, dir) != NULL, "'%s' lacks '%s'", q, dir);
            if (l.distance_class == 2)
                snprintf(words, sizeof words, "1 meter");
            else if (l.distance_class % 2)
                snprintf(words, sizeof words, "%d.5 meters", l.distance_class / 2);
            else
                snprintf(words, sizeof words, "%d meters", l.distance_class / 2);
            CHECKF(strstr(q, words) != NULL, "'%s' lacks '%s'", q, words);
        }
    } else if (strcmp(fam, "location") == 0 || strcmp(fam, "location_of") == 0) {
        int k = (int)json_integer_value(json_object_get(query, "source"));
        const json_t *s = json_array_get(srcs, (size_t)k);
        double p[3];
        src_pos(s, p);
        bp_spatial_label l;
        bp_error err = BP_ERROR_INIT;
        CHECK_OK(bp_spatial_label_compute(p, lis, &l, &err), &err);
        bp_spatial_answer_text(&l, want, sizeof want);
        CHECKF(strcmp(ans, want) == 0, "%s: '%s' vs '%s'", q, ans, want);
        /* and the record's own labels agree */
        CHECK(json_integer_value(json_object_get(s, "azimuth")) == l.azimuth);
        CHECK(json_integer_value(json_object_get(s, "elevation_class")) == l.elevation_class);
        CHECK(json_integer_value(json_object_get(s, "distance_class")) == l.distance_class);
        int32_t sides[3], dc;
        CHECK_OK(bp_spatial_answer_parse(ans, sides, &dc, &err), &err);
        CHECK(dc == l.distance_class && memcmp(sides, l.side, sizeof sides) == 0);
        if (type[0] == 'D') CHECKF(strstr(q, lower_class(s, name, sizeof name)) != NULL, "'%s' lacks the class", q);
    } else {
        CHECK(type[0] == 'E' && two);
        int a = (int)json_integer_value(json_object_get(query, "first"));
        int b = (int)json_integer_value(json_object_get(query, "second"));
        CHECK(a != b && a >= 0 && a < 2 && b >= 0 && b < 2);
        double pa[3], pb[3];
        src_pos(json_array_get(srcs, (size_t)a), pa);
        src_pos(json_array_get(srcs, (size_t)b), pb);
        bp_spatial_label la, lb;
        bp_error err = BP_ERROR_INIT;
        CHECK_OK(bp_spatial_label_compute(pa, lis, &la, &err), &err);
        CHECK_OK(bp_spatial_label_compute(pb, lis, &lb, &err), &err);
        lower_class(json_array_get(srcs, (size_t)a), name, sizeof name);
        lower_class(json_array_get(srcs, (size_t)b), name2, sizeof name2);
        const char *word = json_string_value(json_object_get(query, "word"));
        int w = word ? bp_side_from_word(word) : -1;
        if (strcmp(fam, "both_side") == 0) {
            snprintf(want, sizeof want, "%s", la.side[w / 2] == w && lb.side[w / 2] == w ? "Yes" : "No");
            CHECK(strcmp(qt, "MIXUP_BINARY_DIRECTION") == 0);
        } else if (strcmp(fam, "pair_sides") == 0) {
            int w1 = bp_side_from_word(json_string_value(json_object_get(query, "word1")));
            int w2 = bp_side_from_word(json_string_value(json_object_get(query, "word2")));
            CHECK(w1 >= 0 && w2 >= 0 && w1 / 2 == w2 / 2);
            snprintf(want, sizeof want, "%s", la.side[w1 / 2] == w1 && lb.side[w2 / 2] == w2 ? "Yes" : "No");
            CHECK(strcmp(qt, "MIXUP_BINARY_DIRECTION") == 0);
        } else if (strcmp(fam, "relative_side") == 0) {
            int r = rel_side(pa, pb, w / 2, rel_margin);
            CHECK(r >= 0); /* only asked when clear */
            snprintf(want, sizeof want, "%s", r == w ? "Yes" : "No");
            CHECK(strcmp(qt, "MIXUP_BINARY_DIRECTION") == 0);
        } else if (strcmp(fam, "closer") == 0 || strcmp(fam, "farther") == 0) {
            CHECK(fabs(la.distance - lb.distance) >= dist_margin);
            int closer = la.distance < lb.distance;
            snprintf(want, sizeof want, "%s", (fam[0] == 'c') == closer ? "Yes" : "No");
            CHECK(strcmp(qt, "MIXUP_BINARY_DISTANCE") == 0);
        } else if (strcmp(fam, "pair_distance") == 0) {
            double d = sqrt((pa[0] - pb[0]) * (pa[0] - pb[0]) + (pa[1] - pb[1]) * (pa[1] - pb[1]) +
                            (pa[2] - pb[2]) * (pa[2] - pb[2]));
            bp_distance_class_text(bp_distance_class(d), want, sizeof want);
            CHECK(strcmp(qt, "MIXUP_NONBINARY_DISTANCE") == 0);
        } else if (strcmp(fam, "which_side") == 0) {
            CHECK(rel_side(pa, pb, w / 2, rel_margin) == w); /* the asked side holds the answer source */
            classes_answer(json_array_get(srcs, (size_t)a), want, sizeof want);
            CHECK(strcmp(qt, "MIXUP_NONBINARY_DIRECTION") == 0);
            CHECKF(strstr(q, name2) != NULL, "'%s' lacks '%s'", q, name2);
        } else if (strcmp(fam, "either_side") == 0) {
            int r = rel_side(pa, pb, axis_of(json_string_value(json_object_get(query, "axis"))), rel_margin);
            CHECK(r >= 0);
            snprintf(want, sizeof want, "%s", bp_side_word(r));
            CHECK(strcmp(qt, "MIXUP_NONBINARY_DIRECTION") == 0);
        } else {
            CHECKF(0, "unknown family %s", fam);
            return;
        }
        CHECKF(strcmp(ans, want) == 0, "%s [%s]: '%s' vs '%s'", q, fam, ans, want);
        if (strcmp(fam, "which_side") != 0) {
            CHECKF(strstr(q, name) != NULL && strstr(q, name2) != NULL, "'%s' lacks '%s' or '%s'", q, name, name2);
        }
        if (word) CHECKF(strstr(q, word) != NULL, "'%s' lacks '%s'", q, word);
        if (strcmp(ans, "Yes") == 0) t->yes++;
        if (strcmp(ans, "No") == 0) t->no++;
    }
}

static void check_qa(const char *dir, int64_t expect_scenes[2][2], int want_types[2][5]) {
    char path[800];
    int64_t last_qid = -1;
    for (int sp = 0; sp < 2; sp++) {
        const char *split = sp ? "eval" : "train";
        snprintf(path, sizeof path, "%s/%s.json", dir, split);
        json_t *doc = jload(path);
        CHECK(doc != NULL);
        if (!doc) continue;
        const json_t *data = json_object_get(doc, "data");
        CHECK(json_is_array(data) && json_array_size(data) > 0);
        qa_tally t;
        memset(&t, 0, sizeof t);
        for (size_t i = 0; i < json_array_size(data); i++) {
            const json_t *e = json_array_get(data, i);
            int64_t qid = json_integer_value(json_object_get(e, "question_id"));
            CHECK(qid == last_qid + 1); /* consecutive over train then eval */
            last_qid = qid;
            const char *sid = json_string_value(json_object_get(e, "scene_id"));
            char rp[900];
            snprintf(rp, sizeof rp, "%s/scenes/%s/%s.json", dir, split, sid ? sid : "?");
            json_t *rec = jload(rp);
            CHECK(rec != NULL);
            if (!rec) continue;
            /* the audio path is relative to the JSON file */
            char ap[900];
            snprintf(ap, sizeof ap, "%s/%s", dir, json_string_value(json_object_get(e, "audio_path")));
            CHECKF(tu_exists(ap), "%s missing", ap);
            check_entry(e, rec, 0.3, 0.5, &t);
            json_decref(rec);
        }
        for (int k = 0; k < 5; k++)
            CHECKF(t.by_type[k] == want_types[sp][k], "%s type %c: %d vs %d", split, 'A' + k, t.by_type[k],
                   want_types[sp][k]);
        if (sp == 0) CHECKF(t.yes > 0 && t.no > 0, "yes %d no %d", t.yes, t.no);
        (void)expect_scenes;
        json_decref(doc);
    }
}

/* Curriculum files: the right types, entries identical to train/eval.json except for audio_path. */
static void check_stages(const char *dir) {
    static const struct {
        const char *file, *types, *qtype;
    } specs[] = {
        {"stage1-clsdoa/train.json", "AB", NULL},
        {"stage1-clsdoa/eval-stage1-classification.json", "A", NULL},
        {"stage1-clsdoa/eval-stage1-doa.json", "B", NULL},
        {"stage2-single/train.json", "ABCD", NULL},
        {"stage2-single/eval-stage2-classification.json", "C", NULL},
        {"stage2-single/eval-stage2-doa.json", "D", NULL},
        {"stage3-mixup/train.json", "ABCDE", NULL},
        {"stage3-mixup/eval-stage3-direction.json", "E", "MIXUP_BINARY_DIRECTION"},
        {"stage3-mixup/eval-stage3-distance.json", "E", "MIXUP_BINARY_DISTANCE"},
        {"stage3-mixup/eval-stage3-nonbinary.json", "E", "MIXUP_NONBINARY"},
    };
    char path[800];
    for (size_t f = 0; f < sizeof specs / sizeof specs[0]; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, specs[f].file);
        json_t *doc = jload(path);
        CHECKF(doc != NULL, "%s", path);
        if (!doc) continue;
        const json_t *data = json_object_get(doc, "data");
        int seen[5] = {0};
        for (size_t i = 0; i < json_array_size(data); i++) {
            const json_t *e = json_array_get(data, i);
            const char *t = json_string_value(json_object_get(e, "type"));
            CHECK(t && strchr(specs[f].types, t[0]));
            if (t) seen[t[0] - 'A'] = 1;
            if (specs[f].qtype)
                CHECK(strncmp(json_string_value(json_object_get(e, "question_type")), specs[f].qtype,
                              strlen(specs[f].qtype)) == 0);
            const char *ap = json_string_value(json_object_get(e, "audio_path"));
            CHECK(ap && strncmp(ap, "../audio/", 9) == 0);
        }
        for (const char *c = specs[f].types; *c; c++) CHECKF(seen[*c - 'A'], "%s has no type %c", specs[f].file, *c);
        json_decref(doc);
    }
}

/* Rendered audio: 2 channels, 32 kHz, 1 s; the louder ear is the source's side. */
static void check_audio(const char *dir) {
    char path[800];
    snprintf(path, sizeof path, "%s/scenes-train.json", dir);
    json_t *doc = jload(path);
    CHECK(doc != NULL);
    const json_t *data = json_object_get(doc, "data");
    int checked = 0;
    for (size_t i = 0; i < json_array_size(data); i++) {
        const json_t *rec = json_array_get(data, i);
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(json_object_get(rec, "audio_path")));
        bp_tensor *t;
        bp_audio_info info;
        bp_error err = BP_ERROR_INIT;
        CHECK_OK(bp_audio_read(path, 0, 0, 0, &t, &info, &err), &err);
        if (!t) continue;
        CHECK(info.channels == 2 && info.file_rate == 32000 && info.file_frames == 32000);
        CHECK(strstr(info.format, "FLAC") != NULL);
        double peak = 0, el = 0, er = 0;
        const float *x = t->data;
        for (int64_t k = 0; k < t->shape[1]; k++) {
            el += x[k] * x[k];
            er += x[t->shape[1] + k] * x[t->shape[1] + k];
            peak = fmax(peak, fmax(fabs(x[k]), fabs(x[t->shape[1] + k])));
        }
        CHECK(peak > 1e-3 && peak <= 0.99 + 1e-4);
        const json_t *srcs = json_object_get(rec, "sources");
        if (json_array_size(srcs) == 1) {
            const json_t *s = json_array_get(srcs, 0);
            double p[3];
            src_pos(s, p);
            double dx = p[0] - json_number_value(json_array_get(json_object_get(rec, "listener"), 0));
            if (fabs(dx) > 0.3) {
                CHECKF((dx > 0) == (er > el), "%s: dx %g but energies L %g R %g", path, dx, el, er);
                checked++;
            }
        }
        bp_tensor_free(t);
    }
    CHECK(checked > 0);
    json_decref(doc);
}

static void test_generate_and_determinism(void) {
    bp_error err = BP_ERROR_INIT;
    bp_synth *s;
    CHECK_OK(load(NULL, 0, &s, &err), &err);
    if (!s) return;
    const char *plan = bp_synth_plan(s);
    CHECK(strstr(plan, "stub_direct") && strstr(plan, "Bell") && strstr(plan, "Gong"));
    CHECK(!strstr(plan, "Cat ")); /* Cat has no eval recording: dropped */
    /* the corrupt file is skipped and reported */
    CHECK(bp_synth_skipped_count(s) == 1 && strstr(bp_synth_skipped_at(s, 0), "corrupt.flac"));
    bp_synth_free(s);

    bp_synth_report rep;
    bp_synth_options o = bp_synth_options_default();
    o.n_threads = 2;
    CHECK_OK(gen("out_a", NULL, 0, &o, &rep, &err), &err);
    CHECK(rep.finalized && rep.scenes_rendered == 18 && rep.scenes_total == 18 && rep.qa_pairs > 0);
    /* QA counts: single A 1 + B 1, two C 2 + D 2 + E 4 */
    int64_t sc[2][2] = {{6, 6}, {3, 3}};
    int want[2][5] = {{6, 6, 12, 12, 24}, {3, 3, 6, 6, 12}};
    check_qa(P("out_a"), sc, want);
    check_stages(P("out_a"));
    check_audio(P("out_a"));
    CHECK(tu_exists(P("out_a/summary/summary.json")) && tu_exists(P("out_a/summary/summary.md")));
    CHECK(tu_exists(P("out_a/class_labels_indices.csv")) && tu_exists(P("out_a/skipped_sources.tsv")));
    size_t n;
    char *svg = tu_read_file(P("out_a/summary/distributions.svg"), &n);
    CHECK(svg && strncmp(svg, "<svg", 4) == 0 && strstr(svg, "</svg>") && strstr(svg, "Azimuth"));
    free(svg);
    char *csv = tu_read_file(P("out_a/class_labels_indices.csv"), &n);
    CHECK(csv && strncmp(csv, "index,mid,display_name\n0,/m/0395lw,\"Bell\"\n", 40) == 0);
    free(csv);
    char *skipped = tu_read_file(P("out_a/skipped_sources.tsv"), &n);
    CHECK(skipped && strstr(skipped, "clips/corrupt.flac\t"));
    free(skipped);
    json_t *sum = jload(P("out_a/summary/summary.json"));
    CHECK(sum &&
          json_integer_value(json_object_get(json_object_get(json_object_get(sum, "train"), "scenes"), "two")) == 6);
    json_decref(sum);
    CHECK(tu_hidden_files(P("out_a")) == 0);

    /* same seed, one thread: identical bytes everywhere */
    o.n_threads = 1;
    CHECK_OK(gen("out_b", NULL, 0, &o, &rep, &err), &err);
    CHECK(tu_compare_trees(P("out_a"), P("out_b")) == 0);
    /* another seed: different questions */
    const char *ov[] = {"seed=8"};
    CHECK_OK(gen("out_c", ov, 1, NULL, &rep, &err), &err);
    size_t na, nc;
    char *a = tu_read_file(P("out_a/train.json"), &na), *c = tu_read_file(P("out_c/train.json"), &nc);
    CHECK(a && c && (na != nc || memcmp(a, c, na) != 0));
    free(a);
    free(c);
    /* a directory made with another configuration is refused */
    bp_status st = gen("out_a", ov, 1, NULL, &rep, &err);
    CHECK(st == BP_ERR_INVALID && strstr(err.msg, "another configuration"));
}

static void test_shards(void) {
    bp_error err = BP_ERROR_INIT;
    bp_synth_report rep;
    bp_synth_options o = bp_synth_options_default();
    /* shards in their own directories, then merged */
    o.shard_count = 2;
    o.shard_index = 0;
    CHECK_OK(gen("out_s0", NULL, 0, &o, &rep, &err), &err);
    CHECK(!rep.finalized && rep.scenes_in_shard == 9 && rep.scenes_rendered == 9 && rep.scenes_missing == 9);
    CHECK(!tu_exists(P("out_s0/train.json")));
    /* merging one shard alone is an incomplete set */
    const char *none[1];
    CHECK(bp_synth_merge(P("out_s0"), none, 0, &rep, &err) == BP_ERR_NOT_FOUND && strstr(err.msg, "incomplete"));
    CHECK(!tu_exists(P("out_s0/train.json")) && tu_hidden_files(P("out_s0")) == 0);
    o.shard_index = 1;
    CHECK_OK(gen("out_s1", NULL, 0, &o, &rep, &err), &err);
    const char *dirs[] = {P("out_s1")};
    CHECK_OK(bp_synth_merge(P("out_s0"), dirs, 1, &rep, &err), &err);
    CHECK(rep.finalized && rep.scenes_existing == 9);
    CHECK(tu_compare_trees(P("out_a"), P("out_s0")) == 0);
    /* merging into a new directory from both shards */
    const char *both[] = {P("out_s1"), P("out_s0")};
    CHECK_OK(bp_synth_merge(P("out_m"), both, 2, &rep, &err), &err);
    CHECK(tu_compare_trees(P("out_a"), P("out_m")) == 0);
    /* shards sharing one directory */
    o.shard_count = 3;
    for (uint32_t i = 0; i < 3; i++) {
        o.shard_index = i;
        CHECK_OK(gen("out_sh", NULL, 0, &o, &rep, &err), &err);
    }
    CHECK(rep.scenes_missing == 0);
    CHECK_OK(bp_synth_merge(P("out_sh"), none, 0, &rep, &err), &err);
    CHECK(tu_compare_trees(P("out_a"), P("out_sh")) == 0);
}

/* A run killed abruptly (no cleanup at all) after a few scenes. */
static void kill_after(void *user, uint64_t done, uint64_t total, const char *item, double elapsed) {
    (void)total, (void)item, (void)elapsed;
    if (done >= *(uint64_t *)user) _exit(0);
}

static void test_resume(void) {
    bp_error err = BP_ERROR_INIT;
    bp_synth_report rep;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        uint64_t k = 5;
        bp_synth_options o = bp_synth_options_default();
        o.progress = kill_after;
        o.progress_user = &k;
        gen("out_k", NULL, 0, &o, &rep, &err);
        _exit(3); /* not reached unless the run finished before the kill */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(!tu_exists(P("out_k/train.json")));
    CHECK_OK(gen("out_k", NULL, 0, NULL, &rep, &err), &err);
    CHECKF(rep.scenes_existing >= 5 && rep.scenes_existing + rep.scenes_rendered == 18, "existing %lld rendered %lld",
           (long long)rep.scenes_existing, (long long)rep.scenes_rendered);
    CHECK(tu_compare_trees(P("out_a"), P("out_k")) == 0); /* stale temporaries were cleaned up too */
    /* --max-scenes: stop, keep what is done, resume */
    bp_synth_options o = bp_synth_options_default();
    o.max_scenes = 4;
    CHECK(gen("out_n", NULL, 0, &o, &rep, &err) == BP_ERR_CANCELLED && strstr(err.msg, "resume"));
    CHECK(rep.scenes_rendered == 4 && !rep.finalized && !tu_exists(P("out_n/train.json")));
    CHECK_OK(gen("out_n", NULL, 0, NULL, &rep, &err), &err);
    CHECK(rep.scenes_existing == 4 && rep.scenes_rendered == 14);
    CHECK(tu_compare_trees(P("out_a"), P("out_n")) == 0);
}

static void test_bad_input(void) {
    bp_error err = BP_ERROR_INIT;
    bp_synth *s = NULL;
    bp_synth_report rep;
    /* a missing SOFA file (the simulator's parameter) */
    const char *o1[] = {"simulator.hrtf=\"no-such-hrtf.sofa\""};
    bp_status st = load(o1, 1, &s, &err);
    CHECKF(st == BP_ERR_NOT_FOUND && strstr(err.msg, "no-such-hrtf.sofa") && strstr(err.msg, "simulator"), "%d %s",
           (int)st, err.msg);
    /* an unknown class */
    const char *o2[] = {"corpus.classes=[\"Dgo\", \"Bell\"]"};
    CHECK(load(o2, 1, &s, &err) == BP_ERR_INVALID && strstr(err.msg, "unknown class 'Dgo'") &&
          strstr(err.msg, "did you mean 'Dog'"));
    /* an asked class without eval recordings */
    const char *o2b[] = {"corpus.classes=[\"Cat\", \"Bell\"]"};
    CHECK(load(o2b, 1, &s, &err) == BP_ERR_INVALID && strstr(err.msg, "'Cat' has no usable eval recording"));
    /* an unknown key */
    const char *o3[] = {"geometry.min_distanse=0.2"};
    CHECK(load(o3, 1, &s, &err) == BP_ERR_INVALID && strstr(err.msg, "did you mean 'min_distance'"));
    /* a room too small for the asked distances */
    const char *o4[] = {"rooms.types=({ name = \"tiny\"; size_min = [3.0, 2.5, 3.0]; walls = [\"plaster\"]; "
                        "floor = [\"wood_floor\"]; ceiling = [\"plaster\"]; })"};
    CHECK(load(o4, 1, &s, &err) == BP_ERR_INVALID && strstr(err.msg, "room too small") && strstr(err.msg, "tiny"));
    /* ... which is fine once the far classes are dropped */
    const char *o5[] = {o4[0], "geometry.distance_classes=[1, 2, 3, 4]"};
    CHECK_OK(load(o5, 2, &s, &err), &err);
    bp_synth_free(s);
    s = NULL;
    /* an unknown material and a simulator that does not exist */
    const char *o6[] = {"rooms.types=({ name = \"x\"; size_min = [9.0, 2.5, 9.0]; walls = [\"plastr\"]; "
                        "floor = [\"wood_floor\"]; ceiling = [\"plaster\"]; })"};
    CHECK(load(o6, 1, &s, &err) == BP_ERR_INVALID && strstr(err.msg, "did you mean 'plaster'"));
    const char *o7[] = {"simulator.type=\"no_such_sim\""};
    CHECK(load(o7, 1, &s, &err) == BP_ERR_NOT_FOUND && strstr(err.msg, "stub_direct"));
    /* a truncated recording (probes fine, fails to decode): replaced and reported */
    const char *o8[] = {"corpus.classes=[\"Gong\", \"Whistle\"]", "scenes.train.single=16", "scenes.train.two=0",
                        "scenes.eval.two=0"};
    CHECK_OK(gen("out_gong", o8, 4, NULL, &rep, &err), &err);
    CHECK(rep.sources_replaced >= 1 && rep.finalized);
    json_t *sum = jload(P("out_gong/summary/summary.json"));
    const json_t *repl = json_object_get(sum, "replaced_recordings");
    CHECK(json_array_size(repl) >= 1 &&
          strstr(json_string_value(json_object_get(json_array_get(repl, 0), "file")), "gong_truncated"));
    json_decref(sum);
    /* a failing simulator: a clear error naming the scene, nothing half-written */
    const char *o9[] = {"simulator.fail_after=3", "threads=1"};
    CHECK(gen("out_fail", o9, 2, NULL, &rep, &err) == BP_ERR_INTERNAL && strstr(err.msg, "failing as asked") &&
          strstr(err.msg, "scene "));
    CHECK(!tu_exists(P("out_fail/train.json")) && tu_hidden_files(P("out_fail")) == 0);
    /* a full disk: file size limit in a child process */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {40000, 40000};
        setrlimit(RLIMIT_FSIZE, &rl);
        bp_status st = gen("out_full", NULL, 0, NULL, &rep, &err);
        FILE *f = fopen(P("full_msg.txt"), "w");
        if (f) {
            fputs(err.msg, f);
            fclose(f);
        }
        _exit(st == BP_OK ? 0 : -st);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == -BP_ERR_IO);
    size_t n;
    char *msg = tu_read_file(P("full_msg.txt"), &n);
    CHECKF(msg && strstr(msg, ".flac") && (strstr(msg, "too large") || strstr(msg, "write")), "message: %s",
           msg ? msg : "");
    free(msg);
    CHECK(!tu_exists(P("out_full/train.json")) && tu_hidden_files(P("out_full")) == 0);
    /* no record without its audio */
    static char list[1 << 16];
    size_t len = 0;
    list[0] = '\0';
    tu_list_files(P("out_full/scenes"), "", list, sizeof list, &len);
    for (char *line = list, *next; *line; line = next) {
        next = strchr(line, '\n');
        *next++ = '\0';
        char id[256], ap[900];
        snprintf(id, sizeof id, "%s", line);
        char *dot = strrchr(id, '.');
        if (dot) *dot = '\0';
        snprintf(ap, sizeof ap, "%s/audio/%s.flac", P("out_full"), id);
        CHECKF(tu_exists(ap), "record %s without audio", line);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    snprintf(root, sizeof root, "/tmp/bp_test_synth_%d", (int)getpid());
    mkdir(root, 0755);
    if (tu_make_corpus(root) != 0) {
        fprintf(stderr, "cannot build the test corpus in %s\n", root);
        return 1;
    }
    tu_write_text(P("data.cfg"), cfg_text);
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_registry_new(NULL, &reg, &err), &err);
    CHECK_OK(bp_registry_scan_dir(reg, argv[1], &err), &err);
    if (!bp_registry_find(reg, BP_KIND_SIMULATOR, "stub_direct")) TEST_SKIP("the stub simulator is not built");
    test_generate_and_determinism();
    test_shards();
    test_resume();
    test_bad_input();
    bp_registry_free(reg);
    if (!bp_test_failures) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    }
    return TEST_RESULT();
}
