#!/bin/bash
# contiguous whole-row tiles (working tree) with the plan knob (FLASHMIN_DECODE_EXP=pair=,splits=):
# build, plans beside cuDNN for the two cells under 1.0x, the full suite, decode sanitizers
cd "$(dirname "$0")/../../.."
git apply docs/results/2026-12-03-h200-tlb/plan-knob.patch || { echo "patch failed"; exit 1; }
STAGES="build sass" timeout 200 bash scripts/device_run.sh > $OUT/build2.log 2>&1; echo "build rc=$?"; tail -3 $OUT/build2.log
timeout 100 python -u scripts/investigations/decode_plans.py --shapes 8x32x32x128x65536 --rounds 2 "" pair=0,splits=2 pair=1,splits=2 \
  pair=0,splits=3 pair=0,splits=4 > $OUT/plans-a.txt 2>&1; echo "plans a rc=$?"; cat $OUT/plans-a.txt
timeout 100 python -u scripts/investigations/decode_plans.py --shapes 64x32x32x128x4096 --rounds 2 "" pair=1 pair=1,splits=2 \
  pair=0,splits=2 > $OUT/plans-b.txt 2>&1; echo "plans b rc=$?"; cat $OUT/plans-b.txt
STAGES="test sanitize" PYTEST_TIMEOUT=280 SANITIZE_ARGS="--kernels decode" \
  RACECHECK_KERNELS="decode:decode_kernel decode:combine_splits_kernel" timeout 420 bash scripts/device_run.sh > $OUT/run2.log 2>&1
echo "suite rc=$?"; tail -25 $OUT/run2.log
