"""Build the embedfast._C extension from csrc/.

CPU sources (csrc/*.cpp, csrc/cpu/*.cpp) always build. CUDA sources (csrc/cuda/*.cu) build when torch has
CUDA and nvcc is found; EMBEDFAST_CUDA=0/1 overrides. EMBEDFAST_PORTABLE=1 drops -march=native (use it when
the build machine is not the machine that runs the code, e.g. when making a wheel).
Build against the installed torch: pip install --no-build-isolation -e .
"""
import glob
import os

from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension


def _want_cuda() -> bool:
    import torch

    flag = os.environ.get("EMBEDFAST_CUDA")
    if flag is not None:
        return flag.strip() not in ("", "0", "false", "no")
    return torch.version.cuda is not None and CUDA_HOME is not None


def _extension():
    here = os.path.dirname(os.path.abspath(__file__))
    sources = sorted(glob.glob("csrc/*.cpp")) + sorted(glob.glob("csrc/cpu/*.cpp"))
    cxx = ["-O3", "-std=c++20", "-fvisibility=hidden", "-Wall", "-Wno-sign-compare"]
    if os.environ.get("EMBEDFAST_PORTABLE", "0") in ("", "0"):
        cxx.append("-march=native")
    include_dirs = [os.path.join(here, "csrc", "include")]
    kwargs = dict(
        name="embedfast._C",
        include_dirs=include_dirs,
        py_limited_api=False,
    )
    if _want_cuda():
        sources += sorted(glob.glob("csrc/cuda/*.cu"))
        nvcc = ["-O3", "-std=c++20", "--expt-relaxed-constexpr", "-lineinfo"]
        return CUDAExtension(sources=sources, extra_compile_args={"cxx": cxx + ["-DEMBEDFAST_WITH_CUDA"], "nvcc": nvcc}, **kwargs)
    return CppExtension(sources=sources, extra_compile_args={"cxx": cxx}, **kwargs)


# EMBEDFAST_NO_EXT=1: install the Python package only (the Makefile builds the extension in place afterwards,
# so it is compiled once, incrementally, instead of once per pip call).
setup(
    ext_modules=[] if os.environ.get("EMBEDFAST_NO_EXT") == "1" else [_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
