#!/usr/bin/env bash
# Binaural room responses per second: ism_binaural (bench_sim) next to
# pyroomacoustics (sim_pyroomacoustics.py) on the same requests, 1 and 2
# workers, and the ratio.
#
#   bench/run_sim_bench.sh [BUILD_DIR]        (default: build)
#
# Two settings:
#   default  ism_binaural as `batpipe synth` uses it: image sources up to
#            80 ms, every order, plus the diffuse tail (pyroomacoustics has
#            no equivalent; not compared)
#   equal    both sides: every image source up to order $BP_BENCH_ORDER,
#            no tail, 7 octave bands, air absorption, the nearest MIT KEMAR
#            HRIR per image, 2 s at 32 kHz (see sim_pyroomacoustics.py for
#            what is and is not equal)
#
# Environment:
#   BP_BENCH_PYTHON    Python with pyroomacoustics + python-sofa (default
#                      /opt/bpbench/bin/python if it has them, else python3);
#                      without it only the C figures are printed
#   BP_BENCH_N         responses per C measurement (default 400)
#   BP_BENCH_PRA_N     responses per pyroomacoustics measurement (default 16)
#   BP_BENCH_ORDER     max_order of the equal setting (default 10)
#   BP_BENCH_THREADS   worker counts (default 1,2)
# Best run on an otherwise idle machine: with other load the 2-worker figures
# fall.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
n=${BP_BENCH_N:-400}
pra_n=${BP_BENCH_PRA_N:-16}
order=${BP_BENCH_ORDER:-10}
threads=${BP_BENCH_THREADS:-1,2}

bin=$build/bin/bench_sim
if [ ! -x "$bin" ]; then
    echo "building bench_sim in $build" >&2
    cmake --build "$build" --target bench_sim bp_plugin_ism_binaural -j2 >&2
fi

py=${BP_BENCH_PYTHON:-}
if [ -z "$py" ]; then
    for cand in /opt/bpbench/bin/python python3; do
        if command -v "$cand" > /dev/null && "$cand" -c 'import pyroomacoustics, sofa' 2> /dev/null; then
            py=$cand
            break
        fi
    done
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" -n "$n" --dump "$tmp/jobs.csv"

field() { # field NAME LINE
    sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<< "$2"
}

echo "== ism_binaural, default settings (80 ms of image sources + diffuse tail, 2 s at 32 kHz) =="
"$bin" -t "$threads" -n "$n" | tee "$tmp/default.txt"
echo
echo "== equal settings: every image up to order $order, no tail, 7 bands, air, nearest KEMAR HRIR per image =="
"$bin" -t "$threads" -n "$n" -p max_order="$order" -p tail=false -p max_time_s=2.0 | tee "$tmp/equal.txt"
if [ -z "$py" ]; then
    echo "(pyroomacoustics + python-sofa not found: set BP_BENCH_PYTHON; pip install pyroomacoustics python-sofa)"
    exit 0
fi
"$py" "$here/sim_pyroomacoustics.py" "$tmp/jobs.csv" -n "$pra_n" --order "$order" -p "$threads" 2> "$tmp/pra.err" |
    tee "$tmp/pra.txt" || { cat "$tmp/pra.err" >&2; exit 1; }
echo
printf '%-8s %22s %22s %8s\n' workers "ism_binaural resp/s" "pyroomacoustics resp/s" ratio
IFS=, read -ra counts <<< "$threads"
for t in "${counts[@]}"; do
    c=$(grep "threads=$t " "$tmp/equal.txt" || true)
    p=$(grep "processes=$t " "$tmp/pra.txt" || true)
    [ -n "$c" ] && [ -n "$p" ] || continue
    rc=$(field responses_per_s "$c")
    rp=$(field responses_per_s "$p")
    printf '%-8s %22s %22s %7.0fx\n' "$t" "$rc" "$rp" "$(awk -v a="$rc" -v b="$rp" 'BEGIN { print a / b }')"
done
