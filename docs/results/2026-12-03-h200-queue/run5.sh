#!/bin/bash
# same binary as run4 (built there): the suite beside the sanitizers (memcheck, synccheck, racecheck of prefill_sm90)
( STAGES="test" PYTEST_TIMEOUT=220 PYTEST_WORKERS=8 LOGS=/tmp/logs-test bash scripts/device_run.sh > $OUT/test.log 2>&1 ) &
tp=$!
sleep 2
STAGES="sanitize" RACECHECK_TIMEOUT=120 RACECHECK_KERNELS="prefill_sm90:prefill_sm90_kernel" LOGS=/tmp/logs-san bash scripts/device_run.sh > $OUT/san.log 2>&1
wait $tp
for f in /tmp/logs-san/sanitize-*.log; do echo "$(basename $f): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^rc=|calls' $f | grep -v 'Host Frame' | tail -3 | paste -sd ';' -)"; done | tee $OUT/sanitize-summary.txt
grep -v "Host Frame" /tmp/logs-san/sanitize-racecheck*.log | grep -iE "hazard|error" | head -5 | cut -c1-200
head -5 $OUT/pytest.txt
