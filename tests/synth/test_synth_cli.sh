#!/usr/bin/env bash
# `batpipe synth` end to end through the CLI with the stand-in simulator:
# dry run, a run stopped after 3 scenes (exit 130) and resumed, shards in
# their own directories merged (identical to one run), and bad input (exit 2).
# Usage: test_synth_cli.sh BUILD_DIR STUB_PLUGIN_DIR
set -u
build=$1
stub=$2
bp="$build/bin/batpipe"
dir=$(mktemp -d /tmp/bp_test_synth_cli.XXXXXX)
export BATPIPE_PLUGIN_PATH="$stub"
fail=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if ! "$@"; then
        echo "FAILED: $what" >&2
        fail=$((fail + 1))
    fi
}
"$build/bin/synth_make_corpus" "$dir" || { echo "cannot make the corpus" >&2; exit 1; }
cat > "$dir/data.cfg" <<CFG
seed = 5;
corpus = { file = "corpus/corpus.tsv"; };
scenes = { train = { single = 4; two = 4; }; eval = { single = 2; two = 2; }; };
audio = { seconds = 1.0; rir_seconds = 0.1; };
simulator = { type = "stub_direct"; };
output = { dir = "out"; };
CFG
cd "$dir"
"$bp" synth data.cfg --dry-run > dry.txt 2>&1
check "dry run exits 0" test $? -eq 0
check "dry run prints the plan" grep -q "scenes     train 4 single + 4 two-source" dry.txt
check "dry run renders nothing" test ! -e out/train.json

BATPIPE_SYNTH_STOP_AFTER=3 "$bp" synth data.cfg --no-progress > stop.txt 2>&1
rc=$?
check "a stopped run exits 130 (got $rc)" test $rc -eq 130
check "a stopped run says how to resume" grep -q "run the same command again" stop.txt
check "a stopped run writes no final files" test ! -e out/train.json
"$bp" synth data.cfg --no-progress > run.txt 2>&1
check "the resumed run exits 0" test $? -eq 0
check "the resumed run skipped the 3 finished scenes" grep -q "9 rendered, 3 already there" run.txt
check "final files" test -s out/train.json -a -s out/stage3-mixup/train.json -a -s out/summary/summary.md

"$bp" -q synth data.cfg --shard 0/2 --out s0 --no-progress
check "shard 0/2" test $? -eq 0
"$bp" -q synth data.cfg --shard 1/2 --out s1 --no-progress
check "shard 1/2" test $? -eq 0
check "a shard writes no final files" test ! -e s0/train.json
"$bp" synth merge s0 s1 > merge.txt 2>&1
check "merge exits 0" test $? -eq 0
check "merged shards = one run" diff -r out s0

"$bp" synth data.cfg -o geometry.min_distanse=0.2 > bad.txt 2>&1
rc=$?
check "an unknown key exits 2 (got $rc)" test $rc -eq 2
check "the error names the key and suggests" grep -q "did you mean 'min_distance'" bad.txt
"$bp" synth data.cfg --shard 2/2 > bad2.txt 2>&1
check "a bad shard exits 2" test $? -eq 2
"$bp" synth merge "$dir/nowhere" > bad3.txt 2>&1
check "merging a non-directory fails" test $? -ne 0
"$bp" synth data.cfg -o 'simulator.hrtf="missing.sofa"' > bad4.txt 2>&1
check "a missing HRTF file exits 2" test $? -eq 2
check "the error names the HRTF file" grep -q "missing.sofa" bad4.txt

cd /
if [ $fail -eq 0 ]; then rm -rf "$dir"; else echo "kept $dir" >&2; fi
exit $fail
