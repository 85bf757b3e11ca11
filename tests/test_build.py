import torch

import embedfast


def test_ops_registered():
    # every schema in csrc/ops.cpp is reachable through torch.ops.embedfast
    assert hasattr(torch.ops.embedfast, "load_vectors")
    assert embedfast.__version__


def test_constant_under_compile_sets_what_dynamo_sets():
    import torch._dynamo

    from embedfast._backend import constant_under_compile

    marked = torch._dynamo.assume_constant_result(lambda: 1)
    assert {k: v for k, v in vars(marked).items()} == {"_dynamo_marked_constant": True}
    assert constant_under_compile(lambda: 1)._dynamo_marked_constant is True


def test_import_does_not_load_dynamo():
    # importing torch._dynamo (and with it sympy, inductor, triton) costs ~1 s and ~150 MB: only when compiling
    import subprocess
    import sys

    code = "import sys, embedfast; print(sorted(m for m in ('torch._dynamo', 'triton') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_sanitizer_build_never_replaces_the_in_place_extension():
    # `make asan` builds with EMBEDFAST_SANITIZE=1 into build/asan/; an in-place build with it is refused before
    # anything is compiled, so the normal embedfast/_C*.so stays the optimised one
    import glob
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    so = glob.glob(os.path.join(repo, "embedfast", "_C*.so"))
    before = [os.stat(p).st_mtime_ns for p in so]
    env = dict(os.environ, EMBEDFAST_SANITIZE="1")
    out = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "never in place" in out.stderr
    assert [os.stat(p).st_mtime_ns for p in so] == before
