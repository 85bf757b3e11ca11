"""The whole transfer (``map_embeddings``, ``embedfast map``): a target language's embedding matrix from an
English model and a line-aligned parallel text.

1. the model folder and the output are checked before any long work;
2. both sides are read (the target optionally segmented with jieba); mismatched line counts or an empty
   side are errors naming the file and line;
3. the source side is encoded once (``contextual_vectors``: length-sorted batches, early stop at the deepest
   layer asked for), optionally mixed with the model's static input embeddings (mean of word pieces);
4. words are aligned (eflomal both ways + symmetrisation, or a Pharaoh file, or a bilingual dictionary) and
   the links counted into p(source word | target word);
5. each target word with enough links gets the most probable source word's vector (``max``) or the
   probability-weighted mix (``mix``) through ``MultiSourceEmbedding.from_alignment``; a coverage report says
   what was kept, dropped and why.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from .._io import check_output_path
from .._vocab import check_oov, unit_rows
from .align import count_links, eflomal_links, read_dictionary, read_pharaoh, symmetrize
from .checkpoint import read_checkpoint
from .contextual import contextual_vectors
from .text import read_lines, read_parallel, segmenter

__all__ = ["map_embeddings", "MapResult", "DEFAULT_LAYERS", "DEFAULT_STATIC_WEIGHT", "read_stopwords"]

PathLike = Union[str, "os.PathLike[str]"]
#: The hidden state used by default: ``None`` means the one two thirds of the way up the model (layer 4 of 6),
#: the best of the layers and layer means measured on a real synonym list (benchmarks/RESULTS.md, issue 12),
#: and a third cheaper than the last layer since the model stops there.
DEFAULT_LAYERS = None
#: Weight of the static input embeddings in the source vectors (0: contextual only).
DEFAULT_STATIC_WEIGHT = 0.0


@dataclass
class MapResult:
    """``vectors`` (target words, ``embedfast.Vectors``), ``embedding`` (the ``MultiSourceEmbedding``),
    ``report`` (counts and seconds per step)."""

    vectors: Any
    embedding: Any
    report: Dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        r = self.report
        lines = [f"target words: {r['target_types']} types in the target text; kept {r['kept']} "
                 f"({r['with_vector']} with a vector, {r['oov']} OOV rows by policy {r['oov_policy']!r})",
                 f"  dropped: {r['stopwords_dropped']} stopwords, {r['below_min_links']} with fewer than "
                 f"{r['min_links']} links",
                 f"source: {r['source_types']} word types encoded, {r['pieces']} word pieces in "
                 f"{r['seconds_encode']:.1f} s ({r['pieces_per_s']:.0f} pieces/s)",
                 f"pairs: {r['pairs']} ({r['empty_pairs']} with an empty side); links: {r['links']}",
                 f"seconds: encode {r['seconds_encode']:.1f}, align {r['seconds_align']:.1f}, "
                 f"total {r['seconds_total']:.1f}"]
        return "\n".join(lines)


def read_stopwords(path: PathLike) -> set:
    """Stopwords: one or more words per line, ``#`` comments skipped."""
    out = set()
    for line in read_lines(path, "stopwords"):
        if not line.lstrip().startswith("#"):
            out.update(line.split())
    return out


def source_vectors(model: Any, sentences: List[List[str]], *, layers, static_weight: float, batch_tokens: int,
                   device, dtype, progress: bool, subword_pooling: str = "mean") -> Any:
    """The source words' vectors: contextual (mean over occurrences), mixed with the static input embedding
    (mean of word pieces) as ``(1 - a) unit(contextual) + a unit(static)`` when ``static_weight`` a > 0."""
    ctx = contextual_vectors(model, sentences, layers=layers, batch_tokens=batch_tokens, device=device,
                             dtype=dtype, progress=progress, subword_pooling=subword_pooling)
    if static_weight <= 0:
        return ctx
    from ..fusion import MultiSourceEmbedding
    from ..vectors import Vectors

    st = MultiSourceEmbedding.from_huggingface(ctx.words, model, oov="zeros").materialize().weight.float()
    a = float(static_weight)
    mixed = (1 - a) * unit_rows(ctx.matrix.float()) + a * unit_rows(st)
    out = Vectors(ctx.words, mixed)
    out.counts, out.report = ctx.counts, ctx.report
    return out


def default_layer(config: Dict[str, Any]) -> int:
    """Index of the hidden state two thirds of the way up a model of ``config['num_hidden_layers']`` layers."""
    n = config.get("num_hidden_layers")
    return max(1, round(2 * int(n) / 3)) if isinstance(n, int) and n > 0 else -1


def map_embeddings(source_text: PathLike, target_text: PathLike, model: PathLike, *, out: Optional[PathLike] = None,
                   format: str = "glove", strategy: str = "mix",
                   layers: Union[int, Sequence[int], None] = DEFAULT_LAYERS,
                   static_weight: float = DEFAULT_STATIC_WEIGHT, alignment: Optional[PathLike] = None,
                   dictionary: Optional[PathLike] = None, aligner: str = "eflomal",
                   symmetrization: str = "grow-diag-final-and", stopwords: Union[PathLike, Sequence[str], None] = None,
                   segment: Optional[str] = None, min_links: int = 2, min_prob: float = 0.0,
                   keep_unlinked: bool = False, oov: str = "zeros", batch_tokens: int = 4096, device: Any = None,
                   dtype: Optional[torch.dtype] = None, progress: bool = True) -> MapResult:
    """Build the target side's embedding matrix; see the module notes. ``out``: also saved there (``format``
    as ``Vectors.save``), checked before any work. ``alignment``: a Pharaoh file instead of running eflomal;
    ``dictionary``: a bilingual dictionary (``source target [weight]`` lines) instead of any alignment.
    ``layers``: as ``contextual_vectors``; default the hidden state two thirds of the way up the model.
    ``static_weight``: share of the model's static input embeddings in the source vectors (default 0: it lowered
    the measured quality). ``keep_unlinked``: target words below ``min_links`` stay in the vocabulary as OOV rows (``oov``:
    ``zeros``, ``normal`` or ``mean``)."""
    t0 = time.perf_counter()
    if strategy not in ("mix", "max"):
        raise ValueError(f"map: strategy must be 'mix' or 'max', got {strategy!r}")
    if aligner != "eflomal":
        raise ValueError(f"map: aligner must be 'eflomal', got {aligner!r}")
    if alignment is not None and dictionary is not None:
        raise ValueError("map: give an alignment file or a dictionary, not both")
    if not 0.0 <= float(static_weight) <= 1.0:
        raise ValueError(f"map: static_weight must be in [0, 1], got {static_weight!r}")
    check_oov(oov, 0.1, "map")
    inputs = [source_text, target_text] + [p for p in (alignment, dictionary) if p is not None]
    if out is not None:
        out = check_output_path(out, inputs=inputs, what="map: output")
    ck = read_checkpoint(model)  # the folder has weights and a tokenizer: fail now, not after reading the corpus
    if layers is None:
        layers = default_layer(ck.config)
    stop = read_stopwords(stopwords) if isinstance(stopwords, (str, os.PathLike)) else set(stopwords or ())
    src, tgt, stats = read_parallel(source_text, target_text, target_split=segmenter(segment))
    t1 = time.perf_counter()
    vecs = source_vectors(model, src, layers=layers, static_weight=static_weight, batch_tokens=batch_tokens,
                          device=device, dtype=dtype, progress=progress)
    t2 = time.perf_counter()
    n_links = 0
    if dictionary is not None:
        table = {t: row for t, row in read_dictionary(dictionary).items() if t not in stop}
        below = 0
        target_types = len({w for s in tgt for w in s})
    else:
        if alignment is not None:
            links = read_pharaoh(alignment, source=src, target=tgt)
        else:
            links = symmetrize(*eflomal_links(src, tgt), method=symmetrization)
        n_links = sum(len(x) for x in links)
        counts = count_links(src, tgt, links)
        table = counts.table(min_links=min_links, min_prob=min_prob, stopwords=stop)
        target_types = len({w for s in tgt for w in s})
        below = sum(1 for t in counts.pairs if t not in stop and t not in table)
    t3 = time.perf_counter()
    words = sorted(table, key=lambda w: (-len(table[w]), w))
    if keep_unlinked:
        seen = set(words)
        words += [w for s in tgt for w in s if w not in seen and w not in stop and not seen.add(w)]
    if not words:
        raise ValueError(f"map: no target word has {min_links} or more links (lower --min-links?)")
    from ..fusion import MultiSourceEmbedding
    from ..vectors import Vectors

    emb = MultiSourceEmbedding.from_alignment(words, vecs, table, strategy=strategy, oov=oov)
    matrix = emb.materialize().weight.detach().float()
    result = Vectors(words, matrix)
    with_vec = int(emb.coverage.sources[0].found)
    stop_dropped = len(stop & {w for s in tgt for w in s})
    rep = dict(stats, target_types=target_types, kept=len(words), with_vector=with_vec, oov=len(words) - with_vec,
               oov_policy=oov, stopwords_dropped=stop_dropped, below_min_links=below, min_links=min_links,
               source_types=len(vecs), pieces=vecs.report["pieces"], pieces_per_s=vecs.report["pieces_per_s"],
               links=n_links, seconds_read=t1 - t0, seconds_encode=t2 - t1, seconds_align=t3 - t2)
    if out is not None:
        result.save(out, format=format)
    rep["seconds_total"] = time.perf_counter() - t0
    return MapResult(result, emb, rep)
