"""Build flashmin_nn, with its CUDA extension when this machine can build one.

`pip install -e . --no-build-isolation` compiles flashmin_nn._C ahead of time when the installed
torch has CUDA and nvcc is found; otherwise it installs the pure-Python package, and the first
CUDA call builds the extension with ninja (flashmin_nn/_ext.py).
Set FLASHMIN_NO_BUILD=1 to skip the ahead-of-time build, FLASHMIN_FORCE_BUILD=1 to require it.
TORCH_CUDA_ARCH_LIST picks the GPU targets (default: the GPUs on this machine); compute capability
9.0 is built as sm_90a, which the Hopper prefill kernel needs (flashmin_nn/_build_config.py).
"""
import os
import runpy

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
cfg = runpy.run_path(os.path.join(HERE, "flashmin_nn", "_build_config.py"))


def cuda_extension():
    if os.environ.get("FLASHMIN_NO_BUILD") == "1":
        return None, {}
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CUDAExtension
    except ImportError:
        return None, {}
    forced = os.environ.get("FLASHMIN_FORCE_BUILD") == "1"
    if torch.version.cuda is None or CUDA_HOME is None:
        if forced:
            raise RuntimeError("FLASHMIN_FORCE_BUILD=1 but torch has no CUDA or nvcc was not found")
        print("flashmin: no CUDA torch or no nvcc here; installing the pure-Python package "
              "(the CUDA extension is built on first use)")
        return None, {}
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 4))
    caps = [torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    nvcc_arch, cxx_arch = cfg["arch_flags"](cfg["target_archs"](os.environ, caps))
    ext = CUDAExtension(
        name=cfg["EXTENSION_NAME"],
        sources=cfg["CPP_SOURCES"] + cfg["CUDA_SOURCES"],
        include_dirs=[os.path.join(HERE, d) for d in cfg["INCLUDE_DIRS"]],
        extra_compile_args={"cxx": cfg["CXX_FLAGS"] + cxx_arch, "nvcc": cfg["NVCC_FLAGS"] + nvcc_arch},
    )
    return ext, {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext, cmdclass = cuda_extension()
setup(ext_modules=[ext] if ext else [], cmdclass=cmdclass)
