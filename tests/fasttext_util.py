"""Helpers of the fastText tests (tests/test_vectors_fasttext.py, tests/faults/test_files_fasttext.py): tiny
models trained with the real ``fasttext`` package on the embedded corpus, and a plain reference of fastText's
sub-word rule written from its description (fastText's src/dictionary.cc), to check the C++ one against."""
from __future__ import annotations

import gzip
import sys
import subprocess
import json
import os
import tempfile
from typing import Dict, List, Tuple

import embedfast

_CACHE: Dict[Tuple, str] = {}
_DIR = None


def _dir() -> str:
    global _DIR
    if _DIR is None:
        _DIR = tempfile.mkdtemp(prefix="embedfast-fasttext-tests-")
    return _DIR


def corpus_file(tokens: int = 150_000) -> str:
    """The first ``tokens`` tokens of the embedded corpus as a plain text file."""
    path = os.path.join(_dir(), f"corpus{tokens}.txt")
    if not os.path.exists(path):
        lines, n = [], 0
        with gzip.open(embedfast.data.default_corpus_path(), "rt", encoding="utf-8") as f:
            for line in f:
                lines.append(line)
                n += len(line.split())
                if n >= tokens:
                    break
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(lines)
    return path


def trained_model(**kw) -> str:
    """Path of a ``.bin`` that fastText trained (cached per process): skip-gram, dim 10, 1 epoch by default."""
    import fasttext

    args = dict(model="skipgram", dim=10, epoch=1, minCount=3, minn=3, maxn=6, bucket=20_000, thread=1, verbose=0)
    args.update(kw)
    key = tuple(sorted(args.items()))
    if key not in _CACHE:
        path = os.path.join(_dir(), f"model{len(_CACHE)}.bin")
        data = supervised_file() if args.get("model") == "supervised" else corpus_file()
        # trained in a fresh interpreter: fastText's training depends on process-wide state that other tests'
        # imports change (after `import jieba`, for one, its 1-epoch skip-gram here ends in "Encountered NaN")
        code = ("import json, sys, fasttext\n"
                "args, data, path = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]\n"
                "if args.get('model') == 'supervised':\n"
                "    args.pop('model'); m = fasttext.train_supervised(input=data, **args)\n"
                "else:\n"
                "    m = fasttext.train_unsupervised(input=data, **args)\n"
                "m.save_model(path)\n")
        subprocess.run([sys.executable, "-c", code, json.dumps(args), data, path], check=True, timeout=600)
        _CACHE[key] = path
    return _CACHE[key]


def supervised_file() -> str:
    """A small labelled text (labels from the first word's length) for a supervised model."""
    path = os.path.join(_dir(), "labelled.txt")
    if not os.path.exists(path):
        with open(corpus_file(), encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
            for i, line in zip(range(600), f):
                toks = line.split()
                if toks:
                    out.write(f"__label__{'long' if len(toks[0]) > 5 else 'short'} {' '.join(toks)}\n")
    return path


def ref_hash(b: bytes) -> int:
    """fastText's FNV-1a variant: every byte sign-extended to 32 bits before the xor."""
    h = 2166136261
    for c in b:
        h ^= (c - 256 if c >= 128 else c) & 0xFFFFFFFF
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def ref_buckets(word: bytes, minn: int, maxn: int, bucket: int) -> List[int]:
    """The n-gram buckets of ``word`` (bytes), in fastText's order, from the rule's description."""
    if word == b"</s>" or bucket == 0:
        return []
    w = b"<" + word + b">"
    out = []
    for i in range(len(w)):
        if w[i] & 0xC0 == 0x80:
            continue
        j, n = i, 1
        while j < len(w) and n <= maxn:
            j += 1
            while j < len(w) and w[j] & 0xC0 == 0x80:
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == len(w))):
                out.append(ref_hash(w[i:j]) % bucket)
            n += 1
    return out
