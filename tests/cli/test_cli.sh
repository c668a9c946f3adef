#!/usr/bin/env bash
# The CLI end to end: help, plugins, run (good and bad configs, exit codes,
# messages), dry runs, the demo, cancellation without partial outputs.
# Usage: test_cli.sh BUILD_DIR TEST_PLUGIN_DIR
set -uo pipefail
build=$1
testplugins=$2
bp=$build/bin/batpipe
work=$(mktemp -d /tmp/bp_cli_test.XXXXXX)
trap 'rm -rf "$work"' EXIT
export BATPIPE_PLUGIN_PATH=$testplugins:$build/lib/batpipe/plugins
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect CODE PATTERN -- command...: exit code and a pattern in stdout+stderr
expect() {
  local code=$1 pat=$2; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  [ "$rc" -eq "$code" ] || fail "'$*' exited $rc, expected $code: $out"
  echo "$out" | grep -qE -- "$pat" || fail "'$*' output lacks /$pat/: $out"
}

expect 0 "usage: batpipe" -- "$bp" --help
expect 0 "plugin ABI 1\.[0-9]+" -- "$bp" version
expect 2 "unknown command 'frobnicate'" -- "$bp" frobnicate
expect 0 "frontend +tfeat" -- "$bp" plugins
expect 0 "channels_out +int +default 4, range \[1, 8\]" -- "$bp" plugins tfeat
expect 2 "no component named 'nosuch'" -- "$bp" plugins nosuch
expect 0 "result: 0 problems" -- "$bp" plugins --validate "$testplugins/bp-test-good.so"

# a clip and configs
"$bp" -q demo --clip-only --out "$work" > /dev/null || fail "demo --clip-only"
[ -f "$work/demo_clip.flac" ] || fail "no demo clip"
cat > "$work/ok.cfg" <<CFG
input = { type = "audio"; files = ["demo_clip.flac"]; };
frontend = { type = "tfeat"; rate = 32000; frame = 320; };
output = { dir = "out"; save = ["features", "energy"]; };
CFG
expect 0 "dry run: configuration valid" -- "$bp" run "$work/ok.cfg" --dry-run
[ -d "$work/out" ] && fail "a dry run created the output directory"
expect 0 "tensor +features +F32\[4,1000,8\]" -- "$bp" run --no-progress "$work/ok.cfg"
[ -f "$work/out/demo_clip.safetensors" ] || fail "no output written"
[ -f "$work/out/resolved.cfg" ] || fail "no resolved config"
grep -q 'plugin = "tfeat"' "$work/out/resolved.cfg" || fail "resolved config lacks the plugin name"
expect 0 "items +1 done" -- "$bp" run --no-progress "$work/out/resolved.cfg" -o "output.dir=\"$work/out3\""
expect 0 "F32\[3,1000,8\]" -- "$bp" run --no-progress "$work/ok.cfg" -o frontend.channels_out=3 -o output.dir=$work/out2

# bad configs: exit code 2 and a message with file:line
printf 'input = { type = "audio"; files = ["demo_clip.flac"]; };\nfrontend = { type = "tfeat";\n  chanels_out = 3; };\n' > "$work/typo.cfg"
expect 2 "typo.cfg:3: frontend \(tfeat\): unknown parameter 'chanels_out' \(did you mean 'channels_out'\?\)" -- "$bp" run "$work/typo.cfg"
printf 'input = { type = "audio"; files = ["demo_clip.flac"]; };\nfrontend = { type = "melipdd"; };\n' > "$work/unk.cfg"
expect 2 "unk.cfg:2: frontend: unknown frontend plugin 'melipdd'; installed: .*tfeat" -- "$bp" run "$work/unk.cfg"
expect 2 "expected path.to.key=value" -- "$bp" run "$work/ok.cfg" -o nonsense
expect 2 "channels_out = 9 is outside the range \[1, 8\]" -- "$bp" run "$work/ok.cfg" -o frontend.channels_out=9
expect 1 "cannot open" -- "$bp" run "$work/missing.cfg"
printf 'garbage' > "$work/corrupt.wav"
printf 'input = { type = "audio"; files = ["corrupt.wav"]; };\nfrontend = { type = "tfeat"; };\noutput = { dir = "never"; };\n' > "$work/corrupt.cfg"
expect 1 "corrupt.wav: not a readable audio file" -- "$bp" run "$work/corrupt.cfg"
[ -e "$work/never" ] && fail "a failed load created outputs"
# a NaN mid-run: non-zero exit, finished items kept, no partial file
printf 'input = { type = "audio"; files = ["demo_clip.flac", "b.flac"]; };\nfrontend = { type = "tfeat"; rate = 32000; nan_at_call = 1; };\noutput = { dir = "nanout"; };\n' > "$work/nan.cfg"
cp "$work/demo_clip.flac" "$work/b.flac"
expect 1 "b.flac: frontend \(tfeat\): 'features': element 0 is NaN" -- "$bp" run --no-progress "$work/nan.cfg"
[ -f "$work/nanout/demo_clip.safetensors" ] || fail "the item before the NaN was not kept"
[ -f "$work/nanout/b.safetensors" ] && fail "the NaN item was written"
[ -n "$(find "$work/nanout" -name '.*' -type f)" ] && fail "temporary files left behind"

# Ctrl-C: exit 130, completed outputs only
for i in $(seq 1 40); do cp "$work/demo_clip.flac" "$work/c$i.flac"; done
printf 'input = { type = "audio"; files = "c*.flac"; resample_quality = "best"; };\nfrontend = { type = "tfeat"; rate = 44100; };\noutput = { dir = "cancel"; };\n' > "$work/cancel.cfg"
"$bp" run --no-progress "$work/cancel.cfg" > "$work/cancel.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -n "$(find "$work/cancel" -name '*.safetensors' 2>/dev/null)" ] && break; sleep 0.05; done
kill -INT $pid
wait $pid; rc=$?
[ "$rc" -eq 130 ] || fail "Ctrl-C gave exit code $rc (want 130): $(cat "$work/cancel.log")"
grep -q "cancelled after" "$work/cancel.log" || fail "no cancellation message: $(cat "$work/cancel.log")"
n=$(find "$work/cancel" -name '*.safetensors' | wc -l)
[ "$n" -lt 40 ] || fail "cancel came too late to test ($n outputs)"
[ -n "$(find "$work/cancel" -name '.*' -type f)" ] && fail "temporary files left after Ctrl-C"
for f in "$work"/cancel/*.safetensors; do
  [ -s "$f" ] || fail "empty output $f"
done

# the embedded default job (needs the melipd frontend)
if "$bp" plugins melipd > /dev/null 2>&1; then
  expect 0 "tensor +features +F32\[4,1024,128\]" -- "$bp" demo --out "$work/demo"
  out=$("$bp" demo --out "$work/demo2" 2>&1)
  db() { awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "dB") print $i }'; }
  first=$(echo "$out" | grep -E "^ +0- 1 s" | db)
  last=$(echo "$out" | grep -E "^ +9-10 s" | db)
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(a < -2 && b > 2) }' || fail "demo trajectory does not go from left ($first) to right ($last)"
else
  echo "note: melipd not built; demo run not tested"
fi

if [ $fails -gt 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "PASS"
