#!/bin/bash
# the plan switched per call (tail-knob.patch: FMX_TAIL 0 = the snake to the end, 6 = the plan, 3)
# at head dim 64, non-causal and causal, fp16 and bf16
W=docs/results/2026-12-03-h200-tailplan
git apply $W/tail-knob.patch || exit 1
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "build rc=$?"
C=64:0:512,64:0:1024,64:0:2048,64:0:4096,64:1:256,64:1:512,64:1:1024,64:1:2048,64:1:4096
for dt in fp16 bf16; do
  (cd scripts/investigations && timeout 120 python prefill_env_ab.py --env FMX_TAIL --values 0,6,3 --rounds 3 --dtype $dt --cells $C > $OUT/ab-tail-hdim64-$dt.txt 2>&1); echo "ab $dt rc=$?"
  cut -c1-230 $OUT/ab-tail-hdim64-$dt.txt
done
