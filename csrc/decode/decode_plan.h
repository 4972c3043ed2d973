// decode_plan.h: how the decode kernel runs a call, decided on the host from shapes and device
// facts only (never from tensor values, so a CUDA-graph replay runs the same plan).
#pragma once

#include <cstdint>

#include "flashmin.h"

namespace flashmin {

struct DecodePlan {
    // One query against a cache with grouped-query attention: the group's query heads run as the
    // rows of one kv head's block (q viewed as (B, Hkv, group, D)), so K and V are read once per group.
    bool pack_gqa = false;
    // Key-range splits (1: none), each writing fp32 partials that a second kernel merges.
    int num_splits = 1;
    // The splits of one head launched side by side, split s reading tile groups s, s + num_splits, ...
    bool split_sweep = false;
    // K/V loads marked evict-first in L2 (a cache small against the L2, read once).
    bool kv_evict_first = false;
    // The configuration of which two blocks share an SM (DecodeConfigPair), not DecodeConfig.
    bool pair_config = false;
    // The partials' buffer, in floats (0 when unsplit): O (num_splits, rows, padded head dim), then
    // lse (num_splits, rows), rows = B x heads x queries as the kernel sees them (after packing).
    int64_t o_accum_floats = 0;
    int64_t lse_accum_floats = 0;
};

// The plan for a call to the decode kernel: p as the binding filled it (head_dim <= 128,
// num_sms set), l2_bytes the device's L2 size.
DecodePlan plan_decode(const AttnParams& p, int64_t l2_bytes);

// The parameters the decode kernel runs with: p with the plan applied (GQA packing rewrites the
// q and o views) and, when split, the partials' buffer `accum` of plan.o_accum_floats +
// plan.lse_accum_floats floats (null when unsplit).
AttnParams apply_decode_plan(const AttnParams& p, const DecodePlan& plan, float* accum);

}  // namespace flashmin
