#!/usr/bin/env bash
# make fuzz: each atheris harness for FUZZ_SECONDS (default 60) on a scratch copy of its seed
# corpus, printing executions per second; with FUZZ_HYPOTHESIS=1 also the Hypothesis properties
# under the `long` profile (20,000 examples each: tens of minutes). Crashes land in fuzz/out/
# (git-ignored); turn each one into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SECONDS_EACH=${FUZZ_SECONDS:-60}
"$PY" -c "import atheris" 2>/dev/null || "$PY" -m pip install -q -e '.[fuzz]'
mkdir -p fuzz/out
summary=()
for harness in fuzz/fuzz_*.py; do
    name=$(basename "$harness" .py); name=${name#fuzz_}
    work=fuzz/out/$name; rm -rf "$work"; mkdir -p "$work/corpus" "$work/crashes"
    cp fuzz/corpus/"$name"/* "$work/corpus/" 2>/dev/null || true
    dict=()
    [ -f "fuzz/dicts/$name.dict" ] && dict=(-dict="fuzz/dicts/$name.dict")
    echo "== $harness (${SECONDS_EACH}s)"
    log="$work/run.log"
    "$PY" "$harness" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -artifact_prefix="$work/crashes/" "${dict[@]}" "$work/corpus" >"$log" 2>&1 || {
        echo "!! $harness stopped: see $log and $work/crashes/"; tail -20 "$log"; exit 1; }
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "   $rate exec/s"
    summary+=("$name: $rate exec/s")
done
if [ "${FUZZ_HYPOTHESIS:-0}" = 1 ]; then
    echo "== Hypothesis properties, long profile"
    HYPOTHESIS_PROFILE=long "$PY" -m pytest -q -p no:cacheprovider \
        tests/policy/test_paths_properties.py tests/policy/test_gate_properties.py \
        tests/policy/test_loader_properties.py tests/policy/test_csp_floors.py \
        tests/policy/test_bodies.py
fi
printf '%s\n' "== executions per second" "${summary[@]}"
