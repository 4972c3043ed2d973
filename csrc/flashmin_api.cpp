// flashmin_api.cpp: the binding. Every check, the output allocation and the kernel dispatch live
// here; the kernels below see only the AttnParams struct of flashmin.h.
//
// The Python layer (flashmin_nn/_checks.py) validates the public API's arguments first with the
// same messages; these checks guard what the kernels assume, for anyone calling _C directly.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include "flashmin.h"
#include "decode/decode_plan.h"

namespace flashmin {
namespace {

// Error messages are built from strings only: numbers, shapes, devices and pointers go through
// txt() (std::to_string and snprintf, which need no locale) instead of being streamed. On the
// H200 machine's image (2026-12-01) streaming an integer into a TORCH_CHECK message inside this
// extension crashed the process: its _C.so carries a weak copy of std::ostream's integer
// insertion, and the number formatting it reaches is not the process's (docs/results/
// 2026-12-01-h200-437e53b/README.md). String insertion needs no locale facet and works.
std::string txt(int64_t v) { return std::to_string(v); }
std::string txt(c10::IntArrayRef a) {
    std::string r = "[";
    for (size_t i = 0; i < a.size(); ++i) r += (i ? ", " : "") + std::to_string(a[i]);
    return r + "]";
}
std::string txt(const c10::Device& d) { return d.str(); }
std::string txt(const void* ptr) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%p", ptr);
    return buf;
}
std::string txt(at::ScalarType t) { return c10::toString(t); }
std::string txt_f(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v);
    return buf;
}

// The CUDA kernels by the names (and aliases) of flashmin_nn/backends.py's KERNEL_SPECS, whose
// limits the checks below restate for anyone calling the op directly.
enum class Kernel { kMinimal, kPrefill, kDecode, kPrefillSm90 };

// Whether this build holds sm_90a code (the Hopper prefill kernel): the build defines
// FLASHMIN_SM90A when its targets include compute capability 9.0 (flashmin_nn/_build_config.py).
#ifdef FLASHMIN_SM90A
constexpr bool kBuiltSm90a = true;
#else
constexpr bool kBuiltSm90a = false;
#endif

Kernel kernel_from_name(c10::string_view name) {
    if (name == "minimal") return Kernel::kMinimal;
    if (name == "prefill" || name == "tensor_core") return Kernel::kPrefill;
    if (name == "decode") return Kernel::kDecode;
    if (name == "prefill_sm90" || name == "hopper") return Kernel::kPrefillSm90;
    TORCH_CHECK(false, "flashmin: kernel='", std::string(name), "' is not a CUDA kernel of this build (minimal, prefill or tensor_core, decode, prefill_sm90 or hopper)");
    return Kernel::kMinimal;
}

// The tensor-core kernels (prefill, decode, prefill_sm90) move 16-byte chunks: every row must
// start on a 16-byte boundary.
void check_tensor_core(const at::Tensor& t, const char* name, const char* kernel) {
    TORCH_CHECK(t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16,
                "the ", kernel, " kernel takes float16 or bfloat16; got ", name, ".dtype=", txt(t.scalar_type()));
    TORCH_CHECK(t.size(3) % 8 == 0, "the ", kernel, " kernel needs a head dim that is a multiple of 8; got ", name, ".size(-1)=", txt(t.size(3)));
    TORCH_CHECK(reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0 && t.stride(0) % 8 == 0 && t.stride(1) % 8 == 0 && t.stride(2) % 8 == 0,
                "the ", kernel, " kernel needs 16-byte aligned rows; got ", name, ".stride()=", txt(t.strides()), " at address ", txt(t.data_ptr()));
}

DType dtype_of(const at::Tensor& t) {
    switch (t.scalar_type()) {
        case at::kFloat: return DType::kFloat32;
        case at::kHalf: return DType::kFloat16;
        case at::kBFloat16: return DType::kBFloat16;
        default: TORCH_CHECK(false, "flashmin CUDA kernels take float16, bfloat16 or float32; got q.dtype=", txt(t.scalar_type()));
    }
    return DType::kFloat32;
}

void check_qkv(const at::Tensor& t, const char* name, const at::Tensor& q) {
    TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor; got ", name, ".device=", txt(t.device()));
    TORCH_CHECK(t.device() == q.device(), name, ".device=", txt(t.device()), " must equal q.device=", txt(q.device()));
    TORCH_CHECK(t.dim() == 4, name, " must have 4 dims (B, H, L, D); got ", name, ".dim()=", txt(t.dim()));
    TORCH_CHECK(t.scalar_type() == q.scalar_type(), name, ".dtype=", txt(t.scalar_type()), " must equal q.dtype=", txt(q.scalar_type()));
    TORCH_CHECK(t.stride(3) == 1 || t.size(3) == 1, name, ".stride(-1)=", txt(t.stride(3)), " must be 1 (last dim contiguous)");
}

// Per-device facts the kernels size themselves by, read once per device.
struct DeviceFacts { int num_sms = 0, max_smem = 0, smem_per_sm = 0, cc_major = 0, l2_bytes = 0; };

const DeviceFacts& device_facts(int device) {
    static DeviceFacts facts[64];
    TORCH_CHECK(device >= 0 && device < 64, "flashmin supports device indices below 64; got ", txt(device));
    DeviceFacts& f = facts[device];
    if (f.num_sms == 0) {
        C10_CUDA_CHECK(cudaDeviceGetAttribute(&f.max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
        C10_CUDA_CHECK(cudaDeviceGetAttribute(&f.smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
        C10_CUDA_CHECK(cudaDeviceGetAttribute(&f.cc_major, cudaDevAttrComputeCapabilityMajor, device));
        C10_CUDA_CHECK(cudaDeviceGetAttribute(&f.l2_bytes, cudaDevAttrL2CacheSize, device));
        C10_CUDA_CHECK(cudaDeviceGetAttribute(&f.num_sms, cudaDevAttrMultiProcessorCount, device));
    }
    return f;
}

}  // namespace

// CUDA implementation of torch.ops.flashmin.attention_fwd (schema in flashmin_nn/ops.py):
// (q, k, v, attn_mask, seqlens_k, scale, is_causal, causal_offset, kernel, window_left,
// window_right, softcap, alibi_slopes, sinks, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
// max_seqlen_k, block_table, kv_batch_idx, k_leftpad) -> (out, lse). The options (a local window
// around the diagonal, logit softcapping, ALiBi, attention sinks) are fused in every CUDA kernel;
// packed sequences (cu_seqlens_*: q (1, Hq, total_q, D), k/v (1, Hkv, total_k, D), sequence b in
// rows cu_seqlens[b] .. cu_seqlens[b + 1], the longest max_seqlen_q x max_seqlen_k; causal_offset
// is that of a max_seqlen_q x max_seqlen_k sequence and moves with each one's lengths) run in the
// prefill kernels; out rows past the last sequence are 0, their lse -inf. A paged cache
// (block_table) runs in the decode and sm80 prefill kernels; kv_batch_idx and k_leftpad in every
// kernel.
// q: (B, Hq, L, D), k/v: (B, Hkv, S, D) with stride(-1) == 1; attn_mask: None or (B, Hq, L, S)
// (broadcast dims may have stride 0). out: (B, Hq, L, D) laid out as (B, L, Hq, D); lse: (B, Hq, L) fp32.
std::tuple<at::Tensor, at::Tensor> attention_fwd_cuda(
        const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
        const c10::optional<at::Tensor>& attn_mask, const c10::optional<at::Tensor>& seqlens_k,
        double scale, bool is_causal, int64_t causal_offset, c10::string_view kernel_name,
        int64_t window_left, int64_t window_right, double softcap,
        const c10::optional<at::Tensor>& alibi_slopes, const c10::optional<at::Tensor>& sinks,
        const c10::optional<at::Tensor>& cu_seqlens_q, const c10::optional<at::Tensor>& cu_seqlens_k,
        int64_t max_seqlen_q, int64_t max_seqlen_k, const c10::optional<at::Tensor>& block_table,
        const c10::optional<at::Tensor>& kv_batch_idx, const c10::optional<at::Tensor>& k_leftpad) {
    const Kernel kernel = kernel_from_name(kernel_name);
    check_qkv(q, "q", q);
    check_qkv(k, "k", q);
    check_qkv(v, "v", q);
    const DType dtype = dtype_of(q);
    const int64_t B = q.size(0), Hq = q.size(1), L = q.size(2), D = q.size(3);
    // A paged cache: k and v are (num_blocks, Hkv, page_size, D) views of the pages, block_table
    // int32 (B, max_blocks) names each batch row's pages; the row sees max_blocks * page_size keys
    // (seqlens_k: its first seqlens_k[b]). Read by the decode kernel, and by the sm80 prefill
    // kernel for longer queries (chunked prefill).
    const bool paged = block_table.has_value();
    int page_shift = 0;
    if (paged) {
        const at::Tensor& bt = *block_table;
        TORCH_CHECK(bt.device() == q.device() && bt.scalar_type() == at::kInt && bt.dim() == 2 && bt.size(0) == B &&
                    (bt.stride(1) == 1 || bt.size(1) <= 1),
                    "block_table must be an int32 tensor of shape (B, max_blocks)=(", txt(B), ", n) with contiguous rows on ",
                    txt(q.device()), "; got shape ", txt(bt.sizes()), ", dtype ", txt(bt.scalar_type()), ", device ", txt(bt.device()));
        const int64_t P = k.size(2);
        while ((int64_t{1} << page_shift) < P) ++page_shift;
        TORCH_CHECK(P >= 16 && (int64_t{1} << page_shift) == P, "a paged cache in the CUDA kernels needs a power-of-two page size "
                    "of at least 16; got page_block_size=", txt(P));
        TORCH_CHECK(kernel == Kernel::kDecode || kernel == Kernel::kPrefill,
                    "a paged cache runs in the decode kernel or the sm80 prefill kernel ('prefill'); got kernel='",
                    std::string(kernel_name), "'");
        TORCH_CHECK(!cu_seqlens_q.has_value(), "a paged cache takes no cu_seqlens");
    }
    const int64_t Hkv = k.size(1), S = paged ? block_table->size(1) * k.size(2) : k.size(2);
    // kv_batch_idx (flash_attn_with_kvcache's cache_batch_idx): batch row b reads row kv_batch_idx[b]
    // of k and v, which may have any number of rows; k_leftpad (cache_leftpad): batch row b's keys
    // start at its row k_leftpad[b], seqlens_k[b] of them. The values are the caller's to check
    // (flash_attn_with_kvcache does, with check_lengths): reading them here would synchronise.
    for (const c10::optional<at::Tensor>* o : {&kv_batch_idx, &k_leftpad}) {
        if (!o->has_value()) continue;
        const at::Tensor& t = **o;
        const char* name = o == &kv_batch_idx ? "kv_batch_idx" : "k_leftpad";
        TORCH_CHECK(t.device() == q.device() && t.scalar_type() == at::kInt && t.dim() == 1 && t.size(0) == B && t.is_contiguous(),
                    name, " must be a contiguous int32 tensor of shape (B,)=(", txt(B), ",) on ", txt(q.device()), "; got shape ",
                    txt(t.sizes()), ", dtype ", txt(t.scalar_type()), ", device ", txt(t.device()));
        TORCH_CHECK(!paged && !cu_seqlens_q.has_value() && !cu_seqlens_k.has_value(), name, " takes no block_table and no cu_seqlens");
    }
    TORCH_CHECK(!k_leftpad.has_value() || seqlens_k.has_value(), "k_leftpad needs seqlens_k (the keys from each row's start)");
    TORCH_CHECK(paged || kv_batch_idx.has_value() || k.size(0) == B, "k.size(0)=", txt(k.size(0)), " must equal q.size(0)=", txt(B));
    TORCH_CHECK(k.size(0) >= 1 || !kv_batch_idx.has_value() || B == 0, "kv_batch_idx needs k and v with at least one row");
    TORCH_CHECK(k.size(3) == D, "k.size(-1)=", txt(k.size(3)), " must equal q.size(-1)=", txt(D));
    TORCH_CHECK(v.sizes() == k.sizes(), "v.shape=", txt(v.sizes()), " must equal k.shape=", txt(k.sizes()));
    TORCH_CHECK(k.size(0) < (1LL << 31), "k.size(0)=", txt(k.size(0)), " must be below 2^31");
    TORCH_CHECK(Hkv > 0 && Hq % Hkv == 0, "q.size(1)=", txt(Hq), " must be a multiple of k.size(1)=", txt(Hkv));
    TORCH_CHECK(D >= 1 && D <= 256, "head dim q.size(-1)=", txt(D), " is not supported by the CUDA kernels (1..256)");
    TORCH_CHECK(B <= 65535 && Hq <= 65535, "B=", txt(B), " and Hq=", txt(Hq), " must each be at most 65535");
    TORCH_CHECK(L < (1LL << 31) && S < (1LL << 31), "sequence lengths must be below 2^31; got L=", txt(L), ", S=", txt(S));

    MaskKind mask_kind = MaskKind::kNone;
    if (attn_mask.has_value()) {
        const at::Tensor& m = *attn_mask;
        TORCH_CHECK(m.device() == q.device(), "attn_mask.device=", txt(m.device()), " must equal q.device=", txt(q.device()));
        TORCH_CHECK(m.dim() == 4 && m.size(0) == B && m.size(1) == Hq && m.size(2) == L && m.size(3) == S,
                    "attn_mask.shape=", txt(m.sizes()), " must be (B, Hq, L, S)=(", txt(B), ", ", txt(Hq), ", ", txt(L), ", ", txt(S), ") (expand it first)");
        switch (m.scalar_type()) {
            case at::kBool: mask_kind = MaskKind::kBool; break;
            case at::kFloat: mask_kind = MaskKind::kAddF32; break;
            case at::kHalf: mask_kind = MaskKind::kAddF16; break;
            case at::kBFloat16: mask_kind = MaskKind::kAddBF16; break;
            default: TORCH_CHECK(false, "attn_mask.dtype=", txt(m.scalar_type()), " must be bool or a float type");
        }
    }

    if (seqlens_k.has_value()) {
        const at::Tensor& sl = *seqlens_k;
        TORCH_CHECK(sl.device() == q.device() && sl.scalar_type() == at::kInt && sl.dim() == 1 && sl.size(0) == B && sl.is_contiguous(),
                    "seqlens_k must be a contiguous int32 tensor of shape (B,)=(", txt(B), ",) on ", txt(q.device()),
                    "; got shape ", txt(sl.sizes()), ", dtype ", txt(sl.scalar_type()), ", device ", txt(sl.device()));
    }

    // Packed sequences: n of them in the one batch row of q, k and v; the grid, the offsets and
    // the checks below take the longest sequence's lengths (Lg, Sg) and n as the batch.
    const bool packed = cu_seqlens_q.has_value() || cu_seqlens_k.has_value();
    int64_t n_seq = B, Lg = L, Sg = S;
    if (packed) {
        TORCH_CHECK(cu_seqlens_q.has_value() && cu_seqlens_k.has_value(), "cu_seqlens_q and cu_seqlens_k must be given together");
        const at::Tensor& cq = *cu_seqlens_q;
        const at::Tensor& ck = *cu_seqlens_k;
        for (const at::Tensor* t : {&cq, &ck})
            TORCH_CHECK(t->device() == q.device() && t->scalar_type() == at::kInt && t->dim() == 1 && t->size(0) >= 1 && t->is_contiguous(),
                        t == &cq ? "cu_seqlens_q" : "cu_seqlens_k", " must be a contiguous int32 tensor of shape (n + 1,) on ",
                        txt(q.device()), "; got shape ", txt(t->sizes()), ", dtype ", txt(t->scalar_type()), ", device ", txt(t->device()));
        TORCH_CHECK(ck.size(0) == cq.size(0), "cu_seqlens_k.shape=", txt(ck.sizes()), " must equal cu_seqlens_q.shape=", txt(cq.sizes()));
        TORCH_CHECK(B == 1, "packed sequences take q, k and v with one batch row (the packed rows); got q.size(0)=", txt(B));
        TORCH_CHECK(!attn_mask.has_value() && !seqlens_k.has_value(), "packed sequences take no attn_mask and no seqlens_k");
        TORCH_CHECK(kernel == Kernel::kPrefill || kernel == Kernel::kPrefillSm90,
                    "packed sequences run in the prefill and prefill_sm90 kernels; got kernel='", std::string(kernel_name), "'");
        TORCH_CHECK(max_seqlen_q >= 0 && max_seqlen_q <= L && max_seqlen_k >= 0 && max_seqlen_k <= S,
                    "max_seqlen_q=", txt(max_seqlen_q), " and max_seqlen_k=", txt(max_seqlen_k), " must lie in [0, total]: "
                    "total_q=", txt(L), ", total_k=", txt(S));
        n_seq = cq.size(0) - 1;
        Lg = max_seqlen_q;
        Sg = max_seqlen_k;
        TORCH_CHECK(n_seq <= 65535, "at most 65535 packed sequences; got ", txt(n_seq));
    }

    // The options: a window side of -1 (or any negative value) has no limit; softcap >= 0
    // (0: none); alibi_slopes fp32 (Hq,) or (B, Hq) (packed: (n, Hq)); sinks fp32 (Hq,).
    TORCH_CHECK(std::isfinite(softcap) && softcap >= 0.0, "softcap must be a finite number >= 0; got softcap=", txt_f(softcap));
    if (alibi_slopes.has_value()) {
        const at::Tensor& a = *alibi_slopes;
        const bool shape_ok = (a.dim() == 1 && a.size(0) == Hq) || (a.dim() == 2 && a.size(0) == n_seq && a.size(1) == Hq);
        TORCH_CHECK(a.device() == q.device() && a.scalar_type() == at::kFloat && shape_ok && a.stride(-1) == 1,
                    "alibi_slopes must be a float32 tensor of shape (Hq,)=(", txt(Hq), ",) or (B, Hq)=(", txt(n_seq), ", ", txt(Hq),
                    ") with a contiguous last dim on ", txt(q.device()), "; got shape ", txt(a.sizes()), ", dtype ",
                    txt(a.scalar_type()), ", device ", txt(a.device()));
    }
    if (sinks.has_value()) {
        const at::Tensor& t = *sinks;
        TORCH_CHECK(t.device() == q.device() && t.scalar_type() == at::kFloat && t.dim() == 1 && t.size(0) == Hq && t.is_contiguous(),
                    "sinks must be a contiguous float32 tensor of shape (Hq,)=(", txt(Hq), ",) on ", txt(q.device()),
                    "; got shape ", txt(t.sizes()), ", dtype ", txt(t.scalar_type()), ", device ", txt(t.device()));
    }
    // A side that cannot hide any key is no limit: the left one binds only if some row's
    // d_i - left > 0 (d_i <= causal_offset + L - 1; per-batch lengths only lower d_i), the right one
    // only if some d_i + right < S - 1 (d_i >= causal_offset - S with per-batch lengths). Every
    // offset the kernels derive (the diagonal, the window's sides, plus any row or key index) then
    // stays within int range.
    const bool has_left = window_left >= 0 && window_left < causal_offset + Lg;
    const bool has_right = window_right >= 0 && window_right < 2 * Sg - causal_offset;
    TORCH_CHECK(!(has_left || has_right || alibi_slopes.has_value()) || std::abs(causal_offset) < (1LL << 30) - 2 * (Lg + Sg),
                "causal_offset=", txt(causal_offset), " out of range for a window or ALiBi: |causal_offset| + 2 (L + S) "
                "must stay below 2^30");

    const c10::cuda::CUDAGuard guard(q.device());
    at::Tensor out = at::empty({B, L, Hq, D}, q.options()).transpose(1, 2);  // (B, Hq, L, D) view
    at::Tensor lse = at::empty({B, Hq, L}, q.options().dtype(at::kFloat));
    if (packed) {   // rows past the last sequence (and every row of an empty one) are never written
        out.zero_();
        lse.fill_(-INFINITY);
    }
    if (n_seq == 0 || Hq == 0 || L == 0 || Lg == 0) return {out, lse};

    AttnParams p{};
    p.q = q.data_ptr(); p.k = k.data_ptr(); p.v = v.data_ptr();
    p.o = out.data_ptr(); p.lse = lse.data_ptr<float>();
    p.mask = attn_mask.has_value() ? attn_mask->data_ptr() : nullptr;
    p.seqlens_k = seqlens_k.has_value() ? seqlens_k->data_ptr<int32_t>() : nullptr;
    p.q_batch_stride = q.stride(0); p.q_head_stride = q.stride(1); p.q_row_stride = q.stride(2);
    p.k_batch_stride = k.stride(0); p.k_head_stride = k.stride(1); p.k_row_stride = k.stride(2);
    p.v_batch_stride = v.stride(0); p.v_head_stride = v.stride(1); p.v_row_stride = v.stride(2);
    p.o_batch_stride = out.stride(0); p.o_head_stride = out.stride(1); p.o_row_stride = out.stride(2);
    if (attn_mask.has_value()) {
        p.mask_batch_stride = attn_mask->stride(0); p.mask_head_stride = attn_mask->stride(1);
        p.mask_row_stride = attn_mask->stride(2); p.mask_col_stride = attn_mask->stride(3);
    }
    p.batch = n_seq; p.heads_q = Hq; p.heads_kv = Hkv; p.len_q = Lg; p.len_k = Sg; p.head_dim = D;
    p.kv_batch = paged ? static_cast<int>(B) : static_cast<int>(k.size(0));
    if (kv_batch_idx.has_value()) p.kv_batch_idx = kv_batch_idx->data_ptr<int32_t>();
    if (k_leftpad.has_value()) p.k_leftpad = k_leftpad->data_ptr<int32_t>();
    if (paged) {
        p.block_table = block_table->data_ptr<int32_t>();
        p.block_table_stride = block_table->stride(0);
        p.page_shift = page_shift;
        p.k_page_stride = p.k_batch_stride;   // the pages' own stride; no batch term (BlockInfo)
        p.v_page_stride = p.v_batch_stride;
        p.k_batch_stride = p.v_batch_stride = 0;
    }
    if (packed) {
        p.cu_seqlens_q = cu_seqlens_q->data_ptr<int32_t>();
        p.cu_seqlens_k = cu_seqlens_k->data_ptr<int32_t>();
        p.total_q = static_cast<int>(L);
        p.total_k = static_cast<int>(S);
        p.q_batch_stride = p.k_batch_stride = p.v_batch_stride = p.o_batch_stride = 0;
    }
    p.group = Hq / Hkv;
    p.scale = static_cast<float>(scale);
    p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);
    TORCH_CHECK(causal_offset > -(1LL << 31) && causal_offset < (1LL << 31), "causal_offset=", txt(causal_offset), " out of range");
    // The right side of the window is the causal limit moved: query i sees j <= i + causal_offset
    // + window_right (causal as well: the tighter of the two, the diagonal's).
    p.is_causal = is_causal || has_right;
    p.causal_offset = static_cast<int>(is_causal || !has_right ? causal_offset : causal_offset + window_right);
    p.diag_offset = static_cast<int>(causal_offset);
    p.has_window_left = has_left;
    p.window_left = has_left ? static_cast<int>(window_left) : 0;
    p.softcap = static_cast<float>(softcap);
    if (alibi_slopes.has_value()) {
        p.alibi_slopes = alibi_slopes->data_ptr<float>();
        p.alibi_batch_stride = alibi_slopes->dim() == 2 ? alibi_slopes->stride(0) : 0;
    }
    p.sinks = sinks.has_value() ? sinks->data_ptr<float>() : nullptr;
    p.mask_kind = mask_kind;
    p.dtype = dtype;
    const DeviceFacts& dev = device_facts(q.get_device());
    p.num_sms = dev.num_sms;
    p.max_smem_per_block = dev.max_smem;
    p.smem_per_sm = dev.smem_per_sm;
    p.dependent_launch = dev.cc_major >= 9;

    if (kernel == Kernel::kPrefill || kernel == Kernel::kDecode || kernel == Kernel::kPrefillSm90) {
        const char* kname = kernel == Kernel::kPrefill ? "prefill" : kernel == Kernel::kDecode ? "decode" : "prefill_sm90";
        check_tensor_core(q, "q", kname); check_tensor_core(k, "k", kname); check_tensor_core(v, "v", kname);
        TORCH_CHECK(dev.cc_major >= 8, "the ", kname, " kernel needs compute capability 8.0 or newer; this GPU is sm_", txt(dev.cc_major), "x");
    }
    if (kernel == Kernel::kPrefillSm90) {
        TORCH_CHECK(dev.cc_major == 9, "the prefill_sm90 kernel runs on compute capability 9.0 (Hopper) only; this GPU is sm_", txt(dev.cc_major), "x");
        TORCH_CHECK(kBuiltSm90a, "the prefill_sm90 kernel is not in this build: build flashmin for compute capability 9.0 "
                    "(TORCH_CUDA_ARCH_LIST=9.0 or on the Hopper GPU itself), which compiles it as sm_90a");
        // The copy engine steps rows, heads and batches by byte strides that are multiples of 16.
        for (const at::Tensor* t : {&q, &k, &v})
            for (int d = 0; d < 3; ++d)
                TORCH_CHECK(t->size(d) == 1 || t->stride(d) > 0, "the prefill_sm90 kernel needs positive strides; got ",
                            t == &q ? "q" : t == &k ? "k" : "v", ".stride()=", txt(t->strides()));
    }
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
    at::Tensor accum;   // split-KV partials, alive until the launches are queued
    if (kernel == Kernel::kDecode) {
        TORCH_CHECK(D <= 128, "the decode kernel takes head dims up to 128; got q.size(-1)=", txt(D));
        TORCH_CHECK(L <= 16, "the decode kernel takes query lengths up to 16; got q.size(2)=", txt(L));
        // The plan (GQA packing, splits, L2 policy: csrc/decode/decode_plan.cu); its partials go to
        // one fp32 buffer (one allocation per call), merged by a second kernel.
        const DecodePlan plan = plan_decode(p, dev.l2_bytes);
        if (plan.num_splits > 1) accum = at::empty({plan.o_accum_floats + plan.lse_accum_floats}, q.options().dtype(at::kFloat));
        p = apply_decode_plan(p, plan, accum.defined() ? accum.data_ptr<float>() : nullptr);
    }

    // A bool mask over a long key range: its visible range per 64 query rows first, so that the
    // prefill kernels skip the tiles no row of a block may see (csrc/common/mask_ranges.cu).
    at::Tensor ranges;
    if ((kernel == Kernel::kPrefill || kernel == Kernel::kPrefillSm90) && mask_kind == MaskKind::kBool &&
        p.mask_col_stride == 1 && S >= 256) {
        p.mask_range_heads = p.mask_head_stride == 0 ? 1 : static_cast<int>(Hq);
        const int64_t groups = (L + kMaskRangeRows - 1) / kMaskRangeRows;
        ranges = at::empty({2 * B * p.mask_range_heads * groups}, q.options().dtype(at::kInt));
        p.mask_ranges = ranges.data_ptr<int>();
        const cudaError_t rerr = run_mask_ranges(p, stream);
        TORCH_CHECK(rerr == cudaSuccess, "flashmin mask range launch failed: ", cudaGetErrorString(rerr));
    }

    cudaError_t err = cudaSuccess;
    switch (kernel) {
        case Kernel::kMinimal: err = run_minimal_fwd(p, stream); break;
        case Kernel::kPrefill: err = run_prefill_fwd(p, stream); break;
        case Kernel::kDecode: err = run_decode_fwd(p, stream); break;
        case Kernel::kPrefillSm90: err = run_prefill_sm90(p, stream); break;
    }
    TORCH_CHECK(err == cudaSuccess, "flashmin kernel launch failed: ", cudaGetErrorString(err));
    return {out, lse};
}

}  // namespace flashmin

TORCH_LIBRARY_IMPL(flashmin, CUDA, m) { m.impl("attention_fwd", &flashmin::attention_fwd_cuda); }

// A Python module too, so `import flashmin_nn._C` loads the library (and the registration above).
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "flashmin CUDA kernels (forward-only attention)";
    m.def("built_with_sm90a", [] { return flashmin::kBuiltSm90a; },
          "Whether this build holds the sm_90a code of the Hopper prefill kernel (prefill_sm90).");
}
