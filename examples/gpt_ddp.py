"""Recipe 4: data-parallel training of recipe 2's GPT (fused first layer) with torch.distributed (gloo).

Run under torchrun, two processes::

    torchrun --standalone --nproc_per_node 2 examples/gpt_ddp.py --steps 50

Each process takes its share of every global batch (``--batch-size`` windows per process) and
``DistributedDataParallel`` averages the gradients. Rank 0 then trains the same model (same initial weights: DDP
broadcasts rank 0's) in one process on the whole global batch and compares the two loss curves; the largest
difference must stay within ``--tolerance`` (float32 sums in another order). The last line reads
``ddp vs one process: max loss difference D over N steps (world W)``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from typing import Optional

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from recipe_common import check_outputs, plot_curves, write_json  # noqa: E402
from _lm import (GPT, batch_at, corpus_lines, default_w2v, fused_embedding, lm_loss, lm_vocab,  # noqa: E402
                 minilm_files, split_lines, token_stream)


def build(a, vocab, w2v):
    torch.manual_seed(a.seed)
    emb = fused_embedding(vocab, w2v, a.minilm, a.dim, seed=a.seed)
    return GPT(emb, len(vocab), a.dim, a.layers, a.heads, a.context)


def global_batches(a, train: torch.Tensor, world: int):
    """The same global batches (``world * batch_size`` windows) on every rank, from one seed."""
    g = torch.Generator().manual_seed(a.seed + 1)
    for _ in range(a.steps):
        yield torch.randint(0, train.numel() - a.context - 1, (world * a.batch_size,), generator=g)


def train(a, model, step_model, train: torch.Tensor, world: int, rank: int, ranks: int) -> list:
    """``a.steps`` SGD-with-momentum steps; the global mean loss of each step (all-reduced under DDP)."""
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
    losses = []
    for starts in global_batches(a, train, world):
        mine = starts.view(world, a.batch_size)[rank] if ranks > 1 else starts
        x, y = batch_at(train, mine, a.context)
        loss = lm_loss(step_model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        mean = loss.detach().clone()
        if ranks > 1:
            dist.all_reduce(mean)
            mean /= ranks
        losses.append(float(mean))
    return losses


def run(a) -> Optional[dict]:
    ranks = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if ranks < 2:
        raise SystemExit("gpt_ddp.py: run it under torchrun with --nproc_per_node 2 (WORLD_SIZE is "
                         f"{ranks}); see --help")
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=a.timeout))
    try:
        train_lines, _ = split_lines(corpus_lines(a.lines))
        vocab = lm_vocab(train_lines, a.vocab)
        stream = token_stream(train_lines, {w: i for i, w in enumerate(vocab)})
        w2v = default_w2v(train_lines, a.dim, a.w2v_epochs)
        a.minilm = a.minilm or minilm_files()
        model = build(a, vocab, w2v)
        ddp = DDP(model)  # broadcasts rank 0's parameters and buffers
        init = {k: v.clone() for k, v in model.state_dict().items()}
        losses = train(a, model, ddp, stream, ranks, rank, ranks)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    if rank != 0:
        return None
    ref_model = build(a, vocab, w2v)
    ref_model.load_state_dict(init)
    ref = train(a, ref_model, ref_model, stream, ranks, 0, 1)
    diff = max(abs(p - q) for p, q in zip(losses, ref))
    out = {"world": ranks, "steps": a.steps, "ddp": losses, "one_process": ref, "max_abs_diff": diff,
           "tolerance": a.tolerance}
    write_json(a.json, out)
    plot_curves(a.plot, [("step", "training loss", {f"DDP, {ranks} x {a.batch_size}": list(enumerate(losses, 1)),
                                                    f"one process, {ranks * a.batch_size}":
                                                        list(enumerate(ref, 1))})],
                title="GPT with a fused first layer: data-parallel vs one process")
    print(f"loss: step 1 {losses[0]:.4f} -> step {a.steps} {losses[-1]:.4f} (one process: {ref[-1]:.4f})")
    print(f"ddp vs one process: max loss difference {diff:.2e} over {a.steps} steps (world {ranks})")
    if diff > a.tolerance:
        raise SystemExit(f"gpt_ddp.py: the curves differ by {diff:.2e} > --tolerance {a.tolerance}")
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Example: torchrun --standalone --nproc_per_node 2 examples/gpt_ddp.py")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=8, help="windows per process and step")
    ap.add_argument("--context", type=int, default=32)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.05, help="SGD (momentum 0.9) learning rate")
    ap.add_argument("--vocab", type=int, default=1500)
    ap.add_argument("--lines", type=int, default=12000, help="corpus lines used")
    ap.add_argument("--w2v-epochs", type=int, default=1)
    ap.add_argument("--minilm", help="folder with MiniLM's model.safetensors and tokenizer.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--tolerance", type=float, default=1e-3, help="largest allowed loss difference")
    ap.add_argument("--timeout", type=float, default=300, help="seconds a collective may wait")
    ap.add_argument("--plot", help="PNG of both loss curves (rank 0; needs matplotlib)")
    ap.add_argument("--json", help="write both curves here (rank 0)")
    return ap


def main(argv: Optional[list] = None) -> Optional[dict]:
    a = parser().parse_args(argv)
    if min(a.steps, a.batch_size, a.context, a.threads) < 1 or a.dim % a.heads:
        parser().error("--steps, --batch-size, --context, --threads must be >= 1; --dim a multiple of --heads")
    check_outputs(a.plot, a.json)
    return run(a)


if __name__ == "__main__":
    main()
