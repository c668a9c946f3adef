/* ism_binaural — checking a render request and deriving its scene. */
#ifndef ISM_REQUEST_H
#define ISM_REQUEST_H

#include <stdint.h>

#include "batpipe/simulator.h"
#include "ism_bands.h"
#include "ism_scene.h"

#define ISM_WALL_CLEARANCE 0.1 /* m: source and listener keep at least this from every wall */
#define ISM_MIN_DISTANCE 0.1   /* m: source to head centre */
#define ISM_MAX_SECONDS 60.0   /* longest response */
#define ISM_MAX_ROOM 1000.0    /* m: longest room side */

typedef struct ism_request_opts {
    double fs;              /* the plugin's sample rate */
    double max_time;        /* max_time_s */
    int32_t air_absorption; /* bool */
} ism_request_opts;

/* Validate `req` (BP_ERR_INVALID for bad values, naming them; BP_ERR_SPEC for
 * a sample rate other than the plugin's) and fill `sc` and the response
 * length *n. */
bp_status ism_request_scene(const bp_sim_request *req, const ism_bands *bands, const ism_request_opts *opts,
                            ism_scene *sc, int64_t *n, bp_error *err);

#endif /* ISM_REQUEST_H */
