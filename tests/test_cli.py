"""The `embedfast` command line as a package (embedfast/cli/): every family's commands are there, `fuse` takes
`--format` like the other commands (`--binary` is a deprecated alias that warns in one line), and
`python -m embedfast.cli` (as torchrun runs it) works."""
from __future__ import annotations

import os
import subprocess
import sys

import torch

import embedfast
from embedfast.cli import build_parser, main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _two_sources(tmp_path):
    a, b = str(tmp_path / "a.bin"), str(tmp_path / "b.txt")
    embedfast.Vectors(["x", "y"], torch.tensor([[1.0, 0.0], [0.0, 1.0]])).save(a, format="word2vec-bin")
    embedfast.Vectors(["y", "z"], torch.tensor([[0.0, 3.0], [2.0, 2.0]])).save(b, format="glove")
    return a, b


def test_every_family_adds_its_commands():
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == {"info", "convert", "train", "fuse", "map", "eval", "demo"}
    assert all(callable(p.get_default("func")) for p in sub.choices.values())


def test_fuse_format(tmp_path, capsys):
    a, b = _two_sources(tmp_path)
    out = str(tmp_path / "f.txt")
    assert main(["fuse", a, a, "-o", out, "--format", "word2vec-bin"]) == 0
    assert embedfast.load_vectors(out).words == ["x", "y"]
    assert main(["fuse", a, b, "-o", out]) == 0  # auto: each input's format detected
    v = embedfast.load_vectors(out)
    assert v.words == ["x", "y", "z"] and torch.allclose(v.matrix[1], torch.tensor([0.0, 2.0]))
    assert main(["fuse", b, b, "-o", out, "--format", "native"]) == 2  # a text file is not a native cache
    err = capsys.readouterr().err
    assert err.startswith("embedfast fuse: error:") and len(err.strip().splitlines()) == 1


def test_fuse_binary_is_a_deprecated_alias(tmp_path, capsys):
    a, _ = _two_sources(tmp_path)
    out = str(tmp_path / "f.txt")
    assert main(["fuse", a, a, "-o", out, "--binary"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["embedfast fuse: warning: --binary is deprecated, use --format word2vec-bin"]
    assert embedfast.load_vectors(out).words == ["x", "y"]
    assert main(["fuse", a, a, "-o", out, "--binary", "--format", "glove"]) == 2
    assert "--binary contradicts --format glove" in capsys.readouterr().err


def test_python_dash_m_embedfast_cli():
    env = {**os.environ, "PYTHONPATH": REPO}
    for mod in ("embedfast", "embedfast.cli"):
        p = subprocess.run([sys.executable, "-m", mod, "--version"], capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 0 and p.stdout.strip() == f"embedfast {embedfast.__version__}", (mod, p.stderr)
