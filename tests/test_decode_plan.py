"""The decode plan's choice of configuration, checked on the host (no GPU): tests/native/
decode_plan_check.cu asks csrc/decode/decode_plan.cu for the plans of calls on an sm_90, sm_80 and
sm_89 GPU's facts and checks rule (e): the pair configurations only where two of their blocks fit
an SM, at head dim 128 only for grids of one to two blocks per SM (then unsplit). Needs nvcc (CI
has it); skipped without."""
import re

import pytest

from helpers import find_nvcc, run_native_check


@pytest.mark.skipif(find_nvcc() is None, reason="needs nvcc to build the host-side check")
def test_decode_plan_picks_the_pair_configuration_where_it_was_measured(tmp_path):
    (cases, bad), rc, out = run_native_check(tmp_path, "decode_plan_check", ["decode/decode_plan.cu"],
                                             r"(\d+) cases, (\d+) bad")
    assert bad == 0 and rc == 0, out[-3000:]
    assert cases > 100, out[-2000:]
    # two pair blocks and the system's 1 KB each fit 228 KB, not 164 KB
    sizes = [int(x) for x in re.findall(r"(\d+) bytes", out)]
    assert len(sizes) == 2 and all(2 * (s + 1024) <= 228 * 1024 and 2 * (s + 1024) > 164 * 1024 for s in sizes), out
