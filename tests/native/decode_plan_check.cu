// Host-only check of the decode plan's configuration choice (tests/test_decode_plan.py builds and
// runs it with csrc/decode/decode_plan.cu; no GPU needed). Rule (e) of decode_plan.cu: the pair
// configurations (DecodeConfigPair, decode_config.h) run only where two of their blocks fit an SM
// (sm_90's 228 KB, not sm_80's 164 KB or sm_86's 100 KB); at head dim 64 in every call but the
// split ones over 16-key pages, at head dim 128 where the grid holds one to two blocks per SM,
// and then unsplit. Prints "<cases> cases, <bad> bad"; exits 1 on a bad one.
#include <cstdio>

#include "decode/decode_config.h"
#include "decode/decode_plan.h"
#include "decode/decode_traits.h"

using flashmin::AttnParams;
using flashmin::DecodePlan;

struct Gpu { const char* name; int sms, smem_block, smem_sm; };
constexpr Gpu kH200{"sm_90", 132, 227 * 1024, 228 * 1024};
constexpr Gpu kA100{"sm_80", 108, 163 * 1024, 164 * 1024};
constexpr Gpu kL40{"sm_89", 142, 99 * 1024, 100 * 1024};

// One query per row (or q_len), a (B, Hkv, L, D) cache, optionally in pages of `page` keys.
static AttnParams call(const Gpu& g, int B, int Hq, int Hkv, int D, int L, int q_len = 1, int page = 0) {
    AttnParams p{};
    p.batch = B;
    p.kv_batch = B;
    p.heads_q = Hq;
    p.heads_kv = Hkv;
    p.group = Hq / Hkv;
    p.head_dim = D;
    p.len_q = q_len;
    p.len_k = L;
    p.k_row_stride = p.v_row_stride = D;
    p.k_head_stride = p.v_head_stride = static_cast<int64_t>(L) * D;
    p.q_row_stride = p.o_row_stride = D;
    p.q_head_stride = p.o_head_stride = static_cast<int64_t>(q_len) * D;
    static const int32_t table[1] = {0};
    if (page) {
        p.block_table = table;   // never read by the plan
        int shift = 0;
        while ((1 << shift) < page) ++shift;
        p.page_shift = shift;
    }
    p.num_sms = g.sms;
    p.max_smem_per_block = g.smem_block;
    p.smem_per_sm = g.smem_sm;
    return p;
}

static int cases = 0, bad = 0;

static void expect(const char* what, const Gpu& g, const AttnParams& p, bool pair, int splits = -1) {
    const DecodePlan plan = flashmin::plan_decode(p, 60LL << 20);
    ++cases;
    const bool ok = plan.pair_config == pair && (splits < 0 || plan.num_splits == splits);
    if (!ok) {
        ++bad;
        std::printf("BAD %s on %s: pair %d (want %d), %d splits (want %d)\n", what, g.name, plan.pair_config, pair,
                    plan.num_splits, splits);
    }
}

int main() {
    using flashmin::decode::DecodeConfigPair;
    using flashmin::decode::DecodeTraits;
    std::printf("pair blocks: head dim 64 %d bytes, 128 %d bytes\n", DecodeTraits<DecodeConfigPair<64>>::kSmemBytes,
                DecodeTraits<DecodeConfigPair<128>>::kSmemBytes);
    for (int L : {1, 17, 1024, 4096, 16384, 65536, 131072}) {
        // Head dim 128, B=8, 32 heads: 256 blocks on 132 SMs, one to two a SM: the pair, unsplit.
        expect("D128 B8 H32", kH200, call(kH200, 8, 32, 32, 128, L), true, 1);
        expect("D128 B8 H32 paged 16", kH200, call(kH200, 8, 32, 32, 128, L, 1, 16), true, 1);
        expect("D128 B8 H32 paged 256", kH200, call(kH200, 8, 32, 32, 128, L, 1, 256), true, 1);
        expect("D128 B8 H32 7 queries", kH200, call(kH200, 8, 32, 32, 128, L, 7), true, 1);
        expect("D128 B1 H132", kH200, call(kH200, 1, 132, 132, 128, L), true, 1);
        expect("D128 B1 H264", kH200, call(kH200, 1, 264, 264, 128, L), true, 1);
        // More or fewer blocks: the default configuration.
        expect("D128 B1 H265", kH200, call(kH200, 1, 265, 265, 128, L), false);
        expect("D128 B64 H32", kH200, call(kH200, 64, 32, 32, 128, L), false);
        expect("D128 B1 H32", kH200, call(kH200, 1, 32, 32, 128, L), false);
        expect("D128 B1 H131", kH200, call(kH200, 1, 131, 131, 128, L), false);
        expect("D128 B8 32/8 (64 packed blocks)", kH200, call(kH200, 8, 32, 8, 128, L), false);
        // Head dim 64: the pair wherever it fits, but not for split calls over 16-key pages.
        expect("D64 B8 H12", kH200, call(kH200, 8, 12, 12, 64, L), true);
        expect("D64 B64 H32", kH200, call(kH200, 64, 32, 32, 64, L), true);
        expect("D64 B8 H12 paged 256", kH200, call(kH200, 8, 12, 12, 64, L, 1, 256), true);
        expect("D48 B8 H12", kH200, call(kH200, 8, 12, 12, 48, L), true);
        // No SM holds two pair blocks: never the pair.
        for (const Gpu& g : {kA100, kL40}) {
            expect("D128 B8 H32", g, call(g, 8, 32, 32, 128, L), false);
            expect("D128 B2 Hsms", g, call(g, 2, g.sms, g.sms, 128, L), false);
            expect("D64 B8 H12", g, call(g, 8, 12, 12, 64, L), false);
            expect("D64 B8 H12 paged 16", g, call(g, 8, 12, 12, 64, L, 1, 16), false);
        }
    }
    // 16-key pages at head dim 64: 96 blocks stay unsplit at every length (the pair), as over a
    // contiguous cache; a grid the rules split (48 blocks) takes the default configuration. At head
    // dim 128, 96 blocks over 16-key pages take two splits from 16k keys.
    expect("D64 B8 H12 paged 16, 4k", kH200, call(kH200, 8, 12, 12, 64, 4096, 1, 16), true, 1);
    expect("D64 B8 H12 paged 16, 16k", kH200, call(kH200, 8, 12, 12, 64, 16384, 1, 16), true, 1);
    expect("D64 B8 H12 paged 16, 64k", kH200, call(kH200, 8, 12, 12, 64, 65536, 1, 16), true, 1);
    expect("D64 B4 H12 paged 16, 16k", kH200, call(kH200, 4, 12, 12, 64, 16384, 1, 16), false, 2);
    expect("D128 B8 H12 paged 16, 16k", kH200, call(kH200, 8, 12, 12, 128, 16384, 1, 16), false, 2);
    expect("D128 B8 H12, 16k", kH200, call(kH200, 8, 12, 12, 128, 16384), false, 1);
    // Without the pair, the rules before it: 8 splits for a full grid over a long cache.
    expect("D128 B64 H32 64k", kH200, call(kH200, 64, 32, 32, 128, 65536), false, 8);
    expect("D128 B8 H32 64k on sm_80", kA100, call(kA100, 8, 32, 32, 128, 65536), false, 8);
    std::printf("%d cases, %d bad\n", cases, bad);
    return bad == 0 ? 0 : 1;
}
