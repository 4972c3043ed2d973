"""transformers integration: registered attention + mask function, patch_gpt2 / patch_model.

CPU tests use tiny random models in fp32 and compare against transformers' own `sdpa` (tight
tolerance, identical greedy generations). CUDA tests repeat the parity in fp16/bf16 against an
fp32 eager reference, where flashmin's error may be at most ~1.5x sdpa's.
"""
import json
import os
import re
import subprocess
import sys
import types
import warnings

import pytest
import torch

transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip(f"needs transformers>=5, found {transformers.__version__}", allow_module_level=True)

from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM  # noqa: E402
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask  # noqa: E402
from transformers.masking_utils import sliding_window_causal_mask_function  # noqa: E402

import flashmin_nn  # noqa: E402
from flashmin_nn.integrations import transformers as fm_hf  # noqa: E402
from helpers import filled_keys_visibility, record_op_as_if_cuda  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
RTOL_FP32 = 1e-5


def tiny_gpt2(seed=0, **overrides):
    """2 layers, 4 heads, 64 wide, vocab 97; scale_attn_by_inverse_layer_idx exercises `scaling`."""
    kw = dict(n_layer=2, n_head=4, n_embd=64, vocab_size=97, n_positions=128, bos_token_id=0,
              eos_token_id=0, pad_token_id=0, scale_attn_by_inverse_layer_idx=True)
    kw.update(overrides)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**kw)).eval()
    model.generation_config.eos_token_id = None  # generate exactly max_new_tokens
    return model


def tiny_llama(seed=0):
    """GQA: 4 query heads over 2 kv heads."""
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=97, max_position_embeddings=128,
                      bos_token_id=0, eos_token_id=0, pad_token_id=0)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = None
    return model


def batch(B=3, L=20, vocab=97, padded=False, device="cpu"):
    """ids (B, L) and a 2-D mask (B, L), left-padded rows when padded (row 0 never)."""
    ids = torch.randint(1, vocab, (B, L))
    mask = torch.ones(B, L, dtype=torch.long)
    if padded:
        for b in range(1, B):
            mask[b, : b * L // (B + 1)] = 0
        ids = ids.masked_fill(mask == 0, 0)
    return ids.to(device), mask.to(device)


def rel_err(out, ref, keep=None):
    diff, ref = out.float() - ref.float(), ref.float()
    if keep is not None:
        diff, ref = diff[keep], ref[keep]
    return (diff.norm() / ref.norm()).item()


def logits(model, ids, mask, position_ids=None):
    with torch.no_grad():
        return model(ids, attention_mask=mask, position_ids=position_ids, use_cache=False).logits  # (B, L, V)


def greedy(model, ids, mask, n=12, **kw):
    with torch.no_grad():
        out = model.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             pad_token_id=0, **kw)
    return out[:, ids.shape[1]:]  # (B, n)


# ---------------------------------------------------------------------------------------------
# registration and the mask function
# ---------------------------------------------------------------------------------------------
def test_registered_name_is_safe_and_registration_idempotent():
    name = fm_hf.ATTN_IMPLEMENTATION
    # transformers reads "flash" as FlashAttention, "org/repo" or ":" as a hub kernel, and runs
    # its own checks for names containing "sdpa" or "flex_attention".
    for bad in ("flash", "/", ":", "sdpa", "flex_attention", "paged|"):
        assert bad not in name
    assert fm_hf.register() == name and fm_hf.register() == name
    assert transformers.AttentionInterface()[name] is fm_hf.attention_forward
    assert ALL_MASK_ATTENTION_FUNCTIONS[name] is fm_hf.flashmin_mask


def test_lazy_reexports():
    assert flashmin_nn.patch_gpt2 is fm_hf.patch_gpt2
    assert flashmin_nn.patch_model is fm_hf.patch_model
    assert flashmin_nn.unpatch is fm_hf.unpatch
    assert flashmin_nn.patched is fm_hf.patched


def test_mask_function_cheap_cases():
    pad = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)  # (B, S)
    full = torch.ones_like(pad)
    # prefill without padding, and decode (q_length 1 at the end of the cache): no mask at all
    assert fm_hf.flashmin_mask(2, 6, 6, attention_mask=full) is None
    assert fm_hf.flashmin_mask(2, 6, 6, attention_mask=None) is None
    assert fm_hf.flashmin_mask(2, 1, 6, q_offset=5, attention_mask=full) is None
    # padding: a (B, 1, 1, S) key padding mask, causality left to the kernel
    for L, q_offset in ((6, 0), (1, 5), (2, 4)):
        m = fm_hf.flashmin_mask(2, L, 6, q_offset=q_offset, attention_mask=pad)
        assert m.shape == (2, 1, 1, 6) and m.dtype == torch.bool
        assert torch.equal(m[:, 0, 0], pad)


def materialised(filled):
    """The (B, 1, L, S) bool mask a FilledKeys stands for: key j of row b seen by query i iff
    j < n_b, j <= i + n_b - L (the diagonal on the filled keys) and the padding lets it through."""
    _, _, L, S = filled.shape
    return filled_keys_visibility(filled.lengths, L, S, filled.padding)


@pytest.mark.parametrize("offset_kind", ["tensor", "int"])
def test_mask_function_hands_a_static_cache_the_filled_keys(offset_kind):
    """Keys past the last query (a StaticCache's empty slots): a FilledKeys, the keys written so far
    as an int32 device tensor and the 2-D mask's padding, which means exactly what sdpa's mask says."""
    pad = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    for L, q_offset in ((6, 0), (1, 5), (3, 2), (1, 0)):
        off = torch.tensor(q_offset) if offset_kind == "tensor" else q_offset
        for allow in (True, False) if L == 1 and offset_kind == "tensor" else (True,):
            for mask in (pad, torch.ones_like(pad), None):
                kw = dict(batch_size=2, q_length=L, kv_length=8, q_offset=off, attention_mask=mask,
                          allow_is_causal_skip=allow, device=torch.device("cpu"))
                got = fm_hf.flashmin_mask(**kw)
                assert type(got) is fm_hf.FilledKeys, (kw, got)
                assert got.shape == (2, 1, L, 8) and got.ndim == 4
                assert got.lengths.dtype == torch.int32 and got.lengths.is_contiguous()
                assert got.lengths.tolist() == [q_offset + L] * 2
                assert (got.padding is None) == (mask is None)
                exp = sdpa_mask(**{**kw, "allow_is_causal_skip": False})
                assert torch.equal(materialised(got).expand(2, 1, L, 8), exp.expand(2, 1, L, 8)), kw
                assert fm_hf.flashmin_mask(**{**kw, "attention_mask": got}) is got   # the forward's second look
    # the keys of a cache whose first slot is position kv_offset
    got = fm_hf.flashmin_mask(2, 1, 6, q_offset=torch.tensor(7), kv_offset=2, attention_mask=pad)
    assert got.lengths.tolist() == [6, 6] and torch.equal(got.padding[:, 0, 0], pad[:, 2:])


def test_mask_function_keeps_the_full_mask_for_models_that_read_it():
    """A StaticCache decode step asks for a materialised mask for every model (transformers'
    rule for compileable caches); the models that add to it themselves get one."""
    pad = torch.ones(2, 8, dtype=torch.bool)
    kw = dict(batch_size=2, q_length=1, kv_length=8, q_offset=torch.tensor(5), attention_mask=pad,
              allow_is_causal_skip=False)
    doge = types.SimpleNamespace(model_type="doge")
    got = fm_hf.flashmin_mask(**kw, config=doge)
    assert isinstance(got, torch.Tensor) and torch.equal(got, sdpa_mask(**kw))
    assert type(fm_hf.flashmin_mask(**kw, config=types.SimpleNamespace(model_type="gpt2"))) is fm_hf.FilledKeys


def test_mask_function_falls_back_to_the_full_mask():
    pad = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    cases = [
        # a StaticCache prefill whose caller asks for a materialised mask
        dict(batch_size=2, q_length=6, kv_length=8, attention_mask=pad, allow_is_causal_skip=False),
        # sliding window
        dict(batch_size=2, q_length=8, kv_length=8, attention_mask=torch.ones_like(pad), local_size=3,
             mask_function=sliding_window_causal_mask_function(3)),
        # the caller asks for a materialised mask
        dict(batch_size=2, q_length=8, kv_length=8, attention_mask=torch.ones_like(pad), allow_is_causal_skip=False),
    ]
    for kw in cases:
        got = fm_hf.flashmin_mask(**kw)
        exp = sdpa_mask(**{**kw, "allow_is_causal_skip": False})
        assert got.shape == (2, 1, kw["q_length"], 8)
        assert torch.equal(got, exp), kw


class _Layer(torch.nn.Module):
    is_causal = True


@pytest.mark.parametrize("L,n", [(1, 1), (1, 6), (3, 7), (4, 4)])
@pytest.mark.parametrize("padded", [False, True], ids=["dense", "left_padded"])
def test_attention_forward_with_filled_keys_matches_torch(L, n, padded):
    """A FilledKeys call equals sdpa on the mask it stands for; the empty slots hold NaN, never read."""
    B, Hq, Hkv, D, S = 2, 4, 2, 16, 9
    q = torch.randn(B, Hq, L, D)
    k, v = torch.randn(B, Hkv, S, D), torch.randn(B, Hkv, S, D)
    k[:, :, n:], v[:, :, n:] = float("nan"), float("nan")
    pad = None
    if padded:
        pad = torch.ones(B, 1, 1, S, dtype=torch.bool)
        pad[1, ..., : n - L] = False
    filled = fm_hf.FilledKeys(torch.full((B,), n, dtype=torch.int32), pad, torch.Size((B, 1, L, S)))
    out, weights = fm_hf.attention_forward(_Layer(), q, k, v, filled, scaling=0.3)
    assert weights is None and out.shape == (B, L, Hq, D) and out.is_contiguous()
    vis = materialised(filled)
    exp = torch.nn.functional.scaled_dot_product_attention(q, k[:, :, :n], v[:, :, :n],
                                                           attn_mask=vis[..., :n], scale=0.3, enable_gqa=True)
    torch.testing.assert_close(out, exp.transpose(1, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("L,S", [(1, 9), (5, 5), (4, 11)])
def test_attention_forward_matches_torch(L, S):
    B, Hq, Hkv, D = 2, 4, 2, 16
    fused = torch.randn(B, L, 3 * Hq * D)
    q = fused[..., : Hq * D].view(B, L, Hq, D).transpose(1, 2)  # (B, Hq, L, D), strided view
    k, v = torch.randn(B, Hkv, S, D), torch.randn(B, Hkv, S, D)  # (B, Hkv, S, D)
    pad = torch.ones(B, S, dtype=torch.bool)
    pad[1, :2] = False
    for mask in (None, pad[:, None, None, :]):
        out, weights = fm_hf.attention_forward(_Layer(), q, k, v, mask, scaling=0.3)
        assert weights is None and out.shape == (B, L, Hq, D) and out.is_contiguous()
        vis = torch.ones(L, S, dtype=torch.bool).tril(S - L)  # bottom-right causal
        vis = vis if mask is None else vis & mask
        exp = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=vis, scale=0.3, enable_gqa=True)
        torch.testing.assert_close(out, exp.transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_attention_forward_refuses_what_it_cannot_do():
    q = k = v = torch.randn(1, 2, 3, 8)
    with pytest.raises(ValueError, match="dropout"):
        fm_hf.attention_forward(_Layer(), q, k, v, None, dropout=0.1)
    for kw, pat in ((dict(sliding_window=0), "sliding_window"), (dict(sliding_window=2.5), "sliding_window"),
                    (dict(s_aux=torch.zeros(3)), r"s_aux.*\(2,\)"), (dict(softcap="x"), "softcap")):
        with pytest.raises((ValueError, TypeError), match=pat):
            fm_hf.attention_forward(_Layer(), q, k, v, None, **kw)


@pytest.mark.parametrize("kw", [dict(softcap=2.0), dict(sliding_window=3), dict(s_aux="sinks"),
                                dict(softcap=1.5, sliding_window=2, s_aux="sinks"), dict(softcap=None, sliding_window=None)])
@pytest.mark.parametrize("mask_kind", [None, "padding"])
def test_attention_forward_options_match_their_definition(kw, mask_kind):
    # softcap, sliding_window (transformers' sliding_window_overlay: query i sees key j iff i - w < j <= i)
    # and s_aux (gpt-oss's sinks: one more logit per head in the denominator), against float64 math
    torch.manual_seed(0)
    B, H, L, S, D = 2, 4, 5, 9, 8
    q, k, v = torch.randn(B, H, L, D), torch.randn(B, 2, S, D), torch.randn(B, 2, S, D)
    sinks = torch.randn(H)
    kw = {n: (sinks if x == "sinks" else x) for n, x in kw.items()}
    pad = torch.ones(B, S, dtype=torch.bool)
    pad[0, :2] = False
    mask = pad[:, None, None, :] if mask_kind else None
    out, _ = fm_hf.attention_forward(_Layer(), q, k, v, mask, scaling=0.4, **kw)
    s = (q.double() @ k.double().repeat_interleave(2, 1).transpose(-1, -2)) * 0.4     # (B, H, L, S)
    if kw.get("softcap"):
        s = kw["softcap"] * torch.tanh(s / kw["softcap"])
    i, j = torch.arange(L).view(L, 1) + S - L, torch.arange(S).view(1, S)             # positions
    vis = j <= i
    if kw.get("sliding_window"):
        vis = vis & (j > i - kw["sliding_window"])
    if mask is not None:
        vis = vis & mask
    s = s.masked_fill(~vis, float("-inf"))
    vv = v.double().repeat_interleave(2, 1)
    if kw.get("s_aux") is not None:
        s = torch.cat([s, sinks.double().view(1, H, 1, 1).expand(B, H, L, 1)], -1)
        vv = torch.cat([vv, vv.new_zeros(B, H, 1, D)], -2)
    exp = torch.softmax(s, -1) @ vv
    torch.testing.assert_close(out.double(), exp.transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_attention_forward_options_reach_the_cuda_kernels(monkeypatch):
    """softcap, s_aux and sliding_window become the op's options on a call a CUDA kernel serves
    (here: resolve() answering "prefill" for CPU tensors; the op is recorded, then run by the CPU path)."""
    q = k = v = torch.randn(1, 2, 3, 8)
    seen = record_op_as_if_cuda(monkeypatch)
    sinks = torch.randn(2)
    fm_hf.attention_forward(_Layer(), q, k, v, None, softcap=2.0)
    assert seen[-1][8] == "prefill" and seen[-1][11] == 2.0
    fm_hf.attention_forward(_Layer(), q, k, v, None, s_aux=sinks)
    assert torch.equal(seen[-1][13], sinks)
    fm_hf.attention_forward(_Layer(), q, k, v, None, sliding_window=2)
    assert seen[-1][9] >= 0, seen[-1][9:11]


# ---------------------------------------------------------------------------------------------
# parity with sdpa on the CPU (fp32)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("padded", [False, True], ids=["dense", "left_padded"])
def test_gpt2_logits_match_sdpa(padded):
    model = tiny_gpt2()
    ids, mask = batch(padded=padded)
    exp = logits(model, ids, mask)
    fm_hf.patch_gpt2(model)
    got = logits(model, ids, mask)
    keep = mask.bool()  # padded positions carry no meaning
    assert rel_err(got, exp, keep) <= RTOL_FP32
    assert torch.isfinite(got).all()


@pytest.mark.parametrize("padded", [False, True], ids=["dense", "left_padded"])
@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_gpt2_greedy_generation_matches_sdpa(padded, cache):
    model = tiny_gpt2()
    ids, mask = batch(padded=padded)
    kw = {} if cache == "dynamic" else dict(cache_implementation="static")
    exp = greedy(model, ids, mask, **kw)
    with fm_hf.patched(model):
        got = greedy(model, ids, mask, **kw)
    assert torch.equal(got, exp)


@pytest.mark.parametrize("padded", [False, True], ids=["dense", "left_padded"])
def test_static_cache_steps_hand_the_kernels_the_filled_keys(monkeypatch, padded):
    """With a StaticCache every call's keys are the whole cache (S_max slots), the empty ones after
    the last query. Each call of a static-cache generation, the prompt's and every step's, must
    reach the op with seqlens_k = the keys written so far (so no kernel reads an empty slot, and no
    (B, 1, L, S) mask is made), causal at the bottom right of the filled keys, and the 2-D mask's
    padding as a key padding mask (one row a batch row)."""
    model = tiny_gpt2()
    ids, mask = batch(padded=padded)
    seen = record_op_as_if_cuda(monkeypatch)
    with fm_hf.patched(model):
        greedy(model, ids, mask, cache_implementation="static")
    layers = model.config.n_layer
    assert seen and len(seen) % layers == 0
    for n, args in enumerate(seen):
        q, k, m, lens, causal, offset = args[0], args[1], args[3], args[4], args[6], args[7]
        step = n // layers                                     # 0: the prompt; then one new token each
        filled = ids.shape[1] + step                           # keys in the cache after this step's write
        L, S = q.shape[2], k.shape[2]
        assert L == (ids.shape[1] if step == 0 else 1) and S >= filled
        assert lens is not None and lens.dtype == torch.int32 and lens.tolist() == [filled] * ids.shape[0], step
        assert offset == S - L and (causal is True or L == 1)   # one query: the flag hides nothing, dropped
        if m is None:   # transformers may drop a 2-D mask of ones before the mask function sees it
            assert not padded, f"step {step}: the padding was lost"
            continue
        assert m.dtype == torch.bool and (m.stride(-2) == 0 or L == 1), (m.shape, m.stride())   # one row
        expected = torch.ones(ids.shape[0], filled, dtype=torch.bool)
        expected[:, : ids.shape[1]] = mask.bool()
        assert torch.equal(m[:, 0, 0, :filled], expected), f"step {step}: the padding is not the 2-D mask's"


@pytest.mark.parametrize("padded", [False, True], ids=["dense", "left_padded"])
def test_static_cache_generation_compiled_in_one_graph(padded):
    """generate() with a StaticCache and a compiled forward (as on CUDA, here with the aot_eager
    backend): the FilledKeys that the mask function makes before each step go into the compiled
    forward as an input, so every decode step replays one graph, with no break, and the tokens
    equal sdpa's."""
    model = tiny_gpt2()
    ids, mask = batch(padded=padded)
    exp = greedy(model, ids, mask, cache_implementation="static", disable_compile=True)
    config = transformers.CompileConfig(backend="aot_eager", fullgraph=True, dynamic=False)
    config._compile_all_devices = True   # transformers compiles only on accelerators unless told
    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    with fm_hf.patched(model):
        got = greedy(model, ids, mask, cache_implementation="static", compile_config=config)
    assert torch.equal(got, exp)
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"], (
        dict(counters["stats"]), dict(counters["graph_break"]))


@pytest.mark.parametrize("head", ["GPT2Model", "GPT2ForSequenceClassification", "GPT2DoubleHeadsModel"])
def test_other_gpt2_heads_match_sdpa(head):
    model = getattr(transformers, head)(tiny_gpt2().config).eval()
    ids, mask = batch(padded=True)
    if head == "GPT2DoubleHeadsModel":  # (B, choices, L)
        ids, mask = ids[None].repeat(2, 1, 1), mask[None].repeat(2, 1, 1)
    with torch.no_grad():
        exp = model(ids, attention_mask=mask)[0]
        got = fm_hf.patch_gpt2(model)(ids, attention_mask=mask)[0]
    if exp.shape[:-1] == mask.shape:  # per-position outputs: compare real tokens only
        exp, got = exp[mask.bool()], got[mask.bool()]
    assert rel_err(got, exp) <= RTOL_FP32


def test_llama_gqa_matches_sdpa():
    model = tiny_llama()
    ids, mask = batch(padded=True)
    exp, exp_gen = logits(model, ids, mask), greedy(model, ids, mask)
    fm_hf.patch_model(model)
    assert rel_err(logits(model, ids, mask), exp, mask.bool()) <= RTOL_FP32
    assert torch.equal(greedy(model, ids, mask), exp_gen)


def test_gpt2_cross_attention_matches_sdpa():
    model = tiny_gpt2(add_cross_attention=True)
    ids, mask = batch(padded=True)
    enc = torch.randn(ids.shape[0], 7, 64)  # (B, S_enc, C)
    enc_mask = torch.ones(ids.shape[0], 7, dtype=torch.long)
    enc_mask[0, 5:] = 0
    with torch.no_grad():
        exp = model(ids, attention_mask=mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask).logits
        fm_hf.patch_gpt2(model)
        got = model(ids, attention_mask=mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask).logits
    assert rel_err(got, exp, mask.bool()) <= RTOL_FP32


def test_torch_compile_patched_model_fullgraph():
    model = fm_hf.patch_gpt2(tiny_gpt2())
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    for padded in (False, True):
        ids, mask = batch(padded=padded)
        with torch.no_grad():
            exp = model(ids, attention_mask=mask, use_cache=False).logits
            got = compiled(ids, attention_mask=mask, use_cache=False).logits
        assert rel_err(got, exp, mask.bool()) <= RTOL_FP32


# ---------------------------------------------------------------------------------------------
# patch / unpatch
# ---------------------------------------------------------------------------------------------
def impls(model):
    return {type(m.config).__name__ + str(id(m.config)): m.config._attn_implementation
            for m in model.modules() if hasattr(m, "config")}


@pytest.mark.parametrize("before", ["sdpa", "eager"])
def test_patch_unpatch_round_trip(before):
    model = tiny_gpt2()
    model.set_attn_implementation(before)
    assert not fm_hf.is_patched(model)
    assert fm_hf.patch_gpt2(model) is model
    assert set(impls(model).values()) == {fm_hf.ATTN_IMPLEMENTATION}
    assert fm_hf.is_patched(model)
    fm_hf.patch_gpt2(model)  # idempotent: still restores `before`
    assert fm_hf.unpatch(model) is model
    assert set(impls(model).values()) == {before} and not fm_hf.is_patched(model)
    fm_hf.unpatch(model)  # no-op when not patched
    assert model.config._attn_implementation == before


def test_patched_context_manager():
    model = tiny_gpt2()
    with fm_hf.patched(model) as m:
        assert m is model and model.config._attn_implementation == fm_hf.ATTN_IMPLEMENTATION
    assert model.config._attn_implementation == "sdpa"
    fm_hf.patch_model(model)
    with fm_hf.patched(model):
        pass
    assert fm_hf.is_patched(model)  # it was patched before the block: stays patched
    with pytest.raises(RuntimeError):
        with fm_hf.patched(tiny_gpt2()) as m:
            raise RuntimeError("boom")
    assert not fm_hf.is_patched(m) and m.config._attn_implementation == "sdpa"


def test_unsupported_models_raise_and_change_nothing():
    from transformers import BloomConfig, BloomForCausalLM

    cases = [
        (BloomForCausalLM(BloomConfig(hidden_size=32, n_head=2, n_layer=1, vocab_size=64)), "ALL_ATTENTION_FUNCTIONS"),
    ]
    for model, why in cases:
        before = impls(model)
        with pytest.raises(ValueError, match=why) as info:
            fm_hf.patch_model(model)
        assert type(model).__name__ in str(info.value)
        assert impls(model) == before and not fm_hf.is_patched(model)
    with pytest.raises(TypeError, match="Linear"):
        fm_hf.patch_model(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="LlamaForCausalLM.*'llama'"):
        fm_hf.patch_gpt2(tiny_llama())


def test_a_window_no_layer_uses_is_served():
    # Gemma 2's config always carries sliding_window; with every layer full attention and no logit
    # softcapping no layer reads it: patched, logits and greedy tokens equal its own (eager) attention.
    from transformers import Gemma2Config, Gemma2ForCausalLM
    small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, vocab_size=128, attn_logit_softcapping=None)
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(Gemma2Config(**small, layer_types=["full_attention"] * 2)).eval()
    assert model.config.sliding_window is not None
    ids = torch.randint(0, 128, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[0, :3] = 0                                                    # left padding
    model.set_attn_implementation("eager")
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).logits
    ref_gen = model.generate(ids, attention_mask=mask, max_new_tokens=5, do_sample=False)
    fm_hf.patch_model(model)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).logits
    rel = ((out - ref)[:, :][mask.bool()].abs().max() / ref.abs().max()).item()
    assert rel <= 1e-5, rel
    assert torch.equal(model.generate(ids, attention_mask=mask, max_new_tokens=5, do_sample=False), ref_gen)




def test_dropout_in_training_mode_is_an_error():
    model = fm_hf.patch_gpt2(tiny_gpt2()).train()
    ids, mask = batch()
    with pytest.raises(ValueError, match="model.eval"):
        model(ids, attention_mask=mask)


# ---------------------------------------------------------------------------------------------
# the example
# ---------------------------------------------------------------------------------------------
def test_example_gpt2_infer_runs_on_cpu(tmp_path):
    out = tmp_path / "result.json"
    cmd = [sys.executable, os.path.join(REPO, "examples", "gpt2_infer.py"), "--device", "cpu",
           "--layers", "2", "--heads", "2", "--width", "32", "--vocab", "128", "--batch", "2", "--seq", "24",
           "--prompt-len", "8", "--new-tokens", "4", "--iters", "1", "--json", str(out)]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CPU" in proc.stderr and "flashmin" in proc.stdout
    rows = {row["impl"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"eager", "sdpa", "flashmin", "eager +pad", "sdpa +pad", "flashmin +pad"}
    for impl in ("flashmin", "flashmin +pad"):
        assert rows[impl]["rel_err"] <= RTOL_FP32
        assert rows[impl]["top1_vs_sdpa"] == 100.0 and rows[impl]["gen_agree_vs_sdpa"] == 4
    assert rows["flashmin"]["prefill_ms"] > 0 and rows["flashmin"]["gen_tok_s"] > 0
    rounds = json.loads(out.read_text())["rounds"]   # every round's raw times, one per --iters round
    assert set(rounds) == {"eager", "sdpa", "flashmin"}
    assert all(len(t["gen_s"]) == 1 and t["gen_s"][0] > 0 for t in rounds.values())


# ---------------------------------------------------------------------------------------------
# CUDA: fp16 / bf16 against an fp32 eager reference
# ---------------------------------------------------------------------------------------------
# Slack on top of 1.5x sdpa's relative logits error (a fraction of the dtype's eps).
REL_SLACK = {torch.float16: 2.5e-4, torch.bfloat16: 2e-3}


def confident_gpt2(dtype):
    """A tiny GPT-2 whose argmax is not a coin toss: random weights leave top-1 and top-2 logits
    within rounding of each other, so the embeddings (tied to the LM head) are scaled up."""
    model = tiny_gpt2(n_embd=128, vocab_size=256, n_positions=512)
    with torch.no_grad():
        model.transformer.wte.weight.mul_(4.0)
    ref = model.to("cuda")
    ref.set_attn_implementation("eager")
    test = tiny_gpt2(n_embd=128, vocab_size=256, n_positions=512)
    test.load_state_dict(ref.state_dict())
    return ref, test.to("cuda", dtype)


@needs_cuda
@pytest.mark.parametrize("padded", [False, True], ids=["dense", "left_padded"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_cuda_logits_parity(dtype, padded):
    ref_model, model = confident_gpt2(dtype)
    ids, mask = batch(B=4, L=256, vocab=256, padded=padded, device="cuda")
    keep = mask.bool()
    ref = logits(ref_model, ids, mask).float()  # (B, L, V) fp32 eager
    sdpa = logits(model, ids, mask)
    fm_hf.patch_gpt2(model)
    got = logits(model, ids, mask)
    assert torch.isfinite(got[keep]).all()
    err, err_sdpa = rel_err(got, ref, keep), rel_err(sdpa, ref, keep)
    assert err <= 1.5 * err_sdpa + REL_SLACK[dtype], f"flashmin {err:.3e} vs sdpa {err_sdpa:.3e}"
    agree = (got.argmax(-1) == sdpa.argmax(-1))[keep].float().mean().item()
    assert agree >= 0.999, f"top-1 agreement with sdpa {100 * agree:.2f}%"


@needs_cuda
@pytest.mark.parametrize("padded", [False, True], ids=["dense", "left_padded"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_cuda_decode_via_generate(dtype, padded):
    """Each decode step's logits (q_len 1 over the DynamicCache) against a teacher-forced fp32 pass
    over the generated sequence, compared with sdpa's; tokens may part from sdpa's only at a tie."""
    ref_model, model = confident_gpt2(dtype)
    ids, mask = batch(B=4, L=64, vocab=256, padded=padded, device="cuda")
    n = 32

    def run():
        with torch.no_grad():
            out = model.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 pad_token_id=0, return_dict_in_generate=True, output_logits=True)
        seq = out.sequences  # (B, L + n)
        full_mask = torch.cat([mask, torch.ones_like(seq[:, ids.shape[1]:])], dim=1)  # (B, L + n)
        pos = (full_mask.cumsum(-1) - 1).masked_fill(full_mask == 0, 0)  # as generate numbers them
        ref = logits(ref_model, seq, full_mask, pos).float()[:, ids.shape[1] - 1: -1]  # (B, n, V)
        step = torch.stack(out.logits, dim=1).float()  # (B, n, V)
        return seq[:, ids.shape[1]:], rel_err(step, ref), step

    tok_sdpa, err_sdpa, step_sdpa = run()
    fm_hf.patch_gpt2(model)
    tok, err, _ = run()
    assert err <= 1.5 * err_sdpa + REL_SLACK[dtype], f"decode logits: flashmin {err:.3e} vs sdpa {err_sdpa:.3e}"
    for b in range(ids.shape[0]):
        diff = (tok[b] != tok_sdpa[b]).nonzero()
        if len(diff):  # the first divergence must be a near tie in sdpa's own logits
            t = diff[0].item()
            s = step_sdpa[b, t]
            gap = (s[tok_sdpa[b, t]] - s[tok[b, t]]).item()
            assert gap <= 20 * err_sdpa * s.abs().max().item(), f"batch {b} diverged at step {t} (gap {gap:.3e})"


# ---------------------------------------------------------------------------------------------
# models whose attention does not go through AttentionInterface: refused through every entry point
# ---------------------------------------------------------------------------------------------
def _outside_the_interface(arch):
    import inspect
    import importlib

    # transformers 5.25 moved Falcon onto the attention interface: from there it is a routed model.
    modeling = importlib.import_module(f"transformers.models.{arch}.modeling_{arch}")
    if "ALL_ATTENTION_FUNCTIONS" in inspect.getsource(modeling):
        pytest.skip(f"{arch} routes its attention through ALL_ATTENTION_FUNCTIONS in transformers {transformers.__version__}")
    from transformers import BloomConfig, BloomForCausalLM, FalconConfig, FalconForCausalLM, MptConfig, MptForCausalLM

    return {
        "bloom": (BloomForCausalLM, lambda **kw: BloomConfig(hidden_size=32, n_head=2, n_layer=1, vocab_size=64, **kw)),
        "mpt": (MptForCausalLM, lambda **kw: MptConfig(d_model=32, n_heads=2, n_layers=1, vocab_size=64,
                                                        max_seq_len=64, **kw)),
        "falcon": (FalconForCausalLM, lambda **kw: FalconConfig(hidden_size=32, num_attention_heads=2,
                                                                num_hidden_layers=1, vocab_size=64, **kw)),
    }[arch]


NOT_ROUTED = "does not route its attention through ALL_ATTENTION_FUNCTIONS, so flashmin cannot replace it"


@pytest.mark.parametrize("entry", ["_from_config", "auto_from_config", "config_kwarg", "config_attr",
                                   "from_pretrained", "patch_model"])
@pytest.mark.parametrize("arch", ["bloom", "mpt", "falcon"])
def test_models_outside_the_interface_are_refused_through_every_entry_point(arch, entry, tmp_path):
    cls, make_config = _outside_the_interface(arch)
    name = fm_hf.ATTN_IMPLEMENTATION
    with pytest.raises(ValueError) as info:
        if entry == "_from_config":
            cls._from_config(make_config(), attn_implementation=name)
        elif entry == "auto_from_config":
            transformers.AutoModelForCausalLM.from_config(make_config(), attn_implementation=name)
        elif entry == "config_kwarg":
            cls(make_config(attn_implementation=name))
        elif entry == "config_attr":
            config = make_config()
            config._attn_implementation = name
            cls(config)
        elif entry == "from_pretrained":
            cls(make_config()).save_pretrained(tmp_path)     # a local checkpoint: nothing downloaded
            cls.from_pretrained(tmp_path, attn_implementation=name)
        else:
            fm_hf.patch_model(cls(make_config()))
    assert str(info.value) == f"{cls.__name__} {NOT_ROUTED}"   # the same message everywhere


@pytest.mark.parametrize("arch", ["bloom", "mpt", "falcon"])
def test_models_outside_the_interface_stay_right_or_refuse_later(arch):
    cls, make_config = _outside_the_interface(arch)
    torch.manual_seed(0)
    model = cls(make_config()).eval()
    ids, mask = batch(B=2, L=9, vocab=64, padded=True)
    exp = logits(model, ids, mask)
    before = model.config._attn_implementation
    # set_attn_implementation: transformers leaves such a model as it was; it must still be right
    model.set_attn_implementation(fm_hf.ATTN_IMPLEMENTATION)
    if model.config._attn_implementation == before:
        torch.testing.assert_close(logits(model, ids, mask), exp, rtol=0, atol=0)
    # the name written into the config behind transformers' back: the forward refuses
    model.config._attn_implementation = fm_hf.ATTN_IMPLEMENTATION
    with pytest.raises(ValueError, match=NOT_ROUTED):
        logits(model, ids, mask)


# ---------------------------------------------------------------------------------------------
# additive position biases (T5): added to the mask, as transformers' sdpa does
# ---------------------------------------------------------------------------------------------
def tiny_t5(seed=0):
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4, d_kv=8, vocab_size=97,
                   relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(cfg).eval()
    model.generation_config.eos_token_id = None
    return model


@pytest.mark.parametrize("padded", [False, True], ids=["dense", "left_padded"])
def test_t5_matches_sdpa(padded):
    model = tiny_t5()
    ids, mask = batch(B=3, L=11, padded=padded)
    dec = torch.randint(1, 97, (3, 6))
    with torch.no_grad():
        exp = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits   # (B, 6, V)
        exp_gen = model.generate(ids, attention_mask=mask, max_new_tokens=8, min_new_tokens=8, do_sample=False)
        fm_hf.patch_model(model)
        got = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        gen = model.generate(ids, attention_mask=mask, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert torch.isfinite(got).all()
    assert rel_err(got, exp) <= RTOL_FP32
    assert torch.equal(gen, exp_gen)


def test_t5_loads_with_the_registered_name():
    model = tiny_t5()
    m2 = type(model)._from_config(model.config, attn_implementation=fm_hf.ATTN_IMPLEMENTATION).eval()
    m2.load_state_dict(model.state_dict())
    ids, mask = batch(B=2, L=8, padded=True)
    dec = torch.randint(1, 97, (2, 5))
    with torch.no_grad():
        exp = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        got = m2(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    assert rel_err(got, exp) <= RTOL_FP32


@pytest.mark.parametrize("mask_kind", ["none", "bool_padding", "bool_full", "float_full"])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_forward_adds_position_bias_like_sdpa(mask_kind, causal):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    B, H, L, S, D = 2, 4, 5, 5, 8
    q, k, v = torch.randn(B, H, L, D), torch.randn(B, H, S, D), torch.randn(B, H, S, D)
    bias = torch.randn(1, H, L, S)
    pad = torch.ones(B, S, dtype=torch.bool)
    pad[1, -2:] = False             # no row loses all its keys (sdpa's finfo.min mask and flashmin differ there)
    full = pad[:, None, None, :] & torch.ones(L, S, dtype=torch.bool).tril()     # (B, 1, L, S)
    mask = {"none": None, "bool_padding": pad[:, None, None, :], "bool_full": full,
            "float_full": torch.zeros(B, 1, L, S).masked_fill(~full, torch.finfo(torch.float32).min)}[mask_kind]
    layer = _Layer()
    layer.is_causal = causal
    out, _ = fm_hf.attention_forward(layer, q, k, v, mask, scaling=1.0, position_bias=bias)
    if mask_kind == "bool_padding" and causal:   # sdpa gets the full causal mask from its own mask function here
        mask = full
    exp, _ = sdpa_attention_forward(layer, q, k, v, mask, scaling=1.0, position_bias=bias)
    torch.testing.assert_close(out, exp, rtol=1e-5, atol=1e-5)


def test_error_messages_never_print_tensor_values():
    q = k = v = torch.randn(1, 2, 3, 8)
    cases = [
        (dict(s_aux=torch.zeros(3)), [r"s_aux", r"\(2,\)", r"\(3,\)"]),
        (dict(position_bias=torch.randn(1, 3, 3, 3)), [r"position_bias", r"\(1, 3, 3, 3\)"]),
        (dict(position_bias=torch.ones(1, 2, 3, 3, dtype=torch.long)), [r"position_bias", r"int64"]),
    ]
    for kw, patterns in cases:
        with pytest.raises((ValueError, TypeError)) as info:
            fm_hf.attention_forward(_Layer(), q, k, v, None, **kw)
        msg = str(info.value)
        assert "tensor(" not in msg and "[[" not in msg, msg
        for p in patterns:
            assert re.search(p, msg), f"{msg!r} does not match {p!r}"


# ---------------------------------------------------------------------------------------------
# output_attentions: flashmin forms no weights; it says so (once), as transformers' sdpa does
# ---------------------------------------------------------------------------------------------
def test_output_attentions_warns_once_at_the_callers_line(monkeypatch):
    monkeypatch.setattr(fm_hf, "_warned_output_attentions", False)
    model = fm_hf.patch_gpt2(tiny_gpt2())
    ids, _ = batch(B=1, L=6)
    with pytest.warns(UserWarning, match="output_attentions") as record:
        with torch.no_grad():
            model(ids, output_attentions=True)
    assert [w.filename for w in record if "output_attentions" in str(w.message)] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.no_grad():
            model(ids, output_attentions=True)     # once only
    # a model that passes output_attentions to the attention function itself
    monkeypatch.setattr(fm_hf, "_warned_output_attentions", False)
    q = torch.randn(1, 2, 3, 8)
    with pytest.warns(UserWarning, match="output_attentions"):
        fm_hf.attention_forward(_Layer(), q, q, q, None, output_attentions=True)


# ---------------------------------------------------------------------------------------------
# registration: `import flashmin_nn` is enough, in either order, and never imports transformers itself
# ---------------------------------------------------------------------------------------------
_REGISTRATION_SCRIPT = r"""
import sys
{first}
{second}
assert "flashmin_nn" in sys.modules
import torch
from transformers import GPT2Config, GPT2LMHeadModel
cfg = GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=32, bos_token_id=0, eos_token_id=0)
torch.manual_seed(0)
ref = GPT2LMHeadModel(cfg).eval()
ref.save_pretrained(sys.argv[1])
model = GPT2LMHeadModel.from_pretrained(sys.argv[1], attn_implementation="fmin_attention").eval()
assert model.config._attn_implementation == "fmin_attention", model.config._attn_implementation
import flashmin_nn.integrations.transformers as fm_hf
import transformers
assert transformers.AttentionInterface()["fmin_attention"] is fm_hf.attention_forward
ids = torch.randint(0, 50, (2, 7))
with torch.no_grad():
    err = (model(ids).logits - ref(ids).logits).abs().max().item()
assert err < 1e-5, err
print("ok")
"""


@pytest.mark.parametrize("order", ["flashmin_first", "transformers_first", "transformers_lazy_first"])
def test_registered_after_import_flashmin_nn_in_either_order(order, tmp_path):
    first, second = {
        "flashmin_first": ("import flashmin_nn", "import transformers"),
        "transformers_first": ("import transformers, transformers.modeling_utils", "import flashmin_nn"),
        "transformers_lazy_first": ("import transformers", "import flashmin_nn"),
    }[order]
    code = _REGISTRATION_SCRIPT.format(first=first, second=second)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_import_flashmin_nn_does_not_import_transformers():
    code = "import sys, flashmin_nn; print(sorted(m for m in sys.modules if m.split('.')[0] == 'transformers'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]", proc.stdout


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_cuda_packed_sequences_through_the_varlen_keywords(dtype, monkeypatch):
    """GPT-2 over three packed sequences with the varlen keywords: the packed kernels run (one
    flash_attn_varlen_func call per layer) and the logits match fp32 eager on each sequence alone
    as closely as sdpa on each sequence alone does."""
    ref_model, model = confident_gpt2(dtype)
    lens = [37, 150, 69]
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, 256, (1, sum(lens)), generator=g).cuda()
    cu = torch.tensor([0, 37, 187, 256], dtype=torch.int32, device="cuda")
    pieces = [ids[:, int(a):int(b)] for a, b in zip(cu[:-1], cu[1:])]
    with torch.no_grad():
        ref = torch.cat([ref_model(input_ids=p).logits.float() for p in pieces], dim=1)
        sdpa = torch.cat([model(input_ids=p).logits for p in pieces], dim=1)
    fm_hf.patch_gpt2(model)
    calls = []
    real = flashmin_nn.flash_attn_varlen_func
    monkeypatch.setattr(flashmin_nn, "flash_attn_varlen_func", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    pos = torch.cat([torch.arange(n, device="cuda") for n in lens]).unsqueeze(0)
    with torch.no_grad():
        got = model(input_ids=ids, position_ids=pos, cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=150,
                    max_length_k=150).logits
    assert len(calls) == model.config.n_layer
    err, err_sdpa = rel_err(got, ref), rel_err(sdpa, ref)
    assert err <= 1.5 * err_sdpa + REL_SLACK[dtype], f"flashmin {err:.3e} vs sdpa {err_sdpa:.3e}"
