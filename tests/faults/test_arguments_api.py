"""Hostile ARGUMENTS handed to the vectors / fusion Python API: task vocabularies (mappings with their own ids, a
str or a set where a vocabulary is expected), load_vectors keyword arguments, source weights, Hugging Face
tokenizers with special and unknown tokens, most_similar options, MultiSourceEmbedding constructors."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from embedfast import MultiSourceEmbedding, Vectors, load_vectors
from embedfast.fusion import alignment_source, fuse_files, huggingface_source, subword_source, vector_source


@pytest.fixture
def vec():
    g = torch.Generator().manual_seed(0)
    return Vectors(["the", "cat", "dog", "king"], torch.randn(4, 5, generator=g))


# ---- to_embedding: a mapping's ids are the user's ------------------------------------------------------------


def test_mapping_ids_are_kept_no_specials_added(vec):
    """{"<pad>": 0, "the": 1, "cat": 2} gave 4 rows with <unk> prepended and padding_idx=1."""
    emb = vec.to_embedding({"<pad>": 0, "the": 1, "cat": 2})
    W = emb.weight.detach()
    assert W.shape == (3, 5) and emb.padding_idx == 0
    assert torch.equal(W[0], torch.zeros(5))
    assert torch.equal(W[1], vec["the"]) and torch.equal(W[2], vec["cat"])
    assert emb.itos == ["<pad>", "the", "cat"] and emb.stoi == {"<pad>": 0, "the": 1, "cat": 2}
    c = emb.coverage
    assert (c.total, c.found, c.missing) == (2, 2, 0) and c.specials == ["<pad>"] and c.padding_idx == 0


def test_hand_written_vocab_with_upper_case_specials(vec):
    """{'<PAD>': 0, '<UNK>': 1, 'the': 2, ...} got two extra rows in front."""
    emb = vec.to_embedding({"<PAD>": 0, "<UNK>": 1, "the": 2, "dog": 3}, oov="zeros")
    W = emb.weight.detach()
    assert W.shape == (4, 5) and emb.padding_idx == 0
    assert torch.equal(W[2], vec["the"]) and torch.equal(W[3], vec["dog"])
    assert torch.equal(W[1], torch.zeros(5))  # <UNK>: special, OOV initialisation
    assert emb.coverage.specials == ["<PAD>", "<UNK>"] and emb.coverage.total == 2


@pytest.mark.parametrize("pad", ["<pad>", "<PAD>", "[PAD]", "<Pad>", "[pad]"])
def test_pad_spellings_detected_at_their_own_id(vec, pad):
    emb = vec.to_embedding({"the": 0, pad: 1, "cat": 2})
    assert emb.padding_idx == 1 and torch.equal(emb.weight[1].detach(), torch.zeros(5))
    assert torch.equal(emb.weight[0].detach(), vec["the"])


def test_mapping_ids_with_gaps_are_reported(vec, caplog):
    with caplog.at_level(logging.WARNING, logger="embedfast.vectors"):
        emb = vec.to_embedding({"the": 0, "cat": 4}, oov="zeros")
    assert emb.weight.shape == (5, 5) and torch.equal(emb.weight[4].detach(), vec["cat"])
    assert emb.coverage.unused_ids == [1, 2, 3] and emb.itos == ["the", None, None, None, "cat"]
    assert "3 ids" in str(emb.coverage) and "3 ids of the vocab mapping have no word" in caplog.text


@pytest.mark.parametrize("mapping,err,match", [
    ({"the": 0, "cat": 0}, ValueError, r"words 'the' and 'cat' both have id 0"),
    ({"the": -1}, ValueError, r"the id of 'the' is -1"),
    ({"the": 1.0}, TypeError, r"the id of 'the' must be an int, got float"),
    ({"the": True}, TypeError, r"the id of 'the' must be an int, got bool"),
    ({"the": "0"}, TypeError, r"must be an int, got str"),
    ({0: "the"}, TypeError, r"key 0 is a int"),
    ({"the": 10 ** 12}, ValueError, r"largest id is 1000000000000"),
])
def test_bad_mapping_ids_name_the_words(vec, mapping, err, match):
    with pytest.raises(err, match=match):
        vec.to_embedding(mapping)


def test_numpy_and_tensor_int_ids_accepted(vec):
    emb = vec.to_embedding({"the": np.int64(1), "cat": torch.tensor(0)})
    assert emb.itos == ["cat", "the"]


def test_sequence_positions_are_ids_never_shifted(vec):
    emb = vec.to_embedding(["the", "cat", "zzz"], oov="zeros")
    assert emb.weight.shape == (3, 5) and emb.padding_idx is None
    assert torch.equal(emb.weight[0].detach(), vec["the"])
    assert emb.coverage.missing_words == ["zzz"]
    # explicitly asked specials missing from the vocab come after the last id: the user's ids stay
    emb = vec.to_embedding(["the", "cat"], specials=("<pad>", "<unk>"))
    assert emb.itos == ["the", "cat", "<pad>", "<unk>"] and emb.padding_idx == 2
    assert torch.equal(emb.weight[0].detach(), vec["the"])
    # iterators and dict keys are ordered: accepted
    assert vec.to_embedding(iter(["cat", "the"])).itos == ["cat", "the"]
    assert vec.to_embedding({"cat": 0, "the": 1}.keys()).itos == ["cat", "the"]


def test_pad_token_and_padding_idx_arguments(vec):
    emb = vec.to_embedding(["the", "<blank>", "cat"], pad_token="<blank>")
    assert emb.padding_idx == 1 and torch.equal(emb.weight[1].detach(), torch.zeros(5))
    assert emb.coverage.total == 2
    assert vec.to_embedding(["the", "cat"], padding_idx=1).padding_idx == 1
    assert vec.to_embedding(["<pad>", "cat"], padding_idx=None).padding_idx is None
    with pytest.raises(ValueError, match="several padding tokens"):
        vec.to_embedding(["<pad>", "[PAD]", "cat"])
    assert vec.to_embedding(["<pad>", "[PAD]", "cat"], pad_token="[PAD]").padding_idx == 1
    with pytest.raises(ValueError, match="pad_token '<pad>' is not in vocab"):
        vec.to_embedding(["the"], pad_token="<pad>")
    with pytest.raises(ValueError, match="padding_idx=5 is outside the 2 rows"):
        vec.to_embedding(["the", "cat"], padding_idx=5)
    with pytest.raises(ValueError, match="disagree"):
        vec.to_embedding(["<pad>", "the"], pad_token="<pad>", padding_idx=1)
    with pytest.raises(TypeError, match="padding_idx must be an int"):
        vec.to_embedding(["the"], padding_idx=True)


def test_to_embedding_other_arguments(vec):
    for bad in (float("nan"), float("inf"), -1.0, "0.6"):
        with pytest.raises(ValueError, match="oov_scale must be a finite number >= 0"):
            vec.to_embedding(["the"], oov_scale=bad)
        with pytest.raises(ValueError, match="oov_scale must be a finite number >= 0"), \
                pytest.warns(DeprecationWarning, match="use oov_scale="):
            vec.to_embedding(["the"], scale=bad)  # the former name
    with pytest.raises(TypeError, match="dtype must be a floating-point"):
        vec.to_embedding(["the"], dtype=torch.int64)
    assert vec.to_embedding([]).weight.shape == (0, 5)
    assert Vectors([], torch.empty(0, 5)).to_embedding(["a"], oov="mean").weight.shape == (1, 5)


# ---- one vocabulary reader everywhere: str, bytes, sets, non-str items ----------------------------------------


def _vocab_takers(vec):
    return {
        "to_embedding": lambda v: vec.to_embedding(v),
        "MultiSourceEmbedding.from_vectors": lambda v: MultiSourceEmbedding.from_vectors(v, [vec]),
        "MultiSourceEmbedding.from_subwords": lambda v: MultiSourceEmbedding.from_subwords(v, vec),
        "vector_source": lambda v: vector_source(v, vec),
        "subword_source": lambda v: subword_source(v, vec),
        "alignment_source": lambda v: alignment_source(v, vec, {}),
    }


@pytest.mark.parametrize("taker", list(_vocab_takers(None)))
def test_str_and_bytes_vocab_refused(vec, taker):
    """A str was read as a list of characters."""
    f = _vocab_takers(vec)[taker]
    with pytest.raises(TypeError, match=rf"{taker}: vocab must be a sequence of words, not a str; did you mean "
                                        r"\['the cat'\] or 'the cat'\.split\(\)\?"):
        f("the cat")
    with pytest.raises(TypeError, match="not a bytes"):
        f(b"the cat")


@pytest.mark.parametrize("taker", list(_vocab_takers(None)))
def test_unordered_set_vocab_refused(vec, taker):
    """A set gave ids that change from run to run."""
    f = _vocab_takers(vec)[taker]
    for s in ({"the", "cat"}, frozenset({"the", "cat"})):
        with pytest.raises(TypeError, match=r"changes from run to run; pass sorted\(vocab\)"):
            f(s)


@pytest.mark.parametrize("taker", list(_vocab_takers(None)))
def test_non_str_items_and_duplicates_named(vec, taker):
    f = _vocab_takers(vec)[taker]
    with pytest.raises(TypeError, match=r"vocab\[1\] must be a str, got int 3"):
        f(["the", 3])
    with pytest.raises(ValueError, match=r"word 'the' appears twice in vocab \(indices 0 and 2\)"):
        f(["the", "cat", "the"])
    with pytest.raises(TypeError, match="got None"):
        f(None)


def test_from_vectors_mapping_ids_are_rows(vec):
    m = MultiSourceEmbedding.from_vectors({"cat": 1, "the": 0, "zzz": 3}, [vec], learn_weights=False)
    assert m.num_embeddings == 4
    out = m(torch.tensor([0, 1, 2, 3]))
    assert torch.allclose(out[0], vec["the"]) and torch.allclose(out[1], vec["cat"])
    assert torch.equal(out[2], torch.zeros(5)) and torch.equal(out[3], torch.zeros(5))
    assert m.coverage["no_source"] == 2


def test_load_vectors_vocab_filter(tmp_path, vec):
    path = str(tmp_path / "v.txt")
    vec.save(path, format="glove")
    with pytest.raises(TypeError, match=r"load_vectors: vocab must be a sequence of words, not a str; did you "
                                        r"mean \['king'\]"):
        load_vectors(path, vocab="king")
    with pytest.raises(TypeError, match=r"vocab\[0\] must be a str"):
        load_vectors(path, vocab=[1])
    # a set is fine for a filter: rows keep the file's order, missing words listed sorted
    v = load_vectors(path, vocab={"king", "the", "zz", "aa"})
    assert v.words == ["the", "king"] and v.report.vocab_missing == ["aa", "zz"]
    v = load_vectors(path, vocab=["king", "the", "king"])
    assert v.words == ["the", "king"] and v.report.vocab_requested == 2


def test_fuse_files_vocab_and_paths(tmp_path, vec):
    path = str(tmp_path / "v.txt")
    vec.save(path, format="glove")
    out = str(tmp_path / "o.txt")
    with pytest.raises(TypeError, match="fuse_files: vocab must be a sequence of words, not a str"):
        fuse_files([path], out, vocab="the")
    with pytest.raises(TypeError, match="fuse_files: paths must be a list of files"):
        fuse_files(path, out)
    with pytest.raises(ValueError, match="id 1 has no word"):
        fuse_files([path], out, vocab={"the": 0, "cat": 2})
    fuse_files([path], out, vocab={"cat": 1, "the": 0})
    assert load_vectors(out).words == ["the", "cat"]


# ---- load_vectors keyword arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(limit=-1), ValueError, r"limit must be >= 0"),
    (dict(limit=True), TypeError, r"limit must be an int or None, got bool"),
    (dict(limit=2.5), TypeError, r"limit must be an int or None, got float"),
    (dict(threads=-2), ValueError, r"threads must be from 0 to 1024"),
    (dict(threads=10 ** 6), ValueError, r"threads must be from 0 to 1024"),
    (dict(threads=False), TypeError, r"threads must be an int"),
    (dict(dtype="float32"), ValueError, r"dtype must be torch.float32.*got 'float32'"),
    (dict(dtype=torch.int32), ValueError, r"dtype must be"),
    (dict(on_error="ignore"), ValueError, r"on_error must be 'raise' or 'skip'"),
    (dict(format="csv"), ValueError, r"format must be one of"),
    (dict(format=None), ValueError, r"format must be one of"),
    (dict(mmap="yes"), TypeError, r"mmap must be True or False"),
])
def test_load_vectors_bad_keyword_arguments(tmp_path, vec, kwargs, err, match):
    path = str(tmp_path / "v.txt")
    vec.save(path, format="glove")
    with pytest.raises(err, match=match):
        load_vectors(path, **kwargs)


def test_load_vectors_good_edge_arguments(tmp_path, vec):
    path = str(tmp_path / "v.txt")
    vec.save(path, format="glove")
    assert len(load_vectors(path, limit=0)) == 0
    assert len(load_vectors(path, limit=np.int64(2))) == 2
    assert len(load_vectors(path, threads=0)) == 4
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        load_vectors(None)


# ---- source weights ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights,match", [
    ([float("nan"), 1.0], r"weights\[0\] = nan is not finite"),
    ([1.0, float("inf")], r"weights\[1\] = inf is not finite"),
    ([-1.0, 1.0], r"weights\[0\] = -1.0 is negative"),
    ([0.0, 0.0], r"weights are all zero"),
    ([1.0], r"one value per source \(2\)"),
])
def test_bad_source_weights(vec, weights, match):
    """`embedfast fuse --weights nan,1` was accepted."""
    for learn in (False, True):
        with pytest.raises(ValueError, match=match):
            MultiSourceEmbedding.from_vectors(["the"], [vec, vec], weights=weights, learn_weights=learn)
    with pytest.raises(TypeError, match="weights must be 2 numbers, got a str"):
        MultiSourceEmbedding.from_vectors(["the"], [vec, vec], weights="nan,1")


def test_fuse_cli_refuses_nan_weights(tmp_path, vec):
    from tests.faults.util import assert_no_signal, run_cli
    a = str(tmp_path / "a.txt")
    vec.save(a, format="glove")
    out = str(tmp_path / "o.txt")
    r = run_cli("fuse", a, a, "-o", out, "--weights", "nan,1", timeout=120)
    assert_no_signal(r)
    assert r.returncode != 0 and "weights" in r.stderr and "nan" in r.stderr, r.describe()
    assert not (tmp_path / "o.txt").exists()


# ---- MultiSourceEmbedding constructors ---------------------------------------------------------------------


def test_constructor_arguments_checked():
    t = torch.zeros(3, 2)
    idx = torch.zeros(2, 1, dtype=torch.long)
    with pytest.raises(ValueError, match=r"tables\[0\] must be a 2-D tensor"):
        MultiSourceEmbedding([[1.0, 2.0]], idx)
    with pytest.raises(TypeError, match="tables must be a list"):
        MultiSourceEmbedding(t, idx)
    with pytest.raises(ValueError, match="must be floating-point"):
        MultiSourceEmbedding([torch.zeros(3, 2, dtype=torch.long)], idx)
    with pytest.raises(ValueError, match="project_to must be an int >= 1"):
        MultiSourceEmbedding([t], idx, project_to=-1)
    with pytest.raises(ValueError, match="oov_scale must be a finite number"):
        MultiSourceEmbedding([t], idx, oov="random", oov_scale=float("nan"))
    with pytest.raises(ValueError, match="2 names for 1 sources"):
        MultiSourceEmbedding([t], idx, names=["a", "b"])


def test_from_bags_inconsistent_csr_refused():
    t = [torch.zeros(3, 2)]
    one = torch.tensor([0])
    with pytest.raises(ValueError, match="bag_offsets must start at 0"):
        MultiSourceEmbedding.from_bags(t, torch.tensor([0, 5]), one, one)
    with pytest.raises(IndexError, match=r"entry_row\[0\] = 7 is out of range for source 0 \(3 rows\)"):
        MultiSourceEmbedding.from_bags(t, torch.tensor([0, 1]), one, torch.tensor([7]))
    with pytest.raises(IndexError, match=r"entry_source\[0\] = 3 is not a source"):
        MultiSourceEmbedding.from_bags(t, torch.tensor([0, 1]), torch.tensor([3]), one)
    with pytest.raises(ValueError, match=r"entry_weight\[0\] = nan is not finite"):
        MultiSourceEmbedding.from_bags(t, torch.tensor([0, 1]), one, one, torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="bag_offsets must be an integer tensor"):
        MultiSourceEmbedding.from_bags(t, [0, 1], one, one)


def test_empty_vocab_and_zero_row_vectors(vec):
    m = MultiSourceEmbedding.from_vectors([], [vec])
    assert m.materialize().weight.shape == (0, 5)
    m = MultiSourceEmbedding.from_vectors(["a"], [Vectors([], torch.empty(0, 5))])
    assert torch.equal(m(torch.tensor([0])), torch.zeros(1, 5))
    with pytest.raises(TypeError, match="vectors must be a list of Vectors"):
        MultiSourceEmbedding.from_vectors(["the"], vec)


def test_subword_tokenize_returning_a_non_list(vec):
    with pytest.raises(TypeError, match=r"tokenize\('the'\) must return a list of str pieces"):
        subword_source(["the"], vec, tokenize=lambda w: 5)


# ---- Hugging Face sources with fake tokenizers -------------------------------------------------------------


class _Emb:
    def __init__(self, n, d):
        self.weight = torch.arange(n * d, dtype=torch.float32).reshape(n, d)


class _Model:
    def __init__(self, n=10, d=3):
        self.emb = _Emb(n, d)

    def get_input_embeddings(self):
        return self.emb


class _FakeTokenizer:
    """Pieces: single characters a..e (ids 5..9); [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4; anything else
    -> [UNK]. Like a Hugging Face tokenizer, '<pad>' is not a token of it and becomes '<', 'pad', '>' pieces."""

    all_special_tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    unk_token, unk_token_id = "[UNK]", 1

    def __init__(self):
        self.vocab = {t: i for i, t in enumerate(self.all_special_tokens)}
        self.vocab.update({c: 5 + i for i, c in enumerate("abcde")})

    def get_vocab(self):
        return dict(self.vocab)

    def convert_tokens_to_ids(self, t):
        return self.vocab.get(t, self.unk_token_id)

    def encode(self, text, add_special_tokens=False):
        assert not add_special_tokens
        return [self.vocab.get(c, self.unk_token_id) for c in text]


def test_hf_special_words_get_their_own_row_or_are_missing():
    """A vocabulary word `<pad>` became the mean of `<`, `pad`, `>`; a word that tokenises to [UNK] only counted
    as found."""
    model, tok = _Model(), _FakeTokenizer()
    words = ["[PAD]", "[CLS]", "<pad>", "ab", "axz", "xyz", "[UNK]"]
    src = huggingface_source(words, model, tok)
    bags = [src.rows[src.offsets[i]:src.offsets[i + 1]].tolist() for i in range(len(words))]
    assert bags[0] == [0] and bags[1] == [2]  # special tokens: their own row
    assert bags[2] == []  # '<pad>' is not a token of this tokenizer: missing, not a mix of '<', 'p', ...
    assert bags[3] == [5, 6]
    assert bags[4] == [5]  # unknown pieces dropped
    assert bags[5] == []  # no known piece: missing
    assert bags[6] == [1]  # the unknown token itself is a special token with its own row
    cov = src.coverage
    assert cov["found"] == 5 and cov["missing"] == 2 and cov["specials"] == 3
    assert cov["unknown_pieces"] == 2 + 3
    m = MultiSourceEmbedding.from_sources([src], learn_weights=False)
    out = m(torch.arange(len(words)))
    table = model.emb.weight
    assert torch.equal(out[4], table[5]) and torch.equal(out[5], torch.zeros(3))
    assert torch.allclose(out[3], (table[5] + table[6]) / 2)


def test_hf_callable_tokenizer_and_unk_token_id():
    model = _Model()
    table = {"a": [5], "b": [6], "<pad>": [0]}

    def tok(w):
        return [i for c in ([w] if w in table else list(w)) for i in table.get(c, [1])]

    src = huggingface_source(["<pad>", "ab", "zz", "az"], model, tok, unk_token_id=1)
    bags = [src.rows[src.offsets[i]:src.offsets[i + 1]].tolist() for i in range(4)]
    assert bags == [[0], [5, 6], [], [5]]
    with pytest.raises(TypeError, match="unk_token_id must be an int"):
        huggingface_source(["a"], model, tok, unk_token_id="1")


def test_hf_tokenizer_ids_checked():
    model = _Model(n=4)
    with pytest.raises(ValueError, match=r"tokenizer gave id 7 for 'a', outside the 4 rows"):
        huggingface_source(["a"], model, lambda w: [7])
    with pytest.raises(TypeError, match="huggingface_source: vocab must be a sequence of words, not a str"):
        huggingface_source("ab", model, lambda w: [0])


def test_hf_real_tokenizer_if_installed():
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer
    from tokenizers.models import WordPiece
    from tokenizers.pre_tokenizers import Whitespace
    vocab = {"[PAD]": 0, "[UNK]": 1, "a": 2, "##b": 3}
    t = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = Whitespace()

    class Wrap:
        all_special_tokens = ["[PAD]", "[UNK]"]
        unk_token, unk_token_id = "[UNK]", 1

        def get_vocab(self):
            return t.get_vocab()

        def encode(self, text, add_special_tokens=False):
            return t.encode(text, add_special_tokens=add_special_tokens).ids

    src = huggingface_source(["[PAD]", "ab", "zz"], _Model(), Wrap())
    assert src.coverage["found"] == 2 and src.coverage["missing"] == 1
    del tokenizers


# ---- most_similar ------------------------------------------------------------------------------------------


def test_most_similar_arguments(vec):
    assert vec.most_similar("the", topn=0) == []
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="topn must be an int >= 0 or None"):
            vec.most_similar("the", topn=bad)
    for bad in (0, -3, 1.5):
        with pytest.raises(ValueError, match="restrict_vocab must be an int >= 1"):
            vec.most_similar("the", restrict_vocab=bad)  # 0 used to search every row, -1 all but the last
    with pytest.raises(ValueError, match="zero vector"):
        vec.most_similar(positive=["the"], negative=["the"])
    with pytest.raises(ValueError, match="NaN or inf"):
        vec.most_similar(torch.full((5,), float("nan")))
    with pytest.raises(KeyError, match="zzz"):
        vec.most_similar("zzz")
    assert Vectors([], torch.empty(0, 5)).most_similar(torch.ones(5)) == []


def test_most_similar_never_returns_nan_rows():
    v = Vectors(["a", "b", "c"], torch.tensor([[1.0, 0.0], [float("nan"), 0.0], [0.5, 0.5]]))
    assert [w for w, _ in v.most_similar("a", topn=5)] == ["c"]


def test_vectors_constructor_arguments():
    with pytest.raises(TypeError, match=r"words\[1\] must be a str, got int"):
        Vectors(["a", 1], torch.zeros(2, 2))
    with pytest.raises(TypeError, match="words must be a sequence of str, got str"):
        Vectors("ab", torch.zeros(2, 2))
    with pytest.raises(TypeError, match="dtype must be a floating-point"):
        Vectors(["a"], torch.zeros(1, 2)).to(torch.int64)
    with pytest.raises(ValueError, match="precision must be an int from 1 to 17"):
        Vectors(["a"], torch.zeros(1, 2)).save("/tmp/never-written.txt", format="glove", precision=0)
