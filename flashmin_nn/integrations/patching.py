"""Switching a transformers model to flashmin attention and back: patch_gpt2, patch_model,
unpatch, is_patched and patched (also importable from flashmin_nn.integrations.transformers, and
all but is_patched from flashmin_nn).

Switching sets each config's attention implementation to ATTN_IMPLEMENTATION, the name that
flashmin_nn.integrations.transformers registers with transformers on import; this module imports
that one, so the name is registered before any model is switched.
"""
from __future__ import annotations

import contextlib

from transformers import PreTrainedConfig, PreTrainedModel

from flashmin_nn.integrations.transformers import ATTN_IMPLEMENTATION, _not_routed

# Where patch_model keeps what it replaced: [(config, previous implementation), ...].
_SAVED_ATTR = "_flashmin_saved_attn_implementation"


def patch_gpt2(model):
    """Switch a GPT-2 model (GPT2Model, GPT2LMHeadModel, GPT2DoubleHeadsModel, the
    classification and QA heads) to flashmin attention, in place; returns the model.

    GPT-2's scale (including `scale_attn_by_inverse_layer_idx`) arrives as `scaling`;
    `reorder_and_upcast_attn` is an eager-only option and moot here, since flashmin keeps its
    softmax statistics in fp32 whatever the input dtype. Raises TypeError for a model that is
    not GPT-2 (use `patch_model`) and whatever `patch_model` raises.
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type != "gpt2":
        raise TypeError(
            f"patch_gpt2 expects a GPT-2 model, got {type(model).__name__} (config.model_type={model_type!r}); "
            "use patch_model for other architectures"
        )
    return patch_model(model)


def patch_model(model):
    """Switch any transformers model whose attention goes through `ALL_ATTENTION_FUNCTIONS`
    (GPT-2, Llama, Qwen2, Mistral, Gemma 2, gpt-oss, ...) to flashmin, in place.

    Sliding-window layers (their mask is materialised, as for sdpa), logit softcapping and
    attention sinks are served on any device.

    Every config of the model and its sub-models is switched, or none is: a model flashmin
    cannot serve raises before anything changes (TypeError: not a transformers model;
    ValueError: naming the class and the config value it cannot honour: chunked attention, other
    layer types, different q/k and v head dims, or attention that does not use the interface).
    Patching a patched model is a no-op. Returns the model.
    """
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"patch_model expects a transformers PreTrainedModel, got {type(model).__name__}")
    if is_patched(model):
        return model
    for sub in model.modules():
        if isinstance(sub, PreTrainedModel) and not type(sub)._can_set_attn_implementation():
            raise ValueError(_not_routed(type(sub)))
    configs = _configs(model)
    for config in configs:
        problem = _unsupported(config)
        if problem is not None:
            raise ValueError(f"{type(model).__name__} cannot use flashmin: {problem}")

    saved = [(config, config._attn_implementation) for config in configs]
    try:
        model.set_attn_implementation(ATTN_IMPLEMENTATION)
        # transformers before 5.2x passes the change on only to sub-models whose config is of
        # another class: T5's encoder and decoder stacks hold deep copies of a T5Config and keep
        # their implementation. Switch such sub-models one by one.
        for sub in model.modules():
            if isinstance(sub, PreTrainedModel) and sub.config._attn_implementation != ATTN_IMPLEMENTATION:
                sub.set_attn_implementation(ATTN_IMPLEMENTATION)
        missed = [type(c).__name__ for c in configs if c._attn_implementation != ATTN_IMPLEMENTATION]
        if missed:
            raise ValueError(f"{type(model).__name__}: could not switch {', '.join(missed)} to flashmin")
    except Exception:
        _restore(saved)  # never leave half of a model switched
        raise
    setattr(model, _SAVED_ATTR, saved)
    return model


def unpatch(model):
    """Undo `patch_model`/`patch_gpt2`: each config that still uses flashmin gets back the
    implementation it had before. A model that is not patched is returned unchanged."""
    saved = model.__dict__.pop(_SAVED_ATTR, None)
    if saved is not None:
        _restore([(c, prev) for c, prev in saved if c._attn_implementation == ATTN_IMPLEMENTATION])
    return model


def is_patched(model):
    """Whether `patch_model` switched this model (and `unpatch` has not undone it)."""
    return _SAVED_ATTR in getattr(model, "__dict__", {})


@contextlib.contextmanager
def patched(model):
    """`with patched(model): ...` runs the block with flashmin attention, then restores the
    previous implementation (a model that was already patched stays patched)."""
    was_patched = is_patched(model)
    patch_model(model)
    try:
        yield model
    finally:
        if not was_patched:
            unpatch(model)


def _configs(model):
    """Every distinct config the model's modules read, with their sub-configs."""
    found = {}

    def add(config):
        if isinstance(config, PreTrainedConfig) and id(config) not in found:
            found[id(config)] = config
            for key in getattr(config, "sub_configs", None) or {}:
                add(getattr(config, key, None))

    for module in model.modules():
        add(getattr(module, "config", None))
    return list(found.values())


def _unsupported(config):
    """A sentence naming the config value flashmin cannot honour, or None."""
    name = type(config).__name__
    layer_types = getattr(config, "layer_types", None) or []
    chunk = getattr(config, "attention_chunk_size", None)
    if chunk is not None:
        return f"chunked attention ({name}.attention_chunk_size={chunk})"
    others = sorted({t for t in layer_types if t not in ("full_attention", "sliding_attention")})
    if others:
        return f"layer types other than full attention ({name}.layer_types has {others})"
    v_dim = getattr(config, "v_head_dim", None)
    qk_dim = getattr(config, "qk_head_dim", None)
    if v_dim is not None and qk_dim is not None and v_dim != qk_dim:
        return f"value head dim != query/key head dim ({name}.v_head_dim={v_dim}, qk_head_dim={qk_dim})"
    return None


def _restore(saved):
    # The internal attribute: the public setter would also rewrite sub-configs, which have
    # their own saved value.
    for config, previous in saved:
        config._attn_implementation_internal = previous


__all__ = ["is_patched", "patch_gpt2", "patch_model", "patched", "unpatch"]
