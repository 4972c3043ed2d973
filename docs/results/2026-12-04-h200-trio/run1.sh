#!/bin/bash
# Run 1: the trio configuration's A/B and the whole suite. The tree with trio-knob.patch applied
# (FLASHMIN_DECODE_EXP="cfg=one|pair|trio,splits=S" read by the decode plan at each call; inert
# unset): build and SASS check, decode_variants.py over grids of more than two blocks per SM, then
# the whole test suite in what time is left.
cd "$(dirname "$0")/../../.."
T0=$(date +%s); left() { echo $(( 590 - ($(date +%s) - T0) )); }
git apply docs/results/2026-12-04-h200-trio/trio-knob.patch || exit 1
STAGES="build sass" bash scripts/device_run.sh > $OUT/main.log 2>&1; tail -4 $OUT/main.log
timeout 170 python scripts/investigations/decode_variants.py --shapes waves "" cfg=one cfg=trio cfg=pair "cfg=trio,splits=1" "" \
  > $OUT/variants.txt 2>&1; echo "variants rc=$? left=$(left)"
STAGES=test PYTEST_TIMEOUT=$(( $(left) - 15 )) bash scripts/device_run.sh > $OUT/test.log 2>&1
tail -3 $OUT/test.log; head -30 $OUT/pytest.txt; cat $OUT/variants.txt
