#!/usr/bin/env bash
# Every configuration file shipped in configs/ loads: `batpipe run|train|synth|ask
# FILE --dry-run` must not report a syntax error, an unknown key, a wrong type or an
# unknown plugin. Files that point at data this machine may not have (the generated
# mini set, the full set, models) are allowed to fail only with "No such file" /
# "cannot open" / "unable to open" (or, for templates like features.cfg, "no input
# files": they take them with -o), and nothing else.
# usage: test_configs.sh BUILD_DIR SOURCE_DIR
set -u
build=$1
src=$2
bp=$build/bin/batpipe
fail=0
checked=0
for f in "$src"/configs/*.cfg "$src"/configs/*/*.cfg; do
    case $f in
        */configs/llm/*) continue ;;    # needs the model file: covered by test_ask
        */configs/synth/*) cmd=synth ;;
        *) # a training file has stages; a pipeline (evaluation, features) has none
           if grep -q '^stages *=' "$f"; then cmd=train; else cmd=run; fi ;;
    esac
    out=$("$bp" "$cmd" "$f" --dry-run 2>&1)
    rc=$?
    checked=$((checked + 1))
    if [ $rc -ne 0 ]; then
        last=$(printf '%s\n' "$out" | tr '\r' '\n' | grep -i "error" | tail -1)
        if printf '%s' "$last" | grep -qiE "no such file|cannot open|unable to open|does not exist|no input files|not found: .*(json|csv|safetensors|gguf|flac|wav)"; then
            echo "ok (data missing) $f: $last"
        else
            echo "FAIL $f ($cmd, rc $rc): $last"
            fail=1
        fi
    else
        echo "ok $f"
    fi
done
echo "$checked configuration files checked"
[ "$checked" -gt 10 ] || { echo "FAIL: too few configuration files found under $src/configs"; fail=1; }
exit $fail
