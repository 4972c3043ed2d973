import torch, flashmin_nn as fm, time
from triton.testing import do_bench
torch.manual_seed(0)
for (H, D, L) in [(12, 64, 1024), (12, 64, 4096), (32, 128, 1024)]:
    B = 8
    q = torch.randn(B, H, 1, D, device="cuda", dtype=torch.float16)
    k, v = (torch.randn(B, H, L, D, device="cuda", dtype=torch.float16) for _ in range(2))
    f = lambda: fm.scaled_dot_product_attention(q, k, v)
    g = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v)
    with fm.use_kernel("decode"):
        f()
        torch.cuda.synchronize()
        ms_flush = do_bench(f, warmup=10, rep=40, return_mode="median")
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(200): f()
        e.record(); torch.cuda.synchronize()
        ms_loop = s.elapsed_time(e) / 200
        t0 = time.perf_counter()
        for _ in range(200): f()
        host = (time.perf_counter() - t0) / 200 * 1e3
        torch.cuda.synchronize()
    sd = do_bench(g, warmup=10, rep=40, return_mode="median")
    print(f"H={H} D={D} L={L}: fm do_bench {ms_flush*1e3:.1f} us, back-to-back {ms_loop*1e3:.1f} us, host {host*1e3:.1f} us; sdpa do_bench {sd*1e3:.1f} us")
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
    B, H, D, L = 8, 12, 64, 1024
    q = torch.randn(B, H, 1, D, device="cuda", dtype=torch.float16)
    k, v = (torch.randn(B, H, L, D, device="cuda", dtype=torch.float16) for _ in range(2))
    with fm.use_kernel("decode"):
        for _ in range(5): fm.scaled_dot_product_attention(q, k, v)
    for _ in range(5): torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=8, max_name_column_width=70))
