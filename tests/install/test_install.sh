#!/usr/bin/env bash
# cmake --install into a fresh prefix, build the example plugin out of tree
# against the installed headers through pkg-config, install it, and check
# that the installed batpipe finds, validates and runs it.
# Usage: test_install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d /tmp/bp_install_test.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
unset BATPIPE_PLUGIN_PATH

cmake --install "$build" --prefix "$prefix" > "$work/install.log"
bp=$prefix/bin/batpipe
[ -x "$bp" ] || { echo "FAIL: $bp not installed"; exit 1; }
pcdir=$(dirname "$(find "$prefix" -name batpipe.pc | head -1)")
[ -n "$pcdir" ] || { echo "FAIL: batpipe.pc not installed"; exit 1; }
for h in plugin.h stage.h backend.h registry.h; do
  [ -f "$prefix/include/batpipe/$h" ] || { echo "FAIL: header $h not installed"; exit 1; }
done

# the installed CLI finds its installed plugins by itself
"$bp" plugins > "$work/plugins.txt"
grep -q "^backend *cpu " "$work/plugins.txt" || { echo "FAIL: installed batpipe does not list cpu"; cat "$work/plugins.txt"; exit 1; }
grep -q "$prefix" "$work/plugins.txt" || { echo "FAIL: plugins not loaded from the prefix"; cat "$work/plugins.txt"; exit 1; }

# the example plugin, out of tree, through pkg-config only
PKG_CONFIG_PATH=$pcdir cmake -S "$src/plugins/example_ild" -B "$work/ild-build" > "$work/ild-cmake.log"
cmake --build "$work/ild-build" > "$work/ild-build.log"
cmake --install "$work/ild-build" > "$work/ild-install.log"
so=$(find "$prefix" -name bp-ild.so | head -1)
[ -n "$so" ] || { echo "FAIL: bp-ild.so not installed into the plugin directory"; exit 1; }

"$bp" plugins ild | tee "$work/ild.txt"
grep -q "frontend ild 1.0.0" "$work/ild.txt" || { echo "FAIL: installed batpipe does not describe ild"; exit 1; }
"$bp" plugins --validate "$so" | tee "$work/validate.txt"
grep -q "result: 0 problems" "$work/validate.txt" || { echo "FAIL: validation reported problems"; exit 1; }

# and runs it: a clip whose source moves from left to right must show ILD from < 0 to > 0
"$bp" -q demo --clip-only --out "$work/demo" > /dev/null
clip=$work/demo/demo_clip.flac
[ -f "$clip" ] || { echo "FAIL: batpipe demo --clip-only wrote no clip"; exit 1; }
cat > "$work/ild.cfg" <<CFG
input = { type = "audio"; files = ["$clip"]; };
frontend = { type = "ild"; hop = 3200; };
output = { dir = "$work/ild-out"; };
CFG
"$bp" run --no-progress "$work/ild.cfg" | tee "$work/run.txt"
line=$(grep "^tensor *ild" "$work/run.txt")
min=$(echo "$line" | sed -E 's/.*min ([^ ]+).*/\1/')
max=$(echo "$line" | sed -E 's/.*max ([^ ]+).*/\1/')
awk -v a="$min" -v b="$max" 'BEGIN { exit !(a < -3 && b > 3) }' || { echo "FAIL: ILD range [$min, $max] does not span left to right"; exit 1; }
[ -f "$work/ild-out/demo_clip.safetensors" ] || { echo "FAIL: no output"; exit 1; }
echo "PASS: installed batpipe + out-of-tree plugin (ILD from $min to $max dB)"
