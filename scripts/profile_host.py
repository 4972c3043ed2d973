"""Where decode time goes outside the kernels: per-call host cost, the kernel timeline under the
benchmark's L2 flush, and a GPT-2 generation profile. For the device machine (needs CUDA).

    python scripts/profile_host.py                       # all three parts
    python scripts/profile_host.py --parts host,timeline --gpt2-tokens 64

1. host: microseconds per call to enqueue one attention (host-bound loop, one sync at the end),
   for torch SDPA and each flashmin entry point, and for pieces of flashmin's Python path.
2. timeline: torch.profiler over the benchmark's loop (256 MB flush, then the call): per call the
   span from the first attention kernel's start to the last one's end, each kernel's duration and
   the gap between them.
3. gpt2: greedy generation with sdpa and flashmin attention (GPT-2 small, random weights): tokens/s,
   and cProfile's top functions by own time for each.
"""
import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import flashmin_nn as fm  # noqa: E402
from flashmin_nn import _checks, backends, ops  # noqa: E402


def host_us(fn, n=3000):
    for _ in range(100):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    t2 = time.perf_counter()
    return (t1 - t0) / n * 1e6, (t2 - t0) / n * 1e6


def part_host(args):
    print("== host: us per call (enqueue; enqueue + drain)", flush=True)
    dev, dt = "cuda", torch.float16
    for B, H, S, D in ((1, 12, 128, 64), (8, 12, 1024, 64)):
        q = torch.randn(B, H, 1, D, device=dev, dtype=dt)
        k = torch.randn(B, H, S, D, device=dev, dtype=dt)
        v = torch.randn(B, H, S, D, device=dev, dtype=dt)
        kc, vc, qb = k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous(), q.transpose(1, 2).contiguous()
        scale = D ** -0.5
        op = ops._attention_fwd
        cases = {
            "F.sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
            "fm.scaled_dot_product_attention": lambda: fm.scaled_dot_product_attention(q, k, v),
            "fm.attention": lambda: fm.attention(q, k, v),
            "fm.flash_attn_with_kvcache": lambda: fm.flash_attn_with_kvcache(qb, kc, vc),
            "op direct (decode)": lambda: op(q, k, v, None, None, scale, False, 0, "decode"),
            "check_qkv only": lambda: _checks.check_qkv(q, k, v),
            "backends.resolve only": lambda: backends.resolve(q, k, v, None),
            "torch.empty x2 (reference cost)": lambda: (torch.empty(B, 1, H, D, device=dev, dtype=dt),
                                                        torch.empty(B, H, 1, device=dev)),
        }
        try:
            from transformers.integrations.sdpa_attention import sdpa_attention_forward
            from flashmin_nn.integrations import transformers as fm_hf

            class Mod(torch.nn.Module):
                is_causal = True
            mod = Mod()
            cases["hf sdpa_attention_forward"] = lambda: sdpa_attention_forward(mod, q, k, v, None, scaling=scale)
            cases["hf fm attention_forward"] = lambda: fm_hf.attention_forward(mod, q, k, v, None, scaling=scale)
        except Exception as e:  # transformers missing
            print("  (transformers cases skipped:", e, ")")
        print(f"  B={B} H={H} S={S} D={D}")
        for name, fn in cases.items():
            a, b = host_us(fn)
            print(f"    {name:36s} {a:7.1f} {b:7.1f}", flush=True)


def part_timeline(args):
    from torch.profiler import ProfilerActivity, profile
    print("== timeline under the benchmark's flush (us, medians over calls)", flush=True)
    flush = torch.empty(256 * 2**20, dtype=torch.int8, device="cuda")
    dt = torch.float16
    for B, H, S, D in args.shapes:
        q = torch.randn(B, H, 1, D, device="cuda", dtype=dt)
        k = torch.randn(B, H, S, D, device="cuda", dtype=dt)
        v = torch.randn(B, H, S, D, device="cuda", dtype=dt)
        for name, fn in (("sdpa", lambda: F.scaled_dot_product_attention(q, k, v)),
                         ("fm", lambda: fm.scaled_dot_product_attention(q, k, v))):
            for _ in range(20):
                flush.zero_()
                fn()
            torch.cuda.synchronize()
            n = 50
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(n):
                    flush.zero_()
                    fn()
                torch.cuda.synchronize()
            kernels = sorted((e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
                              and e.name and "memcpy" not in e.name.lower() and "memset" not in e.name.lower()),
                             key=lambda e: e.time_range.start)
            calls, cur = [], None
            for e in kernels:
                if "fill" in e.name.lower() or "zero" in e.name.lower():
                    cur = []
                    calls.append(cur)
                elif cur is not None:
                    cur.append(e)
            spans, durs, gaps, names = [], {}, [], {}
            for c in calls:
                if not c:
                    continue
                spans.append(c[-1].time_range.end - c[0].time_range.start)
                for i, e in enumerate(c):
                    durs.setdefault(i, []).append(e.time_range.end - e.time_range.start)
                    names[i] = e.name[:60]
                    if i:
                        gaps.append(e.time_range.start - c[i - 1].time_range.end)
            nbytes = 2 * B * H * S * D * 2
            span = statistics.median(spans)
            line = f"  B={B} H={H} S={S} D={D} {name:5s} span {span:7.1f} us ({nbytes / span / 1e3:6.0f} GB/s)"
            for i in sorted(durs):
                line += f" | k{i} {statistics.median(durs[i]):6.1f} {names[i][:40]}"
            if gaps:
                line += f" | gap {statistics.median(gaps):5.1f}"
            print(line, flush=True)


def part_gpt2(args):
    import transformers
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    import gpt2_infer   # its set_impl switches the model between sdpa and flashmin
    print("== gpt2 generation (GPT-2 small, random weights, fp16, B=8, prompt 128)", flush=True)
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, n_positions=1024)
    base = transformers.GPT2LMHeadModel(cfg).to("cuda", torch.float16).eval()
    ids = torch.randint(0, 50257, (8, 128), device="cuda")
    mask = torch.ones_like(ids)
    new = args.gpt2_tokens

    def gen():
        with torch.inference_mode():
            return base.generate(ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                                 do_sample=False, pad_token_id=0)

    for impl in ("sdpa", "flashmin", "sdpa", "flashmin"):
        gpt2_infer.set_impl(base, impl)
        gen()
        dt = gpt2_infer.seconds(gen, "cuda")
        print(f"  {impl:9s} {8 * new / dt:8.0f} tok/s  ({dt / new * 1e3:.2f} ms/step)", flush=True)
    for impl in ("sdpa", "flashmin"):
        gpt2_infer.set_impl(base, impl)
        pr = cProfile.Profile()
        pr.enable()
        gen()
        torch.cuda.synchronize()
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(args.top)
        print(f"  -- cProfile {impl} (top {args.top} by own time)")
        print("\n".join("    " + ln for ln in s.getvalue().splitlines()[6:] if ln.strip()), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="host,timeline,gpt2")
    p.add_argument("--gpt2-tokens", type=int, default=64)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--shapes", default="8x12x1024x64,8x12x16384x64,8x32x1024x128,8x32x16384x128",
                   help="timeline decode shapes, BxHxSxD, comma-separated")
    args = p.parse_args()
    parts = args.parts.split(",")
    args.shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    torch.manual_seed(0)
    fm.attention(*(torch.randn(1, 1, 1, 64, device="cuda", dtype=torch.float16) for _ in range(3)))  # load _C
    for name in ("host", "timeline", "gpt2"):
        if name in parts:
            globals()["part_" + name](args)


if __name__ == "__main__":
    main()
