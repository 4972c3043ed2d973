"""Host time of flashmin's Python path for one transformers attention call, the op stubbed (no
kernel runs, no GPU needed): what a layer pays in eager generation before its kernel is queued.

    python scripts/investigations/hf_call_host.py [--calls 20000]

GPT-2's decode shape (B=8, 12 heads, head dim 64, one query over 300 keys; q a strided view of the
fused projection as GPT-2 hands it), with no mask, a (B, 1, 1, S) key padding mask (a padded
batch's step), a FilledKeys (a static cache's step, eager), and GPT-2's usual keywords. The
kernel choice is pinned to "decode" and the op returns preallocated outputs, so the time is the
integration's, attention()'s checks and the op dispatch's up to the kernel call. Last, the Llama
shape's DynamicCache step (32 query heads on 4 kv heads, head dim 64, no mask).
"""
import argparse
import time

import torch

import flashmin_nn.ops as ops
from flashmin_nn.integrations import transformers as fm_hf


class _Layer(torch.nn.Module):
    is_causal = True


def report(name, call, calls):
    """Times `calls` calls of call() after a tenth as many for warm-up; prints us a call."""
    for _ in range(calls // 10):
        call()
    t0 = time.perf_counter()
    for _ in range(calls):
        call()
    print(f"{name:28s} {(time.perf_counter() - t0) / calls * 1e6:6.2f} us a call")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    args = ap.parse_args()
    B, H, S, D = 8, 12, 300, 64
    out, lse = torch.empty(B, 1, H, D).transpose(1, 2), torch.empty(B, H, 1)
    ops.backends.resolve = lambda *a, **kw: "decode"
    ops._ext.load = lambda: None
    ops._attention_fwd = lambda *a: (out, lse)
    q = torch.randn(B, 1, 3 * H * D).view(B, 1, 3, H, D)[:, :, 0].transpose(1, 2)   # (B, H, 1, D) view
    k, v = torch.randn(B, H, S, D), torch.randn(B, H, S, D)
    pad = torch.ones(B, 1, 1, S, dtype=torch.bool)
    filled = fm_hf.FilledKeys(torch.full((B,), S, dtype=torch.int32), pad, torch.Size((B, 1, 1, S)))
    layer = _Layer()
    for name, mask, kw in (("no mask", None, {}), ("key padding mask", pad, {}), ("FilledKeys", filled, {}),
                           ("no mask, GPT-2's keywords", None, dict(position_ids=None, use_cache=True))):
        report(name, lambda: fm_hf.attention_forward(layer, q, k, v, mask, scaling=D ** -0.5, **kw), args.calls)
    Hq, Hkv = 32, 4   # the Llama shape's step: grouped heads, contiguous q, no mask
    out, lse = torch.empty(B, 1, Hq, D).transpose(1, 2), torch.empty(B, Hq, 1)
    ops._attention_fwd = lambda *a: (out, lse)
    q, k, v = torch.randn(B, Hq, 1, D), torch.randn(B, Hkv, S, D), torch.randn(B, Hkv, S, D)
    layer.num_key_value_groups = Hq // Hkv
    report("Llama shape, no mask", lambda: fm_hf.attention_forward(layer, q, k, v, None, scaling=D ** -0.5, dropout=0.0),
           args.calls)


if __name__ == "__main__":
    main()
