#!/bin/bash
# decode shapes (exp-knobs.patch: FLASHMIN_DECODE_EXP cfg / splits), 16-key pages per variant, and
# 176-key tiles at hdim 128 non-causal below 8k (FMX_H128_176), all switched per call
W=docs/results/2026-12-03-h200-variants
STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1; echo "build rc=$?"; tail -3 $OUT/build.log
timeout 170 python scripts/investigations/decode_variants.py "" "splits=1" "cfg=9" "cfg=9,splits=1" "cfg=15" "cfg=15,splits=1" "cfg=17,splits=1" "cfg=11,splits=1" "" > $OUT/decode-variants.txt 2>&1; echo "decode rc=$?"
timeout 100 python scripts/investigations/paged_variants.py --lens 1024,4096,16384 "" "cfg=9" "cfg=18" "cfg=17" "cfg=12" > $OUT/paged-variants.txt 2>&1; echo "paged rc=$?"
C=128:0:512,128:0:1024,128:0:2048,128:0:4096,128:0:8192
for dt in fp16 bf16; do
  (cd scripts/investigations && timeout 80 python prefill_env_ab.py --env FMX_H128_176 --values 0,1 --rounds 3 --dtype $dt --cells $C > $OUT/ab-h128-176-$dt.txt 2>&1); echo "ab $dt rc=$?"
done
cut -c1-400 $OUT/decode-variants.txt
cat $OUT/paged-variants.txt
cut -c1-200 $OUT/ab-h128-176-*.txt
