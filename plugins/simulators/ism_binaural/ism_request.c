/* ism_binaural — checking a render request (see ism_request.h). */
#include "ism_request.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

static const char *const wall_names[6] = {"x-", "x+", "y- (floor)", "y+ (ceiling)", "z-", "z+"};
static const char *const axis_names[3] = {"x", "y", "z"};

static bp_status check_finite(double v, const char *what, bp_error *err) {
    if (!isfinite(v))
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: request: %s is %g, not a finite number", what, v);
    return BP_OK;
}

static bp_status check_room(const bp_sim_room *room, bp_error *err) {
    char what[64];
    if (room->struct_size < sizeof(bp_sim_room))
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: request: room.struct_size %u is smaller than %zu",
                            (unsigned)room->struct_size, sizeof(bp_sim_room));
    for (int a = 0; a < 3; a++) {
        snprintf(what, sizeof what, "room.size[%d] (%s)", a, axis_names[a]);
        if (check_finite(room->size[a], what, err)) return BP_ERR_INVALID;
        if (!(room->size[a] > 2.0 * ISM_WALL_CLEARANCE) || room->size[a] > ISM_MAX_ROOM)
            return bp_error_set(err, BP_ERR_INVALID,
                                "ism_binaural: request: room size along %s is %g m (allowed: %g to %g m)",
                                axis_names[a], room->size[a], 2.0 * ISM_WALL_CLEARANCE, ISM_MAX_ROOM);
    }
    if (room->n_bands < 1 || room->n_bands > BP_SIM_MAX_BANDS)
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: request: room.n_bands = %d (allowed 1 to %d)",
                            (int)room->n_bands, BP_SIM_MAX_BANDS);
    for (int b = 0; b < room->n_bands; b++) {
        snprintf(what, sizeof what, "room.band_hz[%d]", b);
        if (check_finite(room->band_hz[b], what, err)) return BP_ERR_INVALID;
        if (!(room->band_hz[b] > 0.0) || (b > 0 && !(room->band_hz[b] > room->band_hz[b - 1])))
            return bp_error_set(err, BP_ERR_INVALID,
                                "ism_binaural: request: room.band_hz must be positive and ascending (band %d is %g Hz)",
                                b, room->band_hz[b]);
        for (int w = 0; w < 6; w++) {
            snprintf(what, sizeof what, "room.absorption[%d][%d]", w, b);
            if (check_finite(room->absorption[w][b], what, err)) return BP_ERR_INVALID;
            if (room->absorption[w][b] < 0.0 || room->absorption[w][b] > 1.0)
                return bp_error_set(err, BP_ERR_INVALID,
                                    "ism_binaural: request: absorption of wall %d (%s) at %g Hz is %g, not in [0, 1]",
                                    w, wall_names[w], room->band_hz[b], room->absorption[w][b]);
        }
        snprintf(what, sizeof what, "room.scattering[%d]", b);
        if (check_finite(room->scattering[b], what, err)) return BP_ERR_INVALID;
        if (room->scattering[b] < 0.0 || room->scattering[b] > 1.0)
            return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: request: scattering at %g Hz is %g, not in [0, 1]",
                                room->band_hz[b], room->scattering[b]);
    }
    if (check_finite(room->temperature_c, "room.temperature_c", err)) return BP_ERR_INVALID;
    if (room->temperature_c < -50.0 || room->temperature_c > 60.0)
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: request: temperature %g °C is outside [-50, 60]",
                            room->temperature_c);
    if (check_finite(room->humidity, "room.humidity", err)) return BP_ERR_INVALID;
    if (room->humidity < 0.0 || room->humidity > 100.0)
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: request: relative humidity %g %% is outside [0, 100]",
                            room->humidity);
    return BP_OK;
}

static bp_status check_position(const bp_sim_room *room, const double p[3], const char *who, bp_error *err) {
    char what[64];
    for (int a = 0; a < 3; a++) {
        snprintf(what, sizeof what, "%s[%d] (%s)", who, a, axis_names[a]);
        if (check_finite(p[a], what, err)) return BP_ERR_INVALID;
    }
    for (int a = 0; a < 3; a++) {
        double lo = p[a], hi = room->size[a] - p[a];
        if (lo < ISM_WALL_CLEARANCE || hi < ISM_WALL_CLEARANCE)
            return bp_error_set(err, BP_ERR_INVALID,
                                "ism_binaural: request: %s at (%g, %g, %g) m is %s the %gx%gx%g m room or closer than "
                                "%g m to a wall (%s = %g m, allowed %g to %g m)",
                                who, p[0], p[1], p[2], (lo < 0.0 || hi < 0.0) ? "outside" : "inside", room->size[0],
                                room->size[1], room->size[2], ISM_WALL_CLEARANCE, axis_names[a], p[a],
                                ISM_WALL_CLEARANCE, room->size[a] - ISM_WALL_CLEARANCE);
    }
    return BP_OK;
}

bp_status ism_request_scene(const bp_sim_request *req, const ism_bands *bands, const ism_request_opts *opts,
                            ism_scene *sc, int64_t *n, bp_error *err) {
    memset(sc, 0, sizeof *sc);
    if (!req) return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: request is NULL");
    if (req->struct_size < sizeof(bp_sim_request))
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: request.struct_size %u is smaller than %zu",
                            (unsigned)req->struct_size, sizeof(bp_sim_request));
    if (!req->room) return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: request.room is NULL");
    const bp_sim_room *room = req->room;
    if (check_room(room, err)) return BP_ERR_INVALID;
    if (check_position(room, req->source, "source", err)) return BP_ERR_INVALID;
    if (check_position(room, req->listener, "listener", err)) return BP_ERR_INVALID;
    if (check_finite(req->sample_rate, "sample_rate", err)) return BP_ERR_INVALID;
    if (check_finite(req->max_seconds, "max_seconds", err)) return BP_ERR_INVALID;
    if (fabs(req->sample_rate - opts->fs) > 1e-6)
        return bp_error_set(err, BP_ERR_SPEC,
                            "ism_binaural: request sample_rate %g Hz differs from the simulator's sample_rate %g Hz "
                            "(set the parameter to the rate you render at)",
                            req->sample_rate, opts->fs);
    if (!(req->max_seconds > 0.0) || req->max_seconds > ISM_MAX_SECONDS)
        return bp_error_set(err, BP_ERR_INVALID, "ism_binaural: request: max_seconds %g is outside (0, %g]",
                            req->max_seconds, ISM_MAX_SECONDS);
    double d2 = 0.0;
    for (int a = 0; a < 3; a++) d2 += (req->source[a] - req->listener[a]) * (req->source[a] - req->listener[a]);
    double d = sqrt(d2);
    if (d < ISM_MIN_DISTANCE)
        return bp_error_set(
            err, BP_ERR_INVALID,
            "ism_binaural: request: source (%g, %g, %g) is %g m from the listener (%g, %g, %g); at least "
            "%g m needed",
            req->source[0], req->source[1], req->source[2], d, req->listener[0], req->listener[1], req->listener[2],
            ISM_MIN_DISTANCE);
    for (int a = 0; a < 3; a++) {
        sc->size[a] = room->size[a];
        sc->source[a] = req->source[a];
        sc->listener[a] = req->listener[a];
    }
    sc->fs = opts->fs;
    sc->c = ism_speed_of_sound(room->temperature_c);
    if (d / sc->c >= opts->max_time)
        return bp_error_set(
            err, BP_ERR_INVALID,
            "ism_binaural: request: the direct path (%g m, %g s) arrives after max_time_s = %g s; raise "
            "max_time_s",
            d, d / sc->c, opts->max_time);
    sc->n_bands = bands->n;
    double alpha[6][ISM_MAX_BANDS];
    ism_absorption_at_bands(room, bands->hz, bands->n, alpha);
    for (int w = 0; w < 6; w++)
        for (int b = 0; b < bands->n; b++) sc->beta[w][b] = sqrt(fmax(0.0, 1.0 - alpha[w][b]));
    for (int b = 0; b < bands->n; b++)
        sc->air_m[b] =
            opts->air_absorption ? ism_air_energy_coeff(bands->hz[b], room->temperature_c, room->humidity) : 0.0;
    ism_room_acoustics_compute(sc->size, (const double(*)[ISM_MAX_BANDS])alpha, sc->air_m, bands->n, sc->c,
                               &sc->acoustics);
    double samples = floor(req->max_seconds * opts->fs + 0.5);
    *n = samples < 1.0 ? 1 : (int64_t)samples;
    return BP_OK;
}
