"""What the CUDA extension is built from: one list, read by setup.py (ahead of time), by
flashmin_nn/_ext.py (JIT build on first use) and by .ci/run (compile-only check of every .cu).

Keep this file free of imports beyond the standard library: setup.py reads it before
flashmin_nn can be imported.
"""
import os

# Paths relative to the repository root.
CPP_SOURCES = ["csrc/flashmin_api.cpp"]
CUDA_SOURCES = [
    "csrc/minimal/attention_minimal.cu",
    "csrc/tensor_core/tc_fwd.cu",
    "csrc/tensor_core/tc_fwd_hdim32.cu",
    "csrc/tensor_core/tc_fwd_hdim64.cu",
    "csrc/tensor_core/tc_fwd_hdim96.cu",
    "csrc/tensor_core/tc_fwd_hdim128.cu",
    "csrc/tensor_core/tc_fwd_hdim256.cu",
    "csrc/tensor_core/decode_hdim64.cu",
    "csrc/tensor_core/decode_hdim128.cu",
]
INCLUDE_DIRS = ["csrc"]

CXX_FLAGS = ["-O3"]
NVCC_FLAGS = [
    "-O3",
    # No --use_fast_math: the fp32 teaching kernel needs an accurate expf; the tensor-core kernel
    # asks for ex2.approx itself (fast_exp2 in csrc/tensor_core/tc_fwd_kernel.cuh).
    "--expt-relaxed-constexpr",
    "-lineinfo",                # source lines in ncu/compute-sanitizer reports, no runtime cost
    "-U__CUDA_NO_HALF_OPERATORS__",
    "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT16_OPERATORS__",
    "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
]

EXTENSION_NAME = "flashmin_nn._C"


def repo_path(*parts):
    """Absolute path of a file in the source tree (this file sits in flashmin_nn/)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *parts)
