#!/bin/bash
# experiment build (FLASHMIN_DECODE_PDL read at each decode launch): the decode tests with PDL on,
# the static-cache step A/B (PDL on/off, one small kernel before each call), the mask-range pass, the decode bench with PDL on
cd "$(dirname "$0")/../../.."
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "build rc=$?"; tail -3 $OUT/build.log
FLASHMIN_DECODE_PDL=1 timeout 150 python -m pytest -q -n 15 -p no:cacheprovider tests/test_decode.py tests/test_cuda.py -k "decode or bool_mask_ranges or bool_mask_tiles" > $OUT/pytest-pdl.txt 2>&1; echo "pytest rc=$?"; tail -3 $OUT/pytest-pdl.txt
timeout 100 python -u scripts/investigations/static_decode.py --interleave > $OUT/static-decode-pdl.txt 2>&1; echo "static rc=$?"; grep -v Warn $OUT/static-decode-pdl.txt | grep -v _warn_once
timeout 40 python -u scripts/investigations/static_decode.py --prefill > $OUT/prefill-ranges.txt 2>&1; echo "prefill rc=$?"; grep -v Warn $OUT/prefill-ranges.txt | grep -v _warn_once
FLASHMIN_DECODE_PDL=1 timeout 90 python -m flashmin_nn.bench --suite decode > $OUT/bench-decode-pdl.txt 2>&1; echo "bench rc=$?"; tail -30 $OUT/bench-decode-pdl.txt
