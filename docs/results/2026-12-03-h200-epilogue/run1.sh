#!/bin/bash
# The stmatrix epilogue of prefill_sm90 (working tree) with exp-knob.patch: FMX_STS=1 switches back
# to the STS epilogue per call; the decode kernel's block timeline and barrier knob. Build, the
# prefill_sm90 tests, the epilogue A/B beside cuDNN (fp16, bf16), the decode timeline.
cd "$(dirname "$0")/../../.."
git apply docs/results/2026-12-03-h200-epilogue/exp-knob.patch || { echo "patch failed"; exit 1; }
STAGES=build bash scripts/device_run.sh > $OUT/build.log 2>&1; tail -2 $OUT/build.log
timeout 150 python -m pytest -q -x -p no:cacheprovider tests -k sm90 -n 15 > $OUT/pytest-sm90.txt 2>&1; echo "pytest rc=$?"; tail -2 $OUT/pytest-sm90.txt
timeout 120 python scripts/investigations/prefill_env_ab.py --env FMX_STS --values 0,1 --rounds 4 \
  --cells 64:1:512,64:1:1024,64:1:2048,64:0:512,64:0:1024,128:1:512,128:1:1024,128:0:512,128:0:1024,64:1:16384,128:0:16384 > $OUT/ab-sts-fp16.txt 2>&1; echo "ab fp16 rc=$?"
timeout 60 python scripts/investigations/prefill_env_ab.py --env FMX_STS --values 0,1 --rounds 3 --dtype bf16 \
  --cells 64:1:512,64:1:1024,128:0:512,128:1:512 > $OUT/ab-sts-bf16.txt 2>&1; echo "ab bf16 rc=$?"
timeout 120 python scripts/investigations/decode_timeline.py > $OUT/timeline.txt 2>&1; echo "timeline rc=$?"
cat $OUT/ab-sts-fp16.txt $OUT/ab-sts-bf16.txt $OUT/timeline.txt | tail -60
