"""How fast can the GPU read a 64k-key decode cache at all? (an investigation; the bench's decode suite
keeps a read ceiling of its own, flashmin_nn/bench/readers.py)

    python scripts/investigations/read_ceiling.py [B H S D [pairs]]   (default 8 32 65536 128 40: the 8.6 GB bench cell)

Times, on the same K and V (B, S, H, D) fp16 as the decode bench's largest cell, each read once:
  - a Triton sum over K and V as flat contiguous arrays (the best access pattern there is),
  - a Triton sum per (batch, head) that walks its head's 256-byte rows at the cache's row stride
    (the decode kernels' pattern: one block per head, keys in order),
  - torch.sum over both (PyTorch's reduction),
  - flashmin's decode kernel and SDPA's default (cuDNN) on a one-token query,
  - two hand-written CUDA readers that do nothing but read (compiled here with load_inline):
    16-byte `ld.global.nc` loads with 2-8 in flight per thread over a grid-stride sweep, and TMA
    bulk copies (`cp.async.bulk`, 8-32 KB per copy) into a ring of shared buffers completed on
    mbarriers, with chunk c going to block c % grid (the blocks sweep one window through memory),
  - the same bulk copies in the decode kernels' pattern: K and V each cut into B x H (or 2 B x H)
    contiguous streams, one block per stream reading it front to back, so that hundreds of
    separate places in DRAM are read at once.
Then the decode bench's cell itself on the bench's layout ((B, H, S, D) contiguous): flashmin
against SDPA's default in `pairs` alternating pairs, with a distribution-free 95% interval for the
median ratio.
Timed with the benchmark's timer (flashmin_nn.bench.timing.make_timer: triton's do_bench, median, the
L2 flushed by a 256 MB memset before each call).
"""
import statistics
import sys

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch.utils.cpp_extension import load_inline

import flashmin_nn as fm
from flashmin_nn.bench.timing import make_timer
from paired import alternating, ratio_summary   # this folder is on the path when run as a script


@triton.jit
def flat_sum(x_ptr, out_ptr, n, per_prog, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    start = pid.to(tl.int64) * per_prog   # 64-bit: the cell is 2^31 elements
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for off in range(start, start + per_prog, BLOCK):
        idx = off + tl.arange(0, BLOCK)
        acc += tl.load(x_ptr + idx, mask=idx < n, other=0.0).to(tl.float32)
    tl.store(out_ptr + pid, tl.sum(acc, axis=0))


@triton.jit
def head_sum(x_ptr, out_ptr, S, H, D: tl.constexpr, ROWS: tl.constexpr):
    pid = tl.program_id(0)           # b * H + h
    b, h = pid // H, pid % H
    base = x_ptr + b.to(tl.int64) * S * H * D + h * D
    acc = tl.zeros([ROWS, D], dtype=tl.float32)
    r = tl.arange(0, ROWS)[:, None]
    c = tl.arange(0, D)[None, :]
    for s in range(0, S, ROWS):
        acc += tl.load(base + (s + r).to(tl.int64) * H * D + c).to(tl.float32)
    tl.store(out_ptr + pid, tl.sum(acc))


CUDA_READERS = r"""
// Pure readers for the read-ceiling experiment: no math, only DRAM -> SM traffic.
#include <cstdint>
#include <cstddef>

__device__ __forceinline__ uint4 ldg_stream(const uint4* p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
}

// Grid-stride over 16-byte words, U loads in flight per thread: the whole grid sweeps the array
// front to back, one 512-byte run per warp and load.
template <int U>
__global__ void __launch_bounds__(256) ldg_read(const uint4* __restrict__ x, size_t n16, unsigned* out) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    unsigned acc = 0;
    for (size_t base = (size_t)blockIdx.x * blockDim.x + threadIdx.x; base < n16; base += stride * U) {
        uint4 r[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const size_t i = base + (size_t)u * stride;
            r[u] = i < n16 ? ldg_stream(x + i) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) acc ^= r[u].x ^ r[u].y ^ r[u].z ^ r[u].w;
    }
    if (acc == 0x9e3779b9u) out[0] = acc;   // keeps the loads alive
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// TMA bulk copies (cp.async.bulk, 1-D) of CHUNK bytes into a ring of STAGES shared buffers,
// completed on mbarriers. Two access patterns:
// - streams == 0, a sweep: chunk c of x goes to block c % gridDim.x, so the blocks running at
//   one time read neighbouring chunks (y is not read);
// - streams > 0, the decode kernels' pattern: x and y each cut into `streams` contiguous streams
//   (one per (batch, head) in the bench's (B, H, S, D) layout), block b reading stream b % streams
//   of x (b < streams) or of y front to back: 2 x streams places in DRAM read at once.
template <int CHUNK, int STAGES>
__global__ void __launch_bounds__(256) bulk_read(const char* __restrict__ x, const char* __restrict__ y, size_t nbytes,
                                                 int streams, unsigned* out) {
    extern __shared__ __align__(128) unsigned char ring[];
    __shared__ __align__(8) uint64_t bar[STAGES];
    const size_t nchunks = nbytes / CHUNK;
    const char* first;   // this block's chunks: first + i * step, i < count
    size_t step, count;
    if (streams == 0) {
        first = x + (size_t)blockIdx.x * CHUNK;
        step = (size_t)gridDim.x * CHUNK;
        count = blockIdx.x < nchunks ? (nchunks - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
    } else {
        count = nchunks / streams;
        first = (blockIdx.x < (unsigned)streams ? x : y) + (size_t)(blockIdx.x % streams) * count * CHUNK;
        step = CHUNK;
    }
    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; ++s)
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(smem_u32(&bar[s])));
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    auto issue = [&](int s, size_t i) {   // chunk i of this block into slot s
        const uint32_t b = smem_u32(&bar[s]);
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(b), "r"(CHUNK) : "memory");
        asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                     :: "r"(smem_u32(ring + (size_t)s * CHUNK)), "l"(first + i * step), "r"(CHUNK), "r"(b) : "memory");
    };
    if (threadIdx.x == 0)
        for (int s = 0; s < STAGES && (size_t)s < count; ++s) issue(s, s);
    unsigned acc = 0;
    for (size_t i = 0; i < count; ++i) {
        const int s = (int)(i % STAGES);
        const uint32_t parity = (uint32_t)((i / STAGES) & 1);
        uint32_t done = 0;
        do {
            asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                         : "=r"(done) : "r"(smem_u32(&bar[s])), "r"(parity) : "memory");
        } while (!done);
        // Touch one word per 128 bytes of the chunk (the data has arrived; reading it all would
        // only time shared memory).
        const unsigned* w = reinterpret_cast<const unsigned*>(ring + (size_t)s * CHUNK);
        for (int j = threadIdx.x; j < CHUNK / 128; j += blockDim.x) acc ^= w[j * 32];
        __syncthreads();
        if (threadIdx.x == 0 && i + STAGES < count) issue(s, i + STAGES);
    }
    if (acc == 0x9e3779b9u) out[0] = acc;
}

#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>

void read_ldg(torch::Tensor x, int64_t unroll, int64_t blocks, torch::Tensor out) {
    const auto* p = reinterpret_cast<const uint4*>(x.data_ptr());
    const size_t n16 = (size_t)x.numel() * x.element_size() / 16;
    auto stream = c10::cuda::getCurrentCUDAStream();
    auto* o = reinterpret_cast<unsigned*>(out.data_ptr());
    if (unroll == 2) ldg_read<2><<<blocks, 256, 0, stream>>>(p, n16, o);
    else if (unroll == 4) ldg_read<4><<<blocks, 256, 0, stream>>>(p, n16, o);
    else ldg_read<8><<<blocks, 256, 0, stream>>>(p, n16, o);
}

template <int CHUNK, int STAGES>
static void launch_bulk(const torch::Tensor& x, const torch::Tensor& y, int streams, int64_t blocks, torch::Tensor& out) {
    const size_t nbytes = (size_t)x.numel() * x.element_size();
    TORCH_CHECK(nbytes % CHUNK == 0 && (streams == 0 || (nbytes / CHUNK) % streams == 0),
                "size not a multiple of the chunk (x streams)");
    const int smem = CHUNK * STAGES;
    cudaFuncSetAttribute(bulk_read<CHUNK, STAGES>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    bulk_read<CHUNK, STAGES><<<blocks, 256, smem, c10::cuda::getCurrentCUDAStream()>>>(
        reinterpret_cast<const char*>(x.data_ptr()), reinterpret_cast<const char*>(y.data_ptr()), nbytes, streams,
        reinterpret_cast<unsigned*>(out.data_ptr()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// The sweep: `blocks` blocks over x; chunk 8192 or 16384 (4 stages) or 32768 (3 stages).
void read_bulk(torch::Tensor x, int64_t chunk, int64_t blocks, torch::Tensor out) {
    if (chunk == 8192) launch_bulk<8192, 4>(x, x, 0, blocks, out);
    else if (chunk == 16384) launch_bulk<16384, 4>(x, x, 0, blocks, out);
    else launch_bulk<32768, 3>(x, x, 0, blocks, out);
}

// The streams: one block per stream of x and of y; chunk 8192 or 16384 (4 stages).
void read_bulk_streams(torch::Tensor x, torch::Tensor y, int64_t chunk, int64_t streams, torch::Tensor out) {
    if (chunk == 8192) launch_bulk<8192, 4>(x, y, (int)streams, 2 * streams, out);
    else launch_bulk<16384, 4>(x, y, (int)streams, 2 * streams, out);
}
"""


def cuda_readers():
    """Build the hand-written readers (about a minute on a cold cache)."""
    return load_inline(
        name="flashmin_read_ceiling",
        cpp_sources="void read_ldg(torch::Tensor x, int64_t unroll, int64_t blocks, torch::Tensor out);\n"
                    "void read_bulk(torch::Tensor x, int64_t chunk, int64_t blocks, torch::Tensor out);\n"
                    "void read_bulk_streams(torch::Tensor x, torch::Tensor y, int64_t chunk, int64_t streams, torch::Tensor out);",
        cuda_sources=CUDA_READERS,
        functions=["read_ldg", "read_bulk", "read_bulk_streams"],
        extra_cuda_cflags=["-O3", "-gencode", "arch=compute_90,code=sm_90"],
        verbose=False,
    )


def reader_rates(B, H, S, D, timed):
    """{reader: seconds} for one read of K and V (B, S, H, D) fp16 by every reader above."""
    k = torch.randn(B, S, H, D, device="cuda", dtype=torch.float16)
    v = torch.randn_like(k)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    n = k.numel()
    res = {}
    for progs in (sms, 4 * sms, 16 * sms):
        BLOCK = 8192
        per = triton.cdiv(triton.cdiv(n, progs), BLOCK) * BLOCK
        out = torch.empty(progs, device="cuda", dtype=torch.float32)

        def run_flat(progs=progs, per=per, out=out):
            flat_sum[(progs,)](k, out, n, per, BLOCK=BLOCK, num_warps=8)
            flat_sum[(progs,)](v, out, n, per, BLOCK=BLOCK, num_warps=8)
        res[f"triton flat sum, {progs} programs x2"] = timed(run_flat)
    outh = torch.empty(B * H, device="cuda", dtype=torch.float32)
    for rows in (16, 32):
        def run_head(rows=rows):
            head_sum[(B * H,)](k, outh, S, H, D=D, ROWS=rows, num_warps=4)
            head_sum[(B * H,)](v, outh, S, H, D=D, ROWS=rows, num_warps=4)
        res[f"triton per-head sum, {rows} rows/iter x2"] = timed(run_head)
    res["torch.sum(k) + torch.sum(v)"] = timed(lambda: (k.sum(dtype=torch.float32), v.sum(dtype=torch.float32)))
    ext = cuda_readers()
    word = torch.zeros(1, device="cuda", dtype=torch.int32)
    for unroll in (2, 4, 8):
        for per_sm in (4, 8):
            res[f"CUDA ld.global.nc x{unroll} in flight, {per_sm} blocks/SM"] = timed(
                lambda u=unroll, g=per_sm * sms: (ext.read_ldg(k, u, g, word), ext.read_ldg(v, u, g, word)))
    for chunk, per_sm in ((8192, 1), (8192, 2), (8192, 4), (16384, 1), (16384, 2), (16384, 3), (32768, 1), (32768, 2)):
        stages = 3 if chunk == 32768 else 4   # as read_bulk instantiates them
        res[f"CUDA TMA bulk {chunk // 1024} KB x{stages} stages, {per_sm} blocks/SM"] = timed(
            lambda c=chunk, g=per_sm * sms: (ext.read_bulk(k, c, g, word), ext.read_bulk(v, c, g, word)))
    for chunk in (8192, 16384):
        for streams in (B * H, 2 * B * H):
            res[f"CUDA TMA bulk {chunk // 1024} KB x4, {streams} streams of K and of V"] = timed(
                lambda c=chunk, n=streams: ext.read_bulk_streams(k, v, c, n, word))
    q = torch.randn(B, 1, H, D, device="cuda", dtype=torch.float16)
    res["flashmin decode (flash_attn_with_kvcache)"] = timed(lambda: fm.flash_attn_with_kvcache(q, k, v))
    qs, ks, vs = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    res["SDPA default"] = timed(lambda: F.scaled_dot_product_attention(qs, ks, vs))
    return res


def main():
    B, H, S, D = (int(a) for a in sys.argv[1:5]) if len(sys.argv) > 4 else (8, 32, 65536, 128)
    nbytes = 2 * B * S * H * D * 2
    timer, _ = make_timer(torch.device("cuda"), 10, 60)

    def timed(fn):
        return timer(fn) * 1e-3   # ms -> s

    print(f"{torch.cuda.get_device_name()}: B={B} H={H} S={S} D={D}, {nbytes / 1e9:.3f} GB read")
    for name, t in reader_rates(B, H, S, D, timed).items():
        print(f"  {name:55s} {t * 1e6:9.1f} us  {nbytes / t / 1e9:7.1f} GB/s")
    torch.cuda.empty_cache()   # the (B, S, H, D) cache is gone with reader_rates

    # The bench's decode cell itself, many times: flashmin (auto) against SDPA's default on the
    # bench's layout, (B, H, S, D) contiguous, in alternating order, one timer median each.
    pairs = int(sys.argv[5]) if len(sys.argv) > 5 else 40
    qb = torch.randn(B, H, 1, D, device="cuda", dtype=torch.float16)
    kb = torch.randn(B, H, S, D, device="cuda", dtype=torch.float16)
    vb = torch.randn_like(kb)
    impls = {"flashmin": lambda: fm.attention(qb, kb, vb), "sdpa": lambda: F.scaled_dot_product_attention(qb, kb, vb)}
    times = alternating(pairs, "flashmin", "sdpa", lambda name: timed(impls[name]))
    ratios = [s_ / f_ for f_, s_ in zip(times["flashmin"], times["sdpa"])]   # > 1: flashmin faster
    median, lo, hi, wins = ratio_summary(ratios)
    print(f"bench cell, {pairs} alternating pairs (sdpa time / flashmin time): median {median:.5f}x, "
          f"95% interval {lo:.5f}-{hi:.5f}x, mean {statistics.fmean(ratios):.5f}x, range {min(ratios):.5f}-{max(ratios):.5f}x; "
          f"flashmin faster in {wins} of {pairs}")
    for name, ts in times.items():
        print(f"  {name:8s} median {statistics.median(ts) * 1e6:8.1f} us  {nbytes / statistics.median(ts) / 1e9:7.1f} GB/s")


if __name__ == "__main__":
    main()
