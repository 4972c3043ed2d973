// flashmin.h: the plain parameter struct every kernel sees.
//
// No torch types below the binding (csrc/flashmin_api.cpp): every .cu file compiles with nvcc
// alone. Strides are in elements; the last dimension of q, k, v and o is contiguous.
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

namespace flashmin {

enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// What attn_mask holds. Bool: nonzero byte = attend. Additive: added to the scaled score.
enum class MaskKind : int { kNone = 0, kBool = 1, kAddF32 = 2, kAddF16 = 3, kAddBF16 = 4 };

struct AttnParams {
    // Tensors. q: (B, Hq, L, D), k/v: (B, Hkv, S, D), o: (B, Hq, L, D), lse: (B, Hq, L) contiguous.
    const void* q;
    const void* k;
    const void* v;
    void* o;
    float* lse;
    const void* mask;  // (B, Hq, L, S) with any strides (0 for broadcast dims); null if none
    const int32_t* seqlens_k;  // per-batch key count, clamped to [0, len_k] where read; null: every batch has len_k
    // Packed sequences (flash_attn_varlen_func), null otherwise: int32 (batch + 1,) row offsets.
    // Sequence b holds rows [cu_seqlens_q[b], cu_seqlens_q[b + 1]) of q, o and lse, and rows
    // [cu_seqlens_k[b], cu_seqlens_k[b + 1]) of k and v; the tensors have one batch row (the batch
    // strides are 0), len_q / len_k are the longest sequence's lengths (the grid's size; the causal
    // and window offsets are those of a len_q x len_k sequence and move with each sequence's
    // lengths, as with seqlens_k).
    const int32_t* cu_seqlens_q;
    const int32_t* cu_seqlens_k;
    int total_q, total_k;   // the row counts of q and of k / v with packed sequences
    // A paged KV cache (flash_attn_with_kvcache's block_table; decode kernel), null otherwise:
    // key j of batch row b is row j % page_size of page block_table[b * block_table_stride +
    // j / page_size], pages k_page_stride (v_page_stride) elements apart (k/v_batch_stride are
    // then 0); page_size is 1 << page_shift (16 or more). len_k is block_table's width in keys.
    const int32_t* block_table;
    int64_t block_table_stride, k_page_stride, v_page_stride;
    int page_shift;
    // flash_attn_with_kvcache's cache_batch_idx and cache_leftpad (null if not given): batch row b
    // reads row kv_batch_idx[b] of k / v (kv_batch of them), and its keys start at row
    // k_leftpad[b] (seqlens_k[b] of them from there).
    const int32_t* kv_batch_idx;
    const int32_t* k_leftpad;
    int kv_batch;

    int64_t q_batch_stride, q_head_stride, q_row_stride;
    int64_t k_batch_stride, k_head_stride, k_row_stride;
    int64_t v_batch_stride, v_head_stride, v_row_stride;
    int64_t o_batch_stride, o_head_stride, o_row_stride;
    int64_t mask_batch_stride, mask_head_stride, mask_row_stride, mask_col_stride;

    int batch, heads_q, heads_kv, len_q, len_k, head_dim;
    int group;  // heads_q / heads_kv: query head h reads kv head h / group

    float scale;       // multiplies q.k
    float scale_log2;  // scale * log2(e): the kernels work in base 2 (exp2 is one instruction)

    // Causal: query i sees key j iff j <= i + causal_offset. With seqlens_k, the offset is
    // taken per batch as causal_offset + (seqlens_k[b] - len_k) (bottom-right stays bottom-right).
    // A local window's right side is this same limit: the binding sets is_causal and moves
    // causal_offset to the diagonal plus window_right (or keeps the diagonal's when causal too).
    bool is_causal;
    int causal_offset;

    // The diagonal of query row i is key i + diag_offset (+ seqlens_k[b] - len_k): the anchor of
    // ALiBi's distance and of the window's left side. has_window_left: query i sees key j only if
    // j >= i + diag_offset - window_left; key tiles wholly below every row's window are skipped.
    int diag_offset;
    bool has_window_left;
    int window_left;

    // Score modifications, applied to the scaled score x = s * scale in this order, before
    // attn_mask (the general path, common/softmax.cuh): softcap > 0: x -> softcap * tanh(x / softcap);
    // alibi_slopes (fp32, slope of (b, h) at b * alibi_batch_stride + h): x -> x - slope * |j - d_i|.
    float softcap;
    const float* alibi_slopes;
    int64_t alibi_batch_stride;
    // Attention sinks (fp32 (Hq,), natural-log units, null if none): one more logit per query head
    // in the softmax's denominator, with no value. rows_are_heads (decode's GQA packing): the block's
    // rows are the query heads h * rows_are_heads + r of kv head h, all at query position 0 (0: rows
    // are query positions of head h).
    const float* sinks;
    int rows_are_heads;

    // A bool attn_mask's visible key range per kMaskRangeRows query rows (csrc/common/mask_ranges.cu),
    // null if not computed: (first, last) of (b, mask head hm, group g) at
    // 2 * ((b * mask_range_heads + hm) * ceil(len_q / kMaskRangeRows) + g); mask_range_heads is
    // 1 when the mask is the same for every head (then hm = 0), else heads_q.
    int* mask_ranges;
    int mask_range_heads;

    MaskKind mask_kind;
    DType dtype;

    // Split-KV (decode): the key range is cut into num_splits parts, each written as fp32 partial
    // O (num_splits, B, Hq, L, kHeadDim) and lse (num_splits, B, Hq, L), then merged. With
    // split_sweep the splits of one head are launched side by side and interleave their tiles
    // (split s reads tile groups s, s + num_splits, ...), so that the blocks running at one time
    // read neighbouring memory (csrc/decode/decode_plan.cu).
    int num_splits;
    bool split_sweep;
    // Decode: run the configuration of which two blocks share an SM (DecodeConfigPair,
    // csrc/decode/decode_config.h) instead of the default one (DecodeConfig).
    bool decode_pair;
    float* o_accum;
    float* lse_accum;

    // Device facts, read by the binding once per device.
    int num_sms;
    int max_smem_per_block;  // opt-in limit (cudaDevAttrMaxSharedMemoryPerBlockOptin)
    int smem_per_sm;         // cudaDevAttrMaxSharedMemoryPerMultiprocessor
    bool dependent_launch;   // sm90+: a second kernel may start while the first one finishes (PDL)
    bool kv_evict_first;     // decode: K/V loads marked evict-first in L2 (a small cache, read once)
};

constexpr int kMaskRangeRows = 64;

// Each kernel family exposes a launcher that returns the launch status (cudaGetLastError).
cudaError_t run_minimal_fwd(const AttnParams& params, cudaStream_t stream);   // csrc/minimal/
cudaError_t run_prefill_fwd(const AttnParams& params, cudaStream_t stream);   // csrc/prefill_sm80/
cudaError_t run_prefill_sm90(const AttnParams& params, cudaStream_t stream);  // csrc/prefill_sm90/ (sm_90a)
// Decode: the split-KV decode kernel (csrc/decode/decode_kernel.cuh) plus the merge of its
// partials when params.num_splits > 1; params as the host planner left them (csrc/decode/decode_plan.h).
cudaError_t run_decode_fwd(const AttnParams& params, cudaStream_t stream);     // csrc/decode/
// The mask ranges above, into params.mask_ranges (before a prefill kernel, on the same stream).
cudaError_t run_mask_ranges(const AttnParams& params, cudaStream_t stream);   // csrc/common/

}  // namespace flashmin
