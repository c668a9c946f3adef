/* ism_binaural — room acoustics formulas (see ism_acoustics.h). */
#include "ism_acoustics.h"

#include <math.h>

double ism_speed_of_sound(double temp_c) { return 331.3 * sqrt(1.0 + temp_c / 273.15); }

double ism_air_absorption_db(double f_hz, double temp_c, double rh) {
    const double t0 = 293.15;  /* reference temperature, K */
    const double t01 = 273.16; /* triple-point isotherm, K */
    double t = temp_c + 273.15;
    double csat = -6.8346 * pow(t01 / t, 1.261) + 4.6151;
    double h = rh * pow(10.0, csat); /* molar concentration of water vapour, % (p = pr) */
    double fr_o = 24.0 + 4.04e4 * h * (0.02 + h) / (0.391 + h);
    double fr_n = pow(t / t0, -0.5) * (9.0 + 280.0 * h * exp(-4.170 * (pow(t / t0, -1.0 / 3.0) - 1.0)));
    double f2 = f_hz * f_hz;
    return 8.686 * f2 *
           (1.84e-11 * sqrt(t / t0) + pow(t / t0, -2.5) * (0.01275 * exp(-2239.1 / t) / (fr_o + f2 / fr_o) +
                                                           0.1068 * exp(-3352.0 / t) / (fr_n + f2 / fr_n)));
}

double ism_air_energy_coeff(double f_hz, double temp_c, double rh) {
    return ism_air_absorption_db(f_hz, temp_c, rh) / (10.0 * log10(exp(1.0)));
}

void ism_absorption_at_bands(const bp_sim_room *room, const double *hz, int32_t nb, double out[6][ISM_MAX_BANDS]) {
    int32_t rn = room->n_bands;
    for (int32_t b = 0; b < nb; b++) {
        /* position of hz[b] among the room's bands, in log-frequency */
        int32_t lo = 0, hi = 0;
        double w = 0.0;
        if (hz[b] <= room->band_hz[0]) {
            lo = hi = 0;
        } else if (hz[b] >= room->band_hz[rn - 1]) {
            lo = hi = rn - 1;
        } else {
            while (lo + 1 < rn && room->band_hz[lo + 1] <= hz[b]) lo++;
            hi = lo + 1 < rn ? lo + 1 : lo;
            if (hi != lo) w = log(hz[b] / room->band_hz[lo]) / log(room->band_hz[hi] / room->band_hz[lo]);
        }
        for (int32_t wall = 0; wall < 6; wall++)
            out[wall][b] = (1.0 - w) * room->absorption[wall][lo] + w * room->absorption[wall][hi];
    }
}

void ism_room_acoustics_compute(const double size[3], const double alpha[6][ISM_MAX_BANDS], const double *air_m,
                                int32_t nb, double c, ism_room_acoustics *out) {
    const double lx = size[0], ly = size[1], lz = size[2];
    const double area[6] = {ly * lz, ly * lz, lx * lz, lx * lz, lx * ly, lx * ly};
    const double k60 = 24.0 * log(10.0); /* T60 = k60·V / (c·A) */
    out->volume = lx * ly * lz;
    out->surface = 2.0 * (lx * ly + ly * lz + lx * lz);
    for (int32_t b = 0; b < nb; b++) {
        double sa = 0.0;
        for (int32_t w = 0; w < 6; w++) sa += area[w] * alpha[w][b];
        double mean = sa / out->surface;
        double air = 4.0 * air_m[b] * out->volume;
        out->mean_alpha[b] = mean;
        double a_sab = sa + air;
        out->sabine[b] = a_sab > 0.0 ? fmin(k60 * out->volume / (c * a_sab), ISM_T60_MAX) : ISM_T60_MAX;
        if (mean >= 1.0) {
            out->eyring[b] = 0.0;
            out->decay[b] = INFINITY;
        } else {
            double a_ey = -out->surface * log1p(-mean) + air;
            out->eyring[b] = a_ey > 0.0 ? fmin(k60 * out->volume / (c * a_ey), ISM_T60_MAX) : ISM_T60_MAX;
            out->decay[b] = c * a_ey / (4.0 * out->volume);
        }
    }
}
