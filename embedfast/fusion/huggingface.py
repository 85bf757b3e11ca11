"""A transformer's input embeddings as a fusion source (``huggingface_source``): each word the mean of its
sub-word tokens' rows, with special tokens mapped to their own row and unknown pieces dropped."""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional

from .._vocab import PAD_SPELLINGS, UNK_SPELLINGS
from .coverage import source_coverage
from .sources import Source, Vocab, _csr, _vocab_list

__all__ = ["huggingface_source"]


_USUAL_SPECIALS = frozenset(PAD_SPELLINGS + UNK_SPELLINGS + (
    "<s>", "</s>", "<bos>", "<eos>", "<BOS>", "<EOS>", "[CLS]", "[SEP]", "[MASK]", "<mask>", "<MASK>",
    "<|endoftext|>", "<cls>", "<sep>"))


def _tokenizer_specials(tokenizer: Any) -> tuple[set, Optional[int], Callable[[str], Optional[int]]]:
    """(special tokens of a Hugging Face-like tokenizer, its unknown-token id, token -> own id or None)."""
    specials = set()
    for attr in ("all_special_tokens", "additional_special_tokens"):
        try:
            specials.update(t for t in (getattr(tokenizer, attr, None) or ()) if isinstance(t, str))
        except TypeError:
            pass
    unk = getattr(tokenizer, "unk_token_id", None)
    unk = int(unk) if isinstance(unk, int) and not isinstance(unk, bool) else None
    unk_token = getattr(tokenizer, "unk_token", None)
    vocab = None
    if hasattr(tokenizer, "get_vocab"):
        try:
            vocab = tokenizer.get_vocab()
        except Exception:  # noqa: BLE001 - a tokenizer without a readable vocabulary: ask convert_tokens_to_ids
            vocab = None

    def own_id(token: str) -> Optional[int]:
        i = vocab.get(token) if isinstance(vocab, Mapping) else None
        if i is None and hasattr(tokenizer, "convert_tokens_to_ids"):
            try:
                i = tokenizer.convert_tokens_to_ids(token)
            except Exception:  # noqa: BLE001 - no id for it
                i = None
        if isinstance(i, list):
            i = i[0] if len(i) == 1 else None
        if i is None or isinstance(i, bool) or not isinstance(i, int):
            return None
        if unk is not None and i == unk and token != unk_token:
            return None  # the tokenizer maps unknown tokens to its unknown id: not the token's own row
        return int(i)

    return specials, unk, own_id


def _special_row(tokenizer: Any, word: str) -> Optional[int]:
    """The model's own padding (unknown) row for a padding (unknown) spelling of the task vocabulary."""
    attr = "pad_token_id" if word in PAD_SPELLINGS else "unk_token_id" if word in UNK_SPELLINGS else None
    i = getattr(tokenizer, attr, None) if attr else None
    return int(i) if isinstance(i, int) and not isinstance(i, bool) else None


def _from_folder(model: Any, tokenizer: Any) -> tuple:
    """(model, table, tokenizer) of a local folder or a ``Checkpoint``: read directly (model.safetensors +
    tokenizer.json, no ``transformers``); a folder with other weights only goes through ``transformers``."""
    from ..transfer.checkpoint import Checkpoint, read_checkpoint

    if isinstance(model, Checkpoint):
        return model, model.table, tokenizer or model.tokenizer
    path = os.fsdecode(os.fspath(model))
    if not os.path.exists(os.path.join(path, "model.safetensors")) and \
            not os.path.exists(os.path.join(path, "model.safetensors.index.json")) and os.path.isdir(path):
        try:
            import transformers
        except ImportError:
            read_checkpoint(path)  # raises the error naming what the folder lacks
            raise
        m = transformers.AutoModel.from_pretrained(path, local_files_only=True)
        if tokenizer is None:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        return m, m.get_input_embeddings().weight.detach(), tokenizer
    ck = read_checkpoint(path)
    return ck, ck.table, tokenizer or ck.tokenizer


def huggingface_source(vocab: Vocab, model: Any, tokenizer: Any = None, *, name: str = "huggingface",
                       lowercase_fallback: bool = False, unk_token_id: Optional[int] = None) -> Source:
    """A transformer's input embeddings as a source: each word is the mean of its sub-word tokens' rows.

    ``model`` is a model object with ``get_input_embeddings()``, a local model directory (its
    ``model.safetensors`` and ``tokenizer.json`` read directly by ``embedfast.transfer.read_checkpoint``,
    without ``transformers``; a folder with other weight files only is loaded offline with ``transformers``)
    or a ``Checkpoint``. ``tokenizer`` has ``encode(text, add_special_tokens=False)``
    (a Hugging Face tokenizer) or is a callable ``word -> list[int]``; by default the tokenizer of the directory.

    Special tokens and unknown pieces:

    - a vocabulary word that is a special token (one of the tokenizer's ``all_special_tokens``, or a usual
      spelling such as ``<pad>``, ``[UNK]``, ``<s>``, ``[CLS]``) is not tokenised: it gets the tokenizer's own
      row for that token when the tokenizer has one (``get_vocab()`` / ``convert_tokens_to_ids``, or a callable
      that returns a single id); a padding or unknown spelling the tokenizer lacks (``<pad>`` for BERT's
      ``[PAD]``) gets the tokenizer's ``pad_token_id`` / ``unk_token_id`` row; else it is missing (``<pad>`` is never the mean of ``<``, ``pad``, ``>``).
    - pieces that are the unknown token (``tokenizer.unk_token_id``, or ``unk_token_id=``) are dropped; a word
      with no known piece is missing.

    ``coverage`` counts found / found after lowercasing / missing words and, in ``coverage.extra``,
    ``specials`` (special words found with their own row) and ``unknown_pieces`` (pieces dropped).
    """
    table = None
    if isinstance(model, (str, os.PathLike)) or type(model).__name__ == "Checkpoint":
        model, table, tokenizer = _from_folder(model, tokenizer)
    if table is None and not hasattr(model, "get_input_embeddings"):
        raise TypeError(f"huggingface_source: model must have get_input_embeddings(), got {type(model).__name__}")
    if tokenizer is None:
        raise ValueError("huggingface_source: a tokenizer is required when a model object is given")
    if table is None:
        table = model.get_input_embeddings().weight.detach()
    if hasattr(tokenizer, "encode"):
        encode = lambda w: list(tokenizer.encode(w, add_special_tokens=False))  # noqa: E731
    elif callable(tokenizer):
        encode = lambda w: list(tokenizer(w))  # noqa: E731
    else:
        raise TypeError("huggingface_source: tokenizer must have encode() or be callable")
    if unk_token_id is not None and (isinstance(unk_token_id, bool) or not isinstance(unk_token_id, int)):
        raise TypeError(f"huggingface_source: unk_token_id must be an int or None, got {unk_token_id!r}")
    if hasattr(tokenizer, "encode"):
        tok_specials, unk, own_id = _tokenizer_specials(tokenizer)
    else:
        tok_specials, unk = set(), None

        def own_id(token: str) -> Optional[int]:
            ids = encode(token)
            return int(ids[0]) if len(ids) == 1 and ids[0] != unk else None
    if unk_token_id is not None:
        unk = unk_token_id
    specials = tok_specials | _USUAL_SPECIALS
    words = _vocab_list(vocab, "huggingface_source")
    bags: list[list[tuple[int, float]]] = []
    found = lower = special_found = unknown_pieces = 0
    V = table.shape[0]

    def known_pieces(w: str) -> list[int]:
        nonlocal unknown_pieces
        ids = []
        for t in encode(w):
            if isinstance(t, bool) or not isinstance(t, int):
                try:
                    t = int(t)
                except (TypeError, ValueError):
                    raise TypeError(f"huggingface_source: tokenizer gave {t!r} for {w!r}, not an int id") from None
            if not 0 <= t < V:
                raise ValueError(f"huggingface_source: tokenizer gave id {t} for {w!r}, outside the {V} "
                                 "rows of the input embeddings")
            if unk is not None and t == unk:
                unknown_pieces += 1
                continue
            ids.append(t)
        return ids

    for w in words:
        if w is None:
            bags.append([])
            continue
        if w in specials:
            i = own_id(w)
            if i is None:  # a task's <pad> / <unk> takes the model's padding / unknown row, whatever its spelling
                i = _special_row(tokenizer, w)
            if i is not None and not 0 <= i < V:
                raise ValueError(f"huggingface_source: the tokenizer's id {i} for special token {w!r} is outside "
                                 f"the {V} rows of the input embeddings")
            found += i is not None
            special_found += i is not None
            bags.append([(i, 1.0)] if i is not None else [])
            continue
        ids = known_pieces(w)
        if ids:
            found += 1
        elif lowercase_fallback and w.lower() != w:
            ids = known_pieces(w.lower())
            lower += bool(ids)
        bags.append([(t, 1.0 / len(ids)) for t in ids])
    off, rows_t, wts = _csr(bags)
    cov = source_coverage(name, len(words), found, lower, [w for w, b in zip(words, bags) if w is not None and not b],
                          specials=special_found, unknown_pieces=unknown_pieces)
    return Source(name, table, off, rows_t, wts, cov)
