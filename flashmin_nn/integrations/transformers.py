"""flashmin as a transformers 5.x attention implementation.

    from flashmin_nn.integrations.transformers import patch_gpt2, patch_model, patched, unpatch

    model = patch_gpt2(model)            # GPT-2 heads, switched in place
    model = patch_model(model)           # any model that routes attention through the interface
    with patched(model):                 # switched for the block, restored after
        model.generate(...)
    unpatch(model)                       # back to what it used before (eager, sdpa, ...)

The four switching functions (and is_patched) live in flashmin_nn/integrations/patching.py, which
depends on this module; they are importable from here too, loaded on first use.

Importing this module registers two functions under ATTN_IMPLEMENTATION ("fmin_attention"),
so `from_pretrained(..., attn_implementation=ATTN_IMPLEMENTATION)` works as well. `import
flashmin_nn` does this too, without importing transformers: it registers as soon as transformers'
modeling_utils is loaded (at once if it already is; see flashmin_nn/integrations/__init__.py).

- `attention_forward` in transformers.AttentionInterface: the layer's attention call.
- `flashmin_mask` in transformers.masking_utils.AttentionMaskInterface: how the model's 2-D
  padding mask reaches that call. Without a registered mask function transformers hands a
  custom implementation `attention_mask=None`, and padding would be silently ignored.

transformers accepts any registered name for any model, including models whose attention layers
never call the interface (Bloom, MPT, Falcon): those would run their own attention with
flashmin's mask, or fail obscurely. So registering also makes transformers' check of a requested
implementation (PreTrainedModel.get_correct_attn_implementation, run when a model is built and by
set_attn_implementation) refuse this name for such a model, with the message patch_model gives;
and the mask function refuses such a model's config if the name was written into it afterwards.

Why that name: transformers 5.x takes any implementation name containing "flash" for
FlashAttention (and tries to import flash_attn), a name shaped like "org/repo" or with ":" for a
hub kernel, and runs its SDPA or flex checks on names containing "sdpa" or "flex_attention".
"fmin_attention" trips none of these.

What attention_forward receives as `attention_mask` (S = keys, L = queries):

    prefill, no padding                 None            causal in-kernel
    prefill, left padding               (B, 1, 1, S)    bool key padding + causal in-kernel
    decode (DynamicCache), no padding   None            (L = 1 sees every key)
    decode, left padding                (B, 1, 1, S)    bool key padding
    StaticCache (keys past the last     FilledKeys      the keys written so far (a device
    query are empty slots), causal                      tensor) + key padding or None
    anything else (packed sequences,
    sliding windows, custom mask
    functions, 4-D masks from the
    caller)                             (B, 1, L, S)    the full mask, causality included

The in-kernel causal mask is aligned bottom-right (causal_offset = S - L): the last query sees
every key, which is what a KV cache needs and equals top-left when L == S. It is used as is when
the keys end at the last query (DynamicCache, no cache). A StaticCache hands every call all its
S_max slots, the empty ones after the last query: there the mask function returns a FilledKeys,
the count of keys written so far as a device tensor (no host sync, so one compiled graph serves
every step), and the kernels run with it as seqlens_k, which moves the bottom-right diagonal onto
the last query and never reads an empty slot. Any other layout of keys gets the full mask,
exactly as for `sdpa`. So a mask whose query dim is 1 is read as key padding on top
of the layer's causality; the one place this differs from `sdpa` is a caller's own 4-D mask of
shape (B, 1, 1, S) with L > 1 on a causal layer, which sdpa would apply without causality.

Packed sequences with transformers' flash-attention varlen keywords (cu_seq_lens_q / _k and
max_length_q / _k passed to the model's forward, as DataCollatorWithFlattening makes them): each
attention call runs flash_attn_varlen_func on the packed rows, in place on CUDA, and the mask is
not read, as in transformers' own flash attention path. Packed position_ids alone reach flashmin
as the block-diagonal mask sdpa would get.
"""
from __future__ import annotations

import functools
import os

import torch
import transformers
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import (
    AttentionMaskInterface,
    causal_mask_function,
    prepare_padding_mask,
    sdpa_mask,
)
from transformers.utils.import_utils import is_tracing

import flashmin_nn
from flashmin_nn._checks import PACKAGE_DIR, TORCH_DIR, describe, warn_at_caller

try:  # where transformers collects output_attentions=True results (a private module: optional)
    from transformers.utils.output_capturing import _active_collector as _output_collector
except ImportError:  # pragma: no cover - other transformers versions
    _output_collector = None

if int(transformers.__version__.split(".")[0]) < 5:
    raise ImportError(
        f"flashmin_nn.integrations.transformers needs transformers>=5 (found {transformers.__version__}): "
        "pip install 'flashmin_nn[hf]'"
    )

ATTN_IMPLEMENTATION = "fmin_attention"

# Keyword arguments some architectures pass to their attention function that change the math.
# None is ignored; a value is never ignored: sliding_window (Mistral, Gemma 2/3, gpt-oss, ...) is
# already in the materialised mask flashmin_mask returns for such layers (as for sdpa), or else
# becomes flashmin's window; softcap (Gemma 2) and s_aux / sinks (gpt-oss's attention sinks)
# become flashmin's softcap and sinks, which every kernel runs.
_OPTION_KWARGS = ("softcap", "s_aux", "sinks", "sliding_window")

# Packed sequences: the flash-attention varlen keywords a caller passes to the model's forward
# (DataCollatorWithFlattening(return_flash_attn_kwargs=True) makes them), which transformers hands
# down to every attention call; with all four, the call runs flash_attn_varlen_func, the packed
# rows read in place (the prefill kernels on CUDA), as transformers' own flash attention path does.
_VARLEN_KWARGS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")

# Every keyword that needs a look: those options, an additive position bias (T5 and its family
# pass `position_bias`; it is added to the mask, as transformers' sdpa does), output_attentions
# (flashmin forms no attention weights) and the varlen keywords.
_SPECIAL_NAMES = frozenset(_OPTION_KWARGS) | {"position_bias", "output_attentions"} | frozenset(_VARLEN_KWARGS)

_warned_output_attentions = False
_SKIP_FRAMES = (PACKAGE_DIR, TORCH_DIR, os.path.dirname(os.path.abspath(transformers.__file__)) + os.sep)


class FilledKeys:
    """What `flashmin_mask` returns for causal attention over a cache whose slots past the last
    query are empty (transformers' StaticCache): the keys written so far, and the key padding.

    lengths: int32 (B,) on the device, key j of batch row b is seen only if j < lengths[b] (every
        row the same: the first query's position + L, less the cache's first key position), and
        query i sees keys up to i + lengths[b] - L (the causal diagonal, bottom-right on the filled
        keys). Computed on the device from the cache's position tensor, so under torch.compile one
        graph serves every step.
    padding: None (no padding) or a bool (B, 1, 1, S) key padding mask, True = a real token.

    `attention_forward` runs it as `attention(..., attn_mask=padding, is_causal=True,
    seqlens_k=lengths)`: the kernels read only the filled keys, and no (B, 1, L, S) mask is made.
    It is passed down the model in place of a mask tensor, as transformers' own flash attention
    path passes a 2-D padding mask; models that read the mask themselves get the full mask
    instead (`_READS_CAUSAL_MASK`).
    """

    __slots__ = ("lengths", "padding", "shape")

    # Read as a prepared 4-D mask on its way: generate() makes it for a compileable cache before the
    # forward, which checks `attention_mask.ndim < 4` (GPT-2) and hands it to create_causal_mask,
    # which gives it back to flashmin_mask (returned as it is there).
    ndim = 4

    def __init__(self, lengths, padding, shape):
        self.lengths = lengths
        self.padding = padding
        self.shape = shape   # torch.Size (B, 1, L, S) of the mask it stands for

    def __repr__(self):
        pad = None if self.padding is None else tuple(self.padding.shape)
        return f"FilledKeys(shape={tuple(self.shape)}, lengths={tuple(self.lengths.shape)} int32, padding={pad})"


# Models that add to or index the causal mask in their own code, before or beside the attention
# function (transformers asks for a materialised mask for them, allow_is_causal_skip=False, which a
# StaticCache's decode step also asks for): they always get the full mask.
_READS_CAUSAL_MASK = frozenset({"doge", "dots3_note", "mistral_large4"})


# ---------------------------------------------------------------------------------------------
# the two registered functions
# ---------------------------------------------------------------------------------------------
def attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers attention function backed by `flashmin_nn.attention`.

    Args:
        module: the calling attention layer; `module.is_causal` says whether it is causal
            (a `is_causal=` keyword, when the model passes one, wins, as for `sdpa`).
        query: (B, Hq, L, D), any strides with the last dim contiguous (GPT-2's is a view of its
            fused c_attn projection; nothing is copied).
        key, value: (B, Hkv, S, D) with Hq a multiple of Hkv (GQA by head counts, no repeat_kv).
        attention_mask: None, a (B, 1, 1, S) key padding mask (the module's causality is applied
            in-kernel on top), or a full (B, 1, L, S) mask (bool: True = attend, or additive
            float) which already holds the causality; see the module docstring for who sends what.
        scaling: multiplies q.k; None means D ** -0.5. GPT-2 folds
            `scale_attn_by_inverse_layer_idx` into it.
        dropout: must be 0 (flashmin is inference-only): call `model.eval()`.

        position_bias (keyword): an additive bias broadcastable to (B, Hq, L, S) (T5's relative
            position bias), added to the mask as transformers' sdpa does: a bool mask hides keys
            from it, a float mask is added to it.

    Returns:
        (out (B, L, Hq, D) contiguous, None): no attention weights are ever formed
        (output_attentions=True gets a one-time warning, as for sdpa).
    """
    if dropout:
        raise ValueError(
            f"{type(module).__name__} asked for attention dropout={dropout}: flashmin is inference-only, "
            "call model.eval() first"
        )
    # This runs once per layer per generated token: the common call (GPT-2 passes position_ids and
    # use_cache) gets one set test, not a lookup per special name (a frozenset's isdisjoint,
    # which torch.compile traces; dict_keys.isdisjoint breaks the graph).
    position_bias = None
    options = {}
    is_causal = kwargs.get("is_causal")
    if is_causal is None:
        is_causal = getattr(module, "is_causal", True)
    if not _SPECIAL_NAMES.isdisjoint(kwargs):
        options = _options(module, kwargs, attention_mask, query)
        if kwargs.get("output_attentions"):
            _warn_no_attention_weights()
        position_bias = kwargs.get("position_bias")
        packed = _varlen_forward(module, query, key, value, scaling, bool(is_causal), kwargs, position_bias)
        if packed is not None:
            return packed, None
    L, S = query.shape[2], key.shape[2]
    if type(attention_mask) is FilledKeys:
        # A StaticCache: causal at the bottom right of the keys written so far (seqlens_k), their
        # padding as a key padding mask.
        options = {**options, "seqlens_k": attention_mask.lengths}
        attention_mask, is_causal = attention_mask.padding, True
    elif attention_mask is not None and attention_mask.shape[-2] != 1:
        # A full (.., L, S) mask already says who sees whom; adding causality on top would break
        # masks that are deliberately not causal (prefix-LM, image tokens), as it would in sdpa.
        is_causal = False
    if position_bias is not None:
        attention_mask = _add_position_bias(module, position_bias, attention_mask, query, key)
    # By position (a little cheaper than keywords): attn_mask, scale, is_causal, and causal_offset
    # S - L, bottom-right: the last query sees every key. out: (B, Hq, L, D), laid out as (B, L, Hq, D).
    if options:
        out = flashmin_nn.attention(query, key, value, attention_mask, scaling, bool(is_causal), S - L, **options)
    else:
        out = flashmin_nn.attention(query, key, value, attention_mask, scaling, bool(is_causal), S - L)
    return out.transpose(1, 2), None  # (B, L, Hq, D), contiguous: no copy


def _varlen_forward(module, query, key, value, scaling, is_causal, kwargs, position_bias):
    """Packed sequences given by the varlen keywords (all four, one batch row of packed tokens, no
    cache: as many keys as queries), through flash_attn_varlen_func; None for any other call,
    which then runs on the mask transformers built (for packed position_ids, a block-diagonal one).
    Attention sinks and position biases have no varlen form here: those calls take the mask too."""
    cu_q, cu_k, max_q, max_k = (kwargs.get(n) for n in _VARLEN_KWARGS)
    if cu_q is None or cu_k is None or max_q is None or max_k is None:
        return None
    if query.shape[0] != 1 or key.shape[2] != query.shape[2] or position_bias is not None:
        return None
    if kwargs.get("s_aux") is not None or kwargs.get("sinks") is not None:
        return None
    name = type(module).__name__
    for n, t in (("cu_seq_lens_q", cu_q), ("cu_seq_lens_k", cu_k)):
        if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"{name} was passed {n}={describe(t)}: it must be a 1-D int32 tensor of sequence "
                             "starts (n + 1 values)")
    # max_length_*: an int, or a tensor (transformers' own helper makes one); a tensor is not read
    # back: the packed length bounds every sequence, and flash_attn takes max_seqlen as a bound.
    total_q, total_k = query.shape[2], key.shape[2]
    max_q = max_q if isinstance(max_q, int) and not isinstance(max_q, bool) else total_q
    max_k = max_k if isinstance(max_k, int) and not isinstance(max_k, bool) else total_k
    window = kwargs.get("sliding_window")
    softcap = kwargs.get("softcap")
    out = flashmin_nn.flash_attn_varlen_func(
        query[0].transpose(0, 1), key[0].transpose(0, 1), value[0].transpose(0, 1),   # (total, H, D) views
        cu_q.to(torch.int32), cu_k.to(torch.int32), max_q, max_k, softmax_scale=scaling, causal=is_causal,
        window_size=(window - 1, 0) if isinstance(window, int) and window > 0 else (-1, -1),
        softcap=float(softcap) if softcap else 0.0)
    return out.unsqueeze(0)   # (1, total, Hq, D), contiguous


def _options(module, kwargs, attention_mask, query):
    """flashmin.attention's keyword options for the model's softcap / s_aux / sinks / sliding_window."""
    name = type(module).__name__
    options = {}
    softcap = kwargs.get("softcap")
    if softcap is not None:
        if isinstance(softcap, bool) or not isinstance(softcap, (int, float)):
            raise TypeError(f"{name} passed softcap={describe(softcap)}: it must be a float")
        if softcap > 0:
            options["softcap"] = float(softcap)
    sinks = kwargs.get("s_aux") if kwargs.get("s_aux") is not None else kwargs.get("sinks")
    if sinks is not None:
        heads = query.shape[1]
        if not isinstance(sinks, torch.Tensor) or not sinks.is_floating_point() or tuple(sinks.shape) != (heads,):
            raise ValueError(f"{name} passed s_aux={describe(sinks)}: attention sinks must be a float tensor of "
                             f"shape (Hq,)=({heads},), one logit per query head")
        options["sinks"] = sinks
    window = kwargs.get("sliding_window")
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"{name} passed sliding_window={describe(window)}: it must be a positive int")
        # A full (B, 1, L, S) mask, what flashmin_mask materialises for a sliding layer (as sdpa gets),
        # already holds the window. Without one (no mask, or a key padding mask under several
        # queries), key j is seen by query i iff i - window < j <= i (transformers'
        # sliding_window_overlay): flashmin's window (window - 1, 0) around the diagonal.
        if attention_mask is None or type(attention_mask) is FilledKeys or attention_mask.shape[-2] != query.shape[2]:
            options["window_size"] = (window - 1, 0)
    return options


def _add_position_bias(module, bias, attention_mask, query, key):
    """The float mask that carries `bias` (broadcastable to (B, Hq, L, S)) and `attention_mask`
    (None, bool with True = attend, or float): where the mask hides a key the result is -inf, else
    bias (+ the float mask). Materialised at the broadcast shape, as sdpa materialises it."""
    B, H, L, D = query.shape
    target = (B, H, L, key.shape[2])
    name = type(module).__name__
    if not isinstance(bias, torch.Tensor) or not bias.is_floating_point():
        raise TypeError(f"{name} passed position_bias={describe(bias)}: it must be a float tensor "
                        f"broadcastable to (B, H, L, S)={target}")
    try:
        ok = bias.dim() <= 4 and torch.broadcast_shapes(bias.shape, target) == torch.Size(target)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} passed position_bias={describe(bias)}: it does not broadcast to "
                         f"(B, H, L, S)={target}")
    if attention_mask is None:
        return bias
    if attention_mask.dtype == torch.bool:
        return bias.masked_fill(~attention_mask, float("-inf"))
    return bias + attention_mask


def _warn_no_attention_weights():
    global _warned_output_attentions
    if not _warned_output_attentions:
        _warned_output_attentions = True
        warn_at_caller(
            "flashmin attention forms no attention weights, so output_attentions=True returns none for its "
            f"layers; load the model with attn_implementation='eager' to get them", skip=_SKIP_FRAMES)


def _not_routed(cls):
    """The refusal for a model class whose attention layers do not call ALL_ATTENTION_FUNCTIONS."""
    return f"{cls.__name__} does not route its attention through ALL_ATTENTION_FUNCTIONS, so flashmin cannot replace it"


_ROUTING = {}   # config class -> None (its model calls the interface, or is unknown) or the refusal


def _routing_refusal(config):
    """The refusal for the model family of `config` when its attention does not use the interface."""
    cls = type(config)
    if cls not in _ROUTING:
        refusal = None
        try:
            from transformers.models.auto.modeling_auto import MODEL_MAPPING

            model_cls = MODEL_MAPPING[cls]
        except (KeyError, ValueError, ImportError):
            model_cls = None          # a config the auto classes do not know: nothing to say
        if isinstance(model_cls, (list, tuple)):
            model_cls = model_cls[0]
        if model_cls is not None and not model_cls._can_set_attn_implementation():
            refusal = _not_routed(model_cls)
        _ROUTING[cls] = refusal
    return _ROUTING[cls]


def flashmin_mask(
    batch_size,
    q_length,
    kv_length,
    q_offset=0,
    kv_offset=0,
    mask_function=causal_mask_function,
    attention_mask=None,
    local_size=None,
    allow_is_causal_skip=True,
    allow_is_bidirectional_skip=False,
    **kwargs,
):
    """transformers mask function: the cheapest mask `attention_forward` can do exact work with.

    Called by `create_causal_mask` and friends with the 2-D padding mask (B, past + L) (True =
    real token) and the geometry of the keys: query i sits at position q_offset + i, key j at
    kv_offset + j.

    Returns:
        None when a plain causal mask has no padding (the kernel's causal flag does it all);
        a bool (B, 1, 1, S) key padding mask when there is padding; a FilledKeys for a plain
        causal mask over keys that run past the last query (a StaticCache's empty slots); otherwise
        (sliding windows, packed sequences, custom mask functions, or a caller that asked for a
        materialised mask) exactly what `sdpa` would get as a materialised (B, 1, L, S) bool mask,
        or None where sdpa may skip a bidirectional one.

    Edge cases: the padding check of the cheap cases reads the mask on the host (one sync per
    forward, as `sdpa` does) except while tracing, where the padding mask is always returned; a
    FilledKeys keeps its padding unchecked (no sync).

    Called once per forward, so it also does the forward's checks (outside torch.compile): a
    config whose model does not call the attention interface is refused (the name can only have
    been written into it behind transformers' back), and output_attentions=True gets its warning.
    """
    if type(attention_mask) is FilledKeys:   # made by this function before the forward (generate())
        return attention_mask
    if not torch.compiler.is_compiling():
        config = kwargs.get("config")
        if config is not None and _routing_refusal(config) is not None:
            raise ValueError(_routing_refusal(config))
        if not _warned_output_attentions and _output_collector is not None:
            collecting = _output_collector.get()
            if collecting and ("attentions" in collecting or "cross_attentions" in collecting):
                _warn_no_attention_weights()
    plain_causal = (
        mask_function is causal_mask_function
        and local_size is None
        and allow_is_causal_skip
        and _keys_end_at_last_query(q_offset, q_length, kv_offset, kv_length)
    )
    if not plain_causal and _filled_keys_apply(q_length, q_offset, kv_offset, mask_function, local_size,
                                               allow_is_causal_skip, kwargs.get("config")):
        filled = _filled_keys(batch_size, q_length, kv_length, q_offset, kv_offset, attention_mask,
                              kwargs.get("device"))
        if filled is not None:
            return filled
    if not plain_causal:
        # The kernel's bottom-right causal flag is wrong here (or unwanted): materialise it all.
        return sdpa_mask(
            batch_size=batch_size,
            q_length=q_length,
            kv_length=kv_length,
            q_offset=q_offset,
            kv_offset=kv_offset,
            mask_function=mask_function,
            attention_mask=attention_mask,
            local_size=local_size,
            allow_is_causal_skip=False,
            allow_is_bidirectional_skip=allow_is_bidirectional_skip,
            **kwargs,
        )
    padding = prepare_padding_mask(attention_mask, kv_length, kv_offset)  # (B, >= kv_offset + S) or None
    if padding is None:
        return None
    padding = padding[:, kv_offset : kv_offset + kv_length]  # (B, S)
    if not is_tracing(padding) and bool(padding.all()):
        return None  # no padding at all: let the kernel run mask-free
    return padding[:, None, None, :]  # (B, 1, 1, S)


def _filled_keys_apply(q_length, q_offset, kv_offset, mask_function, local_size, allow_is_causal_skip, config):
    """Whether a FilledKeys says it all: a plain causal mask, key j at position kv_offset + j (an
    int), and a mask the caller lets go unmaterialised. transformers asks for a materialised mask
    on every decode step of a compileable cache (a StaticCache's q_offset is a tensor) for sdpa's
    sake, so that request is honoured only for the models that read the mask themselves."""
    if mask_function is not causal_mask_function or local_size is not None or type(kv_offset) is not int:
        return False
    if allow_is_causal_skip:
        return True
    if q_length != 1 or not isinstance(q_offset, torch.Tensor):
        return False
    return config is None or getattr(config, "model_type", None) not in _READS_CAUSAL_MASK


def _filled_keys(batch_size, q_length, kv_length, q_offset, kv_offset, attention_mask, device):
    """The FilledKeys of keys 0 .. q_offset + q_length - kv_offset - 1 (read as clamped to [0, kv_length])
    and the 2-D padding mask's keys, computed on the device (q_offset: an int or a 0-d tensor);
    None when no device is known (no mask, an int q_offset and no device keyword)."""
    padding = prepare_padding_mask(attention_mask, kv_length, kv_offset)  # (B, >= kv_offset + S) or None
    if padding is not None:
        # Kept even where it hides nothing: generate() makes this mask on the host before every
        # step, and a check would cost a sync per step. The kernels read a key padding row once,
        # while the first keys are already on their way (csrc/decode/decode_kernel.cuh).
        padding = padding[:, kv_offset : kv_offset + kv_length]
        device = padding.device
    if device is None:
        device = q_offset.device if isinstance(q_offset, torch.Tensor) else None
    if device is None:
        return None   # nowhere to put the lengths: the caller materialises the mask
    n = q_offset + (q_length - kv_offset)
    if isinstance(n, torch.Tensor):
        # One copy (cast and broadcast) per forward; no clamp kernel: the kernels and the reference
        # path clamp seqlens_k to [0, S] where they read it.
        lengths = torch.empty(batch_size, dtype=torch.int32, device=device)
        lengths.copy_(n.reshape(1).expand(batch_size))
    else:
        lengths = torch.full((batch_size,), min(max(n, 0), kv_length), dtype=torch.int32, device=device)
    return FilledKeys(lengths, None if padding is None else padding[:, None, None, :],
                      torch.Size((batch_size, 1, q_length, kv_length)))


def _keys_end_at_last_query(q_offset, q_length, kv_offset, kv_length):
    """True when the last key is the last query's own position (DynamicCache or no cache), so
    bottom-right causal alignment is exactly the causal mask. A StaticCache hands q_offset as a
    tensor and has empty slots after the last query: not this case."""
    if isinstance(q_offset, torch.Tensor) or isinstance(kv_offset, torch.Tensor):
        return False
    return q_offset + q_length == kv_offset + kv_length


def register():
    """Register `attention_forward` and `flashmin_mask` under ATTN_IMPLEMENTATION, and make
    transformers refuse the name for models whose attention does not use the interface (idempotent).

    Done on import; call it again only if something removed the registration."""
    AttentionInterface.register(ATTN_IMPLEMENTATION, attention_forward)
    AttentionMaskInterface.register(ATTN_IMPLEMENTATION, flashmin_mask)
    _refuse_models_outside_the_interface()
    return ATTN_IMPLEMENTATION


def _refuse_models_outside_the_interface():
    """Wrap PreTrainedModel.get_correct_attn_implementation, which transformers runs on the requested
    implementation when a model is built (from_pretrained, from_config, the constructor) and in
    set_attn_implementation: for ATTN_IMPLEMENTATION and a class whose attention layers do not call
    the interface it raises patch_model's error; every other request passes through unchanged."""
    original = PreTrainedModel.get_correct_attn_implementation
    if getattr(original, "_flashmin_checks_routing", False):
        return

    @functools.wraps(original)
    def get_correct_attn_implementation(self, requested_attention, *args, **kwargs):
        if requested_attention == ATTN_IMPLEMENTATION and not type(self)._can_set_attn_implementation():
            raise ValueError(_not_routed(type(self)))
        return original(self, requested_attention, *args, **kwargs)

    get_correct_attn_implementation._flashmin_checks_routing = True
    PreTrainedModel.get_correct_attn_implementation = get_correct_attn_implementation


register()


# The switching functions, from flashmin_nn/integrations/patching.py (which imports this module,
# so it is imported here only when one of them is first asked for).
_PATCHING = ("is_patched", "patch_gpt2", "patch_model", "patched", "unpatch")


def __getattr__(name):
    if name in _PATCHING:
        from . import patching

        return getattr(patching, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PATCHING))


__all__ = [
    "ATTN_IMPLEMENTATION",
    "FilledKeys",
    "attention_forward",
    "flashmin_mask",
    "is_patched",
    "patch_gpt2",
    "patch_model",
    "patched",
    "register",
    "unpatch",
]
