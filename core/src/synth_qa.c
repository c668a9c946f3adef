/* synth: questions and answers of types A–E (the BAT paper's Table 1 and
 * Table 9: its prompts first in each list, then paraphrases in the same
 * style). Answers follow the paper's formats exactly: class lists are
 * lower-case display names, alphabetical, joined by "; "; locations are
 * "left, front, below; 2.5m"; reasoning answers are "Yes"/"No", a side word
 * ("left"), a distance ("1.5m") or a class list.
 *
 * Relations between two sources are asked only when they are clear: a
 * relative side needs the two positions to differ by at least
 * qa.relation_margin along that axis, "closer/farther" needs the distances to
 * differ by at least qa.distance_margin. Binary questions draw the wanted
 * answer by a fair coin first (then a question with that answer), so Yes and
 * No are balanced. Every question records what it asked ("query") so the
 * answer can be checked against the scene's geometry. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "synth_internal.h"

#define N_OF(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

static const char *const tmpl_a[] = {
    "Identify the sound events in the audio clip.",
    "What are the distinct sounds present in this audio clip?",
    "What sound events can you detect in the audio recording?",
    "Which sound events can be heard in this audio clip?",
    "List the sound events present in the recording.",
    "What kinds of sounds does this audio clip contain?",
    "Can you name the sound events occurring in this clip?",
    "Classify the sounds you hear in this audio.",
};
static const char *const tmpl_b[] = {
    "How would you describe the location of this audio clip?",
    "Where is the audio clip coming from?",
    "How would you describe the location of the {e}'s sound?",
    "At what distance and in which direction, is the {e}'s sound originating?",
    "From which direction and how far away does the sound in this clip come?",
    "Where is the sound of the {e} coming from, and how far away is it?",
    "Estimate the direction and the distance of the sound source in this clip.",
    "In which direction and how far away is the source of the {e}'s sound?",
};
static const char *const tmpl_c[] = {
    "Identify the sound events in the audio clip coming from the {d1}, {d2}, {d3}, approximately {dist} away.",
    "What sound events can you detect in the audio recording emanating from the {d1}, {d2}, {d3}, roughly {dist} away?",
    "Which sounds come from the {d1}, {d2}, {d3}, about {dist} away?",
    "What can you hear from the {d1}, {d2}, {d3}, around {dist} from you?",
    "Name the sound events located to the {d1}, {d2}, {d3}, at a distance of about {dist}.",
    "What is the sound coming from the {d1}, {d2}, {d3}, approximately {dist} away?",
};
static const char *const tmpl_d[] = {
    "Where is the sound of the {e} coming from?",
    "In which direction and how far away is the source of the {e}'s sound?",
    "How would you describe the location of the {e}'s sound?",
    "At what distance and in which direction, is the {e}'s sound originating?",
    "Where is the {e} located, and how far away is it?",
    "From which direction and from how far does the sound of the {e} reach you?",
};
static const char *const tmpl_both_side[] = {
    "Do the sound of {e1} and the sound of {e2} both come from your {d} side?",
    "Is the source of both {e1} and {e2}'s sounds from your {d} side?",
    "Are the {e1} and the {e2} both on your {d} side?",
    "Is it true that the sounds of {e1} and {e2} both originate from your {d} side?",
    "Do both the {e1} sound and the {e2} sound reach you from your {d} side?",
};
static const char *const tmpl_pair_sides[] = {
    "Can you hear the {e1}'s sound from the {d1} and the {e2}'s from the {d2}?",
    "Is the sound from the {e1} on the {d1} and the sound from the {e2} on the {d2}?",
    "Does the {e1} sound come from the {d1} while the {e2} sound comes from the {d2}?",
    "Is the {e1} heard on the {d1} and the {e2} heard on the {d2}?",
};
static const char *const tmpl_relative[] = {
    "Would you find the sound of {e1} on the {d} side of the sound of {e2}?",
    "Does the sound of {e1} appear on the {d} of the sound of {e2}?",
    "Is the {e1}'s sound located on the {d} side of the {e2}'s sound?",
    "Relative to the sound of {e2}, is the sound of {e1} on the {d} side?",
};
static const char *const tmpl_closer[] = {
    "In terms of straight-line distance, does the sound of {e1} reach you from a closer point compared to the sound "
    "of {e2}?",
    "When measuring the direct line distance, is the sound produced by {e1} closer to you than the sound from {e2}?",
    "Is the {e1} nearer to you than the {e2}?",
    "Is the sound of {e1} closer to you than the sound of {e2}, in straight-line distance?",
};
static const char *const tmpl_farther[] = {
    "Is the sound of {e1} farther from you than the sound of {e2}?",
    "In Euclidean distance, is the {e1}'s sound further away from you than the {e2}'s sound?",
    "Does the sound of {e1} come from a more distant point than the sound of {e2}?",
};
static const char *const tmpl_pair_distance[] = {
    "Can you estimate the distance from the sound of the {e1} to the sound of the {e2}?",
    "How far apart are the {e1} and the {e2}?",
    "What is the distance between the source of the {e1} and the source of the {e2}?",
    "Roughly how far is the {e1}'s sound from the {e2}'s sound?",
};
static const char *const tmpl_which_side[] = {
    "What is the sound on the {d} side of the sound of the {e2}?",
    "Which sound is located on the {d} side of the {e2}'s sound?",
    "What sound events can you hear on the {d} side of the {e2}?",
};
static const char *const tmpl_either[3][2] = {
    {"Could you determine whether the {e1}'s sound is to the left or right of the {e2}'s sound?",
     "Is the {e1} to the left or to the right of the {e2}?"},
    {"Could you determine whether the {e1}'s sound is in front of or behind the {e2}'s sound?",
     "Is the {e1} in front of or behind the {e2}?"},
    {"Could you determine whether the {e1}'s sound is above or below the {e2}'s sound?",
     "Is the {e1} above or below the {e2}?"},
};

static const char *const qtype_names[] = {
    "CLASSIFICATION",         "DOA_DISTANCE",          "MIXUP_CLASSIFICATION",      "MIXUP_DOA_DISTANCE",
    "MIXUP_BINARY_DIRECTION", "MIXUP_BINARY_DISTANCE", "MIXUP_NONBINARY_DIRECTION", "MIXUP_NONBINARY_DISTANCE",
};
enum { QT_A, QT_B, QT_C, QT_D, QT_E_BDIR, QT_E_BDIST, QT_E_NDIR, QT_E_NDIST };

const char *synth_qa_type_letter(int32_t type) {
    static const char *const l[SYNTH_QA_TYPES] = {"A", "B", "C", "D", "E"};
    return type >= 0 && type < SYNTH_QA_TYPES ? l[type] : "?";
}

const char *synth_src_name(const synth_ctx *x, const synth_src *s) { return x->corpus->class_lower[s->class_id]; }

/* ------------------------------------------------------------ filling -- */

typedef struct fill {
    const char *e, *e1, *e2, *d, *d1, *d2, *d3, *dist;
} fill;

static void format_q(char *out, size_t cap, const char *t, const fill *f) {
    static const char *const keys[] = {"{e}", "{e1}", "{e2}", "{d}", "{d1}", "{d2}", "{d3}", "{dist}"};
    const char *vals[8] = {f->e, f->e1, f->e2, f->d, f->d1, f->d2, f->d3, f->dist};
    size_t n = 0;
    while (*t && n + 1 < cap) {
        int done = 0;
        if (*t == '{')
            for (int k = 0; k < 8; k++) {
                size_t kl = strlen(keys[k]);
                if (strncmp(t, keys[k], kl) == 0 && vals[k]) {
                    n += (size_t)snprintf(out + n, cap - n, "%s", vals[k]);
                    if (n >= cap) n = cap - 1;
                    t += kl;
                    done = 1;
                    break;
                }
            }
        if (!done) out[n++] = *t++;
    }
    out[n] = '\0';
}

/* "2.5 meters", "1 meter". */
static void distance_words(int32_t cls, char *buf, size_t cap) {
    if (cls == 2)
        snprintf(buf, cap, "1 meter");
    else if (cls % 2 == 0)
        snprintf(buf, cap, "%d meters", (int)(cls / 2));
    else
        snprintf(buf, cap, "%d.5 meters", (int)(cls / 2));
}

/* Coordinate index of a label axis: 0 left/right → x, 1 front/behind → z, 2 above/below → y. */
static const int axis_coord[3] = {0, 2, 1};

/* Side of source a relative to b along an axis, or −1 when they differ by less than the margin. */
static int32_t relative_side(const synth_scene *sc, uint32_t a, uint32_t b, int axis, double margin) {
    double delta = sc->src[a].pos[axis_coord[axis]] - sc->src[b].pos[axis_coord[axis]];
    if (fabs(delta) < margin || delta == 0) return -1;
    switch (axis) {
    case 0: return delta > 0 ? BP_SIDE_RIGHT : BP_SIDE_LEFT;
    case 1: return delta < 0 ? BP_SIDE_FRONT : BP_SIDE_BEHIND;
    default: return delta > 0 ? BP_SIDE_ABOVE : BP_SIDE_BELOW;
    }
}

int32_t synth_pair_distance_class(const synth_scene *sc) {
    double s = 0;
    for (int k = 0; k < 3; k++) {
        double d = sc->src[0].pos[k] - sc->src[1].pos[k];
        s += d * d;
    }
    return bp_distance_class(sqrt(s));
}

/* ------------------------------------------------------------- output -- */

typedef struct gen {
    const synth_ctx *x;
    const synth_scene *sc;
    synth_rng rng;
    synth_qa *out;
    uint32_t cap, n;
    bp_error *err;
} gen;

static synth_qa *add(gen *g, int32_t type, int qt, const char *family, uint32_t tmpl) {
    if (g->n >= g->cap) return NULL;
    synth_qa *q = &g->out[g->n];
    memset(q, 0, sizeof *q);
    q->type = type;
    q->question_type = qtype_names[qt];
    q->query = json_object();
    if (!q->query) return NULL;
    json_object_set_new(q->query, "family", json_string(family));
    json_object_set_new(q->query, "template", json_integer(tmpl));
    g->n++;
    return q;
}

static void set_int(synth_qa *q, const char *k, int64_t v) { json_object_set_new(q->query, k, json_integer(v)); }
static void set_str(synth_qa *q, const char *k, const char *v) { json_object_set_new(q->query, k, json_string(v)); }

/* Distinct template indices for repeated questions of one type. */
static uint32_t pick_template(gen *g, uint32_t n, uint32_t *used, uint32_t n_used) {
    for (int t = 0; t < 16; t++) {
        uint32_t k = synth_rng_below(&g->rng, n);
        int dup = 0;
        for (uint32_t i = 0; i < n_used; i++)
            if (used[i] == k) dup = 1;
        if (!dup || n_used >= n) return k;
    }
    return synth_rng_below(&g->rng, n);
}

/* ----------------------------------------------------------- A, B, C, D -- */

static bp_status gen_single(gen *g) {
    const synth_cfg *cfg = g->x->cfg;
    const synth_src *s = &g->sc->src[0];
    char classes[256], loc[64];
    synth_row_answer(g->x->corpus, &g->x->corpus->rows[s->row], classes, sizeof classes);
    bp_spatial_answer_text(&s->label, loc, sizeof loc);
    fill f = {.e = synth_src_name(g->x, s)};
    uint32_t used[16], n_used = 0;
    for (int32_t i = 0; i < cfg->qa_count[SYNTH_QA_A]; i++) {
        uint32_t t = pick_template(g, N_OF(tmpl_a), used, n_used);
        if (n_used < 16) used[n_used++] = t;
        synth_qa *q = add(g, SYNTH_QA_A, QT_A, "classes", t);
        if (!q) return bp_error_set(g->err, BP_ERR_NOMEM, "synth: scene %s: out of memory for questions", g->sc->id);
        format_q(q->question, sizeof q->question, tmpl_a[t], &f);
        snprintf(q->answer, sizeof q->answer, "%s", classes);
        set_int(q, "source", 0);
    }
    n_used = 0;
    for (int32_t i = 0; i < cfg->qa_count[SYNTH_QA_B]; i++) {
        uint32_t t = pick_template(g, N_OF(tmpl_b), used, n_used);
        if (n_used < 16) used[n_used++] = t;
        synth_qa *q = add(g, SYNTH_QA_B, QT_B, "location", t);
        if (!q) return bp_error_set(g->err, BP_ERR_NOMEM, "synth: scene %s: out of memory for questions", g->sc->id);
        format_q(q->question, sizeof q->question, tmpl_b[t], &f);
        snprintf(q->answer, sizeof q->answer, "%s", loc);
        set_int(q, "source", 0);
    }
    return BP_OK;
}

static bp_status gen_two_cd(gen *g) {
    const synth_cfg *cfg = g->x->cfg;
    for (int type = SYNTH_QA_C; type <= SYNTH_QA_D; type++) {
        uint32_t first = synth_rng_below(&g->rng, 2);
        uint32_t used[16], n_used = 0;
        for (int32_t i = 0; i < cfg->qa_count[type]; i++) {
            uint32_t k = (first + (uint32_t)i) % 2;
            const synth_src *s = &g->sc->src[k];
            char words[3][16], dist[32], classes[256], loc[64];
            for (int a = 0; a < 3; a++) snprintf(words[a], sizeof words[a], "%s", bp_side_word(s->label.side[a]));
            distance_words(s->label.distance_class, dist, sizeof dist);
            fill f = {.e = synth_src_name(g->x, s), .d1 = words[0], .d2 = words[1], .d3 = words[2], .dist = dist};
            uint32_t nt = type == SYNTH_QA_C ? N_OF(tmpl_c) : N_OF(tmpl_d);
            uint32_t t = pick_template(g, nt, used, n_used);
            if (n_used < 16) used[n_used++] = t;
            synth_qa *q =
                add(g, type, type == SYNTH_QA_C ? QT_C : QT_D, type == SYNTH_QA_C ? "classes_at" : "location_of", t);
            if (!q)
                return bp_error_set(g->err, BP_ERR_NOMEM, "synth: scene %s: out of memory for questions", g->sc->id);
            set_int(q, "source", k);
            if (type == SYNTH_QA_C) {
                format_q(q->question, sizeof q->question, tmpl_c[t], &f);
                synth_row_answer(g->x->corpus, &g->x->corpus->rows[s->row], classes, sizeof classes);
                snprintf(q->answer, sizeof q->answer, "%s", classes);
            } else {
                format_q(q->question, sizeof q->question, tmpl_d[t], &f);
                snprintf(q->answer, sizeof q->answer, "%s", bp_spatial_answer_text(&s->label, loc, sizeof loc));
            }
        }
    }
    return BP_OK;
}

/* -------------------------------------------------------------------- E -- */

enum { F_BOTH_SIDE, F_PAIR_SIDES, F_RELATIVE, F_CLOSER, F_FARTHER, F_PAIR_DISTANCE, F_WHICH_SIDE, F_EITHER, F_COUNT };
static const char *const family_names[F_COUNT] = {"both_side", "pair_sides",    "relative_side", "closer",
                                                  "farther",   "pair_distance", "which_side",    "either_side"};

typedef struct cand {
    int fam;
    uint32_t a, b;  /* e1 = src[a], e2 = src[b] */
    int32_t w1, w2; /* side words (or axis for F_EITHER in w1) */
    int yes;        /* binary families: the answer */
} cand;

#define MAX_CANDS 128

/* Every question of one family that can be asked about this scene. */
static uint32_t candidates(const gen *g, int fam, cand *c) {
    const synth_scene *sc = g->sc;
    const synth_cfg *cfg = g->x->cfg;
    uint32_t n = 0;
    for (uint32_t a = 0; a < 2; a++) {
        uint32_t b = 1 - a;
        const int32_t *sa = sc->src[a].label.side, *sb = sc->src[b].label.side;
        switch (fam) {
        case F_BOTH_SIDE:
            if (a == 1) break; /* symmetric in the two sources: ask each pair once per order below */
            for (int32_t w = 0; w < BP_SIDE_COUNT; w++)
                for (uint32_t o = 0; o < 2; o++)
                    c[n++] = (cand){fam, o, 1 - o, w, -1, sa[w / 2] == w && sb[w / 2] == w};
            break;
        case F_PAIR_SIDES:
            for (int axis = 0; axis < 3; axis++)
                for (int32_t w1 = 2 * axis; w1 < 2 * axis + 2; w1++)
                    for (int32_t w2 = 2 * axis; w2 < 2 * axis + 2; w2++)
                        c[n++] = (cand){fam, a, b, w1, w2, sa[axis] == w1 && sb[axis] == w2};
            break;
        case F_RELATIVE:
            for (int32_t w = 0; w < BP_SIDE_COUNT; w++) {
                int32_t rs = relative_side(sc, a, b, w / 2, cfg->relation_margin);
                if (rs >= 0) c[n++] = (cand){fam, a, b, w, -1, rs == w};
            }
            break;
        case F_CLOSER:
        case F_FARTHER: {
            double da = sc->src[a].label.distance, db = sc->src[b].label.distance;
            if (fabs(da - db) < cfg->distance_margin || da == db) break;
            c[n++] = (cand){fam, a, b, -1, -1, fam == F_CLOSER ? da < db : da > db};
            break;
        }
        case F_PAIR_DISTANCE: c[n++] = (cand){fam, a, b, -1, -1, -1}; break;
        case F_WHICH_SIDE:
            /* "what is on the {d} side of {e2}": asked only when the other source is there */
            for (int32_t w = 0; w < BP_SIDE_COUNT; w++)
                if (relative_side(sc, a, b, w / 2, cfg->relation_margin) == w) c[n++] = (cand){fam, a, b, w, -1, -1};
            break;
        case F_EITHER:
            for (int axis = 0; axis < 3; axis++)
                if (relative_side(sc, a, b, axis, cfg->relation_margin) >= 0) c[n++] = (cand){fam, a, b, axis, -1, -1};
            break;
        default: break;
        }
    }
    return n;
}

static int is_binary(int fam) { return fam <= F_FARTHER; }

static uint32_t pick_weighted(synth_rng *r, const double *w, uint32_t n) {
    double s = 0;
    for (uint32_t i = 0; i < n; i++) s += w[i];
    double u = synth_rng_uniform(r) * s;
    for (uint32_t i = 0; i < n; i++) {
        if (u < w[i]) return i;
        u -= w[i];
    }
    return n - 1;
}

static int same_cand(const cand *x, const cand *y) {
    return x->fam == y->fam && x->a == y->a && x->b == y->b && x->w1 == y->w1 && x->w2 == y->w2;
}

static bp_status emit_e(gen *g, const cand *c) {
    static const int qt_of[F_COUNT] = {QT_E_BDIR,  QT_E_BDIR,  QT_E_BDIR, QT_E_BDIST,
                                       QT_E_BDIST, QT_E_NDIST, QT_E_NDIR, QT_E_NDIR};
    const synth_scene *sc = g->sc;
    const char *const *tl;
    uint32_t nt;
    switch (c->fam) {
    case F_BOTH_SIDE: tl = tmpl_both_side, nt = N_OF(tmpl_both_side); break;
    case F_PAIR_SIDES: tl = tmpl_pair_sides, nt = N_OF(tmpl_pair_sides); break;
    case F_RELATIVE: tl = tmpl_relative, nt = N_OF(tmpl_relative); break;
    case F_CLOSER: tl = tmpl_closer, nt = N_OF(tmpl_closer); break;
    case F_FARTHER: tl = tmpl_farther, nt = N_OF(tmpl_farther); break;
    case F_PAIR_DISTANCE: tl = tmpl_pair_distance, nt = N_OF(tmpl_pair_distance); break;
    case F_WHICH_SIDE: tl = tmpl_which_side, nt = N_OF(tmpl_which_side); break;
    default: tl = tmpl_either[c->w1], nt = 2; break;
    }
    uint32_t t = synth_rng_below(&g->rng, nt);
    synth_qa *q = add(g, SYNTH_QA_E, qt_of[c->fam], family_names[c->fam], t);
    if (!q) return bp_error_set(g->err, BP_ERR_NOMEM, "synth: scene %s: out of memory for questions", sc->id);
    fill f = {.e1 = synth_src_name(g->x, &sc->src[c->a]), .e2 = synth_src_name(g->x, &sc->src[c->b])};
    set_int(q, "first", c->a);
    set_int(q, "second", c->b);
    if (c->fam == F_PAIR_SIDES) {
        f.d1 = bp_side_word(c->w1);
        f.d2 = bp_side_word(c->w2);
        set_str(q, "word1", f.d1);
        set_str(q, "word2", f.d2);
    } else if (c->fam == F_EITHER) {
        static const char *const axes[3] = {"left_right", "front_behind", "above_below"};
        set_str(q, "axis", axes[c->w1]);
    } else if (c->w1 >= 0) {
        f.d = bp_side_word(c->w1);
        set_str(q, "word", f.d);
    }
    format_q(q->question, sizeof q->question, tl[t], &f);
    if (is_binary(c->fam)) {
        snprintf(q->answer, sizeof q->answer, "%s", c->yes ? "Yes" : "No");
    } else if (c->fam == F_PAIR_DISTANCE) {
        bp_distance_class_text(synth_pair_distance_class(sc), q->answer, sizeof q->answer);
    } else if (c->fam == F_WHICH_SIDE) {
        synth_row_answer(g->x->corpus, &g->x->corpus->rows[sc->src[c->a].row], q->answer, sizeof q->answer);
    } else {
        snprintf(q->answer, sizeof q->answer, "%s",
                 bp_side_word(relative_side(sc, c->a, c->b, c->w1, g->x->cfg->relation_margin)));
    }
    return BP_OK;
}

/* Candidates of `fam` not asked yet, with answer `want` (−1: any). */
static uint32_t fresh(const gen *g, int fam, int want, const cand *asked, uint32_t n_asked, cand *out) {
    cand all[MAX_CANDS];
    uint32_t n_all = candidates(g, fam, all), n = 0;
    for (uint32_t k = 0; k < n_all; k++) {
        int dup = 0;
        for (uint32_t j = 0; j < n_asked; j++)
            if (same_cand(&all[k], &asked[j])) dup = 1;
        if (!dup && (want < 0 || all[k].yes == want)) out[n++] = all[k];
    }
    return n;
}

static bp_status gen_two_e(gen *g) {
    const synth_cfg *cfg = g->x->cfg;
    static const int mix_families[SYNTH_E_MIXES][3] = {
        {F_BOTH_SIDE, F_PAIR_SIDES, F_RELATIVE}, {F_CLOSER, F_FARTHER, -1}, {F_PAIR_DISTANCE, F_WHICH_SIDE, F_EITHER}};
    cand asked[SYNTH_MAX_QA];
    uint32_t n_asked = 0;
    for (int32_t i = 0; i < cfg->qa_count[SYNTH_QA_E]; i++) {
        int done = 0;
        for (int attempt = 0; attempt < 32 && !done; attempt++) {
            uint32_t mix = pick_weighted(&g->rng, cfg->e_mix, SYNTH_E_MIXES);
            int binary = mix != SYNTH_E_NONBINARY;
            /* binary groups: a fair coin picks the answer first, then a family that can give it */
            int want = binary ? synth_rng_below(&g->rng, 2) == 0 : -1;
            cand pool[MAX_CANDS];
            uint32_t n_pool = 0;
            for (int pass = 0; pass < (binary ? 2 : 1) && !n_pool; pass++) {
                int fams[3], nf = 0;
                for (int k = 0; k < 3; k++) {
                    int f = mix_families[mix][k];
                    if (f >= 0 && fresh(g, f, want, asked, n_asked, pool) > 0) fams[nf++] = f;
                }
                if (nf) n_pool = fresh(g, fams[synth_rng_below(&g->rng, (uint32_t)nf)], want, asked, n_asked, pool);
                if (binary) want = !want; /* no family can give the wanted answer: take the other */
            }
            if (!n_pool) continue;
            cand c = pool[synth_rng_below(&g->rng, n_pool)];
            bp_status st = emit_e(g, &c);
            if (st != BP_OK) return st;
            if (n_asked < SYNTH_MAX_QA) asked[n_asked++] = c;
            done = 1;
        }
    }
    return BP_OK;
}

bp_status synth_qa_generate(const synth_ctx *x, const synth_scene *sc, synth_qa *out, uint32_t cap, uint32_t *n,
                            bp_error *err) {
    gen g = {.x = x, .sc = sc, .out = out, .cap = cap, .err = err};
    synth_rng_seed(&g.rng, synth_seed(x->cfg->seed, sc->split, sc->kind, sc->index, SYNTH_STREAM_QA));
    bp_status st = sc->kind == SYNTH_SINGLE ? gen_single(&g) : gen_two_cd(&g);
    if (st == BP_OK && sc->kind == SYNTH_TWO) st = gen_two_e(&g);
    *n = g.n;
    if (st != BP_OK) {
        synth_qa_free(out, g.n);
        *n = 0;
    }
    return st;
}

void synth_qa_free(synth_qa *q, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        if (q[i].query) {
            json_decref(q[i].query);
            q[i].query = NULL;
        }
}
