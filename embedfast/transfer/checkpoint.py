"""A local transformer checkpoint read without ``transformers``: the input embedding from ``model.safetensors``
(mapped from disk by the ``safetensors`` package: no copy, the file's own dtype) and the tokenizer from
``tokenizer.json`` (the ``tokenizers`` package: WordPiece ``##``, byte-level BPE ``Ġ``, SentencePiece/Unigram
``▁`` alike).

- :func:`read_checkpoint` -> :class:`Checkpoint` (``.table``, ``.tokenizer``, ``.config``, ``.path``);
- :class:`PieceTokenizer`: the few calls embedfast needs (``encode(word, add_special_tokens=False)``,
  ``get_vocab``, ``unk_token_id``, ``pad_token_id``, ``all_special_tokens``, ``encode_words``), the same
  names as a Hugging Face tokenizer so ``embedfast.fusion.huggingface_source`` takes either;
- :func:`token_vectors`: the model's token table as :class:`embedfast.Vectors` (one word per token id).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .._io import check_input_file
from .._vocab import PAD_SPELLINGS, UNK_SPELLINGS

__all__ = ["Checkpoint", "PieceTokenizer", "read_checkpoint", "token_vectors", "EMBEDDING_KEYS"]

PathLike = Union[str, "os.PathLike[str]"]

#: Names (suffixes) of the input-embedding tensor in the usual architectures, tried in this order: BERT-likes,
#: Llama/OPT-likes, GPT-2, Llama (original), T5/BART, XLNet.
EMBEDDING_KEYS = ("word_embeddings.weight", "embed_tokens.weight", "wte.weight", "tok_embeddings.weight",
                  "shared.weight", "word_embedding.weight")


def _need(module: str, what: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs the `{module}` package: pip install {module} "
                          "(or pip install 'embedfast[transfer]')") from exc


class PieceTokenizer:
    """A ``tokenizers.Tokenizer`` (from ``tokenizer.json``) with padding and truncation switched off, and the
    Hugging Face tokenizer names that embedfast uses.

    ``encode(text, add_special_tokens=False)`` gives the ids as ``transformers``' fast tokenizer does;
    ``encode_words(sentences)`` encodes pre-split sentences (lists of words) with the model's special tokens,
    returning per sentence ``(ids, word index of each id or -1)``.
    """

    def __init__(self, tokenizer: Any, path: str = "<tokenizer>"):
        self._tok = tokenizer
        self.path = path
        self._tok.no_padding()
        self._tok.no_truncation()
        self._vocab: Dict[str, int] = dict(tokenizer.get_vocab(with_added_tokens=True))
        model = json.loads(tokenizer.to_str()).get("model") or {}
        self.kind = str(model.get("type", type(tokenizer.model).__name__))
        unk = model.get("unk_token")
        if unk is None and isinstance(model.get("unk_id"), int):  # Unigram keeps the unknown token's id
            unk = tokenizer.id_to_token(model["unk_id"])
        if unk is None:
            unk = next((s for s in UNK_SPELLINGS if s in self._vocab), None)
        self.unk_token: Optional[str] = unk
        self.unk_token_id: Optional[int] = self._vocab.get(unk) if unk is not None else None
        added = tokenizer.get_added_tokens_decoder() if hasattr(tokenizer, "get_added_tokens_decoder") else {}
        self.all_special_tokens: List[str] = [t.content for _, t in sorted(added.items()) if t.special]
        if unk is not None and unk not in self.all_special_tokens:
            self.all_special_tokens.append(unk)
        self.pad_token = next((s for s in PAD_SPELLINGS if s in self._vocab), None)
        self.pad_token_id: Optional[int] = self._vocab.get(self.pad_token) if self.pad_token else None

    @property
    def vocab_size(self) -> int:
        """Number of token ids (with added tokens)."""
        return len(self._vocab)

    def get_vocab(self) -> Dict[str, int]:
        """token -> id (added tokens included)."""
        return dict(self._vocab)

    def convert_tokens_to_ids(self, token: str) -> Optional[int]:
        """The token's own id, or ``None`` when the vocabulary lacks it."""
        return self._vocab.get(token)

    def id_to_token(self, i: int) -> Optional[str]:
        return self._tok.id_to_token(int(i))

    def encode(self, text: str, add_special_tokens: bool = False) -> List[int]:
        """Token ids of ``text`` (as ``transformers``' ``tokenizer.encode``)."""
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def tokenize(self, text: str) -> List[str]:
        """Token strings of ``text`` (no special tokens)."""
        return list(self._tok.encode(text, add_special_tokens=False).tokens)

    def pre_split(self, text: str) -> List[str]:
        """The words of raw text as the tokenizer's own normaliser and pre-tokeniser split it."""
        pre = self._tok.pre_tokenizer
        if pre is None:
            return text.split()
        norm = self._tok.normalizer
        text = norm.normalize_str(text) if norm is not None else text
        return [w for w, _ in pre.pre_tokenize_str(text)]

    def encode_words(self, sentences: Sequence[Sequence[str]], *, add_special_tokens: bool = True
                     ) -> List[Tuple[List[int], List[int]]]:
        """Encode pre-split sentences in one parallel call: per sentence ``(ids, word index per id, -1 for
        special tokens)``."""
        encs = self._tok.encode_batch([list(s) for s in sentences], is_pretokenized=True,
                                      add_special_tokens=add_special_tokens)
        return [(e.ids, [-1 if w is None else w for w in e.word_ids]) for e in encs]

    def __repr__(self) -> str:
        return f"PieceTokenizer({self.kind}, {self.vocab_size} tokens, {self.path})"


@dataclass
class Checkpoint:
    """A local checkpoint: ``table`` [V, D] (mapped from ``model.safetensors``, read-only: clone it before
    writing), ``tokenizer`` (:class:`PieceTokenizer`), ``config`` (config.json, ``{}`` when absent), ``path``
    (the folder) and ``key`` (the tensor's name in the file)."""

    path: str
    table: torch.Tensor
    tokenizer: PieceTokenizer
    key: str
    config: Dict[str, Any] = field(default_factory=dict)

    def get_input_embeddings(self) -> torch.nn.Embedding:
        """The table as a frozen ``nn.Embedding`` sharing its memory (the name ``transformers`` models use)."""
        return torch.nn.Embedding.from_pretrained(self.table, freeze=True)

    def to_vectors(self) -> Any:
        """The token table as ``Vectors`` (see :func:`token_vectors`)."""
        return token_vectors(self)


def _embedding_file(folder: str) -> Tuple[str, Optional[Dict[str, str]]]:
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return check_input_file(single, "read_checkpoint: weights"), None
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        try:
            with open(check_input_file(index, "read_checkpoint: weights index"), encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"read_checkpoint: {index} is not a safetensors index (no 'weight_map'): {exc}") from None
        return index, weight_map
    others = [n for n in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack") if os.path.exists(os.path.join(folder, n))]
    hint = (f" (it has {', '.join(others)}: re-save the model with safe_serialization=True, or pass the "
            "transformers model object)") if others else ""
    raise FileNotFoundError(f"read_checkpoint: {folder} has no model.safetensors{hint}")


def _find_key(keys: Sequence[str], rows_at_least: int, shape_of, where: str) -> str:
    for suffix in EMBEDDING_KEYS:
        hits = sorted((k for k in keys if k == suffix or k.endswith("." + suffix)), key=len)
        if hits:
            return hits[0]
    cands = [k for k in keys if len(shape_of(k)) == 2 and shape_of(k)[0] >= rows_at_least]
    if len(cands) == 1:
        return cands[0]
    raise ValueError(f"read_checkpoint: no input-embedding tensor in {where} (looked for names ending in "
                     f"{', '.join(EMBEDDING_KEYS)}); pass key= with one of its {len(keys)} tensor names")


def read_checkpoint(path: PathLike, *, key: Optional[str] = None) -> Checkpoint:
    """Read a local model folder: the input embedding of ``model.safetensors`` (or a sharded
    ``model.safetensors.index.json``) and ``tokenizer.json``. ``transformers`` is not needed.

    The table is the tensor named ``key``, by default the first tensor whose name ends in one of
    :data:`EMBEDDING_KEYS`; it is mapped from the file (no copy, the file's dtype). Errors name the folder and
    what it lacks (a folder with only ``pytorch_model.bin`` is told so), a table with fewer rows than the
    tokenizer has ids, and a file that is not safetensors.
    """
    folder = os.fsdecode(os.fspath(path))
    if not os.path.isdir(folder):
        raise (NotADirectoryError if os.path.exists(folder) else FileNotFoundError)(
            f"read_checkpoint: {folder} is not a model folder (expected a directory with model.safetensors and "
            "tokenizer.json)")
    tok_path = os.path.join(folder, "tokenizer.json")
    if not os.path.exists(tok_path):
        vocab_hint = [n for n in ("vocab.txt", "sentencepiece.bpe.model", "spiece.model", "vocab.json")
                      if os.path.exists(os.path.join(folder, n))]
        hint = (f" (it has {', '.join(vocab_hint)}: save a fast tokenizer with tokenizer.save_pretrained(), which "
                "writes tokenizer.json)") if vocab_hint else ""
        raise FileNotFoundError(f"read_checkpoint: {folder} has no tokenizer.json{hint}")
    weights, weight_map = _embedding_file(folder)
    tokenizers = _need("tokenizers", "read_checkpoint")
    safetensors = _need("safetensors", "read_checkpoint")
    try:
        tok = PieceTokenizer(tokenizers.Tokenizer.from_file(check_input_file(tok_path, "read_checkpoint")), tok_path)
    except Exception as exc:  # noqa: BLE001 - the tokenizers package raises plain Exception on bad files
        raise ValueError(f"read_checkpoint: {tok_path} is not a readable tokenizer.json: {exc}") from None
    from safetensors import safe_open  # noqa: F401 - after the check above

    def open_file(p: str) -> Any:
        try:
            return safetensors.safe_open(p, framework="pt")
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise ValueError(f"read_checkpoint: {p} is not a readable safetensors file: {exc}") from None

    if weight_map is None:
        f = open_file(weights)
        keys = list(f.keys())
        name = key or _find_key(keys, tok.vocab_size, lambda k: f.get_slice(k).get_shape(), weights)
        if name not in keys:
            raise KeyError(f"read_checkpoint: {weights} has no tensor {name!r}")
    else:
        name = key or _find_key(list(weight_map), tok.vocab_size, lambda k: (), weights)
        if name not in weight_map:
            raise KeyError(f"read_checkpoint: {weights} has no tensor {name!r}")
        f = open_file(os.path.join(folder, weight_map[name]))
    table = f.get_tensor(name)
    if table.dim() != 2 or not table.is_floating_point():
        raise ValueError(f"read_checkpoint: tensor {name!r} of {folder} is {tuple(table.shape)} {table.dtype}, not a "
                         "2-D floating-point table")
    if table.shape[0] < tok.vocab_size:
        raise ValueError(f"read_checkpoint: the table {name!r} has {table.shape[0]} rows but {tok_path} has "
                         f"{tok.vocab_size} token ids")
    config: Dict[str, Any] = {}
    cfg = os.path.join(folder, "config.json")
    if os.path.exists(cfg):
        try:
            with open(check_input_file(cfg, "read_checkpoint: config"), encoding="utf-8") as fh:
                config = json.load(fh)
        except ValueError as exc:
            raise ValueError(f"read_checkpoint: {cfg} is not valid JSON: {exc}") from None
    pad = config.get("pad_token_id")
    if tok.pad_token_id is None and isinstance(pad, int) and 0 <= pad < table.shape[0]:
        tok.pad_token_id, tok.pad_token = pad, tok.id_to_token(pad)
    return Checkpoint(folder, table, tok, name, config)


def token_vectors(model: Union[PathLike, Checkpoint]) -> Any:
    """A model's token table as ``embedfast.Vectors``: word i is token i's string (``##ing``, ``Ġthe``,
    ``▁the``), row i its input embedding (mapped, not copied). Rows past the tokenizer's ids (tables padded to
    a multiple of 64, say) are named ``<row N>``; ``report.extra``-free: the count of such rows is
    ``vectors.unnamed_rows``."""
    from ..vectors import Vectors

    ck = model if isinstance(model, Checkpoint) else read_checkpoint(model)
    n = ck.table.shape[0]
    words: List[Optional[str]] = [None] * n
    for t, i in ck.tokenizer.get_vocab().items():
        if 0 <= i < n:
            words[i] = t
    unnamed = sum(w is None for w in words)
    v = Vectors([w if w is not None else f"<row {i}>" for i, w in enumerate(words)], ck.table)
    v.unnamed_rows = unnamed
    return v
