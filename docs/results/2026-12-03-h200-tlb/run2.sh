#!/bin/bash
# main plus pre-knob.patch (tlb-knob.patch and FLASHMIN_DECODE_EXP=tlb=3: a paged tile's page bases
# computed after the previous tile's copies): rebuilt; the paged tests with tlb=3 forced; paged
# variants by configuration (pair, splits) with and without tlb=3; ncu stall sampling of the same
# configuration over a contiguous cache and 16-key pages
cd "$(dirname "$0")/../../.."
git apply docs/results/2026-12-03-h200-tlb/pre-knob.patch || exit 1
STAGES="build" timeout 200 bash scripts/device_run.sh > $OUT/build2.log 2>&1; echo "build rc=$?"; tail -2 $OUT/build2.log
FLASHMIN_DECODE_EXP=tlb=3 timeout 100 python -m pytest -q -x -p no:cacheprovider tests/test_paged_cuda.py tests/test_paged_kvcache.py -k "not cpu" -n 8 > $OUT/pytest-pre.txt 2>&1; echo "pytest tlb=3 rc=$?"; tail -1 $OUT/pytest-pre.txt
timeout 150 python -u scripts/investigations/paged_variants.py --lens 4096,16384,65536 --head-dims 64 "" tlb=3 pair=0,splits=1 pair=0,splits=1,tlb=3 \
  pair=1,splits=1 pair=1,splits=1,tlb=3 pair=0,splits=2 > $OUT/paged-variants-d64.txt 2>&1; echo "variants rc=$?"; grep "^|" $OUT/paged-variants-d64.txt
timeout 60 python -u scripts/investigations/paged_variants.py --lens 4096 --head-dims 128 "" tlb=3 > $OUT/paged-variants-d128.txt 2>&1; echo "variants rc=$?"; grep "^|" $OUT/paged-variants-d128.txt
for P in 0 16; do
  FLASHMIN_DECODE_EXP=pair=1,splits=1 timeout 90 ncu --clock-control none --kernel-name regex:decode_kernel --launch-skip 2 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SourceCounters -o /tmp/rep-p$P -f \
    python scripts/investigations/ncu_paged.py $P > $OUT/ncu-run-p$P.txt 2>&1; echo "ncu P=$P rc=$?"
  ncu --import /tmp/rep-p$P.ncu-rep --page details > $OUT/ncu-p$P.txt 2>&1
  grep -E "Duration|DRAM Throughput|Executed Ipc A|Eligible Warps|Issued Warp" $OUT/ncu-p$P.txt
  python scripts/investigations/ncu_stall_top.py /tmp/rep-p$P.ncu-rep --top 30 > $OUT/stall-p$P.txt 2>&1; head -60 $OUT/stall-p$P.txt
done
