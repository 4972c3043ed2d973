#!/bin/bash
# pair-knob.patch (FLASHMIN_DECODE_EXP pair=0|1,splits=S, per call): 16-key pages, graph-replayed
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "build rc=$?"
timeout 300 python scripts/investigations/paged_variants.py --lens 4096,16384,65536 "" "pair=1" "pair=1,splits=2" "pair=1,splits=4" "pair=0,splits=1" "pair=0,splits=2" "pair=0,splits=4" > $OUT/paged-variants-2.txt 2>&1; echo "paged rc=$?"
cat $OUT/paged-variants-2.txt
