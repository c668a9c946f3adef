/* batpipe — room simulators (kind "batpipe.simulator/1"): geometry → binaural
 * room impulse response.
 *
 * Coordinates are the Habitat frame BAT uses: +x right, +y up, −z front of
 * the listener; metres. The RIR buffer is owned by the simulator and valid
 * until the next `render` or `destroy`. One thread at a time per instance. */
#ifndef BATPIPE_SIMULATOR_H
#define BATPIPE_SIMULATOR_H

#include <stdint.h>

#include "error.h"
#include "tensor.h"

BP_EXTERN_C_BEGIN

#define BP_SIM_MAX_BANDS 10

/* A shoebox room: walls 0..5 = x−, x+, y− (floor), y+ (ceiling), z−, z+. */
typedef struct bp_sim_room {
    uint32_t struct_size;                    /* sizeof(bp_sim_room) */
    double size[3];                          /* extent along x, y, z; the room spans [0, size] */
    int32_t n_bands;                         /* octave bands used below (≤ BP_SIM_MAX_BANDS) */
    double band_hz[BP_SIM_MAX_BANDS];        /* centre frequencies */
    double absorption[6][BP_SIM_MAX_BANDS];  /* energy absorption per wall and band, 0..1 */
    double scattering[BP_SIM_MAX_BANDS];     /* 0..1, may be ignored */
    double temperature_c;                    /* for the speed of sound and air absorption */
    double humidity;                         /* relative, 0..100 */
} bp_sim_room;

typedef struct bp_sim_request {
    uint32_t struct_size;  /* sizeof(bp_sim_request) */
    const bp_sim_room *room;
    double source[3];      /* position, inside the room */
    double listener[3];    /* head centre, facing −z */
    double sample_rate;    /* Hz */
    double max_seconds;    /* length of the response */
    uint64_t seed;         /* for any randomness (diffuse tail): same seed → same bytes */
} bp_sim_request;

typedef struct bp_simulator bp_simulator;

struct bp_simulator {
    uint32_t struct_size; /* sizeof(bp_simulator) as compiled by the plugin */
    void *self;

    /* Render one binaural response: *rir → host F32 [2, n] (left, right). */
    bp_status (*render)(bp_simulator *sim, const bp_sim_request *req, const bp_tensor **rir, bp_error *err);
    /* Optional: measured quantities of the last render (e.g. "rt60_500hz"),
     * up to cap; *n set to the count. */
    bp_status (*last_stats)(bp_simulator *sim, const char **names, double *values, uint32_t cap, uint32_t *n,
                            bp_error *err);
    void (*destroy)(bp_simulator *sim);
};

BP_EXTERN_C_END

#endif /* BATPIPE_SIMULATOR_H */
