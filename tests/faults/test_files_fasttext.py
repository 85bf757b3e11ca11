"""Bad fastText models (.bin) a user may hand ``load_vectors``: truncated anywhere, a lying header or dictionary,
a quantised .ftz, NaN values, trailing bytes, another format asked for. Every one is a ValueError naming the file
and the byte offset with what was expected there, never a crash (the truncation sweep runs in a child process,
where a signal would show), and a failed save keeps the previous file."""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest
import torch

from embedfast import Vectors, load_vectors
from embedfast.vectors.subwords import Subwords

from .util import assert_no_signal, run_python


def _model(tmp_path, name="m.bin", words=("the", "a", "café"), bucket=5, dim=3, labels=()) -> str:
    g = torch.Generator().manual_seed(7)
    sw = Subwords(ngrams=torch.randn(bucket, dim, generator=g), word_rows=torch.randn(len(words), dim, generator=g),
                  minn=2, maxn=4, counts=torch.arange(len(words), 0, -1), labels=list(labels),
                  label_counts=torch.ones(len(labels), dtype=torch.int64), label_base=len(words))
    path = str(tmp_path / name)
    Vectors(list(words), sw.word_rows.clone(), subwords=sw).save(path, format="fasttext-bin")
    return path


def _write(tmp_path, raw: bytes, name="bad.bin") -> str:
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.write(raw)
    return path


# layout of _model's file: magic 0, version 4, args 8 (dim 8, ..., loss 32, model 36, bucket 40, minn 44, maxn 48),
# t 56, dictionary at 64 (size 64, nwords 68, nlabels 72, ntokens 76, pruneidx 84), entries at 92
DICT = 64


def _patch(raw: bytes, at: int, fmt: str, value) -> bytes:
    return raw[:at] + struct.pack(fmt, value) + raw[at + struct.calcsize(fmt):]


def test_truncated_anywhere_is_a_clear_error_never_a_signal(tmp_path):
    path = _model(tmp_path)
    size = os.path.getsize(path)
    code = f"""
import embedfast, sys
raw = open({path!r}, 'rb').read()
bad = 0
for cut in range(1, {size}):
    p = {str(tmp_path / 'cut.bin')!r}
    open(p, 'wb').write(raw[:cut])
    try:
        embedfast.load_vectors(p, format="fasttext-bin")
    except ValueError as e:
        m = str(e)
        if 'cut.bin' not in m or not ('byte offset' in m or 'too short' in m or 'not a fastText' in m
                                      or 'fastText binary model' in m or 'empty' in m):
            print('unclear at', cut, m); bad += 1
    else:
        print('accepted a file cut at', cut); bad += 1
print('bad', bad)
"""
    r = run_python(code, timeout=120)
    assert_no_signal(r)
    assert r.returncode == 0 and r.stdout.strip().endswith("bad 0"), r.describe()


@pytest.mark.parametrize("at,fmt,value,needle", [
    (0, "<i", 12345, "not a fastText binary model"),
    (4, "<i", 13, "format version 13"),
    (8, "<i", 0, "dim must be from 1"),
    (32, "<i", 9, "loss must be 1"),
    (36, "<i", 0, "model must be 1"),
    (40, "<i", -1, "bucket must be >= 0"),
    (48, "<i", -2, "maxn must be >= 0"),
    (DICT, "<i", 4, "does not add up"),
    (DICT, "<i", 2**31 - 1, "does not add up"),
    (DICT + 4, "<i", 2**31 - 2, "does not add up"),
    (40, "<i", 2**31 - 1, "input matrix has"),
])
def test_lying_header_fields_name_the_offset(tmp_path, at, fmt, value, needle):
    raw = open(_model(tmp_path), "rb").read()
    path = _write(tmp_path, _patch(raw, at, fmt, value))
    with pytest.raises(ValueError, match=needle) as ei:
        load_vectors(path, format="fasttext-bin")
    assert "bad.bin" in str(ei.value)
    assert at == 0 or "byte offset" in str(ei.value)  # a wrong magic is told before the reader runs


def test_huge_counts_are_refused_before_any_allocation(tmp_path):
    raw = open(_model(tmp_path), "rb").read()
    raw = _patch(_patch(raw, DICT, "<i", 2**31 - 1), DICT + 4, "<i", 2**31 - 1)
    raw = _patch(raw, DICT + 8, "<i", -2**31 + 1)  # sizes that "add up" only by overflow
    with pytest.raises(ValueError, match="does not add up"):
        load_vectors(_write(tmp_path, raw))
    m = bytearray(open(_model(tmp_path), "rb").read())
    start = m.index(b"caf\xc3\xa9\0") + 6 + 9  # after the last entry: quant flag, then the matrix header
    m[start + 1:start + 9] = struct.pack("<q", 2**62)
    with pytest.raises(ValueError, match="rows, expected"):
        load_vectors(_write(tmp_path, bytes(m)))


def test_dictionary_entries_checked(tmp_path):
    raw = open(_model(tmp_path), "rb").read()
    first = raw.index(b"the\0") + 4
    cases = [(_patch(raw, first + 8, "<b", 2), "has type 2"),
             (_patch(raw, first + 8, "<b", 1), "is a label, but the dictionary's first 3"),
             (_patch(raw, first, "<q", -4), "negative count"),
             (raw[:first - 4] + b"\0" + raw[first:], "has an empty word"),
             (raw.replace(b"the\0", b"the"), "byte offset")]
    for data, needle in cases:
        with pytest.raises(ValueError, match=needle) as ei:
            load_vectors(_write(tmp_path, data))
        assert "byte offset" in str(ei.value)


def test_quantised_ftz_and_pruned_dictionary(tmp_path):
    raw = open(_model(tmp_path), "rb").read()
    flag = raw.index(b"caf\xc3\xa9\0") + 6 + 9
    assert raw[flag] == 0
    with pytest.raises(ValueError, match="quantised fastText model \\(.ftz"):
        load_vectors(_write(tmp_path, raw[:flag] + b"\1" + raw[flag + 1:]))
    with pytest.raises(ValueError, match="must be a bool"):
        load_vectors(_write(tmp_path, raw[:flag] + b"\7" + raw[flag + 1:]))
    pruned = _patch(raw, DICT + 20, "<q", 0)
    with pytest.raises(ValueError, match="pruned"):
        load_vectors(_write(tmp_path, pruned))


def test_non_finite_values_and_trailing_bytes(tmp_path):
    raw = bytearray(open(_model(tmp_path), "rb").read())
    flag = raw.index(b"caf\xc3\xa9\0") + 6 + 9
    values = flag + 17
    for k, name in ((0, "word 'the'"), (3 * 3 + 4, "n-gram bucket 1")):
        bad = bytearray(raw)
        bad[values + 4 * k:values + 4 * k + 4] = struct.pack("<f", float("nan"))
        with pytest.raises(ValueError, match=f"input matrix row .*{name}.*NaN"):
            load_vectors(_write(tmp_path, bytes(bad)))
    bad = bytearray(raw)
    bad[-4:] = struct.pack("<f", float("inf"))
    with pytest.raises(ValueError, match="output matrix row 2 .*infinity"):
        load_vectors(_write(tmp_path, bytes(bad)), output_matrix=True)
    with pytest.raises(ValueError, match="trailing bytes"):
        load_vectors(_write(tmp_path, bytes(raw) + b"\0"))


def test_other_formats_asked_for(tmp_path):
    path = _model(tmp_path)
    with pytest.raises(ValueError, match="is a fastText binary model, not glove text; use format='fasttext-bin'"):
        load_vectors(path, format="glove")
    txt = _write(tmp_path, b"a 1 2\n", "v.txt")
    with pytest.raises(ValueError, match="is not a fastText binary model"):
        load_vectors(txt, format="fasttext-bin")
    v = load_vectors(path, format="fasttext-bin")
    assert v.words == ["the", "a", "café"]


def test_gzip_model_and_file_changed_names(tmp_path):
    import gzip

    path = _model(tmp_path)
    gz = str(tmp_path / "m.bin.gz")
    with open(path, "rb") as f, gzip.open(gz, "wb") as g:
        g.write(f.read())
    v = load_vectors(gz)
    assert v.report.gzip and torch.equal(v.matrix, load_vectors(path).matrix)
    raw = open(path, "rb").read()
    with gzip.open(gz, "wb") as g:
        g.write(raw[:-3])
    with pytest.raises(ValueError, match="m.bin.gz'.*byte offset"):
        load_vectors(gz)


def test_failed_save_keeps_the_previous_model(tmp_path, monkeypatch):
    path = _model(tmp_path)
    before = open(path, "rb").read()
    import embedfast.vectors.fasttext as ftmod

    def boom(f, m):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    v = load_vectors(path)
    monkeypatch.setattr(ftmod, "_write_rows", boom)
    with pytest.raises(OSError, match="No space"):
        v.save(path, format="fasttext-bin")
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["m.bin"]
    with pytest.raises(ValueError, match="NUL byte"):
        Vectors(["a\0b"], torch.zeros(1, 2)).save(str(tmp_path / "n.bin"), format="fasttext-bin")
    with pytest.raises(ValueError, match="occurs twice"):
        Vectors(["a", "a"], torch.zeros(2, 2)).save(str(tmp_path / "n.bin"), format="fasttext-bin")
    assert sorted(os.listdir(tmp_path)) == ["m.bin"]
