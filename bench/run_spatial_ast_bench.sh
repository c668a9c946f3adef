#!/usr/bin/env bash
# Spatial-AST: the spatial_ast encoder plugin (C, cpu backend; bench_spatial_ast)
# against the same model in PyTorch (spatial_ast_torch.py), same weights, same
# machine, same thread count. Prints a side-by-side table: ms per full-size
# evaluation forward of 10 s clips at batch 1 and 8, ms per training step of
# the mini config (batch 8), the speed-up (PyTorch time / C time), GFLOP/s
# and % of the machine's measured FP32 peak (bench_matmul's FMA-chain figure
# for the same thread count). The front end (melipd) is not part of it: the
# features are random.
#
#   bench/run_spatial_ast_bench.sh [BUILD_DIR]        (default: build-bench)
#
# Steps: build the C side if needed; export random weights (official key
# names) once with spatial_ast_torch.py; check that both sides agree (full
# forward at batch 2, one mini training step with every gradient and the
# AdamW update; prints the max differences, stops on a mismatch); measure the
# peak; then, per round, for each measurement and thread count, run C and
# PyTorch back to back (the order alternates between rounds) so that other
# load on the machine hits both alike. Each figure is the median over the
# timed iterations; with several rounds the best median counts.
#
# Environment:
#   BP_TORCH_PYTHON   Python with torch, numpy, safetensors
#                     (default /opt/bpbench/bin/python if present, else python3)
#   BP_BENCH_THREADS  thread counts (default 1,2)
#   BP_BENCH_ROUNDS   rounds (default 1)
#   BP_SAST_WHAT      measurements (default fwd1,fwd8,train)
#   BP_SAST_WARMUP / BP_SAST_ITERS   override the warm-up / timed iterations of
#                     every measurement (defaults: fwd1 2/5, fwd8 1/3, train 3/10)
#   BP_SAST_CHECK     0 skips the agreement check (default 1)
#   BP_SAST_BF16      0 skips the BF16 inference rows (default 1): the forwards
#                     again with the encoder's precision = "bf16" (C) and under
#                     torch.autocast(bfloat16) (PyTorch), in a second table
#   BP_SAST_WORKDIR   where the weights go (default: a temporary directory,
#                     removed at the end; ~360 MB)
# Takes about 4 minutes on 2 cores at the defaults (1 and 2 threads, 1 round).
# Run it on an otherwise idle machine: timings collapse when other processes
# compete for the cores.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$(cd "${1:-$root/build-bench}" && pwd)
threads=${BP_BENCH_THREADS:-1,2}
rounds=${BP_BENCH_ROUNDS:-1}
whats=${BP_SAST_WHAT:-fwd1,fwd8,train}

bin=$build/bin/bench_spatial_ast
if [ ! -x "$bin" ] || [ ! -x "$build/bin/bench_matmul" ]; then
    echo "building bench_spatial_ast and bench_matmul in $build" >&2
    cmake --build "$build" --target bench_spatial_ast bench_matmul bp_plugin_spatial_ast bp_plugin_cpu -j2 >&2
fi
export BATPIPE_PLUGIN_PATH=${BATPIPE_PLUGIN_PATH:-$build/lib/batpipe/plugins}

py=${BP_TORCH_PYTHON:-}
if [ -z "$py" ]; then
    if [ -x /opt/bpbench/bin/python ]; then py=/opt/bpbench/bin/python; else py=python3; fi
fi
"$py" -c 'import torch, numpy, safetensors' || {
    echo "run_spatial_ast_bench.sh: $py lacks torch, numpy or safetensors (set BP_TORCH_PYTHON)" >&2
    exit 1
}

if [ -n "${BP_SAST_WORKDIR:-}" ]; then
    work=$BP_SAST_WORKDIR
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/sast_bench.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
full=$work/spatial_ast_full.safetensors
mini=$work/spatial_ast_mini.safetensors
t_start=$(date +%s)

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//');" \
    "torch $("$py" -c 'import torch; print(torch.__version__)')"
if [ ! -s "$full" ] || [ ! -s "$mini" ]; then
    "$py" "$here/spatial_ast_torch.py" export --out-full "$full" --out-mini "$mini"
fi
wargs=(--weights "$full" --weights-mini "$mini")

first=${threads%%,*}
if [ "${BP_SAST_CHECK:-1}" != 0 ]; then
    echo "== agreement check (threads=$first)"
    "$bin" -t "$first" "${wargs[@]}" --check "$work/c_out.safetensors"
    "$py" "$here/spatial_ast_torch.py" check --threads "$first" "${wargs[@]}" --c-out "$work/c_out.safetensors"
    if [ "${BP_SAST_BF16:-1}" != 0 ]; then
        echo "== BF16 inference vs F32 (C, full size, batch 2)"
        "$bin" -t "$first" "${wargs[@]}" --precision bf16 --check "$work/c_out_bf16.safetensors" >/dev/null
        "$py" "$here/spatial_ast_torch.py" compare-bf16 --f32 "$work/c_out.safetensors" \
            --bf16 "$work/c_out_bf16.safetensors"
    fi
fi

echo "== measured peak (bench_matmul)"
declare -A peak peak16
for n in ${threads//,/ }; do
    line=$("$build/bin/bench_matmul" --threads "$n" --seconds 0.2 | grep '^measured peak')
    echo "threads=$n: $line"
    peak[$n]=$(echo "$line" | sed -n 's/.*avx2 \([0-9.]*\) GFLOP\/s, avx512 \([0-9.]*\) GFLOP\/s.*/\1 \2/p' |
        awk '{ print ($1 > $2) ? $1 : $2 }')
    peak16[$n]=$(echo "$line" | sed -n 's/.*bf16 [a-z0-9]* \([0-9.]*\) GFLOP\/s.*/\1/p')
    [ -n "${peak16[$n]}" ] || peak16[$n]=${peak[$n]}
done

iter_args=()
[ -n "${BP_SAST_WARMUP:-}" ] && iter_args+=(-w "$BP_SAST_WARMUP")
[ -n "${BP_SAST_ITERS:-}" ] && iter_args+=(-n "$BP_SAST_ITERS")
run_c() { "$bin" -t "$2" -m "$1" "${wargs[@]}" "${iter_args[@]}" "${@:3}" 2> >(grep -v '^bench_spatial_ast: backend' >&2); }
run_t() { "$py" "$here/spatial_ast_torch.py" bench --threads "$2" --what "$1" "${wargs[@]}" "${iter_args[@]}" "${@:3}"; }
bf16=${BP_SAST_BF16:-1}

echo "== timings"
out=""
for r in $(seq 1 "$rounds"); do
    for what in ${whats//,/ }; do
        for n in ${threads//,/ }; do
            if [ $((r % 2)) -eq 1 ]; then
                a=$(run_c "$what" "$n"); b=$(run_t "$what" "$n")
            else
                b=$(run_t "$what" "$n"); a=$(run_c "$what" "$n")
            fi
            echo "$a"
            echo "$b"
            out+="$a"$'\n'"$b"$'\n'
            if [ "$bf16" != 0 ] && [ "${what#fwd}" != "$what" ]; then
                a=$(run_c "$what" "$n" --precision bf16); b=$(run_t "$what" "$n" --bf16)
                echo "$a"
                echo "$b"
                out+="$a"$'\n'"$b"$'\n'
            fi
        done
    done
done

# best (lowest) median_ms over the rounds for impl/what/threads
get() {
    echo "$out" | grep "impl=$1 threads=$3 what=$2 " | tr ' ' '\n' | sed -n "s/^$4=//p" |
        awk 'NR == 1 || $1 < b { b = $1 } END { print b }'
}
gflop() { echo "$out" | grep "what=$1 " | head -1 | tr ' ' '\n' | sed -n 's/^gflop=//p'; }

echo
torch_version=$("$py" -c 'import torch; print(torch.__version__)')
echo "Spatial-AST on the cpu backend vs PyTorch $torch_version, same weights and threads;"
echo "ms = median of the timed iterations (best of $rounds round(s)); speed-up = PyTorch ms / C ms;"
echo "GFLOP/s from the matmul/conv FLOP count (bench_spatial_ast.c); % of the measured FP32 FMA peak."
printf '%-6s %3s %9s | %10s %9s %7s | %10s %9s %7s | %8s\n' what thr "GFLOP" "C ms" "GFLOP/s" "% peak" \
    "torch ms" "GFLOP/s" "% peak" "speed-up"
for what in ${whats//,/ }; do
    g=$(gflop "$what")
    for n in ${threads//,/ }; do
        c=$(get c "$what" "$n" median_ms)
        t=$(get torch "$what" "$n" median_ms)
        awk -v w="$what" -v n="$n" -v g="$g" -v c="$c" -v t="$t" -v p="${peak[$n]}" 'BEGIN {
            cg = g / (c / 1e3); tg = g / (t / 1e3);
            printf "%-6s %3s %9.2f | %10.1f %9.1f %6.1f%% | %10.1f %9.1f %6.1f%% | %7.2fx\n",
                   w, n, g, c, cg, 100 * cg / p, t, tg, 100 * tg / p, t / c }'
    done
done
if [ "$bf16" != 0 ]; then
    echo
    echo "BF16 inference: C with the encoder's precision = \"bf16\" (linear layers in BF16, F32 accumulation;"
    echo "attention products, conv and norms F32) vs PyTorch F32 and vs PyTorch under torch.autocast(bfloat16);"
    echo "% of the measured BF16 dot-product peak."
    printf '%-6s %3s | %10s %9s %7s | %10s %8s | %10s %8s\n' what thr "C bf16 ms" "GFLOP/s" "% peak" \
        "torch ms" "vs f32" "t-bf16 ms" "vs bf16"
    for what in ${whats//,/ }; do
        [ "${what#fwd}" != "$what" ] || continue
        g=$(gflop "$what")
        for n in ${threads//,/ }; do
            c=$(get c_bf16 "$what" "$n" median_ms)
            t=$(get torch "$what" "$n" median_ms)
            tb=$(get torch_bf16 "$what" "$n" median_ms)
            awk -v w="$what" -v n="$n" -v g="$g" -v c="$c" -v t="$t" -v tb="$tb" -v p="${peak16[$n]}" 'BEGIN {
                cg = g / (c / 1e3);
                printf "%-6s %3s | %10.1f %9.1f %6.1f%% | %10.1f %7.2fx | %10.1f %7.2fx\n",
                       w, n, c, cg, 100 * cg / p, t, t / c, tb, tb / c }'
        done
    done
fi
for n in ${threads//,/ }; do echo "peak threads=$n: ${peak[$n]} GFLOP/s (FP32 FMA), ${peak16[$n]} GFLOP/s (BF16, bench_matmul)"; done
echo "(fwd1/fwd8: full size D 768, depth 12, 515 tokens, eval; train: mini D 192, depth 4, batch 8, 291 tokens"
echo " after masking, forward + loss + backward + AdamW; target: speed-up >= 1.5x)"
echo "total $(($(date +%s) - t_start)) s"
