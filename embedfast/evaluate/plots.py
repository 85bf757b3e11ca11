"""PNG plots (matplotlib, imported lazily: pip install embedfast[plot]): a loss curve and a PCA scatter plot."""
from __future__ import annotations

import os
from typing import Any, Sequence

from .._io import atomic_save_with, check_output_path
from ._common import PathLike
from .neighbours import project_2d

__all__ = ["plot_loss", "plot_projection"]


def _save_png(fig, path: PathLike) -> None:
    """Save a figure atomically (the previous file stays whole if the save fails) and close it."""
    try:
        p = check_output_path(path)
        atomic_save_with(p, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        _pyplot().close(fig)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "embedfast.evaluate plots need matplotlib: pip install matplotlib (or embedfast[plot])"
        ) from exc
    return plt


def plot_loss(points: Sequence[tuple[float, float]], path: PathLike, *, title: str = "SGNS training loss") -> str:
    """Write a PNG of a loss curve from ``(words processed, loss)`` points; returns the path."""
    pts = [(float(x), float(y)) for x, y in points]
    if not pts:
        raise ValueError("points: expected at least one (words, loss) point, got none")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 50 else None)
    ax.set_xlabel("words processed")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _save_png(fig, path)
    return os.fspath(path)


def plot_projection(vectors: Any, words: Sequence[str], path: PathLike, *, title: str = "PCA of word vectors") -> str:
    """Write a PNG scatter plot of the chosen words projected to 2-D with PCA; returns the path."""
    proj = project_2d(vectors, list(words))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(proj[:, 0].numpy(), proj[:, 1].numpy(), s=12)
    for (x, y), w in zip(proj.tolist(), words):
        ax.annotate(w, (x, y), fontsize=9, xytext=(3, 3), textcoords="offset points")
    ax.set_title(title)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    _save_png(fig, path)
    return os.fspath(path)
