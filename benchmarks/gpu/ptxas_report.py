"""The register / spill / shared-memory report of every CUDA kernel from an nvcc build log made with -Xptxas=-v
(``make cuda-build`` writes it to build/cuda/ptxas.txt; the table goes into benchmarks/RESULTS.md).

    python benchmarks/gpu/ptxas_report.py build/cuda/build.log

ptxas prints, per kernel: "Compiling entry function '<mangled>' for 'sm_90'", then "N bytes stack frame, S bytes
spill stores, L bytes spill loads" and "Used R registers, ... bytes smem, ... bytes cmem[0]". Names are demangled
with c++filt when it is there. Exits 1 when the log holds no kernel (the build did not compile CUDA).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\d+a?)'")
_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def parse(text: str) -> list[dict]:
    """One dict per kernel: name (mangled), arch, registers, stack, spill_stores, spill_loads, smem (static)."""
    out, cur = [], None
    for line in text.splitlines():
        m = _ENTRY.search(line)
        if m:
            cur = dict(name=m.group(1), arch=m.group(2), registers=None, stack=0, spill_stores=0, spill_loads=0,
                       smem=0)
            out.append(cur)
            continue
        if cur is None:
            continue
        m = _SPILL.search(line)
        if m:
            cur.update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
        m = _USED.search(line)
        if m:
            cur["registers"] = int(m.group(1))
            s = _SMEM.search(line)
            cur["smem"] = int(s.group(1)) if s else 0
    return out


def demangle(names: list[str]) -> list[str]:
    exe = shutil.which("c++filt")
    if not exe or not names:
        return names
    res = subprocess.run([exe], input="\n".join(names), capture_output=True, text=True, check=False)
    got = res.stdout.splitlines()
    return got if len(got) == len(names) else names


def short(name: str) -> str:
    """The kernel's function name and template arguments, without the namespaces and the parameter list."""
    name = re.sub(r"embedfast::\(anonymous namespace\)::", "", name)
    depth, cut = 0, len(name)
    for i, ch in enumerate(name):  # the parameter list starts at the first '(' outside template brackets
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0:
            cut = i
            break
    return name[:cut].replace("c10::", "")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8", errors="replace") as f:
        kernels = parse(f.read())
    if not kernels:
        print(f"ptxas_report: no kernel in {argv[0]} (was it built with EMBEDFAST_PTXAS_VERBOSE=1?)", file=sys.stderr)
        return 1
    names = demangle([k["name"] for k in kernels])
    print(f"| kernel | arch | registers | spill stores / loads (bytes) | stack (bytes) | static smem (bytes) |")
    print("|---|---|---|---|---|---|")
    for k, n in sorted(zip(kernels, names), key=lambda kn: short(kn[1])):
        print(f"| `{short(n)}` | {k['arch']} | {k['registers']} | {k['spill_stores']} / {k['spill_loads']} | "
              f"{k['stack']} | {k['smem']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
