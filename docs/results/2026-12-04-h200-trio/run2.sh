#!/bin/bash
# Run 2 (not yet run on a GPU): softcap's fixed reference in bf16, per call. Main with fixedref.patch (the change) and fixedref-knob.patch
# applied (FMX_FIXED_REF=0: the running max, as before; unset or 1: the fixed reference), built; the
# softcap tests on it; prefill_env_ab.py with softcap 30 and 50 (bf16; fp16 beside as a control,
# where the knob changes nothing).
cd "$(dirname "$0")/../../.."
T0=$(date +%s); left() { echo $(( 590 - ($(date +%s) - T0) )); }
git apply docs/results/2026-12-04-h200-trio/fixedref.patch || exit 1
git apply docs/results/2026-12-04-h200-trio/fixedref-knob.patch || exit 1
STAGES="build" bash scripts/device_run.sh > $OUT/main.log 2>&1; tail -2 $OUT/main.log
cd scripts/investigations
timeout 200 python prefill_env_ab.py --env FMX_FIXED_REF --values 1,0 --dtype bf16 --softcap 30 --rounds 3 \
  --cells 64:1:2048,64:1:8192,64:0:4096,128:1:512,128:1:2048,128:1:8192,128:0:4096,256:1:4096 > $OUT/ab-bf16-cap30.txt 2>&1
echo "ab30 rc=$? left=$(left)"
timeout 90 python prefill_env_ab.py --env FMX_FIXED_REF --values 1,0 --dtype bf16 --softcap 50 --rounds 3 \
  --cells 64:1:8192,128:1:8192 > $OUT/ab-bf16-cap50.txt 2>&1; echo "ab50 rc=$? left=$(left)"
timeout 60 python prefill_env_ab.py --env FMX_FIXED_REF --values 1,0 --dtype fp16 --softcap 30 --rounds 2 \
  --cells 64:1:8192,128:1:8192 > $OUT/ab-fp16-cap30.txt 2>&1; echo "abfp16 rc=$? left=$(left)"
cd ../..
STAGES=test PYTEST_TARGETS="tests/test_options_cuda.py tests/test_varlen.py" PYTEST_ARGS="-k softcap" \
  PYTEST_TIMEOUT=$(( $(left) - 10 )) bash scripts/device_run.sh > $OUT/test.log 2>&1
head -12 $OUT/pytest.txt; cat $OUT/ab-*.txt
