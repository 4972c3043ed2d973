#!/bin/bash
# the pair configurations: the decode bench, 16- and 256-key pages, GPT-2 with the dynamic cache
ls flashmin_nn/_C*.so > /dev/null 2>&1 || STAGES="build" bash scripts/device_run.sh > $OUT/build.log 2>&1
timeout 150 python -m flashmin_nn.bench --suite decode --json $OUT/bench-decode.json > $OUT/bench-decode.txt 2> $OUT/bench-decode.err; echo "bench rc=$?"
timeout 200 python scripts/bench_paged.py > $OUT/paged.txt 2> $OUT/paged.err; echo "paged rc=$?"
timeout 150 python examples/gpt2_infer.py --cache dynamic --json $OUT/gpt2-dynamic.json > $OUT/gpt2-dynamic.txt 2> $OUT/gpt2.err; echo "gpt2 rc=$?"
grep -A40 "## decode" $OUT/bench-decode.txt | head -45
cut -c1-260 $OUT/paged.txt
tail -25 $OUT/gpt2-dynamic.txt
