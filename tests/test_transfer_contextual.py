"""contextual_vectors against a plain transformers loop (one sentence at a time, no padding) on the real model."""
import pytest
import torch

from embedfast.transfer import contextual_vectors
from embedfast.transfer.contextual import _batches
from transfer_util import hf, minilm, sentences  # noqa: F401

pytest.importorskip("transformers")


def plain(model, tok, sents, layers, pooling="mean"):
    acc = {}
    with torch.inference_mode():
        for words in sents:
            enc = tok(words, is_split_into_words=True, return_tensors="pt")
            hs = model(**enc, output_hidden_states=True).hidden_states
            ls = [layers] if isinstance(layers, int) else layers
            h = torch.stack([hs[l][0] for l in ls]).mean(0)
            wid = enc.word_ids()
            for j, w in enumerate(words):
                idx = [k for k, x in enumerate(wid) if x == j]
                v = {"mean": lambda: h[idx].mean(0), "first": lambda: h[idx[0]], "last": lambda: h[idx[-1]]}[pooling]()
                acc.setdefault(w, []).append(v)
    return {w: torch.stack(v).mean(0) for w, v in acc.items()}, {w: len(v) for w, v in acc.items()}


SENTS = sentences(4, seed=3) + [["unbelievably", "Zürich", "naïve", "e-mail", "the"]]


@pytest.mark.parametrize("layers,pooling", [(-1, "mean"), ([1, 4], "mean"), (0, "first"), (3, "last")])
def test_equals_plain_loop(hf, layers, pooling):
    model, tok = hf
    ref, counts = plain(model, tok, SENTS, layers if layers != -1 else 6, pooling)
    v = contextual_vectors(model, SENTS, tokenizer=tok, layers=layers, subword_pooling=pooling, batch_tokens=64,
                           progress=False)
    assert sorted(v.words) == sorted(ref)
    for w in ref:
        assert torch.allclose(v[w], ref[w], atol=1e-5, rtol=0), w
        assert int(v.counts[v.index(w)]) == counts[w]
    rep = v.report
    assert rep.pieces <= rep.padded_slots <= rep.pieces * 1.5 and rep.sentences == len(SENTS)


def test_folder_raw_text_and_vocab(minilm, hf):
    model, tok = hf
    raw = ["The file could not be opened.", "", "Open the file, please!"]
    v = contextual_vectors(minilm, raw, pretokenized=False, vocab=["file", "open", "zebra"], progress=False)
    words = [["the", "file", "could", "not", "be", "opened", "."], ["open", "the", "file", ",", "please", "!"]]
    ref, counts = plain(model, tok, words, 6)
    assert v.words == ["file", "open", "zebra"] and v.counts.tolist() == [2, 1, 0]
    assert torch.allclose(v["file"], ref["file"], atol=1e-5) and torch.equal(v["zebra"], torch.zeros(384))
    assert v.report.empty_sentences == 1 and v.report.words_skipped == 10


def test_truncation_drops_cut_words(hf):
    model, tok = hf
    n = len(tok.encode("unbelievably", add_special_tokens=False))
    assert n > 1
    long = ["unbelievably"] * 10
    v = contextual_vectors(model, [long], tokenizer=tok, max_length=2 + 3 * n + 1, progress=False)
    assert int(v.counts[0]) == 3 and v.report.words_truncated == 7  # the 4th word is cut: dropped


def test_batches_bound_padding():
    g = torch.Generator().manual_seed(5)
    lens = torch.randint(1, 200, (997,), generator=g).numpy()
    seen = []
    for b in _batches(lens, 700):
        assert len(b) == 1 or len(b) * lens[b].max() <= 700
        assert lens[b].min() >= 0.9 * lens[b].max() or len(b) == 1
        seen += b.tolist()
    assert sorted(seen) == list(range(997))


def test_bad_arguments(hf, tmp_path):
    model, tok = hf
    for kw, msg in [({"subword_pooling": "max"}, "subword_pooling"), ({"batch_tokens": 0}, "batch_tokens"),
                    ({"max_length": 2}, "max_length"), ({"layers": 7}, "layer 7 is outside"),
                    ({"layers": []}, "layers is empty"), ({"layers": "1"}, "layers must be ints")]:
        with pytest.raises((ValueError, TypeError), match=msg):
            contextual_vectors(model, [["a"]], tokenizer=tok, progress=False, **kw)
    with pytest.raises(ValueError, match="tokenizer is required"):
        contextual_vectors(model, [["a"]], progress=False)
    with pytest.raises(TypeError, match="sentence 1 must be"):
        contextual_vectors(model, [["a"], 3], tokenizer=tok, progress=False)
    with pytest.raises(TypeError, match="model must be"):
        contextual_vectors(42, [["a"]], progress=False)
    with pytest.raises(FileNotFoundError):
        contextual_vectors(model, str(tmp_path / "missing.txt"), tokenizer=tok, progress=False)
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        contextual_vectors(str(tmp_path / "nomodel"), [["a"]], progress=False)


def test_heap_trimming_changes_nothing(hf, monkeypatch):
    """The per-batch malloc_trim (on by default on the CPU) only returns free pages: the vectors are the same
    with it turned off (EMBEDFAST_TRIM=0), and the trimmer itself runs (a no-op outside glibc)."""
    from embedfast.transfer.contextual import _heap_trimmer

    _heap_trimmer()()
    model, tok = hf
    runs = []
    for flag in ("1", "0"):
        monkeypatch.setenv("EMBEDFAST_TRIM", flag)
        runs.append(contextual_vectors(model, SENTS, tokenizer=tok, layers=2, batch_tokens=48, progress=False))
    assert runs[0].words == runs[1].words
    assert torch.equal(runs[0].matrix, runs[1].matrix)
