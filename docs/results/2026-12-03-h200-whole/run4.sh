#!/bin/bash
# softcap folded into exp2's factor (working tree) with fold-knob.patch (FLASHMIN_SOFTCAP_EXP=nofold
# keeps the cap on the score): build, the softcap and ALiBi tests of every kernel, the options
# bench with the fold off / on / off / on
cd "$(dirname "$0")/../../.."
git apply docs/results/2026-12-03-h200-whole/fold-knob.patch || { echo "patch failed"; exit 1; }
STAGES="build sass" timeout 150 bash scripts/device_run.sh > $OUT/build4.log 2>&1; echo "build rc=$?"; tail -3 $OUT/build4.log
timeout 100 python -m pytest -q -p no:cacheprovider tests -k "softcap or alibi" -n 15 > $OUT/pytest-softcap.txt 2>&1; echo "pytest rc=$?"; tail -3 $OUT/pytest-softcap.txt
for v in nofold fold nofold fold; do
  if [ $v = nofold ]; then export FLASHMIN_SOFTCAP_EXP=nofold; else unset FLASHMIN_SOFTCAP_EXP; fi
  timeout 60 python -u scripts/bench_options.py --quick > $OUT/options-$v.txt.tmp 2>&1; echo "options $v rc=$?"
  cat $OUT/options-$v.txt.tmp >> $OUT/options-$v.txt; rm $OUT/options-$v.txt.tmp
  grep "softcap" $OUT/options-$v.txt | tail -8 | cut -c1-160
done
