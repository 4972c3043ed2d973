#!/bin/bash
# main's kernels + win128-knob.patch (FMX_WIN128=W: head dim 64 calls with a window of at most W keys
# to the left on the 128-row tiles; unset: the rule of main): build, the new softcap test (knob
# unset: main's kernels), the window tests with every window on 128-row tiles, the A/B per window
cd "$(dirname "$0")/../../.."
W=docs/results/2026-12-03-h200-win128
git apply $W/win128-knob.patch || { echo "patch failed"; exit 1; }
STAGES="build" timeout 200 bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "build rc=$?"; tail -2 $OUT/build.log
timeout 100 python -m pytest -q -n 15 -p no:cacheprovider tests/test_options_cuda.py -k "softcap_head_dims" > $OUT/pytest-softcap.txt 2>&1; echo "softcap tests rc=$?"; tail -2 $OUT/pytest-softcap.txt
FMX_WIN128=100000 timeout 100 python -m pytest -q -n 15 -p no:cacheprovider tests/test_options_cuda.py tests/test_varlen.py -k "window" > $OUT/pytest-window.txt 2>&1; echo "window tests rc=$?"; tail -2 $OUT/pytest-window.txt
for w in 128 256 512 1024 2048; do
  echo "# window ($w, 0), causal" >> $OUT/ab-win128-fp16.txt
  (cd scripts/investigations && timeout 60 python prefill_env_ab.py --env FMX_WIN128 --values -1,100000 --window $w --rounds 3 \
    --cells 64:1:2048,64:1:8192 >> $OUT/ab-win128-fp16.txt 2>&1); echo "ab $w rc=$?"
done
cut -c1-300 $OUT/ab-win128-fp16.txt
