/* ism_binaural — one render's physical set-up, derived from a request. */
#ifndef ISM_SCENE_H
#define ISM_SCENE_H

#include <stdint.h>

#include "ism_acoustics.h"

typedef struct ism_scene {
    double size[3];                /* room extent, m (Habitat frame) */
    double source[3], listener[3]; /* m */
    double fs;                     /* Hz */
    double c;                      /* speed of sound, m/s */
    int32_t n_bands;               /* the plugin's bands */
    double beta[6][ISM_MAX_BANDS]; /* pressure reflection factor √(1 − α) per wall and band */
    double air_m[ISM_MAX_BANDS];   /* air absorption, energy coefficient in 1/m (0 = off) */
    ism_room_acoustics acoustics;  /* volume, surface, Sabine / Eyring, decay rates */
} ism_scene;

#endif /* ISM_SCENE_H */
