#!/bin/bash
# GPT-2 end to end on the merged tree: build, then examples/gpt2_infer.py --cache dynamic
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "build rc=$?"
timeout 330 python examples/gpt2_infer.py --cache dynamic --json $OUT/gpt2.json > $OUT/gpt2.txt 2> $OUT/gpt2.err; echo "gpt2 rc=$?"
cat $OUT/gpt2.txt | tail -30
