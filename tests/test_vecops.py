"""csrc/include/embedfast/vecops.h's multi-row helpers, compiled for each instruction set this machine runs
(scalar, AVX2+FMA, -march=native, AVX-512 where the CPU has it) by tests/cpp/vecops_check.cpp: bit for bit equal to
their one-row twins, close to a double-precision reference, nothing written outside the rows."""
from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CXX = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


FLAGS = {"scalar": [], "avx2": ["-mavx2", "-mfma"], "native": ["-march=native"], "avx512": ["-march=x86-64-v4"]}
NEEDS = {"avx2": {"avx2", "fma"}, "avx512": {"avx512f", "avx512bw", "avx512dq", "avx512vl"}}


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
@pytest.mark.parametrize("isa", sorted(FLAGS))
def test_vecops_helpers_against_their_twins_and_doubles(isa, tmp_path):
    if not NEEDS.get(isa, set()) <= _cpu_flags():
        pytest.skip(f"this CPU cannot run {isa} code")
    exe = tmp_path / f"vecops_{isa}"
    build = subprocess.run([CXX, "-O2", "-std=c++17", *FLAGS[isa], "-I", os.path.join(REPO, "csrc", "include"),
                            os.path.join(HERE, "cpp", "vecops_check.cpp"), "-o", str(exe)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    seed = random.SystemRandom().randrange(1, 2**31)
    run = subprocess.run([str(exe), str(seed), "3000"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.startswith("ok "), f"seed {seed}: {run.stdout}{run.stderr}"
