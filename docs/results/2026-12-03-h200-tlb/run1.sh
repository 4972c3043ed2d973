#!/bin/bash
# main plus tlb-knob.patch (FLASHMIN_DECODE_EXP=tlb=1|2: one line of each page of a warp's tile group
# prefetched at its switch / when its numbers are read): rebuilt; the clamp and filled-keys CUDA tests;
# the paged tests with each tlb variant forced; the paged variants over three page orders; the random
# Llama's decisiveness under four initialisations
cd "$(dirname "$0")/../../.."
git apply docs/results/2026-12-03-h200-tlb/tlb-knob.patch || exit 1
STAGES="build" timeout 200 bash scripts/device_run.sh > $OUT/build1.log 2>&1; echo "build rc=$?"; tail -2 $OUT/build1.log
timeout 100 python -m pytest -q -p no:cacheprovider tests/test_cuda.py -k "clamped or filled_keys" -n 8 > $OUT/pytest-clamp.txt 2>&1; echo "pytest clamp rc=$?"; tail -1 $OUT/pytest-clamp.txt
for v in tlb=1 tlb=2; do
  FLASHMIN_DECODE_EXP=$v timeout 100 python -m pytest -q -x -p no:cacheprovider tests/test_paged_cuda.py tests/test_paged_kvcache.py -k "not cpu" -n 8 > $OUT/pytest-$v.txt 2>&1; echo "pytest $v rc=$?"; tail -1 $OUT/pytest-$v.txt
done
timeout 100 python -u scripts/investigations/paged_variants.py --lens 4096,16384,65536 --head-dims 64 --orders shuffled,local,ordered "" tlb=1 tlb=2 > $OUT/paged-variants-d64.txt 2>&1; echo "variants rc=$?"; grep "^|" $OUT/paged-variants-d64.txt
timeout 60 python -u scripts/investigations/paged_variants.py --lens 4096 --head-dims 128 --orders shuffled,ordered "" tlb=1 tlb=2 > $OUT/paged-variants-d128.txt 2>&1; echo "variants rc=$?"; grep "^|" $OUT/paged-variants-d128.txt
timeout 170 python -u scripts/investigations/llama_decisive.py --budget 100 > $OUT/llama-decisive.txt 2> $OUT/llama-decisive.err; echo "llama rc=$?"; grep "^|\|^#" $OUT/llama-decisive.txt; tail -3 $OUT/llama-decisive.err
