"""Triton CBOW / hierarchical-softmax kernel (embedfast/word2vec/triton_models.py) against the C++ CPU op.

As tests/test_word2vec_triton.py: without a GPU the kernel runs in Triton's interpreter on CPU tensors
(TRITON_INTERPRET=1 while the module is imported and while these tests run). A chunk of one sentence gets the
same random draws on both backends, so the update must match the CPU op's. Sizes are tiny: the interpreter is slow.
"""
from __future__ import annotations

import os
import random

import pytest
import torch

pytest.importorskip("triton")

from embedfast import ops  # noqa: E402
from embedfast.word2vec import keep_probabilities  # noqa: E402

from cuda_util import import_interpreted, interpreter_env  # noqa: E402,F401


# imported interpreted without a GPU; the module fixture sets TRITON_INTERPRET while the tests run (autouse)
tm = import_interpreted("embedfast.word2vec.triton_models")
from embedfast.word2vec.triton_kernels import INTERPRETED  # noqa: E402

if INTERPRETED != ("TRITON_INTERPRET" in os.environ or not torch.cuda.is_available()) and not INTERPRETED:
    pytest.skip("the Triton kernels were imported compiled but there is no GPU", allow_module_level=True)
DEV = "cpu" if INTERPRETED else "cuda"



def _case(seed, V, D, deep):
    rng = random.Random(seed)
    n = rng.randint(6, 14)
    ids = torch.tensor([rng.randrange(V) for _ in range(n)], dtype=torch.int32)
    off = torch.tensor([0, n])
    if deep:  # Fibonacci counts: a Huffman path of V - 1 nodes (longer than one tile)
        f = [1, 1]
        while len(f) < V:
            f.append(f[-1] + f[-2])
        counts = torch.tensor(f[::-1][:V], dtype=torch.int64)
    else:
        counts = torch.tensor([rng.randint(1, 50) for _ in range(V)], dtype=torch.int64)
    keep = keep_probabilities(counts, rng.choice([0.0, 0.05]))
    thr, alias = ops.sgns_unigram_table(counts, 0.75)
    hs_tables = ops.word2vec_huffman(counts)
    g = torch.Generator().manual_seed(seed)
    w_in, w_out = torch.randn(V, D, generator=g) * 0.3, torch.randn(V, D, generator=g) * 0.3
    return ids, off, keep, thr, alias, hs_tables, w_in, w_out


@pytest.mark.parametrize("cbow,hs,deep", [(True, False, False), (False, True, False), (True, True, False),
                                          (False, True, True), (True, True, True)])
@pytest.mark.parametrize("exact", [True, False])
def test_triton_matches_cpu_op(cbow, hs, deep, exact):
    seed = random.randrange(1 << 30)
    V, D = (24, 19) if deep else (13, 7)
    ids, off, keep, thr, alias, hs_tables, w_in, w_out = _case(seed, V, D, deep)
    if deep:
        assert int((hs_tables[0][1:] - hs_tables[0][:-1]).max()) > 16
    kw = dict(window=3, negative=0 if hs else 1, alpha=0.05, min_alpha=1e-3, words_done=5, total_words=60,
              seed=seed, chunk=3, num_threads=1, cbow=cbow, hs=hs, exact_sigmoid=exact)
    a_in, a_out = w_in.clone(), w_out.clone()
    st_cpu = ops.word2vec_train(a_in, a_out, ids, off, keep, thr, alias, hs_tables, **kw)
    b_in, b_out = w_in.clone().to(DEV), w_out.clone().to(DEV)
    dev_tables = tuple(t.to(DEV) for t in hs_tables)
    st_tr = ops.word2vec_train(b_in, b_out, ids.to(DEV), off.to(DEV), keep.to(DEV), thr.to(DEV), alias.to(DEV),
                               dev_tables, backend="triton", **kw)
    st_cpu, st_tr = st_cpu.tolist(), st_tr.cpu().tolist()
    assert st_tr[1:] == pytest.approx(st_cpu[1:], rel=1e-6)  # pairs, negatives, skipped, tokens, kept, ...
    assert st_cpu[1] > 0
    assert st_tr[0] == pytest.approx(st_cpu[0], rel=1e-4)
    torch.testing.assert_close(b_in.cpu(), a_in, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(b_out.cpu(), a_out, atol=2e-5, rtol=1e-4)
    assert not torch.equal(a_in, w_in)  # something was trained


def test_triton_checks_and_sgns_mode():
    ids, off, keep, thr, alias, hs_tables, w_in, w_out = _case(1, 13, 7, False)
    args = [t.to(DEV) for t in (w_in, w_out, ids, off, keep, thr, alias)]
    tables = tuple(t.to(DEV) for t in hs_tables)
    kw = dict(window=2, negative=0, alpha=0.025, min_alpha=1e-4, words_done=0, total_words=50, seed=0, chunk=0,
              hs=True, backend="triton")
    with pytest.raises(ValueError, match="pass negative=0 with hs, got negative=2"):
        ops.word2vec_train(*args, tables, **{**kw, "negative": 2})
    with pytest.raises(ValueError, match="shared_negatives"):
        ops.word2vec_train(*args, tables, **{**kw, "shared_negatives": True})
    with pytest.raises(IndexError, match="hs_points\\[0\\] = 12 is outside the inner nodes"):
        ops.word2vec_train(*args, (tables[0], torch.full_like(tables[1], 12), tables[2]), **kw)
    with pytest.raises(ValueError, match="'hs_offsets' must have shape \\[14\\]"):
        ops.word2vec_train(*args, (tables[0][:-1], tables[1], tables[2]), **kw)
    assert torch.equal(args[0].cpu(), w_in)
    # cbow=False, hs=False is the SGNS Triton op
    a = [t.clone() for t in args[:2]]
    b = [t.clone() for t in args[:2]]
    sk = dict(window=2, negative=2, alpha=0.025, min_alpha=1e-4, words_done=0, total_words=50, seed=4, chunk=1,
              num_threads=1)
    st1 = ops.word2vec_train(*a, *args[2:], **sk, backend="triton")
    st2 = ops.sgns_train(*b, *args[2:], **sk, backend="triton")
    assert torch.equal(st1, st2) and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
