#!/bin/bash
# the plan at every head dim with its rounds per call (tail-knob.patch + kPlanTail true): does a
# shorter tail (2-3 rounds, fewer heads side by side) keep head dim 128 and 256 from losing?
W=docs/results/2026-12-03-h200-tailplan
git apply $W/tail-knob.patch || exit 1
sed -i 's/static constexpr bool kPlanTail = kHeadDim == 64;/static constexpr bool kPlanTail = true;/' csrc/prefill_sm90/prefill_sm90_kernel.cuh
grep -c "kPlanTail = true" csrc/prefill_sm90/prefill_sm90_kernel.cuh || exit 1
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "build rc=$?"
(cd scripts/investigations && timeout 100 python prefill_env_ab.py --env FMX_TAIL --values 0,2,3,6 --rounds 3 --dtype fp16 \
  --cells 128:1:512,128:1:1024,128:1:2048,128:1:4096,256:1:1024,256:1:2048,256:1:4096,64:1:512 > $OUT/ab-tail-short-fp16.txt 2>&1); echo "ab rc=$?"
cut -c1-260 $OUT/ab-tail-short-fp16.txt
