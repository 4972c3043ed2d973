#!/bin/bash
# same tree, same machine (run1's build kept; rebuilt if absent): the static-cache step alone, the
# decode bench, GPT-2 static compiled
cd "$(dirname "$0")/../../.."
python -c "import flashmin_nn._C" 2>/dev/null || { STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "rebuilt rc=$?"; }
timeout 90 python -u scripts/investigations/static_decode.py --interleave > $OUT/static-decode.txt 2>&1; echo "static rc=$?"; grep "^|\|^#" $OUT/static-decode.txt | cut -c1-400
timeout 90 python -m flashmin_nn.bench --suite decode --json $OUT/bench-decode.json > $OUT/bench-decode.txt 2>&1; echo "bench rc=$?"; grep "^|" $OUT/bench-decode.txt
timeout 150 python -u examples/gpt2_infer.py --cache static --iters 6 --json $OUT/gpt2-static.json > $OUT/gpt2-static.txt 2> $OUT/gpt2-static.err; echo "gpt2 rc=$?"; tail -9 $OUT/gpt2-static.txt; tail -3 $OUT/gpt2-static.err
timeout 200 python -u examples/gpt2_infer.py --arch llama --cache static --iters 3 --json $OUT/llama-static.json > $OUT/llama-static.txt 2> $OUT/llama-static.err; echo "llama rc=$?"; tail -9 $OUT/llama-static.txt; tail -3 $OUT/llama-static.err
