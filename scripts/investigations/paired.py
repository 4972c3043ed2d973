"""Paired timing for the device experiments: two implementations timed in alternating order, and
a distribution-free interval for the median of their per-pair ratios.

Used by gen_noise.py (GPT-2 generations) and read_ceiling.py (the decode cell) beside it.
"""
import math
import statistics


def alternating(pairs, a, b, time_one):
    """{a: [seconds], b: [seconds]}: time_one(name) for a then b in even pairs, b then a in odd
    ones, so that neither always runs first."""
    times = {a: [], b: []}
    for i in range(pairs):
        for name in ((a, b) if i % 2 == 0 else (b, a)):
            times[name].append(time_one(name))
    return times


def median_ci(xs, level=0.95):
    """Distribution-free interval for the median: sorted xs[lo], xs[hi] with the largest lo such
    that P(Binomial(n, 1/2) < lo + 1) <= (1 - level) / 2."""
    xs, n = sorted(xs), len(xs)
    lo, tail = -1, 0.0
    while lo + 1 < n:
        p = math.comb(n, lo + 1) / 2 ** n
        if tail + p > (1 - level) / 2:
            break
        tail += p
        lo += 1
    if lo < 0:
        return float("nan"), float("nan")
    return xs[lo], xs[n - 1 - lo]


def ratio_summary(ratios):
    """(median, 95% interval low, high, how many ratios exceed 1) of per-pair ratios."""
    lo, hi = median_ci(ratios)
    return statistics.median(ratios), lo, hi, sum(r > 1 for r in ratios)
