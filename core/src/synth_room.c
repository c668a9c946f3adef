/* synth: procedural shoebox rooms. A room type gives size ranges, allowed
 * materials per surface and a target T60 range; a room draws its size and
 * materials, then adds a furniture/soft-furnishing absorption term (the same
 * coefficient on every surface, shaped over frequency by
 * rooms.furniture_profile) found by bisection so that Eyring's mid-band T60
 * (mean of 500 Hz and 1 kHz) hits a target drawn from the type's range. Bare
 * shoeboxes otherwise reach 2–3 s; furnished rooms are 0.2–0.9 s. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "synth_internal.h"

double synth_speed_of_sound(double temperature_c) { return 331.3 * sqrt(1.0 + temperature_c / 273.15); }

/* ISO 9613-1:1993 pure-tone air absorption at sea-level pressure, as an
 * energy attenuation coefficient m (1/m): intensity ∝ exp(−m·r). */
double synth_air_absorption(double hz, double temperature_c, double humidity) {
    const double T = temperature_c + 273.15, T0 = 293.15, T01 = 273.16;
    const double pa_pr = 1.0; /* 101.325 kPa */
    double C = -6.8346 * pow(T01 / T, 1.261) + 4.6151;
    double h = humidity * pow(10.0, C) / pa_pr; /* molar concentration of water vapour, % */
    double frO = pa_pr * (24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h));
    double frN = pa_pr * pow(T / T0, -0.5) * (9.0 + 280.0 * h * exp(-4.170 * (pow(T / T0, -1.0 / 3.0) - 1.0)));
    double f2 = hz * hz;
    double db_per_m =
        8.686 * f2 *
        (1.84e-11 / pa_pr * sqrt(T / T0) + pow(T / T0, -2.5) * (0.01275 * exp(-2239.1 / T) / (frO + f2 / frO) +
                                                                0.1068 * exp(-3352.0 / T) / (frN + f2 / frN)));
    return db_per_m / (10.0 * log10(exp(1.0)));
}

static void surfaces(const double size[3], double area[6]) {
    area[0] = area[1] = size[1] * size[2]; /* x−, x+ */
    area[2] = area[3] = size[0] * size[2]; /* floor, ceiling */
    area[4] = area[5] = size[0] * size[1]; /* z−, z+ */
}

/* Eyring (and Sabine) T60 per band for given absorption coefficients. */
static void t60_of(const synth_cfg *cfg, const double size[3], const double alpha[6][SYNTH_BANDS],
                   double eyring[SYNTH_BANDS], double sabine[SYNTH_BANDS]) {
    double area[6], S = 0, V = size[0] * size[1] * size[2];
    surfaces(size, area);
    for (int w = 0; w < 6; w++) S += area[w];
    double k = 24.0 * log(10.0) / synth_speed_of_sound(cfg->temperature_c);
    for (int b = 0; b < SYNTH_BANDS; b++) {
        double A = 0;
        for (int w = 0; w < 6; w++) A += area[w] * alpha[w][b];
        double mean = A / S;
        if (mean > 0.999999) mean = 0.999999;
        double air = 4.0 * synth_air_absorption(synth_band_hz[b], cfg->temperature_c, cfg->humidity) * V;
        if (eyring) eyring[b] = k * V / (-S * log(1.0 - mean) + air);
        if (sabine) sabine[b] = k * V / (A + air);
    }
}

void synth_room_t60(const synth_cfg *cfg, synth_room *room) {
    double area[6];
    surfaces(room->size, area);
    room->volume = room->size[0] * room->size[1] * room->size[2];
    room->surface = 0;
    for (int w = 0; w < 6; w++) room->surface += area[w];
    t60_of(cfg, room->size, (const double(*)[SYNTH_BANDS])room->alpha, room->eyring_t60, room->sabine_t60);
}

/* Effective absorption with furniture coefficient k. */
static void apply_furniture(const synth_cfg *cfg, synth_room *room, const double base[6][SYNTH_BANDS], double k) {
    for (int b = 0; b < SYNTH_BANDS; b++) room->furniture[b] = k * cfg->furniture_profile[b];
    for (int w = 0; w < 6; w++)
        for (int b = 0; b < SYNTH_BANDS; b++) {
            double a = base[w][b] + room->furniture[b];
            room->alpha[w][b] = a > 0.99 ? 0.99 : a;
        }
}

static double mid_t60_with(const synth_cfg *cfg, synth_room *room, const double base[6][SYNTH_BANDS], double k) {
    apply_furniture(cfg, room, base, k);
    double e[SYNTH_BANDS];
    t60_of(cfg, room->size, (const double(*)[SYNTH_BANDS])room->alpha, e, NULL);
    return synth_mid_t60(e);
}

/* Placement slack per axis: a room must reach a bit beyond the asked offset
 * so that positions are not confined to the exact corners. */
static const double slack = 0.2;

int synth_room_fits(const synth_cfg *cfg, const double size[3], double ext_x, double ext_z) {
    return size[0] - 2 * cfg->wall_margin >= ext_x + slack && size[2] - 2 * cfg->wall_margin >= ext_z + slack;
}

static uint32_t pick(synth_rng *rng, uint32_t n) { return n > 1 ? synth_rng_below(rng, n) : 0; }

bp_status synth_room_sample(const synth_cfg *cfg, synth_rng *rng, double ext_x, double ext_z, synth_room *out,
                            bp_error *err) {
    memset(out, 0, sizeof *out);
    double wsum = 0;
    for (uint32_t t = 0; t < cfg->n_rooms; t++)
        if (synth_room_fits(cfg, cfg->rooms[t].size_max, ext_x, ext_z)) wsum += cfg->rooms[t].weight;
    if (!(wsum > 0))
        return bp_error_set(err, BP_ERR_INVALID,
                            "synth: no room type fits a source %.2f m across and %.2f m deep from the listener (%s)",
                            ext_x, ext_z, cfg->rooms_where);
    double u = synth_rng_uniform(rng) * wsum;
    uint32_t type = 0;
    for (uint32_t t = 0; t < cfg->n_rooms; t++) {
        if (!synth_room_fits(cfg, cfg->rooms[t].size_max, ext_x, ext_z) || !(cfg->rooms[t].weight > 0)) continue;
        type = t;
        if (u < cfg->rooms[t].weight) break;
        u -= cfg->rooms[t].weight;
    }
    const synth_room_type *rt = &cfg->rooms[type];
    out->type = (int32_t)type;
    int ok = 0;
    for (int tries = 0; tries < 100 && !ok; tries++) {
        for (int k = 0; k < 3; k++)
            out->size[k] = synth_quantize(synth_rng_range(rng, rt->size_min[k], rt->size_max[k]), 0.01);
        ok = synth_room_fits(cfg, out->size, ext_x, ext_z);
    }
    if (!ok) memcpy(out->size, rt->size_max, sizeof out->size);
    out->target_t60 = synth_rng_range(rng, rt->t60_min, rt->t60_max);
    /* materials: redraw until the furniture term can reach the target */
    double base[6][SYNTH_BANDS];
    double best_err = INFINITY, best_k = 0;
    int32_t best_mat[6] = {0};
    for (int tries = 0; tries < 24; tries++) {
        int32_t mat[6];
        mat[0] = (int32_t)rt->walls[pick(rng, rt->n_walls)];
        mat[1] = (int32_t)rt->walls[pick(rng, rt->n_walls)];
        mat[2] = (int32_t)rt->floors[pick(rng, rt->n_floors)];
        mat[3] = (int32_t)rt->ceilings[pick(rng, rt->n_ceilings)];
        mat[4] = (int32_t)rt->walls[pick(rng, rt->n_walls)];
        mat[5] = (int32_t)rt->walls[pick(rng, rt->n_walls)];
        for (int w = 0; w < 6; w++) memcpy(base[w], cfg->materials[mat[w]].alpha, sizeof base[w]);
        double t_lo = mid_t60_with(cfg, out, base, 0.0), k;
        if (t_lo <= out->target_t60) {
            k = 0; /* already as dead as (or deader than) the target */
        } else if (mid_t60_with(cfg, out, base, cfg->max_furniture) >= out->target_t60) {
            k = cfg->max_furniture; /* cannot be made dead enough */
        } else {
            double lo = 0, hi = cfg->max_furniture;
            for (int it = 0; it < 60; it++) {
                double m = 0.5 * (lo + hi);
                if (mid_t60_with(cfg, out, base, m) > out->target_t60)
                    lo = m;
                else
                    hi = m;
            }
            k = 0.5 * (lo + hi);
        }
        double t = mid_t60_with(cfg, out, base, k);
        double e = fabs(log(t / out->target_t60));
        if (e < best_err) {
            best_err = e;
            best_k = k;
            memcpy(best_mat, mat, sizeof mat);
        }
        if (e < 0.01) break;
    }
    memcpy(out->material, best_mat, sizeof best_mat);
    for (int w = 0; w < 6; w++) memcpy(base[w], cfg->materials[best_mat[w]].alpha, sizeof base[w]);
    apply_furniture(cfg, out, base, synth_quantize(best_k, 1e-6));
    synth_room_t60(cfg, out);
    return BP_OK;
}

void synth_room_to_sim(const synth_cfg *cfg, const synth_room *room, bp_sim_room *out) {
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    memcpy(out->size, room->size, sizeof out->size);
    out->n_bands = SYNTH_BANDS;
    for (int b = 0; b < SYNTH_BANDS; b++) {
        out->band_hz[b] = synth_band_hz[b];
        out->scattering[b] = cfg->scattering;
        for (int w = 0; w < 6; w++) out->absorption[w][b] = room->alpha[w][b];
    }
    out->temperature_c = cfg->temperature_c;
    out->humidity = cfg->humidity;
}

bp_status synth_rooms_check(const synth_cfg *cfg, bp_error *err) {
    int32_t max_class = 0;
    for (uint32_t i = 0; i < cfg->n_distance_classes; i++)
        if (cfg->distance_classes[i] > max_class) max_class = cfg->distance_classes[i];
    double need = max_class * 0.5 + 0.25;
    for (uint32_t t = 0; t < cfg->n_rooms; t++) {
        const synth_room_type *r = &cfg->rooms[t];
        double top = r->size_min[1] - cfg->wall_margin;
        if (top < cfg->listener_height[0])
            return bp_error_set(
                err, BP_ERR_INVALID,
                "%s: room type '%s' is %.2f m high: the listener (geometry.listener_height from %.2f m) "
                "does not fit under its ceiling with the %.2f m wall margin",
                r->where, r->name, r->size_min[1], cfg->listener_height[0], cfg->wall_margin);
        if (cfg->source_height[0] > r->size_min[1] - cfg->wall_margin || cfg->source_height[1] < cfg->wall_margin)
            return bp_error_set(err, BP_ERR_INVALID,
                                "%s: room type '%s' (%.2f m high) leaves no room for sources at heights %.2f–%.2f m "
                                "(geometry.source_height) inside the %.2f m wall margin",
                                r->where, r->name, r->size_min[1], cfg->source_height[0], cfg->source_height[1],
                                cfg->wall_margin);
    }
    /* every horizontal direction of the farthest asked distance must fit in some room type */
    for (int deg = 0; deg <= 90; deg++) {
        double ex = need * cos(deg * M_PI / 180), ez = need * sin(deg * M_PI / 180);
        int fits = 0;
        for (uint32_t t = 0; t < cfg->n_rooms && !fits; t++)
            fits = cfg->rooms[t].weight > 0 && synth_room_fits(cfg, cfg->rooms[t].size_max, ex, ez);
        if (fits) continue;
        uint32_t big = 0;
        for (uint32_t t = 1; t < cfg->n_rooms; t++)
            if (cfg->rooms[t].size_max[0] * cfg->rooms[t].size_max[2] >
                cfg->rooms[big].size_max[0] * cfg->rooms[big].size_max[2])
                big = t;
        const synth_room_type *r = &cfg->rooms[big];
        return bp_error_set(
            err, BP_ERR_INVALID,
            "%s: room too small for the asked distance: geometry.distance_classes asks for class %d (up "
            "to %.2f m), but no room type holds a source that far at %d° from the x axis (%.2f m across, "
            "%.2f m deep, plus the %.2f m wall margins and %.1f m of slack); the largest is '%s', up to "
            "%.2f × %.2f × %.2f m: add a larger room type or drop the far classes",
            r->where, (int)max_class, need, deg, ex, ez, cfg->wall_margin, slack, r->name, r->size_max[0],
            r->size_max[1], r->size_max[2]);
    }
    return BP_OK;
}
