#!/bin/bash
# tree of the filled-keys change: build, SASS check, the full suite, compute-sanitizer over the
# decode kernel (scan_late cases included) and over prefill_sm90 with the mask-range pass
cd "$(dirname "$0")/../../.."
STAGES="build sass test sanitize" PYTEST_TIMEOUT=240 SANITIZE_ARGS="--kernels decode" \
  RACECHECK_KERNELS="decode:decode_kernel decode:combine_splits_kernel" timeout 470 bash scripts/device_run.sh > $OUT/run.log 2>&1
echo "device_run rc=$?"; sed -n '/=== summary/,$p' $OUT/run.log | tail -12; head -3 $OUT/pytest.txt; grep -E "^FAILED|^ERROR" $OUT/pytest.txt | head -20
STAGES="sanitize" SANITIZE_ARGS="--kernels prefill_sm90 --parts prefill" RACECHECK_KERNELS="prefill_sm90:mask_ranges_kernel" \
  timeout 100 bash scripts/device_run.sh > $OUT/sanitize-prefill.log 2>&1; echo "sanitize rc=$?"; sed -n '/=== summary/,$p' $OUT/sanitize-prefill.log | tail -6
