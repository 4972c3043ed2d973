#!/bin/bash
# the plan at head dim 64 only, no FMX_TAIL knob: build, the full CUDA suite, prefill_sm90 under the
# three sanitizers, the prefill bench in fp16 and bf16, the GPT-2 example
W=docs/results/2026-12-03-h200-tailplan
STAGES="build sass test sanitize" PYTEST_TIMEOUT=230 SANITIZE_ARGS="--kernels prefill_sm90" RACECHECK_KERNELS="prefill_sm90:prefill_sm90" \
  RACECHECK_TIMEOUT=90 bash scripts/device_run.sh > $OUT/device_run.log 2>&1; echo "device_run rc=$?"
timeout 60 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 --json $OUT/bench-prefill-fp16.json > $OUT/bench-prefill-fp16.txt 2>&1; echo "bench rc=$?"
timeout 60 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 --dtype bf16 --json $OUT/bench-prefill-bf16.json > $OUT/bench-prefill-bf16.txt 2>&1; echo "bench bf16 rc=$?"
timeout 150 python examples/gpt2_infer.py --json $OUT/gpt2.json > $OUT/gpt2.txt 2> $OUT/gpt2.err; echo "gpt2 rc=$?"
cat $OUT/summary.txt
tail -15 $OUT/gpt2.txt
