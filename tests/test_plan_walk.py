"""The Hopper prefill kernel's planned walk, checked on the host (no GPU): tests/native/
plan_walk_check.cu asks prefill_sm90.cu's plan_tile_tail for plans over thousands of grids, tile
counts and cost patterns and walks every block as TileWalk does; every tile must be visited exactly
once. Needs nvcc (CI has it); skipped without."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _nvcc():
    for cand in (os.environ.get("NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


@pytest.mark.skipif(_nvcc() is None, reason="needs nvcc to build the host-side check")
def test_every_tile_is_walked_once_with_the_plan(tmp_path):
    exe = tmp_path / "plan_walk_check"
    build = subprocess.run(
        [_nvcc(), "-std=c++17", "-O2", "--expt-relaxed-constexpr", "-arch=sm_90a", f"-I{ROOT / 'csrc'}",
         str(ROOT / "tests/native/plan_walk_check.cu"), str(ROOT / "csrc/prefill_sm90/prefill_sm90.cu"), "-o", str(exe)],
        capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, f"nvcc failed:\n{build.stderr[-3000:]}"
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    m = re.search(r"(\d+) cases, (\d+) planned, (\d+) bad", run.stdout)
    assert m, f"no summary line in the check's output:\n{run.stdout[-2000:]}"
    cases, planned, bad = map(int, m.groups())
    assert bad == 0 and run.returncode == 0, run.stdout[-3000:]
    assert cases > 1000 and planned > cases // 2, f"{cases} cases, {planned} planned: the check walked too few plans"
