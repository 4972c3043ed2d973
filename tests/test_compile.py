"""The custom op: opcheck, its fake implementation, and torch.compile without graph breaks."""
import math

import pytest
import torch
import torch.nn as nn

import flashmin_nn

from helpers import (assert_attention_close, kvcache_expected, make_qkv, op_args, random_bool_mask, random_float_mask,
                     ref_attention, torch_sdpa)

op = torch.ops.flashmin.attention_fwd


def _op_cases():
    """(name, args) for the op, masks already expanded to (B, Hq, L, S)."""
    B, H, L, S, D = 2, 4, 9, 13, 16
    q, k, v = make_qkv(B, H, L, S, D)
    sc = 1.0 / math.sqrt(D)
    bm = random_bool_mask((B, 1, 1, S)).expand(B, H, L, S)
    fm = random_float_mask((L, S)).expand(B, H, L, S)
    qg, kg, vg = make_qkv(B, 4, L, S, D, Hkv=2)
    qs = torch.randn(B, L, H, D).transpose(1, 2)  # strided view
    return [
        ("plain", op_args(q, k, v, None, sc, False, 0)),
        ("causal_tl", op_args(q, k, v, None, sc, True, 0)),
        ("causal_br", op_args(q, k, v, None, sc, True, S - L)),
        ("bool_mask", op_args(q, k, v, bm, sc, False, 0)),
        ("float_mask_causal", op_args(q, k, v, fm, 0.3, True, 2)),
        ("gqa", op_args(qg, kg, vg, None, sc, True, 0)),
        ("strided", op_args(qs, k, v, None, sc, False, 0)),
        ("fp16", op_args(q.half(), k.half(), v.half(), None, sc, False, 0)),
    ]


CASES = ["plain", "causal_tl", "causal_br", "bool_mask", "float_mask_causal", "gqa", "strided", "fp16"]


@pytest.mark.parametrize("case", CASES)
def test_opcheck(case):
    args = dict(_op_cases())[case]
    torch.library.opcheck(op.default, args)


@pytest.mark.parametrize("case", CASES)
def test_op_outputs_and_fake_metadata(case):
    args = dict(_op_cases())[case]
    out, lse = op(*args)
    names = [a.name for a in op.default._schema.arguments]
    a = dict(zip(names, args))
    q, k, v, m, sc, causal, off = (a[n] for n in ("q", "k", "v", "attn_mask", "scale", "is_causal", "causal_offset"))
    B, H, L, D = q.shape
    assert out.shape == (B, H, L, D) and out.dtype == q.dtype
    assert out.transpose(1, 2).is_contiguous(), f"out strides {out.stride()}"
    assert lse.shape == (B, H, L) and lse.dtype == torch.float32
    ref, _, dead = ref_attention(q, k, v, attn_mask=m, scale=sc, causal_offset=off if causal else None)
    assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, attn_mask=m, scale=sc,
                                                                causal_offset=off if causal else None))
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        fargs = tuple(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args)
        fout, flse = op(*fargs)
    assert fout.shape == out.shape and fout.stride() == out.stride() and fout.dtype == out.dtype
    assert flse.shape == lse.shape and flse.stride() == lse.stride() and flse.dtype == lse.dtype


def test_op_matches_public_api():
    q, k, v = make_qkv(2, 4, 9, 13, 16)
    out, lse = op(*op_args(q, k, v, None, 0.25, True, 4))
    a, alse = flashmin_nn.attention(q, k, v, scale=0.25, is_causal=True, causal_offset=4, return_lse=True)
    assert torch.equal(out, a) and torch.equal(lse, alse)


# ---------------------------------------------------------------------------------------------
# torch.compile: the op is one opaque node, no graph break
# ---------------------------------------------------------------------------------------------
def _recording_backend():
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    codes = []

    def fw(gm, example_inputs):
        codes.append(gm.code)
        return make_boxed_func(gm.forward)

    return aot_autograd(fw_compiler=fw), codes


@pytest.fixture(autouse=True)
def _reset_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compile_function_fullgraph():
    def f(q, k, v, m):
        x = flashmin_nn.scaled_dot_product_attention(q * 1.5, k, v, attn_mask=m)
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1) * 2.0

    q, k, v = make_qkv(2, 4, 17, 23, 16)
    m = random_bool_mask((2, 1, 1, 23))
    m[..., 0] = True
    cf = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(cf(q, k, v, m), f(q, k, v, m), rtol=1e-6, atol=1e-6)


def test_compiled_graph_holds_the_op():
    # one opaque node (the design's "one op under everything"), not a traced-through loop
    f = lambda q, k, v: flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=True)
    q, k, v = make_qkv(2, 4, 17, 23, 16)
    backend, codes = _recording_backend()
    out = torch.compile(f, fullgraph=True, backend=backend)(q, k, v)
    torch.testing.assert_close(out, f(q, k, v), rtol=1e-6, atol=1e-6)
    assert any("flashmin.attention_fwd" in c for c in codes), "the op is not in the compiled graph:\n" + "\n".join(codes)


@pytest.mark.parametrize("entry", ["sdpa_causal", "flash", "attention_lse", "module"])
def test_compile_entry_points(entry):
    q, k, v = make_qkv(1, 4, 11, 19, 16, Hkv=2)
    if entry == "sdpa_causal":
        f = lambda q, k, v: flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    elif entry == "flash":
        f = lambda q, k, v: flashmin_nn.flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                        causal=True, return_lse=True)
    elif entry == "attention_lse":
        f = lambda q, k, v: flashmin_nn.attention(q, k, v, is_causal=True, causal_offset=3, return_lse=True)
    else:
        mod = flashmin_nn.FlashAttention(is_causal=True, enable_gqa=True)
        f = lambda q, k, v: mod(q, k, v)
    exp = f(q, k, v)
    got = torch.compile(f, fullgraph=True, backend="aot_eager")(q, k, v)
    for a, b in zip(exp if isinstance(exp, tuple) else (exp,), got if isinstance(got, tuple) else (got,)):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


class _Block(nn.Module):
    def __init__(self, C=64, H=4):
        super().__init__()
        self.H = H
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.attn = flashmin_nn.FlashAttention(is_causal=True)

    def forward(self, x):  # (B, L, C)
        B, L, C = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.H, C // self.H).unbind(2)  # (B, L, H, D) each
        y = self.attn(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # (B, H, L, D)
        return self.proj(y.transpose(1, 2).reshape(B, L, C))


def test_compile_module_fullgraph_no_grad():
    model = _Block().eval()
    x = torch.randn(2, 21, 64)
    with torch.no_grad():
        exp = model(x)
        got = torch.compile(model, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(got, exp, rtol=1e-5, atol=1e-5)


def test_compile_module_with_grad_enabled_forward():
    # parameters require grad and no no_grad(): the forward must still compile and run
    model = _Block()
    x = torch.randn(2, 21, 64)
    exp = model(x)
    got = torch.compile(model, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(got, exp, rtol=1e-5, atol=1e-5)


def test_compile_dynamic_shapes():
    f = lambda q, k, v: flashmin_nn.attention(q, k, v, is_causal=True, causal_offset=k.shape[2] - q.shape[2])
    cf = torch.compile(f, fullgraph=True, backend="aot_eager", dynamic=True)
    for L, S in [(5, 9), (1, 17), (12, 30)]:
        q, k, v = make_qkv(2, 2, L, S, 16)
        out = cf(q, k, v)
        ref, _, dead = ref_attention(q, k, v, causal_offset=S - L)
        assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=S - L), what=f"dynamic {L}x{S}")


# ---------------------------------------------------------------------------------------------
# dynamic shapes: one graph for every key length (causal_offset is a SymInt, nothing branches on it)
# ---------------------------------------------------------------------------------------------
KEY_LENGTHS = list(range(3, 23))        # 20 key lengths


def _count_graphs(fn, make_args, check=None):
    """Compile fn (fullgraph, dynamic) and call it once per key length; returns the number of graphs."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    cf = torch.compile(fn, fullgraph=True, dynamic=True, backend="aot_eager")
    for S in KEY_LENGTHS:
        args = make_args(S)
        out = cf(*args)
        if check is not None and S in (KEY_LENGTHS[0], KEY_LENGTHS[-1]):
            check(S, args, out)
    return counters["stats"]["unique_graphs"]


def _bhld(S, L=2):
    return make_qkv(2, 4, L, S, 16, Hkv=2)


def _check_causal(offset_of):
    def check(S, args, out):
        q, k, v = args[:3]
        out = out[0] if isinstance(out, tuple) else out
        if out.shape[1] != q.shape[1]:          # (B, L, H, D) from the flash-style functions
            out = out.transpose(1, 2)
        co = offset_of(q.shape[2], S)
        ref, _, dead = ref_attention(q, k, v, causal_offset=co)
        assert_attention_close(out, ref, dead, torch_out=torch_sdpa(q, k, v, causal_offset=co), what=f"S={S}")
    return check


def test_one_graph_flash_attn_func_over_key_lengths():
    f = lambda q, k, v: flashmin_nn.flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                    causal=True)
    assert _count_graphs(f, _bhld, _check_causal(lambda L, S: S - L)) <= 2


def test_one_graph_attention_causal_offset_from_shapes():
    f = lambda q, k, v: flashmin_nn.attention(q, k, v, is_causal=True, causal_offset=k.shape[2] - q.shape[2])
    assert _count_graphs(f, _bhld, _check_causal(lambda L, S: S - L)) <= 2


def test_one_graph_attention_causal_offset_as_an_int_argument():
    f = lambda q, k, v, off: flashmin_nn.attention(q, k, v, is_causal=True, causal_offset=off)
    make = lambda S: (*_bhld(S), S - 4)
    assert _count_graphs(f, make, _check_causal(lambda L, S: S - 4)) <= 2


def test_one_graph_sdpa_over_key_lengths():
    f = lambda q, k, v: flashmin_nn.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    assert _count_graphs(f, _bhld, _check_causal(lambda L, S: 0)) <= 2


def _kv(S_max, Lq=1):
    q = torch.randn(2, Lq, 4, 16)                                # (B, Lq, Hq, D)
    kc, vc = torch.randn(2, S_max, 2, 16), torch.randn(2, S_max, 2, 16)
    return q, kc, vc


@pytest.mark.parametrize("lengths", ["tensor", "int", "new_keys"])
def test_one_graph_kvcache_over_cache_lengths(lengths):
    # check_lengths keeps its default (True): under torch.compile it must neither break the graph nor fail
    # on a data-dependent guard
    def make(S):
        q, kc, vc = _kv(S)
        if lengths == "tensor":
            return q, kc, vc, torch.tensor([S - 1, S // 2], dtype=torch.int32)
        if lengths == "int":
            return q, kc, vc, S - 2
        return q, kc, vc, torch.tensor([S - 1, 0], dtype=torch.int32), torch.randn(2, 1, 2, 16), torch.randn(2, 1, 2, 16)

    def f(q, kc, vc, lens, kn=None, vn=None):
        return flashmin_nn.flash_attn_with_kvcache(q, kc, vc, kn, vn, cache_seqlens=lens, causal=True)

    def check(S, args, out):
        q, kc, vc, lens = args[:4]
        kn, vn = (args[4], args[5]) if len(args) > 4 else (None, None)
        lens = [lens] * 2 if isinstance(lens, int) else lens.tolist()
        # the compiled call already wrote kn/vn into kc/vc: expect against the cache without them
        n_new = 0 if kn is None else kn.size(1)
        kc0, vc0 = kc.clone(), vc.clone()
        if n_new:
            for b, s in enumerate(lens):
                assert torch.equal(kc[b, s:s + n_new], kn[b]) and torch.equal(vc[b, s:s + n_new], vn[b])
        _, _, ref, _, dead = kvcache_expected(q, kc0, vc0, kn, vn, lens, causal=True)
        assert_attention_close(out.transpose(1, 2), ref, dead, torch_out=None, dtype=torch.float32, what=f"S={S}")

    assert _count_graphs(f, make, check) <= 2


def test_one_graph_varlen_over_key_lengths():
    def make(S):
        lens_q, lens_k = [2, 1, 3], [S, S // 2, 1]
        q, k, v = torch.randn(sum(lens_q), 4, 16), torch.randn(sum(lens_k), 2, 16), torch.randn(sum(lens_k), 2, 16)
        cu = lambda ls: torch.tensor([0, ls[0], ls[0] + ls[1], sum(ls)], dtype=torch.int32)
        return q, k, v, cu(lens_q), cu(lens_k), max(lens_q), max(lens_k)

    def f(q, k, v, cq, ck, mq, mk):
        return flashmin_nn.flash_attn_varlen_func(q, k, v, cq, ck, mq, mk, causal=True)

    def check(S, args, out):
        q, k, v, cq, ck = args[:5]
        exp = torch.cat([flashmin_nn.flash_attn_func(q[None, cq[i]:cq[i + 1]], k[None, ck[i]:ck[i + 1]],
                                                     v[None, ck[i]:ck[i + 1]], causal=True)[0] for i in range(3)])
        torch.testing.assert_close(out, exp, rtol=1e-5, atol=1e-5)

    assert _count_graphs(f, make, check) <= 2
