"""The build decision of setup.py: CPU only, or CPU + CUDA kernels.

Pure functions of what they are given (environment values, paths, the torch CUDA version), importable without
side effects and without torch, so that tests/test_build.py checks the decision on fake directory trees.

CUDA is compiled only when all of these hold:
  - EMBEDFAST_CUDA is not 0 (unset / "auto": decide from what is found; 1: build CUDA or fail loudly), and, until
    the kernels have passed benchmarks/gpu/check.sh on a GPU (CUDA_VERIFIED), it is 1: "auto" never builds them;
  - the sanitizer build is off (EMBEDFAST_SANITIZE=1 builds the CPU extension only);
  - torch is a CUDA build;
  - csrc/cuda/ holds CUDA sources (*.cu; EMBEDFAST_CUDA=1 attempts the build without them);
  - a CUDA toolkit is really there: nvcc's real path (symlinks resolved) gives the toolkit root, and that root
    holds the CUDA runtime library (libcudart) under lib64/, lib/ or targets/*/lib/.
Otherwise the extension is built for the CPU, and setup.py prints one line saying why.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

#: Where a toolkit keeps its runtime library, relative to its root (the last one for the CUDA "targets" layout).
CUDART_DIRS = ("lib64", "lib", os.path.join("targets", "*", "lib"))
#: The runtime library's file names (shared, versioned shared, static).
CUDART_NAMES = ("libcudart.so", "libcudart.so.*", "libcudart_static.a")

#: True once the CUDA kernels (csrc/cuda/) have passed benchmarks/gpu/check.sh on a GPU; until then only
#: EMBEDFAST_CUDA=1 builds them (and embedfast/_backend.py never picks them for backend="auto").
CUDA_VERIFIED = False

_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")
_AUTO = ("", "auto")


class CudaBuildError(RuntimeError):
    """EMBEDFAST_CUDA=1 asked for the CUDA build, but it cannot be made (the message says why)."""


@dataclass(frozen=True)
class CudaToolkit:
    """A CUDA toolkit found on disk: its root, nvcc and the folder of its runtime library."""

    root: str
    nvcc: str
    library_dir: str


@dataclass(frozen=True)
class BuildDecision:
    """What setup.py builds: ``cuda`` True with the ``toolkit`` to use, else a CPU build; ``reason`` is one line."""

    cuda: bool
    reason: str
    toolkit: Optional[CudaToolkit] = None


def cuda_mode(value: Optional[str]) -> str:
    """EMBEDFAST_CUDA's value as "auto" (unset, "" or "auto"), "off" (0/false/no/off) or "on" (1/true/yes/on).

    Any other value is a ValueError: a typo must not silently pick a build.
    """
    v = "" if value is None else value.strip().lower()
    if v in _AUTO:
        return "auto"
    if v in _OFF:
        return "off"
    if v in _ON:
        return "on"
    raise ValueError(f"EMBEDFAST_CUDA={value!r}: use 1 (build the CUDA kernels), 0 (never) or leave it unset (auto)")


def cudart_library_dir(root: str) -> Optional[str]:
    """The folder under the toolkit ``root`` that holds the CUDA runtime library (libcudart), or None."""
    for sub in CUDART_DIRS:
        for folder in sorted(glob.glob(os.path.join(root, sub))):
            for name in CUDART_NAMES:
                if any(os.path.isfile(p) for p in glob.glob(os.path.join(folder, name))):
                    return folder
    return None


def find_cuda_toolkit(nvcc_on_path: Optional[str], cuda_home: Optional[str] = None) -> tuple[Optional[CudaToolkit], str]:
    """Find a real CUDA toolkit: (the toolkit, "") or (None, why not).

    ``cuda_home`` (the CUDA_HOME / CUDA_PATH environment value) is tried first: its bin/nvcc and runtime library.
    Then ``nvcc_on_path`` (what ``shutil.which("nvcc")`` found): its real path (os.path.realpath, so that a symlink
    in a ``bin`` folder outside the toolkit leads to the toolkit) gives the root, two levels up from the binary.
    """
    tried = []
    candidates = []
    if cuda_home:
        candidates.append((os.path.realpath(cuda_home), f"CUDA_HOME={cuda_home}"))
    if nvcc_on_path:
        real = os.path.realpath(nvcc_on_path)
        candidates.append((os.path.dirname(os.path.dirname(real)), f"nvcc at {nvcc_on_path} (really {real})"))
    if not candidates:
        return None, "no nvcc on PATH and CUDA_HOME is not set"
    for root, source in candidates:
        nvcc = os.path.join(root, "bin", "nvcc")
        if not os.path.isfile(nvcc):
            tried.append(f"{source}: no {nvcc}")
            continue
        lib = cudart_library_dir(root)
        if lib is None:
            tried.append(f"{source}: no CUDA runtime library (libcudart) under {root}/{{lib64,lib,targets/*/lib}}")
            continue
        return CudaToolkit(root=root, nvcc=nvcc, library_dir=lib), ""
    return None, "; ".join(tried)


def decide(
    env: Mapping[str, str],
    cuda_sources: Sequence[str],
    torch_cuda: Optional[str],
    nvcc_on_path: Optional[str],
    sanitize: bool = False,
    verified: Optional[bool] = None,
) -> BuildDecision:
    """The build decision from the environment ``env`` (EMBEDFAST_CUDA, CUDA_HOME, CUDA_PATH), the CUDA source files
    found, torch's CUDA version (``torch.version.cuda``; None for a CPU torch) and nvcc's path on PATH (or None).

    ``verified`` (default :data:`CUDA_VERIFIED`): whether "auto" may build the CUDA kernels at all.

    Raises ValueError for an EMBEDFAST_CUDA value that is not a mode, and CudaBuildError when EMBEDFAST_CUDA=1 asks
    for a CUDA build that cannot be made (CPU torch, no toolkit found).
    """
    mode = cuda_mode(env.get("EMBEDFAST_CUDA"))
    verified = CUDA_VERIFIED if verified is None else verified
    if mode == "off":
        return BuildDecision(False, "EMBEDFAST_CUDA=0")
    if sanitize:
        return BuildDecision(False, "EMBEDFAST_SANITIZE=1 builds the CPU extension only")
    if mode == "auto" and not verified:
        return BuildDecision(False, "the CUDA kernels have not yet run on a GPU: only EMBEDFAST_CUDA=1 builds them")
    if torch_cuda is None:
        if mode == "on":
            raise CudaBuildError("EMBEDFAST_CUDA=1, but the installed torch is a CPU build (torch.version.cuda is None)")
        return BuildDecision(False, "the installed torch has no CUDA")
    if not cuda_sources and mode == "auto":
        return BuildDecision(False, "no CUDA sources (csrc/cuda/*.cu)")
    toolkit, why = find_cuda_toolkit(nvcc_on_path, env.get("CUDA_HOME") or env.get("CUDA_PATH"))
    if toolkit is None:
        if mode == "on":
            raise CudaBuildError(f"EMBEDFAST_CUDA=1, but no CUDA toolkit was found: {why}")
        return BuildDecision(False, f"no CUDA toolkit found ({why})")
    how = "EMBEDFAST_CUDA=1" if mode == "on" else f"{len(cuda_sources)} CUDA source(s)"
    return BuildDecision(True, f"{how}, toolkit {toolkit.root} (runtime in {toolkit.library_dir})", toolkit)
