"""Compile the C++ sources that have ISA-specific paths with the sanitizer flags and another -march (default
x86-64-v4, i.e. AVX-512), object code thrown away: shows that those paths build under ASan/UBSan on a machine
whose own -march=native does not reach them. Usage: python fuzz/compile_check.py [-march=...] [files...]"""
import glob
import os
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor

from torch.utils.cpp_extension import include_paths

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _setup_flags() -> list:
    """setup.py's SANITIZE_FLAGS (one list of flags; setup.py cannot be imported: it runs setup())."""
    import ast

    tree = ast.parse(open(os.path.join(REPO, "setup.py")).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "SANITIZE_FLAGS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit("compile_check: setup.py has no SANITIZE_FLAGS")


def main() -> int:
    march = [a for a in sys.argv[1:] if a.startswith("-march=")] or ["-march=x86-64-v4"]
    files = [a for a in sys.argv[1:] if not a.startswith("-")]
    if not files:  # every source that includes the vector helpers (directly or through a header)
        files = [f for f in sorted(glob.glob(os.path.join(REPO, "csrc", "cpu", "*.cpp")))
                 if "vecops.h" in open(f).read() or "immintrin" in open(f).read()]
    SANITIZE_FLAGS = _setup_flags()

    inc = [f"-I{p}" for p in include_paths() + [sysconfig.get_paths()["include"], os.path.join(REPO, "csrc", "include")]]
    base = ["g++", "-std=c++20", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wno-sign-compare", "-Wno-unknown-pragmas",
            "-DTORCH_EXTENSION_NAME=_C", "-DTORCH_API_INCLUDE_EXTENSION_H", *march, *SANITIZE_FLAGS, *inc, "-c",
            "-o", os.devnull]

    def one(f):
        p = subprocess.run(base + [f], capture_output=True, text=True)
        return f, p.returncode, p.stderr

    bad = 0
    with ThreadPoolExecutor(int(os.environ.get("MAX_JOBS", "2"))) as ex:
        for f, rc, err in ex.map(one, files):
            print(f"{'ok  ' if rc == 0 else 'FAIL'} {os.path.relpath(f, REPO)} ({' '.join(march)}, sanitizers)")
            if rc:
                bad += 1
                print(err[-4000:])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
