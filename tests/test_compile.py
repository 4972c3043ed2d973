"""The custom op: opcheck, its fake implementation, and torch.compile without graph breaks."""
import math

import pytest
import torch
import torch.nn as nn

import flashmin_nn

from helpers import assert_attention_close, make_qkv, op_args, random_bool_mask, random_float_mask, ref_attention, torch_sdpa

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
