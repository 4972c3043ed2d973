#!/bin/bash
# the paged whole-tile copies (kernels of this commit) with plan-knob.patch (FLASHMIN_DECODE_EXP=pair=,splits=
# read by the host plan; unset here): build, SASS check, the full suite, compute-sanitizer over the decode
# kernel (decode, paged and varlen parts)
cd "$(dirname "$0")/../../.."
git apply docs/results/2026-12-03-h200-tlb/plan-knob.patch || exit 1
STAGES="build sass test sanitize" PYTEST_TIMEOUT=240 SANITIZE_ARGS="--kernels decode" \
  RACECHECK_KERNELS="decode:decode_kernel decode:combine_splits_kernel" timeout 560 bash scripts/device_run.sh > $OUT/run.log 2>&1
echo "device_run rc=$?"; sed -n '/=== summary/,$p' $OUT/run.log | tail -12; grep -E "^FAILED|^ERROR" $OUT/pytest.txt | head -20
