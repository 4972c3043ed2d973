#!/bin/bash
# the tree of 09ae656 (no knob): build, the paged bench, the example's default run (GPT-2: dynamic
# and static compiled tables), the Llama shape with a DynamicCache over 3 rounds
cd "$(dirname "$0")/../../.."
STAGES="build" timeout 200 bash scripts/device_run.sh > $OUT/build3.log 2>&1; echo "build rc=$?"; tail -2 $OUT/build3.log
timeout 100 python -u scripts/bench_paged.py > $OUT/bench-paged.txt 2>&1; echo "paged rc=$?"; grep "^|" $OUT/bench-paged.txt
timeout 200 python -u examples/gpt2_infer.py --json $OUT/gpt2-default.json > $OUT/gpt2-default.txt 2> $OUT/gpt2-default.err; echo "gpt2 rc=$?"; cat $OUT/gpt2-default.txt; tail -3 $OUT/gpt2-default.err
timeout 160 python -u examples/gpt2_infer.py --arch llama --cache dynamic --iters 3 --json $OUT/llama-dynamic.json > $OUT/llama-dynamic.txt 2> $OUT/llama-dynamic.err; echo "llama rc=$?"; cat $OUT/llama-dynamic.txt; tail -3 $OUT/llama-dynamic.err
