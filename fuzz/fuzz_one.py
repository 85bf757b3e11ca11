"""Run one fuzz target in this process: ``python fuzz/fuzz_one.py TARGET CORPUS_DIR [libFuzzer flags...]``, or
replay one input: ``python fuzz/fuzz_one.py TARGET FILE`` (prints the traceback; exit 1 for a finding).

With atheris (the default when it is installed) the embedfast package is instrumented for coverage and
libFuzzer drives the mutations; flags such as ``-runs=N``, ``-max_total_time=S``, ``-timeout=S``, ``-seed=N``
are libFuzzer's. Without atheris (or with ``FUZZ_ENGINE=random``) a plain mutation loop runs instead (no coverage
feedback) and understands ``-runs``, ``-max_total_time`` and ``-seed``.

A Python exception the target does not document is a finding: it is written to ``$FUZZ_FINDINGS/finding-<key>``
(the input) and ``.txt`` (the traceback), once per distinct place, and fuzzing goes on. A signal or a hang ends
the process; libFuzzer writes the input to ``-artifact_prefix`` (the driver, fuzz/run.py, collects it and starts
the target again). The run ends with libFuzzer's ``stat::`` lines, which the driver parses.
"""
from __future__ import annotations

import hashlib
import os
import random
import re
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402,F401  (not instrumented: only embedfast's code is)

FINDINGS = os.environ.get("FUZZ_FINDINGS") or os.path.join(HERE, "crashes")
_seen: dict = {}


def _key(exc: BaseException) -> str:
    """Where a finding comes from: its type and the innermost frame in embedfast (or the target), plus the
    message's first words with numbers removed (so one bug is reported once, not once per input)."""
    where = ""
    for fs in traceback.extract_tb(exc.__traceback__):
        if "embedfast" in fs.filename or fs.filename.endswith("targets.py"):
            where = f"{os.path.basename(fs.filename)}:{fs.lineno}"
    msg = re.sub(r"\d+", "N", str(exc).split("\n")[0])[:60]
    msg = re.sub(r"'[^']*'", "'...'", msg)
    return f"{type(exc).__name__} at {where}: {msg}"


def _record(target: str, data: bytes, exc: BaseException) -> None:
    key = _key(exc)
    _seen[key] = _seen.get(key, 0) + 1
    if _seen[key] > 1:
        return
    os.makedirs(FINDINGS, exist_ok=True)
    h = hashlib.sha1(key.encode()).hexdigest()[:12]
    base = os.path.join(FINDINGS, f"finding-{h}")
    if os.path.exists(base):  # found by an earlier process of this run
        return
    with open(base, "wb") as f:
        f.write(data)
    with open(base + ".txt", "w") as f:
        f.write(f"target: {target}\nkey: {key}\ninput ({len(data)} bytes): {data[:300]!r}\n\n")
        f.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-6000:])
    print(f"FINDING {target}: {key} -> {base}", file=sys.stderr, flush=True)


def make_test_one_input(t):
    def test_one_input(data: bytes) -> None:
        try:
            t.run(bytes(data))
        except Exception as exc:  # noqa: BLE001 - classifying is the point
            if not t.is_clean(exc):
                _record(t.name, bytes(data), exc)
    return test_one_input


def _flags(argv):
    out = {}
    for a in argv:
        m = re.match(r"-(\w+)=(.*)$", a)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _mutate(rng: random.Random, data: bytes, seeds, tokens) -> bytes:
    b = bytearray(data)
    for _ in range(1 + rng.randrange(4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[pos % len(b)] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[pos % len(b)] = rng.choice((0, 1, 0x7f, 0x80, 0xff, 10, 32, 48 + rng.randrange(10)))
        elif op == 2:
            b[pos:pos] = rng.choice(tokens) if tokens else b"\0"
        elif op == 3 and b:
            del b[pos:pos + 1 + rng.randrange(8)]
        elif op == 4:
            other = rng.choice(seeds)
            cut = rng.randrange(len(other) + 1)
            b[pos:] = other[cut:]
        elif op == 5 and b:
            j = rng.randrange(len(b))
            b[pos:pos] = b[j:j + 1 + rng.randrange(16)]
        elif op == 6:
            b = b[:pos]
    return bytes(b)


def _random_engine(t, corpus_dir: str, argv) -> None:
    """Mutation loop without coverage feedback (used when atheris is not installed)."""
    f = _flags(argv)
    runs = int(f.get("runs", -1))
    total = float(f.get("max_total_time", 0) or 0)
    rng = random.Random(int(f.get("seed", 0) or 0))
    seeds = []
    for name in sorted(os.listdir(corpus_dir)):
        with open(os.path.join(corpus_dir, name), "rb") as fh:
            seeds.append(fh.read())
    seeds = seeds or [b""]
    one = make_test_one_input(t)
    current = os.path.join(FINDINGS, ".current-input")
    os.makedirs(FINDINGS, exist_ok=True)
    t0, n = time.time(), 0
    while (runs < 0 or n < runs) and (total <= 0 or time.time() - t0 < total):
        data = seeds[n] if n < len(seeds) else _mutate(rng, rng.choice(seeds), seeds, t.tokens)
        with open(current, "wb") as fh:  # what the driver saves if this input kills the process
            fh.write(data)
        one(data)
        n += 1
    os.unlink(current)
    dt = max(time.time() - t0, 1e-9)
    print(f"stat::number_of_executed_units: {n}\nstat::average_exec_per_sec: {int(n / dt)}", flush=True)


def _import_embedfast() -> None:
    """Import every module of embedfast (not its Triton kernels), so that all of them are instrumented."""
    import importlib
    import pkgutil

    import embedfast

    for m in pkgutil.iter_modules(embedfast.__path__):
        if m.name not in ("triton", "distributed", "demo", "__main__"):
            importlib.import_module(f"embedfast.{m.name}")


def _write_seeds(t, corpus_dir: str) -> None:
    """The target's seeds into its corpus folder (kept with what fuzzing added), and its libFuzzer dictionary
    next to it."""
    os.makedirs(corpus_dir, exist_ok=True)
    for s in t.seeds():
        p = os.path.join(corpus_dir, "seed-" + hashlib.sha1(s).hexdigest()[:16])
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(s)
    dict_path = os.path.join(os.path.dirname(corpus_dir.rstrip("/")), f"{t.name}.dict")
    if not t.tokens:
        if os.path.exists(dict_path):
            os.unlink(dict_path)
        return
    with open(dict_path, "w") as f:
        for tok in t.tokens:
            f.write('"' + "".join(f"\\x{c:02x}" for c in tok) + '"\n')


def main() -> None:
    name, corpus_dir, *rest = sys.argv[1:]
    engine = os.environ.get("FUZZ_ENGINE", "atheris")
    try:
        if engine != "atheris":
            raise ImportError
        import atheris
    except ImportError:
        atheris = None
    if atheris is not None and not os.path.isfile(corpus_dir):
        with atheris.instrument_imports(include=["embedfast", "targets"]):
            _import_embedfast()
            import targets  # noqa: F401  (its checks' branches count as coverage too)
    from targets import TARGETS

    t = TARGETS[name]
    if os.path.isfile(corpus_dir):  # replay one input, uninstrumented, with the whole traceback
        with open(corpus_dir, "rb") as f:
            data = f.read()
        try:
            t.run(data)
        except Exception as exc:  # noqa: BLE001
            clean = t.is_clean(exc)
            traceback.print_exc()
            print(f"{name}: {'a documented error (clean)' if clean else 'FINDING'}: {_key(exc)}")
            sys.exit(0 if clean else 1)
        print(f"{name}: accepted, the checks passed")
        return
    _write_seeds(t, corpus_dir)
    if atheris is None:
        print(f"fuzz_one: atheris is not installed: random mutations without coverage ({name})", file=sys.stderr)
        _random_engine(t, corpus_dir, rest)
        return
    dict_path = os.path.join(os.path.dirname(corpus_dir.rstrip("/")), f"{name}.dict")
    argv = [sys.argv[0], *rest, corpus_dir]
    if os.path.exists(dict_path) and not any(a.startswith("-dict=") for a in rest):
        argv.insert(1, f"-dict={dict_path}")
    atheris.Setup(argv, make_test_one_input(t))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
