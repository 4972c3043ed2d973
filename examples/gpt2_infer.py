"""GPT-2 or Llama inference with transformers' eager, sdpa and flashmin attention, side by side.

    python examples/gpt2_infer.py                         # GPT-2 small shape, random weights
    python examples/gpt2_infer.py --arch llama            # TinyLlama-1.1B's shape (grouped KV heads)
    python examples/gpt2_infer.py --model DIR --prompt "Once upon a time"   # a local checkpoint
    python examples/gpt2_infer.py --kernel minimal --json out.json

The same weights and inputs go through each implementation, and one table reports:
  - logits error against an fp32 eager reference (the same weights upcast to fp32):
    max |err| and ||err|| / ||ref||
  - teacher-forced top-1 agreement with sdpa (% of positions)
  - greedy generation agreement with sdpa: new tokens until the first divergence, min over batch,
    and where a row diverges, the gap at the split: how far the implementation's token scored below
    sdpa's in sdpa's own logits at that step (teacher-forced along sdpa's tokens), the largest over
    the rows that diverge. A gap within sdpa's own max |err| is a near-tie that fp16 rounding
    decides, not a wrong attention; random weights make such ties (and loops: a random model
    soon repeats a few tokens, GPT-2's at embeddings x6 its last prompt token)
  - prefill latency (ms: the transformer plus last-position logits, as in generate) and greedy
    generation throughput (new tokens/s, DynamicCache, exactly --new-tokens per sequence), with
    flashmin's speed-up over sdpa measured in the same run
  - the same correctness columns for a left-padded batch (rows marked "+pad")

With --cache static or both (the default on CUDA), a second table generates with a StaticCache
of --cache-len slots, for sdpa and flashmin: new tokens until the first divergence from sdpa's
static-cache tokens and from the implementation's own DynamicCache tokens ("gen=dyn"), tokens/s
and speed-up. As transformers 5.x documents it: generate(..., cache_implementation="static",
max_cache_len=N), and with --compile (the default on CUDA with a static cache) generate compiles the model's forward
with torch.compile (CompileConfig, mode "reduce-overhead": CUDA graphs) for the steps after the
prefill, in each implementation's correctness run, before any timing. A static-cache decode step
attends over all --cache-len slots (the unused ones masked), so its tokens/s depend on them.

How timings are taken: after every implementation's correctness run and one warm-up call each,
the timing runs in --iters rounds. Each round times every implementation once (one prefill, then
one generation), in an order that rotates from round to round. Times and tokens/s are medians
over the rounds; a speed-up is the median of the per-round ratios (each round's sdpa time over
the implementation's time in the same round), shown with the lowest and highest per-round ratio.
So drift of the machine during the run (clocks, temperature, other load, which moves generation,
a host-bound loop, by 10% and more between rounds) falls on all implementations alike instead of
on whichever one happened to be timed then. The static-cache table has rounds of its own, after
the first table's. The JSON keeps every round's times.

At GPT-2's default shape a DynamicCache generation step is host bound (Python and kernel
launches, 6-10 ms, of which attention is 12 calls of about 35 us), and the GPU machine's host
moves it by tens of percent from one generation to the next (scripts/gen_noise.py measures
this), so read the per-round range before the speed-up. The compiled static-cache generation
replays each decode step as CUDA graphs, without most of that host time.

--arch llama is a Llama (RMSNorm, rotary positions, SwiGLU MLP, grouped-query attention) of
TinyLlama-1.1B's shape, from a LlamaConfig. Nothing is downloaded, ever: without --model the
weights are random (seeded). Without a GPU it runs on the CPU with a smaller model and workload
(DynamicCache only, unless --cache says otherwise), and says so. Progress goes to stderr; torch,
transformers and flashmin are imported after the command line is read (--help comes back at once).
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub access, even by accident
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

DTYPE_NAMES = ("fp16", "bf16", "fp32")
# The random models' shapes by --arch: (CUDA, CPU). ffn: the MLP's hidden size (Llama only).
SHAPES = {
    "gpt2": (dict(layers=12, heads=12, width=768, vocab=50257, positions=1024),   # GPT-2 small
             dict(layers=4, heads=8, width=512, vocab=8192, positions=1024)),
    "llama": (dict(layers=22, heads=32, kv_heads=4, width=2048, ffn=5632, vocab=32000, positions=2048),  # TinyLlama
              dict(layers=4, heads=8, kv_heads=2, width=512, ffn=1024, vocab=8192, positions=2048)),
}
IMPLS = ("eager", "sdpa", "flashmin")
STATIC_IMPLS = ("sdpa", "flashmin")  # the static-cache table (eager would only add minutes of compiling)

# Filled by import_libraries(): torch, transformers, flashmin_nn, fm_hf (the transformers
# integration) and DTYPES ({"fp16": torch.float16, ...}).
torch = transformers = flashmin_nn = fm_hf = DTYPES = None


def import_libraries():
    """Import torch, transformers and flashmin (seconds: transformers' modeling code) into this module."""
    global torch, transformers, flashmin_nn, fm_hf, DTYPES
    if fm_hf is not None:
        return
    import torch
    import transformers

    try:
        import flashmin_nn
    except ImportError:  # run from a source checkout without `pip install -e .`
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import flashmin_nn
    from flashmin_nn.integrations import transformers as fm_hf

    DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="local checkpoint directory (default: a random model, see --arch)")
    p.add_argument("--arch", choices=SHAPES, help="random model's architecture: gpt2 (GPT-2 small's shape) or llama "
                                                  "(TinyLlama-1.1B's shape, grouped-query attention); default gpt2")
    p.add_argument("--prompt", help="prompt text for generation (needs a tokenizer in --model)")
    p.add_argument("--device", help="torch device to run on, e.g. cuda, cuda:1 or cpu (default: cuda when a GPU is "
                                    "available, else cpu)")
    p.add_argument("--dtype", choices=DTYPE_NAMES, help="default: fp16 on CUDA, fp32 on CPU")
    p.add_argument("--batch", type=int, help="default: 8 on CUDA, 2 on CPU")
    p.add_argument("--seq", type=int, help="prefill length; default: 1024 on CUDA, 128 on CPU")
    p.add_argument("--prompt-len", type=int, help="generation prompt length; default: 128 on CUDA, 32 on CPU")
    p.add_argument("--new-tokens", type=int, help="tokens generated per sequence; default: 256 on CUDA, 16 on CPU")
    p.add_argument("--iters", type=int, help="timing rounds, each timing every implementation once (prefill and "
                                             "generation); medians over rounds; default: 12 on CUDA, 3 on CPU")
    p.add_argument("--cache", choices=("dynamic", "static", "both"),
                   help="KV cache of the generation: dynamic (DynamicCache, the first table), static (StaticCache, "
                        "a second table, sdpa and flashmin) or both; default: both on CUDA, dynamic on the CPU")
    p.add_argument("--cache-len", type=int, help="slots of the static cache, at least --prompt-len + --new-tokens; "
                                                 "default: 2048 on CUDA, 256 on CPU")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction,
                   help="compile the forward of the static-cache generation with torch.compile (as generate does: "
                        "the decode steps; compiled before timing); default: on for CUDA, off on the CPU")
    p.add_argument("--kernel", default="auto", help="flashmin kernel (flashmin_nn.use_kernel): auto, reference, or one "
                                                    "of the CUDA kernels of flashmin_nn.list_kernels() (CUDA devices "
                                                    "only); default auto")
    p.add_argument("--layers", type=int, help="random model: number of layers")
    p.add_argument("--heads", type=int, help="random model: number of (query) heads")
    p.add_argument("--kv-heads", type=int, help="random Llama model: number of key/value heads (a divisor of --heads)")
    p.add_argument("--width", type=int, help="random model: hidden size (a Llama's MLP keeps its width ratio)")
    p.add_argument("--vocab", type=int, help="random model: vocabulary size")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and token ids (default 0)")
    p.add_argument("--embed-scale", type=float, default=6.0,
                   help="scale of the random model's embeddings, input and output (GPT-2 ties them; a Llama's "
                        "LM head is scaled with them) (default 6: decisive logits, like a trained model's; 1 keeps "
                        "the raw initialisation)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if args.model is not None and not os.path.isdir(args.model):
        p.error(f"--model {args.model}: no such directory (a local checkpoint directory; nothing is downloaded)")
    if args.model is not None and args.arch is not None:
        p.error("--arch picks the random model's architecture; --model brings its own")
    args.arch = args.arch or "gpt2"
    if args.kv_heads is not None and args.arch != "llama":
        p.error("--kv-heads: GPT-2 has one key/value head per query head; use --arch llama")
    if args.iters is not None and args.iters < 1:
        p.error(f"--iters {args.iters}: at least one timing round")

    import_libraries()
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        with flashmin_nn.use_kernel(args.kernel):
            pass
    except ValueError as e:
        p.error(str(e))
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        p.error(f"--device {args.device}: torch.cuda.is_available() is False")
    if flashmin_nn.backends.canonical_name(args.kernel) in flashmin_nn.backends.CUDA_KERNELS:
        if not cuda:
            p.error(f"--kernel {args.kernel} runs on CUDA tensors, and this run is on --device {args.device}"
                    f"{'' if torch.cuda.is_available() else ' (no CUDA device here)'}; use --kernel auto or reference")
        info = flashmin_nn.list_kernels()[args.kernel]
        if not info.available:
            p.error(f"--kernel {args.kernel} cannot run on this machine: {info.reason}")
    # On CUDA both tables, the second with a static cache and a compiled forward (the fast path of
    # transformers generation); on the CPU the first only (compiling there is slow, and optional).
    defaults = dict(dtype="fp16", batch=8, seq=1024, prompt_len=128, new_tokens=256, iters=12, cache="both") if cuda \
        else dict(dtype="fp32", batch=2, seq=128, prompt_len=32, new_tokens=16, iters=3, cache="dynamic")
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.cpu_defaults = not cuda
    if args.prompt_len > args.seq:
        p.error(f"--prompt-len {args.prompt_len} is longer than --seq {args.seq} (the prompt is the prefill's start)")
    args.static = args.cache != "dynamic"
    if not args.static and (args.compile or args.cache_len is not None):
        p.error(f"--{'compile' if args.compile else 'cache-len'} is for the static-cache generation: add "
                "--cache static or --cache both")
    if args.compile is None:
        args.compile = cuda and args.static
    if args.cache_len is None:
        args.cache_len = 2048 if cuda else 256
    if args.static and args.cache_len < args.prompt_len + args.new_tokens:
        p.error(f"--cache-len {args.cache_len}: the static cache must hold the prompt and every new token, "
                f"--prompt-len + --new-tokens = {args.prompt_len} + {args.new_tokens} = "
                f"{args.prompt_len + args.new_tokens} slots")
    args.shape = None if args.model else model_shape(args, p)
    return args


def model_shape(args, p):
    """The random model's shape: --arch's default for this device, with --layers etc. applied (checked)."""
    shape = dict(SHAPES[args.arch][args.cpu_defaults])
    if args.width is not None and "ffn" in shape:
        shape["ffn"] = shape["ffn"] * args.width // shape["width"]
    for key in ("layers", "heads", "kv_heads", "width", "vocab"):
        if getattr(args, key) is not None:
            shape[key] = getattr(args, key)
    if shape["width"] % shape["heads"]:
        p.error(f"--width {shape['width']} is not a multiple of --heads {shape['heads']}")
    if shape["heads"] % shape.get("kv_heads", 1):
        p.error(f"--heads {shape['heads']} is not a multiple of --kv-heads {shape['kv_heads']}"
                f"{'' if args.kv_heads else ' (the default: give --kv-heads)'}")
    return shape


# ---------------------------------------------------------------------------------------------
# model and inputs
# ---------------------------------------------------------------------------------------------
def build_model(args):
    """(model in args.dtype on args.device, tokenizer or None, description)."""
    tokenizer = None
    if args.model:
        log(f"loading {args.model} (local files only)")
        model = transformers.AutoModelForCausalLM.from_pretrained(
            args.model, local_files_only=True, dtype=torch.float32, attn_implementation="sdpa")
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(args.model, local_files_only=True)
        except (OSError, ValueError):
            log("no tokenizer in the checkpoint: random token ids")
        what = f"{args.model} ({type(model).__name__})"
    else:
        s = args.shape
        if args.arch == "gpt2":
            config = transformers.GPT2Config(n_layer=s["layers"], n_head=s["heads"], n_embd=s["width"],
                                             vocab_size=s["vocab"], n_positions=s["positions"])
        else:
            config = transformers.LlamaConfig(
                num_hidden_layers=s["layers"], num_attention_heads=s["heads"], num_key_value_heads=s["kv_heads"],
                hidden_size=s["width"], intermediate_size=s["ffn"], vocab_size=s["vocab"],
                max_position_embeddings=s["positions"])
        config.bos_token_id = config.eos_token_id = 0
        config._attn_implementation = "sdpa"
        torch.manual_seed(args.seed)
        log(f"building a random {args.arch} {s}")
        model = transformers.AutoModelForCausalLM.from_config(config)
        # GPT-2's initialisation (std 0.02) gives near-uniform next-token logits: at ~0.5% of
        # positions the top two differ by less than fp16 rounding, so top-1 agreement would measure
        # rounding noise, not attention. Trained GPT-2 embeddings are several times larger; scaling
        # the (tied) embeddings gives every implementation the same, more decisive model. A Llama's
        # are not tied, and its final RMSNorm undoes any scale of the input embeddings alone, so its
        # LM head is scaled with them (the logits' spread grows by the factor, as GPT-2's does).
        with torch.no_grad():
            model.get_input_embeddings().weight.mul_(args.embed_scale)
            if not config.tie_word_embeddings:
                model.get_output_embeddings().weight.mul_(args.embed_scale)
        names = dict(gpt2=("GPT-2 small shape", "GPT-2 shape"), llama=("Llama, TinyLlama-1.1B's shape", "Llama shape"))
        kv = f"{s['kv_heads']} key/value heads, " if "kv_heads" in s else ""
        mlp = f"MLP {s['ffn']}, " if "ffn" in s else ""
        what = (f"{names[args.arch][s != SHAPES[args.arch][0]]} ({s['layers']} layers, {s['heads']} heads, {kv}"
                f"{s['width']} wide, {mlp}vocab {s['vocab']}), random weights (seed {args.seed}, embeddings "
                f"x{args.embed_scale:g})")
    model.generation_config.eos_token_id = None  # every run generates exactly --new-tokens
    model.generation_config.pad_token_id = 0
    return model.to(args.device, DTYPES[args.dtype]).eval(), tokenizer, what


def make_inputs(args, model, tokenizer):
    """Prefill ids (B, seq), padded prefill ids and mask (B, seq), generation prompt (B, prompt_len)."""
    max_pos = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", 0)
    if max_pos and max(args.seq, args.prompt_len + args.new_tokens) > max_pos:
        raise SystemExit(f"--seq {args.seq} / --prompt-len + --new-tokens {args.prompt_len + args.new_tokens} "
                         f"exceed the model's {max_pos} positions")
    g = torch.Generator().manual_seed(args.seed + 1)
    B, vocab = args.batch, model.config.vocab_size
    ids = torch.randint(1, vocab, (B, args.seq), generator=g)  # (B, seq); 0 is the pad id
    if args.prompt and tokenizer is not None:
        text = tokenizer(args.prompt, return_tensors="pt").input_ids[0]  # (T,)
        args.prompt_len = min(args.prompt_len, len(text))
        ids[:, : len(text[: args.seq])] = text[: args.seq]
    prompt = ids[:, : args.prompt_len].clone()  # (B, prompt_len)

    # Left padding: row b loses its first b * seq / (2 B) tokens to padding (row 0 none).
    pad = torch.arange(B) * args.seq // (2 * B)  # (B,)
    mask = (torch.arange(args.seq)[None, :] >= pad[:, None]).long()  # (B, seq), 1 = real token
    padded = ids.masked_fill(mask == 0, 0)
    ppad = torch.arange(B) * args.prompt_len // (2 * B)
    pmask = (torch.arange(args.prompt_len)[None, :] >= ppad[:, None]).long()  # (B, prompt_len)
    dev = args.device
    return dict(ids=ids.to(dev), padded=padded.to(dev), mask=mask.to(dev), prompt=prompt.to(dev),
                prompt_ones=torch.ones_like(prompt).to(dev),
                padded_prompt=prompt.masked_fill(pmask == 0, 0).to(dev), prompt_mask=pmask.to(dev))


def set_impl(model, impl):
    """Switch the model between eager, sdpa and flashmin, in place."""
    fm_hf.unpatch(model)
    if impl == "flashmin":
        fm_hf.patch_model(model)
    else:
        model.set_attn_implementation(impl)


def static_options(args):
    """generate()'s keywords for the static-cache generation. transformers 5.24 allocates a new
    StaticCache per call, of max(max_length - 1, max_cache_len) slots, and compiles by itself when
    the cache is static and the device CUDA: torch.compile(model.__call__, **compile_config), once,
    used for every decode step (the prefill stays eager). --compile asks for that (on the CPU too,
    with CompileConfig's flag for it); otherwise disable_compile keeps every step eager."""
    opts = dict(cache_implementation="static", max_cache_len=args.cache_len)
    if not args.compile:
        return dict(opts, disable_compile=True)
    config = transformers.CompileConfig(mode="default" if args.cpu_defaults else "reduce-overhead")
    config._compile_all_devices = args.cpu_defaults  # transformers' switch for compiling off accelerators
    return dict(opts, compile_config=config)


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------
def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def seconds(fn, device):
    """Wall-clock seconds of one call of fn, the device drained before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def logits(model, ids, mask=None):
    return model(ids, attention_mask=mask, use_cache=False).logits  # (B, seq, V)


def generate(model, prompt, mask, new_tokens, **options):
    out = model.generate(prompt, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                         do_sample=False, pad_token_id=0, **options)
    return out[:, prompt.shape[1]:]  # (B, new_tokens)


def errors(out, ref, keep=None):
    """(max |out - ref|, ||out - ref|| / ||ref||) over positions where keep (B, seq) is True."""
    diff = out.float() - ref
    if keep is not None:
        diff, ref = diff[keep], ref[keep]
    return diff.abs().max().item(), (diff.norm() / ref.norm()).item()


def agree_until(a, b):
    """New tokens until the first divergence, min over the batch. a, b: (B, N)."""
    same = (a == b).long().cumprod(dim=1)  # (B, N): 1 until the first mismatch
    return int(same.sum(dim=1).min().item())


def teacher_logits(model, prompt, mask, gen):
    """The logits that predict each token of gen (B, N) after prompt (B, P) with its mask, from one
    forward over the whole sequence (no cache): (B, N, V). Positions count the real tokens, as
    generate() counts them for a left-padded prompt."""
    seq, full = torch.cat([prompt, gen], 1), torch.cat([mask, torch.ones_like(gen)], 1)
    pos = (full.cumsum(-1) - 1).clamp(min=0)
    out = model(seq, attention_mask=full, position_ids=pos, use_cache=False).logits
    return out[:, prompt.shape[1] - 1:-1]


def gap_at_split(gen, ref_gen, ref_logits):
    """Where gen (B, N) first leaves ref_gen in a row, how far gen's token scored below ref_gen's in
    the reference's logits at that step (ref_logits (B, N, V), teacher_logits of ref_gen): the
    largest such gap over the rows that diverge, None if none does. A gap within the reference's
    own error is a near-tie that rounding decides, not a wrong attention."""
    split = gen != ref_gen  # (B, N)
    rows = split.any(dim=1)
    if not rows.any():
        return None
    b = torch.arange(gen.shape[0], device=gen.device)[rows]
    t = split.long().argmax(dim=1)[rows]  # the first divergent step of each such row
    lg = ref_logits[b, t].float()  # (rows, V)
    gap = lg.gather(1, ref_gen[b, t][:, None]) - lg.gather(1, gen[b, t][:, None])
    return gap.max().item()


def add_teacher_logits(out, model, x):
    """The reference's logits along its own greedy tokens (an eager forward each, dense and
    left-padded), for gap_at_split: out["teacher"], out["teacher_pad"]."""
    out["teacher"] = teacher_logits(model, x["prompt"], x["prompt_ones"], out["gen"])
    out["teacher_pad"] = teacher_logits(model, x["padded_prompt"], x["prompt_mask"], out["gen_pad"])


def put_gap_at_split(row, gen, ref_gen, ref_logits):
    """row["gap_at_split"] = gap_at_split(...) where some row of gen leaves ref_gen."""
    gap = gap_at_split(gen, ref_gen, ref_logits)
    if gap is not None:
        row["gap_at_split"] = gap


def measure(model, impl, x, args):
    """Logits (dense and left-padded) and greedy DynamicCache generations of one implementation."""
    log(f"{impl}: logits")
    out = dict(logits=logits(model, x["ids"]), logits_pad=logits(model, x["padded"], x["mask"]))
    if args.cache != "static":
        log(f"{impl}: greedy generation ({args.new_tokens} tokens)")
        out["gen"] = generate(model, x["prompt"], x["prompt_ones"], args.new_tokens)
        out["gen_pad"] = generate(model, x["padded_prompt"], x["prompt_mask"], args.new_tokens)
        if impl == "sdpa":
            add_teacher_logits(out, model, x)
    return out


def measure_static(model, impl, x, args):
    """Greedy static-cache generations (dense and left-padded) of one implementation; the first
    one compiles (--compile), and the graph breaks torch.compile counted meanwhile come along."""
    from torch._dynamo.utils import counters
    breaks = sum(counters["graph_break"].values())
    log(f"{impl}: greedy generation, static cache ({args.new_tokens} tokens"
        f"{', compiling first' if args.compile else ''})")
    t0 = time.perf_counter()
    out = dict(gen=generate(model, x["prompt"], x["prompt_ones"], args.new_tokens, **args.static_options))
    if args.compile:
        log(f"{impl}: compiled and generated in {time.perf_counter() - t0:.1f} s")
    out["gen_pad"] = generate(model, x["padded_prompt"], x["prompt_mask"], args.new_tokens, **args.static_options)
    out["graph_breaks"] = sum(counters["graph_break"].values()) - breaks
    if impl == "sdpa":
        add_teacher_logits(out, model, x)
    return out


def time_rounds(model, args, impls, jobs, what="timing"):
    """{impl: {job: [seconds, one per round]}} for jobs {name: fn} (args.iters rounds).

    Every round times each implementation once, its jobs in order (prefill, then generation),
    and round r starts with impls[r % len(impls)], so each one runs first, in the middle and last
    equally often."""
    log(f"{what}: warm-up")
    for impl in impls:
        set_impl(model, impl)
        for fn in jobs.values():
            fn()
    times = {impl: {job: [] for job in jobs} for impl in impls}
    for r in range(args.iters):
        order = impls[r % len(impls):] + impls[:r % len(impls)]
        log(f"{what}: round {r + 1}/{args.iters} ({', '.join(order)})")
        for impl in order:
            set_impl(model, impl)
            for job, fn in jobs.items():
                times[impl][job].append(seconds(fn, args.device))
    return times


def add_timings(row, times, base, args):
    """row's timing columns from its rounds and sdpa's (`base`), ratios paired within each round."""
    if "prefill_s" in times:
        row["prefill_ms"] = 1e3 * statistics.median(times["prefill_s"])
        row["prefill_speedup_vs_sdpa"] = statistics.median(s / t for s, t in zip(base["prefill_s"], times["prefill_s"]))
    if "gen_s" in times:
        ratios = [s / t for s, t in zip(base["gen_s"], times["gen_s"])]
        row["gen_tok_s"] = args.batch * args.new_tokens / statistics.median(times["gen_s"])
        row["gen_speedup_vs_sdpa"] = statistics.median(ratios)
        row["gen_speedup_rounds"] = f"{min(ratios):.2f}-{max(ratios):.2f}"


def compare(impl, results, ref, ref_pad, keep):
    """The correctness rows of `impl` (dense, then "+pad"); frees its logits, keeps its top-1."""
    r, base = results[impl], results["sdpa"]
    err, err_pad = errors(r["logits"], ref), errors(r["logits_pad"], ref_pad, keep)
    r["top1"], r["top1_pad"] = r.pop("logits").argmax(-1), r.pop("logits_pad").argmax(-1)  # (B, seq)
    dense = dict(impl=impl, max_abs_err=err[0], rel_err=err[1],
                 top1_vs_sdpa=100.0 * (r["top1"] == base["top1"]).float().mean().item())  # timings: run()
    padded = dict(impl=impl + " +pad", max_abs_err=err_pad[0], rel_err=err_pad[1],
                  top1_vs_sdpa=100.0 * (r["top1_pad"] == base["top1_pad"])[keep].float().mean().item())
    if "gen" in r:
        for row, key in ((dense, ""), (padded, "_pad")):
            row["gen_agree_vs_sdpa"] = agree_until(r["gen" + key], base["gen" + key])
            put_gap_at_split(row, r["gen" + key], base["gen" + key], base["teacher" + key])
    return [dense, padded]


def compare_static(impl, static, results):
    """The static-cache rows of `impl`: agreement with sdpa's static-cache tokens, and with its own
    DynamicCache tokens when there are some."""
    rows = []
    for key, suffix in (("gen", ""), ("gen_pad", " +pad")):
        row = dict(impl=impl + suffix, gen_agree_vs_sdpa=agree_until(static[impl][key], static["sdpa"][key]))
        put_gap_at_split(row, static[impl][key], static["sdpa"][key], static["sdpa"][key.replace("gen", "teacher")])
        if key in results[impl]:
            row["gen_agree_vs_dynamic"] = agree_until(static[impl][key], results[impl][key])
        rows.append(row)
    return rows


def run(args):
    device = args.device
    torch.backends.cuda.matmul.allow_tf32 = False  # keep the fp32 reference fp32
    model, tokenizer, what = build_model(args)
    x = make_inputs(args, model, tokenizer)
    args.static_options = static_options(args) if args.static else None
    if args.cpu_defaults:
        log(f"Running on the CPU{'' if torch.cuda.is_available() else ' (no CUDA device)'}, with smaller defaults "
            f"(batch {args.batch}, prefill {args.seq}, prompt {args.prompt_len} + {args.new_tokens} new tokens"
            f"{'' if args.model else ', a smaller random model'}); flashmin runs its PyTorch reference path "
            "here, so its timings say nothing about the CUDA kernels.")
    keep = x["mask"].bool()  # (B, seq)

    log("fp32 eager reference")
    with torch.no_grad():
        ref_model = copy.deepcopy(model).float()
        ref_model.set_attn_implementation("eager")
        ref = logits(ref_model, x["ids"]).float()  # (B, seq, V)
        ref_pad = logits(ref_model, x["padded"], x["mask"]).float()
        del ref_model

    rows, results, static_rows, static, static_timings = [], {}, [], {}, {}
    order = ("sdpa", "eager", "flashmin")  # sdpa first: it is everyone's baseline
    jobs = dict(prefill_s=lambda: model(x["ids"], use_cache=False, logits_to_keep=1))
    if args.cache != "static":
        jobs["gen_s"] = lambda: generate(model, x["prompt"], x["prompt_ones"], args.new_tokens)
    with torch.no_grad(), flashmin_nn.use_kernel(args.kernel):
        for impl in order:  # correctness, one implementation at a time
            set_impl(model, impl)
            results[impl] = measure(model, impl, x, args)
            rows += compare(impl, results, ref, ref_pad, keep)
        timings = time_rounds(model, args, order, jobs)  # then timing, the implementations interleaved
        if args.static:  # the same for the static cache: correctness (and compiling), then timing
            for impl in STATIC_IMPLS:
                set_impl(model, impl)
                static[impl] = measure_static(model, impl, x, args)
                static_rows += compare_static(impl, static, results)
            static_timings = time_rounds(model, args, STATIC_IMPLS, dict(gen_s=lambda: generate(
                model, x["prompt"], x["prompt_ones"], args.new_tokens, **args.static_options)), "timing, static cache")
        set_impl(model, "sdpa")
    for table_rows, t in ((rows, timings), (static_rows, static_timings)):
        for row in table_rows:
            if not row["impl"].endswith("+pad"):
                add_timings(row, t[row["impl"]], t["sdpa"], args)
        table_rows.sort(key=lambda row: (row["impl"].endswith("+pad"), IMPLS.index(row["impl"].split()[0])))

    dev_name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    kernels, static_kernels = kernel_names(model, args)
    header = (f"{what}\n{dev_name} | {args.dtype} | batch {args.batch}, prefill {args.seq}, "
              f"prompt {args.prompt_len} + {args.new_tokens} new tokens | flashmin kernel: {kernels}"
              f" | timings: medians of {args.iters} interleaved rounds (speed-ups: of per-round ratios)"
              + ("  [CPU run: smaller defaults]" if args.cpu_defaults else ""))
    print(header)
    print(table(rows, COLUMNS))
    if args.static:
        breaks = ", ".join(f"{impl} {static[impl]['graph_breaks']}" for impl in STATIC_IMPLS)
        print(f"\nStaticCache of {args.cache_len} slots, "
              + (f"forward compiled by torch.compile (mode {args.static_options['compile_config'].mode}; graph "
                 f"breaks: {breaks})" if args.compile else "not compiled")
              + f" | flashmin kernel: {static_kernels} | timings: medians of {args.iters} interleaved rounds")
        print(table(static_rows, STATIC_COLUMNS))
    if tokenizer is not None:
        for impl in IMPLS:
            if "gen" in results[impl]:
                print(f"{impl:>9}: {tokenizer.decode(results[impl]['gen'][0])!r}")
    if args.json:
        out = dict(model=what, arch=None if args.model else args.arch, shape=args.shape, device=dev_name,
                   dtype=args.dtype, batch=args.batch, seq=args.seq, prompt_len=args.prompt_len,
                   new_tokens=args.new_tokens, kernel=args.kernel, cache=args.cache,
                   transformers=transformers.__version__, torch=torch.__version__, rows=rows, rounds=timings)
        if args.static:  # the static-cache table
            out.update(cache_len=args.cache_len, compile=args.compile, static_rows=static_rows,
                       static_rounds=static_timings, graph_breaks={i: static[i]["graph_breaks"] for i in STATIC_IMPLS})
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        log(f"wrote {args.json}")
    return rows, static_rows


def kernel_names(model, args):
    """The forced kernel, or what "auto" picks for this model's prefill and decode calls; and for
    a static-cache decode call (it sees all --cache-len slots, and a mask)."""
    if args.kernel != "auto":
        return args.kernel, args.kernel
    H, config = model.config.num_attention_heads, model.config
    Hkv = getattr(config, "num_key_value_heads", None) or H
    D = getattr(config, "head_dim", None) or config.hidden_size // H
    q = torch.empty(args.batch, H, args.seq, D, device=args.device, dtype=DTYPES[args.dtype])  # (B, H, L, D)
    k = torch.empty(args.batch, Hkv, args.seq, D, device=args.device, dtype=q.dtype)
    kv = torch.empty(args.batch, Hkv, args.prompt_len + args.new_tokens, D, device=args.device, dtype=q.dtype)
    slots = torch.empty(args.batch, Hkv, args.cache_len, D, device=args.device, dtype=q.dtype)
    slot_mask = torch.ones(args.batch, 1, 1, args.cache_len, device=args.device, dtype=torch.bool)
    prefill = flashmin_nn.choose_kernel(q, k, k, is_causal=True)
    decode = flashmin_nn.choose_kernel(q[:, :, :1], kv, kv, is_causal=True)
    static = flashmin_nn.choose_kernel(q[:, :, :1], slots, slots, attn_mask=slot_mask)
    return f"auto (prefill: {prefill}, decode: {decode})", f"auto (decode: {static})"


COLUMNS = [("impl", "{}", "impl"), ("max_abs_err", "{:.2e}", "max|err|"), ("rel_err", "{:.2e}", "rel err"),
           ("top1_vs_sdpa", "{:.2f}", "top1=sdpa %"), ("gen_agree_vs_sdpa", "{}", "gen=sdpa tok"),
           ("gap_at_split", "{:.3f}", "gap at split"),
           ("prefill_ms", "{:.2f}", "prefill ms"), ("gen_tok_s", "{:.0f}", "gen tok/s"),
           ("prefill_speedup_vs_sdpa", "{:.2f}x", "prefill vs sdpa"), ("gen_speedup_vs_sdpa", "{:.2f}x", "gen vs sdpa"),
           ("gen_speedup_rounds", "{}", "(rounds)")]
STATIC_COLUMNS = [("impl", "{}", "impl"), ("gen_agree_vs_sdpa", "{}", "gen=sdpa tok"), ("gap_at_split", "{:.3f}", "gap at split"),
                  ("gen_agree_vs_dynamic", "{}", "gen=dyn tok"), ("gen_tok_s", "{:.0f}", "gen tok/s"),
                  ("gen_speedup_vs_sdpa", "{:.2f}x", "gen vs sdpa"), ("gen_speedup_rounds", "{}", "(rounds)")]


def table(rows, cols=COLUMNS):
    cells = [[title for _, _, title in cols]]
    cells += [[fmt.format(row[key]) if key in row else "-" for key, fmt, _ in cols] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


if __name__ == "__main__":
    run(parse_args())
else:
    import_libraries()   # imported by a script (scripts/gen_noise.py, profile_host.py): ready to use
