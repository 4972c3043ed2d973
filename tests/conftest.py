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
