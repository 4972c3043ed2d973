#!/bin/bash
# tree E (the named-barrier hand-over, head dims 128/256 on the static walk's code): build, smoke,
# the three sanitizers over prefill_sm90, its tests, then FMX_DYN per call and the hdim 64 bench
W=docs/results/2026-12-03-h200-queue
STAGES="build sass" bash scripts/device_run.sh > $OUT/build.log 2>&1
tail -2 $OUT/summary.txt
timeout 40 python $W/smoke_queue.py > $OUT/smoke-e.txt 2>&1; rc=$?; tail -1 $OUT/smoke-e.txt; echo "smoke rc=$rc"
[ $rc -eq 0 ] || exit 1
export PYTORCH_NO_CUDA_MEMORY_CACHING=1
for t in racecheck memcheck synccheck; do
  a=""; [ $t = racecheck ] && a="--quick"
  timeout 60 compute-sanitizer --tool $t --error-exitcode 1 python scripts/sanitize.py --kernels prefill_sm90 $a > $OUT/san-$t-e.txt 2>&1; echo "$t rc=$? $(grep -E 'SUMMARY|calls ran' $OUT/san-$t-e.txt | tr '\n' ' ')"
done
unset PYTORCH_NO_CUDA_MEMORY_CACHING
timeout 90 python -m pytest -q -n 8 -p no:cacheprovider tests/test_cuda.py tests/test_varlen.py tests/test_options_cuda.py -k "sm90 or auto or tile_queue" > $OUT/pytest-e.txt 2>&1; echo "pytest rc=$?"; tail -1 $OUT/pytest-e.txt
(cd scripts/investigations && timeout 40 python prefill_env_ab.py --env FMX_DYN --values 0,1 --rounds 3 --dtype fp16 --cells 64:1:512,64:1:1024,64:1:2048 > $OUT/ab-dyn-e.txt 2>&1); cut -c1-200 $OUT/ab-dyn-e.txt
timeout 40 python -m flashmin_nn.bench --suite prefill --hdims 64 > $OUT/bench-e-fp16.txt 2>&1; echo "bench rc=$?"
timeout 40 python -m flashmin_nn.bench --suite prefill --hdims 64 --dtype bf16 > $OUT/bench-e-bf16.txt 2>&1; echo "bench bf16 rc=$?"
grep -E "fm .*sdpa-cudnn" $OUT/bench-e-fp16.txt $OUT/bench-e-bf16.txt | cut -c1-140 | head -40
