#!/bin/bash
# the planned tail (TileTail) and the 1024-byte aligned shared-memory base: build, smoke with the
# plan off and on, the three sanitizers over prefill_sm90, its tests, FMX_TAIL A/B, the bench
W=docs/results/2026-12-03-h200-tailplan
STAGES="build sass" bash scripts/device_run.sh > $OUT/build.log 2>&1
tail -3 $OUT/summary.txt 2>/dev/null || tail -5 $OUT/build.log
timeout 60 python $W/smoke_tail.py > $OUT/smoke.txt 2>&1; rc=$?; grep -c ok $OUT/smoke.txt; tail -1 $OUT/smoke.txt; echo "smoke rc=$rc"
[ $rc -eq 0 ] || { grep -v " ok" $OUT/smoke.txt | tail -20; exit 1; }
export PYTORCH_NO_CUDA_MEMORY_CACHING=1
for t in racecheck memcheck synccheck; do
  a=""; [ $t = racecheck ] && a="--quick"
  timeout 70 compute-sanitizer --tool $t --error-exitcode 1 python scripts/sanitize.py --kernels prefill_sm90 $a > $OUT/san-$t.txt 2>&1; echo "$t rc=$? $(grep -E 'SUMMARY|calls ran' $OUT/san-$t.txt | tr '\n' ' ')"
done
unset PYTORCH_NO_CUDA_MEMORY_CACHING
timeout 110 python -m pytest -q -n 8 -p no:cacheprovider tests/test_cuda.py tests/test_varlen.py tests/test_options_cuda.py -k "sm90 or auto or many_rounds" > $OUT/pytest.txt 2>&1; echo "pytest rc=$?"; grep -E "FAILED|Error" $OUT/pytest.txt | head -5; tail -1 $OUT/pytest.txt
(cd scripts/investigations && timeout 60 python prefill_env_ab.py --env FMX_TAIL --values 0,6 --rounds 3 --dtype fp16 --cells 64:1:512,64:1:1024,64:1:2048,64:1:4096,128:1:512,128:1:1024,128:1:2048,128:1:4096 > $OUT/ab-tail-fp16.txt 2>&1); cut -c1-200 $OUT/ab-tail-fp16.txt
timeout 60 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 > $OUT/bench-prefill-fp16.txt 2>&1; echo "bench rc=$?"
timeout 60 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 --dtype bf16 > $OUT/bench-prefill-bf16.txt 2>&1; echo "bench bf16 rc=$?"
grep -E "fm .*sdpa-cudnn|cudnn" $OUT/bench-prefill-fp16.txt | head -3
