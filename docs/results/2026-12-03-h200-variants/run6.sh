#!/bin/bash
# where the GPU time of a static-cache, compiled GPT-2 generation goes (sdpa and flashmin)
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "build rc=$?"
timeout 150 python -u scripts/investigations/gpt2_static_profile.py --new-tokens 48 --top 14 > $OUT/gpt2-static-profile.txt 2> $OUT/gpt2-static-profile.err; echo "profile rc=$?"
cat $OUT/gpt2-static-profile.txt; grep -v "^USDT\|Warning\|warn" $OUT/gpt2-static-profile.err | tail -5
