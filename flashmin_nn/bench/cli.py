"""The command line: python -m flashmin_nn.bench [options]. See the package docstring for the suites."""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import sys
import time

import torch

import flashmin_nn as fm

from . import __doc__ as PACKAGE_DOC
from .measures import DTYPES, TOLERANCE, matmul_rate
from .report import render, write_plot
from .runner import Bench, short
from .suites import ORIGINAL_MINIMAL_PUBLISHED_MS, PREFILL, SUITES
from .timing import log, make_timer


def ints(text):
    """"128,1k,16k" -> [128, 1024, 16384]."""
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if part:
            out.append(int(float(part[:-1]) * 1024) if part.endswith("k") else int(part))
    return out


def names(text):
    """"prefill,prefill_sm90" -> ["prefill", "prefill_sm90"]."""
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m flashmin_nn.bench",
                                description="flashmin against torch SDPA (each backend), measured in the same run.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=PACKAGE_DOC)
    p.add_argument("--suite", default=None,
                   help="comma list of minimal, prefill, decode, cpu (default: minimal,prefill,decode on CUDA, cpu otherwise)")
    p.add_argument("--dtype", choices=["fp16", "bf16"], default="fp16", help="prefill and decode dtype (default fp16)")
    p.add_argument("--fm-kernels", type=names, default=[], metavar="NAME[,NAME]",
                   help="prefill and decode: one more column per flashmin kernel, forced with use_kernel(NAME)"
                        " (a kernel that refuses a shape or is not in this build records n/a)")
    p.add_argument("--seqlens", type=ints, default=None, help="prefill N list, e.g. 512,1k,16k (default 128..16k)")
    p.add_argument("--hdims", type=ints, default=list(PREFILL.hdims), help="prefill head dims (default 64,128,256)")
    p.add_argument("--kvlens", type=ints, default=None,
                   help="decode KV lengths for every decode shape (default: each shape's own, see DECODE_SHAPES)")
    p.add_argument("--tokens", type=int, default=PREFILL.tokens, help="prefill B*N (default 16384)")
    p.add_argument("--all-kernels", action="store_true",
                   help="more columns: SDPA's mem-efficient and math backends and its own choice, manual attention,"
                        " flashmin's minimal kernel (prefill, small N) and flash_attn_with_kvcache (decode)")
    p.add_argument("--quick", action="store_true", help="fewer sizes and shorter timing")
    p.add_argument("--warmup", type=float, default=None, help="warm-up per cell, ms (default 25, quick 5)")
    p.add_argument("--rep", type=float, default=None, help="timing per cell, ms (default 100, quick 20)")
    p.add_argument("--device", default=None, help="cuda (default when present) or cpu (slow; checks the bench itself)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="write every number, with device and versions, as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG (needs matplotlib)")
    args = p.parse_args(argv)
    args.seqlens = args.seqlens or list(PREFILL.quick_seqlens if args.quick else PREFILL.seqlens)
    args.warmup = args.warmup if args.warmup is not None else (5 if args.quick else 25)
    args.rep = args.rep if args.rep is not None else (20 if args.quick else 100)
    return p, args


def _meta(device, timer_name, bench, args):
    triton_version = None
    with contextlib.suppress(Exception):
        import triton
        triton_version = triton.__version__
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "triton": triton_version, "python": platform.python_version(),
        "flashmin": fm.__version__, "commit": _commit(), "timer": timer_name,
        "argv": sys.argv[1:], "warmup_ms": args.warmup, "rep_ms": args.rep, "fm_kernels": args.fm_kernels,
        "kernels": {n: {"available": bool(i.available), "reason": str(i.reason)} for n, i in bench.kernels.items()},
        "matmul": None,
        "conventions": {"flops": "4*B*H*N^2*D, halved when causal", "decode_bytes": "2*B*Hkv*L*D*elem_size",
                        "floor": "flops / the run's dense-matmul rate (meta.matmul)",
                        "err": "max|out-ref|/max|ref| vs float64 on sampled rows",
                        "tolerance": {str(k).replace("torch.", ""): v for k, v in TOLERANCE.items()},
                        "original_minimal_published_ms": ORIGINAL_MINIMAL_PUBLISHED_MS},
    }


def _commit():
    """The git commit of the source tree being measured (with -dirty for local changes), or None."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        out = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty", "--abbrev=7"],
                             capture_output=True, text=True, timeout=10)
        return (out.stdout.strip() or None) if out.returncode == 0 else None
    except Exception:
        return None


def _cfg_text(cfg):
    return " ".join(f"{k}={v}" for k, v in cfg.items()
                    if k not in ("flops", "bytes", "floor_ms", "auto_kernel", "original_published_ms"))


def _choose_suites(parser, args):
    suites = [s.strip() for s in args.suite.split(",") if s.strip()] if args.suite else None
    for s in suites or []:
        if s not in SUITES:
            parser.error(f"unknown suite {s!r}; choose from {', '.join(SUITES)}")
    cuda = torch.cuda.is_available()
    device = torch.device(args.device or ("cuda" if cuda else "cpu"))
    if device.type == "cuda" and not cuda:
        parser.error("--device cuda but torch.cuda.is_available() is False")
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # the timers and the L2 flush use the current device
    if suites is None:
        suites = ["minimal", "prefill", "decode"] if device.type == "cuda" else ["cpu"]
    if device.type == "cpu" and args.device is None and suites != ["cpu"]:
        print(f"No CUDA device (torch {torch.__version__}, cuda {torch.version.cuda}): the GPU suites "
              f"({', '.join(s for s in suites if s != 'cpu')}) need one. Running the CPU sanity suite instead; "
              "its numbers are CPU timings, not GPU results. (--device cpu forces the GPU suites onto the CPU.)")
        suites = ["cpu"]
    elif device.type == "cpu":
        print("Running on the CPU: every number below is a CPU timing.")
    return device, suites


def _warm_up(device):
    """The first CUDA call may JIT-build the extension: not inside a timing."""
    t0 = time.perf_counter()
    try:
        x = torch.randn(1, 1, 8, 64, device=device, dtype=torch.float16)
        fm.scaled_dot_product_attention(x, x, x)
        torch.cuda.synchronize()
        log(f"  flashmin CUDA path ready ({time.perf_counter() - t0:.1f} s)")
    except Exception as e:
        log(f"  flashmin CUDA path failed, its cells will say n/a: {short(e)}")


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    device, suites = _choose_suites(parser, args)
    torch.manual_seed(args.seed)
    timer, timer_name = make_timer(device, args.warmup, args.rep)
    bench = Bench(device, timer, args.all_kernels)
    meta = _meta(device, timer_name, bench, args)
    log(f"device: {meta['device']} | torch {meta['torch']} | cuda {meta['cuda']} | timer: {timer_name}")
    for name, info in bench.kernels.items():
        log(f"  flashmin kernel {name:12s} {'available' if info.available else 'unavailable: ' + str(info.reason)}")
    if device.type == "cuda":
        _warm_up(device)
    if "prefill" in suites:  # once per run, in the run's dtype: the floor of every prefill cell
        mm = matmul_rate(timer, device, DTYPES[args.dtype])
        bench.matmul = meta["matmul"] = mm
        log(f"  dense matmul {mm['n']}^3 {mm['dtype']}: {mm['ms']:.3f} ms, {mm['tflops']:.4g} TFLOP/s")

    results = {s: SUITES[s](bench, args) for s in suites}

    print(f"\nflashmin benchmark | {meta['device']} | torch {meta['torch']} (cuda {meta['cuda']}) | "
          f"commit {meta['commit'] or '?'} | {meta['timestamp']} | timer: {timer_name}")
    if meta["matmul"]:
        mm = meta["matmul"]
        print(f"dense matmul (torch.matmul {mm['n']}^3, {mm['dtype']}): {mm['tflops']:.4g} TFLOP/s")
    bad = []
    for s, rows in results.items():
        print("\n" + render(s, rows, meta))
        bad += [f"{s} {_cfg_text(row['config'])} {name}: {'error' if r['status'] == 'error' else 'err=%.2e' % r['err']}"
                for row in rows for name, r in row["results"].items()
                if r["status"] == "error" or (r.get("flashmin") and r["status"] == "ok" and r["bad"])]

    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "suites": results}, f, indent=1, default=str)
        print(f"\nJSON written to {args.json}")
    if args.plot:
        write_plot(args.plot, results)
    if bad:
        print(f"\nBAD: {len(bad)} flashmin result(s) above the error tolerance, or CUDA errors:\n  " + "\n  ".join(bad))
        return 1
    return 0
