#!/bin/bash
# Run 1 (not yet run on a GPU): chunked prefill over a paged cache in the Hopper kernel
# (paged90.patch). Main with the patch, built; the SASS checks; the paged and kv-cache tests (every
# prefill kernel forced in test_paged_cuda.py's new cases); the whole suite; compute-sanitizer over
# the paged part of scripts/sanitize.py for prefill_sm90 (memcheck, synccheck, racecheck of
# prefill_sm90_kernel); then scripts/bench_chunked.py (paged against contiguous, each prefill
# kernel) and the paged decode bench (its kernels are unchanged; a check that nothing moved).
cd "$(dirname "$0")/../../.."
T0=$(date +%s); left() { echo $(( 590 - ($(date +%s) - T0) )); }
git apply docs/results/2026-12-04-h200-paged90/paged90.patch || exit 1
STAGES="build sass" bash scripts/device_run.sh > $OUT/build.log 2>&1; tail -3 $OUT/build.log; grep "sass" $OUT/build.log | tail -1
STAGES=test PYTEST_TARGETS="tests/test_paged_cuda.py tests/test_paged_kvcache.py tests/test_kvcache_rows_cuda.py" \
  PYTEST_TIMEOUT=150 bash scripts/device_run.sh > $OUT/test-paged.log 2>&1
echo "paged tests left=$(left)"; head -30 $OUT/pytest.txt; cp $OUT/pytest.txt $OUT/pytest-paged.txt
STAGES=sanitize SANITIZE_ARGS="--kernels prefill_sm90 --parts paged" RACECHECK_KERNELS="prefill_sm90:prefill_sm90_kernel" \
  RACECHECK_TIMEOUT=150 timeout 200 bash scripts/device_run.sh > $OUT/sanitize.log 2>&1
echo "sanitize rc=$? left=$(left)"; grep -A8 "= summary =" $OUT/sanitize.log
timeout $(( $(left) / 2 )) python scripts/bench_chunked.py > $OUT/chunked.txt 2> $OUT/chunked.err; echo "chunked rc=$? left=$(left)"
cat $OUT/chunked.txt
STAGES=test PYTEST_TIMEOUT=$(( $(left) - 20 )) bash scripts/device_run.sh > $OUT/test-all.log 2>&1
echo "suite left=$(left)"; head -12 $OUT/pytest.txt
