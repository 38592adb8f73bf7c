#!/usr/bin/env bash
# Train, sweep and gate an experiment: the steps of github-actions.yml, runnable in any shell
# or CI system (GitLab CI, Jenkins, a laptop). Every step fails the job with nnflow's exit
# code: 2 a bad experiment file, 3 bad data, 4 a NaN loss, 5 a gate that did not hold.
#
#   CONFIG=configs/iris.yaml EPOCHS=100 OUT=ci-runs examples/ci/train-and-gate.sh
#
# With BASELINE (the main branch's run folder or metrics.json), step 6 also fails the job when
# test_accuracy is more than TOLERANCE (default 0.02) below the baseline's.
set -euo pipefail

CONFIG=${CONFIG:-configs/iris.yaml}
EPOCHS=${EPOCHS:-100}
OUT=${OUT:-ci-runs}
BASELINE=${BASELINE:-}
TOLERANCE=${TOLERANCE:-0.02}
mkdir -p "$OUT"

# 1. Validate the file first: 0.1 s, no TensorFlow; a typo fails here with its line and column.
nnflow check "$CONFIG"

# 2. Train and gate: the result as JSON for later steps, a Markdown summary for people.
nnflow train "$CONFIG" --set fit.epochs="$EPOCHS" --out "$OUT/train" \
    --json --summary "$OUT/summary.md" > "$OUT/train.json"

# 3. A small grid sweep, two warm workers; the study and the leaderboard land in $OUT/sweep.
nnflow sweep "$CONFIG" --set fit.epochs="$EPOCHS" --grid compile.optimizer.Adam.learning_rate=0.003,0.01 \
    --jobs 2 --out "$OUT/sweep" --json --summary "$OUT/summary.md" > "$OUT/sweep.json"

# 4. Re-check the gates on the saved model, as a later job (or a release check) would.
nnflow evaluate "$OUT/train" --json --summary "$OUT/summary.md" > "$OUT/evaluate.json"

# 5. What the sweep's best trial changed, next to the trained run.
best=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['members'][0]['run'])" "$OUT/sweep.json")
nnflow compare "$OUT/train" "$best"

# 6. Gate against the main branch's metrics (exit 5 on a regression beyond the tolerance).
if [ -n "$BASELINE" ]; then
    nnflow compare "$OUT/train" --baseline "$BASELINE" --tolerance test_accuracy="$TOLERANCE" \
        --summary "$OUT/summary.md"
fi
