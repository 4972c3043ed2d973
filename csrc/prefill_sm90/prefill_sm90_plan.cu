// prefill_sm90_plan.cu: the host's plan of the Hopper prefill kernel's last persistent rounds
// (TileTail, prefill_sm90_scheduler.cuh). Host code only: nvcc or any C++ compiler.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <queue>
#include <utility>
#include <vector>

#include "prefill_sm90/prefill_sm90_scheduler.cuh"

namespace flashmin {
namespace sm90 {

namespace {

// The plan's rounds: about six rounds of the grid (tile_balance.py: at hdim 64 causal 2048 the
// busiest SM 1.002x the mean with six, 1.007x with three).
constexpr int kTailRounds = 6;

// Longest processing time first: the tiles [base, num_tiles), heaviest first (the lower index
// first among equals), each to the block with the least work so far, the snake's rounds before
// base counted. Returns false where a block's list would not fit the plan's entries.
bool make_plan(TileTail& tt, const std::vector<float>& cost, int num_tiles, int grid, int rotate, int round0) {
    const int num_m = static_cast<int>(cost.size());
    std::vector<double> load(grid, 0.0);
    for (int r = 0; r < round0; ++r)
        for (int c = 0; c < grid; ++c) {
            const int place = rotate ? (c + r / 2) % grid : c;   // TileWalk's turn
            const int t = r * grid + ((r & 1) ? grid - 1 - place : place);
            load[c] += cost[t % num_m];
        }
    const int base = round0 * grid, n = num_tiles - base;
    if (n <= 0 || n >= kTailNone) return false;
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return cost[(base + a) % num_m] > cost[(base + b) % num_m]; });
    using Slot = std::pair<double, int>;   // (work so far, block)
    std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> free_first;
    for (int c = 0; c < grid; ++c) free_first.emplace(load[c], c);
    std::vector<std::vector<uint16_t>> lists(grid);
    size_t rows = 0;
    for (const int e : order) {
        const Slot s = free_first.top();
        free_first.pop();
        lists[s.second].push_back(static_cast<uint16_t>(e));
        rows = std::max(rows, lists[s.second].size());
        free_first.emplace(s.first + cost[(base + e) % num_m], s.second);
    }
    if (rows * static_cast<size_t>(grid) > static_cast<size_t>(kTailEntries)) return false;
    tt.round0 = round0;
    tt.rounds = round0 + static_cast<int>(rows);
    tt.base = base;
    for (size_t j = 0; j < rows; ++j)
        for (int c = 0; c < grid; ++c) tt.t[j * grid + c] = j < lists[c].size() ? lists[c][j] : kTailNone;
    return true;
}

}  // namespace

void plan_tile_tail(TileTail& tt, const std::vector<float>& cost, int num_tiles, int grid, int rotate) {
    if (cost.empty() || std::all_of(cost.begin(), cost.end(), [&](float c) { return c == cost[0]; })) return;
    // Plans are kept per shape (a call's host time stays that of a lookup).
    std::vector<int32_t> key{num_tiles, grid, rotate};
    for (const float c : cost) {
        int32_t bits;
        std::memcpy(&bits, &c, sizeof bits);
        key.push_back(bits);
    }
    static std::mutex mu;
    static std::map<std::vector<int32_t>, TileTail> plans;
    std::lock_guard<std::mutex> lock(mu);
    auto found = plans.find(key);
    if (found == plans.end()) {
        TileTail plan = tt;   // unplanned, unless one fits below
        for (int r = kTailRounds; r >= 1; --r)   // fewer rounds where a block's list would not fit
            if (make_plan(plan, cost, num_tiles, grid, rotate, std::max(0, num_tiles / grid - r))) break;
        if (plans.size() >= 64) plans.clear();
        found = plans.emplace(std::move(key), plan).first;
    }
    const TileTail& plan = found->second;
    tt.round0 = plan.round0;
    tt.rounds = plan.rounds;
    tt.base = plan.base;
    if (plan.rounds > plan.round0)
        std::memcpy(tt.t, plan.t, sizeof(uint16_t) * static_cast<size_t>(plan.rounds - plan.round0) * grid);
}

}  // namespace sm90
}  // namespace flashmin
