// common/switch.h: run-time values turned into compile-time template parameters.
//
// Each macro evaluates a run-time value once and, in the branch it picks, declares NAME as a
// compile-time constant (or type) visible to the callable it wraps, which it then calls; the
// macro's value is what the callable returns (every branch must return the same type). A
// launcher thus names each instantiation once instead of spelling out a ladder of ternaries:
//
//     return BOOL_SWITCH(p.mask_kind != MaskKind::kNone, kHasMask, [&] {
//         return launch_kernel<Tr, T, kHasMask>(p, stream);
//     });
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "flashmin.h"

// NAME: a constexpr bool equal to COND.
#define BOOL_SWITCH(COND, NAME, ...)            \
    [&] {                                       \
        if (COND) {                             \
            static constexpr bool NAME = true;  \
            return (__VA_ARGS__)();             \
        }                                       \
        static constexpr bool NAME = false;     \
        return (__VA_ARGS__)();                 \
    }()

// NAME: the element type of a tensor-core kernel for a flashmin::DType, __half for kFloat16 and
// __nv_bfloat16 otherwise (those kernels take only the two 16-bit types: the binding refuses any
// other before it dispatches).
#define DTYPE_SWITCH(DTYPE, NAME, ...)                        \
    [&] {                                                     \
        if ((DTYPE) == ::flashmin::DType::kFloat16) {         \
            using NAME = __half;                              \
            return (__VA_ARGS__)();                           \
        }                                                     \
        using NAME = __nv_bfloat16;                           \
        return (__VA_ARGS__)();                               \
    }()

// NAME: the head dim the sm80 prefill kernel is compiled for that serves HEADDIM, the next size up
// of 32, 64, 96, 128, 256 (a smaller multiple of 8 runs zero-padded). The caller refuses
// HEADDIM > 256 first.
#define HEADDIM_SWITCH(HEADDIM, NAME, ...)                                   \
    [&] {                                                                    \
        if ((HEADDIM) <= 32) {                                               \
            static constexpr int NAME = 32;                                  \
            return (__VA_ARGS__)();                                          \
        }                                                                    \
        if ((HEADDIM) <= 64) {                                               \
            static constexpr int NAME = 64;                                  \
            return (__VA_ARGS__)();                                          \
        }                                                                    \
        if ((HEADDIM) <= 96) {                                               \
            static constexpr int NAME = 96;                                  \
            return (__VA_ARGS__)();                                          \
        }                                                                    \
        if ((HEADDIM) <= 128) {                                              \
            static constexpr int NAME = 128;                                 \
            return (__VA_ARGS__)();                                          \
        }                                                                    \
        static constexpr int NAME = 256;                                     \
        return (__VA_ARGS__)();                                              \
    }()

// NAME: the head dim the decode kernel is compiled for that serves HEADDIM: 64 or 128. The caller
// refuses HEADDIM > 128 first.
#define DECODE_HEADDIM_SWITCH(HEADDIM, NAME, ...)   \
    [&] {                                           \
        if ((HEADDIM) <= 64) {                      \
            static constexpr int NAME = 64;         \
            return (__VA_ARGS__)();                 \
        }                                           \
        static constexpr int NAME = 128;            \
        return (__VA_ARGS__)();                     \
    }()
