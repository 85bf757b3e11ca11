"""`embedfast map`: end to end on a small parallel text with a given alignment or dictionary, and every bad
input named with its file and line."""
import gzip

import pytest

from embedfast import load_vectors
from embedfast.cli import main
from embedfast.transfer import map_embeddings, write_pharaoh
from transfer_util import minilm  # noqa: F401

pytest.importorskip("transformers")

EN = ["the file could not be opened", "open the file", "save the file", "close the window", "open the window"]
ZH = ["文件 无法 打开", "打开 文件", "保存 文件", "关闭 窗口", "打开 窗口"]
LINKS = [[(1, 0), (4, 1), (5, 2)], [(0, 0), (2, 1)], [(0, 0), (2, 1)], [(0, 0), (2, 1)], [(0, 0), (2, 1)]]


@pytest.fixture
def texts(tmp_path):
    en, zh = tmp_path / "en.txt.gz", tmp_path / "zh.txt"
    with gzip.open(en, "wt", encoding="utf-8") as f:
        f.write("\n".join(EN) + "\n")
    zh.write_text("\n".join(ZH) + "\n", encoding="utf-8")
    al = tmp_path / "a.pharaoh"
    write_pharaoh(al, LINKS)
    return str(en), str(zh), str(al)


def test_map_with_alignment_file(texts, minilm, tmp_path, capsys):
    en, zh, al = texts
    out = tmp_path / "zh.vec"
    stop = tmp_path / "stop.txt"
    stop.write_text("无法\n", encoding="utf-8")
    assert main(["map", en, zh, "--model", minilm, "-o", str(out), "--alignment", al, "--stopwords", str(stop),
                 "--min-links", "2", "--strategy", "max", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "kept 3" in text and "1 stopwords" in text
    v = load_vectors(str(out))
    assert sorted(v.words) == ["打开", "文件", "窗口"] and v.dim == 384
    r = map_embeddings(en, zh, minilm, alignment=al, min_links=1, strategy="max", progress=False, layers=-1)
    assert set(r.vectors.words) == {"打开", "文件", "窗口", "保存", "关闭", "无法"}
    src = r.embedding.coverage.sources[0]
    assert src.found == 6
    from embedfast.transfer import contextual_vectors

    ctx = contextual_vectors(minilm, [s.split() for s in EN], progress=False)
    assert (r.vectors["文件"] - ctx["file"]).abs().max() < 1e-6  # every 文件 link goes to file


def test_map_with_dictionary_and_unlinked(texts, minilm, tmp_path):
    en, zh, _ = texts
    d = tmp_path / "d.txt"
    d.write_text("file 文件\nwindow 窗口\nopen 打开 3\nopened 打开 1\n", encoding="utf-8")
    r = map_embeddings(en, zh, minilm, dictionary=str(d), progress=False, keep_unlinked=True, oov="mean")
    assert r.report["kept"] == 6 and r.report["with_vector"] == 3 and r.report["oov"] == 3


def test_bad_inputs(texts, minilm, tmp_path, capsys):
    en, zh, al = texts
    out = str(tmp_path / "o.vec")
    short = tmp_path / "short.txt"
    short.write_text("\n".join(ZH[:3]) + "\n", encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n\n\n\n")
    nomodel = tmp_path / "nomodel"
    nomodel.mkdir()
    cases = [([en, str(short)], "short.txt has 3 lines but .*en.txt.gz has more: line 4 of"),
             ([en, str(empty)], "empty.txt has no words"),
             ([en, zh, "--model", str(nomodel)], "no tokenizer.json"),
             ([en, zh, "--alignment", str(tmp_path / "none.pharaoh")], "none.pharaoh"),
             ([en, str(tmp_path / "missing.txt")], "missing.txt")]
    for args, msg in cases:
        argv = ["map", *args] + ([] if "--model" in args else ["--model", minilm]) + ["-o", out, "--no-progress"]
        assert main(argv) != 0, args
        err = capsys.readouterr().err
        assert pytest.importorskip("re").search(msg, err), (msg, err)
    bad = tmp_path / "bad.pharaoh"
    bad.write_text("0-0\n0-0\n0-0\n0-0\n0-99\n")
    assert main(["map", en, zh, "--model", minilm, "-o", out, "--alignment", str(bad), "--no-progress"]) != 0
    assert "bad.pharaoh, line 5: link 0-99 is outside" in capsys.readouterr().err
    assert main(["map", en, zh, "--model", minilm, "-o", str(tmp_path), "--no-progress"]) != 0
    with pytest.raises(SystemExit):
        main(["map", en, zh, "--model", minilm, "-o", out, "--layers", "x"])
    with pytest.raises(ValueError, match="no target word has 9 or more links"):
        map_embeddings(en, zh, minilm, alignment=al, min_links=9, progress=False)
    with pytest.raises(ValueError, match="not both"):
        map_embeddings(en, zh, minilm, alignment=al, dictionary=al, progress=False)
