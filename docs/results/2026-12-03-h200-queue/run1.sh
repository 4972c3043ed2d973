#!/bin/bash
# the dynamic tile queue (FMX_DYN: 0 the static walk, 1 the queue for every persistent call, unset
# the rule: causal calls) and the tail's rounds (FMX_TAILR), switched per call beside cuDNN; then
# the prefill tests and the sanitizers with the queue forced on every persistent call
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1
tail -2 $OUT/build.log
cd scripts/investigations
C="64:1:256,64:1:512,64:1:1024,64:1:2048,64:1:4096,128:1:512,128:1:1024,128:1:2048,128:1:4096,64:0:1024,128:0:2048"
timeout 110 python prefill_env_ab.py --env FMX_DYN --values 0,1 --rounds 3 --dtype fp16 --cells $C > $OUT/ab-dyn-fp16.txt 2>&1; echo "ab fp16 rc=$?"
timeout 80 python prefill_env_ab.py --env FMX_DYN --values 0,1 --rounds 3 --dtype bf16 --cells 64:1:512,64:1:1024,64:1:2048,128:1:1024,128:1:4096 > $OUT/ab-dyn-bf16.txt 2>&1; echo "ab bf16 rc=$?"
FMX_DYN=1 timeout 80 python prefill_env_ab.py --env FMX_TAILR --values 6,0,3,10 --rounds 3 --dtype fp16 --cells 64:1:512,64:1:1024,64:1:2048,128:1:1024,128:1:4096 > $OUT/ab-tail-fp16.txt 2>&1; echo "ab tail rc=$?"
cd ../..
cut -c1-300 $OUT/ab-dyn-fp16.txt $OUT/ab-dyn-bf16.txt $OUT/ab-tail-fp16.txt
export FMX_DYN=1
( timeout 170 python -m pytest -q -x -n 8 -p no:cacheprovider tests/test_cuda.py tests/test_options_cuda.py tests/test_varlen.py > $OUT/pytest-dyn.txt 2>&1; echo "pytest rc=$?" >> $OUT/pytest-dyn.txt ) &
tp=$!
sleep 2
PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 170 compute-sanitizer --tool memcheck --error-exitcode 1 python scripts/sanitize.py --kernels prefill_sm90 > $OUT/memcheck-dyn.txt 2>&1; echo "memcheck rc=$?"
wait $tp
tail -3 $OUT/pytest-dyn.txt
grep -E "ERROR SUMMARY|calls" $OUT/memcheck-dyn.txt | tail -3
