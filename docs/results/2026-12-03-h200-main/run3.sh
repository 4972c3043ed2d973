#!/bin/bash
# main with the softcap-alone sanitizer case (8df68ca): build, compute-sanitizer over prefill_sm90
cd "$(dirname "$0")/../../.."
STAGES="build sanitize" SANITIZE_ARGS="--kernels prefill_sm90 --parts prefill" RACECHECK_KERNELS="prefill_sm90:prefill_sm90_kernel" \
  timeout 280 bash scripts/device_run.sh > $OUT/run3.log 2>&1
echo "rc=$?"; tail -6 $OUT/run3.log
