#!/bin/bash
# main at 20d52e9 (softcap fold 3545bfe, kernel mend b0bfcad, paged-test mend 5edf74c not yet run on a GPU):
# build, SASS check, the full suite, memcheck/synccheck over the three production kernels and
# racecheck of each of their CUDA kernels
cd "$(dirname "$0")/../../.."
STAGES="build sass test sanitize" PYTEST_TIMEOUT=280 SANITIZE_ARGS="--kernels prefill_sm90,prefill,decode" \
  RACECHECK_TIMEOUT=160 \
  RACECHECK_KERNELS="prefill:prefill_kernel decode:decode_kernel decode:combine_splits_kernel prefill_sm90:prefill_sm90_kernel prefill_sm90:mask_ranges_kernel" \
  timeout 570 bash scripts/device_run.sh > $OUT/run1.log 2>&1
echo "rc=$?"; tail -14 $OUT/run1.log
