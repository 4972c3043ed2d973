"""Benchmark flashmin against PyTorch's own attention, every competitor measured in the same run.

    python -m flashmin_nn.bench                                  # every GPU suite, one table each
    python -m flashmin_nn.bench --suite prefill --dtype bf16 --fm-kernels prefill,prefill_sm90
    python -m flashmin_nn.bench --suite decode
    python -m flashmin_nn.bench --quick --json bench_out/run.json --plot bench_out/run.png

Suites (--suite, a comma list; default: minimal,prefill,decode with CUDA, cpu without)
  minimal  the teaching kernel: B=16 (B=8 at N=1), H=12, D=64, fp32, N in {64, 100, 256, 1024, 1};
           flashmin's minimal kernel against manual matmul-softmax-matmul in fp32 and SDPA in fp16,
           and the PUBLISHED times of the original flash-attention-minimal kernel (not measured).
  prefill  B * N = 16384 tokens, H * D = 2048, (B, H, N, D), hdim {64, 128, 256} x causal x
           N {128 .. 16k}. TFLOP/s of flashmin auto, SDPA forced to FlashAttention-2 (flash) and to
           cuDNN (cudnn), one column per --fm-kernels kernel; fm/cudnn, fm/flash; the floor.
  decode   one query token against a (B, Hkv, L, D) cache: B=8 x (H, D) in {(32, 128), (12, 64),
           32 query heads on 8 kv heads at 128} x L {1k, 4k, 16k, 64k}, and B=1, B=64 at H=32,
           D=128, L {4k, 32k}. GB/s of flashmin auto, SDPA's own choice and SDPA forced to
           FlashAttention-2, one column per --fm-kernels kernel, and the read ceiling.
  cpu      a small sanity run on the CPU (flashmin's reference path against manual attention
           and torch SDPA); what runs when no GPU is present. Its numbers are CPU timings.

Conventions, shared by every row so that ratios are fair (flashmin_nn/bench/measures.py)
  - FLOPs = 4 * B * H * N^2 * D, halved when causal; decode bytes = K + V read once.
  - the prefill floor = FLOPs / the dense-matmul rate (torch.matmul 8192^3 in the run's dtype,
    measured once per run and printed); the decode read ceiling = the fastest pure reader of the
    same K and V (torch.sum, and on CUDA a Triton sweep), timed like every other cell.
  - time = median of per-call timings after warm-up, L2 flushed before each call
    (triton.testing.do_bench when triton imports, the same method in our own loop otherwise);
    inputs rotate among several copies when one set fits in L2, so the cache is not what is
    measured.
  - ratios are speed-ups: the other's time / flashmin's time (> 1: flashmin is faster).
  - every result is checked once per config against float64 on sampled rows (all rows in the
    minimal and cpu suites): err = max|out - ref| / max|ref|. Above the dtype's tolerance the
    cell says BAD, so a fast wrong kernel cannot look good; any BAD flashmin cell makes the
    exit status 1.
  - a kernel or backend that refuses a config prints n/a, with the reason in the notes below
    the table (never a rate of 0); "-" means not attempted, oom = out of memory, ERROR = a CUDA
    fault (sticky: the exit status is 1 and later cells are suspect).

Modules: timing (the timer), measures (FLOPs, bytes, floor, float64 check), impls and readers
(the columns), runner (one cell), suites (the suites as data), report (tables, JSON, plot), cli.
"""
