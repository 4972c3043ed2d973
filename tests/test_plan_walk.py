"""The Hopper prefill kernel's planned walk, checked on the host (no GPU): tests/native/
plan_walk_check.cu asks prefill_sm90_plan.cu's plan_tile_tail for plans over thousands of grids, tile
counts and cost patterns and walks every block as TileWalk does; every tile must be visited exactly
once. Needs nvcc (CI has it); skipped without."""
import pytest

from helpers import find_nvcc, run_native_check


@pytest.mark.skipif(find_nvcc() is None, reason="needs nvcc to build the host-side check")
def test_every_tile_is_walked_once_with_the_plan(tmp_path):
    (cases, planned, bad), rc, out = run_native_check(
        tmp_path, "plan_walk_check", ["prefill_sm90/prefill_sm90_plan.cu"], r"(\d+) cases, (\d+) planned, (\d+) bad",
        flags=("--expt-relaxed-constexpr",))
    assert bad == 0 and rc == 0, out[-3000:]
    assert cases > 1000 and planned > cases // 2, f"{cases} cases, {planned} planned: the check walked too few plans"
