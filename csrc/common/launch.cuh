// common/launch.cuh: host-side launch helpers shared by the kernel families.
#pragma once

#include <atomic>
#include <cstdint>

#include <cuda_runtime.h>

namespace flashmin {

// Dynamic shared memory above 48 KB needs an opt-in per kernel and device. It is a host API call
// of a few microseconds, so it is made once per (kernel, device), not on every launch.
template <auto kKernel>
cudaError_t opt_in_smem(int bytes) {
    if (bytes <= 48 * 1024) return cudaSuccess;
    static std::atomic<uint64_t> done{0};   // bit d: set on device d
    int device = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err != cudaSuccess) return err;
    const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
    if (bit && (done.load(std::memory_order_relaxed) & bit)) return cudaSuccess;
    err = cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (err == cudaSuccess) done.fetch_or(bit, std::memory_order_relaxed);
    return err;
}

}  // namespace flashmin
