#!/bin/bash
# the tile queue at head dim 64 (32 producer registers, 232 for the math warpgroups): smoke under a
# timeout, FMX_DYN per call beside cuDNN at head dim 64, then the prefill bench alone (the rule:
# causal calls take the queue)
W=docs/results/2026-12-03-h200-queue
STAGES="build sass" bash scripts/device_run.sh > $OUT/build.log 2>&1
tail -3 $OUT/summary.txt
timeout 60 python $W/smoke_queue.py > $OUT/smoke-queue.txt 2>&1; rc=$?
tail -2 $OUT/smoke-queue.txt; echo "smoke rc=$rc"
[ $rc -eq 0 ] || exit 1
cd scripts/investigations
timeout 80 python prefill_env_ab.py --env FMX_DYN --values 0,1 --rounds 3 --dtype fp16 --cells 64:1:256,64:1:512,64:1:1024,64:1:2048,64:1:4096,64:0:1024 > $OUT/ab-dyn-fp16.txt 2>&1; echo "ab fp16 rc=$?"
timeout 60 python prefill_env_ab.py --env FMX_DYN --values 0,1 --rounds 3 --dtype bf16 --cells 64:1:512,64:1:1024,64:1:2048 > $OUT/ab-dyn-bf16.txt 2>&1; echo "ab bf16 rc=$?"
cd ../..
cut -c1-200 $OUT/ab-dyn-fp16.txt $OUT/ab-dyn-bf16.txt
timeout 100 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 --json $OUT/bench-prefill-fp16.json > $OUT/bench-prefill-fp16.txt 2>&1; echo "bench fp16 rc=$?"
timeout 100 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 --dtype bf16 --json $OUT/bench-prefill-bf16.json > $OUT/bench-prefill-bf16.txt 2>&1; echo "bench bf16 rc=$?"
