// common/ptx_sm90.cuh: Hopper's own instructions, one small wrapper each.
//
// - mbarrier: a shared-memory barrier that counts arrivals and, for the bulk tensor copies, bytes
//   (a copy "completes a transaction" on the barrier when its bytes have landed). A barrier goes
//   through phases 0, 1, 0, ...; wait(parity) returns once the phase of that parity has completed.
// - cp.async.bulk.tensor (TMA): the copy engine moves a box of a tensor between global and shared
//   memory, described by a tensor map (made on the host, passed as a __grid_constant__ kernel
//   parameter); rows and columns outside the tensor are zero-filled on loads and skipped on stores.
// - wgmma shared-memory matrix descriptors, and the fences and group waits around wgmma.
// - setmaxnreg: move registers between warpgroups (the copy warpgroup needs few, the math many).
// - named barriers: synchronise a subset of the block's warps (bar.sync id, count).
// The kernels that use these compile them only for sm_90a (__CUDA_ARCH_FEAT_SM90_ALL).
#pragma once

#include <cstdint>

#include <cuda.h>   // CUtensorMap

namespace flashmin {
namespace sm90 {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// ---- mbarrier -----------------------------------------------------------------------------------

__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count));
}
// Make the initialised barriers visible to the copy engine (the async proxy) before first use.
__device__ __forceinline__ void fence_barrier_init() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// One arrival, announcing that `bytes` more will land through copies that complete on `bar`.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}
// Spin until the phase of this parity has completed (try_wait suspends the thread for a while
// before it reports false, so the loop does not hammer the barrier).
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
    asm volatile(
        "{\n"
        ".reg .pred done;\n"
        "WAIT_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT_%=;\n"
        "}\n" ::"r"(smem_u32(bar)), "r"(parity) : "memory");
}

// ---- bulk tensor copies (TMA) -------------------------------------------------------------------

__device__ __forceinline__ void prefetch_tensor_map(const CUtensorMap* map) {
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
// Box at coordinates (c0 innermost, ..., c3) of a 4-d tensor -> shared memory; completes on bar.
__device__ __forceinline__ void tma_load_4d(void* dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1, int c2, int c3) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, %6}], [%2];\n"
        ::"r"(smem_u32(dst)), "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
        : "memory");
}
// Shared memory -> box of a 4-d tensor (elements outside the tensor are not written).
__device__ __forceinline__ void tma_store_4d(const CUtensorMap* map, const void* src, int c0, int c1, int c2, int c3) {
    asm volatile("cp.async.bulk.tensor.4d.global.shared::cta.tile.bulk_group [%0, {%2, %3, %4, %5}], [%1];\n"
                 ::"l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(src)), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
                 : "memory");
}
__device__ __forceinline__ void tma_store_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Wait until the committed stores have read their shared memory (it may then be reused or freed).
__device__ __forceinline__ void tma_store_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
// Ordinary shared-memory writes become visible to the copy engine and the tensor cores.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// ---- stmatrix -----------------------------------------------------------------------------------

// Four 8x8 matrices of 16-bit elements to shared memory in one instruction: lanes 8 i .. 8 i + 7
// give the byte addresses of matrix i's rows 0-7 (16 bytes each), and register i holds this lane's
// two elements of matrix i in the mma fragment layout (row lane / 4, columns 2 (lane % 4) + 0, 1).
__device__ __forceinline__ void stmatrix_x4(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0), "r"(r1), "r"(r2), "r"(r3)
                 : "memory");
}

// ---- wgmma --------------------------------------------------------------------------------------

// A shared-memory matrix descriptor for a tile stored with the 128-byte swizzle (each row of 64
// 16-bit elements is 128 bytes, its 16-byte chunks XOR-permuted by row % 8; the pattern repeats
// every 8 rows = 1024 bytes, and the tile starts on a 1024-byte boundary). lbo and sbo in bytes:
// K-major operands step 8 rows by sbo (lbo unused); MN-major ones step 64 columns by lbo and 8
// rows (of the k dimension) by sbo.
__device__ __forceinline__ uint64_t sw128_desc(uint32_t smem_addr, uint32_t lbo, uint32_t sbo) {
    uint64_t d = (smem_addr & 0x3FFFF) >> 4;
    d |= static_cast<uint64_t>((lbo & 0x3FFFF) >> 4) << 16;
    d |= static_cast<uint64_t>((sbo & 0x3FFFF) >> 4) << 32;
    d |= uint64_t{1} << 62;   // 128-byte swizzle
    return d;
}
// The descriptor of the same tile off bytes further on (a 16-byte multiple): sw128_desc(addr + off,
// lbo, sbo) == sw128_desc_at(sw128_desc(addr, lbo, sbo), off) while addr + off stays inside shared
// memory (the start-address field, addr / 16 in its low 14 bits, then carries nothing into the next
// field). An add to the low word per k-step instead of the whole encoding.
__device__ __forceinline__ uint64_t sw128_desc_at(uint64_t base, uint32_t off) {
    return (base & 0xFFFFFFFF00000000ull) | (static_cast<uint32_t>(base) + (off >> 4));
}
// Order this thread's register writes (accumulators, A fragments) before the next wgmma reads them.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory"); }
// Keeps the compiler from moving reads or writes of accumulator registers across a wgmma that is
// still running (the asm statements that issue it look finished to the compiler).
template <int kN>
__device__ __forceinline__ void fence_regs(float (&d)[kN][4]) {
#pragma unroll
    for (int i = 0; i < kN; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[i][e])::"memory");
}

// ---- registers and barriers ---------------------------------------------------------------------

template <int kRegs>
__device__ __forceinline__ void regs_dealloc() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs)); }
template <int kRegs>
__device__ __forceinline__ void regs_alloc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs)); }

__device__ __forceinline__ void named_sync(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
// Arrive at a named barrier without waiting for it (the threads that bar.sync on it wait).
__device__ __forceinline__ void named_arrive(int id, int threads) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace sm90
}  // namespace flashmin
