#!/bin/bash
# the landed tree (the turning only where the query blocks divide the grid): build, SASS check,
# the prefill bench alone (fp16 and bf16, hdims 64/128/256), GPT-2, the options bench, then the
# suite beside the sanitizers
STAGES="build sass" bash scripts/device_run.sh > $OUT/build.log 2>&1
tail -4 $OUT/summary.txt
cp $OUT/summary.txt $OUT/summary-build.txt
timeout 120 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 --json $OUT/bench-prefill-fp16.json > $OUT/bench-prefill-fp16.txt 2>&1; echo "bench fp16 rc=$?"
timeout 120 python -m flashmin_nn.bench --suite prefill --hdims 64,128,256 --dtype bf16 --json $OUT/bench-prefill-bf16.json > $OUT/bench-prefill-bf16.txt 2>&1; echo "bench bf16 rc=$?"
timeout 100 python examples/gpt2_infer.py > $OUT/gpt2.txt 2>&1; echo "gpt2 rc=$?"
timeout 80 python scripts/bench_options.py > $OUT/options.txt 2>&1; echo "options rc=$?"
( STAGES="test" PYTEST_TIMEOUT=250 PYTEST_WORKERS=8 LOGS=/tmp/logs-test bash scripts/device_run.sh > $OUT/test.log 2>&1 ) &
tp=$!
sleep 2
STAGES="sanitize" RACECHECK_TIMEOUT=150 RACECHECK_KERNELS="prefill_sm90:prefill_sm90_kernel" LOGS=/tmp/logs-san bash scripts/device_run.sh > $OUT/san.log 2>&1
wait $tp
for f in /tmp/logs-san/sanitize-*.log; do echo "$(basename $f): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|^rc=|calls' $f | grep -v 'Host Frame' | tail -3 | paste -sd ';' -)"; done | tee $OUT/sanitize-summary.txt
head -3 $OUT/pytest.txt
grep -E "fm .*sdpa-cudnn" $OUT/bench-prefill-fp16.txt | sed 's/\[prefill\] //' | cut -c1-120
grep -E "^flashmin |^sdpa " $OUT/gpt2.txt
