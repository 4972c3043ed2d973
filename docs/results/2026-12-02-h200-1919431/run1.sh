#!/bin/bash
# idle-warpgroup skip and the rotating snake: per-call A/B (FMX_SR), then the suite and the
# sanitizers on the same binary (FMX_SR unset = both on)
W=docs/results/2026-12-02-h200-skip
patch -p1 < $W/sr-knob.patch || exit 1
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1
tail -2 $OUT/build.log
cd scripts/investigations
C64="64:0:512,64:0:1024,64:0:2048,64:0:4096,64:0:8192,64:0:16384,64:1:512,64:1:1024,64:1:2048,64:1:4096,128:0:1024,128:1:2048"
timeout 150 python prefill_env_ab.py --env FMX_SR --values 3,0,1,2 --rounds 3 --dtype fp16 --cells $C64 > $OUT/ab-fp16.txt 2>&1; echo "ab fp16 rc=$?"
timeout 100 python prefill_env_ab.py --env FMX_SR --values 3,0 --rounds 3 --dtype bf16 --cells 64:0:512,64:0:1024,64:0:2048,64:1:2048,64:1:4096 > $OUT/ab-bf16.txt 2>&1; echo "ab bf16 rc=$?"
cd ../..
cat $OUT/ab-fp16.txt $OUT/ab-bf16.txt | cut -c1-330
( STAGES="test" PYTEST_TIMEOUT=280 PYTEST_WORKERS=8 LOGS=/tmp/logs-test bash scripts/device_run.sh > $OUT/test.log 2>&1; cp $OUT/summary.txt $OUT/summary-test.txt ) &
tp=$!
sleep 2
STAGES="sanitize" RACECHECK_TIMEOUT=150 RACECHECK_KERNELS="prefill_sm90:prefill_sm90_kernel" LOGS=/tmp/logs-san bash scripts/device_run.sh > $OUT/san.log 2>&1
wait $tp
for f in /tmp/logs-san/sanitize-*.log; do echo "$(basename $f): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^rc=|calls' $f | grep -v 'Host Frame' | tail -3 | paste -sd ';' -)"; done
grep -v "Host Frame" /tmp/logs-san/sanitize-synccheck.log | grep -E "Error|error|Barrier|at " | head -10 | cut -c1-200
head -5 $OUT/pytest.txt
