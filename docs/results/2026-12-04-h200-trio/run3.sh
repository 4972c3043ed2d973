#!/bin/bash
# Run 3 (not yet run on a GPU; after run2.sh, on a fresh checkout): what landing fixedref.patch
# needs beyond run 2's A/B. Main with fixedref.patch alone (no knob), built; the SASS checks; the
# whole suite; compute-sanitizer over prefill_sm90 (memcheck, synccheck, and racecheck of
# prefill_sm90_kernel: scripts/sanitize.py's softcap case is bf16 with softcap 20, so it takes the
# fixed reference); then the options bench and the prefill bench in bf16, the dtype the change
# touches (fp16's SASS is unchanged).
cd "$(dirname "$0")/../../.."
T0=$(date +%s); left() { echo $(( 590 - ($(date +%s) - T0) )); }
git apply docs/results/2026-12-04-h200-trio/fixedref.patch || exit 1
STAGES="build sass" bash scripts/device_run.sh > $OUT/build.log 2>&1; tail -3 $OUT/build.log
STAGES="test sanitize" PYTEST_TIMEOUT=240 SANITIZE_ARGS="--kernels prefill_sm90" \
  RACECHECK_KERNELS="prefill_sm90:prefill_sm90_kernel" RACECHECK_TIMEOUT=200 \
  timeout 330 bash scripts/device_run.sh > $OUT/suite.log 2>&1
echo "suite rc=$? left=$(left)"; grep -A12 "= summary =" $OUT/suite.log
OPTIONS_ARGS="--dtype bf16 --quick" STAGES=options timeout $(( $(left) / 3 )) bash scripts/device_run.sh > $OUT/options.log 2>&1
echo "options rc=$? left=$(left)"
BENCH_ARGS="--suite prefill --dtype bf16 --hdims 64,128" STAGES=bench timeout $(( $(left) - 15 )) \
  bash scripts/device_run.sh > $OUT/bench.log 2>&1
echo "bench rc=$? left=$(left)"; tail -40 $OUT/options.txt; tail -40 $OUT/bench.txt
