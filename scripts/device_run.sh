#!/usr/bin/env bash
# The one script for a GPU machine: install (building the CUDA extension), time a clean JIT build,
# run the test suite, every kernel under compute-sanitizer, the benchmark and the GPT-2 example,
# and print a short summary last.
#
#   STAGES="build sass jit test sanitize bench options gpt2" bash scripts/device_run.sh      (the default)
#   BENCH_ARGS="--suite prefill --quick"  PYTEST_ARGS="-k cuda"  GPT2_ARGS="--batch 8"
#     (each *_ARGS is split on spaces: a -k expression of several words does not pass; use
#     PYTEST_TARGETS to choose files)
#   PYTEST_TARGETS="tests/test_decode.py"  (default: tests)
#   STAGES=sanitize SANITIZE_ARGS="--kernels decode"  SANITIZE_TOOLS="memcheck racecheck synccheck"
#     RACECHECK_ARGS="--quick" (the default; "" for every shape), RACECHECK_TIMEOUT=400 (s, per kernel),
#     RACECHECK_KERNELS="decode:decode_kernel ..." (flashmin kernel:symbol substring, one process each)
#     (scripts/sanitize.py under compute-sanitizer, once per tool; COMPUTE_SANITIZER=/path overrides
#     the binary, SANITIZER_ARGS adds options to it)
#   STAGES=tune TUNE="--suite decode --kernels decode;--suite prefill --kernels tensor_core,prefill_sm90"
#     (scripts/tune.py once per ;-separated argument list)
#   STAGES=smoke  (scripts/smoke.py: every CUDA kernel against float64 on awkward shapes)
#   STAGES=options  (scripts/bench_options.py: the window, softcap, ALiBi and sinks against plain)
#   STAGES=varlen  (scripts/bench_varlen.py: packed sequences in place, padded, and SDPA's padded batch)
#   STAGES=paged  (scripts/bench_paged.py: decode over 16- and 256-key pages against a contiguous cache)
#   STAGES=graphs  (scripts/bench_graphs.py: a decode step replayed from a CUDA graph against eager)
#   PYTEST_TIMEOUT=300 (s): the test stage is interrupted (SIGINT) after it, so pytest still
#     prints its summary and the slowest tests; PYTEST_WORKERS=15 (pytest-xdist -n, 0: none)
#
# Results go to $OUT (the device tool brings that folder back; it takes few files), else to
# ./bench_out: summary.txt, pytest.txt (counts, failures, slowest tests), sanitize.txt,
# bench.txt/.json, gpt2.txt/.json, options.txt. Raw logs stay in $LOGS (default /tmp/flashmin-logs).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/bench_out}
LOGS=${LOGS:-/tmp/flashmin-logs}
mkdir -p "$OUT" "$LOGS"
STAGES=${STAGES:-"build sass jit test sanitize bench options gpt2"}
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
summary=()

has() { [[ " $STAGES " == *" $1 "* ]]; }
stamp() { date +%s.%N; }
elapsed() { $PY -c "print(f'{$2 - $1:.1f}')"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | tee "$LOGS/gpu.txt"
$PY -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', sys.version.split()[0])"
nproc

if has build; then
    echo "=== build: pip install -e . (ahead-of-time CUDA extension)"
    t0=$(stamp)
    FLASHMIN_FORCE_BUILD=1 $PY -m pip install -e . --no-build-isolation --no-deps -q > "$LOGS/build.log" 2>&1
    rc=$?
    t1=$(stamp)
    tail -5 "$LOGS/build.log"
    summary+=("build (AOT, pip install -e .): rc=$rc, $(elapsed $t0 $t1) s")
    [ $rc -eq 0 ] || { echo "BUILD FAILED"; tail -60 "$LOGS/build.log"; exit 1; }
fi

if has jit; then
    echo "=== jit: build the extension with ninja from an empty cache"
    jd=$(mktemp -d)
    t0=$(stamp)
    FLASHMIN_BUILD_DIR=$jd $PY -c "from flashmin_nn import _ext; _ext._jit_build()" > "$LOGS/jit.log" 2>&1
    rc=$?
    t1=$(stamp)
    tail -3 "$LOGS/jit.log"
    summary+=("JIT build from a clean cache: rc=$rc, $(elapsed $t0 $t1) s")
    rm -rf "$jd"
fi

if has sass; then
    # The built extension's SASS: no uniform register read that nothing writes (a ptxas fault seen
    # at 13.0), and HGMMA and TMA loads in every sm_90 prefill kernel (scripts/check_sass.py).
    so=$($PY -c "import flashmin_nn._C as m; print(m.__file__)" 2>/dev/null)
    $PY scripts/check_sass.py --hopper $so > "$LOGS/sass.log" 2>&1
    rc=$?
    head -20 "$LOGS/sass.log"
    summary+=("sass (scripts/check_sass.py --hopper): rc=$rc; $(tail -1 "$LOGS/sass.log")")
fi

if has test; then
    echo "=== test: pytest"
    # -v streams one line per test, so failures are named even when the time limit stops the run.
    workers=${PYTEST_WORKERS:-15}
    xd=""; [ "$workers" != 0 ] && xd="-n $workers"
    t0=$(stamp)
    timeout -s INT ${PYTEST_TIMEOUT:-300} $PY -m pytest -v $xd ${PYTEST_TARGETS:-tests} -p no:cacheprovider -rfE \
        --tb=short --durations=20 ${PYTEST_ARGS:-} > "$LOGS/pytest.log" 2>&1
    rc=$?
    t1=$(stamp)
    { grep -E "^(=+ )?[0-9]+ (passed|failed)|[0-9]+ (passed|failed|error)" "$LOGS/pytest.log" | tail -1
      [ $rc -eq 124 ] || [ $rc -eq 130 ] && echo "STOPPED by PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-300} s: not a full run"
      grep -E "(FAILED|ERROR) " "$LOGS/pytest.log" | sed 's/^\[gw[0-9]*\] \[ *[0-9]*%\] //' | sort -u | head -80
      sed -n '/short test summary/,$p' "$LOGS/pytest.log" | head -60
      grep -A 22 "slowest" "$LOGS/pytest.log" | head -22; } > "$OUT/pytest.txt"
    summary+=("pytest: rc=$rc, $(elapsed $t0 $t1) s; $(head -2 "$OUT/pytest.txt" | paste -sd ' ' -)")
fi

if has sanitize; then
    CS=${COMPUTE_SANITIZER:-$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)}
    # Every tool runs at once (they check correctness, not speed): memcheck and synccheck over all
    # of scripts/sanitize.py, racecheck, the slow one, as one process per flashmin kernel, each
    # instrumenting only that kernel's own CUDA kernels (--kernel-name kns=, a substring of the
    # symbol), over fewer shapes (RACECHECK_ARGS, default --quick), each under RACECHECK_TIMEOUT
    # seconds (default 400; rc 124 = stopped by it, not finished).
    t0=$(stamp)
    pids=(); logs=()
    for tool in ${SANITIZE_TOOLS:-memcheck racecheck synccheck}; do
        if [ "$tool" = racecheck ]; then
            for spec in ${RACECHECK_KERNELS:-minimal:minimal_fwd_kernel prefill:prefill_kernel decode:decode_kernel decode:combine_splits_kernel prefill_sm90:prefill_sm90_kernel}; do
                k=${spec%%:*}; sym=${spec#*:}; log="$LOGS/sanitize-racecheck-$sym.log"
                echo "=== sanitize: racecheck --kernel-name kns=$sym scripts/sanitize.py --kernels $k ${RACECHECK_ARGS---quick}"
                ( PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout ${RACECHECK_TIMEOUT:-400} "$CS" --tool racecheck --error-exitcode 1 \
                    --kernel-name kns=$sym ${SANITIZER_ARGS:-} $PY scripts/sanitize.py --kernels $k --parts prefill,decode,varlen,paged \
                    --progress ${RACECHECK_ARGS---quick} > "$log" 2>&1
                  echo "rc=$?" >> "$log" ) &
                pids+=($!); logs+=("$log")
            done
        else
            log="$LOGS/sanitize-$tool.log"
            echo "=== sanitize: $CS --tool $tool --error-exitcode 1 scripts/sanitize.py ${SANITIZE_ARGS:-}"
            # No caching allocator: every tensor is its own allocation, so memcheck sees its bounds.
            ( PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$CS" --tool "$tool" --error-exitcode 1 ${SANITIZER_ARGS:-} \
                $PY scripts/sanitize.py ${SANITIZE_ARGS:-} > "$log" 2>&1
              echo "rc=$?" >> "$log" ) &
            pids+=($!); logs+=("$log")
        fi
    done
    wait "${pids[@]}"
    t1=$(stamp)
    for f in "${logs[@]}"; do
        lines=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|sanitize.py:|^rc=" "$f" | sed 's/^=* *//' | paste -sd ';' -)
        summary+=("sanitize $(basename "$f" .log | sed 's/sanitize-//'): $(elapsed $t0 $t1) s (all tools at once); ${lines:-no summary line}")
    done
fi

if has bench; then
    echo "=== bench: python -m flashmin_nn.bench ${BENCH_ARGS:-}"
    $PY -m flashmin_nn.bench ${BENCH_ARGS:-} --json "$OUT/bench.json" 2> "$LOGS/bench.err" | tee "$OUT/bench.txt"
    tail -3 "$LOGS/bench.err"
fi

if has gpt2; then
    echo "=== gpt2: examples/gpt2_infer.py ${GPT2_ARGS:-}"
    $PY examples/gpt2_infer.py ${GPT2_ARGS:-} --json "$OUT/gpt2.json" 2> "$LOGS/gpt2.err" | tee "$OUT/gpt2.txt"
    tail -3 "$LOGS/gpt2.err"
fi

if has tune; then
    IFS=';' read -ra specs <<< "${TUNE:-}"
    for spec in "${specs[@]}"; do
        echo "=== tune: scripts/tune.py $spec"
        $PY scripts/tune.py $spec 2>> "$LOGS/tune.err" | tee -a "$OUT/tune.txt"
    done
fi

if has options; then
    echo "=== options: scripts/bench_options.py ${OPTIONS_ARGS:-}"
    $PY scripts/bench_options.py ${OPTIONS_ARGS:-} 2> "$LOGS/options.err" | tee "$OUT/options.txt"
    tail -3 "$LOGS/options.err"
fi

if has varlen; then
    echo "=== varlen: scripts/bench_varlen.py ${VARLEN_ARGS:-}"
    $PY scripts/bench_varlen.py ${VARLEN_ARGS:-} 2> "$LOGS/varlen.err" | tee "$OUT/varlen.txt"
    tail -3 "$LOGS/varlen.err"
fi

if has paged; then
    echo "=== paged: scripts/bench_paged.py ${PAGED_ARGS:-}"
    $PY scripts/bench_paged.py ${PAGED_ARGS:-} 2> "$LOGS/paged.err" | tee "$OUT/paged.txt"
    tail -3 "$LOGS/paged.err"
fi

if has graphs; then
    echo "=== graphs: scripts/bench_graphs.py ${GRAPHS_ARGS:-}"
    $PY scripts/bench_graphs.py ${GRAPHS_ARGS:-} 2> "$LOGS/graphs.err" | tee "$OUT/graphs.txt"
    tail -3 "$LOGS/graphs.err"
fi

if has smoke; then
    echo "=== smoke: every CUDA kernel against float64 on awkward shapes"
    $PY scripts/smoke.py 2>&1 | tee "$OUT/smoke.txt"
fi

echo
echo "================ summary ================"
for s in "${summary[@]}"; do echo "$s"; done
printf '%s\n' "${summary[@]}" > "$OUT/summary.txt"
[ -f "$OUT/bench.txt" ] && tail -n 60 "$OUT/bench.txt"
[ -f "$OUT/gpt2.txt" ] && tail -n 20 "$OUT/gpt2.txt"
[ -f "$OUT/options.txt" ] && tail -n 40 "$OUT/options.txt"
[ -f "$OUT/varlen.txt" ] && tail -n 12 "$OUT/varlen.txt"
[ -f "$OUT/paged.txt" ] && tail -n 16 "$OUT/paged.txt"
[ -f "$OUT/graphs.txt" ] && tail -n 30 "$OUT/graphs.txt"
[ -f "$OUT/smoke.txt" ] && tail -n 30 "$OUT/smoke.txt"
[ -f "$OUT/tune.txt" ] && cat "$OUT/tune.txt"
exit 0
