// common/block_info.cuh: where one (batch, query head) of a call lives, and which keys it sees.
//
// Every kernel (minimal, sm80 prefill, decode) starts from the same facts: the number of keys its
// batch row holds (seqlens_k[b], or len_k), the causal offset that goes with that length, where
// the keys its query rows can see end, and the base pointers of its q, k, v and o rows (query head
// h reads kv head h / group). They are derived here, the same way for all of them. Each is a
// member function rather than a field, computed where the kernel first needs it.
#pragma once

#include <cstdint>

#include "flashmin.h"

namespace flashmin {

// The keys one batch row holds, and the limits of what each query row sees among them.
struct KeyRange {
    int len_k;           // seqlens_k[b] when given, else len_k
    // Causal (or a window's right side): query i sees key j iff j <= i + causal_offset. With
    // seqlens_k the offsets move with the batch row's length (+ seqlens_k[b] - len_k):
    // bottom-right stays bottom-right.
    int causal_offset;
    int diag_offset;     // query i's diagonal key: i + diag_offset (ALiBi's anchor)
    int lower_offset;    // with p.has_window_left: query i sees key j only if j >= i + lower_offset

    // The range of a batch row holding len_k keys (no seqlens_k, no packed sequences): the call's
    // own offsets, unmoved. BlockInfo::keys moves them by the row's lengths; the Hopper launcher's
    // tile costs take them as they are.
    __host__ __device__ __forceinline__ static KeyRange unmoved(const AttnParams& p) {
        return KeyRange{p.len_k, p.causal_offset, p.diag_offset, p.diag_offset - p.window_left};
    }

    // One past the last key that any of the query rows [row0, row0 + rows) can see. Key tiles at
    // or past it are skipped, not masked (with causal attention, the tiles above the diagonal).
    // end and begin also run on the host (the Hopper launcher's tile costs).
    __host__ __device__ __forceinline__ int end(const AttnParams& p, int row0, int rows) const {
        return p.is_causal ? max(0, min(len_k, row0 + rows + causal_offset)) : len_k;
    }
    // The first key that any of the query rows from row0 on can see (0 without a window's left
    // side): key tiles wholly before it are skipped.
    __host__ __device__ __forceinline__ int begin(const AttnParams& p, int row0) const {
        return p.has_window_left ? max(0, min(len_k, row0 + lower_offset)) : 0;
    }
};

// Narrows the key tiles [t_begin, t_end) (of kBlockN keys) of query rows [row0, row0 + rows) of
// (b, h) to the keys their bool mask lets some row see (AttnParams::mask_ranges, when computed).
__device__ __forceinline__ void narrow_by_mask(const AttnParams& p, int b, int h, int row0, int rows, int kBlockN,
                                               int& t_begin, int& t_end) {
    if (p.mask_ranges == nullptr) return;
    const int groups = (p.len_q + kMaskRangeRows - 1) / kMaskRangeRows;
    const int hm = p.mask_range_heads == 1 ? 0 : h;
    const int g_end = min(groups, (row0 + rows + kMaskRangeRows - 1) / kMaskRangeRows);
    int lo = 1 << 30, hi = -1;
    for (int g = row0 / kMaskRangeRows; g < g_end; ++g) {
        const int* r = p.mask_ranges + 2 * ((static_cast<int64_t>(b) * p.mask_range_heads + hm) * groups + g);
        lo = min(lo, r[0]);
        hi = max(hi, r[1]);
    }
    t_end = min(t_end, (hi + kBlockN) / kBlockN);   // hi = -1 (no key seen): no tiles
    t_begin = min(t_end, max(t_begin, lo / kBlockN));
}

// Batch row b's key count given seqlens_k: clamped to [0, len_k] here, where it is read (the
// callers pass the tensor unchecked, so a value past the keys cannot make a kernel read past them).
__device__ __forceinline__ int seqlens_k_of(const AttnParams& p, int b) {
    return min(max(p.seqlens_k[b], 0), p.len_k);
}

struct BlockInfo {
    int b, h, hk;   // batch, query head, and the kv head it reads
    int kb;         // the batch row of k / v it reads: kv_batch_idx[b], else b
    // Packed sequences (AttnParams::cu_seqlens_q): sequence b's first row in q / o / lse and in
    // k / v, and its query count; with k_leftpad, the first key row of batch row b; otherwise 0,
    // 0 and len_q.
    int q_start, k_start, len_q;
    bool packed;

    // general: the kernel's general path (kGeneral), where packed sequences, kv_batch_idx and
    // k_leftpad are read (general_path sends every such call there); the plain path, compiled
    // with general = false, carries none of it.
    __device__ __forceinline__ BlockInfo(const AttnParams& p, int b_, int h_, bool general = true)
        : b(b_), h(h_), hk(h_ / p.group), kb(b_), q_start(0), k_start(0), len_q(p.len_q),
          packed(general && p.cu_seqlens_q != nullptr) {
        if (packed) {
            q_start = p.cu_seqlens_q[b];
            len_q = p.cu_seqlens_q[b + 1] - q_start;
            k_start = p.cu_seqlens_k[b];
        } else if (general) {
            if (p.kv_batch_idx) kb = p.kv_batch_idx[b];
            if (p.k_leftpad) k_start = p.k_leftpad[b];
        }
    }

    __device__ __forceinline__ KeyRange keys(const AttnParams& p) const {
        KeyRange r = KeyRange::unmoved(p);
        int shift = 0;
        if (packed) {   // a len_q x len_k sequence's offsets, moved by this one's lengths
            r.len_k = p.cu_seqlens_k[b + 1] - k_start;
            shift = (r.len_k - p.len_k) - (len_q - p.len_q);
        } else if (p.seqlens_k) {
            r.len_k = seqlens_k_of(p, b);
            shift = r.len_k - p.len_k;
        }
        r.causal_offset += shift;
        r.diag_offset += shift;
        r.lower_offset += shift;
        return r;
    }

    // Row r of this (batch, head)'s q at q<T>(p) + r * p.q_row_stride; k, v, o likewise.
    template <typename T>
    __device__ __forceinline__ const T* q(const AttnParams& p) const {
        return static_cast<const T*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride + static_cast<int64_t>(q_start) * p.q_row_stride;
    }
    template <typename T>
    __device__ __forceinline__ const T* k(const AttnParams& p) const {
        // A paged cache: k_batch_stride is 0 and pages are found per tile (decode).
        return static_cast<const T*>(p.k) + kb * p.k_batch_stride + hk * p.k_head_stride + static_cast<int64_t>(k_start) * p.k_row_stride;
    }
    template <typename T>
    __device__ __forceinline__ const T* v(const AttnParams& p) const {
        return static_cast<const T*>(p.v) + kb * p.v_batch_stride + hk * p.v_head_stride + static_cast<int64_t>(k_start) * p.v_row_stride;
    }
    template <typename T>
    __device__ __forceinline__ T* o(const AttnParams& p) const {
        return static_cast<T*>(p.o) + b * p.o_batch_stride + h * p.o_head_stride + static_cast<int64_t>(q_start) * p.o_row_stride;
    }
    // The index of query row 0 of this (batch, head) in the (B, Hq, L) lse layout; with packed
    // sequences, of row q_start of head h in the (1, Hq, total_q) one.
    __device__ __forceinline__ int64_t lse_row0(const AttnParams& p) const {
        if (packed) return static_cast<int64_t>(h) * p.total_q + q_start;
        return (static_cast<int64_t>(b) * p.heads_q + h) * p.len_q;
    }
};

}  // namespace flashmin
