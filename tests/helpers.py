"""Shared test utilities: an independent float64 reference, the error rule, input makers.

The reference here is written from the definition of attention and shares no code with
flashmin_nn, so a bug in flashmin_nn.reference cannot hide a bug in the kernels (and vice versa).

The error rule: an output passes when its error against the float64 reference (relative norm,
and max abs) is at most about twice what PyTorch's own F.scaled_dot_product_attention gets in the
same dtype on the same inputs, plus a small slack (REL_SLACK; one ulp more for max abs); NaN never
passes, and rows that see no key must be exactly zero. Where torch does not share a feature, a
per-dtype relative tolerance (DTYPE_RTOL) is used instead. See assert_attention_close.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pytest
import torch
import torch.nn.functional as F

# Relative (norm) tolerances for cases where torch has no matching semantics.
DTYPE_RTOL = {
    torch.float64: 1e-10,
    torch.float32: 1e-5,
    torch.float16: 2e-3,
    torch.bfloat16: 1.6e-2,
}

# Slack added to 2x torch's error: covers both results being exact up to one output rounding
# (e.g. L = S = 1) where "twice zero" would be too strict. A small fraction of the dtype's eps.
REL_SLACK = {
    torch.float64: 1e-12,
    torch.float32: 1e-6,
    torch.float16: 2.5e-4,
    torch.bfloat16: 2e-3,
}

ERROR_TYPES = (ValueError, TypeError, RuntimeError)


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------
def randn(*shape, dtype=torch.float32, device="cpu", scale=1.0, generator=None):
    """N(0, scale^2) in float32 (so CPU and CUDA draw the same numbers), then cast."""
    x = torch.randn(*shape, dtype=torch.float32, generator=generator)
    return (x * scale).to(device=device, dtype=dtype)


def make_qkv(B, Hq, L, S, D, *, Hkv=None, Dv=None, dtype=torch.float32, device="cpu", scale=1.0):
    """q (B, Hq, L, D), k (B, Hkv, S, D), v (B, Hkv, S, Dv), fresh N(0, scale^2) values."""
    Hkv = Hq if Hkv is None else Hkv
    Dv = D if Dv is None else Dv
    q = randn(B, Hq, L, D, dtype=dtype, device=device, scale=scale)  # (B, Hq, L, D)
    k = randn(B, Hkv, S, D, dtype=dtype, device=device, scale=scale)  # (B, Hkv, S, D)
    v = randn(B, Hkv, S, Dv, dtype=dtype, device=device)  # (B, Hkv, S, Dv)
    return q, k, v


def key_padding_mask(B, L, S, *, device="cpu", seed_lengths=None):
    """Bool (B, 1, 1, S) mask, True = attend; batch b sees its first lengths[b] keys (>= 1)."""
    if seed_lengths is None:
        lengths = torch.randint(1, S + 1, (B,))
    else:
        lengths = torch.as_tensor(seed_lengths)
    lengths[0] = S  # one unpadded row
    if B > 1 and S > 1:
        lengths[-1] = max(1, S // 3)
    ar = torch.arange(S)
    m = ar[None, :] < lengths[:, None]  # (B, S)
    return m[:, None, None, :].to(device)  # (B, 1, 1, S)


def random_bool_mask(shape, *, p=0.7, device="cpu"):
    return (torch.rand(shape) < p).to(device)


def random_float_mask(shape, *, dtype=torch.float32, device="cpu", neg_inf_p=0.2):
    """Additive mask: N(0, 1) values with some -inf entries."""
    m = torch.randn(shape)
    m = m.masked_fill(torch.rand(shape) < neg_inf_p, float("-inf"))
    return m.to(device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# the independent reference
# ---------------------------------------------------------------------------------------------
def ref_attention(q, k, v, *, attn_mask=None, scale=None, causal_offset=None):
    """Materialised float64 attention, (B, Hq, L, D) layout.

    attn_mask: bool (True = attend) or additive float, broadcastable to (B, Hq, L, S).
    causal_offset: None (no causal) or the offset (0 = top-left, S - L = bottom-right).
    Returns (out float64 (B, Hq, L, Dv), lse float64 (B, Hq, L), fully_masked bool (B, Hq, L)).
    Rows that see no key: out = 0, lse = -inf.
    """
    B, Hq, L, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    assert Hq % Hkv == 0
    g = Hq // Hkv
    qd, kd, vd = q.double(), k.double(), v.double()
    if g > 1:
        kd = kd.repeat_interleave(g, dim=1)
        vd = vd.repeat_interleave(g, dim=1)
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    s = torch.matmul(qd, kd.transpose(-1, -2)) * scale  # (B, Hq, L, S)
    vis = torch.ones(L, S, dtype=torch.bool, device=q.device)
    if causal_offset is not None:
        i = torch.arange(L, device=q.device)[:, None]
        j = torch.arange(S, device=q.device)[None, :]
        vis = j <= i + causal_offset
    vis = vis.expand(B, Hq, L, S)
    if attn_mask is not None:
        m = attn_mask.to(q.device)
        if m.dtype == torch.bool:
            vis = vis & m
        else:
            s = s + m.double()
    s = s.masked_fill(~vis, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)  # (B, Hq, L), -inf where nothing is visible
    dead = torch.isneginf(lse)
    p = torch.exp(s - lse.masked_fill(dead, 0.0)[..., None])
    p = p.masked_fill(dead[..., None], 0.0)
    out = torch.matmul(p, vd)  # (B, Hq, L, Dv)
    return out, lse, dead


def torch_sdpa(q, k, v, *, attn_mask=None, scale=None, causal_offset=None):
    """PyTorch's own attention in q's dtype, same semantics, for the error comparison.

    Top-left causal maps to is_causal=True; any other causal alignment is given to torch as a
    bool mask (combined with attn_mask). Returns None when torch cannot run the call.
    """
    L, S = q.shape[-2], k.shape[-2]
    mask = attn_mask
    is_causal = False
    if causal_offset is not None:
        if causal_offset == 0 and mask is None:
            is_causal = True
        else:
            i = torch.arange(L, device=q.device)[:, None]
            j = torch.arange(S, device=q.device)[None, :]
            cm = j <= i + causal_offset  # (L, S)
            if mask is None:
                mask = cm
            elif mask.dtype == torch.bool:
                mask = mask & cm
            else:
                mask = mask.masked_fill(~cm, float("-inf"))
    if mask is not None:
        # torch's kernels do not all take every broadcastable rank: give it the full shape
        mask = mask.expand(q.shape[0], q.shape[1], L, S)
        if mask.dtype != torch.bool:
            mask = mask.to(q.dtype)
    gqa = q.shape[1] != k.shape[1]
    try:
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal, scale=scale, enable_gqa=gqa
        )
    except (RuntimeError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------
# error metrics and the rule
# ---------------------------------------------------------------------------------------------
def _as_float64(out, ref, rows):
    """out and ref in float64, restricted to `rows` (an optional bool mask over the leading dims)."""
    o, r = out.double(), ref.double()
    return (o[rows], r[rows]) if rows is not None else (o, r)


def rel_err(out, ref, rows=None):
    """||out - ref|| / ||ref|| in float64 (rows: optional bool mask over the leading dims)."""
    o, r = _as_float64(out, ref, rows)
    if r.numel() == 0:
        return 0.0
    num = (o - r).norm().item()
    den = r.norm().item()
    return num / den if den > 0 else num


def max_abs(out, ref, rows=None):
    o, r = _as_float64(out, ref, rows)
    if r.numel() == 0:
        return 0.0
    return (o - r).abs().max().item()


def assert_attention_close(out, ref, dead, *, torch_out=None, dtype=None, what=""):
    """The test rule. out/ref/torch_out (B, H, L, D); dead (B, H, L) rows that see no key.

    - out is finite everywhere (NaN never passes) and exactly 0 on dead rows;
    - on live rows: rel-norm error <= 2 * torch's + slack and max-abs <= 2 * torch's + 1 ulp;
      when torch_out is None or not finite on live rows: rel-norm error <= DTYPE_RTOL.
    """
    dtype = out.dtype if dtype is None else dtype
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    assert torch.isfinite(out).all(), f"{what}: output has {(~torch.isfinite(out)).sum().item()} non-finite values"
    if dead.any():
        zero = out[dead]
        assert (zero == 0).all(), f"{what}: rows that see no key must be 0, max |out| = {zero.abs().max().item()}"
    live = ~dead
    if not live.any():
        return
    err = rel_err(out, ref, live)
    mab = max_abs(out, ref, live)
    ref_max = ref.double()[live].abs().max().item()
    eps = torch.finfo(dtype).eps
    usable = torch_out is not None and bool(torch.isfinite(torch_out[live]).all())
    if usable:
        t_err = rel_err(torch_out, ref, live)
        t_mab = max_abs(torch_out, ref, live)
        bound = 2.0 * t_err + REL_SLACK[dtype]
        mbound = 2.0 * t_mab + eps * ref_max + REL_SLACK[dtype]
        assert err <= bound, (
            f"{what}: rel error {err:.3e} > 2 x torch's {t_err:.3e} + {REL_SLACK[dtype]:.1e} "
            f"(max abs {mab:.3e}, torch {t_mab:.3e})"
        )
        assert mab <= mbound, f"{what}: max abs error {mab:.3e} > 2 x torch's {t_mab:.3e} + 1 ulp ({mbound:.3e})"
    else:
        tol = DTYPE_RTOL[dtype]
        assert err <= tol, f"{what}: rel error {err:.3e} > {tol:.1e} ({dtype}; max abs {mab:.3e})"


def assert_lse_close(lse, ref_lse, dead, *, dtype, what=""):
    """lse fp32 (B, H, L), natural log; -inf exactly where the row sees nothing."""
    assert lse.dtype == torch.float32, f"{what}: lse dtype {lse.dtype}, expected float32"
    assert lse.shape == ref_lse.shape, f"{what}: lse shape {tuple(lse.shape)} != {tuple(ref_lse.shape)}"
    assert not torch.isnan(lse).any(), f"{what}: lse has NaN"
    if dead.any():
        assert torch.isneginf(lse[dead]).all(), f"{what}: lse of rows that see no key must be -inf"
    live = ~dead
    if live.any():
        assert torch.isfinite(lse[live]).all(), f"{what}: lse not finite on rows that see keys"
        # scores are computed in fp32 from the (exact) input values: tolerance tracks fp32 math
        a = 5e-5 if dtype in (torch.float16, torch.bfloat16) else 2e-5
        if dtype == torch.float64:
            a = 1e-6  # lse is fp32 whatever the input
        diff = (lse[live].double() - ref_lse[live]).abs()
        bound = a + 2e-6 * ref_lse[live].abs()
        bad = diff > bound
        assert not bad.any(), f"{what}: lse error max {diff.max().item():.3e} ({bad.sum().item()} entries over tol)"


# ---------------------------------------------------------------------------------------------
# poisoning, errors
# ---------------------------------------------------------------------------------------------
def _tensors(x) -> list:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (tuple, list)):
        return [t for y in x for t in _tensors(y)]
    return []


def _poison_like(specs: Iterable, device):
    """Allocate NaN-filled blocks the sizes of the outputs, then free them.

    The CUDA caching allocator hands the same blocks back to the next allocations of those sizes,
    so an element the kernel forgets to write reads NaN (or the -inf/NaN pattern) and fails.
    """
    bufs = []
    for shape, dtype in specs:
        fill = float("nan") if dtype.is_floating_point else -1
        bufs.append(torch.full(shape, fill, dtype=dtype, device=device))
    torch.cuda.synchronize(device)
    del bufs


def poisoned_call(fn: Callable, *, check_finite_out=True):
    """Run fn() with the allocator poisoned for its outputs; assert the first output is finite.

    On CUDA: fn is run once to learn its output sizes, NaN tensors of those sizes are allocated
    and freed, then fn runs again and that result is returned. On CPU: fn runs once.
    """
    res = fn()
    ts = _tensors(res)
    if ts and ts[0].is_cuda:
        specs = [(tuple(t.shape), t.dtype) for t in ts]
        dev = ts[0].device
        del res, ts
        _poison_like(specs, dev)
        res = fn()
        ts = _tensors(res)
    if check_finite_out and ts:
        out = ts[0]
        assert torch.isfinite(out).all(), f"output has {(~torch.isfinite(out)).sum().item()} non-finite values"
    for t in ts[1:]:
        if t.is_floating_point():
            assert not torch.isnan(t).any(), "secondary output (lse) has NaN"
    return res


def expect_error(fn: Callable, *patterns: str, types=ERROR_TYPES):
    """fn() must raise one of `types` whose message matches every regex in `patterns`
    (case-insensitive): the tensor's name and the value it got."""
    with pytest.raises(types) as ei:
        fn()
    msg = str(ei.value)
    for p in patterns:
        assert re.search(p, msg, flags=re.IGNORECASE), f"error message {msg!r} does not match {p!r}"
    return ei.value


# Names of the arguments as the API or its error messages may spell them.
Q = r"\b(q|query)\b"
K = r"\b(k|key)\b"
V = r"\b(v|value)\b"
MASK = r"mask"


def kernel_names() -> Sequence[str]:
    return ("reference", "minimal", "tensor_core", "decode")


def op_args(q, k, v, attn_mask=None, scale=None, is_causal=False, causal_offset=0, kernel="reference", **extra):
    """Positional arguments for torch.ops.flashmin.attention_fwd, in the order its schema declares,
    by name; arguments the test does not name get their default (window_left=-1, ...), or None when
    optional without one (e.g. seqlens_k)."""
    schema = torch.ops.flashmin.attention_fwd.default._schema
    scale = 1.0 / math.sqrt(q.size(-1)) if scale is None else float(scale)
    named = dict(q=q, k=k, v=v, attn_mask=attn_mask, scale=scale, is_causal=is_causal,
                 causal_offset=causal_offset, kernel=kernel, **extra)
    args = []
    for a in schema.arguments:
        if a.name in named:
            args.append(named.pop(a.name))
        elif a.has_default_value():
            args.append(a.default_value)
        elif isinstance(a.type, torch.OptionalType):
            args.append(None)
        else:
            raise AssertionError(f"attention_fwd argument {a.name!r} ({a.type}) unknown to the tests: {schema}")
    assert not named, f"attention_fwd has no argument(s) {list(named)}: {schema}"
    return tuple(args)


def filled_keys_visibility(lengths, L, S, padding=None):
    """The (B, 1, L, S) bool mask of causal attention over each batch row's first lengths[b] keys,
    the diagonal at their bottom right (query i sees key j iff j < n_b and j <= i + n_b - L), as
    seqlens_k with is_causal and causal_offset = S - L means it; and'ed with `padding`
    (broadcastable, bool) when given. lengths: an int tensor (B,), on the device of the result."""
    n = lengths.to(torch.int64).view(-1, 1, 1, 1)
    i = torch.arange(L, device=lengths.device).view(1, 1, L, 1)
    j = torch.arange(S, device=lengths.device).view(1, 1, 1, S)
    seen = (j < n) & (j <= i + n - L)
    return seen if padding is None else seen & padding


def record_op_as_if_cuda(monkeypatch, kernel="prefill"):
    """Route flashmin calls on CPU tensors as for CUDA ones (resolve() answers `kernel`, no
    extension is loaded) and record the op's positional arguments, each call then run by the CPU
    path. Returns the list the calls are appended to (schema order: see op_args)."""
    import flashmin_nn.ops as ops
    seen = []

    def op(*args):
        seen.append(args)
        return ops._reference(*args[:8], *args[9:])   # everything but `kernel`

    monkeypatch.setattr(ops.backends, "resolve", lambda *a, **kw: kernel)
    monkeypatch.setattr(ops._ext, "load", lambda: None)
    monkeypatch.setattr(ops, "_attention_fwd", op)
    return seen


def kvcache_expected(q, k_cache, v_cache, k_new, v_new, cache_seqlens, *, scale=None, causal=False):
    """What flash_attn_with_kvcache must do, from its definition, in float64.

    q (B, Lq, Hq, D); caches (B, S_max, Hkv, D); k_new/v_new None or (B, Lnew, Hkv, D); cache_seqlens
    list of ints. Returns (new k_cache, new v_cache, out (B, Hq, Lq, D) f64, lse (B, Hq, Lq), dead).
    Batch row b attends to its first len_b = cache_seqlens[b] + Lnew keys, causal bottom-right per row.
    """
    kc, vc = k_cache.clone(), v_cache.clone()
    n_new = 0 if k_new is None else k_new.size(1)
    B, Lq, Hq, D = q.shape
    outs, lses, deads = [], [], []
    for b in range(B):
        s0 = int(cache_seqlens[b])
        if n_new:
            kc[b, s0:s0 + n_new] = k_new[b]
            vc[b, s0:s0 + n_new] = v_new[b]
        n = s0 + n_new
        qb = q[b:b + 1].transpose(1, 2)  # (1, Hq, Lq, D)
        kb = kc[b:b + 1, :n].transpose(1, 2)
        vb = vc[b:b + 1, :n].transpose(1, 2)
        o, l, d = ref_attention(qb, kb, vb, scale=scale, causal_offset=(n - Lq) if causal else None)
        outs.append(o), lses.append(l), deads.append(d)
    return kc, vc, torch.cat(outs), torch.cat(lses), torch.cat(deads)


# ---- host-side checks of the CUDA sources (tests/native/*.cu, built with nvcc; no GPU) ------------
ROOT = Path(__file__).resolve().parents[1]


def find_nvcc():
    """nvcc from $NVCC, PATH or /usr/local/cuda/bin, or None."""
    for cand in (os.environ.get("NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def run_native_check(tmp_path, check, sources, summary, flags=()):
    """Build tests/native/<check>.cu with the csrc/ files `sources` and run it. Asserts that it
    built and printed a line matching the regex `summary`; returns (the match's groups as ints,
    the run's exit code, its stdout)."""
    exe = tmp_path / check
    build = subprocess.run([find_nvcc(), "-std=c++17", "-O2", *flags, f"-I{ROOT / 'csrc'}", str(ROOT / "tests/native" / f"{check}.cu"),
                            *(str(ROOT / "csrc" / s) for s in sources), "-o", str(exe)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, f"nvcc failed:\n{build.stderr[-3000:]}"
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    m = re.search(summary, run.stdout)
    assert m, f"no summary line in the check's output:\n{run.stdout[-2000:]}"
    return tuple(int(g) for g in m.groups()), run.returncode, run.stdout
