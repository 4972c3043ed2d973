// attention_minimal.cu: the teaching kernel.
//
// FlashAttention forward (Dao et al. 2022, Algorithm 1) in the loop order of FlashAttention-2:
// one thread block per (query tile i, head, batch), one thread per query row, an inner loop over
// key/value tiles j. Paper notation: Br x Bc tiles, Qi/Kj/Vj/Oi tiles in shared memory, running
// row max m and row sum l, Tr = ceil(L / Br) query tiles, Tc = ceil(S / Bc) key tiles.
//
// It descends from flash-attention-minimal and keeps its shape, with what that kernel lacked:
// any length (tiles are zero-padded, out-of-range keys masked), causal attention with whole tiles
// above the diagonal skipped, masks, GQA, per-batch key lengths, head dims up to 256, the query
// tile Br chosen at run time from the head dim, the grid size and the shared-memory limit; and
// flash_attn's options: a local window (tiles before it skipped too), softcap, ALiBi, and
// attention sinks.
// Arithmetic is fp32 whatever the input dtype, in natural base with an accurate expf: this kernel
// is also the fp32 reference-grade path, and folding log2(e) into the scale (what the fast kernels
// do) adds a systematic rounding of the scale that large scores amplify.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "flashmin.h"
#include "common/block_info.cuh"
#include "common/launch.cuh"

namespace flashmin {
namespace {

constexpr int Bc = 32;            // keys per tile: a thread keeps its Bc scores in registers
constexpr int kMaxBr = 128;       // rows per query tile, at most (one thread each)

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// attn_mask at (b, h, i, j): 0 or -inf for a bool mask, the bias for an additive one.
__device__ float mask_value(const AttnParams& p, int b, int h, int i, int j) {
    const int64_t at = b * p.mask_batch_stride + h * p.mask_head_stride +
                       i * p.mask_row_stride + j * p.mask_col_stride;
    switch (p.mask_kind) {
        case MaskKind::kBool: return static_cast<const uint8_t*>(p.mask)[at] ? 0.f : -INFINITY;
        case MaskKind::kAddF32: return static_cast<const float*>(p.mask)[at];
        case MaskKind::kAddF16: return __half2float(static_cast<const __half*>(p.mask)[at]);
        case MaskKind::kAddBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p.mask)[at]);
        default: return 0.f;
    }
}

// Copy rows [row0, row0 + rows) of a (len, D) matrix into shared memory as fp32, zero-padded past
// len and up to Dp columns, so the math below needs no bounds checks.
template <typename T>
__device__ void load_tile(float* tile, const T* src, int64_t row_stride, int row0, int rows,
                          int len, int D, int Dp, int Ds) {
    for (int idx = threadIdx.x; idx < rows * Dp; idx += blockDim.x) {
        const int r = idx / Dp, d = idx % Dp;
        const bool inside = row0 + r < len && d < D;
        tile[r * Ds + d] = inside ? to_float(src[(row0 + r) * row_stride + d]) : 0.f;
    }
}

// Dp = D rounded up to 4 (float4 math); Ds = Dp + 4, the shared-memory row stride: the extra
// 4 floats put consecutive threads' rows of Qi and Oi in different banks.
template <typename T>
__global__ void __launch_bounds__(kMaxBr) minimal_fwd_kernel(const AttnParams p, int Br, int Dp, int Ds) {
    extern __shared__ float smem[];
    float* Qi = smem;             // Br x Ds
    float* Oi = Qi + Br * Ds;     // Br x Ds, each thread touches only its own row
    float* Kj = Oi + Br * Ds;     // Bc x Ds
    float* Vj = Kj + Bc * Ds;     // Bc x Ds

    const int b = blockIdx.z, h = blockIdx.y;
    const int r = threadIdx.x;                 // my row in the tile
    const int row0 = blockIdx.x * Br;
    const int i = row0 + r;                    // my query index
    const BlockInfo blk(p, b, h);              // GQA: blk.hk is the kv head of this query head
    const T* q = blk.q<T>(p);
    const T* k = blk.k<T>(p);
    const T* v = blk.v<T>(p);
    const KeyRange keys = blk.keys(p);         // keys of this batch row, and the limits of each row
    const int N = keys.len_k, offset = keys.causal_offset;
    const float slope = p.alibi_slopes ? p.alibi_slopes[b * p.alibi_batch_stride + h] : 0.f;

    // Step 1: load Qi; Oi = 0; m = -inf, l = 0.
    load_tile(Qi, q, p.q_row_stride, row0, Br, p.len_q, p.head_dim, Dp, Ds);
    for (int d = 0; d < Dp; ++d) Oi[r * Ds + d] = 0.f;
    float m = -INFINITY, l = 0.f;

    // Causal: the tile's last row sees keys up to row0 + Br - 1 + offset; later tiles are skipped.
    // A window's left side: the tile's first row sees keys from row0 + lower_offset; earlier
    // tiles are skipped.
    const int n_end = keys.end(p, row0, Br);
    const int n_begin = keys.begin(p, row0) / Bc * Bc;

    for (int j0 = n_begin; j0 < n_end; j0 += Bc) {
        // Step 2: load Kj, Vj (after everyone is done with the previous ones).
        __syncthreads();
        load_tile(Kj, k, p.k_row_stride, j0, Bc, N, p.head_dim, Dp, Ds);
        load_tile(Vj, v, p.v_row_stride, j0, Bc, N, p.head_dim, Dp, Ds);
        __syncthreads();

        // Step 3: my row of S_ij = Qi Kj^T, four columns of d at a time, summed per 32-column chunk
        // and then across chunks (two short rounding chains instead of one long one).
        float s[Bc];
#pragma unroll
        for (int c = 0; c < Bc; ++c) s[c] = 0.f;
        for (int d0 = 0; d0 < Dp; d0 += 32) {
            float t[Bc];
#pragma unroll
            for (int c = 0; c < Bc; ++c) t[c] = 0.f;
            for (int d = d0; d < min(d0 + 32, Dp); d += 4) {
                const float4 q4 = *reinterpret_cast<const float4*>(&Qi[r * Ds + d]);
#pragma unroll
                for (int c = 0; c < Bc; ++c) {
                    const float4 k4 = *reinterpret_cast<const float4*>(&Kj[c * Ds + d]);  // same address for the whole warp: a broadcast
                    t[c] += q4.x * k4.x + q4.y * k4.y + q4.z * k4.z + q4.w * k4.w;
                }
            }
#pragma unroll
            for (int c = 0; c < Bc; ++c) s[c] += t[c];
        }

        // Step 4: scale (then softcap, ALiBi), mask, and this tile's row max m_ij.
        float m_ij = -INFINITY;
#pragma unroll
        for (int c = 0; c < Bc; ++c) {
            const int j = j0 + c;
            float x = s[c] * p.scale;
            if (p.softcap > 0.f) x = p.softcap * tanhf(x / p.softcap);
            if (p.alibi_slopes) x -= slope * fabsf(static_cast<float>(j - i - keys.diag_offset));
            if (j >= N || (p.is_causal && j > i + offset) || (p.has_window_left && j < i + keys.lower_offset)) x = -INFINITY;
            else if (p.mask_kind != MaskKind::kNone && i < p.len_q) x += mask_value(p, b, h, i, j);
            s[c] = x;
            m_ij = fmaxf(m_ij, x);
        }

        // Step 5: m_new = max(m, m_ij); P_ij = exp(S_ij - m_new); l = exp(m - m_new) l + rowsum(P_ij).
        const float m_new = fmaxf(m, m_ij);
        const float m_ref = m_new == -INFINITY ? 0.f : m_new;  // nothing visible yet: P = 0, not NaN
        const float alpha = expf(m - m_ref);
        float l_ij = 0.f;
#pragma unroll
        for (int c = 0; c < Bc; ++c) { s[c] = expf(s[c] - m_ref); l_ij += s[c]; }
        l = alpha * l + l_ij;
        m = m_new;

        // Step 6: Oi = diag(alpha) Oi + P_ij Vj (the tile's sum first, then one add: shorter
        // rounding chains than adding key by key into Oi).
        for (int d = 0; d < Dp; d += 4) {
            float4 pv = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
            for (int c = 0; c < Bc; ++c) {
                const float4 v4 = *reinterpret_cast<const float4*>(&Vj[c * Ds + d]);
                pv.x += s[c] * v4.x; pv.y += s[c] * v4.y; pv.z += s[c] * v4.z; pv.w += s[c] * v4.w;
            }
            float4 o = *reinterpret_cast<float4*>(&Oi[r * Ds + d]);
            o.x = o.x * alpha + pv.x; o.y = o.y * alpha + pv.y; o.z = o.z * alpha + pv.z; o.w = o.w * alpha + pv.w;
            *reinterpret_cast<float4*>(&Oi[r * Ds + d]) = o;
        }
    }

    // Step 7: O_i = diag(l)^-1 Oi and lse = m + log(l). An attention sink joins l first, as one
    // more logit with no value (m and l moved to the larger of the two maxima). A row that saw no
    // key (l == 0) gets zeros and lse = -inf (the sink, with one).
    if (p.sinks) {
        const float sink = p.sinks[h];
        const float m_old = l > 0.f ? m : -INFINITY;
        const float top = fmaxf(m_old, sink);
        if (top != -INFINITY) {
            const float keep = m_old == -INFINITY ? 0.f : expf(m_old - top);
            for (int d = 0; d < Dp; ++d) Oi[r * Ds + d] *= keep;
            l = l * keep + expf(sink - top);
            m = top;
        }
    }
    if (i < p.len_q) {
        const float inv_l = l > 0.f ? 1.f / l : 0.f;
        T* o = blk.o<T>(p) + i * p.o_row_stride;
        for (int d = 0; d < p.head_dim; ++d) o[d] = from_float<T>(Oi[r * Ds + d] * inv_l);
        p.lse[blk.lse_row0(p) + i] = l > 0.f ? m + logf(l) : -INFINITY;
    }
}

size_t smem_bytes(int Br, int Ds) { return sizeof(float) * static_cast<size_t>(2 * Br + 2 * Bc) * Ds; }

// The query tile: 64 rows by default; 32 when a grid of 64-row tiles would leave SMs idle or the
// queries are few; smaller still only if shared memory demands it.
int choose_Br(const AttnParams& p, int Ds) {
    const long tiles64 = static_cast<long>(p.batch) * p.heads_q * ((p.len_q + 63) / 64);
    int Br = (p.len_q <= 32 || tiles64 < 2L * p.num_sms) ? 32 : 64;
    while (Br > 32 && smem_bytes(Br, Ds) > static_cast<size_t>(p.max_smem_per_block)) Br /= 2;
    return Br;
}

template <typename T>
cudaError_t launch(const AttnParams& p, cudaStream_t stream) {
    const int Dp = (p.head_dim + 3) / 4 * 4, Ds = Dp + 4;
    const int Br = choose_Br(p, Ds);
    const size_t smem = smem_bytes(Br, Ds);
    if (smem > static_cast<size_t>(p.max_smem_per_block)) return cudaErrorInvalidConfiguration;
    // Above 48 KB the kernel must opt in, once per device (common/launch.cuh): to the device's
    // limit, since Br and the head dim make the size differ from call to call.
    if (smem > 48 * 1024) {
        const cudaError_t err = opt_in_smem<minimal_fwd_kernel<T>>(p.max_smem_per_block);
        if (err != cudaSuccess) return err;
    }
    const dim3 grid((p.len_q + Br - 1) / Br, p.heads_q, p.batch);  // (Tr, H, B)
    minimal_fwd_kernel<T><<<grid, Br, smem, stream>>>(p, Br, Dp, Ds);
    return cudaGetLastError();
}

}  // namespace

cudaError_t run_minimal_fwd(const AttnParams& p, cudaStream_t stream) {
    switch (p.dtype) {
        case DType::kFloat32: return launch<float>(p, stream);
        case DType::kFloat16: return launch<__half>(p, stream);
        case DType::kBFloat16: return launch<__nv_bfloat16>(p, stream);
    }
    return cudaErrorInvalidValue;
}

}  // namespace flashmin
