"""MultiSourceEmbedding and its sources: against plain references, coverage, OOV policies, builders, compile, DDP,
CLI, huge pages."""
from __future__ import annotations

import datetime
import os
import random
import tempfile

import pytest
import torch
import torch.nn as nn

import embedfast
from embedfast import MultiSourceEmbedding
from embedfast.fusion import (Source, alignment_source, char_ngrams, huggingface_source, procrustes, subword_source,
                              vector_source)
from embedfast.testing import tolerance
from fusion_util import ALL_DTYPES, _smaps_field


# ---------------------------------------------------------------------------------------------------------
# MultiSourceEmbedding
# ---------------------------------------------------------------------------------------------------------


def make_index(seed, V=23, sizes=(30, 25, 40), missing=0.3):
    g = torch.Generator().manual_seed(seed)
    index = torch.stack([torch.randint(0, n, (V,), generator=g) for n in sizes], 1)
    index[torch.rand(V, len(sizes), generator=g) < missing] = -1
    index[4] = -1  # a word in no source
    return index


def module_reference(tables, index, a, ids, renormalize):
    out = torch.zeros(*ids.shape, tables[0].shape[1], dtype=torch.float64)
    for pos in range(ids.numel()):
        v = int(ids.reshape(-1)[pos])
        acc, s = torch.zeros(tables[0].shape[1], dtype=torch.float64), 0.0
        for k in range(len(tables)):
            if index[v, k] >= 0:
                acc += float(a[k]) * tables[k][index[v, k]].double()
                s += float(a[k])
        out.view(-1, out.shape[-1])[pos] = acc / s if renormalize and s > 0 else acc
    return out


@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_module_matches_issue_formula(poisoned, renormalize, dtype):
    seed = random.randrange(10**6)
    g = torch.Generator().manual_seed(seed)
    tables = [torch.randn(n, 6, generator=g).to(dtype) for n in (30, 25, 40)]
    index = make_index(seed)
    m = MultiSourceEmbedding(tables, index, weights=[0.2, 0.5, 0.3], renormalize=renormalize)
    ids = torch.randint(0, 23, (3, 7), generator=g)
    ids[0, 0] = 4
    out = m(ids)
    assert out.shape == (3, 7, 6) and out.dtype == dtype
    ref = module_reference(tables, index, m.source_weights().detach(), ids, renormalize)
    torch.testing.assert_close(out.double(), ref, **tolerance(dtype), msg=f"seed {seed}")
    assert torch.equal(out[0, 0], torch.zeros(6, dtype=dtype))
    assert [n for n, _ in m.named_parameters()] == ["logits"]
    emb = m.materialize()
    assert isinstance(emb, nn.Embedding) and not emb.weight.requires_grad
    torch.testing.assert_close(emb(ids), out.detach())


def test_module_parameters_and_grads():
    tables = [torch.randn(n, 5) for n in (30, 25, 40)]
    index = make_index(1)
    frozen = MultiSourceEmbedding(tables, index)
    assert {n for n, _ in frozen.named_parameters()} == {"logits"}
    fixed = MultiSourceEmbedding(tables, index, learn_weights=False, freeze_tables=False)
    assert {n for n, _ in fixed.named_parameters()} == {"table_0", "table_1", "table_2"}
    sp = MultiSourceEmbedding(tables, index, freeze_tables=False, sparse=True)
    sp(torch.tensor([0, 1, 2, 2])).sum().backward()
    assert sp.tables()[0].grad.is_sparse and sp.logits.grad is not None  # sparse_tables.0.weight
    torch.optim.SGD(sp.parameters(), lr=0.1).step()  # sparse grads work with SGD


def test_module_bad_input():
    tables = [torch.randn(n, 5) for n in (30, 25, 40)]
    index = make_index(2)
    bad = index.clone()
    bad[3, 1] = 25
    with pytest.raises(IndexError, match=r"index\[3, 1\] = 25 is out of range for source 1"):
        MultiSourceEmbedding(tables, bad)
    with pytest.raises(ValueError, match="3 columns but there are 2 tables"):
        MultiSourceEmbedding(tables[:2], index)
    with pytest.raises(ValueError, match="different dims"):
        MultiSourceEmbedding([tables[0], torch.randn(25, 4), tables[2]], index)
    with pytest.raises(ValueError, match="index must be int64"):
        MultiSourceEmbedding(tables, index.float())
    with pytest.raises(ValueError, match="one value per source"):
        MultiSourceEmbedding(tables, index, weights=[1.0, 2.0])
    m = MultiSourceEmbedding(tables, index)
    with pytest.raises(IndexError, match="'ids' has value 23"):
        m(torch.tensor([23]))
    with pytest.raises(TypeError, match="ids must be int64"):
        m(torch.tensor([1.0]))


@pytest.mark.parametrize("oov", ["zeros", "normal", "mean"])
def test_oov_policy(oov):
    tables = [torch.randn(n, 5) for n in (30, 25, 40)]
    index = make_index(3)
    index[7] = -1
    m = MultiSourceEmbedding(tables, index, oov=oov, oov_scale=0.5, generator=torch.Generator().manual_seed(0))
    out = m(torch.tensor([4, 7, 0]))
    covered = (index >= 0).any(1).nonzero().flatten()
    ref_mean = m.materialize().weight[covered].mean(0)
    if oov == "zeros":
        assert torch.equal(out[:2], torch.zeros(2, 5))
    elif oov == "normal":
        assert not torch.equal(out[0], out[1]) and out[:2].abs().sum() > 0
    else:
        torch.testing.assert_close(out[0], ref_mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[1], ref_mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[2], MultiSourceEmbedding(tables, index)(torch.tensor([0]))[0])


def test_oov_random_is_the_old_name_of_normal():
    tables = [torch.randn(n, 5) for n in (30, 25, 40)]
    index = make_index(3)
    with pytest.warns(DeprecationWarning, match="oov='normal'"):
        old = MultiSourceEmbedding(tables, index, oov="random", generator=torch.Generator().manual_seed(0))
    new = MultiSourceEmbedding(tables, index, oov="normal", generator=torch.Generator().manual_seed(0))
    assert old.oov == new.oov == "normal"
    assert torch.equal(old(torch.arange(23)), new(torch.arange(23)))
    with pytest.raises(ValueError, match="oov must be 'normal', 'zeros' or 'mean'"):
        MultiSourceEmbedding(tables, index, oov="uniform")


class FakeVectors:
    """Duck-typed stand-in for embedfast.Vectors (words + matrix)."""

    def __init__(self, words, matrix):
        self.words, self.matrix = list(words), matrix

    @property
    def dim(self):
        return self.matrix.shape[1]


def test_from_vectors_coverage_and_lowercase():
    a = FakeVectors(["the", "cat", "sat", "on"], torch.randn(4, 3))
    b = FakeVectors(["cat", "dog", "mat", "The"], torch.randn(4, 3))
    vocab = ["The", "cat", "dog", "Sat", "zebra"]
    m = MultiSourceEmbedding.from_vectors(vocab, [a, b], learn_weights=False)
    cov = m.coverage["sources"]
    assert (cov[0]["found"], cov[0]["found_lowercase"], cov[0]["missing"]) == (1, 2, 2)  # cat; The->the, Sat->sat
    assert (cov[1]["found"], cov[1]["found_lowercase"], cov[1]["missing"]) == (3, 0, 2)  # The, cat, dog
    assert m.coverage["no_source"] == 1
    out = m(torch.arange(5))
    torch.testing.assert_close(out[0], (a.matrix[0] + b.matrix[3]) / 2)
    torch.testing.assert_close(out[2], b.matrix[1])
    torch.testing.assert_close(out[3], a.matrix[2])
    assert torch.equal(out[4], torch.zeros(3))
    assert "zebra" not in m.coverage_report() and "source0" in m.coverage_report()
    # the dataclasses behind the old dict form (field names of Vectors.to_embedding's EmbeddingCoverage)
    c = m.coverage
    assert (c.total, c.found, c.missing, c.ratio) == (5, 4, 1, 0.8) and c.found_lowercase == 2
    s0 = c.sources[0]
    assert (s0.name, s0.total, s0.found, s0.found_lowercase, s0.missing) == ("source0", 5, 1, 2, 2)
    assert s0.missing_words == ["dog", "zebra"] and s0.ratio == 3 / 5
    assert c.sources[1].missing_words == ["Sat", "zebra"]
    assert c.as_dict() == {"words": 5, "no_source": 1, "sources": [
        {"name": "source0", "found": 1, "found_lowercase": 2, "missing": 2},
        {"name": "source1", "found": 3, "found_lowercase": 0, "missing": 2}]}
    assert c["words"] == 5 and "no_source" in c and c.get("nothing", 7) == 7 and s0.get("pieces") is None
    with pytest.raises(KeyError):
        c["nothing"]
    strict = MultiSourceEmbedding.from_vectors(vocab, [a, b], lowercase_fallback=False)
    assert strict.coverage["sources"][0]["found_lowercase"] == 0 and strict.coverage["sources"][0]["missing"] == 4
    # dict vocab (word -> id) works the same
    m2 = MultiSourceEmbedding.from_vectors({w: i for i, w in enumerate(vocab)}, [a, b], learn_weights=False)
    torch.testing.assert_close(m2(torch.arange(5)), out)


def test_from_vectors_projection_when_dims_differ():
    a = FakeVectors(["x", "y", "z"], torch.randn(3, 4))
    b = FakeVectors(["y", "z", "w"], torch.randn(3, 6))
    m = MultiSourceEmbedding.from_vectors(["x", "y", "w", "q"], [a, b], project_to=6, learn_weights=False)
    out = m(torch.arange(4))
    assert out.shape == (4, 6)
    torch.testing.assert_close(out[0], m.projections["0"](a.matrix[0]))
    torch.testing.assert_close(out[1], (m.projections["0"](a.matrix[1]) + b.matrix[0]) / 2)
    torch.testing.assert_close(out[2], b.matrix[2])
    assert torch.equal(out[3], torch.zeros(6))
    out.sum().backward()
    assert m.projections["0"].weight.grad is not None


def test_attention_mode():
    tables = [torch.randn(n, 5) for n in (30, 25, 40)]
    index = make_index(4)
    index[9] = torch.tensor([-1, 3, -1])
    m = MultiSourceEmbedding(tables, index, mode="attention", project_to=4)
    out = m(torch.tensor([[9, 4], [0, 1]]))
    assert out.shape == (2, 2, 4)
    torch.testing.assert_close(out[0, 0], m.projections["1"](tables[1][3]))  # one source present: weight 1
    assert torch.equal(out[0, 1], torch.zeros(4))  # no source
    v = 0
    ys = [m.projections[str(k)](tables[k][index[v, k]]) for k in range(3) if index[v, k] >= 0]
    s = torch.softmax(torch.stack([m.scorer(y).squeeze() for y in ys]), 0)
    torch.testing.assert_close(out[1, 0], sum(w * y for w, y in zip(s, ys)))
    out.sum().backward()
    assert m.scorer.weight.grad is not None


def test_subwords_and_char_ngrams():
    assert char_ngrams("ab", 3, 4) == ["<ab", "ab>", "<ab>"]
    pieces = ["<ca", "cat", "at>", "<do", "dog"]
    vec = FakeVectors(pieces, torch.randn(5, 3))
    m = MultiSourceEmbedding.from_subwords(["cat", "dog", "zz"], vec, ngrams=(3, 3))
    out = m(torch.arange(3))
    torch.testing.assert_close(out[0], vec.matrix[:3].mean(0))
    torch.testing.assert_close(out[1], vec.matrix[3:5].mean(0))
    assert torch.equal(out[2], torch.zeros(3))
    s = subword_source(["cat"], vec, tokenize=lambda w: ["cat", "nope"])
    assert s.coverage["pieces"] == 2 and s.coverage["pieces_found"] == 1
    assert s.coverage.extra == {"pieces": 2, "pieces_found": 1}


class FakeTokenizer:
    def __init__(self, pieces):
        self.pieces = pieces

    def encode(self, text, add_special_tokens=True):
        out = [] if not add_special_tokens else [0]
        i = 0
        while i < len(text):  # greedy longest match
            for j in range(len(text), i, -1):
                if text[i:j] in self.pieces:
                    out.append(self.pieces[text[i:j]])
                    i = j
                    break
            else:
                i += 1
        return out


class FakeModel:
    def __init__(self, emb):
        self.emb = emb

    def get_input_embeddings(self):
        return self.emb


def test_from_huggingface_fake_model():
    emb = nn.Embedding(6, 4)
    tok = FakeTokenizer({"play": 2, "ing": 3, "er": 4, "s": 5})
    m = MultiSourceEmbedding.from_huggingface(["playing", "players", "xyz"], FakeModel(emb), tok)
    out = m(torch.arange(3))
    w = emb.weight.detach()
    torch.testing.assert_close(out[0], (w[2] + w[3]) / 2)
    torch.testing.assert_close(out[1], (w[2] + w[4] + w[5]) / 3)
    assert torch.equal(out[2], torch.zeros(4))
    assert m.coverage["sources"][0]["missing"] == 1
    with pytest.raises(TypeError, match="get_input_embeddings"):
        huggingface_source(["a"], object(), tok)


def test_from_huggingface_path_needs_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="transformers"):
            huggingface_source(["a"], "/nonexistent/model")
    else:
        with pytest.raises(Exception):
            huggingface_source(["a"], "/nonexistent/model")


def test_alignment_and_procrustes():
    g = torch.Generator().manual_seed(0)
    src = FakeVectors([f"s{i}" for i in range(20)], torch.randn(20, 5, generator=g))
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    tgt = FakeVectors([f"t{i}" for i in range(20)], src.matrix @ q)
    w = procrustes(src.matrix, tgt.matrix)
    torch.testing.assert_close(w, q, atol=1e-4, rtol=1e-4)
    alignment = {"a": [("s1", 0.3), ("s2", 0.1), ("nope", 0.5)], "b": [("s3", 1.0)], "c": []}
    m = MultiSourceEmbedding.from_alignment(["a", "b", "c"], src, alignment)
    out = m(torch.arange(3))
    torch.testing.assert_close(out[0], (0.3 * src.matrix[1] + 0.1 * src.matrix[2]) / 0.4)
    assert m.coverage["sources"][0]["pairs_dropped"] == 1 and m.coverage["no_source"] == 1
    seed = [(f"s{i}", f"t{i}") for i in range(10)]
    mapped = MultiSourceEmbedding.from_alignment(["a", "b"], src, alignment, seed_dictionary=seed, target_vectors=tgt)
    torch.testing.assert_close(mapped(torch.tensor([1]))[0], tgt.matrix[3], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="probability"):
        alignment_source(["a"], src, {"a": [("s1", -1.0)]})


def test_vector_source_rejects_non_vectors():
    with pytest.raises(TypeError, match="Vectors-like"):
        vector_source(["a"], object())


def test_torch_compile_fullgraph():
    torch._dynamo.reset()
    tables = [torch.randn(n, 8) for n in (30, 25, 40)]
    index = make_index(5)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = MultiSourceEmbedding(tables, index, freeze_tables=False)
            self.head = nn.Linear(8, 3)

        def forward(self, ids):
            return self.head(self.emb(ids).mean(1))

    eager = Model()
    compiled = Model()
    compiled.load_state_dict(eager.state_dict())
    cfn = torch.compile(compiled, fullgraph=True)
    ids = torch.randint(0, 23, (4, 6))
    out_e, out_c = eager(ids), cfn(ids)
    torch.testing.assert_close(out_c, out_e)
    out_e.square().sum().backward()
    out_c.square().sum().backward()
    for (n, p), (_, q) in zip(eager.named_parameters(), compiled.named_parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=n)


def _ddp_worker(rank, world, path, init_file):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    try:
        torch.manual_seed(0)
        tables = [torch.randn(n, 6) for n in (30, 25, 40)]
        m = DDP(MultiSourceEmbedding(tables, make_index(6), freeze_tables=False))
        ids = torch.randint(0, 23, (8, 5))
        local = ids.chunk(world)[rank]
        m(local).square().mean().backward()
        out = {"dense": {n: p.grad for n, p in m.module.named_parameters()}}
        # sparse table gradients (sparse=True, also with gradient_as_bucket_view): all-reduced as sparse
        # tensors, then a SparseAdam + Adam step leaves every rank with the same tables
        for view in (False, True):
            sp = MultiSourceEmbedding(tables, make_index(6), freeze_tables=False, sparse=True,
                                      project_to=4 if view else None)  # the per-source path, the fused one
            d = DDP(sp, gradient_as_bucket_view=view)
            d(local).square().mean().backward()
            grads = {n: p.grad for n, p in sp.named_parameters()}
            opts = [torch.optim.SparseAdam(sp.sparse_parameters(), lr=0.1),
                    torch.optim.Adam(sp.dense_parameters(), lr=0.1)]
            for o in opts:
                o.step()
            out[f"sparse_view{view}"] = {"grads": grads, "state": sp.state_dict()}
        torch.save(out, f"{path}.{rank}")
        dist.barrier()  # no rank tears the group down while the other still uses it
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_match_one():
    from embedfast.testing import spawn_with_timeout

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "grads.pt")
        spawn_with_timeout(_ddp_worker, lambda attempt: (2, path, os.path.join(d, f"init{attempt}")), nprocs=2)
        ranks = [torch.load(f"{path}.{r}") for r in range(2)]
    torch.manual_seed(0)
    tables = [torch.randn(n, 6) for n in (30, 25, 40)]
    m = MultiSourceEmbedding(tables, make_index(6), freeze_tables=False)
    ids = torch.randint(0, 23, (8, 5))
    m(ids).square().mean().backward()
    ddp = ranks[0]["dense"]
    assert set(ddp) == {"logits", "table_0", "table_1", "table_2"}
    for n, p in m.named_parameters():
        torch.testing.assert_close(ddp[n], p.grad, msg=n)
    for view in (False, True):
        sp = MultiSourceEmbedding(tables, make_index(6), freeze_tables=False, sparse=True,
                                  project_to=4 if view else None)
        sp(ids).square().mean().backward()
        res = [r[f"sparse_view{view}"] for r in ranks]
        got = res[0]["grads"]
        assert {n for n, g in got.items() if g.is_sparse} == {f"sparse_tables.{k}.weight" for k in range(3)}
        for n, p in sp.named_parameters():
            want = p.grad.to_dense() if p.grad.is_sparse else p.grad
            torch.testing.assert_close(got[n].to_dense() if got[n].is_sparse else got[n], want, msg=f"{n} {view}")
        assert set(res[0]["state"]) == set(sp.state_dict()) and "table_0" in res[0]["state"]
        for key, value in res[0]["state"].items():  # the same step on both ranks
            torch.testing.assert_close(res[1]["state"][key], value, rtol=0, atol=0, msg=f"{key} {view}")


def test_exported():
    assert embedfast.MultiSourceEmbedding is MultiSourceEmbedding


def test_cli_fuse(tmp_path, capsys):
    from embedfast.cli import main

    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_text("the 1 2\ncat 3 4\n")
    b.write_text("2 2\ncat 5 8\nDog 1 1\n")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("the\ncat\ndog\nzebra\n")
    out = tmp_path / "out.txt"
    assert main(["fuse", str(a), str(b), "-o", str(out), "--weights", "1,3", "--vocab", str(vocab)]) == 0
    lines = [line.split() for line in out.read_text().splitlines()]
    assert [l[0] for l in lines] == ["the", "cat", "dog", "zebra"]
    got = torch.tensor([[float(x) for x in l[1:]] for l in lines])
    want = torch.tensor([[1, 2], [(3 + 3 * 5) / 4, (4 + 3 * 8) / 4], [0, 0], [0, 0]])  # 'dog' != 'Dog'
    torch.testing.assert_close(got, want)
    printed = capsys.readouterr().out
    assert "(2 in no source, written as zeros)" in printed and "found 1, lower-cased 0, missing 3" in printed
    assert main(["fuse", str(a), str(b), "-o", str(out)]) == 0  # union vocabulary
    assert [l.split()[0] for l in out.read_text().splitlines()] == ["the", "cat", "Dog"]
    assert main(["fuse", str(a), str(b), "-o", str(out), "--weights", "1"]) == 2
    assert "--weights has 1 values for 2 inputs" in capsys.readouterr().err


def test_from_vectors_with_embedfast_vectors(tmp_path):
    a = embedfast.Vectors(["the", "cat"], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    path = tmp_path / "b.txt"
    path.write_text("cat 5 8\nThe 1 1\n")
    b = embedfast.load_vectors(str(path))
    m = MultiSourceEmbedding.from_vectors(["The", "cat"], [a, b], learn_weights=False)
    torch.testing.assert_close(m(torch.arange(2)), torch.tensor([[1.0, 1.5], [4.0, 6.0]]))
    assert m.coverage["sources"][0]["found_lowercase"] == 1


def _anon_huge_kb(ptr):
    """AnonHugePages (kB) of the mapping that holds address ptr (0 if none)."""
    m = _smaps_field(ptr, "AnonHugePages")
    return int(m[2][0]) if m else 0


def test_advise_huge_pages_keeps_values_and_collapses():
    from embedfast.fusion import advise_huge_pages

    t = torch.randn(7000, 300)  # 8.4 MB: at least 3 whole 2 MiB pages inside
    want = t.clone()
    view = t[5:9]
    n = advise_huge_pages(t)
    if n == 0:
        pytest.skip("this kernel / platform does not collapse anonymous memory into huge pages (MADV_COLLAPSE)")
    assert n % (2 << 20) == 0 and n >= 3 * (2 << 20)
    assert _anon_huge_kb(t.data_ptr() + t.numel() * 2) > 0
    assert torch.equal(t, want) and torch.equal(view, want[5:9])
    t[3] = 1.5  # still an ordinary, writable tensor sharing its memory with views
    assert bool((t[3] == 1.5).all())
    assert advise_huge_pages(torch.randn(10, 3)) == 0  # smaller than one huge page: nothing to do
    with pytest.raises(TypeError, match="'t' must be a tensor"):
        advise_huge_pages([1.0])


def test_module_huge_pages_option_keeps_sharing():
    tables = [torch.randn(4000, 300) for _ in range(2)]
    index = torch.stack([torch.arange(4000), torch.arange(4000).flip(0)], 1)
    ids = torch.randint(0, 4000, (50,))
    outs = []
    for hp in (True, False):
        emb = MultiSourceEmbedding(tables, index, huge_pages=hp)
        assert emb.table_0.data_ptr() == tables[0].data_ptr()  # frozen tables still share the given memory
        outs.append(emb(ids))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_sources_without_coverage_or_with_the_old_dict():
    t = torch.randn(3, 2)
    off = torch.tensor([0, 1, 1, 2])
    rows, w = torch.tensor([0, 2]), torch.ones(2)
    bare = Source("bare", t, off, rows, w)
    old = Source("old", t, off, rows, w, {"found": 2, "found_lowercase": 0, "missing": 1, "pieces": 4})
    m = MultiSourceEmbedding.from_sources([bare, old], learn_weights=False)
    a, b = m.coverage.sources
    assert (a.name, a.total, a.found, a.missing) == ("bare", 3, 2, 1)
    assert (b.name, b.found, b.missing, b["pieces"]) == ("old", 2, 1, 4)
    assert m.coverage["no_source"] == 1 and m.coverage.ratio == 2 / 3
