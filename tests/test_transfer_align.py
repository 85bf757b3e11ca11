"""Alignment: eflomal on a corpus with a known alignment, symmetrisation, Pharaoh files, dictionaries, link
counts and the carrying strategies; every bad input."""
import random

import pytest
import torch

from embedfast import MultiSourceEmbedding, Vectors
from embedfast.transfer import (count_links, eflomal_links, read_dictionary, read_pharaoh, symmetrize,
                                write_pharaoh)


def known_corpus(n=300, seed=0):
    """English-like words e0..e19, target words t0..t19 (e_k <-> t_perm[k]), each target sentence the
    translation of its source sentence in reverse order."""
    rng = random.Random(seed)
    perm = list(range(20))
    rng.shuffle(perm)
    src, tgt, links = [], [], []
    for _ in range(n):
        ks = rng.sample(range(20), rng.randint(3, 7))
        src.append([f"e{k}" for k in ks])
        tgt.append([f"t{perm[k]}" for k in reversed(ks)])
        links.append([(i, len(ks) - 1 - i) for i in range(len(ks))])
    return src, tgt, links, {f"t{perm[k]}": f"e{k}" for k in range(20)}


def test_eflomal_recovers_known_alignment():
    pytest.importorskip("eflomal")
    src, tgt, gold, truth = known_corpus()
    fwd, rev = eflomal_links(src, tgt)
    sym = symmetrize(fwd, rev)
    hits = sum(len(set(a) & set(b)) for a, b in zip(sym, gold))
    assert hits >= 0.9 * sum(len(g) for g in gold)
    table = count_links(src, tgt, sym).table(min_links=2)
    assert sum(table[t][0][0] == e for t, e in truth.items()) >= 19
    assert all(abs(sum(p for _, p in row) - 1) < 1e-9 for row in table.values())


def test_symmetrize_rules():
    fwd = [[(0, 0), (1, 1), (2, 1)]]
    rev = [[(0, 0), (1, 1), (1, 2), (3, 3)]]
    assert symmetrize(fwd, rev, "intersection") == [[(0, 0), (1, 1)]]
    assert symmetrize(fwd, rev, "union") == [[(0, 0), (1, 1), (1, 2), (2, 1), (3, 3)]]
    # grow-diag: (2,1) and (1,2) neighbour (1,1) and each has one unaligned word; final-and adds (3,3)
    assert symmetrize(fwd, rev) == [[(0, 0), (1, 1), (1, 2), (2, 1), (3, 3)]]
    # a union point whose two words are both aligned already is not grown into
    assert symmetrize([[(0, 0), (1, 1), (0, 1)]], [[(0, 0), (1, 1)]]) == [[(0, 0), (1, 1)]]
    with pytest.raises(ValueError, match="method must be one of"):
        symmetrize(fwd, rev, "grow")
    with pytest.raises(ValueError, match="1 forward lines but 2 reverse"):
        symmetrize(fwd, rev + rev)


def test_pharaoh_round_trip_and_errors(tmp_path):
    src, tgt, gold, _ = known_corpus(20)
    p = tmp_path / "a.pharaoh"
    write_pharaoh(p, gold)
    assert read_pharaoh(p, source=src, target=tgt) == gold
    bad = tmp_path / "bad.pharaoh"
    bad.write_text("0-0 1-1\n0-x\n")
    with pytest.raises(ValueError, match=r"bad.pharaoh, line 2: '0-x' is not a Pharaoh link"):
        read_pharaoh(bad)
    bad.write_text("0-0\n9-0\n")
    with pytest.raises(ValueError, match=r"line 2: link 9-0 is outside"):
        read_pharaoh(bad, source=[["a"], ["b"]], target=[["x"], ["y"]])
    with pytest.raises(ValueError, match="20 alignment lines but 21 sentence pairs"):
        read_pharaoh(p, source=src + src[:1], target=tgt + tgt[:1])


def test_counts_table_thresholds():
    src = [["the", "cat"], ["the", "dog"], ["a", "cat"]]
    tgt = [["猫"], ["狗"], ["猫"]]
    links = [[(0, 0), (1, 0)], [(1, 0)], [(1, 0)]]
    c = count_links(src, tgt, links)
    assert c.links("猫") == 3 and c.links("狗") == 1
    t = c.table(min_links=2)
    assert list(t) == ["猫"] and t["猫"] == [("cat", 2 / 3), ("the", 1 / 3)]
    assert c.table(min_links=1, source_stopwords={"the"})["猫"] == [("cat", 1.0)]
    assert c.table(min_links=1, min_prob=0.5)["猫"] == [("cat", 2 / 3)]
    assert "狗" not in c.table(stopwords={"狗"})
    assert count_links(src, tgt, [[(5, 0)], [], []]).links_out_of_range == 1
    with pytest.raises(ValueError, match="min_links must be an int >= 1"):
        c.table(min_links=0)
    with pytest.raises(ValueError, match="must be equal"):
        count_links(src, tgt, links[:2])


def test_dictionary_tables_and_strategies(tmp_path):
    d = tmp_path / "dict.txt"
    d.write_text("# en zh\ncat 猫\nkitty 猫 3\ndog 狗\n\n")
    t = read_dictionary(d)
    assert t == {"猫": [("kitty", 0.75), ("cat", 0.25)], "狗": [("dog", 1.0)]}
    assert read_dictionary(tmp_path / "dict.txt", reverse=True)["cat"] == [("猫", 1.0)]
    u = tmp_path / "uniform.txt"
    u.write_text("cat 猫\nkitty 猫\n")
    assert read_dictionary(u)["猫"] == [("cat", 0.5), ("kitty", 0.5)]
    g = torch.Generator().manual_seed(0)
    vec = Vectors(["cat", "kitty", "dog"], torch.randn(3, 5, generator=g))
    mix = MultiSourceEmbedding.from_alignment(["猫", "狗", "鱼"], vec, t).materialize().weight
    assert torch.allclose(mix[0], 0.75 * vec["kitty"] + 0.25 * vec["cat"]) and torch.equal(mix[2], torch.zeros(5))
    mx = MultiSourceEmbedding.from_alignment(["猫", "狗"], vec, t, strategy="max").materialize().weight
    assert torch.equal(mx[0], vec["kitty"]) and torch.equal(mx[1], vec["dog"])
    with pytest.raises(ValueError, match="strategy must be one of"):
        MultiSourceEmbedding.from_alignment(["猫"], vec, t, strategy="best")
    for text, msg in [("cat\n", "line 1: expected 'source target"), ("a b c d\n", "4 fields"),
                      ("a b x\n", "weight 'x' is not a number"), ("a b -1\n", "must be finite and >= 0"),
                      ("a b nan\n", "must be finite"), ("# only\n", "has no entries")]:
        d.write_text(text)
        with pytest.raises(ValueError, match=msg):
            read_dictionary(d)


def test_eflomal_bad_input():
    pytest.importorskip("eflomal")
    with pytest.raises(ValueError, match="2 source sentences but 1 target"):
        eflomal_links([["a"], ["b"]], [["x"]])
    with pytest.raises(ValueError, match="no sentence pairs"):
        eflomal_links([], [])


def test_parallel_text_and_segmentation(tmp_path):
    from embedfast.transfer.text import read_parallel, segmenter

    en, zh = tmp_path / "en.txt", tmp_path / "zh.txt"
    en.write_text("open the file\n\nsave it\n", encoding="utf-8")
    zh.write_text("打开文件\n空\n\n", encoding="utf-8")
    pytest.importorskip("jieba")
    src, tgt, stats = read_parallel(en, zh, target_split=segmenter("jieba"))
    assert src[0] == ["open", "the", "file"] and "".join(tgt[0]) == "打开文件" and len(tgt[0]) >= 2
    assert stats == {"pairs": 3, "empty_pairs": 2}
    with pytest.raises(ValueError, match="segment must be 'jieba' or 'none'"):
        segmenter("icu")
    zh.write_text("打开 文件\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"zh.txt has 1 lines but .*en.txt has more: line 2 of .*en.txt"):
        read_parallel(en, zh)
