"""embedfast's layers inside real training: what the recipes in examples/ need from the package.

A model cast to bf16/fp16 (``model.to(dtype)``), autocast, state_dict round trips (through ``torch.save``), the
frozen-then-unfrozen schedule of ``Vectors.to_embedding`` under ``torch.compile``, recompilations of a compiled
training step, sparse gradients with their optimizer.
"""
import io

import pytest
import torch
import torch.nn as nn

import embedfast
from embedfast import MultiSourceEmbedding


def _sources(seed: int, V: int = 37, dims=(8, 12)):
    """Two sources over V words (dims differ by default: a projection); words 0, 15, 30 are in neither."""
    g = torch.Generator().manual_seed(seed)
    words = [f"w{i}" for i in range(V)]
    in_a = [w for i, w in enumerate(words) if i % 3]
    in_b = [w for i, w in enumerate(words) if i % 5 and i != 1]
    return words, [embedfast.Vectors(in_a, torch.randn(len(in_a), dims[0], generator=g)),
                   embedfast.Vectors(in_b, torch.randn(len(in_b), dims[1], generator=g))]


def _module(seed=0, *, project_to=8, freeze_tables=False, oov="normal", mode="weighted", sparse=False):
    words, vecs = _sources(seed)
    return MultiSourceEmbedding.from_vectors(words, vecs, project_to=project_to, freeze_tables=freeze_tables,
                                             oov=oov, mode=mode, sparse=sparse,
                                             generator=torch.Generator().manual_seed(seed + 100))


def _ids(seed, shape=(5, 7), V=37):
    return torch.randint(0, V, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("kind", ["fused", "projected", "attention"])
def test_module_cast_to_another_dtype_runs_and_matches(dtype, kind):
    """``model.to(dtype)`` casts the tables, the source logits and the bag weights: forward and backward still run
    (the op's weights are kept in its weight dtype) and agree with the float32 module within the dtype's
    precision."""
    if kind == "fused":
        words, vecs = _sources(3, dims=(8, 8))
        m = MultiSourceEmbedding.from_vectors(words, [vecs[0], vecs[1]], freeze_tables=False, oov="normal",
                                              generator=torch.Generator().manual_seed(1))
    else:
        m = _module(3, mode="weighted" if kind == "projected" else "attention")
    ids = _ids(4)
    ref = m(ids)
    low = _module_copy(m).to(dtype)
    out = low(ids)
    assert out.dtype == dtype
    tol = {torch.bfloat16: 3e-2, torch.float16: 3e-3, torch.float64: 1e-6}[dtype]
    torch.testing.assert_close(out.double(), ref.double(), atol=tol * 4, rtol=tol * 4)
    out.float().square().sum().backward()
    grads = [p.grad for p in low.parameters()]
    assert all(g is not None and g.dtype == dtype and torch.isfinite(g.float()).all() for g in grads)


def _module_copy(m):
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


@pytest.mark.parametrize("kind", ["fused", "projected"])
def test_autocast_bf16_forward_backward(kind):
    """Under ``torch.autocast('cpu', bfloat16)`` the fused layer and its projections run, gradients reach every
    parameter in its own dtype (float32), and the output is close to the float32 one."""
    if kind == "fused":
        words, vecs = _sources(5, dims=(8, 8))
        m = MultiSourceEmbedding.from_vectors(words, vecs, freeze_tables=False)
    else:
        m = _module(5)
    head = nn.Linear(8, 3)
    ids = _ids(6)
    ref = head(m(ids))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(m(ids))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.05)
    out.float().sum().backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and p.grad.dtype == p.dtype, n


@pytest.mark.parametrize("kind", ["fused", "projected", "attention"])
@pytest.mark.parametrize("freeze_tables", [False, True])
def test_state_dict_round_trip_after_training(kind, freeze_tables):
    """Train a step, save the state_dict through torch.save, load it into a module built with another random
    OOV initialisation (strict): the same outputs and the same next step."""
    if kind == "fused":
        def build(seed):
            words, vecs = _sources(0, dims=(8, 8))
            return MultiSourceEmbedding.from_vectors(words, vecs, freeze_tables=freeze_tables, oov="normal",
                                                     generator=torch.Generator().manual_seed(seed))
    else:
        def build(seed):
            words, vecs = _sources(0)
            return MultiSourceEmbedding.from_vectors(words, vecs, project_to=8, freeze_tables=freeze_tables,
                                                     oov="normal", mode="weighted" if kind == "projected" else
                                                     "attention", generator=torch.Generator().manual_seed(seed))
    a = build(1)
    opt = torch.optim.SGD(a.parameters(), lr=0.5)
    a(_ids(2)).square().mean().backward()
    opt.step()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = build(2)
    assert not torch.equal(a(_ids(3)), b(_ids(3)))
    b.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    torch.testing.assert_close(b(_ids(3)), a(_ids(3)), rtol=0, atol=0)
    for m in (a, b):
        m.zero_grad()
        m(_ids(4)).sum().backward()
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=n)


def test_to_embedding_freeze_then_unfreeze_under_compile():
    """A compiled model with a frozen ``to_embedding`` layer: no gradient for it; after ``requires_grad_(True)``
    the same compiled model trains it (one recompilation, not a stale graph)."""
    import torch._dynamo

    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    v = embedfast.Vectors(["a", "b", "c"], torch.randn(3, 4, generator=g))
    emb = v.to_embedding(["<pad>", "a", "b", "zz"], oov="normal", generator=g)
    model = nn.Sequential(emb, nn.Flatten(), nn.Linear(8, 2))
    step = torch.compile(model, fullgraph=True, backend="aot_eager")
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    ids = torch.tensor([[1, 3], [2, 0]])
    before = emb.weight.detach().clone()
    step(ids).sum().backward()
    opt.step()
    assert emb.weight.grad is None and torch.equal(emb.weight, before)
    emb.weight.requires_grad_(True)
    opt.zero_grad()
    step(ids).sum().backward()
    opt.step()
    assert emb.weight.grad is not None
    changed = (emb.weight != before).any(1)
    assert changed.tolist() == [False, True, True, True]  # the padding row stays


def test_compiled_training_step_does_not_recompile():
    """A compiled model with a projected MultiSourceEmbedding: many training steps over batches of one shape,
    then eval: at most one graph per mode (train, eval), no recompilation per step."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    m = nn.Sequential(_module(7), nn.Linear(8, 37))
    step = torch.compile(m, fullgraph=True, backend="aot_eager")
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    for i in range(6):
        loss = step(_ids(10 + i)).logsumexp(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        step(_ids(99))
        step(_ids(98))
    assert counters["stats"]["unique_graphs"] <= 2, dict(counters["stats"])


def test_sparse_gradients_with_their_optimizer():
    """``sparse=True``: table gradients are sparse; ``sparse_parameters``/``dense_parameters`` split the module
    for SparseAdam + Adam, and a step moves only the rows looked up."""
    m = _module(8, sparse=True)
    sparse, dense = list(m.sparse_parameters()), list(m.dense_parameters())
    assert {id(p) for p in sparse} | {id(p) for p in dense} == {id(p) for p in m.parameters()}
    assert not {id(p) for p in sparse} & {id(p) for p in dense}
    opts = [torch.optim.SparseAdam(sparse, lr=0.1), torch.optim.Adam(dense, lr=0.1)]
    before = [t.detach().clone() for t in m.tables()]
    ids = torch.tensor([[2, 4]])
    m(ids).sum().backward()
    assert all(p.grad.is_sparse for p in sparse) and not any(p.grad.is_sparse for p in dense)
    for o in opts:
        o.step()
    for t, b in zip(m.tables(), before):
        moved = (t != b).any(1).nonzero().flatten().tolist()
        assert set(moved) <= set(m.entry_row.tolist()) and moved


def test_source_compact_keeps_the_fused_vectors():
    """``Source.compact()``: only the rows the bags use, renumbered; the fused layer gives the same vectors and a
    trained copy of the table has only those rows."""
    from embedfast.fusion import subword_source, vector_source

    words, vecs = _sources(9, dims=(8, 8))
    big = embedfast.Vectors(vecs[1].words + [f"extra{i}" for i in range(500)],
                            torch.cat([vecs[1].matrix, torch.randn(500, 8)]))
    srcs = [vector_source(words[:20], vecs[0]), vector_source(words[:20], big),
            subword_source(words[:20], embedfast.Vectors(["<w", "w1", "zz", "1>", "w2"], torch.randn(5, 8)),
                           ngrams=(2, 2))]
    for s in srcs:
        c = s.compact()
        assert c.table.shape[0] == torch.unique(s.rows).numel() < s.table.shape[0]
        torch.testing.assert_close(c.table[c.rows], s.table[s.rows], rtol=0, atol=0)
        assert torch.equal(c.offsets, s.offsets) and torch.equal(c.weights, s.weights)
    whole = MultiSourceEmbedding.from_sources(srcs, freeze_tables=False)
    small = MultiSourceEmbedding.from_sources([s.compact() for s in srcs], freeze_tables=False)
    ids = torch.arange(20)
    torch.testing.assert_close(small(ids), whole(ids), rtol=0, atol=0)
    assert sum(t.numel() for t in small.tables()) < sum(t.numel() for t in whole.tables()) / 5


@pytest.mark.parametrize("project_to", [None, 8])
def test_sparse_module_state_dict_and_optimizer_state_round_trip(project_to):
    """``sparse=True`` keeps the state_dict keys of a dense module (``table_k``): its trained state loads into a
    dense module and back (strict); the optimizers' state (SparseAdam's moments of the rows seen) saved and
    loaded mid-training gives the same next steps as training straight on."""
    def build(seed, sparse):
        words, vecs = _sources(0, dims=(8, 8))
        return MultiSourceEmbedding.from_vectors(words, vecs, project_to=project_to, freeze_tables=False,
                                                 oov="normal", sparse=sparse,
                                                 generator=torch.Generator().manual_seed(seed))

    def optimizers(m):
        return [torch.optim.SparseAdam(m.sparse_parameters(), lr=0.05), torch.optim.Adam(m.dense_parameters(), lr=0.05)]

    def step(m, opts, seed):
        for o in opts:
            o.zero_grad()
        m(_ids(seed)).square().mean().backward()
        for o in opts:
            o.step()

    a = build(1, True)
    opts = optimizers(a)
    for s in range(3):
        step(a, opts, 20 + s)
    assert {n for n, _ in a.named_parameters()} >= {"sparse_tables.0.weight", "sparse_tables.1.weight"}
    assert a.sparse_tables[1].weight is a.tables()[1] and a.tables()[1].grad.is_sparse
    buf = io.BytesIO()
    torch.save({"model": a.state_dict(), "opts": [o.state_dict() for o in opts]}, buf)
    keys = set(a.state_dict())
    assert {"table_0", "table_1"} <= keys and not any(k.startswith("sparse_tables") for k in keys)
    dense = build(2, False)
    assert set(dense.state_dict()) == keys
    dense.load_state_dict(a.state_dict(), strict=True)
    torch.testing.assert_close(dense(_ids(5)), a(_ids(5)), rtol=0, atol=0)
    back = build(3, True)
    back.load_state_dict(dense.state_dict(), strict=True)
    torch.testing.assert_close(back(_ids(5)), a(_ids(5)), rtol=0, atol=0)
    # resume: a fresh sparse module and fresh optimizers from the checkpoint; the same next steps
    buf.seek(0)
    ck = torch.load(buf, weights_only=True)
    b = build(4, True)
    b.load_state_dict(ck["model"], strict=True)
    opts_b = optimizers(b)
    for o, sd in zip(opts_b, ck["opts"]):
        o.load_state_dict(sd)
    for s in range(2):
        step(a, opts, 40 + s)
        step(b, opts_b, 40 + s)
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value, rtol=0, atol=0, msg=key)
