#!/usr/bin/env python3
"""Time pyroomacoustics on the requests of bench_sim (bench_sim --dump FILE).

Equal settings with `bench_sim -p max_order=N -p tail=false -p max_time_s=2.0`:
the same shoebox rooms, source and listener positions (Habitat frame mapped to
pyroomacoustics' z-up frame by a rotation), the same per-wall absorption in
the same 7 octave bands (125 Hz - 8 kHz), air absorption on (20 degC, 50 %),
every image source up to the same order N, 32 kHz, each image through the
nearest measured HRIR of the same SOFA file (MIT KEMAR, normal pinna;
MeasuredDirectivityFile without interpolation, i.e. nearest neighbour), 2 s
responses (pyroomacoustics' are padded or cut to 2 s).

Not equal: pyroomacoustics renders each image as HRIR (x) 81-tap fractional-delay
sinc (x) minimum-phase octave filter and sums; ism_binaural accumulates per
band with precomputed fractional-delay HRIR phases and filters the bands once
by FFT. pyroomacoustics resamples the HRIRs with its own resampler, has no
time limit on the images, and its RIR starts at its own time origin (a 40-sample
offset). No late tail on either side.

Prints:  pyroomacoustics processes=P responses=K seconds=S responses_per_s=R ms_per_response=M
"""
import argparse
import csv
import multiprocessing as mp
import time

import numpy as np

BANDS = [125, 250, 500, 1000, 2000, 4000, 8000]
# Habitat walls 0..5 = x-, x+, y- (floor), y+ (ceiling), z-, z+; pyroomacoustics (x, Lz - z, y) frame:
WALL_NAMES = ["west", "east", "floor", "ceiling", "north", "south"]

_ctx = {}


def load_jobs(path, n):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows[:n] if n else rows


def setup(hrtf, fs):
    from pyroomacoustics.directivities import MeasuredDirectivityFile, Rotation3D

    sofa = MeasuredDirectivityFile(path=hrtf, fs=fs, interp_order=None)
    # head frame (x front, y left, z up) -> room frame: front is +y, left is -x: 90 deg about z
    rot = Rotation3D([90.0], "z", degrees=True)
    _ctx["ears"] = (sofa.get_mic_directivity(0, orientation=rot), sofa.get_mic_directivity(1, orientation=rot))
    _ctx["fs"] = fs


def render(job, order):
    import pyroomacoustics as pra

    fs = _ctx["fs"]
    lx, ly, lz = float(job["lx"]), float(job["ly"]), float(job["lz"])

    def to_pra(x, y, z):
        return [x, lz - z, y]

    materials = {}
    for w, name in enumerate(WALL_NAMES):
        coeffs = [float(job[f"a{w}_{b}"]) for b in BANDS]
        materials[name] = pra.Material({"coeffs": coeffs, "center_freqs": BANDS})
    room = pra.ShoeBox(
        [lx, lz, ly],
        fs=fs,
        materials=materials,
        max_order=order,
        air_absorption=True,
        temperature=float(job["temperature_c"]),
        humidity=float(job["humidity"]),
    )
    room.add_source(to_pra(float(job["sx"]), float(job["sy"]), float(job["sz"])))
    mic = np.array(to_pra(float(job["rx"]), float(job["ry"]), float(job["rz"])))
    left, right = _ctx["ears"]
    room.add_microphone(mic, directivity=left)
    room.add_microphone(mic, directivity=right)
    room.compute_rir()
    n = int(round(float(job["seconds"]) * fs))
    out = np.zeros((2, n), dtype=np.float32)
    for ear in range(2):
        h = np.asarray(room.rir[ear][0], dtype=np.float32)[:n]
        out[ear, : len(h)] = h
    return out


def _work(args):
    job, order = args
    t0 = time.perf_counter()
    render(job, order)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jobs", help="CSV written by bench_sim --dump")
    ap.add_argument("-n", type=int, default=16, help="responses to time (default 16)")
    ap.add_argument("--order", type=int, default=10, help="max_order (default 10)")
    ap.add_argument("--fs", type=int, default=32000)
    ap.add_argument("--hrtf", default="/usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa")
    ap.add_argument("-p", "--processes", default="1,2", help="process counts (default 1,2)")
    args = ap.parse_args()
    jobs = load_jobs(args.jobs, args.n)
    setup(args.hrtf, args.fs)
    render(jobs[0], args.order)  # warm-up (imports, caches)
    for procs in [int(p) for p in args.processes.split(",")]:
        work = [(j, args.order) for j in jobs]
        t0 = time.perf_counter()
        if procs == 1:
            times = [_work(w) for w in work]
        else:
            with mp.get_context("fork").Pool(procs) as pool:
                times = pool.map(_work, work, chunksize=1)
        secs = time.perf_counter() - t0
        print(
            f"pyroomacoustics processes={procs} responses={len(jobs)} seconds={secs:.3f} "
            f"responses_per_s={len(jobs) / secs:.2f} ms_per_response={1e3 * secs / len(jobs):.1f} "
            f"median_ms={1e3 * float(np.median(times)):.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
