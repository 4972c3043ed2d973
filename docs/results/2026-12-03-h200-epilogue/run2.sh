#!/bin/bash
# The working tree (stmatrix epilogue, and a ragged tile's first half left unmasked where every row
# of the warp sees it) with exp-knob-2.patch: FMX_NOHALF=1 compares every key again, FMX_STS=1 the
# old epilogue. Build, the prefill_sm90 tests, both A/Bs beside cuDNN.
cd "$(dirname "$0")/../../.."
git apply docs/results/2026-12-03-h200-epilogue/exp-knob-2.patch || { echo "patch failed"; exit 1; }
STAGES=build bash scripts/device_run.sh > $OUT/build.log 2>&1; tail -2 $OUT/build.log
timeout 150 python -m pytest -q -x -p no:cacheprovider tests -k sm90 -n 15 > $OUT/pytest-sm90.txt 2>&1; echo "pytest rc=$?"; tail -2 $OUT/pytest-sm90.txt
C=64:1:512,64:1:1024,64:1:2048,64:1:4096,128:1:512,128:1:1024,128:1:2048,64:1:16384,64:0:512
timeout 120 python scripts/investigations/prefill_env_ab.py --env FMX_NOHALF --values 0,1 --rounds 4 --cells $C > $OUT/ab-nohalf-fp16.txt 2>&1; echo "ab nohalf fp16 rc=$?"
timeout 60 python scripts/investigations/prefill_env_ab.py --env FMX_NOHALF --values 0,1 --rounds 4 --dtype bf16 --cells 64:1:512,64:1:1024,128:1:512 > $OUT/ab-nohalf-bf16.txt 2>&1; echo "ab nohalf bf16 rc=$?"
timeout 60 python scripts/investigations/prefill_env_ab.py --env FMX_STS --values 0,1 --rounds 4 --cells 64:1:512,64:1:1024,128:0:512,128:1:1024 > $OUT/ab-sts-fp16.txt 2>&1; echo "ab sts fp16 rc=$?"
cat $OUT/ab-nohalf-fp16.txt $OUT/ab-nohalf-bf16.txt $OUT/ab-sts-fp16.txt
