"""Rebuild ``embedfast/data/wordnet_supersenses.tsv.gz``: the WordNet supersense of every line of the embedded
corpus ``wordnet_glosses.txt.gz``, from Debian's ``wordnet-base`` (WordNet 3.0).

Each line of the corpus is one part (a definition or a quoted usage example) of one synset's gloss. The labels
file has one line per corpus line, in the same order: ``lexname<TAB>synset<TAB>kind`` where ``lexname`` is the
synset's lexicographer file (its supersense, e.g. ``noun.animal``), ``synset`` its WordNet id (offset and part of
speech, e.g. ``00001740n``) and ``kind`` ``d`` (definition) or ``e`` (usage example).

Usage (no root needed)::

    apt-get download wordnet-base && dpkg-deb -x wordnet-base_*.deb wn
    python examples/build_supersenses.py wn/usr/share/wordnet

The corpus was made by the same walk: data.noun, data.verb, data.adj, data.adv in file order, each gloss split
at ``;``, lower-cased, only letters and inner apostrophes kept, parts of fewer than 3 words dropped. The script
checks that the walk gives the corpus's line count and (all but a few apostrophe spellings) its lines.
"""
from __future__ import annotations

import argparse
import gzip
import io
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from embedfast._io import atomic_write  # noqa: E402
from embedfast.data import DATA_DIR, default_corpus_path  # noqa: E402

#: WordNet 3.0's lexicographer files, by number (lexnames(5WN)).
LEXNAMES = ("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
            "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
            "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
            "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
            "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
            "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
            "adj.ppl").split()
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def walk(wordnet_dir: str):
    """Yield (lexname, synset id, kind, cleaned text) for every gloss part the corpus keeps."""
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(wordnet_dir, f"data.{pos}")
        with open(path, encoding="latin-1") as f:
            for lineno, line in enumerate(f, 1):
                if line.startswith("  "):  # the license header
                    continue
                head, sep, gloss = line.partition(" | ")
                fields = head.split()
                if not sep or len(fields) < 3:
                    raise ValueError(f"{path}:{lineno}: not a WordNet data line")
                lex = int(fields[1])
                for part in gloss.split(";"):
                    words = _WORD.findall(part.lower())
                    if len(words) >= 3:
                        kind = "e" if part.strip().startswith('"') else "d"
                        yield LEXNAMES[lex], fields[0] + fields[2][0], kind, " ".join(words)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wordnet_dir", help="folder with data.noun, data.verb, data.adj, data.adv")
    ap.add_argument("-o", "--out", default=os.path.join(DATA_DIR, "wordnet_supersenses.tsv.gz"))
    a = ap.parse_args(argv)
    with gzip.open(default_corpus_path(), "rt", encoding="utf-8") as f:
        corpus = f.read().splitlines()
    rows = list(walk(a.wordnet_dir))
    if len(rows) != len(corpus):
        raise SystemExit(f"the walk gives {len(rows)} parts, the corpus has {len(corpus)} lines")
    differ = sum(r[3] != c for r, c in zip(rows, corpus))
    if differ > 0.001 * len(corpus):
        raise SystemExit(f"{differ} lines differ from the corpus: not the same WordNet")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
        g.write("".join(f"{lex}\t{syn}\t{kind}\n" for lex, syn, kind, _ in rows).encode())
    with atomic_write(a.out, "wb") as f:
        f.write(buf.getvalue())
    print(f"{a.out}: {len(rows)} lines ({differ} differ from the corpus in spelling only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
