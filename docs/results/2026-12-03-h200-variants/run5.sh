#!/bin/bash
# GPT-2 with the pair configurations (head dim 64 decode): the dynamic-cache table, then the static cache compiled
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "build rc=$?"
timeout 200 python examples/gpt2_infer.py --cache dynamic --json $OUT/gpt2-dynamic.json > $OUT/gpt2-dynamic.txt 2> $OUT/gpt2-dynamic.err; echo "dynamic rc=$?"
timeout 230 python examples/gpt2_infer.py --cache static --iters 6 --json $OUT/gpt2-static.json > $OUT/gpt2-static.txt 2> $OUT/gpt2-static.err; echo "static rc=$?"
tail -22 $OUT/gpt2-dynamic.txt; tail -22 $OUT/gpt2-static.txt; tail -3 $OUT/gpt2-static.err
