#!/bin/bash
# softcap's tanh factor in Q (capq.patch on 20d52e9; it was the working tree when this ran) with capq-knob.patch (FLASHMIN_CAPQ=N: the key tiles a
# work tile needs for Q to take the factor; 1000: never): build, the A/B per call beside cuDNN and
# plain, the options bench (full) at the default (4)
cd "$(dirname "$0")/../../.."
W=docs/results/2026-12-03-h200-capq
git apply $W/capq.patch && git apply $W/capq-knob.patch || { echo "patch failed"; exit 1; }
STAGES="build sass" timeout 200 bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "build rc=$?"; tail -3 $OUT/build.log
(cd scripts/investigations && timeout 200 python prefill_env_ab.py --env FLASHMIN_CAPQ --values 1000,4,2 --softcap 30 --rounds 3 \
  --cells 64:1:512,64:1:2048,64:1:8192,64:0:2048,128:1:512,128:1:1024,128:1:2048,128:1:4096,128:1:8192,128:0:512,128:0:2048,128:0:8192,256:1:2048,256:0:4096 \
  > $OUT/ab-capq-fp16.txt 2>&1); echo "ab rc=$?"; cut -c1-330 $OUT/ab-capq-fp16.txt
timeout 150 python scripts/bench_options.py > $OUT/options.txt 2>&1; echo "options rc=$?"; grep -E "plain|softcap" $OUT/options.txt | grep prefill | cut -c1-120
