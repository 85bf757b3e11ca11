"""Build the embedfast._C extension from csrc/.

CPU sources (csrc/*.cpp, csrc/cpu/*.cpp) always build. CUDA sources (csrc/cuda/*.cu) build only when there are
some, torch has CUDA and a CUDA toolkit is really found (nvcc's real path, the runtime library under it); otherwise
a CPU build, with one printed line saying why (the decision: build_config.py). EMBEDFAST_CUDA=0 never builds CUDA,
EMBEDFAST_CUDA=1 builds it or fails loudly. EMBEDFAST_PORTABLE=1 drops -march=native (use it when
the build machine is not the machine that runs the code, e.g. when making a wheel).
EMBEDFAST_SANITIZE=1 builds the CPU extension with AddressSanitizer and UndefinedBehaviorSanitizer (-O1 -g, no
recovery from UB, CUDA off) into build/asan/ instead of in place (`make asan` does this and runs the op tests
under it; an in-place build is refused so that the normal embedfast/_C*.so is never replaced by it).
Build against the installed torch: pip install --no-build-isolation -e .
"""
import glob
import os
import shutil
import sys

from setuptools import setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_config  # noqa: E402  (next to this file)


SANITIZE = os.environ.get("EMBEDFAST_SANITIZE", "0") not in ("", "0")
# float-cast-overflow (e.g. int(NaN) indexing a table) is not part of gcc's -fsanitize=undefined: named here
SANITIZE_FLAGS = ["-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer", "-g", "-O1"]
SANITIZE_DIR = os.path.join("build", "asan")


def _cuda_decision() -> build_config.BuildDecision:
    """build_config.decide on this machine; prints its one line."""
    import torch

    decision = build_config.decide(os.environ, sorted(glob.glob("csrc/cuda/*.cu")), torch.version.cuda,
                                   shutil.which("nvcc"), sanitize=SANITIZE)
    what = "with CUDA" if decision.cuda else "for the CPU only"
    print(f"embedfast: building embedfast._C {what}: {decision.reason}", file=sys.stderr)
    return decision


def _extension():
    here = os.path.dirname(os.path.abspath(__file__))
    sources = sorted(glob.glob("csrc/*.cpp")) + sorted(glob.glob("csrc/cpu/*.cpp"))
    cxx = ["-O3", "-std=c++20", "-fvisibility=hidden", "-Wall", "-Wno-sign-compare"]
    if os.environ.get("EMBEDFAST_PORTABLE", "0") in ("", "0"):
        cxx.append("-march=native")
    if SANITIZE:
        cxx = [f for f in cxx if f != "-O3"] + SANITIZE_FLAGS
    else:
        cxx.append("-g0")  # no debug info (Python's CFLAGS add -g): the same code, a much shorter build
    include_dirs = [os.path.join(here, "csrc", "include")]
    kwargs = dict(
        name="embedfast._C",
        include_dirs=include_dirs,
        py_limited_api=False,
    )
    if SANITIZE:
        kwargs["extra_link_args"] = [SANITIZE_FLAGS[0]]
    decision = _cuda_decision()
    if decision.cuda:
        # torch's CUDA_HOME comes from nvcc's unresolved path: point it at the toolkit really found
        os.environ["CUDA_HOME"] = decision.toolkit.root
        import torch.utils.cpp_extension as cpp_extension

        cpp_extension.CUDA_HOME = decision.toolkit.root
        sources += sorted(glob.glob("csrc/cuda/*.cu"))
        # -Xcompiler=-Wall: host-side warnings too (`make cuda-build` fails on any warning); EMBEDFAST_PTXAS_VERBOSE=1
        # adds ptxas' register / spill report of every kernel (recorded in benchmarks/RESULTS.md)
        nvcc = ["-O3", "-std=c++20", "--expt-relaxed-constexpr", "-lineinfo", "-Xcompiler=-Wall",
                "-Xcompiler=-Wno-sign-compare"]
        if os.environ.get("EMBEDFAST_PTXAS_VERBOSE", "0") not in ("", "0"):
            nvcc.append("-Xptxas=-v")
        # -Wno-unknown-pragmas: torch's CPU vector headers carry `#pragma unroll`, which gcc ignores with a warning
        return cpp_extension.CUDAExtension(
            sources=sources, library_dirs=[decision.toolkit.library_dir],
            extra_compile_args={"cxx": cxx + ["-DEMBEDFAST_WITH_CUDA", "-Wno-unknown-pragmas"], "nvcc": nvcc},
            **kwargs)
    from torch.utils.cpp_extension import CppExtension

    return CppExtension(sources=sources, extra_compile_args={"cxx": cxx}, **kwargs)


# EMBEDFAST_NO_EXT=1: install the Python package only (the Makefile builds the extension in place afterwards,
# so it is compiled once, incrementally, instead of once per pip call).
_options = {}
if SANITIZE:
    if any(a in ("--inplace", "-i", "develop", "install", "bdist_wheel", "editable_wheel") for a in sys.argv):
        sys.exit("setup.py: EMBEDFAST_SANITIZE=1 builds into build/asan/ only (setup.py build_ext), never in place "
                 "or into a package")
    _options = {"build_ext": {"build_lib": os.path.join(SANITIZE_DIR, "lib"),
                              "build_temp": os.path.join(SANITIZE_DIR, "tmp")}}
from torch.utils.cpp_extension import BuildExtension  # noqa: E402

setup(
    ext_modules=[] if os.environ.get("EMBEDFAST_NO_EXT") == "1" else [_extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    options=_options,
)
