"""Where the GPT-2 generation timing noise comes from (device experiment, not a benchmark).

    python scripts/investigations/gen_noise.py [pairs] [conditions]     (default: 8 on,off,pinned)

Builds the example's default model (GPT-2 small shape, random weights, fp16, B=8, prompt 128,
256 new tokens) and times sdpa and flashmin generations in pairs (order alternating), under
three conditions: as the example does it; Python's garbage collector off during each timed call
(collected before it); and that plus the process pinned to one CPU. Prints, per condition, each
implementation's times, the spread of the per-pair ratios with a 95% confidence interval for
their median (order statistics), and the distribution of single generation-step times (from a
stopping criterion that stamps every step).
"""
import gc
import os
import statistics
import sys
import time

import torch
import transformers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import gpt2_infer as ex  # noqa: E402  (the example's model, inputs, switching and timing)
from paired import alternating, ratio_summary  # noqa: E402  (this folder is on the path when run as a script)


class Stamps(transformers.StoppingCriteria):
    """Records a perf_counter stamp at every generation step; never stops anything."""

    def __init__(self):
        self.t = []

    def __call__(self, input_ids, scores, **kwargs):
        self.t.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def gen_once(model, x, new_tokens, stamps, no_gc, device="cuda"):
    if no_gc:
        gc.collect()
        gc.disable()
    try:
        return ex.seconds(lambda: model.generate(
            x["prompt"], attention_mask=x["prompt_ones"], max_new_tokens=new_tokens, min_new_tokens=new_tokens,
            do_sample=False, pad_token_id=0, stopping_criteria=transformers.StoppingCriteriaList([stamps])), device)
    finally:
        if no_gc:
            gc.enable()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


CONDITIONS = {"on": "gc on", "off": "gc off", "pinned": "gc off + pinned"}


def main():
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    conds = [CONDITIONS[c] for c in (sys.argv[2] if len(sys.argv) > 2 else "on,off,pinned").split(",")]
    args = ex.parse_args([])
    model, tok, what = ex.build_model(args)
    x = ex.make_inputs(args, model, tok)
    print(what, "| B", args.batch, "| prompt", args.prompt_len, "+", args.new_tokens, flush=True)
    impls = ("sdpa", "flashmin")
    with torch.no_grad():
        for impl in impls:   # warm-up
            ex.set_impl(model, impl)
            gen_once(model, x, args.new_tokens, Stamps(), False, args.device)
        for cond in conds:
            if cond.endswith("pinned"):
                os.sched_setaffinity(0, {min(2, os.cpu_count() - 1)})
            steps = {i: [] for i in impls}

            def time_one(impl):
                ex.set_impl(model, impl)
                st = Stamps()
                t = gen_once(model, x, args.new_tokens, st, cond != "gc on", args.device)
                steps[impl] += [1e3 * (b - a) for a, b in zip(st.t, st.t[1:])]
                return t
            times = alternating(pairs, *impls, time_one)
            ratios = [s / f for s, f in zip(times["sdpa"], times["flashmin"])]
            print(f"== {cond}: {pairs} pairs")
            for impl in impls:
                t = times[impl]
                print(f"  {impl:9s} s: " + " ".join(f"{v:.3f}" for v in t)
                      + f" | median {statistics.median(t):.3f} cv {statistics.pstdev(t) / statistics.mean(t):.3f}")
                s = steps[impl]
                print(f"  {impl:9s} step ms: median {statistics.median(s):.2f} p10 {pct(s, .1):.2f} "
                      f"p90 {pct(s, .9):.2f} p99 {pct(s, .99):.2f} max {max(s):.2f}")
            print("  ratio sdpa/flashmin per pair: " + " ".join(f"{r:.3f}" for r in ratios)
                  + f" | median {statistics.median(ratios):.3f} range {min(ratios):.3f}-{max(ratios):.3f}")
            _, lo, hi, wins = ratio_summary(ratios)
            print(f"  flashmin faster in {wins} of {len(ratios)} pairs; 95% interval of the "
                  f"median ratio {lo:.3f}-{hi:.3f}", flush=True)


if __name__ == "__main__":
    main()
