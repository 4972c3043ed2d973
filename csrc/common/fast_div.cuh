// fast_div.cuh: division by a divisor fixed for a whole kernel, as a multiply-high and a shift.
//
// Dividing by a runtime int costs ~20 instructions (a float reciprocal and its corrections); a
// persistent block that decodes a work-tile index per tile pays that for each division, in every
// thread. FastDiv's magic number is computed once, on the host, and passed with the launch
// (Granlund and Montgomery's round-up method, as CUTLASS's FastDivmod uses): for 0 <= n < 2^31 and
// 1 <= d < 2^31, n / d == (umulhi(n, mul) + n) >> shift with shift = ceil(log2 d) and
// mul = 2^32 (2^shift - d) / d + 1.
#pragma once

#include <cstdint>

namespace flashmin {

struct FastDiv {
    uint32_t d, mul, shift;

    __host__ explicit FastDiv(int divisor) : d(static_cast<uint32_t>(divisor)), shift(0) {
        while ((uint64_t{1} << shift) < d) ++shift;
        mul = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
    }
    // n / d and n % d for 0 <= n < 2^31.
    __device__ __forceinline__ int div(int n) const {
        const uint32_t u = static_cast<uint32_t>(n);
        return static_cast<int>((__umulhi(u, mul) + u) >> shift);
    }
    __device__ __forceinline__ int mod(int n, int q) const { return n - q * static_cast<int>(d); }
};

}  // namespace flashmin
