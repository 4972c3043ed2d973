#!/bin/bash
# the decode plan without the 2 splits over 16-key pages at head dim 64 (this commit): build, the
# decode, paged and example tests, the paged bench, the Llama example with a DynamicCache (gap at split)
cd "$(dirname "$0")/../../.."
STAGES="build" timeout 200 bash scripts/device_run.sh > $OUT/build4.log 2>&1; echo "build rc=$?"; tail -2 $OUT/build4.log
timeout 150 python -m pytest -q -p no:cacheprovider tests/test_paged_cuda.py tests/test_paged_kvcache.py tests/test_decode.py \
  tests/test_decode_plan.py tests/test_kvcache_rows_cuda.py tests/test_example_and_setup.py -n 15 > $OUT/pytest4.txt 2>&1; echo "pytest rc=$?"; tail -3 $OUT/pytest4.txt
timeout 120 python -u scripts/bench_paged.py > $OUT/bench-paged.txt 2>&1; echo "paged rc=$?"; grep "^|" $OUT/bench-paged.txt
timeout 200 python -u examples/gpt2_infer.py --arch llama --cache dynamic --iters 1 --json $OUT/llama-dynamic.json > $OUT/llama-dynamic.txt 2> $OUT/llama-dynamic.err; echo "llama rc=$?"; cat $OUT/llama-dynamic.txt; tail -3 $OUT/llama-dynamic.err
