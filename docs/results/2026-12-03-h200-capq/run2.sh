#!/bin/bash
# the build of run1 (knob at its default, 4): the full suite, the three sanitizers over prefill_sm90
cd "$(dirname "$0")/../../.."
python -c "import flashmin_nn._C" 2>/dev/null || { git apply docs/results/2026-12-03-h200-capq/capq.patch docs/results/2026-12-03-h200-capq/capq-knob.patch; STAGES=build bash scripts/device_run.sh > $OUT/build.log 2>&1; tail -2 $OUT/build.log; }
STAGES="test sanitize" PYTEST_TIMEOUT=280 SANITIZE_ARGS="--kernels prefill_sm90 --parts prefill" \
  RACECHECK_KERNELS="prefill_sm90:prefill_sm90_kernel prefill_sm90:mask_ranges_kernel" timeout 450 bash scripts/device_run.sh > $OUT/run2.log 2>&1
echo "rc=$?"; tail -12 $OUT/run2.log
