// Host-only check of the Hopper prefill kernel's planned walk (tests/test_plan_walk.py builds and
// runs it; no GPU needed). For many grids, tile counts and cost patterns it asks
// csrc/prefill_sm90/prefill_sm90_plan.cu's plan_tile_tail for a plan, then walks every block the
// way TileWalk does (prefill_sm90_scheduler.cuh: the snake, turned where rotate is set, then the
// plan's entries) and counts the visits of each tile: each must be visited exactly once, and the plan
// must fit its entries. It also checks the tiles' cost (tile_cost) against the key-tile count
// written out. Prints "<cases> cases, <planned> planned, <bad> bad"; exits 1 on a bad one.
#include <algorithm>
#include <cstdio>
#include <vector>

#include "prefill_sm90/prefill_sm90_scheduler.cuh"

using flashmin::sm90::kTailEntries;
using flashmin::sm90::kTailNone;
using flashmin::sm90::TileTail;

// Tile m_idx's cost (m_idx 0: the last query block), by pattern.
static std::vector<float> costs(int pattern, int num_m, unsigned& seed) {
    std::vector<float> c(num_m);
    for (int i = 0; i < num_m; ++i) {
        switch (pattern) {
            case 0: c[i] = (num_m - i) + 0.5f; break;                                   // causal
            case 1: c[i] = (i == 0 ? 0.4f * num_m : float(num_m - i)) + 0.5f; break;    // causal, light last block
            case 2: c[i] = std::min(num_m - i, 3) + 0.5f; break;                        // a left window: a plateau
            case 3: c[i] = (i == 0 ? 0.75f : 1.f) * 8 + 0.5f; break;                    // non-causal, light last block
            default: seed = seed * 1664525u + 1013904223u; c[i] = float(seed >> 24) / 16.f + 0.5f; break;
        }
    }
    return c;
}

// tile_cost (prefill_sm90_scheduler.cuh, through KeyRange) against the key-tile count written out:
// causal or not, any causal offset, with and without a window's left side. Returns the mismatches.
static int check_tile_costs() {
    int bad = 0;
    for (int len_q : {1, 17, 97, 1000, 1025})
        for (int len_k : {1, 17, 97, 1000, 1025})
            for (int causal = 0; causal < 2; ++causal)
                for (int offset : {-400, -1, 0, 5, 1000})
                    for (int window : {-1, 0, 3, 256}) {
                        flashmin::AttnParams p{};
                        p.len_q = len_q;
                        p.len_k = len_k;
                        p.is_causal = causal != 0;
                        p.causal_offset = offset;
                        p.diag_offset = offset;
                        p.has_window_left = window >= 0;
                        p.window_left = window < 0 ? 0 : window;
                        for (int m = 0; m * 128 < len_q; ++m) {
                            const int row0 = m * 128;
                            const int end = causal ? std::max(0, std::min(len_k, row0 + 128 + offset)) : len_k;
                            const int t_end = (end + 127) / 128;
                            const int begin = window >= 0 ? std::max(0, std::min(len_k, row0 + offset - window)) : 0;
                            const int t_begin = std::min(t_end, begin / 128);
                            const float want = static_cast<float>(t_end - t_begin) + 0.5f;
                            const float got = flashmin::sm90::tile_cost(p, m, 128, 128, 2, false);
                            if (got != want) {
                                ++bad;
                                std::printf("tile_cost len_q %d len_k %d causal %d offset %d window %d block %d: %g, want %g\n",
                                            len_q, len_k, causal, offset, window, m, got, want);
                            }
                        }
                    }
    return bad;
}

int main() {
    int bad = check_tile_costs(), planned = 0, cases = 0;
    unsigned seed = 12345;
    for (int grid : {132, 114, 78, 7, 1})
        for (int num_m : {1, 2, 3, 4, 6, 8, 11, 22, 32, 64, 128})
            for (int heads : {1, 3, 16, 64, 333, 1024})
                for (int rotate : {0, 1})
                    for (int pattern = 0; pattern < 5; ++pattern) {
                        const int num_tiles = num_m * heads;
                        if (num_tiles <= grid) continue;   // the launcher plans only walks of two rounds or more
                        const std::vector<float> cost = costs(pattern, num_m, seed);
                        TileTail tt{};
                        tt.round0 = tt.rounds = (num_tiles + grid - 1) / grid;   // as launch_prefill_kernel
                        tt.base = num_tiles;
                        flashmin::sm90::plan_tile_tail(tt, cost, num_tiles, grid, rotate);
                        ++cases;
                        const bool has_plan = tt.rounds != tt.round0;
                        planned += has_plan;
                        if (has_plan && ((tt.rounds - tt.round0) * grid > kTailEntries || tt.base != tt.round0 * grid)) {
                            ++bad;
                            std::printf("grid %d num_m %d heads %d rotate %d pattern %d: a plan of %d rows, base %d\n", grid,
                                        num_m, heads, rotate, pattern, tt.rounds - tt.round0, tt.base);
                            continue;
                        }
                        std::vector<int> seen(num_tiles, 0);
                        for (int c = 0; c < grid; ++c) {   // TileWalk of block c
                            int place = c;
                            for (int r = 0; r < tt.rounds; ++r) {
                                int t;
                                if (r >= tt.round0) {
                                    const int e = tt.t[(r - tt.round0) * grid + c];
                                    t = e == kTailNone ? num_tiles : tt.base + e;
                                } else {
                                    t = r * grid + ((r & 1) ? grid - 1 - place : place);
                                }
                                if (t < num_tiles) ++seen[t];
                                if (rotate && (r & 1) && ++place == grid) place = 0;
                            }
                        }
                        for (int t = 0; t < num_tiles; ++t)
                            if (seen[t] != 1) {
                                ++bad;
                                std::printf("grid %d num_m %d heads %d rotate %d pattern %d: tile %d visited %d times\n", grid,
                                            num_m, heads, rotate, pattern, t, seen[t]);
                                break;
                            }
                    }
    std::printf("%d cases, %d planned, %d bad\n", cases, planned, bad);
    return bad != 0;
}
