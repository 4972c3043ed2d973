#!/bin/bash
# the turning of the tile walk on, off and by the rule, per call (FMX_ROT: r = the rule, 0, 1),
# then GPT-2 (FMX_ROT unset: the rule, as landed)
W=docs/results/2026-12-02-h200-1919431
patch -p1 < $W/rot-knob.patch || exit 1
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1
tail -2 $OUT/build.log
cd scripts/investigations
timeout 120 python prefill_env_ab.py --env FMX_ROT --values r,0,1 --rounds 5 --dtype fp16 \
  --cells 64:1:256,64:1:512,64:1:1024,64:0:512,64:0:1024,64:1:2048,128:1:256,128:0:256,128:1:512,128:1:2048 > $OUT/ab-rot-fp16.txt 2>&1; echo "ab rc=$?"
cd ../..
cut -c1-260 $OUT/ab-rot-fp16.txt
timeout 300 python examples/gpt2_infer.py --json $OUT/gpt2.json > $OUT/gpt2.txt 2> $OUT/gpt2.err; echo "gpt2 rc=$?"
grep -v "^timing\|^sdpa:\|^eager:\|^flashmin:" $OUT/gpt2.txt | head -60
