/* BAT labels (batpipe/labels.h) for known geometries: the four cardinal
 * directions, diagonals, listener offsets, half-to-even ties of the distance
 * class, azimuth wrap below 0°, the +90° elevation wrap, the octant words
 * and their zero cases, answer texts and their parser. */
#include <math.h>
#include <string.h>

#include "batpipe/labels.h"
#include "bp_test.h"

static bp_spatial_label lab(double x, double y, double z) {
    double src[3] = {x, y, z}, lis[3] = {0, 0, 0};
    bp_spatial_label l;
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_spatial_label_compute(src, lis, &l, &err), &err);
    return l;
}

static void check_text(const bp_spatial_label *l, const char *want) {
    char buf[64];
    bp_spatial_answer_text(l, buf, sizeof buf);
    CHECKF(strcmp(buf, want) == 0, "'%s' vs '%s'", buf, want);
}

int main(void) {
    /* cardinal directions (listener at the origin facing −z) */
    bp_spatial_label l = lab(1, 0, 0);
    CHECK(l.azimuth == 0 && l.elevation == 0 && l.elevation_class == 90 && l.distance_class == 2);
    CHECK(l.side[0] == BP_SIDE_RIGHT && l.side[1] == BP_SIDE_BEHIND && l.side[2] == BP_SIDE_BELOW); /* dz = dy = 0 */
    check_text(&l, "right, behind, below; 1m");
    l = lab(0, 0, -2);
    CHECK(l.azimuth == 90 && l.distance_class == 4);
    CHECK(l.side[0] == BP_SIDE_LEFT && l.side[1] == BP_SIDE_FRONT); /* dx = 0 → left */
    l = lab(-3, 0, 0);
    CHECK(l.azimuth == 180 && l.distance_class == 6 && l.side[0] == BP_SIDE_LEFT);
    l = lab(0, 0, 2.5);
    CHECK(l.azimuth == 270 && l.distance_class == 5 && l.side[1] == BP_SIDE_BEHIND);
    /* diagonals and elevation */
    l = lab(1, 0, -1);
    CHECK(l.azimuth == 45);
    check_text(&l, "right, front, below; 1.5m"); /* √2 = 1.414 → 2.83 → class 3 */
    l = lab(-1, 1, 1);
    CHECK(l.azimuth == 225 && l.elevation == 35 && l.elevation_class == 125);
    check_text(&l, "left, behind, above; 1.5m"); /* √3 = 1.732 → 3.46 → class 3 */
    l = lab(1, 1, 0);
    CHECK(l.elevation == 45 && l.elevation_class == 135);
    l = lab(1, -1, 0);
    CHECK(l.elevation == -45 && l.elevation_class == 45 && l.side[2] == BP_SIDE_BELOW);
    /* straight above wraps to class 0, like straight below (BAT's quirk) */
    l = lab(0, 2, 0);
    CHECK(l.elevation == 90 && l.elevation_class == 0 && l.side[2] == BP_SIDE_ABOVE);
    l = lab(0, -2, 0);
    CHECK(l.elevation == -90 && l.elevation_class == 0);
    /* 3-4-5: exact distance 2.5 → class 5, azimuth atan2(2, 1.5) = 53.13° */
    l = lab(1.5, 0, -2);
    CHECK(l.distance == 2.5 && l.distance_class == 5 && l.azimuth == 53);
    check_text(&l, "right, front, below; 2.5m");
    /* distance ties round half to even: 2·d = 2.5 → 2, 3.5 → 4, 0.5 → 0, 1.5 → 2, 4.5 → 4, 5.5 → 6 */
    CHECK(lab(1.25, 0, 0).distance_class == 2);
    CHECK(lab(1.75, 0, 0).distance_class == 4);
    CHECK(lab(0.25, 0, 0).distance_class == 0);
    CHECK(lab(0.75, 0, 0).distance_class == 2);
    CHECK(lab(2.25, 0, 0).distance_class == 4);
    CHECK(lab(2.75, 0, 0).distance_class == 6);
    CHECK(lab(10, 0, 0).distance_class == 20 && lab(12, 0, 0).distance_class == 24);
    CHECK(bp_distance_class(1.2499) == 2 && bp_distance_class(1.2501) == 3 && bp_distance_class(-1) == -1);
    CHECK(bp_distance_class(NAN) == -1);
    /* azimuth just below 0° wraps to 359, just above rounds to 0 */
    double th = -0.6 * M_PI / 180;
    l = lab(cos(th), 0, -sin(th));
    CHECK(l.azimuth == 359 && l.side[1] == BP_SIDE_BEHIND);
    th = -0.4 * M_PI / 180;
    CHECK(lab(cos(th), 0, -sin(th)).azimuth == 0);
    th = 359.6 * M_PI / 180;
    CHECK(lab(cos(th), 0, -sin(th)).azimuth == 0);
    /* half to even on degrees too */
    CHECK(bp_round_half_even(0.5) == 0 && bp_round_half_even(1.5) == 2 && bp_round_half_even(2.5) == 2);
    CHECK(bp_round_half_even(-0.5) == 0 && bp_round_half_even(-1.5) == -2 && bp_round_half_even(89.5) == 90);
    CHECK(bp_round_half_even(90.5) == 90 && bp_round_half_even(-2.5000001) == -3 && bp_round_half_even(7.0) == 7);
    /* a listener away from the origin */
    double src[3] = {2, 1.2, 1}, lis[3] = {2, 1.5, 3};
    bp_error err = BP_ERROR_INIT;
    CHECK_OK(bp_spatial_label_compute(src, lis, &l, &err), &err);
    CHECK(l.azimuth == 90 && l.distance_class == 4 && l.elevation == -9 && l.elevation_class == 81);
    check_text(&l, "left, front, below; 2m");
    /* non-finite input */
    double bad[3] = {NAN, 0, 0};
    CHECK(bp_spatial_label_compute(bad, lis, &l, &err) == BP_ERR_INVALID && strstr(err.msg, "non-finite"));
    /* words and texts */
    char buf[32];
    CHECK(strcmp(bp_distance_class_text(10, buf, sizeof buf), "5m") == 0);
    CHECK(strcmp(bp_distance_class_text(0, buf, sizeof buf), "0m") == 0);
    CHECK(strcmp(bp_distance_class_text(1, buf, sizeof buf), "0.5m") == 0);
    CHECK(strcmp(bp_distance_class_text(21, buf, sizeof buf), "10.5m") == 0);
    CHECK(bp_side_from_word(" Behind ") == BP_SIDE_BEHIND && bp_side_from_word("up") == -1);
    for (int s = 0; s < BP_SIDE_COUNT; s++) CHECK(bp_side_from_word(bp_side_word(s)) == s);
    /* parsing answers */
    int32_t sides[3], dc;
    CHECK_OK(bp_spatial_answer_parse("left, front, below; 2.5m", sides, &dc, &err), &err);
    CHECK(sides[0] == BP_SIDE_LEFT && sides[1] == BP_SIDE_FRONT && sides[2] == BP_SIDE_BELOW && dc == 5);
    CHECK_OK(bp_spatial_answer_parse(" Below, RIGHT , behind ;10m ", sides, &dc, &err), &err);
    CHECK(sides[0] == BP_SIDE_RIGHT && sides[1] == BP_SIDE_BEHIND && sides[2] == BP_SIDE_BELOW && dc == 20);
    CHECK_OK(bp_spatial_answer_parse("left, front, above; 1.25m", sides, &dc, &err), &err);
    CHECK(dc == 2);
    const char *bad_texts[] = {"left, right, below; 1m",     "left, front; 1m",         "left, front, below 1m",
                               "left, front, below; 1",      "left, front, below; xm",  "left, front, up; 1m",
                               "left, front, below; 1m; 2m", "left, front, below; -1m", ""};
    for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++) {
        bp_error e = BP_ERROR_INIT;
        CHECKF(bp_spatial_answer_parse(bad_texts[i], sides, &dc, &e) == BP_ERR_INVALID && e.msg[0], "'%s' accepted",
               bad_texts[i]);
    }
    /* round trip of every generated answer text */
    for (int x = -2; x <= 2; x++)
        for (int z = -2; z <= 2; z++) {
            bp_spatial_label a = lab(x * 1.3 + 0.01, 0.4 * z, z * 0.9 - 0.02);
            char t[64];
            bp_spatial_answer_text(&a, t, sizeof t);
            CHECK_OK(bp_spatial_answer_parse(t, sides, &dc, &err), &err);
            CHECK(memcmp(sides, a.side, sizeof sides) == 0 && dc == a.distance_class);
        }
    return TEST_RESULT();
}
