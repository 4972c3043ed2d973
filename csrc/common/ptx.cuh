// common/ptx.cuh: small inline PTX wrappers shared by the sm80 kernels (cp.async, ldmatrix,
// mma.sync m16n8k16, L2 policies, packing, exp2, programmatic dependent launch). Each wrapper is
// one instruction, readable on its own.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace flashmin {

// ---- PTX wrappers -------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; zero-filled when !valid (nothing is read then).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0));
}
// The same with an L2 cache policy (l2_policy) for the lines it brings in (no prefetch-size hint).
__device__ __forceinline__ void cp_async_16_policy(void* dst, const void* src, bool valid, uint64_t policy) {
    asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\n"
                 ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0), "l"(policy));
}
// An L2 cache policy for loads: evict-first marks the lines a load brings in as the first to
// go, so that a stream read once recycles its own lines instead of evicting (and, when dirty,
// writing back) everything else; evict-normal is the default treatment.
__device__ __forceinline__ uint64_t l2_policy(bool evict_first) {
    uint64_t policy;
    if (evict_first)
        asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
    else
        asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;\n" : "=l"(policy));
    return policy;
}
// A K/V chunk: cp_async_16_policy with the policy (kPolicy), plain cp_async_16 otherwise.
template <bool kPolicy>
__device__ __forceinline__ void cp_async_kv(void* dst, const void* src, bool valid, uint64_t policy) {
    if constexpr (kPolicy) cp_async_16_policy(dst, src, valid, policy);
    else cp_async_16(dst, src, valid);
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }
// Wait until at most N of this thread's committed cp.async groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// ldmatrix from a shared-memory byte address (base + constant: ptxas folds the constant into
// the instruction, so a tile needs one address register, not one per fragment).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
// Hides a value's origin from the optimiser, so addresses derived from it are recomputed in the
// loop (as register + immediate) instead of being hoisted into dozens of live registers.
__device__ __forceinline__ uint32_t opaque(uint32_t x) {
    asm volatile("" : "+r"(x));
    return x;
}

// c += a (16x16, row) * b (16x8, col), fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats -> one register of two 16-bit values (first in the low half).
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

// 2^x in one MUFU instruction (ex2.approx, denormals flushed: softmax weights that small are 0).
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}
__device__ __forceinline__ float fast_log2(float x) {
    float y;
    asm("lg2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// tanh in one MUFU instruction (tanh.approx, sm75+; relative error about 2^-11), for softcapping.
__device__ __forceinline__ float fast_tanh(float x) {
    float y;
    asm("tanh.approx.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ int64_t opaque64(int64_t x) {
    asm volatile("" : "+l"(x));
    return x;
}

// p, passed through a warp shuffle of each lane's own value: the same pointer, but ptxas can no
// longer split it into a per-thread part and a warp-uniform one. Needed by cp.async copies with a
// cache policy (cp_async_16_policy) whose shared address has a uniform offset (a ring slot chosen
// by the loop counter): under register pressure ptxas 13.0 (sm_90a) folds that offset into an
// LDGSTS [R + UR] form whose uniform registers nothing writes, and the copy stops on an illegal
// instruction (decode_kernel.cuh, 16-key pages at head dim 128). The whole warp must call it.
template <typename T>
__device__ __forceinline__ T* hide_uniform(T* p) {
    return reinterpret_cast<T*>(__shfl_sync(0xffffffffu, reinterpret_cast<unsigned long long>(p), threadIdx.x % 32));
}

// Programmatic dependent launch (sm90+; no-ops below). A kernel that calls allow_dependent_launch
// lets the next kernel of the stream, launched with programmatic stream serialization, start as
// soon as all its blocks run; that kernel calls wait_for_prerequisite_grid before it reads what the
// first one wrote (it returns once the first grid has finished and its writes are visible). The
// second launch's latency is then hidden behind the first kernel instead of paid after it.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wait_for_prerequisite_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

}  // namespace flashmin
