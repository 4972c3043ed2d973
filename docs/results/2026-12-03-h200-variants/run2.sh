#!/bin/bash
# the pair configurations: build, SASS check, the whole suite, the sanitizers over the decode kernel
STAGES="build sass test sanitize" PYTEST_TIMEOUT=240 SANITIZE_ARGS="--kernels decode" \
  RACECHECK_KERNELS="decode:decode_kernel decode:combine_splits_kernel" timeout 570 bash scripts/device_run.sh > $OUT/device-run2.log 2>&1
echo "device_run rc=$?"
cp /tmp/flashmin-logs/sanitize-*.log $OUT/ 2>/dev/null
grep -E "passed|failed|error" $OUT/pytest.txt | tail -5
tail -30 $OUT/device-run2.log
