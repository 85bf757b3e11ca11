"""Shared pieces of the recipes in examples/: the supersense task split, the default word2vec vectors, the
task vocabulary, batching, the frozen-then-unfrozen schedule and the PNG plots."""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import embedfast  # noqa: E402
from embedfast._io import atomic_write, check_output_path  # noqa: E402
from embedfast.data import default_corpus_path, supersense_glosses  # noqa: E402

PAD, UNK = "<pad>", "<unk>"


def split_supersenses(test_fraction: float = 0.1, max_train: Optional[int] = None, max_test: Optional[int] = None,
                      seed: int = 0) -> Tuple[list, list, List[str]]:
    """Definitions of the embedded WordNet glosses with their supersense, split by synset (a synset's gloss
    never lands on both sides): (train, test, class names), each example ``(tokens, label id, synset)``."""
    rows = supersense_glosses("d")
    synsets = sorted({s for _, _, s in rows})
    rng = random.Random(seed)
    rng.shuffle(synsets)
    n_test = int(round(test_fraction * len(synsets)))
    test_set = set(synsets[:n_test])
    classes = sorted({lab for _, lab, _ in rows})
    cid = {c: i for i, c in enumerate(classes)}
    train = [(t.split(), cid[lab], s) for t, lab, s in rows if s not in test_set]
    test = [(t.split(), cid[lab], s) for t, lab, s in rows if s in test_set]
    rng.shuffle(train)
    rng.shuffle(test)
    return train[:max_train], test[:max_test], classes


def corpus_without(synsets: Iterable[str]) -> List[List[str]]:
    """The embedded corpus's lines (token lists) minus every gloss part of the given synsets: word2vec for a
    task never sees its test glosses."""
    drop = set(synsets)
    return [t.split() for t, _, s in supersense_glosses("de") if s not in drop]


def train_word2vec(sentences: Sequence[Sequence[str]], dim: int, epochs: int, seed: int = 0,
                   min_count: int = 2) -> "embedfast.Vectors":
    """embedfast word2vec (skip-gram, negative sampling) on token lists: the default pretrained vectors."""
    w2v = embedfast.Word2Vec(dim=dim, epochs=epochs, seed=seed, min_count=min_count)
    w2v.train(sentences, progress=False)
    return w2v.vectors


def build_vocab(texts: Iterable[Sequence[str]], min_count: int = 1) -> List[str]:
    """The task vocabulary from the training texts: ``<pad>``, ``<unk>``, then words by falling count."""
    counts = collections.Counter(w for t in texts for w in t)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return [PAD, UNK] + words


def encode(examples: Sequence[tuple], stoi: Dict[str, int], max_len: int = 64) -> Tuple[torch.Tensor, torch.Tensor]:
    """(ids [N, L] padded with 0, labels [N]) of ``(tokens, label, ...)`` examples; unknown words map to <unk>."""
    unk = stoi[UNK]
    L = max(1, min(max_len, max(len(e[0]) for e in examples)))
    ids = torch.zeros(len(examples), L, dtype=torch.int64)
    for i, e in enumerate(examples):
        row = [stoi.get(w, unk) for w in e[0][:L]]
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.int64)
    return ids, torch.tensor([e[1] for e in examples], dtype=torch.int64)


def batches(n: int, batch_size: int, generator: torch.Generator) -> List[torch.Tensor]:
    """A shuffled partition of range(n) into batches."""
    return list(torch.randperm(n, generator=generator).split(batch_size))


def set_trainable(module: torch.nn.Module, trainable: bool) -> None:
    """Freeze or unfreeze every parameter of ``module`` (the embedding's schedule: frozen, then trained)."""
    for p in module.parameters():
        p.requires_grad_(trainable)


def majority_share(labels: torch.Tensor) -> float:
    """Accuracy of always answering the most frequent class."""
    return float(torch.bincount(labels).max()) / max(1, labels.numel())


def check_outputs(*paths: Optional[str]) -> None:
    """Check every output path (folder exists, writable) before any long work."""
    for p in paths:
        if p:
            check_output_path(p, what="output")


def write_json(path: Optional[str], obj) -> None:
    """Write the measured figures atomically (``None``: nothing)."""
    if path:
        with atomic_write(path, "w") as f:
            json.dump(obj, f, indent=1)


def add_run_args(ap: argparse.ArgumentParser, plot_help: str) -> None:
    """The options every recipe of several seeds takes: ``--seeds``, ``--threads``, ``--plot``, ``--json``."""
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (the last line is the mean)")
    ap.add_argument("--threads", type=int, help="torch threads")
    ap.add_argument("--plot", help=plot_help)
    ap.add_argument("--json", help="write the figures here")


def mean_over_seeds(out: dict, key: str, names: Sequence[str], field: str, suffix: str = "") -> None:
    """``out[name + suffix]`` = the mean of ``run[field]`` over the runs of ``out["runs"]`` whose ``run[key]`` is
    ``name`` (one run a seed), for every name."""
    for name in names:
        rs = [r for r in out["runs"] if r[key] == name]
        out[name + suffix] = sum(r[field] for r in rs) / len(rs)


def finish_runs(out: dict, key: str, names: Sequence[str], field: str, seeds: Sequence[int], timer: "Timer",
                json_path: Optional[str]) -> List[dict]:
    """The end of a recipe's runs: ``mean_over_seeds(out, key, names, field)``, ``out["seconds"]`` (the whole
    recipe), the figures written to ``json_path``. Returns the runs of the first seed (the ones the plot shows)."""
    mean_over_seeds(out, key, names, field)
    out["seconds"] = timer()
    write_json(json_path, out)
    return [r for r in out["runs"] if r["seed"] == seeds[0]]


def plot_curves(path: Optional[str], panels: Sequence[Tuple[str, str, Dict[str, Sequence[Tuple[float, float]]]]],
                title: str = "") -> None:
    """One PNG with a panel per ``(x label, y label, {curve name: [(x, y), ...]})``; needs matplotlib (the
    ``plot`` extra)."""
    if not path:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (xl, yl, curves) in zip(axes[0], panels):
        for name, pts in curves.items():
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="." if len(pts) < 30 else None, label=name)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


class Timer:
    """Wall-clock seconds since creation (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0
