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
import os

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


@pytest.mark.parametrize("sm90_built", [False, True])
@pytest.mark.parametrize("cc_major", [7, 8, 9])
def test_auto_fast_path_matches_walk_as_if_cuda(monkeypatch, cc_major, sm90_built):
    monkeypatch.setitem(backends._capability, 0, cc_major)
    monkeypatch.setitem(backends._sm90_cache, "built", sm90_built)   # a Hopper build with or without sm_90a code
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


# ---------------------------------------------------------------------------------------------
# KERNEL_SPECS: the one table of what each kernel supports
# ---------------------------------------------------------------------------------------------
SPECS = backends.KERNEL_SPECS


def test_kernel_order_nests_as_the_fast_path_and_resolve_assume():
    # _auto_fast is written for this order, and resolve's rank shortcut for kernels that nest:
    # every call decode serves, prefill serves, and every call prefill serves, minimal serves.
    assert backends.KERNEL_ORDER == ("decode", "prefill_sm90", "prefill", "minimal")
    assert backends._NESTED == ("decode", "prefill", "minimal")
    for inner, outer in (("decode", "prefill"), ("prefill", "minimal"), ("prefill_sm90", "prefill")):
        a, b = SPECS[inner], SPECS[outer]
        assert set(a.dtypes) <= set(b.dtypes), (inner, outer)
        assert a.head_dim_max <= b.head_dim_max and a.head_dim_multiple % b.head_dim_multiple == 0, (inner, outer)
        assert b.max_query_len is None or (a.max_query_len or 1 << 62) <= b.max_query_len, (inner, outer)
        assert (b.min_cc or 0) <= (a.min_cc or 0) and b.max_cc is None, (inner, outer)
        assert a.aligned_rows >= b.aligned_rows and a.positive_strides >= b.positive_strides, (inner, outer)
        assert b.build_reason is None, (inner, outer)
        assert (a.max_cc or 1 << 30) <= (b.max_cc or 1 << 30), (inner, outer)
    # the fast path's shortcut for decode and prefill: the same dtypes, capability and alignment
    assert SPECS["decode"].dtypes == SPECS["prefill"].dtypes
    assert SPECS["decode"].min_cc == SPECS["prefill"].min_cc and SPECS["decode"].aligned_rows
    # prefill_sm90 serves a subset of prefill's calls: auto's choosing it ranks like prefill
    assert backends._ORDER_RANK_OF_CHOICE["prefill_sm90"] == backends._ORDER_RANK["prefill"]


def test_kernel_names_and_aliases():
    assert set(backends.CUDA_KERNELS) == {"minimal", "prefill", "decode", "prefill_sm90"}
    assert backends.KERNEL_ALIASES == {"tensor_core": "prefill", "hopper": "prefill_sm90"}
    assert set(backends.KERNEL_NAMES) == {"auto", "reference", *backends.CUDA_KERNELS, *backends.KERNEL_ALIASES}
    ks = flashmin_nn.list_kernels()
    assert list(ks) == list(SPECS)                        # one entry per kernel, aliases not repeated
    for alias, name in backends.KERNEL_ALIASES.items():
        assert alias in ks and ks[alias] is ks[name] and ks.get(alias) is ks[name]
    assert "bogus" not in ks and ks.get("bogus") is None
    with pytest.raises(KeyError):
        ks["bogus"]


def test_binding_accepts_every_cuda_kernel_name():
    # csrc/flashmin_api.cpp's kernel_from_name must take the names and aliases the table gives
    src = open(os.path.join(os.path.dirname(__file__), "..", "csrc", "flashmin_api.cpp")).read()
    body = src[src.index("Kernel kernel_from_name("):]
    body = body[:body.index("\n}\n")]
    for name in backends.CUDA_KERNELS + tuple(backends.KERNEL_ALIASES):
        assert f'name == "{name}"' in body, f"kernel_from_name does not accept {name!r}"


def test_public_checks_agree_with_the_table():
    cuda = [s for s in SPECS.values() if s.cuda]
    assert _checks.MAX_CUDA_HEAD_DIM == max(s.head_dim_max for s in cuda)
    assert set(_checks.CUDA_DTYPES) == {d for s in cuda for d in s.dtypes}


def test_docs_hold_the_table():
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "internals.md")).read()
    assert backends.support_table() in doc, "docs/internals.md's kernel table differs from backends.support_table()"


def test_alias_forced_runs_its_kernel_and_refuses_by_the_name_given(monkeypatch):
    monkeypatch.setitem(backends._capability, 0, 8)
    q = _AsCuda(torch.empty(1, 2, 3, 64, dtype=torch.float16))
    with flashmin_nn.use_kernel("tensor_core"):
        assert backends.resolve(q, q, q, None) == "prefill"
    assert backends.rejection("tensor_core", q, q, q) is None
    q32 = _AsCuda(torch.empty(1, 2, 3, 64))
    assert backends.rejection("tensor_core", q32, q32, q32) == backends.rejection("prefill", q32, q32, q32) is not None
    with flashmin_nn.use_kernel("tensor_core"):
        with pytest.raises(RuntimeError, match="'tensor_core'"):
            backends.resolve(q32, q32, q32, None)


def _limit_cases(spec):
    """(what, shape (B, H, L, D), dtype, served): each limit of `spec` and one step past it."""
    dt = spec.dtypes[0]
    D = spec.head_dim_max
    yield f"head dim {D}", (1, 2, 3, D), dt, True
    yield f"head dim {D + spec.head_dim_multiple}", (1, 2, 3, D + spec.head_dim_multiple), dt, False
    if spec.head_dim_multiple > 1:
        yield f"head dim {D - 1}", (1, 2, 3, D - 1), dt, False
    if spec.max_query_len is not None:
        yield f"query length {spec.max_query_len}", (1, 2, spec.max_query_len, 64), dt, True
        yield f"query length {spec.max_query_len + 1}", (1, 2, spec.max_query_len + 1, 64), dt, False
    for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        yield f"{d}", (1, 2, 3, 64), d, d in spec.dtypes


@pytest.mark.parametrize("name", [n for n in backends.KERNEL_ORDER])
def test_rejection_at_each_limit_as_if_cuda(monkeypatch, name):
    monkeypatch.setitem(backends._capability, 0, SPECS[name].min_cc or 8)   # a GPU the kernel runs on
    monkeypatch.setitem(backends._sm90_cache, "built", True)                # and a build that has it
    for what, shape, dtype, served in _limit_cases(SPECS[name]):
        q = _AsCuda(torch.empty(*shape, dtype=dtype))
        why = backends.rejection(name, q, q, q)
        assert (why is None) == served, f"{name}, {what}: rejection() says {why!r}"


def test_list_kernels_reads_the_compute_capability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(backends, "_cuda_reason", lambda: None)
    monkeypatch.setitem(backends._sm90_cache, "built", False)
    for cc, served in ((7, {"reference", "minimal"}), (8, {"reference", "minimal", "prefill", "decode"}),
                       (9, {"reference", "minimal", "prefill", "decode"}), (10, {"reference", "minimal", "prefill", "decode"})):
        monkeypatch.setitem(backends._capability, 0, cc)
        ks = flashmin_nn.list_kernels()
        assert {n for n, info in ks.items() if info.available} == served, cc
        for n, info in ks.items():
            assert info.available or info.reason, n
            assert info.spec is SPECS[n]
        if cc == 7:
            assert "compute capability 8.0" in ks["prefill"].reason
        if cc == 9:
            assert "sm_90a" in ks["prefill_sm90"].reason      # the capability fits, the build does not
    monkeypatch.setitem(backends._sm90_cache, "built", True)
    monkeypatch.setitem(backends._capability, 0, 9)
    assert flashmin_nn.list_kernels()["prefill_sm90"].available


# On a GPU: Python's refusal (rejection) and the binding's (the op raising) agree at every limit of
# every CUDA kernel this machine runs, and one step past it.
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", list(backends.CUDA_KERNELS))
def test_python_and_binding_refuse_alike_cuda(name):
    from flashmin_nn import _ext
    info = flashmin_nn.list_kernels()[name]
    if not info.available:
        pytest.skip(f"{name}: {info.reason}")
    _ext.load()
    bad = []
    for what, shape, dtype, served in _limit_cases(SPECS[name]):
        q = torch.randn(*shape, device="cuda").to(dtype)
        k = v = torch.randn(shape[0], shape[1], 5, shape[3], device="cuda").to(dtype)
        why = backends.rejection(name, q, k, v)
        try:
            torch.ops.flashmin.attention_fwd(q, k, v, None, None, 0.125, False, 0, name)
            torch.cuda.synchronize()
            binding = None
        except RuntimeError as e:
            binding = str(e)
        if (why is None) != (binding is None):
            bad.append(f"{what}: Python {why!r}, binding {binding!r}")
        if (why is None) != served:
            bad.append(f"{what}: expected {'served' if served else 'refused'}, Python says {why!r}")
    assert not bad, f"{name}:\n" + "\n".join(bad)
