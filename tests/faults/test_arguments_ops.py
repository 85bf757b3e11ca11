"""Fault suite, hostile ARGUMENTS to the ops: sgns_train, sgns_loss (+ backward), sgns_unigram_table, gather_bags
(+ backward), their fake kernels, and the Triton sgns op.

Every bad argument must give a clear Python error naming the op, the argument and the value (and the bound where
there is one); never a signal, a hang, std::bad_alloc, or an output that silently holds garbage. Cases that
crashed or could exhaust memory before the fixes run in child processes (one child per group of cases, under an
address-space limit where memory is the point), so a crash fails only those cases and never the test run.
"""
from __future__ import annotations

import json
import math
import os
import sys

import pytest
import torch

from embedfast import ops

try:
    from .util import run_cli, run_python
except ImportError:  # loaded by file path in a child process (PYTHONPATH holds the repository)
    from tests.faults.util import run_cli, run_python

HERE = os.path.abspath(__file__)
OPS = torch.ops.embedfast

# =====================================================================================================
# inputs
# =====================================================================================================

TRAIN_KW = dict(window=3, negative=4, alpha=0.025, min_alpha=0.0001, words_done=0, total_words=1000, seed=1,
                chunk=0, num_threads=1, shared_negatives=False, exact_sigmoid=False)
TRAIN_ARGS = ("w_in", "w_out", "ids", "sentence_offsets", "keep_prob", "neg_threshold", "neg_alias")


def assert_error_names(call, err, prefix, needles):
    """``call()`` raises ``err`` whose message starts with ``prefix`` and contains every needle."""
    with pytest.raises(err) as ei:
        call()
    msg = str(ei.value)
    assert msg.startswith(prefix), msg
    for n in needles:
        assert n in msg, msg

def train_case(V=20, D=8, n=50, seed=0):
    """A small valid sgns_train call: dict of the 7 tensor arguments."""
    g = torch.Generator().manual_seed(seed)
    thr, alias = ops.sgns_unigram_table(torch.arange(V, 0, -1), 0.75)
    return dict(w_in=(torch.rand(V, D, generator=g) - 0.5) / D, w_out=(torch.rand(V, D, generator=g) - 0.5) / D,
                ids=torch.randint(0, V, (n,), generator=g, dtype=torch.int32),
                sentence_offsets=torch.tensor([0, 20, 35, n]), keep_prob=torch.ones(V, dtype=torch.float64),
                neg_threshold=thr, neg_alias=alias)


def train(t=None, **kw):
    """ops.sgns_train on `t` (default: train_case()) with TRAIN_KW overridden by kw; tensors in kw replace t's."""
    t = dict(train_case() if t is None else t)
    for k in list(kw):
        if k in TRAIN_ARGS:
            t[k] = kw.pop(k)
    args = dict(TRAIN_KW, **kw)
    return ops.sgns_train(*(t[k] for k in TRAIN_ARGS), **args)


def loss_case(V=9, V2=11, D=5, B=13, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(w_in=torch.randn(V, D, generator=g), w_out=torch.randn(V2, D, generator=g),
                centers=torch.randint(0, V, (B,), generator=g), contexts=torch.randint(0, V2, (B,), generator=g),
                negatives=torch.randint(0, V2, (B, K), generator=g))


LOSS_ARGS = ("w_in", "w_out", "centers", "contexts", "negatives")


def loss(**kw):
    t = loss_case()
    t.update(kw)
    return ops.sgns_loss(*(t[k] for k in LOSS_ARGS))


def gather_case():
    """Two sources, three bags (the last empty), four ids."""
    return dict(tables=[torch.arange(12.0).reshape(4, 3), torch.arange(6.0).reshape(2, 3) + 100],
                source_weight=torch.tensor([1.0, 2.0]), bag_offsets=torch.tensor([0, 2, 3, 3]),
                entry_source=torch.tensor([0, 1, 0]), entry_row=torch.tensor([3, 1, 0]),
                entry_weight=torch.tensor([0.5, 1.0, 1.0]), ids=torch.tensor([1, 0, 2, 0]))


GATHER_ARGS = ("tables", "source_weight", "bag_offsets", "entry_source", "entry_row", "entry_weight", "ids")


def gather(renormalize=False, **kw):
    t = gather_case()
    t.update(kw)
    return ops.gather_bags(*(t[k] for k in GATHER_ARGS), renormalize=renormalize)


def gather_reference(t, renormalize=False):
    out = []
    for b in t["ids"].tolist():
        acc, s = torch.zeros(t["tables"][0].shape[1], dtype=torch.float64), 0.0
        for e in range(int(t["bag_offsets"][b]), int(t["bag_offsets"][b + 1])):
            k, r = int(t["entry_source"][e]), int(t["entry_row"][e])
            c = float(t["source_weight"][k] * t["entry_weight"][e])
            acc += c * t["tables"][k][r].double()
            s += c
        out.append(acc / s if renormalize and s != 0 else acc)
    return torch.stack(out).float()


# =====================================================================================================
# child processes: groups of cases that crashed (or could exhaust memory) before the fixes
# =====================================================================================================

_CHILD = r"""
import importlib.util, json, resource, sys, traceback
spec = importlib.util.spec_from_file_location("args_ops_cases", {file!r})
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
if {limit_gb}:
    # address space: what the interpreter and torch hold now plus a margin; a case that would allocate more
    # than the margin fails (std::bad_alloc, or a clean error after the fixes) instead of exhausting the machine
    with open("/proc/self/statm") as f:
        vm = int(f.read().split()[0]) * resource.getpagesize()
    lim = vm + int({limit_gb} * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
for name in {names!r}:
    print("BEGIN " + name, flush=True)
    try:
        r = m.CHILD_CASES[name]()
        out = {{"kind": "ok", "value": r}}
    except BaseException as e:
        out = {{"kind": type(e).__name__, "value": str(e).splitlines()[0] if str(e) else ""}}
    print("RESULT " + json.dumps([name, out]), flush=True)
"""

_child_results: dict = {}


def child_result(group: str, name: str, *, limit_gb: float = 0, env=None) -> dict:
    """The result of CHILD_CASES[name], run with the other cases of `group` in one child process."""
    if group not in _child_results:
        names = [n for n, g in CHILD_GROUPS.items() if g == group]
        r = run_python(_CHILD.format(file=HERE, names=names, limit_gb=limit_gb), timeout=300, env=env)
        res = {}
        for line in r.stdout.splitlines():
            if line.startswith("RESULT "):
                n, out = json.loads(line[len("RESULT "):])
                res[n] = out
        _child_results[group] = (res, r)
    res, r = _child_results[group]
    assert r.returncode >= 0, f"the child running group {group!r} was killed by a signal: {r.describe()}"
    assert name in res, f"case {name!r} of group {group!r} gave no result: {r.describe()}"
    return res[name]


CHILD_CASES: dict = {}
CHILD_GROUPS: dict = {}


def child_case(group):
    def deco(fn):
        CHILD_CASES[fn.__name__] = fn
        CHILD_GROUPS[fn.__name__] = group
        return fn

    return deco


def expect_error(res, kind, *needles):
    assert res["kind"] == kind, f"expected {kind}, got {res}"
    for n in needles:
        assert n.lower() in res["value"].lower(), f"message does not name {n!r}: {res['value']}"


# =====================================================================================================
# 1. NaN / inf in SGNS training: a clear "training diverged" error, never a signal or NaN vectors
# =====================================================================================================

MODES = [(s, e) for s in (False, True) for e in (False, True)]


def _mode_kw(shared, exact):
    return dict(shared_negatives=shared, exact_sigmoid=exact)


def _diverge_nan_weights(shared, exact):
    t = train_case()
    t["w_in"][int(t["ids"][5])] = float("nan")
    return train(t, **_mode_kw(shared, exact)).tolist()


def _diverge_inf_weights(shared, exact):
    t = train_case()
    t["w_out"][int(t["ids"][7])] = float("-inf")
    return train(t, **_mode_kw(shared, exact)).tolist()


def _diverge_pos_inf_only(shared, exact):
    # negative=0: the only scores are +inf (inf weights . positive weights); log sigmoid(+inf) = 0 is finite, so
    # only the flagged log-sigmoid (x - x) can show it
    t = train_case()
    t["w_in"].fill_(float("inf"))
    t["w_out"].fill_(1.0)
    return train(t, negative=0, **_mode_kw(shared, exact)).tolist()


def _diverge_big_alpha(shared, exact):
    t = train_case(V=30, D=32, n=2000)
    t["sentence_offsets"] = torch.arange(0, 2001, 20)
    g = torch.Generator().manual_seed(3)
    t["w_in"] = torch.randn(30, 32, generator=g)
    t["w_out"] = torch.randn(30, 32, generator=g)
    return train(t, alpha=1e6, min_alpha=1e6, window=5, **_mode_kw(shared, exact)).tolist()


for _cause in ("nan_weights", "inf_weights", "pos_inf_only", "big_alpha"):
    for _s, _e in MODES:
        _fn = globals()[f"_diverge_{_cause}"]
        _name = f"diverge_{_cause}_shared{int(_s)}_exact{int(_e)}"
        CHILD_CASES[_name] = (lambda fn, s, e: (lambda: fn(s, e)))(_fn, _s, _e)
        CHILD_GROUPS[_name] = "diverge"


@pytest.mark.parametrize("shared,exact", MODES, ids=lambda v: str(v))
@pytest.mark.parametrize("cause", ["nan_weights", "inf_weights", "pos_inf_only", "big_alpha"])
def test_sgns_train_divergence_is_a_clear_error(cause, shared, exact):
    res = child_result("diverge", f"diverge_{cause}_shared{int(shared)}_exact{int(exact)}")
    expect_error(res, "ValueError", "sgns_train: training diverged", "NaN/inf", "alpha=", "w_in and w_out",
                 "smaller alpha")


def test_sgns_train_finite_run_keeps_finite_loss_and_weights():
    t = train_case()
    for shared, exact in MODES:
        w_in, w_out = t["w_in"].clone(), t["w_out"].clone()
        st = train(dict(t, w_in=w_in, w_out=w_out), **_mode_kw(shared, exact))
        assert math.isfinite(float(st[0])) and float(st[0]) > 0
        assert torch.isfinite(w_in).all() and torch.isfinite(w_out).all()
        assert not torch.equal(w_in, t["w_in"])


def test_cli_train_large_alpha_is_a_clean_error(tmp_path):
    """The issue's reproduction: `embedfast train CORPUS -o x.txt --alpha 0.9 --epochs 1 --dim 32` (SIGSEGV)."""
    import random

    r = random.Random(0)
    words = [f"w{i}" for i in range(2000)]
    wts = [1 / (i + 1) for i in range(2000)]
    corpus = tmp_path / "zipf.txt"
    corpus.write_text("\n".join(" ".join(r.choices(words, wts, k=20)) for _ in range(10000)) + "\n")
    out = tmp_path / "x.txt"
    res = run_cli("train", str(corpus), "-o", str(out), "--alpha", "0.9", "--epochs", "1", "--dim", "32",
                  "--threads", "1", timeout=300)
    assert res.returncode > 0, res.describe()
    assert "sgns_train: training diverged" in res.stderr, res.describe()
    assert not out.exists()


def test_sgns_loss_with_nan_weights_gives_nan_not_a_crash():
    # like torch: non-finite inputs give non-finite outputs (no training state to protect here)
    code = """
import json, torch
from embedfast import ops
w_in = torch.randn(4, 3); w_out = torch.randn(5, 3)
w_in[1] = float('nan'); w_out[2, 0] = float('inf')
c = torch.tensor([0, 1, 2, 3]); x = torch.tensor([2, 0, 1, 0]); n = torch.tensor([[1, 3], [4, 4], [0, 2], [1, 1]])
w_in.requires_grad_(); w_out.requires_grad_()
l = ops.sgns_loss(w_in, w_out, c, x, n)
l.sum().backward()
print(json.dumps([bool(l[1].isnan()), bool(l[3].isfinite()), bool(w_in.grad[3].isfinite().all())]))
"""
    res = run_python(code, timeout=120)
    assert res.returncode == 0, res.describe()
    assert res.stdout.strip().splitlines()[-1] == "[true, true, true]", res.describe()


@pytest.mark.skipif(__import__("importlib").util.find_spec("triton") is None, reason="needs triton")
@pytest.mark.parametrize("shared", [False, pytest.param(True, marks=pytest.mark.slow)])  # True: make test-slow
def test_sgns_train_triton_divergence_is_a_clear_error(shared):
    code = f"""
import importlib.util, torch
spec = importlib.util.spec_from_file_location("m", {HERE!r}); m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
from embedfast import ops
t = m.train_case(); t["w_in"][int(t["ids"][0])] = float("nan")
t["sentence_offsets"] = torch.tensor([0, 12])
try:
    ops.sgns_train(*(t[k] for k in m.TRAIN_ARGS), **dict(m.TRAIN_KW, shared_negatives={shared}), backend="triton")
    print("NO ERROR")
except ValueError as e:
    print("ERROR", e)
try:
    ops.sgns_train(*(m.train_case()[k] for k in m.TRAIN_ARGS), **dict(m.TRAIN_KW, alpha=float("inf")),
                   backend="triton")
except ValueError as e:
    print("ALPHA", e)
"""
    res = run_python(code, timeout=300, env={"TRITON_INTERPRET": "1"})
    assert res.returncode == 0, res.describe()
    assert "ERROR sgns_train_triton: training diverged: the scores became NaN/inf" in res.stdout, res.describe()
    assert "ALPHA sgns_train_triton: need a finite alpha" in res.stdout, res.describe()


# =====================================================================================================
# 2. absurd sizes: checked up front, with the bound; no std::bad_alloc, no allocation sized by an argument
# =====================================================================================================


SIZE_ARGS = [
    ("window", 10**9, ["window must be <= 1000000, got 1000000000"]),
    ("window", 2**62, [f"window must be <= 1000000, got {2**62}"]),
    ("window", 0, ["window must be >= 1, got 0"]),
    ("window", -(10**9), ["window must be >= 1, got -1000000000"]),
    ("negative", 10**9, ["negative must be <= 10000, got 1000000000"]),
    ("negative", -1, ["negative must be >= 0, got -1"]),
    ("num_threads", 10000, ["num_threads must be in [1, 1024], got 10000"]),
    ("num_threads", 0, ["num_threads must be in [1, 1024], got 0"]),
    ("num_threads", -(2**40), ["num_threads must be in [1, 1024]"]),
    ("alpha", float("inf"), ["finite alpha", "alpha=inf"]),
    ("alpha", float("nan"), ["finite alpha", "alpha=nan"]),
    ("alpha", 0.0, ["alpha > 0"]),
    ("alpha", -0.5, ["alpha > 0"]),
    ("min_alpha", 1.0, ["min_alpha <= alpha"]),
    ("min_alpha", float("nan"), ["min_alpha"]),
    ("total_words", 0, ["total_words >= 1"]),
    ("words_done", -1, ["words_done >= 0"]),
]
for _arg, _value, _ in SIZE_ARGS:
    CHILD_CASES[f"arg_{_arg}_{_value}"] = (lambda a, v: (lambda: train(**{a: v}).tolist()))(_arg, _value)
    CHILD_GROUPS[f"arg_{_arg}_{_value}"] = "sizes"
SIZE_LIMIT_GB = 3


@pytest.mark.parametrize("arg,value,needles", SIZE_ARGS)
def test_sgns_train_size_and_rate_arguments(arg, value, needles):
    # in a child under an address-space limit: before the fixes a huge window or negative was allocated
    res = child_result("sizes", f"arg_{arg}_{value}", limit_gb=SIZE_LIMIT_GB)
    expect_error(res, "ValueError", "sgns_train: ", *needles)


@child_case("sizes")
def size_window_1e9():
    return train(window=10**9).tolist()


@child_case("sizes")
def size_negative_1e9():
    return train(negative=10**9, shared_negatives=True).tolist()


@child_case("sizes")
def size_window_max_whole_sentences():
    # the largest window allowed: the work buffers are sized by the longest sentence, not by 2 * window
    t = train_case(V=50, D=64, n=3000)
    t["sentence_offsets"] = torch.tensor([0, 1000, 3000])
    st = []
    for shared in (False, True):
        st.append(train(t, window=1000000, alpha=1e-5, min_alpha=1e-6, shared_negatives=shared,
                        num_threads=2).tolist())
    return st


@child_case("sizes")
def size_gather_output_overflow():
    # D = 2^40 with empty tables: len(ids) x D floats is 2^46 bytes
    t = dict(tables=[torch.empty(0, 2**40)], source_weight=torch.ones(1), bag_offsets=torch.tensor([0, 0]),
             entry_source=torch.empty(0, dtype=torch.long), entry_row=torch.empty(0, dtype=torch.long),
             entry_weight=torch.empty(0), ids=torch.zeros(16, dtype=torch.long))
    return list(ops.gather_bags(*(t[k] for k in GATHER_ARGS), renormalize=False).shape)


@child_case("sizes")
def size_gather_repeated_huge_bag():
    # one bag of 2^21 entries named by 128 ids: the forward must not list the bag 128 times (3 GiB)
    E = 2**21
    t = dict(tables=[torch.ones(1, 1)], source_weight=torch.ones(1), bag_offsets=torch.tensor([0, E]),
             entry_source=torch.zeros(E, dtype=torch.long), entry_row=torch.zeros(E, dtype=torch.long),
             entry_weight=torch.ones(E), ids=torch.zeros(128, dtype=torch.long))
    out = ops.gather_bags(*(t[k] for k in GATHER_ARGS), renormalize=False)
    return [list(out.shape), float(out.min()), float(out.max())]


@child_case("sizes")
def size_gather_backward_huge_bag():
    # the backward keeps one contribution per (id, entry): 2^12 ids x 2^20 entries is far beyond memory
    E = 2**20
    t = dict(tables=[torch.ones(1, 4)], source_weight=torch.ones(1), bag_offsets=torch.tensor([0, E]),
             entry_source=torch.zeros(E, dtype=torch.long), entry_row=torch.zeros(E, dtype=torch.long),
             entry_weight=torch.ones(E), ids=torch.zeros(2**12, dtype=torch.long))
    g = OPS.gather_bags_backward(torch.ones(2**12, 4), *(t[k] for k in GATHER_ARGS), False, True, [True], False)
    return [list(x.shape) for x in g[2]]


def test_sgns_train_window_1e9_is_a_value_error():
    expect_error(child_result("sizes", "size_window_1e9", limit_gb=SIZE_LIMIT_GB), "ValueError",
                 "sgns_train: window must be <= 1000000, got 1000000000")


def test_sgns_train_negative_1e9_is_a_value_error():
    expect_error(child_result("sizes", "size_negative_1e9", limit_gb=SIZE_LIMIT_GB), "ValueError",
                 "sgns_train: negative must be <= 10000, got 1000000000")


def test_sgns_train_largest_window_trains_whole_sentences_in_little_memory():
    res = child_result("sizes", "size_window_max_whole_sentences", limit_gb=SIZE_LIMIT_GB)
    assert res["kind"] == "ok", res
    for st in res["value"]:
        # every center sees every other token of its sentence (b >= sentence length but with probability ~ 2e-3)
        assert st[1] >= 0.99 * (1000 * 999 + 2000 * 1999), st
        assert math.isfinite(st[0])


def test_gather_output_larger_than_memory_is_a_value_error():
    expect_error(child_result("sizes", "size_gather_output_overflow", limit_gb=SIZE_LIMIT_GB), "ValueError",
                 "gather_bags: the output [16, 1099511627776]", "bytes, more than this machine's memory")


def test_gather_forward_repeated_huge_bag_runs_in_bounded_memory():
    res = child_result("sizes", "size_gather_repeated_huge_bag", limit_gb=SIZE_LIMIT_GB)
    assert res == {"kind": "ok", "value": [[128, 1], float(2**21), float(2**21)]}, res


def test_gather_backward_beyond_memory_is_a_value_error():
    expect_error(child_result("sizes", "size_gather_backward_huge_bag", limit_gb=SIZE_LIMIT_GB), "ValueError",
                 "gather_bags_backward:", "(id, bag entry) pairs", "more than this machine's memory")


# =====================================================================================================
# 3. fake kernels: one device for all tensors, dtypes / dims / shapes checked like the real kernels
# =====================================================================================================


def _meta(t):
    if isinstance(t, (list, tuple)):
        return [x.to("meta") for x in t]
    return t.to("meta")


SAME_DEVICE = r"arguments '[\w\[\]]+' \((cpu|meta)\) and '[\w\[\]]+' \((cpu|meta)\) must be on the same device"


@pytest.mark.parametrize("which", ["w_in", "w_out", "centers", "contexts", "negatives"])
def test_sgns_loss_mixed_meta_and_cpu_is_refused(which):
    t = loss_case()
    t[which] = _meta(t[which])
    with pytest.raises(ValueError, match="sgns_loss: " + SAME_DEVICE):
        OPS.sgns_loss(*(t[k] for k in LOSS_ARGS))
    # the Python wrapper: the same error, or (a meta w_in picks no backend) a clear one naming the device
    with pytest.raises(ValueError, match="sgns_loss: (" + SAME_DEVICE + "|no kernel for tensors on meta)"):
        ops.sgns_loss(*(t[k] for k in LOSS_ARGS))


def test_sgns_loss_backward_mixed_meta_and_cpu_is_refused():
    t = loss_case()
    with pytest.raises(ValueError, match="must be on the same device"):
        OPS.sgns_loss_backward(torch.ones(13, device="meta"), *(t[k] for k in LOSS_ARGS))


@pytest.mark.parametrize("which", GATHER_ARGS)
def test_gather_bags_mixed_meta_and_cpu_is_refused(which):
    t = gather_case()
    t[which] = _meta(t[which])
    with pytest.raises(ValueError, match="gather_bags: " + SAME_DEVICE):
        OPS.gather_bags(*(t[k] for k in GATHER_ARGS), False, False)
    with pytest.raises(ValueError, match="gather_bags: (" + SAME_DEVICE + "|no kernel for tensors on meta)"):
        ops.gather_bags(*(t[k] for k in GATHER_ARGS))


def test_gather_bags_backward_mixed_meta_and_cpu_is_refused():
    t = gather_case()
    with pytest.raises(ValueError, match="gather_bags_backward: arguments .* must be on the same device"):
        OPS.gather_bags_backward(torch.ones(4, 3, device="meta"), *(t[k] for k in GATHER_ARGS), False, True,
                                 [True, True], False)


def test_sgns_train_mixed_meta_and_cpu_is_refused():
    for which in ("ids", "w_out", "neg_alias"):
        t = train_case()
        with pytest.raises(ValueError, match="sgns_train: arguments .* must be on the same device"):
            train(**{which: _meta(t[which])})


def test_multi_source_embedding_with_meta_ids_is_refused():
    from embedfast.fusion import MultiSourceEmbedding

    emb = MultiSourceEmbedding([torch.randn(5, 3), torch.randn(4, 3)],
                               torch.tensor([[0, -1], [1, 0], [-1, 1], [2, 2], [3, 3]]))
    with pytest.raises(ValueError, match="must be on the same device"):
        emb(torch.tensor([0, 1, 2], device="meta"))


def test_all_meta_calls_return_meta_tensors():
    t = loss_case()
    out = OPS.sgns_loss(*(_meta(t[k]) for k in LOSS_ARGS))
    assert out.device.type == "meta" and out.shape == (13,)
    g_in, g_out = OPS.sgns_loss_backward(torch.ones(13, device="meta"), *(_meta(t[k]) for k in LOSS_ARGS))
    assert g_in.device.type == "meta" and g_out.shape == (11, 5)
    g = gather_case()
    out = OPS.gather_bags(*(_meta(g[k]) for k in GATHER_ARGS), False, False)
    assert out.device.type == "meta" and out.shape == (4, 3)
    tr = train_case()
    st = OPS.sgns_train(*(_meta(tr[k]) for k in TRAIN_ARGS), 3, 4, 0.025, 0.0001, 0, 1000, 1, 0, 1, False, False)
    assert st.device.type == "meta" and st.shape == (len(ops.TRAIN_STATS),)
    thr, alias = OPS.sgns_unigram_table(torch.ones(7, dtype=torch.long, device="meta"), 0.75)
    assert thr.device.type == "meta" and alias.device.type == "meta" and alias.dtype == torch.int32


def _first_line(e):
    return str(e).splitlines()[0]


# (op, builder of the args with one bad argument): the real CPU kernel and the fake (meta tensors) must fail alike
def _bad_loss(**kw):
    t = loss_case()
    t.update(kw)
    return OPS.sgns_loss, [t[k] for k in LOSS_ARGS]


def _bad_train(**kw):
    t = train_case()
    t.update(kw)
    return OPS.sgns_train, [t[k] for k in TRAIN_ARGS] + [3, 4, 0.025, 0.0001, 0, 1000, 1, 0, 1, False, False]


def _bad_gather(**kw):
    t = gather_case()
    t.update(kw)
    return OPS.gather_bags, [t[k] for k in GATHER_ARGS] + [False, False]


PARITY = {
    "loss_w_in_int": lambda: _bad_loss(w_in=torch.ones(9, 5, dtype=torch.int32)),
    "loss_w_out_dtype": lambda: _bad_loss(w_out=torch.ones(11, 5, dtype=torch.float64)),
    "loss_w_in_1d": lambda: _bad_loss(w_in=torch.ones(9)),
    "loss_centers_float": lambda: _bad_loss(centers=torch.zeros(13)),
    "loss_centers_0d": lambda: _bad_loss(centers=torch.tensor(1)),
    "loss_negatives_1d": lambda: _bad_loss(negatives=torch.zeros(13, dtype=torch.long)),
    "loss_columns": lambda: _bad_loss(w_out=torch.ones(11, 4)),
    "loss_batch": lambda: _bad_loss(contexts=torch.zeros(12, dtype=torch.long)),
    "train_w_in_double": lambda: _bad_train(w_in=torch.ones(20, 8, dtype=torch.float64)),
    "train_ids_long": lambda: _bad_train(ids=torch.zeros(50, dtype=torch.long)),
    "train_offsets_2d": lambda: _bad_train(sentence_offsets=torch.zeros(2, 2, dtype=torch.long)),
    "train_shapes": lambda: _bad_train(w_out=torch.ones(20, 7)),
    "train_keep_len": lambda: _bad_train(keep_prob=torch.ones(19, dtype=torch.float64)),
    "gather_table_int": lambda: _bad_gather(tables=[torch.ones(4, 3, dtype=torch.int32)],
                                            source_weight=torch.ones(1)),
    "gather_table_1d": lambda: _bad_gather(tables=[torch.ones(4, 3), torch.ones(3)]),
    "gather_tables_dtype": lambda: _bad_gather(tables=[torch.ones(4, 3), torch.ones(2, 3, dtype=torch.float16)]),
    "gather_tables_dim": lambda: _bad_gather(tables=[torch.ones(4, 3), torch.ones(2, 4)]),
    "gather_sw_count": lambda: _bad_gather(source_weight=torch.ones(3)),
    "gather_sw_dtype": lambda: _bad_gather(source_weight=torch.ones(2, dtype=torch.float64)),
    "gather_ids_int32": lambda: _bad_gather(ids=torch.zeros(4, dtype=torch.int32)),
    "gather_ids_2d": lambda: _bad_gather(ids=torch.zeros(2, 2, dtype=torch.long)),
    "gather_entry_len": lambda: _bad_gather(entry_row=torch.zeros(2, dtype=torch.long)),
    "gather_offsets_empty": lambda: _bad_gather(bag_offsets=torch.zeros(0, dtype=torch.long)),
    "unigram_float": lambda: (OPS.sgns_unigram_table, [torch.ones(3), 0.75]),
    "unigram_2d": lambda: (OPS.sgns_unigram_table, [torch.ones(3, 1, dtype=torch.long), 0.75]),
}


@pytest.mark.parametrize("case", sorted(PARITY))
def test_fake_kernel_fails_like_the_real_kernel(case):
    op, args = PARITY[case]()
    with pytest.raises(ValueError) as real:
        op(*args)
    meta_args = [_meta(a) if isinstance(a, torch.Tensor) or (isinstance(a, list) and a and
                                                             isinstance(a[0], torch.Tensor)) else a for a in args]
    with pytest.raises(ValueError) as fake:
        op(*meta_args)
    assert _first_line(fake.value) == _first_line(real.value)


def test_fake_kernels_under_fake_tensor_mode_check_devices():
    from torch._subclasses.fake_tensor import FakeTensorMode

    t = loss_case()
    g = gather_case()
    meta_centers, sw64 = t["centers"].to("meta"), g["source_weight"].double()
    with FakeTensorMode() as mode:
        args = [mode.from_tensor(t[k]) for k in LOSS_ARGS]
        out = OPS.sgns_loss(*args)
        assert out.shape == (13,) and out.device.type == "cpu"
        args[2] = mode.from_tensor(meta_centers)
        with pytest.raises(ValueError, match="sgns_loss: " + SAME_DEVICE):
            OPS.sgns_loss(*args)
        gargs = [[mode.from_tensor(x) for x in g[k]] if k == "tables" else mode.from_tensor(g[k])
                 for k in GATHER_ARGS]
        assert OPS.gather_bags(*gargs, False, False).shape == (4, 3)
        gargs[1] = mode.from_tensor(sw64)
        with pytest.raises(ValueError, match="'source_weight' must have dtype Float, got Double"):
            OPS.gather_bags(*gargs, False, False)


# =====================================================================================================
# 4. hostile-argument sweep of the real kernels
# =====================================================================================================

BIG = 2**62


@pytest.mark.parametrize("kw,err,needles", [
    (dict(ids=torch.tensor([0, 1, -1] + [0] * 47, dtype=torch.int32)), IndexError, ["'ids' has value -1"]),
    (dict(ids=torch.tensor([0, 20] + [0] * 48, dtype=torch.int32)), IndexError, ["'ids' has value 20",
                                                                                 "[0, 20)"]),
    (dict(ids=torch.tensor([2**31 - 1] * 50, dtype=torch.int32)), IndexError, ["2147483647"]),
    (dict(ids=torch.zeros(50, dtype=torch.int64)), ValueError, ["'ids' must have dtype Int"]),
    (dict(ids=torch.zeros(100, dtype=torch.int32)[::2]), ValueError, ["'ids' must be contiguous"]),
    (dict(ids=torch.tensor(0, dtype=torch.int32)), ValueError, ["'ids' must be 1-D"]),
    (dict(sentence_offsets=torch.tensor([0, 30, 20, 50])), ValueError, ["non-decreasing", "[2] = 20"]),
    (dict(sentence_offsets=torch.tensor([0, 51])), IndexError, ["sentence_offsets[1] = 51"]),
    (dict(sentence_offsets=torch.tensor([-1, 50])), IndexError, ["sentence_offsets[0] = -1"]),
    (dict(sentence_offsets=torch.tensor([0, BIG])), IndexError, [f"sentence_offsets[1] = {BIG}"]),
    (dict(sentence_offsets=torch.tensor([0, -BIG])), IndexError, ["outside [0, len(ids)=50]"]),
    (dict(sentence_offsets=torch.zeros(0, dtype=torch.long)), ValueError, ["at least one entry"]),
    (dict(sentence_offsets=torch.tensor([0.0, 50.0])), ValueError, ["'sentence_offsets' must have dtype Long"]),
    (dict(w_in=torch.ones(8, 20).t()), ValueError, ["must be contiguous"]),
    (dict(w_in=torch.tensor(1.0)), ValueError, ["'w_in' must be 2-D"]),
    (dict(w_in=torch.ones(20, 8, dtype=torch.float16)), ValueError, ["'w_in' must have dtype Float, got Half"]),
    (dict(w_out=torch.ones(21, 8)), ValueError, ["must have the same shape"]),
    (dict(w_in=torch.empty(0, 8), w_out=torch.empty(0, 8)), ValueError, ["vocabulary size"]),
    (dict(keep_prob=torch.ones(20)), ValueError, ["'keep_prob' must have dtype Double"]),
    (dict(keep_prob=torch.full((20,), float("nan"), dtype=torch.float64)), ValueError, ["keep_prob[0] = nan"]),
    (dict(keep_prob=torch.full((20,), -0.5, dtype=torch.float64)), ValueError, ["keep_prob[0] = -0.5"]),
    (dict(keep_prob=torch.ones(2, 10, dtype=torch.float64)), ValueError, ["'keep_prob' must have shape [20]"]),
    (dict(neg_threshold=torch.full((20,), 2**33)), ValueError, ["neg_threshold[0] = 8589934592",
                                                                "outside [0, 2^32]"]),
    (dict(neg_threshold=torch.full((20,), -1)), ValueError, ["neg_threshold[0] = -1"]),
    (dict(neg_alias=torch.full((20,), 20, dtype=torch.int32)), IndexError, ["neg_alias[0] = 20"]),
    (dict(neg_alias=torch.full((20,), -7, dtype=torch.int32)), IndexError, ["neg_alias[0] = -7"]),
])
def test_sgns_train_hostile_tensors(kw, err, needles):
    assert_error_names(lambda: train(**kw), err, "sgns_train: ", needles)


def test_sgns_train_shared_weights_refused():
    t = train_case()
    with pytest.raises(ValueError, match="must not share memory"):
        train(w_in=t["w_in"], w_out=t["w_in"])


def test_sgns_train_empty_chunk_and_empty_sentences():
    st = train(ids=torch.zeros(0, dtype=torch.int32), sentence_offsets=torch.tensor([0]))
    assert st.tolist()[:7] == [0.0] * 7
    st = train(sentence_offsets=torch.tensor([0, 0, 0, 50, 50]), num_threads=4)
    assert st[4] == 50 and st[6] == 4 and math.isfinite(float(st[0]))


def test_sgns_train_extreme_seed_chunk_and_progress_are_fine():
    st = train(seed=-(2**63), chunk=2**63 - 1, words_done=2**62, total_words=1)
    assert math.isfinite(float(st[0])) and float(st[7]) == pytest.approx(0.0001)


@pytest.mark.parametrize("kw,err,needles", [
    (dict(centers=torch.tensor([-1] + [0] * 12)), IndexError, ["'centers' has value -1"]),
    (dict(contexts=torch.tensor([11] + [0] * 12)), IndexError, ["'contexts' has value 11", "[0, 11)"]),
    (dict(negatives=torch.full((13, 3), BIG)), IndexError, [f"'negatives' has value {BIG}"]),
    (dict(negatives=torch.full((13, 3), -BIG)), IndexError, ["'negatives' has value"]),
    (dict(centers=torch.zeros(13, dtype=torch.int16)), ValueError, ["'centers' must have dtype int32 or int64"]),
    (dict(w_in=torch.ones(9, 5, dtype=torch.float16)), ValueError, ["'w_in' must have dtype float32 or float64"]),
    (dict(w_in=torch.tensor(2.0)), ValueError, ["'w_in' must be 2-D"]),
    (dict(centers=torch.tensor(2)), ValueError, ["'centers' must be 1-D"]),
    (dict(negatives=torch.zeros(13, 1, 1, dtype=torch.long)), ValueError, ["'negatives' must be 2-D"]),
    (dict(negatives=torch.zeros(12, 3, dtype=torch.long)), ValueError, ["same first dimension"]),
    (dict(w_out=torch.ones(11, 6)), ValueError, ["same number of columns"]),
])
def test_sgns_loss_hostile_arguments(kw, err, needles):
    with pytest.raises(err) as ei:
        loss(**kw)
    for n in needles:
        assert n in str(ei.value), str(ei.value)


def test_sgns_loss_noncontiguous_empty_and_no_negatives():
    t = loss_case()
    ref = loss()
    nc = dict(w_in=t["w_in"].t().contiguous().t(), w_out=torch.cat([t["w_out"], t["w_out"]], 1)[:, :5],
              centers=torch.stack([t["centers"], t["centers"]], 1)[:, 0], negatives=t["negatives"].t().contiguous().t())
    assert not nc["w_in"].is_contiguous() and not nc["centers"].is_contiguous()
    torch.testing.assert_close(loss(**nc), ref)
    assert loss(centers=torch.zeros(0, dtype=torch.long), contexts=torch.zeros(0, dtype=torch.long),
                negatives=torch.zeros(0, 3, dtype=torch.long)).shape == (0,)
    l0 = loss(negatives=torch.zeros(13, 0, dtype=torch.long))
    ref0 = -torch.nn.functional.logsigmoid((t["w_in"][t["centers"]] * t["w_out"][t["contexts"]]).sum(1))
    torch.testing.assert_close(l0, ref0)


def test_sgns_loss_backward_hostile_grad():
    t = loss_case()
    args = [t[k] for k in LOSS_ARGS]
    with pytest.raises(ValueError, match=r"'grad' must have shape \[13\]"):
        OPS.sgns_loss_backward(torch.ones(12), *args)
    with pytest.raises(ValueError, match="'grad' must have dtype Float, got Double"):
        OPS.sgns_loss_backward(torch.ones(13, dtype=torch.float64), *args)
    with pytest.raises(ValueError, match=r"'grad' must have shape \[13\]"):
        OPS.sgns_loss_backward(torch.tensor(1.0), *args)


@pytest.mark.parametrize("counts,exponent,err,needles", [
    (torch.tensor([3, 0, 2]), 0.75, ValueError, ["counts[1] = 0"]),
    (torch.tensor([3, -(2**62)]), 0.75, ValueError, ["counts must be >= 1"]),
    (torch.zeros(0, dtype=torch.long), 0.75, ValueError, ["len(counts)"]),
    (torch.tensor(5), 0.75, ValueError, ["'counts' must be 1-D"]),
    (torch.ones(3, dtype=torch.int32), 0.75, ValueError, ["'counts' must have dtype Long"]),
    (torch.tensor([1, 2]), float("nan"), ValueError, ["exponent must be finite"]),
    (torch.tensor([1, 2]), float("inf"), ValueError, ["exponent must be finite"]),
    (torch.tensor([10, 2**62]), 100.0, ValueError, ["overflows"]),
])
def test_sgns_unigram_table_hostile(counts, exponent, err, needles):
    with pytest.raises(err) as ei:
        ops.sgns_unigram_table(counts, exponent)
    for n in needles:
        assert n in str(ei.value), str(ei.value)


def test_sgns_unigram_table_noncontiguous_and_extreme_exponents():
    c = torch.tensor([5, 0, 3, 0, 1, 0])[::2]
    assert not c.is_contiguous()
    thr, alias = ops.sgns_unigram_table(c, 0.75)
    thr2, alias2 = ops.sgns_unigram_table(c.contiguous(), 0.75)
    assert torch.equal(thr, thr2) and torch.equal(alias, alias2)
    for e in (-50.0, 0.0, 30.0):  # underflow to 0 for some words is allowed; the table stays valid
        thr, alias = ops.sgns_unigram_table(torch.tensor([1, 10**6, 7, 2**20]), e)
        assert ((thr >= 0) & (thr <= 2**32)).all() and ((alias >= 0) & (alias < 4)).all()
        train_case()  # the table is accepted by sgns_train's checks
        t = train_case(V=4)
        t["neg_threshold"], t["neg_alias"] = thr, alias
        t["ids"] = t["ids"] % 4
        assert math.isfinite(float(train(t)[0]))


@pytest.mark.parametrize("kw,err,needles", [
    (dict(tables=[]), ValueError, ["'tables' must hold at least one table"]),
    (dict(ids=torch.tensor([0, 3])), IndexError, ["'ids' has value 3", "[0, 3) of bags"]),
    (dict(ids=torch.tensor([-1])), IndexError, ["'ids' has value -1"]),
    (dict(ids=torch.tensor([BIG])), IndexError, [f"'ids' has value {BIG}"]),
    (dict(ids=torch.tensor([0.0])), ValueError, ["'ids' must have dtype Long"]),
    (dict(entry_source=torch.tensor([0, 2, 0])), IndexError, ["'entry_source' has value 2 at position 1"]),
    (dict(entry_source=torch.tensor([0, -1, 0])), IndexError, ["'entry_source' has value -1"]),
    (dict(entry_row=torch.tensor([4, 1, 0])), IndexError, ["'entry_row' has value 4 at position 0",
                                                           "tables[0] has 4 rows"]),
    (dict(entry_row=torch.tensor([3, -BIG, 0])), IndexError, ["'entry_row' has value"]),
    (dict(bag_offsets=torch.tensor([0, 3, 2, 3])), ValueError, ["nondecreasing", "bag_offsets[2] = 2"]),
    (dict(bag_offsets=torch.tensor([1, 2, 3, 3])), ValueError, ["must start at 0"]),
    (dict(bag_offsets=torch.tensor([0, 2, 3, 4])), ValueError, ["must end at the number of entries (3)"]),
    (dict(bag_offsets=torch.tensor([0, BIG, 3, 3])), ValueError, ["nondecreasing"]),
    (dict(bag_offsets=torch.zeros(0, dtype=torch.long)), ValueError, ["B+1 >= 1"]),
    (dict(bag_offsets=torch.tensor(0)), ValueError, ["'bag_offsets' must be 1-D"]),
    (dict(entry_weight=torch.ones(2)), ValueError, ["must have the same length"]),
    (dict(entry_weight=torch.ones(3, dtype=torch.float64)), ValueError, ["'entry_weight' must have dtype Float"]),
    (dict(source_weight=torch.ones(1)), ValueError, ["one weight per table (2)"]),
    (dict(tables=[torch.ones(4, 3), torch.ones(2, 3, dtype=torch.float64)]), ValueError, ["share one dtype"]),
    (dict(tables=[torch.ones(4, 3), torch.tensor(1.0)]), ValueError, ["'tables[1]' must be 2-D"]),
    (dict(tables=[torch.ones(4, 3, dtype=torch.int64), torch.ones(2, 3)]), ValueError, ["float32, float16"]),
])
def test_gather_bags_hostile_arguments(kw, err, needles):
    assert_error_names(lambda: gather(**kw), err, "gather_bags: ", needles)


def test_gather_bags_noncontiguous_empty_and_zero_weight_bags():
    t = gather_case()
    for renorm in (False, True):
        torch.testing.assert_close(gather(renormalize=renorm), gather_reference(t, renorm))
    nc = dict(t, tables=[torch.ones(3, 4).t() * torch.arange(4.0)[:, None], t["tables"][1]],
              ids=torch.tensor([1, 1, 0, 0, 2, 2, 0, 0])[::2])
    assert not nc["tables"][0].is_contiguous() and not nc["ids"].is_contiguous()
    torch.testing.assert_close(gather(**nc), gather_reference(nc))
    assert gather(ids=torch.zeros(0, dtype=torch.long)).shape == (0, 3)
    z = gather(renormalize=True, entry_weight=torch.zeros(3))  # weight sum 0: zeros, not NaN
    assert torch.equal(z, torch.zeros(4, 3))
    ids2 = torch.tensor([[0, 1], [2, 0]], dtype=torch.int32)
    assert gather(ids=ids2).shape == (2, 2, 3)


def test_gather_bags_backward_hostile_arguments():
    t = gather_case()
    args = [t[k] for k in GATHER_ARGS]
    with pytest.raises(ValueError, match=r"'grad' must have shape \[4, 3\]"):
        OPS.gather_bags_backward(torch.ones(3, 3), *args, False, True, [True, True], False)
    with pytest.raises(ValueError, match="'grad' must be floating"):
        OPS.gather_bags_backward(torch.ones(4, 3, dtype=torch.long), *args, False, True, [True, True], False)
    with pytest.raises(ValueError, match=r"one flag per table \(2\)"):
        OPS.gather_bags_backward(torch.ones(4, 3), *args, False, True, [True], False)
    bad = list(args)
    bad[4] = torch.tensor([3, 2, 0])
    with pytest.raises(IndexError, match="gather_bags_backward: argument 'entry_row' has value 2 at position 1"):
        OPS.gather_bags_backward(torch.ones(4, 3), *bad, False, True, [True, True], False)


def test_real_cpu_kernels_refuse_other_devices():
    """Called on the CPU kernel directly (the dispatcher would send a meta call to the fake kernel)."""
    cpu = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)
    t = loss_case()
    args = [t[k] for k in LOSS_ARGS]
    args[3] = args[3].to("meta")
    with pytest.raises(ValueError, match="sgns_loss: argument 'contexts' must be a CPU tensor here, got meta"):
        OPS.sgns_loss.default.redispatch(cpu, *args)
    g = gather_case()
    gargs = [g[k] for k in GATHER_ARGS] + [False, False]
    gargs[6] = gargs[6].to("meta")
    with pytest.raises(ValueError, match="gather_bags: argument 'ids' must be a CPU tensor here, got meta"):
        OPS.gather_bags.default.redispatch(cpu, *gargs)
    tr = train_case()
    targs = [tr[k] for k in TRAIN_ARGS] + [3, 4, 0.025, 0.0001, 0, 1000, 1, 0, 1, False, False]
    targs[5] = targs[5].to("meta")
    with pytest.raises(ValueError, match="sgns_train: argument 'neg_threshold' must be a CPU tensor here"):
        OPS.sgns_train.default.redispatch(cpu, *targs)
    with pytest.raises(ValueError, match="sgns_unigram_table: argument 'counts' must be a CPU tensor here"):
        OPS.sgns_unigram_table.default.redispatch(cpu, torch.ones(3, dtype=torch.long, device="meta"), 0.75)


if __name__ == "__main__":
    sys.exit(pytest.main([HERE, "-q"]))
