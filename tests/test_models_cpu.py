"""Every model family flashmin serves through transformers, on the CPU: tiny random models
(built offline from configs), patched with `patch_model`, against the model's own eager attention.

- logits on a left-padded batch (rows 0 padded by 3 tokens) within 1e-5 of eager, relative to
  the largest logit, at every real position;
- greedy generations identical to eager's, with the default cache and (decoder-only models) with
  a static cache;
- families with sliding-window layers (Mistral, Mixtral, Qwen2/Qwen3 with sliding layers, Gemma 2/3,
  Phi-3, gpt-oss), logit softcapping (Gemma 2), attention sinks (gpt-oss, set to random values:
  they start at zero), relative position bias (T5), cross-attention (T5, BART, Whisper) and
  bidirectional local attention (ModernBERT).
"""
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from flashmin_nn.integrations import transformers as fm_hf  # noqa: E402

_SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=128)
_IDS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _decoders():
    t = transformers
    moe = dict(num_local_experts=4, num_experts_per_tok=2)
    return {
        "gpt2": lambda: t.GPT2LMHeadModel(t.GPT2Config(n_layer=2, n_head=4, n_embd=64, vocab_size=128, **_IDS)),
        "llama": lambda: t.LlamaForCausalLM(t.LlamaConfig(**_SMALL, **_IDS)),
        "qwen2": lambda: t.Qwen2ForCausalLM(t.Qwen2Config(**_SMALL, **_IDS)),
        "qwen2-sliding": lambda: t.Qwen2ForCausalLM(t.Qwen2Config(**_SMALL, **_IDS, use_sliding_window=True,
                                                                  sliding_window=5, max_window_layers=1)),
        "qwen3": lambda: t.Qwen3ForCausalLM(t.Qwen3Config(**_SMALL, **_IDS, head_dim=16)),
        "qwen3-sliding": lambda: t.Qwen3ForCausalLM(t.Qwen3Config(**_SMALL, **_IDS, head_dim=16, use_sliding_window=True,
                                                                  sliding_window=5, max_window_layers=1)),
        "mistral": lambda: t.MistralForCausalLM(t.MistralConfig(**_SMALL, **_IDS, sliding_window=5)),
        "mixtral": lambda: t.MixtralForCausalLM(t.MixtralConfig(**_SMALL, **_IDS, **moe, sliding_window=5)),
        "gemma": lambda: t.GemmaForCausalLM(t.GemmaConfig(**_SMALL, **_IDS, head_dim=16)),
        "gemma2": lambda: t.Gemma2ForCausalLM(t.Gemma2Config(**_SMALL, **_IDS, head_dim=16, sliding_window=5,
                                                             attn_logit_softcapping=5.0)),
        "gemma3": lambda: t.Gemma3ForCausalLM(t.Gemma3TextConfig(**_SMALL, **_IDS, head_dim=16, sliding_window=5)),
        "phi3": lambda: t.Phi3ForCausalLM(t.Phi3Config(**_SMALL, **_IDS, sliding_window=5)),
        "gpt-oss": lambda: t.GptOssForCausalLM(t.GptOssConfig(**_SMALL, **_IDS, **moe, head_dim=16, sliding_window=5)),
        "opt": lambda: t.OPTForCausalLM(t.OPTConfig(hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                                                    vocab_size=128, word_embed_proj_dim=64, **_IDS)),
        "gpt-neox": lambda: t.GPTNeoXForCausalLM(t.GPTNeoXConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                                                 num_attention_heads=4, vocab_size=128, **_IDS)),
    }


def _others():
    t = transformers
    seq2seq = dict(d_model=64, encoder_ffn_dim=128, decoder_ffn_dim=128, encoder_layers=2, decoder_layers=2,
                   encoder_attention_heads=4, decoder_attention_heads=4, vocab_size=128, decoder_start_token_id=1, **_IDS)
    return {
        "t5": lambda: t.T5ForConditionalGeneration(t.T5Config(d_model=64, d_ff=128, num_layers=2, num_heads=4, d_kv=16,
                                                              vocab_size=128, decoder_start_token_id=0, **_IDS)),
        "bart": lambda: t.BartForConditionalGeneration(t.BartConfig(**seq2seq, max_position_embeddings=64)),
        "whisper": lambda: t.WhisperForConditionalGeneration(t.WhisperConfig(**seq2seq, num_mel_bins=16,
                                                                             max_source_positions=32,
                                                                             max_target_positions=32)),
        "bert": lambda: t.BertModel(t.BertConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                                 num_attention_heads=4, vocab_size=128)),
        "modernbert": lambda: t.ModernBertModel(t.ModernBertConfig(hidden_size=64, intermediate_size=128,
                                                                   num_hidden_layers=3, num_attention_heads=4,
                                                                   vocab_size=128, local_attention=4,
                                                                   global_attn_every_n_layers=2, cls_token_id=1,
                                                                   sep_token_id=2, **_IDS)),
    }


def _build(make):
    torch.manual_seed(0)
    model = make().eval()
    for m in model.modules():
        if hasattr(m, "sinks"):
            m.sinks.data.normal_()
    return model


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 128, (2, 12), generator=g)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[0, :3] = 0                                                     # left padding
    return ids.masked_fill(mask == 0, 0), mask


def _rel(out, ref, keep=None):
    d = (out - ref) if keep is None else (out - ref)[keep]
    return (d.abs().max() / ref.abs().max()).item()


@pytest.mark.parametrize("family", list(_decoders()))
def test_decoder_logits_and_greedy_tokens_equal_eager(family):
    model = _build(_decoders()[family])
    ids, mask = _batch()
    gen = dict(attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).logits
    ref_dynamic = model.generate(ids, **gen)
    ref_static = model.generate(ids, cache_implementation="static", **gen)
    fm_hf.patch_model(model)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).logits
    assert _rel(out, ref, mask.bool()) <= 1e-5
    assert torch.equal(model.generate(ids, **gen), ref_dynamic)
    assert torch.equal(model.generate(ids, cache_implementation="static", **gen), ref_static)


@pytest.mark.parametrize("family", list(_others()))
def test_encoder_and_seq2seq_models_equal_eager(family):
    model = _build(_others()[family])
    ids, mask = _batch()
    if family == "whisper":
        inputs = dict(input_features=torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(2)))
        full = dict(inputs, decoder_input_ids=ids[:, 3:9])
    elif family in ("t5", "bart"):
        inputs = dict(input_ids=ids, attention_mask=mask)
        full = dict(inputs, decoder_input_ids=ids[:, 3:9])
    else:
        inputs = full = dict(input_ids=ids, attention_mask=mask)
    seq2seq = family in ("t5", "bart", "whisper")

    def forward():
        with torch.no_grad():
            o = model(**full)
        return o.logits if seq2seq else o.last_hidden_state

    model.set_attn_implementation("eager")
    ref = forward()
    ref_tokens = model.generate(**inputs, max_new_tokens=5, do_sample=False) if seq2seq else None
    fm_hf.patch_model(model)
    out = forward()
    assert _rel(out, ref, None if seq2seq else mask.bool()) <= 1e-5
    if seq2seq:
        assert torch.equal(model.generate(**inputs, max_new_tokens=5, do_sample=False), ref_tokens)


@pytest.mark.parametrize("family", ["llama", "mistral", "gemma2", "qwen3"])
@pytest.mark.parametrize("max_as_tensor", [False, True])
def test_packed_sequences_through_the_varlen_keywords(family, max_as_tensor, monkeypatch):
    """Three sequences packed into one row with transformers' flash-attention varlen keywords
    (cu_seq_lens_q/k, max_length_q/k, as DataCollatorWithFlattening makes them, with restarting
    position_ids): every layer runs flash_attn_varlen_func once, and the logits equal eager's on
    each sequence run alone."""
    import flashmin_nn

    model = _build(_decoders()[family])
    lens = [5, 9, 3]
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(3, 128, (1, sum(lens)), generator=g)
    pos = torch.cat([torch.arange(n) for n in lens]).unsqueeze(0)
    cu = torch.tensor([0, 5, 14, 17], dtype=torch.int32)
    longest = torch.tensor(9) if max_as_tensor else 9
    model.set_attn_implementation("eager")
    with torch.no_grad():
        ref = torch.cat([model(input_ids=ids[:, int(a):int(b)]).logits for a, b in zip(cu[:-1], cu[1:])], dim=1)
    fm_hf.patch_model(model)
    calls = []
    real = flashmin_nn.flash_attn_varlen_func
    monkeypatch.setattr(flashmin_nn, "flash_attn_varlen_func", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    with torch.no_grad():
        out = model(input_ids=ids, position_ids=pos, cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=longest,
                    max_length_k=longest).logits
    assert len(calls) == model.config.num_hidden_layers
    assert _rel(out, ref) <= 1e-5
