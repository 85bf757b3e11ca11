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


# ---- the CUDA build decision (build_config.py next to setup.py), on fake directory trees --------------------
# (verified=True: the decision once the CUDA kernels have passed benchmarks/gpu/check.sh; until then "auto" never
# builds them, test_build_decision_unverified_kernels_need_embedfast_cuda_1)

def _build_config():
    import importlib.util
    import os
    import sys

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build_config.py")
    spec = importlib.util.spec_from_file_location("embedfast_build_config", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _file(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _toolkit(root, lib="lib64"):
    """A CUDA toolkit layout: bin/nvcc and the runtime library under `lib` (relative to root)."""
    nvcc = _file(root / "bin" / "nvcc")
    _file(root / lib / "libcudart.so.12")
    return nvcc


def _linked_nvcc(tmp_path, target):
    """nvcc reachable through a symlink in a bin folder outside the toolkit (e.g. ~/.local/bin/nvcc)."""
    link = tmp_path / "elsewhere" / "bin" / "nvcc"
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    return str(link)


SOURCES = ["csrc/cuda/fusion.cu"]


def test_build_decision_symlinked_nvcc_without_sources_is_a_cpu_build(tmp_path):
    # the reported failure: CUDA torch, nvcc through a symlink, csrc/cuda/ empty -> was a CUDAExtension, -lcudart
    bc = _build_config()
    nvcc = _linked_nvcc(tmp_path, _toolkit(tmp_path / "cuda-12.4"))
    d = bc.decide({}, [], "12.4", nvcc, verified=True)
    assert not d.cuda and d.toolkit is None
    assert "no CUDA sources" in d.reason and "\n" not in d.reason


def test_build_decision_resolves_the_symlink_to_the_real_toolkit(tmp_path):
    bc = _build_config()
    root = tmp_path / "cuda-12.4"
    nvcc = _linked_nvcc(tmp_path, _toolkit(root))
    d = bc.decide({}, SOURCES, "12.4", nvcc, verified=True)
    assert d.cuda
    assert d.toolkit.root == str(root.resolve())  # not the symlink's folder's parent
    assert d.toolkit.library_dir == str((root / "lib64").resolve())


def test_build_decision_symlink_into_a_tree_without_runtime_is_a_cpu_build(tmp_path):
    # nvcc alone (no libcudart anywhere under its root): no toolkit, a CPU build saying why
    bc = _build_config()
    nvcc = _linked_nvcc(tmp_path, _file(tmp_path / "nvcc-only" / "bin" / "nvcc"))
    d = bc.decide({}, SOURCES, "12.4", nvcc, verified=True)
    assert not d.cuda
    assert "libcudart" in d.reason and "\n" not in d.reason


def test_build_decision_finds_the_runtime_in_lib_or_targets(tmp_path):
    bc = _build_config()
    for lib in ("lib", "targets/x86_64-linux/lib"):
        root = tmp_path / lib.replace("/", "_")
        nvcc = _toolkit(root, lib)
        d = bc.decide({}, SOURCES, "12.4", str(nvcc), verified=True)
        assert d.cuda, lib
        assert d.toolkit.library_dir == str((root / lib).resolve())


def test_build_decision_cuda_home_is_checked_too(tmp_path):
    bc = _build_config()
    root = tmp_path / "cuda"
    _toolkit(root)
    assert bc.decide({"CUDA_HOME": str(root)}, SOURCES, "12.4", None, verified=True).cuda
    empty = tmp_path / "not-cuda"
    empty.mkdir()
    d = bc.decide({"CUDA_HOME": str(empty)}, SOURCES, "12.4", None, verified=True)
    assert not d.cuda and "CUDA_HOME" in d.reason


def test_build_decision_cpu_torch_and_no_nvcc(tmp_path):
    bc = _build_config()
    nvcc = str(_toolkit(tmp_path / "cuda"))
    d = bc.decide({}, SOURCES, None, nvcc, verified=True)
    assert not d.cuda and "no CUDA" in d.reason
    d = bc.decide({}, SOURCES, "12.4", None, verified=True)
    assert not d.cuda and "no nvcc" in d.reason


def test_build_decision_env_var(tmp_path):
    import pytest

    bc = _build_config()
    nvcc = str(_toolkit(tmp_path / "cuda"))
    # 0 / false / off: never, even with sources and a toolkit
    for off in ("0", "false", "OFF", " no "):
        d = bc.decide({"EMBEDFAST_CUDA": off}, SOURCES, "12.4", nvcc)
        assert not d.cuda and "EMBEDFAST_CUDA=0" in d.reason
    # unset / "" / auto: sources + toolkit decide
    for auto in ({}, {"EMBEDFAST_CUDA": ""}, {"EMBEDFAST_CUDA": "auto"}):
        assert bc.decide(auto, SOURCES, "12.4", nvcc, verified=True).cuda
        assert not bc.decide(auto, [], "12.4", nvcc, verified=True).cuda
    # 1: attempt the CUDA build (sources or not) when a toolkit is there, fail loudly when none is
    assert bc.decide({"EMBEDFAST_CUDA": "1"}, [], "12.4", nvcc).cuda
    with pytest.raises(bc.CudaBuildError, match="no CUDA toolkit"):
        bc.decide({"EMBEDFAST_CUDA": "1"}, SOURCES, "12.4", None)
    with pytest.raises(bc.CudaBuildError, match="no CUDA toolkit"):
        bc.decide({"EMBEDFAST_CUDA": "1"}, SOURCES, "12.4", _linked_nvcc(tmp_path, _file(tmp_path / "x" / "bin" / "nvcc")))
    with pytest.raises(bc.CudaBuildError, match="CPU build"):
        bc.decide({"EMBEDFAST_CUDA": "1"}, SOURCES, None, nvcc)
    # a typo is an error, not a silent choice
    with pytest.raises(ValueError, match="EMBEDFAST_CUDA"):
        bc.decide({"EMBEDFAST_CUDA": "yes please"}, SOURCES, "12.4", nvcc)


def test_build_decision_unverified_kernels_need_embedfast_cuda_1(tmp_path):
    # the CUDA kernels have not run on a GPU yet: "auto" never builds them, even with sources, a toolkit and a CUDA
    # torch; EMBEDFAST_CUDA=1 does (and still fails loudly without a toolkit)
    import pytest

    bc = _build_config()
    assert bc.CUDA_VERIFIED is False  # flip only after benchmarks/gpu/check.sh passed on a GPU
    nvcc = str(_toolkit(tmp_path / "cuda"))
    for auto in ({}, {"EMBEDFAST_CUDA": ""}, {"EMBEDFAST_CUDA": "auto"}):
        d = bc.decide(auto, SOURCES, "12.4", nvcc)
        assert not d.cuda and "not yet run on a GPU" in d.reason and "EMBEDFAST_CUDA=1" in d.reason
    d = bc.decide({"EMBEDFAST_CUDA": "1"}, SOURCES, "12.4", nvcc)
    assert d.cuda and d.toolkit.nvcc.endswith("nvcc")
    with pytest.raises(bc.CudaBuildError, match="no CUDA toolkit"):
        bc.decide({"EMBEDFAST_CUDA": "1"}, SOURCES, "12.4", None)
    assert not bc.decide({"EMBEDFAST_CUDA": "0"}, SOURCES, "12.4", nvcc, verified=True).cuda


def test_build_decision_sanitizer_build_is_cpu_only(tmp_path):
    bc = _build_config()
    nvcc = str(_toolkit(tmp_path / "cuda"))
    d = bc.decide({}, SOURCES, "12.4", nvcc, sanitize=True)
    assert not d.cuda and "SANITIZE" in d.reason


def test_build_config_imports_without_torch_or_side_effects():
    import subprocess
    import sys
    import os

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = "import sys, build_config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
