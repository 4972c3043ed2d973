#!/bin/bash
# final tree, same machine (the build of run3.sh kept; rebuilt if absent): compute-sanitizer over
# prefill_sm90 and the mask-range pass, the decode bench, the static-cache step, GPT-2 static compiled
cd "$(dirname "$0")/../../.."
python -c "import flashmin_nn._C" 2>/dev/null || { STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "rebuilt rc=$?"; }
STAGES="sanitize" SANITIZE_ARGS="--kernels prefill_sm90 --parts prefill" RACECHECK_KERNELS="prefill_sm90:mask_ranges_kernel" \
  timeout 200 bash scripts/device_run.sh > $OUT/sanitize-prefill.log 2>&1; echo "sanitize rc=$?"; sed -n '/=== summary/,$p' $OUT/sanitize-prefill.log | tail -6
timeout 90 python -m flashmin_nn.bench --suite decode --json $OUT/bench-decode.json > $OUT/bench-decode.txt 2>&1; echo "bench rc=$?"; grep "^|" $OUT/bench-decode.txt
timeout 60 python -u scripts/investigations/static_decode.py --interleave > $OUT/static-decode.txt 2>&1; echo "static rc=$?"; grep "^|\|^#" $OUT/static-decode.txt
timeout 30 python -u scripts/investigations/static_decode.py --prefill > $OUT/prefill-ranges.txt 2>&1; grep -v "Warn\|_warn" $OUT/prefill-ranges.txt
timeout 140 python -u examples/gpt2_infer.py --cache static --iters 6 --json $OUT/gpt2-static.json > $OUT/gpt2-static.txt 2> $OUT/gpt2-static.err; echo "gpt2 rc=$?"; tail -7 $OUT/gpt2-static.txt
timeout 120 python -u scripts/investigations/gpt2_static_profile.py --new-tokens 48 --top 14 > $OUT/gpt2-static-profile.txt 2> $OUT/gpt2-static-profile.err; echo "profile rc=$?"; grep "^##\|decode_kernel\|mask_ranges\|cudnn" $OUT/gpt2-static-profile.txt | cut -c1-160
