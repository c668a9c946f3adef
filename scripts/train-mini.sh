#!/bin/sh
# Train and evaluate every mini row of the paper's Table 3 (configs/mini/*.cfg; the
# last, spatial_ast_scratch, is the mel + IPD row with the from-scratch recipe)
# on the generated mini set, then merge the evaluation reports into one table.
#
#   scripts/train-mini.sh                     # every row (10–20 minutes each on 2 cores)
#   ROWS="spatial_ast seldnet" scripts/train-mini.sh
#
# Each row: batpipe train configs/mini/ROW.cfg --resume (a finished or killed
# run continues where it stopped), then batpipe run configs/eval/ROW_mini.cfg
# with the trained weights and log-mel normalisation. The table goes to
# out/eval/table3-mini.md (and .csv). BATPIPE=path selects the binary.
set -eu
cd "$(dirname "$0")/.."
BP=${BATPIPE:-build/bin/batpipe}
ROWS=${ROWS:-"spatial_ast spatial_ast_mel spatial_ast_mono seldnet audiomae spatial_ast_scratch"}

if [ ! -f data/generated/mini/stage1-clsdoa/train.json ]; then
    echo "train-mini: no mini set yet: batpipe synth configs/synth/mini.cfg (needs data/sources: batpipe sources fetch)"
    "$BP" synth configs/synth/mini.cfg
fi

dirs=""
for r in $ROWS; do
    [ -f "configs/mini/$r.cfg" ] || { echo "train-mini: no configs/mini/$r.cfg" >&2; exit 2; }
    echo "== $r: train"
    "$BP" train "configs/mini/$r.cfg" --resume
    run="out/train/mini/$r"
    # the log-mel normalisation estimated by the trainer (normalize), for the
    # mel front end (melipd reads it from the weights file itself)
    set --
    if grep -q 'type = "mel";' "$run/config.cfg"; then
        mean=$(sed -n 's/^ *bn_mean = \(\[.*\]\);/\1/p' "$run/config.cfg" | tr -d ' ')
        var=$(sed -n 's/^ *bn_var = \(\[.*\]\);/\1/p' "$run/config.cfg" | tr -d ' ')
        [ -n "$mean" ] && [ -n "$var" ] && set -- -o "frontend.bn_mean=$mean" -o "frontend.bn_var=$var"
    fi
    echo "== $r: evaluate"
    "$BP" run "configs/eval/${r}_mini.cfg" "$@"
    dirs="$dirs out/eval/${r}_mini"
done
# shellcheck disable=SC2086
"$BP" report $dirs -o out/eval/table3-mini.md
# shellcheck disable=SC2086
"$BP" report $dirs -o out/eval/table3-mini.csv
cat out/eval/table3-mini.md
