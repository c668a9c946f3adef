/* BAT's spatial labels and octant words (see labels.h for the definitions). */
#include "batpipe/labels.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double rad_to_deg = 180.0 / M_PI;

double bp_round_half_even(double x) {
    if (!isfinite(x)) return x;
    double r = floor(x);
    double diff = x - r; /* exact for |x| < 2^52; larger doubles are integers already */
    if (diff > 0.5) return r + 1.0;
    if (diff < 0.5) return r;
    return fmod(r, 2.0) == 0.0 ? r : r + 1.0;
}

int32_t bp_distance_class(double metres) {
    if (!isfinite(metres) || metres < 0 || metres > 1e8) return -1;
    return (int32_t)bp_round_half_even(2.0 * metres);
}

bp_status bp_spatial_label_compute(const double source[3], const double listener[3], bp_spatial_label *out,
                                   bp_error *err) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 3; i++)
        if (!isfinite(source[i]) || !isfinite(listener[i]))
            return bp_error_set(err, BP_ERR_INVALID,
                                "labels: non-finite coordinates (source %g, %g, %g; listener %g, %g, %g)", source[0],
                                source[1], source[2], listener[0], listener[1], listener[2]);
    double dx = source[0] - listener[0], dy = source[1] - listener[1], dz = source[2] - listener[2];
    out->d[0] = dx;
    out->d[1] = dy;
    out->d[2] = dz;
    double horizontal = sqrt(dx * dx + dz * dz);
    out->distance = sqrt(dx * dx + dy * dy + dz * dz);
    if (out->distance > 1e8)
        return bp_error_set(err, BP_ERR_INVALID, "labels: implausible distance %g m", out->distance);
    out->distance_class = bp_distance_class(out->distance);
    out->azimuth_deg = atan2(-dz, dx) * rad_to_deg;
    int32_t az = (int32_t)bp_round_half_even(out->azimuth_deg) % 360;
    out->azimuth = az < 0 ? az + 360 : az;
    out->elevation_deg = atan2(dy, horizontal) * rad_to_deg;
    out->elevation = (int32_t)bp_round_half_even(out->elevation_deg);
    out->elevation_class = (out->elevation + 90) % 180; /* +90° wraps to 0, as BAT */
    out->side[0] = dx > 0 ? BP_SIDE_RIGHT : BP_SIDE_LEFT;
    out->side[1] = dz < 0 ? BP_SIDE_FRONT : BP_SIDE_BEHIND;
    out->side[2] = dy > 0 ? BP_SIDE_ABOVE : BP_SIDE_BELOW;
    return BP_OK;
}

static const char *const side_words[BP_SIDE_COUNT] = {"left", "right", "front", "behind", "above", "below"};

const char *bp_side_word(int32_t side) { return side >= 0 && side < BP_SIDE_COUNT ? side_words[side] : "?"; }

/* Compare a blank-trimmed span [s, s+n) with a word, ignoring case. */
static int span_is(const char *s, size_t n, const char *word) {
    size_t wl = strlen(word);
    if (n != wl) return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s[i]) != word[i]) return 0;
    return 1;
}

static void trim_span(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)**s)) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

static int32_t side_from_span(const char *s, size_t n) {
    trim_span(&s, &n);
    for (int32_t i = 0; i < BP_SIDE_COUNT; i++)
        if (span_is(s, n, side_words[i])) return i;
    return -1;
}

int32_t bp_side_from_word(const char *word) { return word ? side_from_span(word, strlen(word)) : -1; }

const char *bp_spatial_direction_text(const bp_spatial_label *l, char *buf, size_t cap) {
    snprintf(buf, cap, "%s, %s, %s", bp_side_word(l->side[0]), bp_side_word(l->side[1]), bp_side_word(l->side[2]));
    return buf;
}

const char *bp_distance_class_text(int32_t distance_class, char *buf, size_t cap) {
    if (distance_class < 0)
        snprintf(buf, cap, "?");
    else if (distance_class % 2 == 0)
        snprintf(buf, cap, "%dm", (int)(distance_class / 2));
    else
        snprintf(buf, cap, "%d.5m", (int)(distance_class / 2));
    return buf;
}

const char *bp_spatial_answer_text(const bp_spatial_label *l, char *buf, size_t cap) {
    char dir[48], dist[24];
    snprintf(buf, cap, "%s; %s", bp_spatial_direction_text(l, dir, sizeof dir),
             bp_distance_class_text(l->distance_class, dist, sizeof dist));
    return buf;
}

bp_status bp_spatial_answer_parse(const char *text, int32_t sides[3], int32_t *distance_class, bp_error *err) {
    if (!text) return bp_error_set(err, BP_ERR_INVALID, "labels: no answer text");
    const char *semi = strchr(text, ';');
    if (!semi || strchr(semi + 1, ';'))
        return bp_error_set(err, BP_ERR_INVALID, "labels: '%.200s' is not of the form 'left, front, below; 2.5m'",
                            text);
    int32_t got[3] = {-1, -1, -1};
    const char *p = text;
    for (int k = 0; k < 3; k++) {
        const char *end = k < 2 ? memchr(p, ',', (size_t)(semi - p)) : semi;
        if (!end) return bp_error_set(err, BP_ERR_INVALID, "labels: '%.200s' needs three direction words", text);
        int32_t s = side_from_span(p, (size_t)(end - p));
        if (s < 0)
            return bp_error_set(err, BP_ERR_INVALID, "labels: '%.200s': '%.*s' is not a direction word", text,
                                (int)(end - p > 40 ? 40 : end - p), p);
        if (got[s / 2] >= 0)
            return bp_error_set(err, BP_ERR_INVALID, "labels: '%.200s' names the %s/%s axis twice", text,
                                side_words[(s / 2) * 2], side_words[(s / 2) * 2 + 1]);
        got[s / 2] = s;
        p = end + 1;
    }
    const char *d = semi + 1;
    size_t n = strlen(d);
    trim_span(&d, &n);
    if (n < 2 || tolower((unsigned char)d[n - 1]) != 'm')
        return bp_error_set(err, BP_ERR_INVALID, "labels: '%.200s': the distance must end in 'm'", text);
    char num[32];
    size_t nl = n - 1;
    while (nl && isspace((unsigned char)d[nl - 1])) nl--;
    if (nl == 0 || nl >= sizeof num) return bp_error_set(err, BP_ERR_INVALID, "labels: '%.200s': no distance", text);
    memcpy(num, d, nl);
    num[nl] = '\0';
    for (size_t i = 0; i < nl; i++)
        if (!isdigit((unsigned char)num[i]) && num[i] != '.')
            return bp_error_set(err, BP_ERR_INVALID, "labels: '%.200s': '%s' is not a distance", text, num);
    char *endp;
    double metres = strtod(num, &endp);
    int32_t cls = bp_distance_class(metres);
    if (*endp || cls < 0)
        return bp_error_set(err, BP_ERR_INVALID, "labels: '%.200s': '%s' is not a distance", text, num);
    for (int k = 0; k < 3; k++) sides[k] = got[k];
    *distance_class = cls;
    return BP_OK;
}
