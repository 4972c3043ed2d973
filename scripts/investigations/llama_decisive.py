"""How decisive is the random Llama of examples/gpt2_infer.py --arch llama, and what makes it so?

    python scripts/investigations/llama_decisive.py [--configs 6:1,6:g,1:g,20:g] [--new-tokens 256]

Builds the example's random Llama (TinyLlama-1.1B's shape, fp16 on CUDA) once, then for each
config E:R scales its embeddings and LM head by E (as --embed-scale does) and the residual
branches' output projections (o_proj, down_proj) by R ("g": 1 / sqrt(2 * layers), GPT-2's own
initialisation of its output projections; a number: that factor). For each config it prints the
top-1 agreement with sdpa over the prefill positions (dense and left-padded, the example's
inputs) of eager and flashmin, the median top-1 / top-2 logit gap against the logits' own noise
(flashmin - sdpa), the share of attention in the last layer's residual update, and the greedy
generations' tokens equal to sdpa's before the first divergence (min over the batch, DynamicCache).
"""
import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import gpt2_infer as ex  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="6:1,6:g,1:g,20:g")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--budget", type=float, default=150, help="seconds; no generation after this")
    a = ap.parse_args()
    args = ex.parse_args(["--arch", "llama", "--embed-scale", "1", "--new-tokens", str(a.new_tokens)])
    ex.import_libraries()
    t_start = time.perf_counter()
    model, tokenizer, what = ex.build_model(args)
    x = ex.make_inputs(args, model, tokenizer)
    L = model.config.num_hidden_layers
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    branches = [m.self_attn.o_proj.weight for m in model.model.layers] + [m.mlp.down_proj.weight for m in model.model.layers]
    orig = {id(w): w.detach().float().clone() for w in [emb, head] + branches}
    keep = x["mask"].bool()
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"# {what}; {dev}; B={args.batch}, prefill {args.seq}, "
          f"prompt {args.prompt_len} + {a.new_tokens} new tokens")
    print("| E | R | eager top-1 = sdpa | flashmin top-1 = sdpa | padded: eager / flashmin | median gap / noise | "
          "attention share, last layer | tokens equal: dense / padded |")
    print("|---:|---:|---:|---:|---|---:|---:|---|")
    for spec in a.configs.split(","):
        e_s, r_s = spec.split(":")
        E = float(e_s)
        R = 1 / math.sqrt(2 * L) if r_s == "g" else float(r_s)
        with torch.no_grad():
            for w, f in [(emb, E), (head, E)] + [(w, R) for w in branches]:
                w.copy_((orig[id(w)] * f).to(w.dtype))
            res = {}
            for impl in ("sdpa", "eager", "flashmin"):
                ex.set_impl(model, impl)
                res[impl] = (ex.logits(model, x["ids"]).float(), ex.logits(model, x["padded"], x["mask"]).float())
            s, s_pad = res["sdpa"]
            agree = {i: (res[i][0].argmax(-1) == s.argmax(-1)).float().mean().item() for i in ("eager", "flashmin")}
            agree_pad = {i: (res[i][1].argmax(-1) == s_pad.argmax(-1))[keep].float().mean().item()
                         for i in ("eager", "flashmin")}
            top2 = s.topk(2, dim=-1).values
            gap = (top2[..., 0] - top2[..., 1]).median().item()
            noise = (res["flashmin"][0] - s).abs().median().item()
            # the last layer's attention output against its whole residual update (attention + MLP)
            ex.set_impl(model, "sdpa")
            grabbed = {}
            last = model.model.layers[-1]
            hooks = [last.self_attn.register_forward_hook(lambda m, i, o: grabbed.__setitem__("attn", o[0].float())),
                     last.mlp.register_forward_hook(lambda m, i, o: grabbed.__setitem__("mlp", o.float()))]
            model(x["ids"][:1, :256], use_cache=False)
            for hk in hooks:
                hk.remove()
            share = (grabbed["attn"].norm() / (grabbed["attn"].norm() + grabbed["mlp"].norm())).item()
            tokens = "-"
            if time.perf_counter() - t_start < a.budget:
                gens = {}
                for impl in ("sdpa", "flashmin"):
                    ex.set_impl(model, impl)
                    gens[impl] = (ex.generate(model, x["prompt"], x["prompt_ones"], a.new_tokens),
                                  ex.generate(model, x["padded_prompt"], x["prompt_mask"], a.new_tokens))
                tokens = (f"{ex.agree_until(gens['flashmin'][0], gens['sdpa'][0])} / "
                          f"{ex.agree_until(gens['flashmin'][1], gens['sdpa'][1])}")
        print(f"| {E:g} | {R:.3g} | {agree['eager']:.4%} | {agree['flashmin']:.4%} | "
              f"{agree_pad['eager']:.4%} / {agree_pad['flashmin']:.4%} | {gap / max(noise, 1e-30):.1f} | "
              f"{share:.2f} | {tokens} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
