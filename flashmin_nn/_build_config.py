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
    # A bool mask's key range per block of query rows, read before the prefill kernels.
    "csrc/common/mask_ranges.cu",
    # The sm80 prefill kernel: the head-dim dispatch, one file per compiled head dim.
    "csrc/prefill_sm80/prefill_launch.cu",
    "csrc/prefill_sm80/prefill_hdim32.cu",
    "csrc/prefill_sm80/prefill_hdim64.cu",
    "csrc/prefill_sm80/prefill_hdim96.cu",
    "csrc/prefill_sm80/prefill_hdim128.cu",
    "csrc/prefill_sm80/prefill_hdim256.cu",
    # The decode kernel and its split merge: the host-side plan, the head-dim dispatch, one file
    # per compiled head dim and configuration (decode_config.h).
    "csrc/decode/decode_plan.cu",
    "csrc/decode/decode_launch.cu",
    "csrc/decode/decode_hdim64.cu",
    "csrc/decode/decode_hdim128.cu",
    "csrc/decode/decode_hdim64_pair.cu",
    "csrc/decode/decode_hdim128_pair.cu",
    # The Hopper prefill kernel: real code only in the sm_90a pass (empty elsewhere); the host-side
    # plan of the persistent walk's last rounds, the head-dim dispatch, one file per configuration.
    "csrc/prefill_sm90/prefill_sm90_plan.cu",
    "csrc/prefill_sm90/prefill_sm90.cu",
    "csrc/prefill_sm90/prefill_sm90_hdim64.cu",
    "csrc/prefill_sm90/prefill_sm90_hdim64_rows128.cu",
    "csrc/prefill_sm90/prefill_sm90_hdim128.cu",
    "csrc/prefill_sm90/prefill_sm90_hdim256.cu",
    "csrc/prefill_sm90/prefill_sm90_hdim256_keys64.cu",
]
INCLUDE_DIRS = ["csrc"]

CXX_FLAGS = ["-O3"]
NVCC_FLAGS = [
    "-O3",
    # No --use_fast_math: the fp32 teaching kernel needs an accurate expf; the tensor-core kernel
    # asks for ex2.approx itself (fast_exp2 in csrc/common/ptx.cuh).
    "--expt-relaxed-constexpr",
    "-lineinfo",                # source lines in ncu/compute-sanitizer reports, no runtime cost
    "-U__CUDA_NO_HALF_OPERATORS__",
    "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_BFLOAT16_OPERATORS__",
    "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
]

EXTENSION_NAME = "flashmin_nn._C"

# GPU targets when neither TORCH_CUDA_ARCH_LIST nor a visible GPU says otherwise.
DEFAULT_ARCHS = ["8.0", "8.6", "8.9", "9.0"]


def arch_flags(archs):
    """nvcc and C++ flags for the GPU targets `archs` ("8.0", "9.0", "8.6+PTX", ...).

    Compute capability 9.0 is compiled as sm_90a (the Hopper-only instructions of the prefill_sm90
    kernel: wgmma, setmaxnreg), and then FLASHMIN_SM90A is defined for the binding, which refuses
    that kernel in a build without it. "+PTX" also embeds PTX for newer GPUs (for 9.0 the plain
    compute_90 PTX, in which the Hopper kernel is empty: it runs on 9.x only, and Python and the
    binding refuse it elsewhere). Returns
    (nvcc_flags, cxx_flags). The flags name the targets, so torch's cpp_extension adds none of its own.
    """
    nvcc, sm90a = [], False
    for a in archs:
        a = a.strip()
        ptx = a.endswith("+PTX")
        num = a[:-4] if ptx else a
        suffix = "a" if num.endswith("a") else ""
        num = num[:-1] if suffix else num
        parts = num.split(".")
        if len(parts) != 2 or not all(x.isdigit() for x in parts):
            raise ValueError(f"GPU target {a!r} is not of the form MAJOR.MINOR[a][+PTX] (e.g. 8.0, 9.0, 9.0+PTX)")
        major, minor = parts
        if num == "9.0":
            suffix = "a"          # the Hopper kernel's instructions
        cc = f"{major}{minor}{suffix}"
        sm90a |= num == "9.0"
        nvcc.append(f"-gencode=arch=compute_{cc},code=sm_{cc}")
        if ptx:   # PTX for newer GPUs: sm_90a's would load on 9.0 only, so plain compute_90 there
            plain = f"{major}{minor}"
            nvcc.append(f"-gencode=arch=compute_{plain},code=compute_{plain}")
    defines = ["-DFLASHMIN_SM90A=1"] if sm90a else []
    return nvcc + defines, defines


def target_archs(env, device_capabilities):
    """The GPU targets: TORCH_CUDA_ARCH_LIST (";" or " " separated) if set, else the visible GPUs'
    capabilities [(major, minor), ...], else DEFAULT_ARCHS."""
    listed = env.get("TORCH_CUDA_ARCH_LIST", "").replace(";", " ").split()
    if listed:
        return listed
    if device_capabilities:
        return sorted({f"{ma}.{mi}" for ma, mi in device_capabilities})
    return list(DEFAULT_ARCHS)


def repo_path(*parts):
    """Absolute path of a file in the source tree (this file sits in flashmin_nn/)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *parts)
