#!/bin/bash
# the final tree (the mask scan's first tail byte loaded with its chunks): build, SASS check, the
# full suite, compute-sanitizer over the decode kernel and over prefill_sm90 with the mask-range
# pass, the static-cache step alone, GPT-2 static compiled
cd "$(dirname "$0")/../../.."
STAGES="build sass test sanitize" PYTEST_TIMEOUT=240 SANITIZE_ARGS="--kernels decode" \
  RACECHECK_KERNELS="decode:decode_kernel decode:combine_splits_kernel" timeout 420 bash scripts/device_run.sh > $OUT/run.log 2>&1
echo "device_run rc=$?"; sed -n '/=== summary/,$p' $OUT/run.log | tail -12; grep -E "^FAILED|^ERROR" $OUT/pytest.txt | head -20
cp $OUT/summary.txt $OUT/summary-decode.txt 2>/dev/null
STAGES="sanitize" SANITIZE_ARGS="--kernels prefill_sm90 --parts prefill" RACECHECK_KERNELS="prefill_sm90:mask_ranges_kernel" \
  timeout 60 bash scripts/device_run.sh > $OUT/sanitize-prefill.log 2>&1; echo "sanitize rc=$?"; sed -n '/=== summary/,$p' $OUT/sanitize-prefill.log | tail -6
timeout 70 python -u scripts/investigations/static_decode.py --interleave > $OUT/static-decode.txt 2>&1; echo "static rc=$?"; grep "^|\|^#" $OUT/static-decode.txt | cut -c1-130
timeout 130 python -u examples/gpt2_infer.py --cache static --iters 6 --json $OUT/gpt2-static.json > $OUT/gpt2-static.txt 2> $OUT/gpt2-static.err; echo "gpt2 rc=$?"; tail -7 $OUT/gpt2-static.txt
