#!/bin/bash
# main at 20d52e9, the build of run1 reused: the options against plain (full), the decode bench,
# the prefill bench in fp16 and bf16
cd "$(dirname "$0")/../../.."
python -c "import flashmin_nn._C" || { STAGES=build bash scripts/device_run.sh > $OUT/build.log 2>&1; tail -2 $OUT/build.log; }
timeout 150 python scripts/bench_options.py > $OUT/options.txt 2>&1; echo "options rc=$?"
timeout 90 python -m flashmin_nn.bench --suite decode > $OUT/bench-decode.txt 2>&1; echo "decode rc=$?"
timeout 90 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 > $OUT/bench-prefill-fp16.txt 2>&1; echo "fp16 rc=$?"
timeout 90 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 --dtype bf16 > $OUT/bench-prefill-bf16.txt 2>&1; echo "bf16 rc=$?"
tail -30 $OUT/options.txt
