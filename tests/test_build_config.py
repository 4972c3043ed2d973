"""The GPU targets the extension is built for (flashmin_nn/_build_config.py): compute capability 9.0
becomes sm_90a, the target of the Hopper prefill kernel, and only then is FLASHMIN_SM90A defined
(the binding refuses prefill_sm90 in a build without it)."""
import runpy

import pytest

from flashmin_nn import _build_config as cfg


def test_hopper_is_built_as_sm90a_with_the_define():
    nvcc, cxx = cfg.arch_flags(["8.0", "9.0"])
    assert "-gencode=arch=compute_80,code=sm_80" in nvcc
    assert "-gencode=arch=compute_90a,code=sm_90a" in nvcc
    assert not any("code=sm_90," in f or f.endswith("code=sm_90") for f in nvcc)
    assert "-DFLASHMIN_SM90A=1" in nvcc and cxx == ["-DFLASHMIN_SM90A=1"]


@pytest.mark.parametrize("archs", [["8.0"], ["8.0", "8.6", "8.9"], ["8.6+PTX"]])
def test_no_define_without_hopper(archs):
    nvcc, cxx = cfg.arch_flags(archs)
    assert cxx == [] and not any("FLASHMIN_SM90A" in f or "90a" in f for f in nvcc)


def test_ptx_for_newer_gpus_is_plain():
    nvcc, _ = cfg.arch_flags(["9.0+PTX"])
    # sm_90a machine code for the H100/H200, and PTX that newer GPUs can load (not compute_90a's)
    assert nvcc[:2] == ["-gencode=arch=compute_90a,code=sm_90a", "-gencode=arch=compute_90,code=compute_90"]
    assert cfg.arch_flags(["9.0a"])[0][0] == "-gencode=arch=compute_90a,code=sm_90a"


def test_targets_from_the_environment_the_gpus_or_the_default():
    assert cfg.target_archs({"TORCH_CUDA_ARCH_LIST": "8.0;9.0"}, [(8, 6)]) == ["8.0", "9.0"]
    assert cfg.target_archs({"TORCH_CUDA_ARCH_LIST": "8.6 9.0+PTX"}, []) == ["8.6", "9.0+PTX"]
    assert cfg.target_archs({}, [(9, 0), (9, 0), (8, 0)]) == ["8.0", "9.0"]
    assert cfg.target_archs({}, []) == cfg.DEFAULT_ARCHS


def test_setup_reads_the_same_file():
    # setup.py reads _build_config.py with runpy before flashmin_nn can be imported: it must
    # stay free of imports beyond the standard library
    ns = runpy.run_path(cfg.__file__)
    assert ns["arch_flags"](["9.0"]) == cfg.arch_flags(["9.0"])
    src = open(cfg.__file__).read()
    assert "import torch" not in src and "from ." not in src


def test_other_arch_specific_targets_and_bad_entries():
    assert cfg.arch_flags(["10.0a"])[0] == ["-gencode=arch=compute_100a,code=sm_100a"]
    with pytest.raises(ValueError, match="'Hopper'"):
        cfg.arch_flags(["Hopper"])
