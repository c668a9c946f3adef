#!/usr/bin/env bash
# One command: install the Debian dependencies, build batpipe (build/), and
# run the main job on its embedded default: the Spatial-AST front end on a
# generated binaural clip, writing features and printing a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-model.sh   # the default LLM (SmolLM2-135M-Instruct Q4_1) into models/
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
build/bin/batpipe demo --out batpipe-demo
