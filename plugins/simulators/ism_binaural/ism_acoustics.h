/* ism_binaural — room acoustics formulas: speed of sound, ISO 9613-1 air
 * absorption, absorption per plugin band, Sabine and Eyring decay. */
#ifndef ISM_ACOUSTICS_H
#define ISM_ACOUSTICS_H

#include <stdint.h>

#include "batpipe/simulator.h"

#define ISM_MAX_BANDS BP_SIM_MAX_BANDS
#define ISM_T60_MAX 1.0e6 /* reported instead of an infinite T60 (no absorption at all) */

/* c = 331.3·sqrt(1 + θ/273.15) m/s, θ in °C. */
double ism_speed_of_sound(double temp_c);

/* Pure-tone air absorption of ISO 9613-1:1993 (eq. 3–5) at 101.325 kPa, in dB
 * per metre; rh is the relative humidity in percent. */
double ism_air_absorption_db(double f_hz, double temp_c, double rh);

/* The same as an energy attenuation coefficient m in 1/m (intensity ∝ e^(−m·d)). */
double ism_air_energy_coeff(double f_hz, double temp_c, double rh);

/* Energy absorption of each wall at the plugin's band centres `hz[nb]`,
 * interpolated linearly in log-frequency between the room's bands and held
 * constant beyond its first and last band. */
void ism_absorption_at_bands(const bp_sim_room *room, const double *hz, int32_t nb, double out[6][ISM_MAX_BANDS]);

typedef struct ism_room_acoustics {
    double volume;                    /* m³ */
    double surface;                   /* m² */
    double mean_alpha[ISM_MAX_BANDS]; /* area-weighted mean energy absorption */
    double sabine[ISM_MAX_BANDS];     /* T60, s (walls + air) */
    double eyring[ISM_MAX_BANDS];     /* T60, s (walls + air) */
    double decay[ISM_MAX_BANDS];      /* Eyring energy decay rate k (energy ∝ e^(−k·t)), 1/s */
} ism_room_acoustics;

/* Sabine T60 = 24·ln10·V / (c·(Σ S·α + 4·m·V)); Eyring replaces Σ S·α by
 * −S·ln(1 − ᾱ). air_m may hold zeros (no air absorption). */
void ism_room_acoustics_compute(const double size[3], const double alpha[6][ISM_MAX_BANDS], const double *air_m,
                                int32_t nb, double c, ism_room_acoustics *out);

#endif /* ISM_ACOUSTICS_H */
