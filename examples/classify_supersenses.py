"""Recipe 1: text classification with a task vocabulary and pretrained word vectors.

Task: the WordNet supersense (45 classes: noun.animal, verb.motion, adj.all, ...) of each definition in the
corpus that ships with embedfast (``embedfast.data.supersense_glosses``), split by synset into train and test.

Workflow: vocabulary from the training texts; ``Vectors.to_embedding`` from pretrained vectors (``--vectors``,
any file ``embedfast.load_vectors`` reads; default: embedfast word2vec trained here on the embedded corpus minus
the test glosses), unknown words by the OOV policy; a bag-of-embeddings + MLP classifier (or a small CNN,
``--model cnn``); the embedding frozen for the first epoch, then trained with a smaller learning rate. The same
model with a random embedding (trained from the start at the full rate) is the baseline.

The last line reads ``test accuracy: pretrained A, random R`` (fractions; the mean over ``--seeds``).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from recipe_common import (PAD, Timer, add_run_args, batches, build_vocab, check_outputs, corpus_without,  # noqa: E402
                           encode, finish_runs, majority_share, plot_curves, set_trainable, split_supersenses,
                           train_word2vec)

import embedfast  # noqa: E402


class BagClassifier(nn.Module):
    """Mean of the word embeddings (padding excluded) -> MLP."""

    def __init__(self, emb: nn.Embedding, classes: int, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        self.emb = emb
        self.mlp = nn.Sequential(nn.Linear(emb.embedding_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, classes))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).unsqueeze(-1).to(torch.float32)
        x = (self.emb(ids).float() * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.mlp(x)


class CNNClassifier(nn.Module):
    """1-d convolutions of widths 2, 3, 4 over the word embeddings, max-pooled -> linear."""

    def __init__(self, emb: nn.Embedding, classes: int, channels: int = 128, dropout: float = 0.3):
        super().__init__()
        self.emb = emb
        self.convs = nn.ModuleList(nn.Conv1d(emb.embedding_dim, channels, k, padding=k - 1) for k in (2, 3, 4))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(3 * channels, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.emb(ids).float().transpose(1, 2)
        h = torch.cat([F.relu(c(x)).amax(-1) for c in self.convs], -1)
        return self.out(self.drop(h))


def make_model(kind: str, emb: nn.Embedding, classes: int) -> nn.Module:
    return BagClassifier(emb, classes) if kind == "bag" else CNNClassifier(emb, classes)


@torch.no_grad()
def accuracy(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor, batch_size: int = 1024) -> float:
    model.eval()
    right = sum(int((model(ids[i:i + batch_size]).argmax(-1) == labels[i:i + batch_size]).sum())
                for i in range(0, ids.shape[0], batch_size))
    model.train()
    return right / max(1, labels.numel())


def train_one(model: nn.Module, data: dict, *, epochs: int, lr: float, emb_lr: float, freeze_epochs: int,
              batch_size: int, seed: int) -> dict:
    """Train with the embedding frozen for ``freeze_epochs`` epochs, then at ``emb_lr``; the curves."""
    g = torch.Generator().manual_seed(seed)
    emb_params = list(model.emb.parameters())
    other = [p for n, p in model.named_parameters() if not n.startswith("emb.")]
    opt = torch.optim.Adam([{"params": other, "lr": lr}, {"params": emb_params, "lr": emb_lr}])
    curve, loss_curve, frozen_ok = [], [], True
    x, y = data["train"]
    step = 0
    for epoch in range(1, epochs + 1):
        frozen = epoch <= freeze_epochs
        set_trainable(model.emb, not frozen)
        before = model.emb.weight.detach().clone() if frozen else None
        total, n = 0.0, 0
        for b in batches(x.shape[0], batch_size, g):
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * b.numel()
            n += b.numel()
            step += 1
        if frozen:
            frozen_ok &= bool(torch.equal(before, model.emb.weight))
        loss_curve.append((epoch, total / n))
        curve.append((epoch, accuracy(model, *data["test"])))
    return {"acc_curve": curve, "loss_curve": loss_curve, "test_accuracy": curve[-1][1], "steps": step,
            "frozen_epochs_unchanged": frozen_ok}


def load_or_train_vectors(a, train: list, test: list) -> "embedfast.Vectors":
    """``--vectors`` or embedfast word2vec on the corpus minus the test glosses; standardised (each dimension
    centred and scaled to unit variance: word2vec's vectors share a large common direction) unless
    ``--raw-vectors``."""
    if a.vectors:
        v = embedfast.load_vectors(a.vectors)
    else:
        v = train_word2vec(corpus_without(s for _, _, s in test), dim=a.dim, epochs=a.w2v_epochs, seed=0)
    if a.raw_vectors or len(v) < 2:
        return v
    m = v.matrix.float()
    return embedfast.Vectors(v.words, (m - m.mean(0)) / m.std(0).clamp_min(1e-8))


def run(a) -> dict:
    timer = Timer()
    torch.set_num_threads(a.threads) if a.threads else None
    train, test, classes = split_supersenses(max_train=a.train, max_test=a.test)
    vectors = load_or_train_vectors(a, train, test)
    t_vectors = timer()
    vocab = build_vocab((t for t, _, _ in train), min_count=a.min_count)
    probe = vectors.to_embedding(vocab, oov=a.oov)
    stoi = probe.stoi
    data = {"train": encode(train, stoi), "test": encode(test, stoi)}
    std = float(vectors.matrix.float().std())
    out = {"classes": len(classes), "train": len(train), "test": len(test), "vocab": len(vocab),
           "coverage": str(probe.coverage), "coverage_ratio": probe.coverage.ratio,
           "majority": majority_share(data["test"][1]), "vectors_seconds": t_vectors, "runs": []}
    print(f"{len(train)} train / {len(test)} test definitions, {len(classes)} classes, vocabulary {len(vocab)}; "
          f"pretrained: {probe.coverage}", flush=True)
    for seed in a.seeds:
        for init in ("pretrained", "random"):
            torch.manual_seed(seed)
            g = torch.Generator().manual_seed(seed)
            if init == "pretrained":
                emb = vectors.to_embedding(vocab, oov=a.oov, oov_scale=std, generator=g, freeze=True)
                freeze, emb_lr = a.freeze_epochs, a.lr * a.emb_lr_factor
            else:
                emb = nn.Embedding(len(vocab), vectors.dim, padding_idx=0)
                nn.init.normal_(emb.weight, std=std, generator=g)
                with torch.no_grad():
                    emb.weight[0] = 0
                freeze, emb_lr = 0, a.lr
            model = make_model(a.model, emb, len(classes))
            t = Timer()
            r = train_one(model, data, epochs=a.epochs, lr=a.lr, emb_lr=emb_lr, freeze_epochs=freeze,
                          batch_size=a.batch_size, seed=seed)
            r.update(init=init, seed=seed, seconds=t())
            out["runs"].append(r)
            print(f"seed {seed} {init:10s}: test accuracy {r['test_accuracy']:.4f} ({r['seconds']:.1f} s, "
                  f"{r['steps']} steps)", flush=True)
    first = finish_runs(out, "init", ("pretrained", "random"), "test_accuracy", a.seeds, timer, a.json)
    plot_curves(a.plot, [("epoch", "training loss", {r["init"]: r["loss_curve"] for r in first}),
                         ("epoch", "test accuracy", {r["init"]: r["acc_curve"] for r in first})],
                title=f"supersenses ({len(classes)} classes), {a.model}; embedding frozen for epoch 1")
    print(f"majority class: {out['majority']:.4f}; total {out['seconds']:.1f} s")
    print(f"test accuracy: pretrained {out['pretrained']:.4f}, random {out['random']:.4f}")
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Example: python examples/classify_supersenses.py --epochs 5 "
                                        "--plot supersenses.png")
    ap.add_argument("--vectors", help="pretrained vectors (any format load_vectors reads); default: embedfast "
                                      "word2vec trained on the embedded corpus minus the test glosses")
    ap.add_argument("--epochs", type=int, default=6, help="training epochs (default 6)")
    ap.add_argument("--freeze-epochs", type=int, default=1, help="epochs with the pretrained embedding frozen")
    ap.add_argument("--model", choices=("bag", "cnn"), default="bag", help="bag-of-embeddings + MLP, or a CNN")
    ap.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    ap.add_argument("--emb-lr-factor", type=float, default=0.1,
                    help="pretrained embedding's learning rate once unfrozen, as a fraction of --lr")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--oov", choices=("normal", "zeros", "mean"), default="normal", help="OOV policy")
    ap.add_argument("--min-count", type=int, default=1, help="vocabulary: words seen this often in training")
    ap.add_argument("--train", type=int, help="at most this many training definitions (default: all)")
    ap.add_argument("--test", type=int, help="at most this many test definitions (default: all)")
    ap.add_argument("--raw-vectors", action="store_true", help="use the vectors as they are (default: each "
                    "dimension centred and scaled to unit variance)")
    ap.add_argument("--dim", type=int, default=100, help="default vectors: word2vec dimension")
    ap.add_argument("--w2v-epochs", type=int, default=5, help="default vectors: word2vec epochs")
    add_run_args(ap, "PNG of the loss and accuracy curves (needs matplotlib)")
    return ap


def main(argv: Optional[list] = None) -> dict:
    a = parser().parse_args(argv)
    if a.epochs < 1 or a.freeze_epochs < 0 or a.batch_size < 1:
        parser().error("--epochs and --batch-size must be >= 1, --freeze-epochs >= 0")
    check_outputs(a.plot, a.json)
    return run(a)


if __name__ == "__main__":
    main()
