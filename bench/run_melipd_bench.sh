#!/usr/bin/env bash
# Compare the melipd frontend (C plugin, bench_melipd) with the same
# computation in PyTorch (melipd_torch.py) on 10 s binaural clips, 1 and 2
# threads, and print a side-by-side table.
#
#   bench/run_melipd_bench.sh [BUILD_DIR]        (default: build)
#
# Environment:
#   BP_TORCH_PYTHON   Python with torch + numpy (e.g. /opt/bpbench/bin/python);
#                     otherwise python3 if it has torch, otherwise a venv is
#                     created in $BP_BENCH_VENV (default .venv-bench in the repository)
#                     with torch and numpy from PyPI.
#   BP_BENCH_SECONDS  timed seconds per measurement (default 3)
#   BP_BENCH_THREADS  thread counts (default 1,2)
#   BP_BENCH_ROUNDS   rounds, alternating C and PyTorch (default 3); each
#                     figure is the best of the rounds, so that a burst of
#                     other load on the machine hits both sides alike
# Best run on an otherwise idle machine: multi-threaded timings collapse
# when other processes compete for the cores.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
seconds=${BP_BENCH_SECONDS:-3}
rounds=${BP_BENCH_ROUNDS:-3}
threads=${BP_BENCH_THREADS:-1,2}

bin=$build/bin/bench_melipd
if [ ! -x "$bin" ]; then
    echo "building bench_melipd in $build" >&2
    cmake --build "$build" --target bench_melipd bp_plugin_melipd -j2 >&2
fi

py=${BP_TORCH_PYTHON:-}
if [ -z "$py" ]; then
    if python3 -c 'import torch, numpy' 2>/dev/null; then
        py=python3
    else
        venv=${BP_BENCH_VENV:-$root/.venv-bench}
        if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch, numpy' 2>/dev/null; then
            echo "creating $venv with torch and numpy" >&2
            python3 -m venv "$venv"
            "$venv/bin/pip" install --quiet torch numpy
        fi
        py=$venv/bin/python
    fi
fi

c_out=""
t_out=""
for r in $(seq 1 "$rounds"); do
    c=$(BATPIPE_PLUGIN_PATH=${BATPIPE_PLUGIN_PATH:-$build/lib/batpipe/plugins} "$bin" -t "$threads" -s "$seconds")
    t=$("$py" "$here/melipd_torch.py" --threads "$threads" --seconds "$seconds")
    echo "round $r:"
    echo "$c"
    echo "$t"
    c_out+="$c"$'\n'
    t_out+="$t"$'\n'
done
echo
# best value of FIELD over the lines matching PATTERN (max for rates, min for times)
field() {
    echo "$1" | grep -E "$2" | tr ' ' '\n' | sed -n "s/^$3=//p" |
        awk -v f="$3" 'NR == 1 || (f == "clips_per_s" ? $1 > b : $1 < b) { b = $1 } END { print b }'
}
# Per thread count: the wall-clock average (clips/s) and the median time of
# one clip of each side; the ratio is given for both. For PyTorch the faster
# of its two formulations is used.
printf '%-7s | %10s %10s | %10s %10s | %12s %12s\n' threads "C clips/s" "C median" "pt clips/s" "pt median" \
    "ratio (avg)" "ratio (med)"
for n in ${threads//,/ }; do
    c=$(field "$c_out" "threads=$n " clips_per_s)
    cmed=$(field "$c_out" "threads=$n " median_ms)
    tl=$(field "$t_out" "variant=literal threads=$n " clips_per_s)
    tp=$(field "$t_out" "variant=phasor threads=$n " clips_per_s)
    t=$(awk -v a="$tl" -v b="$tp" 'BEGIN { print (a > b) ? a : b }')
    ml=$(field "$t_out" "variant=literal threads=$n " median_ms)
    mp=$(field "$t_out" "variant=phasor threads=$n " median_ms)
    tmed=$(awk -v a="$ml" -v b="$mp" 'BEGIN { print (a < b) ? a : b }')
    ravg=$(awk -v c="$c" -v t="$t" 'BEGIN { printf "%.1fx", c / t }')
    rmed=$(awk -v c="$cmed" -v t="$tmed" 'BEGIN { printf "%.1fx", t / c }')
    printf '%-7s | %10s %8s ms | %10s %8s ms | %12s %12s\n' "$n" "$c" "$cmed" "$t" "$tmed" "$ravg" "$rmed"
done
