#!/bin/bash
# final tree: build, SASS check, the full suite, compute-sanitizer over the decode kernel
cd "$(dirname "$0")/../../.."
STAGES="build sass test sanitize" PYTEST_TIMEOUT=240 SANITIZE_ARGS="--kernels decode" \
  RACECHECK_KERNELS="decode:decode_kernel decode:combine_splits_kernel" timeout 560 bash scripts/device_run.sh > $OUT/run.log 2>&1
echo "device_run rc=$?"; sed -n '/=== summary/,$p' $OUT/run.log | tail -12; head -3 $OUT/pytest.txt
