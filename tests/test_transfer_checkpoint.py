"""Checkpoint folders read without transformers: the table bit for bit, word -> piece bags as the tokenizer's,
specials, every bad folder."""
import json
import os
import shutil

import pytest
import torch

from embedfast import MultiSourceEmbedding
from embedfast.fusion import huggingface_source
from embedfast.transfer import read_checkpoint, token_vectors
from transfer_util import VOCAB, hf, minilm, trained_folder  # noqa: F401

pytest.importorskip("safetensors")
pytest.importorskip("tokenizers")

ODD = ["hello", "unbelievable", "Zürich", "日本語", "☃", "naïve", "e-mail", "x" * 120, "<pad>", "[PAD]", "[CLS]"]


def test_real_table_equals_transformers_bitwise(minilm, hf):
    ck = read_checkpoint(minilm)
    ref = hf[0].get_input_embeddings().weight
    assert ck.table.shape == (30522, 384) and ck.table.dtype == ref.dtype
    assert torch.equal(ck.table, ref.detach())
    v = token_vectors(ck)
    assert v.words[:1] == ["[PAD]"] and v.words[7592] == "hello" and torch.equal(v["hello"], ref[7592].detach())
    assert v.unnamed_rows == 0


def test_real_piece_bags_equal_tokenizer(minilm, hf):
    ck = read_checkpoint(minilm)
    tok = hf[1]
    vocab = VOCAB + ODD[:8]
    src = huggingface_source(vocab, minilm)
    unk = tok.unk_token_id
    for i, w in enumerate(vocab):
        ids = [t for t in tok.encode(w, add_special_tokens=False) if t != unk]
        assert ck.tokenizer.encode(w) == tok.encode(w, add_special_tokens=False)
        got = src.rows[src.offsets[i]:src.offsets[i + 1]].tolist()
        assert got == ids, w
        if ids:
            assert torch.allclose(src.weights[src.offsets[i]:src.offsets[i + 1]], torch.full((len(ids),), 1 / len(ids)))
    # a word that is only the unknown token is missing
    assert "☃" in src.coverage.missing_words


def test_specials_pad_and_unknown(minilm):
    vocab = ["<pad>", "[PAD]", "<unk>", "[CLS]", "hello", "☃☃"]
    m = MultiSourceEmbedding.from_huggingface(vocab, minilm, oov="zeros")
    src = huggingface_source(vocab, minilm)
    rows = [src.rows[src.offsets[i]:src.offsets[i + 1]].tolist() for i in range(len(vocab))]
    assert rows == [[0], [0], [100], [101], [7592], []]
    assert m.coverage.sources[0].missing == 1


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "unigram"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_trained_tokenizers_and_dtypes(tmp_path, kind, dtype):
    transformers = pytest.importorskip("transformers")
    folder, table = trained_folder(tmp_path / kind, kind, dtype)
    ck = read_checkpoint(folder)
    assert ck.table.dtype == dtype and torch.equal(ck.table, table) and ck.key == "model.embed_tokens.weight"
    ref = transformers.PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"))
    vocab = VOCAB + ["xyzzy", "Über"]
    unk = ck.tokenizer.unk_token_id
    for w in vocab:
        ids = ref.encode(w, add_special_tokens=False)
        assert ck.tokenizer.encode(w) == ids, (kind, w)
    words = vocab
    src = huggingface_source(words, folder)
    for i, w in enumerate(words):
        want = [t for t in ref.encode(w, add_special_tokens=False) if t != unk]
        assert src.rows[src.offsets[i]:src.offsets[i + 1]].tolist() == want
    v = token_vectors(folder)
    assert len(v) == table.shape[0] and v.unnamed_rows == 3 and v.words[-1] == f"<row {table.shape[0] - 1}>"
    marker = {"wordpiece": "##", "bpe": "Ġ", "unigram": "▁"}[kind]
    assert any(marker in w for w in v.words)
    pad = [w for w in ("[PAD]", "<pad>") if w in ck.tokenizer.get_vocab()][0]
    assert ck.tokenizer.pad_token == pad and ck.tokenizer.pad_token_id == ck.tokenizer.get_vocab()[pad]


def test_table_is_mapped_not_copied(minilm):
    psutil = pytest.importorskip("psutil")
    p = psutil.Process()
    before = p.memory_info().rss
    ck = read_checkpoint(minilm)
    assert p.memory_info().rss - before < ck.table.numel() * ck.table.element_size() // 4


def tokenizer_folder(tmp_path, minilm, name):
    """A new folder ``tmp_path / name`` holding only the MiniLM checkpoint's tokenizer.json."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copyfile(os.path.join(minilm, "tokenizer.json"), folder / "tokenizer.json")
    return folder


def test_bad_folders(tmp_path, minilm):
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        read_checkpoint(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a model folder"):
        read_checkpoint(tmp_path / "f.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        read_checkpoint(empty)
    (empty / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        read_checkpoint(empty)
    only_tok = tokenizer_folder(tmp_path, minilm, "tok")
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        read_checkpoint(only_tok)
    (only_tok / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="pytorch_model.bin"):
        read_checkpoint(only_tok)
    (only_tok / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        read_checkpoint(only_tok)
    bad_tok = tmp_path / "badtok"
    bad_tok.mkdir()
    (bad_tok / "tokenizer.json").write_text("{not json")
    (bad_tok / "model.safetensors").write_bytes(open(os.path.join(minilm, "model.safetensors"), "rb").read(200))
    with pytest.raises(ValueError, match="not a readable tokenizer.json"):
        read_checkpoint(bad_tok)


def test_bad_tables(tmp_path, minilm):
    from safetensors.torch import save_file

    folder = tokenizer_folder(tmp_path, minilm, "small")
    save_file({"embeddings.word_embeddings.weight": torch.zeros(10, 4)}, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="10 rows but .* 30522 token ids"):
        read_checkpoint(folder)
    save_file({"a.weight": torch.zeros(4), "b.weight": torch.zeros(3)}, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="no input-embedding tensor"):
        read_checkpoint(folder)
    with pytest.raises(KeyError, match="no tensor 'zz'"):
        read_checkpoint(folder, key="zz")
    save_file({"x.word_embeddings.weight": torch.zeros(30522, 2, dtype=torch.int32)}, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="not a 2-D floating-point table"):
        read_checkpoint(folder)


def test_sharded_index(tmp_path, minilm):
    from safetensors.torch import save_file

    folder = tokenizer_folder(tmp_path, minilm, "sharded")
    t = torch.randn(30522, 4)
    save_file({"embeddings.word_embeddings.weight": t}, str(folder / "part-1.safetensors"))
    save_file({"encoder.w": torch.zeros(2)}, str(folder / "part-2.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"embeddings.word_embeddings.weight": "part-1.safetensors", "encoder.w": "part-2.safetensors"}}))
    assert torch.equal(read_checkpoint(folder).table, t)
