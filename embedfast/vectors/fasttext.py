"""fastText's binary model format (``.bin``): reading it for ``load_vectors`` (the op
``torch.ops.embedfast.load_fasttext``, csrc/cpu/vectors_fasttext.cpp, which documents the layout) and writing it
for ``Vectors.save(format="fasttext-bin")`` (a file fastText's own ``fasttext.load_model`` reads).

A loaded model is a :class:`~embedfast.vectors.Vectors` whose ``matrix`` holds the word vectors as fastText's
``get_word_vector`` gives them (own row and n-gram rows averaged, like the ``.vec`` file fastText writes and
gensim's ``wv.vectors``) and whose ``subwords`` (:class:`~embedfast.vectors.subwords.Subwords`) holds the raw
input rows, the n-gram buckets, minn/maxn, the counts, labels and args.
"""
from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from .._io import atomic_write, encode_word
from .._vocab import decode_words
from .formats import FASTTEXT_MAGIC
from .ops import FASTTEXT_HEADER, load_fasttext_raw
from .subwords import FASTTEXT_DEFAULT_ARGS, Subwords, compose_words

if TYPE_CHECKING:  # pragma: no cover
    from .io import LoadReport
    from .keyed import Vectors

__all__ = ["read_fasttext", "save_fasttext_bin"]

logger = logging.getLogger("embedfast.vectors")

_VERSION = 12
_ARG_NAMES = ("dim", "ws", "epoch", "min_count", "neg", "word_ngrams", "loss", "model", "bucket", "minn", "maxn",
              "lr_update_rate")
_MODEL_NAMES = {1: "cbow", 2: "skipgram", 3: "supervised"}
_LOSS_NAMES = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}
_ROWS_PER_WRITE = 1 << 16


def read_fasttext(parse_path: str, report: "LoadReport", *, limit: Optional[int],
                  threads: Optional[int], output: bool) -> Tuple[List[str], torch.Tensor, Subwords]:
    """Read a ``.bin`` with the op (its errors name ``parse_path``): the first ``limit`` words, their composed vectors ``[N, D]`` and the
    :class:`Subwords`; fills ``report`` (``report.model``: args and dictionary sizes)."""
    word_rows, ngrams, out_rows, wb, wo, counts, types, header = load_fasttext_raw(
        parse_path, limit=-1 if limit is None else limit, output=output, num_threads=threads or 0)
    h = dict(zip(FASTTEXT_HEADER, header.tolist()))
    t = float(np.array([h["sample_bits"]], np.int64).view(np.float64)[0])
    n = int(h["words_read"])
    all_words, report.non_utf8_words = decode_words(wb, wo)
    words, labels = all_words[:n], all_words[n:]
    args: Dict[str, Any] = {k: int(h[k]) for k in _ARG_NAMES if k not in ("dim", "bucket", "minn", "maxn")}
    args.update(t=t, version=int(h["version"]), ntokens=int(h["ntokens"]))
    sw = Subwords(ngrams=ngrams, word_rows=word_rows, minn=int(h["minn"]), maxn=int(h["maxn"]),
                  counts=counts[:n].clone(), labels=labels, label_counts=counts[n:].clone(),
                  label_base=int(h["nwords"]), args=args, output=out_rows if output else None)
    end = int(wo[n])
    matrix = compose_words(sw, wb[:end], wo[:n + 1])
    report.lines = int(h["nwords"]) + int(h["nlabels"])
    report.rows_parsed = n
    report.dim = int(h["dim"])
    report.header = (int(h["nwords"]), int(h["dim"]))
    report.model = {"model": _MODEL_NAMES.get(args["model"], args["model"]),
                    "loss": _LOSS_NAMES.get(args["loss"], args["loss"]), "version": args["version"],
                    "nwords": int(h["nwords"]), "nlabels": int(h["nlabels"]), "bucket": int(h["bucket"]),
                    "minn": sw.minn, "maxn": sw.maxn, "ntokens": args["ntokens"],
                    "output_rows": int(h["output_rows"]), "output_read": bool(output)}
    return words, matrix, sw


def _entry(word: str, count: int, kind: int) -> bytes:
    raw = encode_word(word)
    if b"\0" in raw:
        raise ValueError(f"Vectors.save: word {word!r} holds a NUL byte, which fastText's format cannot store")
    return raw + b"\0" + struct.pack("<qb", count, kind)


def _write_rows(f, m: torch.Tensor) -> None:
    m = m.detach().cpu()
    for start in range(0, m.shape[0], _ROWS_PER_WRITE):
        block = m[start:start + _ROWS_PER_WRITE].to(torch.float32).contiguous().numpy()
        f.write(memoryview(block.astype("<f4", copy=False)).cast("B"))


def save_fasttext_bin(v: "Vectors", path: str) -> None:
    """Write ``v`` as a fastText ``.bin`` (format version 12), atomically. With sub-words: the model's own
    input rows, buckets, counts, labels and args (``v.subwords``; ``v.matrix`` is their composition and is not
    written); without: ``v.matrix`` as the word rows of a model with no buckets (``maxn=0``). An output matrix
    that was not loaded is written as zeros (enough for word vectors, not to continue training)."""
    sw: Optional[Subwords] = v.subwords
    words = v.words
    if len(set(words)) != len(words):
        raise ValueError("Vectors.save: a word occurs twice; a fastText dictionary holds each word once")
    D = v.dim
    if sw is None:
        word_rows, ngrams = v.matrix, torch.empty(0, D)
        minn = maxn = 0
        counts = torch.ones(len(words), dtype=torch.int64)
        labels: List[str] = []
        label_counts = torch.empty(0, dtype=torch.int64)
        args = dict(FASTTEXT_DEFAULT_ARGS)
    else:
        word_rows, ngrams, minn, maxn, args = sw.word_rows, sw.ngrams, sw.minn, sw.maxn, dict(sw.args)
        counts = sw.counts if sw.counts is not None else torch.ones(len(words), dtype=torch.int64)
        labels = list(sw.labels)
        label_counts = sw.label_counts if sw.label_counts is not None else torch.ones(len(labels), dtype=torch.int64)
    nwords, nlabels, bucket = len(words), len(labels), int(ngrams.shape[0])
    a = dict(FASTTEXT_DEFAULT_ARGS, **args, dim=D, bucket=bucket, minn=minn, maxn=maxn)
    out_rows = nlabels if a["model"] == 3 else nwords
    output = sw.output if sw is not None and sw.output is not None and sw.output.shape == (out_rows, D) else None
    if sw is not None and sw.output is not None and output is None:
        logger.warning("Vectors.save: the output matrix %s does not fit %d rows x %d; zeros written instead",
                       tuple(sw.output.shape), out_rows, D)
    ntokens = int(a.get("ntokens") or int(counts.sum()) + int(label_counts.sum()))
    with atomic_write(path, "wb") as f:
        f.write(FASTTEXT_MAGIC + struct.pack("<i", _VERSION))
        f.write(struct.pack("<12i", *(int(a[k]) for k in _ARG_NAMES)) + struct.pack("<d", float(a["t"])))
        f.write(struct.pack("<iiiqq", nwords + nlabels, nwords, nlabels, ntokens, -1))
        f.write(b"".join(_entry(w, int(c), 0) for w, c in zip(words, counts.tolist())))
        f.write(b"".join(_entry(w, int(c), 1) for w, c in zip(labels, label_counts.tolist())))
        f.write(b"\0" + struct.pack("<qq", nwords + bucket, D))
        _write_rows(f, word_rows)
        _write_rows(f, ngrams)
        f.write(b"\0" + struct.pack("<qq", out_rows, D))
        if output is not None:
            _write_rows(f, output)
        else:
            zeros = np.zeros((min(out_rows, _ROWS_PER_WRITE), D), "<f4")
            for start in range(0, out_rows, _ROWS_PER_WRITE):
                f.write(memoryview(zeros[:min(_ROWS_PER_WRITE, out_rows - start)]).cast("B"))
