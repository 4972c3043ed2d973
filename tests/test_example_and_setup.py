"""The GPT-2 example's command line and the README's set-up instructions and claims about torch."""
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

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
