/* batpipe — BAT's spatial labels: distance, azimuth and elevation classes and
 * the octant words of SpatialSoundQA answers, computed exactly as the
 * official Spatial-AST code does.
 *
 * Frame: Habitat's right-handed frame, metres: +x right, +y up, −z front of
 * the listener (who faces −z; the listener's rotation is not used). With
 * d = source − listener:
 *   distance        |d|
 *   distance class  round-half-even(2·|d|): 0.5 m bins, classes 0..20 cover
 *                   0–10 m (not clamped: a source 12 m away has class 24)
 *   azimuth         round-half-even(degrees(atan2(−dz, dx))) mod 360:
 *                   0° right, 90° front, 180° left, 270° behind
 *   elevation       round-half-even(degrees(atan(dy / horizontal distance))),
 *                   −90..90 (computed as atan2(dy, horizontal), which is the
 *                   same for horizontal > 0 and gives ±90° straight above or
 *                   below instead of a division by zero)
 *   elevation class (elevation + 90) mod 180: 0° (ear level) is class 90.
 *                   BAT's quirk is kept: +90° (straight above) wraps to
 *                   class 0, the same class as −90°.
 * Rounding is half to even (Python's round()), e.g. 2·d = 2.5 → class 2.
 *
 * Octant words (answers "left, front, below; 2.5m"):
 *   right  iff dx > 0, otherwise left   (dx = 0 → left)
 *   front  iff dz < 0, otherwise behind (dz = 0 → behind)
 *   above  iff dy > 0, otherwise below  (dy = 0 → below)
 * BAT's code does not publish its thresholds; these sign rules are batpipe's
 * definition, with the zero cases fixed as above.
 *
 * Distances in answers are printed on the 0.5 m grid, integers without a
 * decimal point: class 5 → "2.5m", class 10 → "5m", class 0 → "0m".
 *
 * Everything here is pure computation: thread-safe, no allocation. */
#ifndef BATPIPE_LABELS_H
#define BATPIPE_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

BP_EXTERN_C_BEGIN

#define BP_DISTANCE_CLASSES 21   /* 0, 0.5, ..., 10 m */
#define BP_AZIMUTH_CLASSES 360   /* 1° bins */
#define BP_ELEVATION_CLASSES 180 /* 1° bins, index = elevation + 90 (mod 180) */

/* The six octant words. Axis of a side: side / 2 (0 left/right, 1
 * front/behind, 2 above/below); the opposite side: side ^ 1. */
typedef enum bp_side {
    BP_SIDE_LEFT = 0,
    BP_SIDE_RIGHT = 1,
    BP_SIDE_FRONT = 2,
    BP_SIDE_BEHIND = 3,
    BP_SIDE_ABOVE = 4,
    BP_SIDE_BELOW = 5,
    BP_SIDE_COUNT = 6
} bp_side;

typedef struct bp_spatial_label {
    double d[3];             /* source − listener: dx, dy, dz */
    double distance;         /* |d|, metres */
    double azimuth_deg;      /* degrees(atan2(−dz, dx)), unrounded, in [−180, 180] */
    double elevation_deg;    /* degrees(atan2(dy, horizontal)), unrounded, in [−90, 90] */
    int32_t distance_class;  /* round-half-even(2·|d|) */
    int32_t azimuth;         /* 0..359 */
    int32_t elevation;       /* −90..90 */
    int32_t elevation_class; /* 0..179 */
    int32_t side[3];         /* bp_side per axis: [0] left/right, [1] front/behind, [2] above/below */
} bp_spatial_label;

/* Labels of a source seen from a listener. Non-finite coordinates are
 * BP_ERR_INVALID naming them. */
BP_API bp_status bp_spatial_label_compute(const double source[3], const double listener[3], bp_spatial_label *out,
                                          bp_error *err);

/* Python's round() for doubles: to nearest, ties to even. */
BP_API double bp_round_half_even(double x);
/* round-half-even(2·metres) (metres ≥ 0); −1 for a negative or non-finite value. */
BP_API int32_t bp_distance_class(double metres);

/* "left", "right", "front", "behind", "above", "below"; "?" if out of range. */
BP_API const char *bp_side_word(int32_t side);
/* The side named by `word` (case-insensitive, surrounding blanks ignored), or −1. */
BP_API int32_t bp_side_from_word(const char *word);

/* "left, front, below" into buf (≥ 24 bytes); returns buf. */
BP_API const char *bp_spatial_direction_text(const bp_spatial_label *l, char *buf, size_t cap);
/* The 0.5 m grid value of a distance class as answers print it: "2.5m",
 * "5m", "0m" (≥ 16 bytes); returns buf. Negative classes give "?". */
BP_API const char *bp_distance_class_text(int32_t distance_class, char *buf, size_t cap);
/* "left, front, below; 2.5m" (≥ 40 bytes); returns buf. */
BP_API const char *bp_spatial_answer_text(const bp_spatial_label *l, char *buf, size_t cap);
/* Parse a direction-and-distance answer ("left, front, below; 2.5m"; case and
 * blanks are ignored; the three words may come in any order but must name
 * the three axes once each; the distance may be any non-negative number of
 * metres). sides[axis] receives the bp_side of each axis; *distance_class =
 * round-half-even(2·metres). A malformed text is BP_ERR_INVALID quoting it. */
BP_API bp_status bp_spatial_answer_parse(const char *text, int32_t sides[3], int32_t *distance_class, bp_error *err);

BP_EXTERN_C_END

#endif /* BATPIPE_LABELS_H */
