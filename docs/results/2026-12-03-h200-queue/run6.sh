#!/bin/bash
# the tile index through st.async (completing on the Q slot's barrier): build, SASS check, smoke under
# a timeout, FMX_DYN per call at two cells, then the suite beside the sanitizers
W=docs/results/2026-12-03-h200-queue
STAGES="build sass" bash scripts/device_run.sh > $OUT/build.log 2>&1
tail -3 $OUT/summary.txt
timeout 60 python $W/smoke_queue.py > $OUT/smoke-queue.txt 2>&1; rc=$?
tail -1 $OUT/smoke-queue.txt; echo "smoke rc=$rc"
[ $rc -eq 0 ] || exit 1
(cd scripts/investigations && timeout 40 python prefill_env_ab.py --env FMX_DYN --values 0,1 --rounds 3 --dtype fp16 --cells 64:1:512,64:1:1024 > $OUT/ab-dyn-st-async.txt 2>&1); cut -c1-200 $OUT/ab-dyn-st-async.txt
( STAGES="test" PYTEST_TIMEOUT=220 PYTEST_WORKERS=8 LOGS=/tmp/logs-test bash scripts/device_run.sh > $OUT/test.log 2>&1 ) &
tp=$!
sleep 2
STAGES="sanitize" RACECHECK_TIMEOUT=120 RACECHECK_KERNELS="prefill_sm90:prefill_sm90_kernel" LOGS=/tmp/logs-san bash scripts/device_run.sh > $OUT/san.log 2>&1
wait $tp
for f in /tmp/logs-san/sanitize-*.log; do echo "$(basename $f): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^rc=|calls' $f | grep -v 'Host Frame' | tail -3 | paste -sd ';' -)"; done | tee $OUT/sanitize-summary.txt
grep -v "Host Frame" /tmp/logs-san/sanitize-racecheck*.log | grep -iE "hazard|error" | head -5 | cut -c1-200
head -3 $OUT/pytest.txt
