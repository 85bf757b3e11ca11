"""Device and dtype lists shared by tests and benchmarks."""
from __future__ import annotations

import os
import warnings

import torch

from ._vocab import first_index


def has_triton() -> bool:
    """True when Triton kernels can run: a CUDA device with triton, or TRITON_INTERPRET=1 on the CPU."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"


def devices() -> list[str]:
    """Devices that have embedfast kernels on this machine."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    return out


FLOAT_DTYPES = [torch.float32, torch.float64]
TABLE_DTYPES = [torch.float32, torch.float16, torch.bfloat16]
INDEX_DTYPES = [torch.int32, torch.int64]


def tolerance(dtype: torch.dtype) -> dict:
    """atol/rtol for comparing a kernel against a float64 or float32 reference."""
    return {
        torch.float64: dict(atol=1e-10, rtol=1e-10),
        torch.float32: dict(atol=1e-5, rtol=1e-5),
        torch.float16: dict(atol=2e-3, rtol=2e-3),
        torch.bfloat16: dict(atol=2e-2, rtol=2e-2),
    }[dtype]


def spawn_with_timeout(fn, args, nprocs: int, timeout: float = 120.0, attempts: int = 2) -> None:
    """torch.multiprocessing.spawn(fn, args, nprocs) that cannot hang a test run: after `timeout` seconds the
    workers are killed and the spawn is tried again (`attempts` in all), then a TimeoutError is raised. Worker
    exceptions are re-raised as by spawn. (Process start-up on a loaded 2-core machine can stall.)
    `args` is a tuple, or a function of the attempt number returning one (e.g. a fresh rendezvous file each try).
    """
    import torch.multiprocessing as mp

    for attempt in range(attempts):
        try:
            return _spawn_once(fn, args(attempt) if callable(args) else args, nprocs, timeout)
        except (TimeoutError, mp.ProcessExitedException) as exc:
            # a stalled start or a worker killed by a signal (not a Python error in the worker, which
            # ProcessRaisedException reports and which is never retried) gets one more try
            if attempt == attempts - 1:
                raise
            warnings.warn(f"spawn_with_timeout: attempt {attempt + 1} failed ({exc}); trying again")


def _spawn_once(fn, args: tuple, nprocs: int, timeout: float) -> None:
    import time

    import torch.multiprocessing as mp

    ctx = mp.spawn(fn, args=args, nprocs=nprocs, join=False)
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            raise TimeoutError(f"{nprocs} spawned workers of {getattr(fn, '__name__', fn)} did not finish "
                               f"within {timeout:.0f} s")


def planted_corpus(seed: int = 0, groups: int = 30, size: int = 8, sentences: int = 4000, length: int = 10):
    """A corpus with planted structure for SGNS tests: `groups` groups of `size` words; each sentence uses the
    words of one group only, so words of a group share contexts by construction. Returns (sentences, groups)."""
    import random

    rng = random.Random(seed)
    words = [[f"g{g}w{i}" for i in range(size)] for g in range(groups)]
    out = []
    for _ in range(sentences):
        g = rng.randrange(groups)
        out.append([rng.choice(words[g]) for _ in range(length)])
    return out, words


def recall_at_k(w_in: torch.Tensor, vocab: list, groups, k: int = 10) -> float:
    """Fraction of each planted word's group mates found among its k nearest neighbours (cosine) in w_in."""
    index = first_index(vocab)
    x = torch.nn.functional.normalize(w_in.detach().cpu().float(), dim=1)
    sims = x @ x.t()
    sims.fill_diagonal_(-2)
    top = sims.topk(k, dim=1).indices
    hits = total = 0
    for group in groups:
        ids = {index[w] for w in group}
        for w in group:
            mates = ids - {index[w]}
            hits += len(mates & set(top[index[w]].tolist()))
            total += min(len(mates), k)
    return hits / total
