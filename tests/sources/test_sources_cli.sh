#!/usr/bin/env bash
# `batpipe sources import` end to end on generated audio (no network):
# a good list gives corpus.tsv in the documented format, a second run reuses
# every clip, and bad lists fail with errors that name the line.
set -u
BP="$1"
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to write the test audio"; exit 77; }
export BATPIPE_SOURCE_DIR="${BP_SOURCE_DIR:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/bp_sources_cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=$((fail + 1)); fi; }

python3 - "$T" <<'PY'
import math, struct, sys, wave
d = sys.argv[1]
def tone(name, f, rate=44100, ch=2, sec=0.6):
    with wave.open(f"{d}/{name}", "wb") as w:
        w.setnchannels(ch); w.setsampwidth(2); w.setframerate(rate)
        fr = b""
        for i in range(int(sec * rate)):
            v = int(12000 * math.sin(2 * math.pi * f * i / rate))
            fr += struct.pack("<h", v) * ch
        w.writeframes(fr)
for i in range(6):
    tone(f"dog {i}.wav", 300 + 40 * i, rate=(44100, 48000, 22050)[i % 3])
tone("cat.wav", 900, ch=1)
PY
cat > "$T/list.csv" <<'CSV'
file,labels
dog 0.wav,Dog
dog 1.wav,Dog
dog 2.wav,dog
"dog 3.wav",/m/0bt9lr
dog 4.wav,Dog;Canidae, dogs, wolves
dog 5.wav,"Dog;Canidae, dogs, wolves"
cat.wav,Cat
CSV
# line 6 has an unquoted comma: a clear error naming the line
out=$("$BP" sources import "$T/list.csv" --dir "$T/corpus" --no-progress 2>&1); rc=$?
check "[ $rc -eq 2 ]" "an unquoted comma must fail with exit 2 (got $rc)"
check "grep -q 'list.csv:6: 4 fields' <<<\"\$out\"" "error names line 6: $out"
sed -i 's/^dog 4.wav,Dog;Canidae, dogs, wolves$/dog 4.wav,"Dog;Canidae, dogs, wolves"/' "$T/list.csv"
out=$("$BP" sources import "$T/list.csv" --dir "$T/corpus" --name mine --license CC0 --min-recordings 2 \
      --no-progress 2>&1); rc=$?
check "[ $rc -eq 0 ]" "import must succeed (rc $rc): $out"
C="$T/corpus/corpus.tsv"
check "[ -f '$C' ]" "corpus.tsv written"
H='^file\tlabel\tmid\tpackage\tlicense\tduration_s\trms_dbfs\trecording\tsplit\tsource_path'
check "head -1 '$C' | grep -qP '$H'" "corpus.tsv header"
check "[ \$(grep -cP '\tDog\t/m/0bt9lr\tmine\tCC0\t' '$C') -eq 6 ]" "6 Dog rows"
check "[ \$(grep -cP '\tCanidae, dogs, wolves\t' '$C') -eq 2 ]" "2 Canidae rows (multi-label lines)"
check "! grep -qP '\tCat\t' '$C'" "Cat (1 recording < 2) is dropped"
check "grep -qP 'cat.wav\tmine\tCat\tthe class has too few' '$T/corpus/skipped.tsv'" "Cat reported in skipped.tsv"
check "[ \$(grep -cP '\teval\t' '$C') -ge 1 ]" "some eval rows"
# every recording in exactly one split
check "[ -z \"\$(cut -f8,9 '$C' | tail -n +2 | sort -u | cut -f1 | uniq -d)\" ]" "no recording in both splits"
first=$(cat "$C")
out=$("$BP" sources import "$T/list.csv" --dir "$T/corpus" --name mine --license CC0 --min-recordings 2 \
      --no-progress 2>&1); rc=$?
check "[ $rc -eq 0 ]" "second import"
check "grep -q '0 converted, 7 already done' <<<\"\$out\"" "second run reuses the clips: $out"
check "[ \"\$(cat '$C')\" = \"\$first\" ]" "same corpus.tsv on the second run"
# unknown labels and missing files: named with their lines, nothing written
printf 'dog 0.wav,Dgo\nnothere.wav,Dog\n' > "$T/bad.csv"
out=$("$BP" sources import "$T/bad.csv" --dir "$T/bad" --no-progress 2>&1); rc=$?
check "[ $rc -eq 2 ]" "bad list exit 2 (got $rc)"
check "grep -q \"bad.csv:1: unknown label 'Dgo'.*did you mean 'Dog'\" <<<\"\$out\"" \
      "unknown label with a suggestion: $out"
check "grep -q 'bad.csv:2: file .*nothere.wav' <<<\"\$out\"" "missing file named: $out"
check "[ ! -e '$T/bad/corpus.tsv' ]" "nothing written for a bad list"
"$BP" sources >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]" "no subcommand: exit 2"
"$BP" sources frobnicate >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]" "unknown subcommand: exit 2"
"$BP" sources import "$T/list.csv" --max-seconds 3 >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]" "--max-seconds below 10 is refused"
echo "$fail failure(s)"
[ $fail -eq 0 ]
