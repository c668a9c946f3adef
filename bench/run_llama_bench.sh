#!/usr/bin/env bash
# Prefill and decode tokens/s of the llama plugin (bench_llama) next to
# llama.cpp through llama-cpp-python (llama_cpp_bench.py), on the same GGUF
# files and thread counts: SmolLM2-135M-Instruct Q4_1 and its F16
# conversion (made here once with gguf_to_f16.py, gguf-py).
#
#   bench/run_llama_bench.sh [BUILD_DIR]        (default: build)
#
# Environment:
#   BP_LLAMA_MODEL    the Q4_1 GGUF (default models/SmolLM2-135M-Instruct.Q4_1.gguf;
#                     scripts/fetch-model.sh puts it there)
#   BP_BENCH_PYTHON   Python with llama_cpp, numpy and gguf (default /opt/bpbench/bin/python)
#   BP_BENCH_THREADS  thread counts (default 1,2)
#   BP_BENCH_PROMPT   prompt tokens (default 128)
#   BP_BENCH_GEN      generated tokens (default 64)
#   BP_BENCH_PRECISION  the llama plugin's precision: fast (default) or exact
#   BP_BENCH_ROUNDS   rounds, alternating batpipe and llama.cpp (default 3); each
#                     figure is the best over rounds (and over the 3 repetitions
#                     inside a round), so that bursts of other load hit both alike
# Output: one line per (model, threads) with both sides and the ratio.
# Run it on an otherwise idle machine: timings of 2 threads collapse when
# other processes compete for the cores (both implementations spin-wait
# between steps).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
model=${BP_LLAMA_MODEL:-$root/models/SmolLM2-135M-Instruct.Q4_1.gguf}
py=${BP_BENCH_PYTHON:-/opt/bpbench/bin/python}
threads=${BP_BENCH_THREADS:-1,2}
prompt=${BP_BENCH_PROMPT:-128}
gen=${BP_BENCH_GEN:-64}
rounds=${BP_BENCH_ROUNDS:-3}
precision=${BP_BENCH_PRECISION:-fast}

[ -f "$model" ] || { echo "run_llama_bench.sh: $model not found (scripts/fetch-model.sh)" >&2; exit 1; }
"$py" -c 'import llama_cpp, gguf, numpy' || { echo "run_llama_bench.sh: $py lacks llama_cpp/gguf/numpy" >&2; exit 1; }
bin=$build/bin/bench_llama
if [ ! -x "$bin" ]; then
    cmake --build "$build" --target bench_llama bp_plugin_llama -j2 >&2
fi
f16=${model%.Q4_1.gguf}.F16.gguf
if [ ! -f "$f16" ]; then
    echo "converting $model to F16 ($f16)" >&2
    "$py" "$here/gguf_to_f16.py" "$model" "$f16"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "# $(date -u +%FT%TZ) $(uname -n), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# prompt $prompt tokens, $gen generated, best of $rounds rounds x 3"
for m in "$model" "$f16"; do
    for r in $(seq "$rounds"); do
        "$bin" "$m" -t "$threads" -p "$prompt" -n "$gen" -r 3 -P "$precision" >>"$tmp/bp.$(basename "$m")"
        "$py" "$here/llama_cpp_bench.py" "$m" -t "$threads" -p "$prompt" -n "$gen" -r 3 >>"$tmp/cpp.$(basename "$m")"
    done
done
# best figure per (file, threads, field)
best() { # file threads field
    grep " threads=$2 " "$1" | sed -n "s/.* $3=\([0-9.]*\).*/\1/p" | sort -g | tail -1
}
printf '%-34s %3s | %12s %12s %6s | %12s %12s %6s\n' model thr "prefill bp" "llama.cpp" ratio "decode bp" "llama.cpp" ratio
for m in "$model" "$f16"; do
    b=$tmp/bp.$(basename "$m")
    c=$tmp/cpp.$(basename "$m")
    for t in ${threads//,/ }; do
        bp_p=$(best "$b" "$t" prefill_tok_s); cp_p=$(best "$c" "$t" prefill_tok_s)
        bp_d=$(best "$b" "$t" decode_tok_s); cp_d=$(best "$c" "$t" decode_tok_s)
        printf '%-34s %3s | %12s %12s %6.2f | %12s %12s %6.2f\n' "$(basename "$m")" "$t" "$bp_p" "$cp_p" \
            "$(echo "$bp_p / $cp_p" | bc -l)" "$bp_d" "$cp_d" "$(echo "$bp_d / $cp_d" | bc -l)"
    done
    echo "  RSS after generation (MB): batpipe $(best "$b" 1 rss_gen_mb), llama.cpp $(best "$c" 1 rss_gen_mb);" \
         "load s: batpipe $(grep -o 'load_s=[0-9.]*' "$b" | cut -d= -f2 | sort -g | head -1)," \
         "llama.cpp $(grep -o 'load_s=[0-9.]*' "$c" | cut -d= -f2 | sort -g | head -1)"
done
