#!/usr/bin/env bash
# The whole test suite: builds build/ if needed, then runs every test
# (unit, golden, e2e, install, and the valgrind memcheck runs). CUDA tests
# skip with a message when there is no GPU.
#   scripts/test.sh              everything
#   scripts/test.sh -L unit      only one label (extra args go to ctest)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
