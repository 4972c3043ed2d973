#!/bin/bash
# the tree of run1 plus pages16-knob.patch (head dim 64, 16-key tiles in 4 / 6 / 8 slots, chosen per
# call by FLASHMIN_DECODE_EXP): rebuilt; the paged decode tests with the 6-slot one forced; the
# variants over 16-key pages and the contiguous cache
cd "$(dirname "$0")/../../.."
git apply docs/results/2026-12-03-h200-filled/pages16-knob.patch || patch -p1 < docs/results/2026-12-03-h200-filled/pages16-knob.patch || exit 1
STAGES="build" timeout 200 bash scripts/device_run.sh > $OUT/build3.log 2>&1; echo "build rc=$?"; tail -3 $OUT/build3.log
for v in pages=4 pages=6 pages=8; do
  FLASHMIN_DECODE_EXP=$v timeout 100 python -m pytest -q -x -p no:cacheprovider tests/test_paged_cuda.py tests/test_decode.py -k "64 and not cpu" -n 8 > $OUT/pytest-$v.txt 2>&1; echo "pytest $v rc=$?"; tail -1 $OUT/pytest-$v.txt
done
timeout 200 python -u scripts/investigations/paged_variants.py --lens 1024,4096,16384,65536 --head-dims 64 "" pages=4 pages=6 pages=8 \
  pages=4,splits=2 pages=6,splits=2 pages=8,splits=2 pages=6,splits=4 > $OUT/paged-variants.txt 2>&1; echo "variants rc=$?"; grep "^|" $OUT/paged-variants.txt
