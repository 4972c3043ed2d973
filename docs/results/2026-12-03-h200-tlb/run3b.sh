#!/bin/bash
# after run3a on the same machine (its build): paged variants by plan, the paged bench, the decode bench
cd "$(dirname "$0")/../../.."
timeout 120 python -u scripts/investigations/paged_variants.py --lens 4096,16384,65536 --head-dims 64 "" pair=1,splits=1 pair=0,splits=2 \
  pair=1,splits=2 pair=0,splits=1 > $OUT/paged-variants-d64.txt 2>&1; echo "variants rc=$?"; grep "^|" $OUT/paged-variants-d64.txt
timeout 200 python -u scripts/bench_paged.py > $OUT/bench-paged.txt 2>&1; echo "paged rc=$?"; grep "^|" $OUT/bench-paged.txt
timeout 150 python -u -m flashmin_nn.bench --suite decode > $OUT/bench-decode.txt 2>&1; echo "decode rc=$?"; grep "^|" $OUT/bench-decode.txt
