"""all-MiniLM-L6-v2 as a plain PyTorch module (a BERT encoder read from the package's safetensors file, no
transformers needed) whose word-embedding layer can be swapped for a fused one; mean pooling over the tokens."""
from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    """One post-norm BERT layer (self-attention, GELU MLP)."""

    def __init__(self, d: int, heads: int, ff: int, eps: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out, self.ln1 = nn.Linear(d, d), nn.LayerNorm(d, eps=eps)
        self.inter, self.out, self.ln2 = nn.Linear(d, ff), nn.Linear(ff, d), nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        h = self.heads

        def split(t):
            return t.view(B, T, h, D // h).transpose(1, 2)
        a = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                           attn_mask=bias)
        x = self.ln1(x + self.attn_out(a.transpose(1, 2).reshape(B, T, D)))
        return self.ln2(x + self.out(F.gelu(self.inter(x))))


class MiniLM(nn.Module):
    """BERT encoder (word + position + token-type embeddings, LayerNorm, N layers), mean-pooled output.

    ``word_embeddings`` is any module mapping ids [B, T] to [B, T, D]: ``nn.Embedding`` (as loaded) or a
    ``MultiSourceEmbedding``."""

    def __init__(self, config: dict):
        super().__init__()
        d, eps = config["hidden_size"], config["layer_norm_eps"]
        self.word_embeddings = nn.Embedding(config["vocab_size"], d, padding_idx=config.get("pad_token_id", 0))
        self.position_embeddings = nn.Embedding(config["max_position_embeddings"], d)
        self.token_type_embeddings = nn.Embedding(config["type_vocab_size"], d)
        self.ln = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(Layer(d, config["num_attention_heads"], config["intermediate_size"], eps)
                                    for _ in range(config["num_hidden_layers"]))
        self.dim = d

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        x = self.word_embeddings(ids) + self.position_embeddings.weight[:T] + self.token_type_embeddings.weight[0]
        x = self.ln(x)
        bias = torch.zeros(mask.shape, dtype=x.dtype).masked_fill(~mask, float("-inf"))[:, None, None, :]
        for layer in self.layers:
            x = layer(x, bias)
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


_RENAME = {"attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
           "attention.output.dense": "attn_out", "attention.output.LayerNorm": "ln1",
           "intermediate.dense": "inter", "output.dense": "out", "output.LayerNorm": "ln2"}


def load_minilm(folder: str) -> Tuple[MiniLM, "object"]:
    """(MiniLM with the package's weights, its ``tokenizers.Tokenizer`` without padding/truncation)."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    model = MiniLM(config)
    sd = load_file(os.path.join(folder, "model.safetensors"))
    own: Dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.endswith("position_ids"):
            continue  # a buffer of transformers' BertEmbeddings, not a weight
        if k.startswith("embeddings."):
            k = k[len("embeddings."):].replace("LayerNorm", "ln")
        elif k.startswith("encoder.layer."):
            rest = k[len("encoder.layer."):]
            i, rest = rest.split(".", 1)
            name, leaf = rest.rsplit(".", 1)
            k = f"layers.{i}.{_RENAME[name]}.{leaf}"
        else:
            continue  # pooler, position_ids
        own[k] = v
    missing, unexpected = model.load_state_dict(own, strict=False)
    if missing or unexpected:
        raise ValueError(f"load_minilm: {folder}: missing {missing}, unexpected {unexpected}")
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return model, tok


def encode_texts(tok, texts: Sequence[str], max_len: int = 48) -> Tuple[torch.Tensor, torch.Tensor]:
    """(ids [N, L], mask [N, L]) with [CLS] ... [SEP], padded with 0."""
    encs = [tok.encode(t).ids[:max_len] for t in texts]
    L = max(len(e) for e in encs)
    ids = torch.zeros(len(encs), L, dtype=torch.int64)
    for i, e in enumerate(encs):
        ids[i, :len(e)] = torch.tensor(e)
    return ids, ids != 0


def wordpiece_vocab(tok) -> List[str]:
    """The tokenizer's vocabulary by id."""
    v = tok.get_vocab()
    words = [None] * (max(v.values()) + 1)
    for w, i in v.items():
        words[i] = w
    return words
