#!/bin/bash
# the landed tree: build, then the prefill bench alone (fp16 and bf16, hdims 64/128/256), then the
# smoke check of every CUDA kernel against float64
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1
tail -2 $OUT/build.log
timeout 110 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 --json $OUT/bench-prefill-fp16.json > $OUT/bench-prefill-fp16.txt 2>&1; echo "bench fp16 rc=$?"
timeout 110 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 --dtype bf16 --json $OUT/bench-prefill-bf16.json > $OUT/bench-prefill-bf16.txt 2>&1; echo "bench bf16 rc=$?"
timeout 60 python scripts/smoke.py > $OUT/smoke.txt 2>&1; echo "smoke rc=$?"; tail -3 $OUT/smoke.txt
grep -E "fm .*sdpa-cudnn" $OUT/bench-prefill-fp16.txt | sed 's/\[prefill\] //' | cut -c1-110
