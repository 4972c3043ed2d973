"""pytest setup: markers, per-test seeds, and `helpers` importable whatever the import mode."""
import os
import random
import sys
import zlib

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~20 s; deselect with -m 'not slow'")
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU (skipped where none is present)")
    # Under pytest-xdist (-n N) each worker's CPU ops (the float64 references) get their share of
    # the cores, not all of them: 15 workers x 16 intra-op threads on 16 cores made single tests
    # of tests/test_options_cuda.py and tests/test_cuda.py take 10-40 s (H200 machine, 2026-12-02).
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_collection_modifyitems(config, items):
    # Tests in test_cuda.py carry the marker, so `-m cuda` / `-m 'not cuda'` select them.
    for item in items:
        if "cuda" in item.nodeid.split("::")[0]:
            item.add_marker(pytest.mark.cuda)


@pytest.fixture(autouse=True)
def _seed(request):
    """A fresh, reproducible seed per test (derived from its id, so parametrized cases differ)."""
    seed = zlib.crc32(request.node.nodeid.encode()) & 0x7FFFFFFF
    random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too
    yield seed
