#!/usr/bin/env bash
# The one script for a GPU machine: install (building the CUDA extension), time a clean JIT build,
# run the test suite, the benchmark and the GPT-2 example, and print a short summary last.
#
#   STAGES="build jit test bench gpt2" bash scripts/device_run.sh      (default: all of them)
#   BENCH_ARGS="--suite prefill --quick"  PYTEST_ARGS="-k cuda"  GPT2_ARGS="--batch 8"
#   PYTEST_TARGETS="tests/test_decode.py"  (default: tests)
#   STAGES=tune TUNE="--suite decode --env FLASHMIN_DECODE_VARIANT --variants 0,1;--suite prefill"
#     (scripts/tune.py once per ;-separated argument list)
#
# Logs and JSON go to $OUT (the device tool brings that folder back), else to ./bench_out.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench_out}
mkdir -p "$OUT"
STAGES=${STAGES:-"build jit test bench gpt2"}
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
summary=()

has() { [[ " $STAGES " == *" $1 "* ]]; }
stamp() { date +%s.%N; }
elapsed() { $PY -c "print(f'{$2 - $1:.1f}')"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | tee "$OUT/gpu.txt"
$PY -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', sys.version.split()[0])"
nproc

if has build; then
    echo "=== build: pip install -e . (ahead-of-time CUDA extension)"
    t0=$(stamp)
    FLASHMIN_FORCE_BUILD=1 $PY -m pip install -e . --no-build-isolation --no-deps -q > "$OUT/build.log" 2>&1
    rc=$?
    t1=$(stamp)
    tail -5 "$OUT/build.log"
    summary+=("build (AOT, pip install -e .): rc=$rc, $(elapsed $t0 $t1) s")
    [ $rc -eq 0 ] || { echo "BUILD FAILED"; tail -60 "$OUT/build.log"; exit 1; }
fi

if has jit; then
    echo "=== jit: build the extension with ninja from an empty cache"
    jd=$(mktemp -d)
    t0=$(stamp)
    FLASHMIN_BUILD_DIR=$jd $PY -c "from flashmin_nn import _ext; _ext._jit_build()" > "$OUT/jit.log" 2>&1
    rc=$?
    t1=$(stamp)
    tail -3 "$OUT/jit.log"
    summary+=("JIT build from a clean cache: rc=$rc, $(elapsed $t0 $t1) s")
    rm -rf "$jd"
fi

if has test; then
    echo "=== test: pytest"
    $PY -m pytest -q ${PYTEST_TARGETS:-tests} -p no:cacheprovider ${PYTEST_ARGS:-} 2>&1 | tee "$OUT/pytest.log"
    summary+=("pytest: $(grep -E '^(=+ )?[0-9]+ (passed|failed)|[0-9]+ (passed|failed|error)' "$OUT/pytest.log" | tail -1)")
fi

if has bench; then
    echo "=== bench: python -m flashmin_nn.bench ${BENCH_ARGS:-}"
    $PY -m flashmin_nn.bench ${BENCH_ARGS:-} --json "$OUT/bench.json" 2> "$OUT/bench.err" | tee "$OUT/bench.txt"
    tail -3 "$OUT/bench.err"
fi

if has gpt2; then
    echo "=== gpt2: examples/gpt2_infer.py ${GPT2_ARGS:-}"
    $PY examples/gpt2_infer.py ${GPT2_ARGS:-} --json "$OUT/gpt2.json" 2> "$OUT/gpt2.err" | tee "$OUT/gpt2.txt"
    tail -3 "$OUT/gpt2.err"
fi

if has tune; then
    IFS=';' read -ra specs <<< "${TUNE:-}"
    for spec in "${specs[@]}"; do
        echo "=== tune: scripts/tune.py $spec"
        $PY scripts/tune.py $spec 2>> "$OUT/tune.err" | tee -a "$OUT/tune.txt"
    done
fi

if has smoke; then
    echo "=== smoke: every CUDA kernel against float64 on awkward shapes"
    $PY scripts/smoke.py 2>&1 | tee "$OUT/smoke.txt"
fi

echo
echo "================ summary ================"
for s in "${summary[@]}"; do echo "$s"; done
[ -f "$OUT/bench.txt" ] && tail -n 60 "$OUT/bench.txt"
[ -f "$OUT/gpt2.txt" ] && tail -n 20 "$OUT/gpt2.txt"
[ -f "$OUT/smoke.txt" ] && tail -n 30 "$OUT/smoke.txt"
[ -f "$OUT/tune.txt" ] && cat "$OUT/tune.txt"
exit 0
