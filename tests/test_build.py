import torch

import embedfast


def test_ops_registered():
    # every schema in csrc/ops.cpp is reachable through torch.ops.embedfast
    assert hasattr(torch.ops.embedfast, "load_vectors")
    assert embedfast.__version__


def test_constant_under_compile_sets_what_dynamo_sets():
    import torch._dynamo

    from embedfast._compile import constant_under_compile

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
