"""The bench's prefill cells for the per-call A/B scripts (prefill_launch_ab.py, prefill_env_ab.py):
B*N = 16384 tokens, H*D = 2048, (B, H, N, D) inputs, as `python -m flashmin_nn.bench --suite prefill`."""
import torch


def parse_cells(text):
    """"hdim:causal(0/1):N,..." -> [(hdim, causal, N)]."""
    return [(int(d), c == "1", int(n)) for d, c, n in (x.split(":") for x in text.split(","))]


def prefill_cell(D, causal, N, dtype):
    """(FLOPs, q, k, v) of one cell: 4 B H N^2 D, halved when causal; fresh normal inputs on the GPU."""
    B, H = 16384 // N, 2048 // D
    flops = 4 * B * H * N * N * D / (2 if causal else 1)
    q, k, v = (torch.randn(B, H, N, D, device="cuda", dtype=dtype) for _ in range(3))
    return flops, q, k, v
