#!/usr/bin/env bash
# The real `batpipe sources fetch` of three small packages (downloads about
# 45 MB from the Debian mirrors). Runs only with BP_FETCH_SOURCES=1; CI skips.
set -u
BP="$1"
[ "${BP_FETCH_SOURCES:-0}" = 1 ] || { echo "SKIP: set BP_FETCH_SOURCES=1 to download Debian packages"; exit 77; }
export BATPIPE_SOURCE_DIR="${BP_SOURCE_DIR:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/bp_sources_fetch.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=$((fail + 1)); fi; }
P=sound-theme-freedesktop,yaru-theme-sound,gcompris-qt-data
"$BP" sources fetch --packages $P --dir "$T" --min-recordings 2 --no-progress; rc=$?
check "[ $rc -eq 0 ]" "fetch exit 0 (got $rc)"
C="$T/corpus.tsv"
check "[ \$(tail -n +2 '$C' | wc -l) -ge 20 ]" "at least 20 corpus rows"
check "grep -qP '\tgcompris-qt-data\t.*\.rcc:' '$C'" "audio extracted from Qt .rcc files"
check "grep -qP '\tfree-art\t' '$C'" "per-file licence from debian/copyright (gcompris memory sounds)"
check "[ -f '$T/licenses/gcompris-qt-data.copyright' ]" "copyright file kept"
f=$(sed -n 2p "$C" | cut -f1)
check "file '$T/$f' | grep -q 'FLAC audio bitstream data, 24 bit, mono, 32 kHz'" "clip format: $(file "$T/$f")"
out=$("$BP" sources fetch --packages $P --dir "$T" --min-recordings 2 --offline --no-progress 2>&1); rc=$?
check "[ $rc -eq 0 ]" "offline rerun"
check "grep -q ' 0 converted' <<<\"\$out\"" "the rerun converts nothing: $out"
echo "$fail failure(s)"
[ $fail -eq 0 ]
