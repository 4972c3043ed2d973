#!/bin/bash
# the tile queue, second form (the producer takes each next tile itself; the consumers read it
# beside the Q slot): a smoke check under a timeout, then FMX_DYN and FMX_TAILR per call beside cuDNN
W=docs/results/2026-12-03-h200-queue
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1
tail -2 $OUT/build.log
timeout 60 python $W/smoke_queue.py > $OUT/smoke-queue.txt 2>&1; rc=$?
tail -4 $OUT/smoke-queue.txt; echo "smoke rc=$rc"
[ $rc -eq 0 ] || exit 1
cd scripts/investigations
C="64:1:256,64:1:512,64:1:1024,64:1:2048,64:1:4096,128:1:512,128:1:1024,128:1:2048,128:1:4096,64:0:1024,128:0:2048"
timeout 130 python prefill_env_ab.py --env FMX_DYN --values 0,1 --rounds 3 --dtype fp16 --cells $C > $OUT/ab-dyn-fp16.txt 2>&1; echo "ab fp16 rc=$?"
timeout 70 python prefill_env_ab.py --env FMX_DYN --values 0,1 --rounds 3 --dtype bf16 --cells 64:1:512,64:1:1024,64:1:2048,128:1:1024,128:1:4096 > $OUT/ab-dyn-bf16.txt 2>&1; echo "ab bf16 rc=$?"
FMX_DYN=1 timeout 80 python prefill_env_ab.py --env FMX_TAILR --values 6,0,3,10 --rounds 3 --dtype fp16 --cells 64:1:512,64:1:1024,64:1:2048,128:1:1024,128:1:4096 > $OUT/ab-tail-fp16.txt 2>&1; echo "ab tail rc=$?"
cd ../..
cut -c1-250 $OUT/ab-dyn-fp16.txt $OUT/ab-dyn-bf16.txt $OUT/ab-tail-fp16.txt
