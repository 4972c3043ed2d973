"""Where a static-cache, compiled generation step of examples/gpt2_infer.py spends its GPU time,
for sdpa and for flashmin: torch.profiler over one generate() call (after a warm-up call that
compiles), its CUDA kernels grouped by name.

    python scripts/investigations/gpt2_static_profile.py [--new-tokens 64] [--top 12] [gpt2_infer.py options]

Prints, per implementation, the call's wall time, its summed CUDA kernel time per generated token
(all kernels, and the attention kernels alone: names with "attention", "sdpa", "flash", "fmha",
"decode", "combine" or "cudnn"), then the top kernels by total time with their call counts and mean
durations. The options after the script's own go to gpt2_infer.py's parser (default: its CUDA
defaults, --cache static with --compile).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import gpt2_infer as gi  # noqa: E402

ATTENTION_WORDS = ("attention", "sdpa", "flash", "fmha", "decode", "combine", "cudnn")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--top", type=int, default=12)
    own, rest = ap.parse_known_args()
    gi.import_libraries()
    torch = gi.torch
    args = gi.parse_args(["--cache", "static", *rest])
    args.new_tokens = own.new_tokens
    model, tokenizer, what = gi.build_model(args)
    x = gi.make_inputs(args, model, tokenizer)
    opts = gi.static_options(args)
    print(f"# {what} | batch {args.batch}, prompt {args.prompt_len} + {own.new_tokens} new tokens, "
          f"StaticCache of {args.cache_len} slots, compiled: {args.compile}")
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad():
        for impl in ("sdpa", "flashmin"):
            gi.set_impl(model, impl)
            gi.generate(model, x["prompt"], x["prompt_ones"], own.new_tokens, **opts)   # compiles
            gi.generate(model, x["prompt"], x["prompt_ones"], own.new_tokens, **opts)
            gi.sync(args.device)
            t0 = time.perf_counter()
            cuda = args.device.startswith("cuda")
            with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
                gi.generate(model, x["prompt"], x["prompt_ones"], own.new_tokens, **opts)
                gi.sync(args.device)
            wall = time.perf_counter() - t0
            def total(e):   # us; on the CPU (a check of this script) the operators' own CPU time
                return e.self_device_time_total if cuda else e.self_cpu_time_total
            kernels = [(total(e), e.count, e.key) for e in prof.key_averages() if total(e) > 0]
            kernels.sort(reverse=True)
            all_us = sum(t for t, _, _ in kernels)
            attn_us = sum(t for t, _, k in kernels if any(w in k.lower() for w in ATTENTION_WORDS))
            n = own.new_tokens
            print(f"\n## {impl}: wall {wall * 1e3:.1f} ms ({args.batch * n / wall:.0f} tokens/s with the profiler on); "
                  f"{'CUDA kernels' if cuda else 'CPU operators'} {all_us / 1e3:.2f} ms = {all_us / n:.1f} us per step, attention {attn_us / n:.1f} us per step")
            print("| us total | calls | us mean | kernel |\n|---:|---:|---:|---|")
            for t, c, k in kernels[:own.top]:
                print(f"| {t:.0f} | {c} | {t / max(c, 1):.2f} | {k[:110]} |")


if __name__ == "__main__":
    main()
