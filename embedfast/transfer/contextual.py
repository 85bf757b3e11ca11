"""Contextual word vectors (``contextual_vectors``): the mean, over a word type's occurrences in a corpus, of its
contextual vector (its word pieces pooled to the word; one layer, or the mean of several).

How it is fast: the corpus is read in chunks of sentences, each chunk encoded in one parallel tokenizer call,
sorted by length and cut into batches of about ``batch_tokens`` pieces, so almost no slot is padding; the
model runs under ``torch.inference_mode`` and stops after the deepest layer asked for (a hook on the layer
after it), so ``layers=3`` of a 6-layer model costs half; each batch's pieces are added into the per-type sums
with one ``index_add_``. Memory: one chunk of token ids, one batch of activations and the [types, D] sums,
whatever the corpus size; on the CPU the heap's free pages go back to the system after each batch (glibc's
``malloc_trim``; ``EMBEDFAST_TRIM=0`` turns it off), since batches of ever-changing shapes otherwise leave the
resident memory growing with the corpus through fragmentation.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .._vocab import read_vocab
from .checkpoint import PieceTokenizer, read_checkpoint
from .text import Corpus, sentences

__all__ = ["contextual_vectors", "load_model", "ContextualReport"]

POOLINGS = ("mean", "first", "last")


def _heap_trimmer():
    """glibc's ``malloc_trim`` (returns the free pages of the heaps to the system), or a no-op elsewhere. Batches
    of ever-changing shapes leave freed activation buffers scattered over the heaps; trimming after each batch
    keeps the resident memory at the working set instead of letting it grow with the corpus."""
    import ctypes
    import ctypes.util

    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


class _Enough(Exception):
    """Raised by the hook after the deepest layer needed: the rest of the model is not run."""


def load_model(model: Any, tokenizer: Any = None, *, device=None, dtype=None) -> Tuple[Any, PieceTokenizer]:
    """(model in eval mode on ``device``/``dtype``, ``PieceTokenizer``) from a local folder (``transformers``'
    ``AutoModel``, offline; the tokenizer read from its tokenizer.json) or a model object plus its tokenizer
    (a ``PieceTokenizer`` or a Hugging Face fast tokenizer)."""
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        ck = read_checkpoint(model)  # checks the folder first: weights and tokenizer.json
        try:
            import transformers
        except ImportError as exc:
            raise ImportError("contextual_vectors: running the model needs `transformers` "
                              "(pip install 'embedfast[hf]')") from exc
        tokenizer = tokenizer or ck.tokenizer
        model = transformers.AutoModel.from_pretrained(ck.path, local_files_only=True)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"contextual_vectors: model must be a model folder or a torch.nn.Module, got "
                        f"{type(model).__name__}")
    if tokenizer is None:
        raise ValueError("contextual_vectors: a tokenizer is required with a model object")
    if not isinstance(tokenizer, PieceTokenizer):
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise TypeError("contextual_vectors: tokenizer must be a PieceTokenizer or a Hugging Face fast "
                            f"tokenizer (with backend_tokenizer), got {type(tokenizer).__name__}")
        import tokenizers

        tokenizer = PieceTokenizer(tokenizers.Tokenizer.from_str(backend.to_str()))
    model = model.eval()
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model, tokenizer


def _layer_list(model: torch.nn.Module) -> Optional[torch.nn.ModuleList]:
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for _, m in model.named_modules():
        if isinstance(m, torch.nn.ModuleList) and len(m) > 0 and (n is None or len(m) == n):
            return m
    return None


def _layer_indices(layers: Union[int, Sequence[int]], n_layers: int) -> List[int]:
    """``layers`` as indices into hidden_states (0: the embedding output, 1..L: after each layer)."""
    items = [layers] if isinstance(layers, int) and not isinstance(layers, bool) else list(layers)
    if not items:
        raise ValueError("contextual_vectors: layers is empty")
    out = []
    for x in items:
        if isinstance(x, bool) or not isinstance(x, int):
            raise TypeError(f"contextual_vectors: layers must be ints, got {x!r}")
        y = x + n_layers + 1 if x < 0 else x
        if not 0 <= y <= n_layers:
            raise ValueError(f"contextual_vectors: layer {x} is outside the model's hidden states "
                             f"(0..{n_layers}, or -{n_layers + 1}..-1)")
        out.append(y)
    return sorted(set(out))


class _Runner:
    """One forward that returns the mean of the chosen hidden states, [B, T, D], stopping after the deepest."""

    def __init__(self, model: torch.nn.Module, layers: Union[int, Sequence[int]]):
        self.model = model
        self.blocks = _layer_list(model)
        n = len(self.blocks) if self.blocks is not None else int(model.config.num_hidden_layers)
        self.want = _layer_indices(layers, n)
        self.n = n
        self.captured: Dict[int, torch.Tensor] = {}
        self.early = self.blocks is not None and self.want[-1] < n

    def _pre_hook(self, index: int, stop: bool):
        def hook(module, args, kwargs):
            h = args[0] if args else kwargs.get("hidden_states")
            self.captured[index] = h
            if stop:
                raise _Enough
        return hook

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.captured = {}
        if self.early:
            handles = [self.blocks[i].register_forward_pre_hook(self._pre_hook(i, i == self.want[-1]),
                                                                with_kwargs=True) for i in self.want]
            try:
                self.model(input_ids=ids, attention_mask=mask)
            except _Enough:
                pass
            finally:
                for h in handles:
                    h.remove()
            states = [self.captured[i] for i in self.want]
        else:
            out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=len(self.want) > 1
                             or self.want[-1] != self.n)
            if len(self.want) == 1 and self.want[0] == self.n:
                states = [out.last_hidden_state]
            else:
                states = [out.hidden_states[i] for i in self.want]
        h = states[0] if len(states) == 1 else torch.stack(states, 0).mean(0)
        return h


class ContextualReport(dict):
    """Counts of a ``contextual_vectors`` run: sentences, words, pieces, padded_slots, words_truncated,
    words_skipped (not in ``vocab``), empty_sentences, seconds, pieces_per_s."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _chunks(it: Iterator[List[str]], n: int) -> Iterator[List[List[str]]]:
    buf: List[List[str]] = []
    for s in it:
        buf.append(s)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf


def _batches(lengths: np.ndarray, batch_tokens: int, waste: float = 0.1) -> Iterator[np.ndarray]:
    """Indices of the sentences, longest first, cut into batches of at most ``batch_tokens`` padded slots in
    which no sentence is shorter than ``1 - waste`` of the batch's longest (so at most ``waste`` of a batch's
    slots are padding)."""
    order = np.argsort(-lengths, kind="stable")
    i, n = 0, len(order)
    while i < n:
        longest = int(lengths[order[i]])
        cap = max(1, batch_tokens // max(longest, 1))
        floor = longest * (1.0 - waste)
        j = i + 1
        while j < n and j - i < cap and lengths[order[j]] >= floor:
            j += 1
        yield order[i:j]
        i = j


def contextual_vectors(model: Any, corpus: Corpus, *, vocab: Any = None, layers: Union[int, Sequence[int]] = -1,
                       subword_pooling: str = "mean", batch_tokens: int = 4096, max_length: int = 256,
                       device: Any = None, dtype: Optional[torch.dtype] = None, tokenizer: Any = None,
                       pretokenized: bool = True, chunk_sentences: int = 4096, progress: bool = True) -> Any:
    """Contextual word vectors of a corpus: for each word type, the mean over its occurrences of the word's
    contextual vector. Returns ``embedfast.Vectors`` with ``counts`` (int64 [N], occurrences) and ``report``
    (:class:`ContextualReport`).

    Args:
        model: a local model folder (``transformers``' AutoModel runs it; the tokenizer comes from its
            tokenizer.json) or a ``torch.nn.Module`` with ``tokenizer=``.
        corpus: a file (one sentence per line, gzip or plain) or an iterable of sentences (str or word lists).
        vocab: only these words (sequence or ``{word: id}``; the result has them in that order, words never
            seen get zero rows and count 0); default every word seen, in order of first occurrence.
        layers: hidden state(s): 0 is the embedding layer's output, 1..L after each layer, -1 the last; a list
            averages several. The model stops after the deepest one asked for.
        subword_pooling: a word's pieces to the word: ``"mean"``, ``"first"`` or ``"last"`` piece.
        batch_tokens: padded slots per batch (sentences sorted by length within each chunk).
        max_length: pieces per sentence, special tokens included; words cut by it are dropped and counted.
        device, dtype: where and in what precision the model runs (default: where it is).
        pretokenized: lines are words separated by whitespace (True) or raw text split by the tokenizer's own
            pre-tokenizer (False).
        chunk_sentences: sentences encoded and sorted together (bounds memory).
    """
    if subword_pooling not in POOLINGS:
        raise ValueError(f"contextual_vectors: subword_pooling must be one of {POOLINGS}, got {subword_pooling!r}")
    for name, val, low in (("batch_tokens", batch_tokens, 1), ("max_length", max_length, 3),
                           ("chunk_sentences", chunk_sentences, 1)):
        if isinstance(val, bool) or not isinstance(val, int) or val < low:
            raise ValueError(f"contextual_vectors: {name} must be an int >= {low}, got {val!r}")
    model, tok = load_model(model, tokenizer, device=device, dtype=dtype)
    runner = _Runner(model, layers)
    param = next(model.parameters())
    dev = param.device
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    fixed = vocab is not None
    words: List[str] = list(read_vocab(vocab, "contextual_vectors", allow_gaps=False)) if fixed else []
    index: Dict[str, int] = {w: i for i, w in enumerate(words) if w is not None}
    D = int(getattr(model.config, "hidden_size", 0)) or None
    sums: Optional[torch.Tensor] = None
    counts = np.zeros(max(len(words), 1024), dtype=np.int64)
    rep = ContextualReport(sentences=0, empty_sentences=0, words=0, pieces=0, padded_slots=0, words_truncated=0,
                           words_skipped=0, seconds=0.0, pieces_per_s=0.0)
    split = str.split if pretokenized else tok.pre_split
    trim_heap = dev.type == "cpu" and os.environ.get("EMBEDFAST_TRIM", "1") != "0"
    trim = _heap_trimmer()
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(unit="piece", unit_scale=True, desc="contextual vectors", mininterval=1.0)
    with torch.inference_mode():
        for chunk in _chunks(sentences(corpus, split, "contextual_vectors"), chunk_sentences):
            rep["sentences"] += len(chunk)
            keep = [s for s in chunk if s]
            rep["empty_sentences"] += len(chunk) - len(keep)
            if not keep:
                continue
            encoded = tok.encode_words(keep)
            lens = np.array([min(len(ids), max_length) for ids, _ in encoded], dtype=np.int64)
            for batch in _batches(lens, batch_tokens):
                T = int(lens[batch[0]])
                ids = np.full((len(batch), T), pad_id, dtype=np.int64)
                mask = np.zeros((len(batch), T), dtype=np.int64)
                pos, typ, wts, occ_types = [], [], [], []
                for r, si in enumerate(batch):
                    e_ids, e_words = encoded[si]
                    sent = keep[si]
                    n = int(lens[si])
                    cut = len(e_ids) > max_length
                    if cut:  # keep the last special token (e.g. [SEP]) at the end, as truncation does
                        row = list(e_ids[:max_length - 1]) + [e_ids[-1]]
                        wid = list(e_words[:max_length - 1]) + [-1]
                    else:
                        row, wid = e_ids, e_words
                    ids[r, :n] = row
                    mask[r, :n] = 1
                    wid = np.asarray(wid, dtype=np.int64)
                    last_kept = -1
                    if cut:  # a word whose pieces run past the cut is dropped
                        full = np.asarray(e_words, dtype=np.int64)
                        kept_max = int(wid.max()) if (wid >= 0).any() else -1
                        if kept_max >= 0 and (full == kept_max).sum() > (wid == kept_max).sum():
                            wid[wid == kept_max] = -1
                            kept_max -= 1
                        last_kept = kept_max
                        rep["words_truncated"] += len(sent) - (kept_max + 1)
                    nw = len(sent) if not cut else last_kept + 1
                    rep["words"] += nw
                    valid = np.nonzero(wid >= 0)[0]
                    if valid.size == 0:
                        continue
                    w_of = wid[valid]
                    # type of every word of the sentence (-1: skipped)
                    t_of_word = np.empty(nw, dtype=np.int64)
                    for j in range(nw):
                        t = index.get(sent[j])
                        if t is None:
                            if fixed:
                                t = -1
                                rep["words_skipped"] += 1
                            else:
                                t = len(words)
                                index[sent[j]] = t
                                words.append(sent[j])
                        t_of_word[j] = t
                    npieces = np.bincount(w_of, minlength=nw)
                    if subword_pooling == "mean":
                        sel = valid
                        w = 1.0 / npieces[w_of]
                    else:
                        first = np.r_[True, w_of[1:] != w_of[:-1]] if subword_pooling == "first" \
                            else np.r_[w_of[1:] != w_of[:-1], True]
                        sel = valid[first]
                        w = np.ones(sel.size)
                        w_of = w_of[first]
                    t = t_of_word[w_of]
                    ok = t >= 0
                    pos.append(r * T + sel[ok])
                    typ.append(t[ok])
                    wts.append(w[ok])
                    occ = t_of_word[(t_of_word >= 0) & (npieces > 0)]
                    occ_types.append(occ)
                rep["pieces"] += int(mask.sum())
                rep["padded_slots"] += int(mask.size)
                h = runner(torch.from_numpy(ids).to(dev), torch.from_numpy(mask).to(dev))
                Dh = h.shape[-1]
                if sums is None:
                    sums = torch.zeros(max(len(words), 1024), Dh, dtype=torch.float32, device=dev)
                if len(words) > sums.shape[0]:
                    grown = torch.zeros(max(len(words), 2 * sums.shape[0]), Dh, dtype=sums.dtype, device=dev)
                    grown[:sums.shape[0]] = sums
                    sums = grown
                if len(words) > counts.shape[0]:
                    counts = np.concatenate([counts, np.zeros(max(len(words), counts.shape[0]), np.int64)])
                if pos:
                    p = torch.from_numpy(np.concatenate(pos)).to(dev)
                    tt = torch.from_numpy(np.concatenate(typ)).to(dev)
                    ww = torch.from_numpy(np.concatenate(wts).astype(np.float32)).to(dev)
                    rows = h.reshape(-1, Dh).index_select(0, p).float()
                    sums.index_add_(0, tt, rows * ww[:, None])
                    oc = np.concatenate(occ_types)
                    counts[:len(words)] += np.bincount(oc, minlength=len(words))[:len(words)]
                del h
                if trim_heap:
                    trim()
                if bar is not None:
                    bar.update(int(mask.sum()))
    if bar is not None:
        bar.close()
    from ..vectors import Vectors

    n = len(words)
    if sums is None:
        sums = torch.zeros(n, D or 0)
    c = torch.from_numpy(counts[:n].copy())
    mat = sums[:n].cpu()
    mat = mat / c.clamp_min(1).to(mat.dtype)[:, None]
    rep["seconds"] = time.perf_counter() - t0
    rep["pieces_per_s"] = rep["pieces"] / rep["seconds"] if rep["seconds"] > 0 else 0.0
    out = Vectors([w if w is not None else "" for w in words], mat.contiguous())
    out.counts = c
    out.report = rep
    return out
