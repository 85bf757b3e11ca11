"""A full disk under the trainer's and the CLI's outputs: a 64 KiB tmpfs mounted for the test (root only; skipped
where mounting is not permitted). The previous file survives whole, no partial file and no temporary file is
left, and the error names the file and says the disk is full."""
from __future__ import annotations

import os
import subprocess

import pytest
import torch

from embedfast import Word2Vec
from embedfast.testing import planted_corpus

from .util import assert_clean_failure, run_cli


@pytest.fixture()
def full_disk(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.fixture(scope="module")
def trained():
    sents, _ = planted_corpus(sentences=300)
    return Word2Vec(dim=100, min_count=1, epochs=1, threads=1).train(sents, progress=False), sents


def test_checkpoint_on_a_full_disk(full_disk, trained):
    w, _ = trained
    ck = full_disk / "w.ckpt"
    ck.write_bytes(b"previous checkpoint")
    with pytest.raises(OSError, match=r"No space left on device.*w\.ckpt") as ei:
        w.save_checkpoint(str(ck))
    assert ei.value.errno == 28
    assert ck.read_bytes() == b"previous checkpoint"
    assert os.listdir(full_disk) == ["w.ckpt"]


def test_train_with_a_checkpoint_on_a_full_disk(full_disk, trained):
    """A periodic checkpoint that cannot be written stops training with the error; the model in memory keeps a
    consistent state and can be saved elsewhere."""
    _, sents = trained
    ck = full_disk / "w.ckpt"
    w = Word2Vec(dim=100, min_count=1, epochs=2, threads=1, chunk_words=500)
    with pytest.raises(OSError, match="No space left on device"):
        w.train(sents, progress=False, checkpoint=str(ck), checkpoint_every=0)
    assert os.listdir(full_disk) == []
    assert w._pos["words_done"] > 0 and bool(torch.isfinite(w.w_in).all())
    w.train(progress=False)  # goes on where it stopped
    assert w.done


def test_vectors_on_a_full_disk_keep_the_previous_file(full_disk, trained):
    w, _ = trained
    for fmt in ("glove", "word2vec", "word2vec-bin", "native"):
        out = full_disk / f"v.{fmt}"
        out.write_bytes(b"previous")
        with pytest.raises(OSError, match="No space left on device"):
            w.save(str(out), format=fmt)
        assert out.read_bytes() == b"previous", fmt
        assert [f for f in os.listdir(full_disk) if not f.startswith("v.")] == [], fmt  # no temporary file


def test_cli_train_on_a_full_disk(full_disk, tmp_path, trained):
    _, sents = trained
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    out = full_disk / "v.txt"
    out.write_text("previous output\n")
    r = run_cli("train", str(corpus), "-o", str(out), "--dim", "100", "--min-count", "1", "--epochs", "1",
                "--threads", "1")
    assert_clean_failure(r, "No space left on device", str(out), returncode=2)
    assert out.read_text() == "previous output\n"
    assert os.listdir(full_disk) == ["v.txt"]
