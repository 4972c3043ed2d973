"""Finding the CUDA extension: the prebuilt `flashmin_nn._C`, or a JIT build on first use.

Importing flashmin_nn never compiles anything. The first call on CUDA tensors loads `_C` (built by
`pip install -e . --no-build-isolation` on a machine with nvcc); without it, the extension is built
once with ninja through `torch.utils.cpp_extension.load` and cached (FLASHMIN_BUILD_DIR, or
torch's extensions cache). A machine with no CUDA toolchain gets an error saying what to install.
Loading the extension registers the CUDA implementation of torch.ops.flashmin.attention_fwd.
"""
import os
import shutil
import sys
import threading
import time
from typing import Optional

import torch

from . import _build_config as cfg

_lock = threading.Lock()
_module = None


def _toolchain_problem() -> Optional[str]:
    """Why a JIT build cannot work here, or None."""
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) was built without CUDA"
    from torch.utils.cpp_extension import CUDA_HOME
    if CUDA_HOME is None or not (shutil.which("nvcc") or os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc"))):
        return (f"no CUDA compiler found (nvcc; CUDA_HOME is {CUDA_HOME}): install the CUDA toolkit "
                f"{torch.version.cuda} (matching torch.version.cuda) and ninja, or install flashmin with "
                "`pip install -e . --no-build-isolation` on a machine that has them")
    if not torch.utils.cpp_extension.is_ninja_available():
        return "ninja is not installed (`pip install ninja`); it builds the CUDA extension"
    if not os.path.exists(cfg.repo_path(cfg.CPP_SOURCES[0])):
        return ("the CUDA sources (csrc/) are not next to this package; reinstall from a source "
                "checkout with `pip install -e . --no-build-isolation`")
    return None


def _prebuilt():
    try:
        from . import _C  # noqa: F401  (built ahead of time by setup.py)
        return _C
    except ImportError:
        return None


def unavailable_reason() -> Optional[str]:
    """None when the extension is loaded, prebuilt, or can be JIT-built here; else why not."""
    if _module is not None or _prebuilt() is not None:
        return None
    return _toolchain_problem()


def _jit_build():
    problem = _toolchain_problem()
    if problem is not None:
        raise RuntimeError(f"flashmin's CUDA extension is not built and cannot be built here: {problem}")
    from torch.utils.cpp_extension import load
    build_dir = os.environ.get("FLASHMIN_BUILD_DIR")
    if build_dir:
        os.makedirs(build_dir, exist_ok=True)
    print("flashmin: building the CUDA extension (first use; cached afterwards) ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    caps = [torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    nvcc_arch, cxx_arch = cfg.arch_flags(cfg.target_archs(os.environ, caps))
    mod = load(
        name="flashmin_nn_C",
        sources=[cfg.repo_path(s) for s in cfg.CPP_SOURCES + cfg.CUDA_SOURCES],
        extra_include_paths=[cfg.repo_path(d) for d in cfg.INCLUDE_DIRS],
        extra_cflags=cfg.CXX_FLAGS + cxx_arch,
        extra_cuda_cflags=cfg.NVCC_FLAGS + nvcc_arch,
        build_directory=build_dir,
        verbose=os.environ.get("FLASHMIN_VERBOSE_BUILD") == "1",
    )
    print(f"flashmin: CUDA extension ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return mod


def load():
    """The extension module (loading or building it on the first call)."""
    global _module
    if _module is None:
        with _lock:
            if _module is None:
                _module = _prebuilt() or _jit_build()
    return _module
