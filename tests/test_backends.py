"""Kernel selection's fast paths agree with their definitions.

- backends._auto_fast (what "auto" picks for the common CUDA call, in one pass) against the walk
  that defines "auto": the first kernel of KERNEL_ORDER whose `rejection(...)` is None. On the
  CPU the tensors are wrapped to answer as if they lived on cuda:0 (kernel selection only reads
  their metadata); on a GPU the same battery runs on real CUDA tensors.
- a forced kernel (use_kernel) is accepted, or refused with the reject function's reason, exactly
  as `rejection(...)` says.
- _checks.check_qkv's one-expression accept path takes only calls the detailed checks accept
  unchanged, and takes the common ones.
"""
import itertools

import pytest
import torch

import flashmin_nn
from flashmin_nn import _checks, backends

DTYPES = (torch.float16, torch.bfloat16, torch.float32)
HEAD_DIMS = (8, 40, 64, 100, 128, 160, 256, 264)
Q_LENS = (1, 16, 17, 300)
LAYOUTS = ("contiguous", "blhd", "slice", "padded", "offset", "fused", "row_pitch", "head_pitch", "batch_pitch")


def _tensor(shape, layout, dtype, device):
    """A (B, H, L, D) tensor laid out as `layout`:
    contiguous; blhd: a transposed (B, L, H, D) buffer; slice: [..., 1:D+1] of a wider buffer
    (row stride D + 8, storage offset 1: misaligned); padded: [..., :D] of rows padded to a multiple
    of 8 elements (aligned whatever D); offset: a contiguous tensor one element into
    its storage; fused: GPT-2's q/k/v, a slice of a (B, L, 3, H, D) projection; row_pitch,
    head_pitch, batch_pitch: the stride of dim 2, 1 or 0 one element more than contiguous."""
    B, H, L, D = shape
    if layout == "contiguous":
        return torch.empty(B, H, L, D, dtype=dtype, device=device)
    if layout == "blhd":
        return torch.empty(B, L, H, D, dtype=dtype, device=device).transpose(1, 2)
    if layout == "slice":
        return torch.empty(B, H, L, D + 8, dtype=dtype, device=device)[..., 1:D + 1]
    if layout == "padded":
        return torch.empty(B, H, L, (D + 7) // 8 * 8 + 8, dtype=dtype, device=device)[..., :D]
    if layout == "offset":
        return torch.empty(B * H * L * D + 1, dtype=dtype, device=device)[1:].view(B, H, L, D)
    if layout == "fused":
        return torch.empty(B, L, 3, H, D, dtype=dtype, device=device)[:, :, 1].transpose(1, 2)
    if layout == "row_pitch":
        return torch.empty(B, H, L, D + 1, dtype=dtype, device=device)[..., :D]
    if layout == "head_pitch":
        return torch.empty(B, H, L * D + 1, dtype=dtype, device=device)[..., :L * D].view(B, H, L, D)
    if layout == "batch_pitch":
        return torch.empty(B, H * L * D + 1, dtype=dtype, device=device)[:, :H * L * D].view(B, H, L, D)
    raise ValueError(layout)


def _one_misaligned(shape, bad, dtype, device):
    """A (B, H, L, D) view whose rows are 16-byte aligned except for the stride of dim `bad` (one
    element more) or, for bad == "offset", the storage offset (one element)."""
    B, H, L, D = shape
    strides = [H * (L * D + 8) + 8, L * D + 8, D, 1]
    if bad in (0, 1, 2):
        strides[bad] += 1
    offset = 1 if bad == "offset" else 0
    n = offset + sum((size - 1) * st for size, st in zip(shape, strides)) + 1
    return torch.empty(n, dtype=dtype, device=device).as_strided(shape, strides, offset)


def _battery(device):
    """(what, q, k, v, mask) over dtypes, head dims, query lengths, layouts, GQA and masks."""
    B, Hq, S = 2, 4, 24
    for dtype, D, L, layout, Hkv, masked in itertools.product(DTYPES, HEAD_DIMS, Q_LENS, LAYOUTS, (4, 2),
                                                              (False, True)):
        q = _tensor((B, Hq, L, D), layout, dtype, device)
        k = _tensor((B, Hkv, S, D), layout if layout != "fused" else "contiguous", dtype, device)
        v = _tensor((B, Hkv, S, D), layout, dtype, device)
        mask = torch.ones(B, 1, 1, S, dtype=torch.bool, device=device).expand(B, Hq, L, S) if masked else None
        yield f"{dtype} D={D} L={L} {layout} Hkv={Hkv} mask={masked}", q, k, v, mask
    # one stride of one of q, k, v misaligned, or its storage offset
    for which, bad in itertools.product(range(3), (0, 1, 2, "offset")):
        for L in (1, 17):
            ts = [_one_misaligned((B, Hq, L, 64), None, torch.float16, device) for _ in range(3)]
            ts[which] = _one_misaligned((B, Hq, L, 64), bad, torch.float16, device)
            yield f"only {'qkv'[which]} misaligned at {bad}, L={L}", *ts, None
    # k or v of another dtype than q (choose_kernel takes any tensors): 16 bytes are then not 8 elements
    for which, dtype, offset in itertools.product((1, 2), (torch.float32, torch.bfloat16, torch.int8), (0, 2, 8, 16)):
        ts = [_tensor((B, Hq, 1, 64), "contiguous", torch.float16, device)] + \
             [_tensor((B, Hq, S, 64), "contiguous", torch.float16, device) for _ in range(2)]
        ts[which] = torch.empty(B * Hq * S * 64 + offset, dtype=dtype, device=device)[offset:].view(B, Hq, S, 64)
        yield f"fp16 q, {'qkv'[which]} {dtype} at offset {offset}", *ts, None
    q = _tensor((B, Hq, 1, 64), "contiguous", torch.float64, device)
    yield "fp64", q, q, q, None


def _walk(q, k, v, mask):
    """What "auto" means (backends._auto_walk: the first kernel of KERNEL_ORDER that accepts the
    call), or RuntimeError where none does."""
    try:
        return backends._auto_walk(q, k, v, mask)
    except RuntimeError:
        return RuntimeError


def _check_battery(device, wrap=lambda t: t):
    """Returns how many calls the fast path decided; fails on any disagreement."""
    bad, decided = [], 0
    for what, q, k, v, mask in _battery(device):
        q, k, v = wrap(q), wrap(k), wrap(v)
        want = _walk(q, k, v, mask)
        try:
            got = flashmin_nn.choose_kernel(q, k, v, attn_mask=mask)
        except RuntimeError:
            got = RuntimeError
        fast = backends._auto_fast(q, k, v)
        decided += fast is not None
        if got != want or fast not in (None, want):
            bad.append(f"{what}: choose_kernel {got}, fast path {fast}, walk {want}")
        for name in backends.KERNEL_ORDER:          # forced kernels: accepted iff rejection() is None
            why = backends.rejection(name, q, k, v, mask)
            try:
                with flashmin_nn.use_kernel(name):
                    forced = backends.resolve(q, k, v, mask)
            except RuntimeError as e:
                forced = e
            if why is None and forced != name:
                bad.append(f"{what}: forced {name} refused ({forced}) though rejection() is None")
            if why is not None and not (isinstance(forced, RuntimeError) and why in str(forced)):
                bad.append(f"{what}: forced {name} gave {forced!r}, rejection() says {why!r}")
    assert not bad, f"{len(bad)} disagreements:\n" + "\n".join(bad[:30])
    return decided


class _AsCuda:
    """A CPU tensor that answers kernel selection's questions as if it lived on cuda:0."""
    is_cuda = True
    is_cpu = False
    device = torch.device("cuda", 0)

    def __init__(self, t):
        self._t = t

    def get_device(self):
        return 0

    def __getattr__(self, name):
        return getattr(self._t, name)


@pytest.mark.parametrize("cc_major", [7, 8, 9])
def test_auto_fast_path_matches_walk_as_if_cuda(monkeypatch, cc_major):
    monkeypatch.setitem(backends._capability, 0, cc_major)
    decided = _check_battery("cpu", wrap=_AsCuda)
    assert decided > 500, f"the fast path decided only {decided} calls"   # it is exercised


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_fast_path_matches_walk_cuda():
    decided = _check_battery("cuda")
    if torch.cuda.get_device_capability()[0] >= 8:
        # the first call taught _capability the device; everything aligned fp16/bf16 is decided fast
        assert backends._auto_fast(*(torch.empty(1, 2, 1, 64, device="cuda", dtype=torch.float16),) * 3) == "decode"
    assert decided > 500, f"the fast path decided only {decided} calls"


def test_auto_fast_path_under_compile(monkeypatch):
    # Traces with no graph break (storage_offset() is not traceable: the fast path, like
    # _rows_aligned, reads only strides while compiling). CPU tensors: get_device() is -1.
    monkeypatch.setitem(backends._capability, -1, 8)
    q = torch.zeros(2 * 4 * 64 + 1, dtype=torch.float16)[1:].view(2, 4, 1, 64)   # misaligned offset
    k = torch.zeros(2, 4, 32, 64, dtype=torch.float16)

    def pick(q, k):
        return q + 0 if backends._auto_fast(q, k, k) == "decode" else q - 1

    assert backends._auto_fast(q, k, k) is None                     # eager: the offset counts
    torch._dynamo.reset()
    got = torch.compile(pick, fullgraph=True, backend="eager")(q, k)  # compiling: strides only
    assert torch.equal(got, q + 0)
    torch._dynamo.reset()


# ---------------------------------------------------------------------------------------------
# check_qkv: the fast accept path
# ---------------------------------------------------------------------------------------------
def _qkv_cases(device):
    """(what, q, k, v, layout, fast): valid and invalid calls on `device`, and whether the fast
    path should take them."""
    f32, other = torch.float32, ("meta" if device == "cpu" else "cpu")

    def t(*shape, dtype=f32, device=device):
        return torch.empty(*shape, dtype=dtype, device=device)

    q, k = t(2, 4, 3, 16), t(2, 4, 5, 16)
    fused = t(2, 3, 3, 4, 16)
    yield "plain", q, k, k.clone(), "bhld", True
    yield "fp16", q.half(), k.half(), k.half(), "bhld", True
    yield "bf16", q.bfloat16(), k.bfloat16(), k.bfloat16(), "bhld", True
    yield "fp64", q.double(), k.double(), k.double(), "bhld", device == "cpu"      # CPU only
    yield "gqa", t(2, 8, 3, 16), k, k, "bhld", True
    yield "fused qkv views", *(fused[:, :, i].transpose(1, 2) for i in range(3)), "bhld", True
    yield "blhd", t(2, 3, 4, 16), t(2, 5, 4, 16), t(2, 5, 4, 16), "blhd", True
    yield "blhd gqa", t(2, 3, 8, 16), t(2, 5, 2, 16), t(2, 5, 2, 16), "blhd", True
    yield "head dim 256", t(1, 2, 3, 256), t(1, 2, 3, 256), t(1, 2, 3, 256), "bhld", True
    yield "head dim 264", t(1, 2, 3, 264), t(1, 2, 3, 264), t(1, 2, 3, 264), "bhld", device == "cpu"
    yield "empty", t(0, 4, 0, 16), t(0, 4, 0, 16), t(0, 4, 0, 16), "bhld", True
    # the detailed checks copy these, or refuse them
    yield "last dim strided", t(2, 4, 3, 32)[..., ::2], k, k, "bhld", False
    yield "k last dim strided", q, t(2, 4, 5, 32)[..., ::2], k, "bhld", False
    yield "v last dim strided", q, k, t(2, 4, 5, 32)[..., ::2], "bhld", False
    yield "last dim strided, size 1", t(2, 4, 3, 2)[..., ::2], t(2, 4, 5, 2)[..., ::2], t(2, 4, 5, 2)[..., ::2], \
        "bhld", False
    yield "int", q.int(), k.int(), k.int(), "bhld", False
    yield "mixed dtypes", q, k.half(), k, "bhld", False
    yield "fp64 v", q, k, k.double(), "bhld", False
    yield "3-D", q[0], k[0], k[0], "bhld", False
    yield "5-D", q[None], k[None], k[None], "bhld", False
    yield "batch mismatch", q, t(3, 4, 5, 16), t(3, 4, 5, 16), "bhld", False
    yield "head dim mismatch", q, t(2, 4, 5, 8), t(2, 4, 5, 8), "bhld", False
    yield "v shape", q, k, t(2, 4, 6, 16), "bhld", False
    yield "heads not a multiple", t(2, 3, 3, 16), t(2, 2, 5, 16), t(2, 2, 5, 16), "bhld", False
    yield "zero kv heads", t(2, 4, 3, 16), t(2, 0, 5, 16), t(2, 0, 5, 16), "bhld", False
    yield "blhd heads not a multiple", t(2, 3, 3, 16), t(2, 5, 2, 16), t(2, 5, 2, 16), "blhd", False
    yield f"q on {other}", t(2, 4, 3, 16, device=other), k, k, "bhld", False
    yield f"k on {other}", q, t(2, 4, 5, 16, device=other), k, "bhld", False
    yield f"v on {other}", q, k, t(2, 4, 5, 16, device=other), "bhld", False
    yield "all on meta", t(2, 4, 3, 16, device="meta"), t(2, 4, 5, 16, device="meta"), \
        t(2, 4, 5, 16, device="meta"), "bhld", False
    if device == "cuda" and torch.cuda.device_count() > 1:
        yield "k on cuda:1", q, t(2, 4, 5, 16, device="cuda:1"), k, "bhld", False
        yield "all on cuda:1", *(x.to("cuda:1") for x in (q, k, k)), "bhld", True
    yield "None", None, k, k, "bhld", False
    yield "a list", q, [1, 2], k, "bhld", False


_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
_QKV_CASES = [pytest.param("cpu", c[0], id=f"cpu-{c[0]}") for c in _qkv_cases("cpu")]
_QKV_CASES += [pytest.param("cuda", name, id=f"cuda-{name}", marks=(_CUDA, pytest.mark.cuda))
               for name in ("plain", "fp16", "bf16", "fp64", "gqa", "fused qkv views", "blhd", "head dim 256",
                            "head dim 264", "last dim strided", "k last dim strided", "v last dim strided",
                            "mixed dtypes", "q on cpu", "k on cpu", "v on cpu", "k on cuda:1", "all on cuda:1")]


@pytest.mark.parametrize("device,case", _QKV_CASES)
def test_check_qkv_fast_path_accepts_only_what_the_detailed_checks_pass(device, case, monkeypatch):
    found = [c for c in _qkv_cases(device) if c[0] == case]
    if not found:
        pytest.skip(f"{case}: needs two GPUs")
    what, q, k, v, layout, fast = found[0]
    names = ("query", "key", "value")
    monkeypatch.setattr(_checks, "_warned_copy", True)     # no copy warning here; others' state kept
    try:
        detailed = _checks._check_qkv_detailed(q, k, v, names, layout)
    except (TypeError, ValueError) as e:
        detailed = e
    unchanged = isinstance(detailed, tuple) and all(a is b for a, b in zip(detailed, (q, k, v)))
    calls = []
    real = _checks._check_qkv_detailed
    monkeypatch.setattr(_checks, "_check_qkv_detailed", lambda *a: calls.append(1) or real(*a))
    try:
        got = _checks.check_qkv(q, k, v, names, layout)
    except (TypeError, ValueError) as e:
        got = e
    if not calls:       # the fast path accepted: the detailed checks must pass it unchanged
        assert unchanged, f"{what}: the fast path accepted a call the detailed checks give {detailed!r}"
        assert all(a is b for a, b in zip(got, (q, k, v)))
    elif isinstance(detailed, Exception):   # refused: the detailed checks' own error
        assert type(got) is type(detailed) and str(got) == str(detailed)
    assert (not calls) == fast, f"{what}: the fast path {'missed' if calls else 'took'} it"
