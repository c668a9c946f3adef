#!/usr/bin/env bash
# shellcheck disable=SC2317  # the step functions run through `bash -c` (exported)
# batpipe GPU check: on a machine with an NVIDIA GPU and this repository,
# build with the CUDA backend and run everything that needs the GPU:
#   system info (nvidia-smi first), build dependencies, configure, build (only
#   the targets needed), plugin validation, the cuda op test, the cross-backend
#   op test, bench_matmul --backend cuda and cpu, compute-sanitizer memcheck and
#   racecheck of the cuda op test. Every step's status is reported at the end.
#
# Usage:
#   scripts/gpu-check.sh                    run the check (about 3-6 minutes on 16 cores)
#   scripts/gpu-check.sh --fetch-debs DIR   on a Debian 12 machine with network: download the
#                                           .deb files of the build dependencies into DIR, for a
#                                           GPU machine without network (see below)
#
# Environment (all optional):
#   OUT              where logs go (default ./gpu-check-out): gpu-check.log (everything),
#                    summary.txt, and the logs of the op tests and benchmarks
#   BP_BUILD_DIR     build directory (default <repo>/build-gpu)
#   BP_JOBS          parallel build jobs (default: nproc)
#   BP_CUDA_ARCH     CMAKE_CUDA_ARCHITECTURES (default: the GPU's compute capability, else "80;90")
#   BP_DEBS          directory of .deb files unpacked when dependencies are missing (default <repo>/.debs)
#   BP_DEPS_PREFIX   where those are unpacked (default /tmp/bp-deps)
#   BP_BENCH_SECONDS seconds per benchmark shape (default 1)
#   BP_TIME_BUDGET   seconds after which the optional steps (sanitizers) are skipped (default 420)
#
# Dependencies: the build needs pkg-config, libconfig, libsndfile, libsamplerate, fftw3f,
# libmysofa, jansson and oneDNN 2.x (+ OpenCL headers, which Debian's oneDNN package asks
# for), besides CMake >= 3.20, gcc and nvcc. Missing ones are taken, in this order, from
# the .deb files in $BP_DEBS (unpacked into a private prefix, nothing is installed
# system-wide), or installed with apt-get when it is available and we are root; otherwise
# the step fails and lists what is missing. For a GPU machine without network:
#   here:   scripts/gpu-check.sh --fetch-debs .debs && echo /.debs/ >> .git/info/exclude
#   there:  carry .debs along with the repository, then run scripts/gpu-check.sh
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian 12 (bookworm) packages: -dev packages (headers, .so links, .pc files, oneDNN's
# CMake package) and the shared libraries they need beyond a base system with gcc.
BP_DEB_PACKAGES=(
    libconfig-dev libconfig9
    libsndfile1-dev libsndfile1 libflac12 libogg0 libvorbis0a libvorbisenc2 libopus0 libmpg123-0 libmp3lame0
    libsamplerate0-dev libsamplerate0
    libfftw3-dev libfftw3-single3
    libmysofa-dev libmysofa1
    libjansson-dev libjansson4
    libdnnl-dev libdnnl2
    ocl-icd-opencl-dev ocl-icd-libopencl1 opencl-c-headers
    pkgconf pkgconf-bin libpkgconf3
)
# What apt-get installs when it is used instead.
BP_APT_PACKAGES_LIST=(pkg-config libconfig-dev libsndfile1-dev libsamplerate0-dev libfftw3-dev libmysofa-dev
                 libjansson-dev libdnnl-dev ocl-icd-opencl-dev)
BP_PC_MODULES_LIST=(libconfig sndfile samplerate fftw3f libmysofa jansson)

if [[ "${1:-}" == "--fetch-debs" ]]; then
    dir="${2:?usage: $0 --fetch-debs DIR}"
    mkdir -p "$dir"
    cd "$dir"
    apt-get download "${BP_DEB_PACKAGES[@]}"
    ls -l ./*.deb
    du -sh .
    exit 0
fi
if [[ $# -gt 0 ]]; then
    sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 2
fi

export SRC
export OUT_DIR="${OUT:-$PWD/gpu-check-out}"
export BUILD="${BP_BUILD_DIR:-$SRC/build-gpu}"
export JOBS="${BP_JOBS:-$(nproc 2>/dev/null || echo 8)}"
export DEBS="${BP_DEBS:-$SRC/.debs}"
export PREFIX="${BP_DEPS_PREFIX:-/tmp/bp-deps}"
export BENCH_SECONDS="${BP_BENCH_SECONDS:-1}"
export ENV_FILE="$PREFIX.env"
TIME_BUDGET="${BP_TIME_BUDGET:-420}"
export PLUGDIR="$BUILD/lib/batpipe/plugins"
mkdir -p "$OUT_DIR"

# ---------------------------------------------------------------- steps --

deps_missing() {
    local miss=() m d c found=""
    command -v pkg-config > /dev/null 2>&1 || miss+=(pkg-config)
    if command -v pkg-config > /dev/null 2>&1; then
        for m in $BP_PC_MODULES; do pkg-config --exists "$m" 2> /dev/null || miss+=("$m"); done
    fi
    for d in ${CMAKE_PREFIX_PATH:+${CMAKE_PREFIX_PATH//:/ }} /usr /usr/local; do
        for c in "$d"/lib/*/cmake/dnnl "$d"/lib/cmake/dnnl "$d"/lib64/cmake/dnnl; do
            [[ -f "$c/dnnl-config.cmake" || -f "$c/dnnlConfig.cmake" ]] && found="$c"
        done
    done
    [[ -n "$found" ]] || miss+=(oneDNN)
    echo "${miss[*]}"
}

unpack_debs() {
    echo "unpacking $(find "$DEBS" -maxdepth 1 -name '*.deb' | wc -l) .deb files from $DEBS into $PREFIX"
    mkdir -p "$PREFIX"
    local f tmp
    for f in "$DEBS"/*.deb; do
        if command -v dpkg-deb > /dev/null 2>&1; then
            dpkg-deb -x "$f" "$PREFIX"
        else
            tmp="$(mktemp -d)"
            (cd "$tmp" && ar x "$f" && tar -xf data.tar.* -C "$PREFIX")
            rm -rf "$tmp"
        fi
    done
    # Relocate the .pc files; drop Requires.private (the static-link closure is not carried).
    find "$PREFIX" -name '*.pc' -print0 | xargs -0 -r sed -i \
        -e "s|^\([A-Za-z_]*\)=/usr|\1=$PREFIX/usr|" -e '/^Requires.private:/d' \
        -e "s| -I/usr/| -I$PREFIX/usr/|g" -e "s| -L/usr/| -L$PREFIX/usr/|g"
    # Absolute symbolic links into /usr point into the prefix instead.
    local l t
    while IFS= read -r -d '' l; do
        t="$(readlink "$l")"
        [[ "$t" == /usr/* ]] && ln -sfn "$PREFIX$t" "$l"
    done < <(find "$PREFIX" -type l -print0)
    local lib="$PREFIX/usr/lib/x86_64-linux-gnu"
    {
        local pc="$lib/pkgconfig:$PREFIX/usr/share/pkgconfig"
        echo "export PKG_CONFIG_PATH=\"$pc\${PKG_CONFIG_PATH:+:\$PKG_CONFIG_PATH}\""
        echo "export CMAKE_PREFIX_PATH=\"$PREFIX/usr\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}\""
        echo "export LD_LIBRARY_PATH=\"$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
        echo "export LIBRARY_PATH=\"$lib\${LIBRARY_PATH:+:\$LIBRARY_PATH}\""
        echo "export CPATH=\"$PREFIX/usr/include\${CPATH:+:\$CPATH}\""
        [[ -d "$lib/cmake/dnnl" ]] && echo "export dnnl_DIR=\"$lib/cmake/dnnl\""
        if [[ -n "${BP_DEPS_ONLY_PREFIX:-}" ]]; then # testing: ignore the system's .pc files
            echo "export PKG_CONFIG_LIBDIR=\"$lib/pkgconfig:$PREFIX/usr/share/pkgconfig\""
        fi
        if ! command -v pkg-config > /dev/null 2>&1 && [[ -x "$PREFIX/usr/bin/pkgconf" ]]; then
            echo "export PATH=\"$PREFIX/usr/bin:\$PATH\""
        fi
    } > "$ENV_FILE"
}

step_deps() {
    rm -f "$ENV_FILE"
    local miss
    miss="$(deps_missing)"
    if [[ -z "$miss" && -z "${BP_DEPS_FROM_DEBS:-}" ]]; then
        echo "all build dependencies found"
        return 0
    fi
    echo "missing: ${miss:-none (BP_DEPS_FROM_DEBS set)}"
    if compgen -G "$DEBS/*.deb" > /dev/null; then
        unpack_debs
        # shellcheck disable=SC1090
        source "$ENV_FILE"
    elif command -v apt-get > /dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
        echo "installing with apt-get: $BP_APT_PACKAGES"
        echo "(note: the cpu backend needs oneDNN 2.x; distributions shipping 3.x will not build it)"
        timeout 180 apt-get update -qq || echo "apt-get update failed (no network?)"
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends \
            $BP_APT_PACKAGES || echo "apt-get install failed"
    else
        echo "no .deb files in $DEBS and no apt-get (or not root): cannot install anything"
    fi
    miss="$(deps_missing)"
    if [[ -n "$miss" ]]; then
        echo "still missing: $miss"
        echo "fix: install them, or run 'scripts/gpu-check.sh --fetch-debs .debs' on a Debian 12 machine" \
             "with network and bring .debs along (BP_DEBS=...)"
        return 1
    fi
    echo "all build dependencies found"
}

step_system() {
    date -u
    uname -a
    grep -E '^(PRETTY_NAME|VERSION_ID)=' /etc/os-release 2> /dev/null || true
    echo "cpus: $(nproc)"
    free -g 2> /dev/null | head -2 || true
    echo "--- nvidia-smi"
    nvidia-smi || echo "nvidia-smi failed or is missing"
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv 2> /dev/null || true
    echo "--- toolchain"
    "$NVCC" --version 2> /dev/null || echo "nvcc not found"
    cmake --version | head -1 || echo "cmake not found"
    gcc --version | head -1 || echo "gcc not found"
    command -v ninja > /dev/null && echo "ninja $(ninja --version)"
    if command -v git > /dev/null; then git -C "$SRC" log --oneline -1 2> /dev/null || true; fi
    echo "CUDA architectures: $CUDA_ARCH; jobs: $JOBS"
}

step_configure() {
    local gen=()
    if [[ ! -f "$BUILD/CMakeCache.txt" ]] && command -v ninja > /dev/null 2>&1; then gen=(-G Ninja); fi
    local extra=()
    [[ -n "${dnnl_DIR:-}" ]] && extra+=("-Ddnnl_DIR=$dnnl_DIR")
    cmake -S "$SRC" -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DBP_WITH_CUDA=ON \
        -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DBP_BUILD_FUZZ=OFF "${extra[@]}"
}

step_build() {
    local help wanted=(batpipe_cli bp_plugin_cpu bp_plugin_cuda test_cuda_ops test_backend_ops bench_matmul)
    local have=() t
    help="$(cmake --build "$BUILD" --target help 2> /dev/null || true)"
    for t in "${wanted[@]}"; do
        if grep -Eq "(^|[ .])$t(:| |$)" <<< "$help"; then have+=("$t"); else echo "note: no target $t in this tree"; fi
    done
    echo "building: ${have[*]}"
    local log
    log="$(mktemp)"
    cmake --build "$BUILD" --parallel "$JOBS" --target "${have[@]}" 2>&1 | tee "$log" && return 0
    grep -q 'Werror' "$log" || return 1
    # Another compiler version may warn where gcc 12 did not: do not lose the GPU run over it.
    echo "the build failed on warnings treated as errors; rebuilding with -Wno-error (see the warnings above)"
    printf '#!/bin/sh\nexec "$@" -Wno-error\n' > "$BUILD/no-werror.sh"
    chmod +x "$BUILD/no-werror.sh"
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_C_COMPILER_LAUNCHER="$BUILD/no-werror.sh" \
        -DCMAKE_CXX_COMPILER_LAUNCHER="$BUILD/no-werror.sh" -DBP_CUDA_WERROR=OFF > /dev/null || return 1
    cmake --build "$BUILD" --parallel "$JOBS" --target "${have[@]}" || return 1
    return 4
}

step_validate() {
    "$BUILD/bin/batpipe" plugins --validate "$PLUGDIR/bp-cuda.so"
    echo "---"
    "$BUILD/bin/batpipe" plugins cuda
}

step_cuda_ops() {
    local rc=0
    BATPIPE_PLUGIN_PATH="$PLUGDIR" "$BUILD/bin/test_cuda_ops" || rc=$?
    if [[ $rc == 77 ]]; then
        echo "FAIL: test_cuda_ops skipped on a machine that should have a GPU (see the reason above)"
        return 1
    fi
    return "$rc"
}

step_backend_ops() {
    local rc=0 log
    log="$(mktemp)"
    BATPIPE_PLUGIN_PATH="$PLUGDIR" "$BUILD/bin/test_backend_ops" > "$log" 2>&1 || rc=$?
    cat "$log"
    [[ $rc == 0 ]] || return "$rc"
    if ! grep -q '^backend cuda ' "$log"; then
        echo "FAIL: the cuda backend was not tested"
        return 1
    fi
}

step_bench() {
    local backend="$1" extra=()
    [[ "$backend" == cpu ]] && extra=(--threads "$JOBS")
    BATPIPE_PLUGIN_PATH="$PLUGDIR" "$BUILD/bin/bench_matmul" --backend "$backend" --seconds "$BENCH_SECONDS" \
        "${extra[@]}"
}

step_sanitizer() {
    local tool="$1" cs
    cs="$(command -v compute-sanitizer || true)"
    [[ -n "$cs" ]] || cs="$(dirname "$NVCC")/compute-sanitizer"
    if [[ ! -x "$cs" ]]; then
        echo "compute-sanitizer not found"
        return 3
    fi
    local args=(--tool "$tool" --error-exitcode 99)
    [[ "$tool" == memcheck ]] && args+=(--leak-check full)
    BATPIPE_PLUGIN_PATH="$PLUGDIR" "$cs" "${args[@]}" "$BUILD/bin/test_cuda_ops"
}

export -f deps_missing unpack_debs step_deps step_system step_configure step_build step_validate step_cuda_ops \
    step_backend_ops step_bench step_sanitizer
BP_PC_MODULES="${BP_PC_MODULES_LIST[*]}"
BP_APT_PACKAGES="${BP_APT_PACKAGES_LIST[*]}"
export BP_PC_MODULES BP_APT_PACKAGES

# ----------------------------------------------------------- the runner --

STEP_NAMES=()
STEP_STATUS=()
STEP_SECS=()
START=$SECONDS

# step NAME LIMIT_S LOGFILE|- COMMAND: run COMMAND (a function above) in bash with a time limit.
step() {
    local name="$1" limit="$2" log="$3" cmd="$4" rc=0 t0=$SECONDS status
    echo
    echo "=================== [$name] $cmd (limit ${limit}s)"
    [[ "$log" == - ]] && log=/dev/null
    set +e
    timeout --kill-after=15 "$limit" bash -c "set -uo pipefail; $cmd" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    case $rc in
        0) status=ok ;;
        124 | 137) status="TIMEOUT (${limit}s)" ;;
        3) status="skipped (tool missing)" ;;
        4) status="ok (with -Wno-error)" ;;
        *) status="FAIL (exit $rc)" ;;
    esac
    STEP_NAMES+=("$name")
    STEP_STATUS+=("$status")
    STEP_SECS+=($((SECONDS - t0)))
    echo "=================== [$name] $status in $((SECONDS - t0))s"
    [[ $rc == 0 || $rc == 4 ]]
}

skip() {
    STEP_NAMES+=("$1")
    STEP_STATUS+=("skipped ($2)")
    STEP_SECS+=(0)
    echo
    echo "=================== [$1] skipped: $2"
}

main() {
    NVCC="$(command -v nvcc || true)"
    [[ -n "$NVCC" ]] || NVCC=/usr/local/cuda/bin/nvcc
    export NVCC
    if [[ -n "${BP_CUDA_ARCH:-}" ]]; then
        CUDA_ARCH="$BP_CUDA_ARCH"
    else
        CUDA_ARCH="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2> /dev/null | head -1 | tr -d ' .')"
        [[ "$CUDA_ARCH" =~ ^[0-9]+$ ]] || CUDA_ARCH="80;90"
    fi
    export CUDA_ARCH

    step system 60 - step_system || true
    local built=0 deps_ok=0
    if step deps 600 - step_deps; then deps_ok=1; fi
    # shellcheck disable=SC1090
    [[ -f "$ENV_FILE" ]] && source "$ENV_FILE"
    if [[ $deps_ok == 1 ]] && step configure 180 - step_configure && step build 480 - step_build; then built=1; fi

    if [[ $built == 1 ]]; then
        if [[ -x "$BUILD/bin/batpipe" ]]; then
            step validate 60 - step_validate || true
        else
            skip validate "no batpipe CLI built"
        fi
        step cuda-ops 180 "$OUT_DIR/cuda-ops.log" step_cuda_ops || true
        if [[ -x "$BUILD/bin/test_backend_ops" ]]; then
            step backend-ops 420 "$OUT_DIR/backend-ops.log" step_backend_ops || true
        else
            skip backend-ops "test_backend_ops was not built"
        fi
        if [[ -x "$BUILD/bin/bench_matmul" ]]; then
            step bench-cuda 150 "$OUT_DIR/bench-cuda.log" "step_bench cuda" || true
            step bench-cpu 240 "$OUT_DIR/bench-cpu.log" "step_bench cpu" || true
        else
            skip bench-cuda "bench_matmul was not built"
            skip bench-cpu "bench_matmul was not built"
        fi
        for tool in memcheck racecheck; do
            if ((SECONDS - START > TIME_BUDGET)); then
                skip "sanitizer-$tool" "time budget of ${TIME_BUDGET}s spent"
            else
                step "sanitizer-$tool" 240 - "step_sanitizer $tool" || true
            fi
        done
    else
        for s in validate cuda-ops backend-ops bench-cuda bench-cpu sanitizer-memcheck sanitizer-racecheck; do
            skip "$s" "no build"
        done
    fi

    local failed=0 i
    for i in "${!STEP_STATUS[@]}"; do
        [[ "${STEP_STATUS[$i]}" == FAIL* || "${STEP_STATUS[$i]}" == TIMEOUT* ]] && failed=$((failed + 1))
    done
    {
        echo
        echo "=================== summary ($((SECONDS - START))s, logs in $OUT_DIR)"
        for i in "${!STEP_NAMES[@]}"; do
            printf '  %-22s %-28s %4ss\n' "${STEP_NAMES[$i]}" "${STEP_STATUS[$i]}" "${STEP_SECS[$i]}"
        done
        if [[ $failed == 0 ]]; then echo "GPU CHECK PASSED"; else echo "GPU CHECK FAILED: $failed step(s)"; fi
    } | tee "$OUT_DIR/summary.txt"
    [[ $failed == 0 ]]
}

set +e
main 2>&1 | tee "$OUT_DIR/gpu-check.log"
rc=${PIPESTATUS[0]}
exit "$rc"
