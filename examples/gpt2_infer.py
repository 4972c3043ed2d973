"""GPT-2 inference with transformers' eager, sdpa and flashmin attention, side by side.

    python examples/gpt2_infer.py                         # GPT-2 small shape, random weights
    python examples/gpt2_infer.py --model DIR --prompt "Once upon a time"   # a local checkpoint
    python examples/gpt2_infer.py --kernel minimal --json out.json

The same weights and inputs go through each implementation, and one table reports:
  - logits error against an fp32 eager reference (the same weights upcast to fp32):
    max |err| and ||err|| / ||ref||
  - teacher-forced top-1 agreement with sdpa (% of positions)
  - greedy generation agreement with sdpa: new tokens until the first divergence, min over batch
  - prefill latency (ms: the transformer plus last-position logits, as in generate) and greedy
    generation throughput (new tokens/s, DynamicCache, exactly --new-tokens per sequence), with
    flashmin's speed-up over sdpa measured in the same run
  - the same correctness columns for a left-padded batch (rows marked "+pad")

How timings are taken: after every implementation's correctness run and one warm-up call each,
the timing runs in --iters rounds. Each round times every implementation once (one prefill, then
one generation), in an order that rotates from round to round. Times and tokens/s are medians
over the rounds; a speed-up is the median of the per-round ratios (each round's sdpa time over
the implementation's time in the same round), shown with the lowest and highest per-round ratio.
So drift of the machine during the run (clocks, temperature, other load, which moves generation,
a host-bound loop, by 10% and more between rounds) falls on all implementations alike instead of
on whichever one happened to be timed then.

At the default shape a generation step is host bound (Python and kernel launches, 6-10 ms, of
which attention is 12 calls of about 35 us), and the GPU machine's host moves it by tens of
percent from one generation to the next (scripts/gen_noise.py measures this), so read the
per-round range before the speed-up. The JSON keeps every round's times.

Nothing is downloaded, ever: without --model the weights are random (seeded). Without a GPU it
runs on the CPU with a smaller model and workload, and says so. Progress goes to stderr. torch,
transformers and flashmin are imported after the command line is read, so --help and argument
errors come back at once.
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
GPT2_SMALL = dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, n_positions=1024)
CPU_MODEL = dict(n_layer=4, n_head=8, n_embd=512, vocab_size=8192, n_positions=1024)
IMPLS = ("eager", "sdpa", "flashmin")

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
    p.add_argument("--model", help="local checkpoint directory (default: GPT-2 small shape, random weights)")
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
    p.add_argument("--kernel", default="auto", help="flashmin kernel (flashmin_nn.use_kernel): auto, reference, or one "
                                                    "of the CUDA kernels of flashmin_nn.list_kernels() (CUDA devices "
                                                    "only); default auto")
    p.add_argument("--layers", type=int, help="random model: number of layers")
    p.add_argument("--heads", type=int, help="random model: number of heads")
    p.add_argument("--width", type=int, help="random model: hidden size")
    p.add_argument("--vocab", type=int, help="random model: vocabulary size")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and token ids (default 0)")
    p.add_argument("--embed-scale", type=float, default=6.0,
                   help="scale of the random model's tied embeddings (default 6: decisive logits, like a trained "
                        "model's; 1 keeps GPT-2's raw initialisation)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if args.model is not None and not os.path.isdir(args.model):
        p.error(f"--model {args.model}: no such directory (a local checkpoint directory; nothing is downloaded)")
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
    defaults = dict(dtype="fp16", batch=8, seq=1024, prompt_len=128, new_tokens=256, iters=12) if cuda else \
        dict(dtype="fp32", batch=2, seq=128, prompt_len=32, new_tokens=16, iters=3)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.cpu_defaults = not cuda
    return args


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
        shape = dict(CPU_MODEL if args.cpu_defaults else GPT2_SMALL)
        for key, arg in (("n_layer", "layers"), ("n_head", "heads"), ("n_embd", "width"), ("vocab_size", "vocab")):
            if getattr(args, arg) is not None:
                shape[key] = getattr(args, arg)
        config = transformers.GPT2Config(**shape, bos_token_id=0, eos_token_id=0)
        config._attn_implementation = "sdpa"
        torch.manual_seed(args.seed)
        log(f"building a random GPT-2 {shape}")
        model = transformers.GPT2LMHeadModel(config)
        # GPT-2's initialisation (std 0.02) gives near-uniform next-token logits: at ~0.5% of
        # positions the top two differ by less than fp16 rounding, so top-1 agreement would measure
        # rounding noise, not attention. Trained GPT-2 embeddings are several times larger; scaling
        # the (tied) embeddings gives every implementation the same, more decisive model.
        with torch.no_grad():
            model.transformer.wte.weight.mul_(args.embed_scale)
        what = (f"GPT-2 {'small shape' if shape == GPT2_SMALL else 'shape'} ({shape['n_layer']} layers, "
                f"{shape['n_head']} heads, {shape['n_embd']} wide, vocab {shape['vocab_size']}), "
                f"random weights (seed {args.seed}, embeddings x{args.embed_scale:g})")
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


def generate(model, prompt, mask, new_tokens):
    out = model.generate(prompt, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                         do_sample=False, pad_token_id=0)
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


def measure(model, impl, x, args):
    """Logits (dense and left-padded) and greedy generations of one implementation."""
    log(f"{impl}: logits")
    out = dict(logits=logits(model, x["ids"]), logits_pad=logits(model, x["padded"], x["mask"]))
    log(f"{impl}: greedy generation ({args.new_tokens} tokens)")
    out["gen"] = generate(model, x["prompt"], x["prompt_ones"], args.new_tokens)
    out["gen_pad"] = generate(model, x["padded_prompt"], x["prompt_mask"], args.new_tokens)
    return out


def time_rounds(model, x, args, impls):
    """{impl: ([prefill seconds], [generation seconds])}, one entry per round (args.iters rounds).

    Every round times each implementation once, prefill then generation, and round r starts
    with impls[r % len(impls)], so each one runs first, in the middle and last equally often."""
    def prefill():
        model(x["ids"], use_cache=False, logits_to_keep=1)

    def gen():
        generate(model, x["prompt"], x["prompt_ones"], args.new_tokens)

    log("timing: warm-up")
    for impl in impls:
        set_impl(model, impl)
        prefill()
        gen()
    times = {impl: ([], []) for impl in impls}
    for r in range(args.iters):
        order = impls[r % len(impls):] + impls[:r % len(impls)]
        log(f"timing: round {r + 1}/{args.iters} ({', '.join(order)})")
        for impl in order:
            set_impl(model, impl)
            times[impl][0].append(seconds(prefill, args.device))
            times[impl][1].append(seconds(gen, args.device))
    return times


def compare(impl, results, ref, ref_pad, keep):
    """The correctness rows of `impl` (dense, then "+pad"); frees its logits, keeps its top-1."""
    r, base = results[impl], results["sdpa"]
    err, err_pad = errors(r["logits"], ref), errors(r["logits_pad"], ref_pad, keep)
    r["top1"], r["top1_pad"] = r.pop("logits").argmax(-1), r.pop("logits_pad").argmax(-1)  # (B, seq)
    dense = dict(impl=impl, max_abs_err=err[0], rel_err=err[1],
                 top1_vs_sdpa=100.0 * (r["top1"] == base["top1"]).float().mean().item(),
                 gen_agree_vs_sdpa=agree_until(r["gen"], base["gen"]))   # timings: added by run()
    padded = dict(impl=impl + " +pad", max_abs_err=err_pad[0], rel_err=err_pad[1],
                  top1_vs_sdpa=100.0 * (r["top1_pad"] == base["top1_pad"])[keep].float().mean().item(),
                  gen_agree_vs_sdpa=agree_until(r["gen_pad"], base["gen_pad"]))
    return [dense, padded]


def run(args):
    device = args.device
    torch.backends.cuda.matmul.allow_tf32 = False  # keep the fp32 reference fp32
    model, tokenizer, what = build_model(args)
    x = make_inputs(args, model, tokenizer)
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

    rows, results = [], {}
    order = ("sdpa", "eager", "flashmin")  # sdpa first: it is everyone's baseline
    with torch.no_grad(), flashmin_nn.use_kernel(args.kernel):
        for impl in order:  # correctness, one implementation at a time
            set_impl(model, impl)
            results[impl] = measure(model, impl, x, args)
            rows += compare(impl, results, ref, ref_pad, keep)
        timings = time_rounds(model, x, args, order)  # then timing, the implementations interleaved
        set_impl(model, "sdpa")
    sdpa_p, sdpa_g = timings["sdpa"]
    for row in rows:
        if not row["impl"].endswith("+pad"):
            prefill_s, gen_s = timings[row["impl"]]
            row["prefill_ms"] = 1e3 * statistics.median(prefill_s)
            row["gen_tok_s"] = args.batch * args.new_tokens / statistics.median(gen_s)
            # paired within each round: both numbers of a ratio were taken side by side
            gen_ratios = [s / t for s, t in zip(sdpa_g, gen_s)]
            row["prefill_speedup_vs_sdpa"] = statistics.median(s / t for s, t in zip(sdpa_p, prefill_s))
            row["gen_speedup_vs_sdpa"] = statistics.median(gen_ratios)
            row["gen_speedup_rounds"] = f"{min(gen_ratios):.2f}-{max(gen_ratios):.2f}"
    rows.sort(key=lambda row: (row["impl"].endswith("+pad"), IMPLS.index(row["impl"].split()[0])))

    dev_name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    header = (f"{what}\n{dev_name} | {args.dtype} | batch {args.batch}, prefill {args.seq}, "
              f"prompt {args.prompt_len} + {args.new_tokens} new tokens | flashmin kernel: {kernel_names(model, args)}"
              f" | timings: medians of {args.iters} interleaved rounds (speed-ups: of per-round ratios)"
              + ("  [CPU run: smaller defaults]" if args.cpu_defaults else ""))
    print(header)
    print(table(rows))
    if tokenizer is not None:
        for impl in IMPLS:
            print(f"{impl:>9}: {tokenizer.decode(results[impl]['gen'][0])!r}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(model=what, device=dev_name, dtype=args.dtype, batch=args.batch, seq=args.seq,
                           prompt_len=args.prompt_len, new_tokens=args.new_tokens, kernel=args.kernel,
                           transformers=transformers.__version__, torch=torch.__version__, rows=rows,
                           rounds={impl: dict(zip(("prefill_s", "gen_s"), t)) for impl, t in timings.items()}),
                      f, indent=2)
        log(f"wrote {args.json}")
    return rows


def kernel_names(model, args):
    """The forced kernel, or what "auto" picks for this model's prefill and decode calls."""
    if args.kernel != "auto":
        return args.kernel
    H = model.config.num_attention_heads
    D = getattr(model.config, "head_dim", None) or model.config.hidden_size // H
    q = torch.empty(args.batch, H, args.seq, D, device=args.device, dtype=DTYPES[args.dtype])  # (B, H, L, D)
    kv = torch.empty(args.batch, H, args.prompt_len + args.new_tokens, D, device=args.device, dtype=q.dtype)
    prefill = flashmin_nn.choose_kernel(q, q, q, is_causal=True)
    decode = flashmin_nn.choose_kernel(q[:, :, :1], kv, kv, is_causal=True)
    return f"auto (prefill: {prefill}, decode: {decode})"


def table(rows):
    cols = [("impl", "{}", "impl"), ("max_abs_err", "{:.2e}", "max|err|"), ("rel_err", "{:.2e}", "rel err"),
            ("top1_vs_sdpa", "{:.2f}", "top1=sdpa %"), ("gen_agree_vs_sdpa", "{}", "gen=sdpa tok"),
            ("prefill_ms", "{:.2f}", "prefill ms"), ("gen_tok_s", "{:.0f}", "gen tok/s"),
            ("prefill_speedup_vs_sdpa", "{:.2f}x", "prefill vs sdpa"), ("gen_speedup_vs_sdpa", "{:.2f}x", "gen vs sdpa"),
            ("gen_speedup_rounds", "{}", "(rounds)")]
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
