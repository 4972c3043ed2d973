"""The benchmark package on the CPU: its conventions, its suites as declared, and a tiny run."""
import json

import torch

from flashmin_nn.bench import cli, measures, report, suites


def test_conventions():
    assert measures.attention_flops(2, 4, 128, 64, causal=False) == 4 * 2 * 4 * 128 * 128 * 64
    assert measures.attention_flops(2, 4, 128, 64, causal=True) == 2 * 2 * 4 * 128 * 128 * 64
    assert measures.decode_bytes(8, 8, 1024, 128, 2) == 2 * 8 * 8 * 1024 * 128 * 2
    assert cli.ints("128,1k,16k") == [128, 1024, 16384]
    assert cli.names(" prefill, prefill_sm90 ,") == ["prefill", "prefill_sm90"]


def test_suites_as_declared():
    p = suites.PREFILL
    assert p.hdims == (64, 128, 256) and p.causal == (False, True) and (p.tokens, p.hidden) == (16384, 2048)
    assert p.seqlens == (128, 256, 512, 1024, 2048, 4096, 8192, 16384)
    shapes = {(s.B, s.Hq, s.Hkv, s.D): s.lens for s in suites.DECODE_SHAPES}
    full = (1024, 4096, 16384, 65536)
    assert shapes == {(8, 32, 32, 128): full, (8, 12, 12, 64): full, (8, 32, 8, 128): full,
                      (1, 32, 32, 128): (4096, 32768), (64, 32, 32, 128): (4096, 32768)}
    _, args = cli.parse_args(["--kvlens", "2k"])
    assert {L for _, L in suites.decode_cells(args)} == {2048}


def test_reference_matches_sdpa():
    q, k, v = (torch.randn(2, 4, 9, 16, dtype=torch.float64) for _ in range(3))
    ref = measures.Reference(q, k, v, causal=True, full=True)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert ref.error(out) < 1e-12
    assert ref.error(out * float("nan")) == float("inf")


def test_tiny_run_on_cpu(tmp_path):
    """prefill and decode on the CPU at toy sizes: every cell ran or says why not, never 0."""
    path = tmp_path / "b.json"
    rc = cli.main(["--device", "cpu", "--suite", "prefill,decode", "--hdims", "64", "--seqlens", "32",
                   "--tokens", "64", "--kvlens", "32", "--warmup", "0", "--rep", "1",
                   "--fm-kernels", "reference,no_such_kernel", "--json", str(path)])
    assert rc == 0
    data = json.loads(path.read_text())
    assert data["meta"]["matmul"]["tflops"] > 0 and data["meta"]["fm_kernels"] == ["reference", "no_such_kernel"]
    for suite in ("prefill", "decode"):
        rows = data["suites"][suite]
        assert rows
        for row in rows:
            res = row["results"]
            assert res["fm"]["status"] == "ok" and not res["fm"]["bad"]
            assert res["fm-reference"]["status"] == "ok"
            assert res["fm-no_such_kernel"]["status"] == "n/a" and "no_such_kernel" in res["fm-no_such_kernel"]["reason"]
    assert all(r["config"]["floor_ms"] > 0 for r in data["suites"]["prefill"])
    assert all(report.read_ceiling(r["results"]) for r in data["suites"]["decode"])
    assert len(data["suites"]["decode"]) == len(suites.DECODE_SHAPES)
