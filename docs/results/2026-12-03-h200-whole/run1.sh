#!/bin/bash
# contiguous decode tiles as whole rows (working tree) with the knob patch (FLASHMIN_DECODE_EXP=whole=0
# turns the contiguous whole-row copies off): build, the decode bench on / off / on, graph replay
cd "$(dirname "$0")/../../.."
git apply docs/results/2026-12-03-h200-whole/whole-knob.patch || { echo "patch failed"; exit 1; }
STAGES="build sass" timeout 200 bash scripts/device_run.sh > $OUT/build1.log 2>&1; echo "build rc=$?"; tail -3 $OUT/build1.log
for v in on off on off; do
  if [ $v = off ]; then export FLASHMIN_DECODE_EXP=whole=0; else unset FLASHMIN_DECODE_EXP; fi
  timeout 100 python -u -m flashmin_nn.bench --suite decode > $OUT/bench-decode-$v.txt 2>&1; echo "decode $v rc=$?"
  cat $OUT/bench-decode-$v.txt >> $OUT/bench-decode-all-$v.txt
  grep "^|" $OUT/bench-decode-$v.txt | cut -c1-200
done
unset FLASHMIN_DECODE_EXP
timeout 90 python -u scripts/bench_graphs.py > $OUT/bench-graphs.txt 2>&1; echo "graphs rc=$?"; grep "^|" $OUT/bench-graphs.txt
