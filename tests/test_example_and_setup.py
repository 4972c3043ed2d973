"""The GPT-2 example's command line and the README's set-up instructions and claims about torch."""
import json
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
import transformers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, "examples", "gpt2_infer.py")
README = os.path.join(REPO, "README.md")


def _run_example(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, EXAMPLE, *args], capture_output=True, text=True, env=env, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# examples/gpt2_infer.py
# ---------------------------------------------------------------------------------------------
def test_help_imports_neither_torch_nor_transformers():
    code = (f"import runpy, sys\nsys.argv = [{EXAMPLE!r}, '--help']\n"
            f"try:\n    runpy.run_path({EXAMPLE!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'flashmin_nn') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout, proc.stdout[-2000:]
    # every option says what it does
    usage = proc.stdout[proc.stdout.index("options:"):]
    for opt in ("--device", "--seed", "--kernel", "--model"):
        line = next(ln for ln in usage.splitlines() if ln.strip().startswith(opt))
        text = line.split(opt, 1)[1].strip()
        assert len(text.split()) >= 3, f"{opt} has no help text: {line!r}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_kernel_on_a_cpu_machine_is_a_clear_error():
    # the README's `--kernel minimal` command, on a machine without CUDA: a usage error, no traceback
    proc = _run_example("--kernel", "minimal", "--layers", "1", "--heads", "2", "--width", "16", "--vocab", "32",
                        "--seq", "8", "--prompt-len", "4", "--new-tokens", "2", "--iters", "1")
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "--kernel minimal" in proc.stderr and "CUDA" in proc.stderr, proc.stderr[-2000:]


def test_every_cuda_kernel_is_refused_for_a_cpu_run(capsys):
    sys.path.insert(0, os.path.dirname(EXAMPLE))
    try:
        import gpt2_infer
    finally:
        sys.path.pop(0)
    import flashmin_nn

    for kernel in flashmin_nn.backends.CUDA_KERNELS + tuple(flashmin_nn.backends.KERNEL_ALIASES):
        with pytest.raises(SystemExit) as info:
            gpt2_infer.parse_args(["--device", "cpu", "--kernel", kernel])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert f"--kernel {kernel}" in err and "CUDA" in err, err
    args = gpt2_infer.parse_args(["--device", "cpu", "--kernel", "reference"])
    assert args.kernel == "reference" and args.cpu_defaults


def test_missing_model_directory_is_a_clear_error(tmp_path):
    missing = str(tmp_path / "nonexistent")
    proc = _run_example("--model", missing)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "no such directory" in proc.stderr and missing in proc.stderr, proc.stderr[-2000:]


# Tiny shapes for the CPU runs below: a Llama of 4 heads over 2 key/value heads by default.
TINY = ("--device", "cpu", "--layers", "1", "--width", "64", "--heads", "4", "--vocab", "256", "--seq", "16",
        "--prompt-len", "8", "--new-tokens", "4", "--iters", "1")


def _example_module():
    sys.path.insert(0, os.path.dirname(EXAMPLE))
    try:
        import gpt2_infer
    finally:
        sys.path.pop(0)
    return gpt2_infer


def _option_help(usage, opt):
    """The help text of `opt` in --help's output (argparse may put it on the lines below)."""
    lines = usage.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith(opt + " ") or ln.strip() == opt
                 or ln.strip().startswith(opt + ","))
    block = [lines[start].strip()[len(opt):]]
    for ln in lines[start + 1:]:
        if ln.startswith("  -"):   # the next option (its help's own lines are indented further)
            break
        block.append(ln.strip())
    return " ".join(block)


def test_gap_at_split_reads_the_reference_logits_at_each_rows_first_divergence():
    ex = _example_module()
    g = torch.Generator().manual_seed(3)
    ref_logits = torch.randn(3, 5, 11, generator=g)
    ref = ref_logits.argmax(-1)                       # (3, 5): the reference's greedy tokens
    gen = ref.clone()
    assert ex.gap_at_split(gen, ref, ref_logits) is None
    gen[0, 2] = (ref[0, 2] + 1) % 11                  # row 0 leaves at step 2 (and again later)
    gen[0, 4] = (ref[0, 4] + 3) % 11
    gen[2, 1] = (ref[2, 1] + 5) % 11                  # row 2 at step 1; row 1 never
    gaps = [ref_logits[0, 2, ref[0, 2]] - ref_logits[0, 2, gen[0, 2]],
            ref_logits[2, 1, ref[2, 1]] - ref_logits[2, 1, gen[2, 1]]]
    assert min(gaps) > 0
    assert ex.gap_at_split(gen, ref, ref_logits) == pytest.approx(max(gaps).item())


def test_teacher_logits_are_the_generation_steps_logits():
    # one forward along prompt + generated tokens gives, at each step, the logits greedy decoding
    # chose that token from (left-padded rows too: positions count the real tokens)
    ex = _example_module()
    args = ex.parse_args(list(TINY) + ["--arch", "llama"])
    model, tokenizer, _ = ex.build_model(args)
    x = ex.make_inputs(args, model, tokenizer)
    with torch.no_grad():
        for prompt, mask in ((x["prompt"], x["prompt_ones"]), (x["padded_prompt"], x["prompt_mask"])):
            out = model.generate(prompt, attention_mask=mask, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                                 pad_token_id=0, output_logits=True, return_dict_in_generate=True)
            gen = out.sequences[:, prompt.shape[1]:]
            teacher = ex.teacher_logits(model, prompt, mask, gen)
            assert teacher.shape == (prompt.shape[0], 4, model.config.vocab_size)
            torch.testing.assert_close(teacher, torch.stack(out.logits, 1), rtol=1e-4, atol=1e-4)
            assert torch.equal(teacher.argmax(-1), gen)


def test_help_lists_the_new_options():
    proc = _run_example("--help", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    usage = proc.stdout[proc.stdout.index("options:"):]
    for opt, must in (("--arch", "llama"), ("--kv-heads", "key/value"), ("--cache", "static"),
                      ("--cache-len", "slots"), ("--compile", "torch.compile")):
        text = _option_help(usage, opt)
        assert must in text and len(text.split()) >= 4, f"{opt}: {text!r}"
    assert "--no-compile" in usage and "{dynamic,static,both}" in usage and "{gpt2,llama}" in usage


def test_llama_with_both_caches_agrees_with_sdpa(tmp_path):
    # GQA through every path: prefill (dense, left-padded), DynamicCache and StaticCache decoding
    out = tmp_path / "llama.json"
    proc = _run_example(*TINY, "--arch", "llama", "--cache", "both", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = proc.stdout.splitlines()[0]
    assert header.startswith("Llama shape (1 layers, 4 heads, 2 key/value heads, 64 wide"), header
    assert "StaticCache of 256 slots, not compiled" in proc.stdout, proc.stdout
    result = json.loads(out.read_text())
    assert result["arch"] == "llama" and result["shape"]["kv_heads"] == 2 and result["compile"] is False
    rows = {row["impl"]: row for row in result["rows"]}
    for impl in ("flashmin", "flashmin +pad"):
        assert rows[impl]["rel_err"] <= 1e-5, rows[impl]
        assert rows[impl]["top1_vs_sdpa"] == 100.0 and rows[impl]["gen_agree_vs_sdpa"] == 4, rows[impl]
    static = {row["impl"]: row for row in result["static_rows"]}
    assert set(static) == {"sdpa", "flashmin", "sdpa +pad", "flashmin +pad"}
    for row in static.values():   # static-cache tokens: flashmin's = sdpa's, and each = its DynamicCache ones
        assert row["gen_agree_vs_sdpa"] == 4 and row["gen_agree_vs_dynamic"] == 4, row
    assert static["flashmin"]["gen_tok_s"] > 0 and len(result["static_rounds"]["flashmin"]["gen_s"]) == 1


def test_static_cache_only(tmp_path):
    out = tmp_path / "static.json"
    proc = _run_example(*TINY, "--cache", "static", "--cache-len", "12", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("GPT-2 shape (1 layers"), proc.stdout
    result = json.loads(out.read_text())
    assert result["cache"] == "static" and result["cache_len"] == 12
    # no DynamicCache generation: the first table keeps its logits and prefill columns only
    assert all("gen_agree_vs_sdpa" not in row and "gen_tok_s" not in row for row in result["rows"])
    assert all(set(t) == {"prefill_s"} for t in result["rounds"].values())
    static = {row["impl"]: row for row in result["static_rows"]}
    for impl in ("flashmin", "flashmin +pad"):
        assert static[impl]["gen_agree_vs_sdpa"] == 4 and "gen_agree_vs_dynamic" not in static[impl]


def test_static_cache_matches_dynamic_cache_tokens():
    # what the static table's "gen=dyn" column checks, here on a Llama whose tokens do not repeat
    ex = _example_module()
    args = ex.parse_args([*TINY, "--arch", "llama", "--cache", "static", "--new-tokens", "8", "--cache-len", "64"])
    model, tokenizer, _ = ex.build_model(args)
    x = ex.make_inputs(args, model, tokenizer)
    options = ex.static_options(args)
    assert options["max_cache_len"] == 64 and options["disable_compile"] is True
    with torch.no_grad():
        for impl in ("sdpa", "flashmin"):
            ex.set_impl(model, impl)
            for prompt, mask in ((x["prompt"], x["prompt_ones"]), (x["padded_prompt"], x["prompt_mask"])):
                dynamic = ex.generate(model, prompt, mask, 8)
                static = ex.generate(model, prompt, mask, 8, **options)
                assert torch.equal(static, dynamic), (impl, static, dynamic)
                assert len(set(dynamic[0].tolist())) > 1   # a real sequence, not one token repeated
        out = model.generate(x["prompt"], attention_mask=x["prompt_ones"], max_new_tokens=2, do_sample=False,
                             return_dict_in_generate=True, **options)
    cache = out.cache if hasattr(out, "cache") else out.past_key_values   # named past_key_values before 5.x
    assert cache.layers[0].keys.shape[2] == 64   # the cache has --cache-len slots, not prompt + new tokens


def test_cache_len_below_prompt_plus_new_tokens_is_a_clear_error(capsys):
    ex = _example_module()
    for cache in ("static", "both"):
        with pytest.raises(SystemExit) as info:
            ex.parse_args([*TINY, "--cache", cache, "--cache-len", "11"])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "--cache-len 11" in err and "8 + 4 = 12" in err, err
    assert ex.parse_args([*TINY, "--cache", "static", "--cache-len", "12"]).cache_len == 12
    for bad, says in ((["--compile"], "--cache static"), (["--cache-len", "64"], "--cache static"),
                      (["--kv-heads", "2"], "--arch llama"), (["--arch", "llama", "--kv-heads", "3"], "--kv-heads 3")):
        with pytest.raises(SystemExit):
            ex.parse_args([*TINY, *bad])
        assert says in capsys.readouterr().err, bad


def test_defaults_on_cpu_and_on_cuda(monkeypatch):
    ex = _example_module()
    cpu = ex.parse_args(["--device", "cpu"])
    assert (cpu.cache, cpu.compile, cpu.cache_len, cpu.arch) == ("dynamic", False, 256, "gpt2")
    llama = ex.parse_args(["--device", "cpu", "--arch", "llama"]).shape
    assert llama == dict(layers=4, heads=8, kv_heads=2, width=512, ffn=1024, vocab=8192, positions=2048)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)   # parse_args only: nothing runs
    gpu = ex.parse_args(["--device", "cuda", "--arch", "llama"])
    assert (gpu.cache, gpu.compile, gpu.cache_len, gpu.dtype) == ("both", True, 2048, "fp16")   # both tables
    assert gpu.shape == dict(layers=22, heads=32, kv_heads=4, width=2048, ffn=5632, vocab=32000, positions=2048)
    both = ex.parse_args(["--device", "cuda", "--cache", "both"])
    assert (both.cache, both.compile) == ("both", True)           # on CUDA a static table is compiled
    assert ex.parse_args(["--device", "cuda", "--cache", "both", "--no-compile"]).compile is False


def test_compile_flag_compiles_the_static_generation(monkeypatch, tmp_path):
    # torch.compile replaced by the identity: checks the wiring in seconds (a real compile: below)
    ex = _example_module()
    compiled = []

    def fake_compile(fn, **kwargs):
        compiled.append((fn, kwargs))
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    out = tmp_path / "compiled.json"
    args = ex.parse_args([*TINY, "--arch", "llama", "--cache", "static", "--compile", "--json", str(out)])
    rows, static_rows = ex.run(args)
    assert len(compiled) == 1, compiled   # once, by generate, for the model's forward (its __call__)
    fn, kwargs = compiled[0]
    assert isinstance(getattr(fn, "__self__", None), transformers.PreTrainedModel)
    assert fn.__func__ is torch.nn.Module.__call__
    assert kwargs["mode"] == "default"
    assert all(row["gen_agree_vs_sdpa"] == 4 for row in static_rows)
    assert json.loads(out.read_text())["compile"] is True


@pytest.mark.slow
def test_compiled_static_generation_runs(tmp_path):
    # a real torch.compile on the CPU (about 35 s here with a cold inductor cache)
    out = tmp_path / "compiled.json"
    proc = _run_example(*TINY, "--arch", "llama", "--cache", "static", "--compile", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["graph_breaks"]["flashmin"] == 0, result["graph_breaks"]
    assert all(row["gen_agree_vs_sdpa"] == 4 for row in result["static_rows"]), result["static_rows"]
    assert "forward compiled by torch.compile" in proc.stdout


# ---------------------------------------------------------------------------------------------
# README
# ---------------------------------------------------------------------------------------------
def _setup_section():
    text = open(README, encoding="utf-8").read()
    start = text.index("## Set-up")
    return text[start:text.index("\n## ", start + 1)]


def test_readme_prerequisites_come_before_the_commands():
    section = _setup_section()
    first_command = section.index("pip install -e")
    for needed in ("pip install torch", "setuptools", "wheel"):
        assert needed in section, f"the set-up section does not mention {needed!r}"
        assert section.index(needed) < first_command, f"{needed!r} is only mentioned after the install commands"
    assert "bdist_wheel" in section       # the error a missing wheel gives, so a reader recognises it


def test_readme_states_torchs_fully_masked_rows_as_measured():
    # torch's math backend and its CPU flash backend return zeros for a query row whose keys are all
    # masked (what flashmin does too); the README must not claim NaN for PyTorch without saying where
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = torch.randn(1, 1, 3, 8), torch.randn(1, 1, 5, 8), torch.randn(1, 1, 5, 8)
    mask = torch.ones(1, 1, 3, 5, dtype=torch.bool)
    mask[..., 1, :] = False
    for backend in (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION):
        with sdpa_kernel(backend):
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert (out[..., 1, :] == 0).all(), backend
    text = open(README, encoding="utf-8").read()
    assert not re.search(r"PyTorch's SDPA gives NaN", text)
    assert "torch 2.13" in text          # the statement names the version it was checked with
