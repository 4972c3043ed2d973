"""The decode plan's choice of configuration, checked on the host (no GPU): tests/native/
decode_plan_check.cu asks csrc/decode/decode_plan.cu for the plans of calls on an sm_90, sm_80 and
sm_89 GPU's facts and checks rule (e): the pair configurations only where two of their blocks fit
an SM, at head dim 128 only for grids of one to two blocks per SM (then unsplit). Needs nvcc (CI
has it); skipped without."""
import re
import subprocess
from pathlib import Path

import pytest

from test_plan_walk import _nvcc

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(_nvcc() is None, reason="needs nvcc to build the host-side check")
def test_decode_plan_picks_the_pair_configuration_where_it_was_measured(tmp_path):
    exe = tmp_path / "decode_plan_check"
    build = subprocess.run(
        [_nvcc(), "-std=c++17", "-O2", f"-I{ROOT / 'csrc'}", str(ROOT / "tests/native/decode_plan_check.cu"),
         str(ROOT / "csrc/decode/decode_plan.cu"), "-o", str(exe)],
        capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, f"nvcc failed:\n{build.stderr[-3000:]}"
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    m = re.search(r"(\d+) cases, (\d+) bad", run.stdout)
    assert m, f"no summary line in the check's output:\n{run.stdout[-2000:]}"
    cases, bad = map(int, m.groups())
    assert bad == 0 and run.returncode == 0, run.stdout[-3000:]
    assert cases > 100, run.stdout[-2000:]
    # two pair blocks and the system's 1 KB each fit 228 KB, not 164 KB
    sizes = [int(x) for x in re.findall(r"(\d+) bytes", run.stdout)]
    assert len(sizes) == 2 and all(2 * (s + 1024) <= 228 * 1024 and 2 * (s + 1024) > 164 * 1024 for s in sizes), run.stdout
