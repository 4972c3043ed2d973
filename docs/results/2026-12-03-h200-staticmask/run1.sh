#!/bin/bash
# build, the full suite, the static-cache decode step alone (and under ncu), the mask-range pass, GPT-2 static compiled
cd "$(dirname "$0")/../../.."
STAGES="build sass test" PYTEST_TIMEOUT=240 bash scripts/device_run.sh > $OUT/run.log 2>&1; echo "device_run rc=$?"
cp bench_out/*.txt $OUT/ 2>/dev/null; tail -8 $OUT/run.log
timeout 90 python -u scripts/investigations/static_decode.py > $OUT/static-decode.txt 2>&1; echo "static rc=$?"; cat $OUT/static-decode.txt
timeout 40 python -u scripts/investigations/static_decode.py --prefill > $OUT/prefill-ranges.txt 2>&1; echo "prefill rc=$?"; cat $OUT/prefill-ranges.txt
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
timeout 90 $NCU --clock-control none -k regex:decode_kernel --launch-skip 8 --launch-count 4 --section SpeedOfLight --section LaunchStats --section WarpStateStats --section Occupancy python scripts/investigations/static_decode.py --ncu > $OUT/ncu-static.txt 2>&1; echo "ncu rc=$?"
grep -E "decode_kernel|Duration|Elapsed Cycles|Warp Cycles Per Issued|Achieved Occupancy|Stall|DRAM Throughput|Registers Per|Block Limit Sh|Waves" $OUT/ncu-static.txt | cut -c1-150 | head -60
timeout 140 python -u examples/gpt2_infer.py --cache static --iters 6 --json $OUT/gpt2-static.json > $OUT/gpt2-static.txt 2> $OUT/gpt2-static.err; echo "gpt2 rc=$?"; tail -25 $OUT/gpt2-static.txt
