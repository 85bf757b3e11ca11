"""Timing and table helpers of the GPU benchmarks (benchmarks/gpu/): median wall time of a callable on CUDA
(CUDA events around each call, after warm-up calls) or on the CPU (perf_counter; the dry runs), and a plain
Markdown table printer. Everything they print is also written as JSON lines when ``--json`` is given."""
from __future__ import annotations

import json
import statistics
import time
from typing import Callable, Optional, Sequence

import torch


def median_ms(fn: Callable[[], object], device: str, warmup: int = 2, reps: int = 10,
              max_seconds: float = 10.0) -> float:
    """Median milliseconds of fn() over `reps` calls (fewer when they would exceed max_seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    t_start = time.perf_counter()
    for _ in range(reps):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() - t_start > max_seconds:
            break
    return statistics.median(times)


def time_chunks(run: Callable[[int], torch.Tensor], chunks: int, device: str) -> "tuple[float, torch.Tensor]":
    """(seconds, summed stats) of run(0), ..., run(chunks - 1) after one warm-up call run(0) (it compiles the
    kernel and uploads tables; that chunk is trained once more), the device synchronised around the timed calls."""
    run(0)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    stats = [run(k) for k in range(chunks)]
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, torch.stack([s.cpu() for s in stats]).sum(0)


def table(header: Sequence[str], rows: Sequence[Sequence[object]], json_path: Optional[str] = None,
          title: str = "") -> str:
    """A Markdown table (floats with 3 significant digits); the rows are appended to json_path as JSON lines."""
    def fmt(x):
        if isinstance(x, float):
            return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
        return str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(x) for x in r) + " |" for r in rows]
    if json_path:
        with open(json_path, "a") as f:
            for r in rows:
                f.write(json.dumps({"table": title, **dict(zip(header, r))}) + "\n")
    return "\n".join(lines)
