"""The fuzz targets: one function per parser that builds an input from the fuzz bytes, calls the public API and
checks the result.

Every target follows one contract. ``run(data)`` either returns (the input was accepted and the result passed
the cheap property checks), or raises one of the target's documented clean errors (``ALLOWED``: a Python error
that names the problem, e.g. ``ValueError``). Anything else is a finding: an exception of another type
(``IndexError``, ``KeyError``, ``EOFError``, ``zlib.error``, ``struct.error``, a pickle error, a
``RuntimeError`` from C++ that is really an unchecked condition such as ``std::bad_alloc``, ``MemoryError``),
a ``PropertyViolation`` (a result that is silently wrong), or a signal / hang (seen by the driver, since they
end or stall the process).

Inputs are laid out so that a valid file is a valid seed: the first two bytes are options (format, on_error,
limit, dtype, gzip, ...), the rest is the file (or the text). ``seeds()`` returns small valid inputs of each
kind; ``dictionary()`` the tokens libFuzzer's mutator should try.
"""
from __future__ import annotations

import gzip
import io
import os
import struct
import tempfile
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch


class PropertyViolation(AssertionError):
    """A result that was accepted but is wrong (a finding)."""


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise PropertyViolation(msg)


_TMP = None


def tmpdir() -> str:
    """A private folder for this process' input files (on tmpfs when there is one: the targets write a file
    per input)."""
    global _TMP
    if _TMP is None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        _TMP = tempfile.mkdtemp(prefix="embedfast-fuzz-", dir=base)
    return _TMP


def write_file(name: str, data: bytes) -> str:
    path = os.path.join(tmpdir(), name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# =====================================================================================================
# vectors files: text (glove / word2vec / fastText), word2vec binary, native
# =====================================================================================================

TEXT_FORMATS = ("auto", "text", "glove", "word2vec", "fasttext")


def _load_options(opt: bytes, formats: Tuple[str, ...]) -> dict:
    a = opt[0] if len(opt) > 0 else 0
    b = opt[1] if len(opt) > 1 else 0
    return dict(
        format=formats[a % len(formats)],
        on_error="skip" if a & 0x08 else "raise",
        limit=(b % 6) if a & 0x10 else None,
        gzip=bool(a & 0x20),
        dtype=(torch.float32, torch.float64, torch.float16, torch.bfloat16)[(b >> 3) % 4] if a & 0x40 else torch.float32,
        threads=1 + ((b >> 5) & 1) if a & 0x80 else None,
    )


def _check_vectors(v, content: bytes, opts: dict, *, text: bool) -> None:
    """Properties every loaded Vectors must have."""
    from embedfast._io import encode_word

    m = v.matrix
    words = v.words
    check(isinstance(m, torch.Tensor) and m.dim() == 2, f"matrix is not 2-D: {getattr(m, 'shape', None)}")
    rows, dim = m.shape
    check(rows == len(words), f"{len(words)} words but {rows} rows")
    check(m.numel() == rows * dim, f"matrix holds {m.numel()} values, not rows*dim = {rows * dim}")
    check(m.dtype == opts["dtype"], f"dtype {m.dtype}, asked {opts['dtype']}")
    check(len(set(words)) == len(words), "two rows have the same word")
    if opts["limit"] is not None:
        check(rows <= opts["limit"], f"{rows} rows with limit={opts['limit']}")
    if v.report is not None:
        check(v.report.rows == rows, f"report.rows = {v.report.rows}, {rows} rows returned")
    for w in words:
        check(isinstance(w, str) and len(w) > 0, f"empty or non-str word {w!r}")
        raw = encode_word(w)
        # a word is bytes of the file, kept as they were (no replacement character merging distinct words)
        check(raw in content, f"word {w!r} ({raw!r}) does not occur in the input")
    if text and rows and opts["dtype"] in (torch.float32, torch.float64):
        low = content.lower()
        if b"nan" not in low:
            check(not bool(torch.isnan(m).any()), "NaN in the matrix, none in the input")
        if b"inf" not in low:
            check(not bool(torch.isinf(m).any()), "inf in the matrix (an overflow not reported), none in the input")


def _load(data: bytes, formats: Tuple[str, ...], *, text: bool) -> None:
    import embedfast

    opts = _load_options(data[:2], formats)
    content = data[2:]
    payload = gzip.compress(content, compresslevel=1, mtime=0) if opts["gzip"] else content
    path = write_file("vectors.gz" if opts["gzip"] else "vectors", payload)
    v = embedfast.load_vectors(path, format=opts["format"], limit=opts["limit"], dtype=opts["dtype"],
                               on_error=opts["on_error"], threads=opts["threads"])
    _check_vectors(v, content, opts, text=text)


def run_text(data: bytes) -> None:
    _load(data, TEXT_FORMATS, text=True)


def run_w2vbin(data: bytes) -> None:
    _load(data, ("word2vec-bin", "auto"), text=False)


def run_native(data: bytes) -> None:
    _load(data, ("native", "auto"), text=False)


def _seed_vectors(kind: str) -> List[bytes]:
    from embedfast import Vectors

    out = []
    words = ["the", "cat", "sat", "caf\u00e9", "x\udce9y"]  # the last holds a non-UTF-8 byte
    for n, d in ((3, 2), (5, 3), (1, 1)):
        m = torch.arange(n * d, dtype=torch.float32).reshape(n, d) / 4 - 1
        ws = words[:n]
        if kind == "text":
            body = "".join(f"{w} " + " ".join(f"{x:g}" for x in row) + "\n" for w, row in zip(ws, m.tolist()))
            raw = body.encode("utf-8", "surrogateescape")
            out.append(b"\x01\x00" + raw)  # glove, no header
            out.append(b"\x03\x00" + f"{n} {d}\n".encode() + raw)  # word2vec text, header
            out.append(b"\x19\x01" + raw.replace(b"\n", b"\r\n", 1))  # auto, skip errors, limit, CRLF
            out.append(b"\x20\x00" + raw)  # gzip, auto
        else:
            path = os.path.join(tmpdir(), f"seed-{kind}")
            fmt = "word2vec-bin" if kind == "w2vbin" else "native"
            if kind == "native":
                ws = [w for w in ws if "\udce9" not in w] + ["w%d" % i for i in range(n)]
                ws = ws[:n]
            Vectors(ws, m).save(path, format=fmt)
            with open(path, "rb") as f:
                raw = f.read()
            out.append(b"\x00\x00" + raw)
            out.append(b"\x10\x02" + raw)  # limit
            if n == 3:
                out.append(b"\x60\x08" + raw)  # gzip + float64
    if kind == "text":
        out.append(b"\x00\x00" + b"\xef\xbb\xbfa 1 2\n\nb 3 4\n")  # BOM, blank line
        out.append(b"\x0a\x00" + b"a 1 2 3\nb 1 x 3\nc 1e39 1 1\n")  # skip: bad number, out of range
    return out


# =====================================================================================================
# fastText binary models (.bin)
# =====================================================================================================


def run_fasttext(data: bytes) -> None:
    """Options (2 bytes: format, limit, gzip, dtype, output matrix, threads, a vocab= filter) + a .bin file.
    An accepted model must be consistent (shapes, distinct words found in the file, finite values), give any
    word a finite vector, and survive a save / load round trip unchanged."""
    import embedfast

    opts = _load_options(data[:2], ("fasttext-bin", "auto"))
    b = data[1] if len(data) > 1 else 0
    content = data[2:]
    payload = gzip.compress(content, compresslevel=1, mtime=0) if opts["gzip"] else content
    path = write_file("model.bin.gz" if opts["gzip"] else "model.bin", payload)
    vocab = ["a", "the", "caf\u00e9"] if b & 0x04 else None
    v = embedfast.load_vectors(path, format=opts["format"], limit=opts["limit"], dtype=opts["dtype"],
                               threads=opts["threads"], output_matrix=bool(b & 0x02), vocab=vocab)
    _check_vectors(v, content, opts, text=False)
    magic = content[:4] == b"\xba\x16\x4f\x2f"
    check((v.report.format == "fasttext-bin") == magic,
          f"a file {'with' if magic else 'without'} fastText's magic read as {v.report.format}")
    if v.report.format != "fasttext-bin":  # format="auto" on something else: the other targets' business
        return
    sw = v.subwords
    check(sw is not None, "a fastText model loaded without its sub-words")
    check(tuple(sw.word_rows.shape) == tuple(v.matrix.shape), f"word_rows {tuple(sw.word_rows.shape)} vs matrix "
                                                             f"{tuple(v.matrix.shape)}")
    check(sw.ngrams.dim() == 2 and sw.ngrams.shape[1] == v.dim, f"ngrams shape {tuple(sw.ngrams.shape)}")
    for t in (v.matrix, sw.word_rows, sw.ngrams):
        check(bool(torch.isfinite(t.float()).all()), "non-finite values accepted")
    probe = v.vectors_for(["zq\u00e9x", "a", "</s>"] + v.words[:2])
    check(tuple(probe.shape) == (3 + min(2, len(v)), v.dim) and bool(torch.isfinite(probe.float()).all()), "bad probe vectors")
    if v.dim * (len(v) + sw.bucket) <= 1 << 16:
        again = write_file("again.bin", b"")
        v.save(again, format="fasttext-bin")
        w = embedfast.load_vectors(again, dtype=opts["dtype"], output_matrix=True)
        check(w.words == v.words and torch.equal(w.subwords.word_rows, sw.word_rows)
              and torch.equal(w.subwords.ngrams, sw.ngrams) and w.subwords.labels == sw.labels,
              "a saved model does not load back the same")


def _seed_fasttext() -> List[bytes]:
    from embedfast import Vectors
    from embedfast.vectors.subwords import Subwords

    out = []
    for words, bucket, labels, minn, maxn in ((["the", "a", "caf\u00e9"], 7, [], 3, 6), (["</s>", "x"], 3, ["__label__y"], 1, 2),
                                               (["w"], 0, [], 0, 0)):
        d = 2
        g = torch.Generator().manual_seed(len(words))
        sw = Subwords(ngrams=torch.randn(bucket, d, generator=g), word_rows=torch.randn(len(words), d, generator=g),
                      minn=minn, maxn=maxn, counts=torch.arange(len(words), 0, -1), labels=labels,
                      label_counts=torch.ones(len(labels), dtype=torch.int64), label_base=len(words))
        if labels:
            sw.args["model"] = 3
        v = Vectors(words, sw.word_rows.clone(), subwords=sw)
        path = os.path.join(tmpdir(), "seed-ft.bin")
        v.save(path, format="fasttext-bin")
        with open(path, "rb") as f:
            raw = f.read()
        out += [b"\x00\x00" + raw, b"\x10\x03" + raw, b"\x21\x06" + raw]
    return out


# =====================================================================================================
# Word2Vec checkpoints
# =====================================================================================================

_CORPUS_TEXT = ("the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n" * 4).encode()
_BASE_STATE = None


def _corpus_path() -> str:
    path = os.path.join(tmpdir(), "ckpt-corpus.txt")
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(_CORPUS_TEXT)
    return path


def _base_state() -> dict:
    """A small valid checkpoint's state (trained a little, so every field is set)."""
    global _BASE_STATE
    if _BASE_STATE is None:
        from embedfast import Word2Vec

        path = os.path.join(tmpdir(), "base.ckpt")
        w = Word2Vec(dim=4, window=2, negative=2, min_count=1, epochs=2, threads=1, chunk_words=16, seed=1)
        w.train(_corpus_path(), progress=False, max_words=40, checkpoint=path)
        _BASE_STATE = torch.load(path, map_location="cpu", weights_only=True)
    return _BASE_STATE


def _paths(state: dict) -> List[Tuple[str, ...]]:
    out = []
    for k in sorted(state):
        out.append((k,))
        if isinstance(state[k], dict):
            out.extend((k, kk) for kk in sorted(state[k]))
    return out


def _special_int(b: bytes) -> int:
    table = (0, -1, 1, 2, 3, 7, 255, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 62, 2 ** 63 - 1, -(2 ** 63),
             10 ** 9, 10 ** 12)
    if not b:
        return 0
    if b[0] < 0x80:
        return table[b[0] % len(table)]
    return int.from_bytes(b[1:5].ljust(4, b"\0"), "little", signed=True)


def _mutate_value(v, act: int, arg: bytes):
    """One structured change of a checkpoint field, chosen by ``act`` / ``arg``."""
    if act == 1:
        return None
    if act == 2:
        return _special_int(arg)
    if act == 3:
        return (float("nan"), float("inf"), -float("inf"), 1e308, 0.5, -0.5, 0.0)[arg[0] % 7 if arg else 0]
    if act == 4:
        return ("", "x", "cpu", "\udcff")[arg[0] % 4 if arg else 0]
    if act == 5:
        return [1, 2] if not arg or arg[0] & 1 else {"a": 1}
    if isinstance(v, torch.Tensor):
        sel = arg[0] if arg else 0
        if act == 6:  # other dtype
            dt = (torch.int32, torch.int64, torch.float64, torch.float32, torch.uint8, torch.bool, torch.float16)[sel % 7]
            return v.to(dt)
        if act == 7:  # other shape
            flat = v.reshape(-1)
            return (flat[:-1], torch.cat([flat, flat[-1:]]) if flat.numel() else flat, flat[: sel % (flat.numel() + 1)],
                    v.reshape(1, -1), v.t() if v.dim() == 2 else v.unsqueeze(0), flat.flip(0))[sel % 6].clone()
        if act == 8 and v.numel():  # one element changed
            out = v.clone().reshape(-1)
            i = (arg[1] if len(arg) > 1 else 0) % out.numel()
            if out.is_floating_point():
                out[i] = (float("nan"), float("inf"), -1e30, 0.0)[sel % 4]
            elif out.dtype == torch.bool:
                out[i] = not bool(out[i])
            else:
                info = torch.iinfo(out.dtype)
                out[i] = max(info.min, min(info.max, _special_int(arg[2:])))
            return out.reshape(v.shape)
        if act == 9:
            return torch.zeros(sel % 5, dtype=v.dtype)
    if isinstance(v, (list, tuple)) and act >= 6:
        sel = arg[0] if arg else 0
        items = list(v)
        if act == 6:
            return items[:-1]
        if act == 7:
            return items + items[-1:] if items else ["x"]
        if act == 8 and items:
            items[sel % len(items)] = ("the", "", "a b", 5, None)[(arg[1] if len(arg) > 1 else 0) % 5]
            return items
        return items[::-1]
    return _special_int(arg)


def _structured_checkpoint(ops: bytes) -> bytes:
    import copy

    state = copy.deepcopy(_base_state())
    paths = _paths(state)
    i = 0
    while i + 2 <= len(ops) and i < 40:
        p = paths[ops[i] % len(paths)]
        act = ops[i + 1] % 10
        arg = ops[i + 2:i + 6]
        i += 6
        parent = state
        for k in p[:-1]:
            parent = parent.get(k) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or p[-1] not in parent and act != 0:
            continue
        if act == 0:
            parent.pop(p[-1], None)
        else:
            parent[p[-1]] = _mutate_value(parent[p[-1]], act, arg)
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def run_checkpoint(data: bytes) -> None:
    """Byte 0 even: the rest is the checkpoint file (a mutated torch.save zip); odd: the rest drives structured
    changes of a valid checkpoint's fields (delete, None, odd ints/floats, other dtypes and shapes...). A
    checkpoint that loads is trained on for a few words."""
    from embedfast import Word2Vec

    if not data:
        return
    raw = data[1:] if data[0] % 2 == 0 else _structured_checkpoint(data[1:])
    path = write_file("model.ckpt", raw)
    w = Word2Vec.load_checkpoint(path)
    n = len(w.words)
    check(w.w_in is not None and tuple(w.w_in.shape) == (n, w.params.dim),
          f"loaded w_in shape {None if w.w_in is None else tuple(w.w_in.shape)}, {n} words x dim {w.params.dim}")
    w.train(_corpus_path(), progress=False, max_words=48)
    m = w.matrix
    check(tuple(m.shape) == (n, w.params.dim), f"trained matrix shape {tuple(m.shape)}")
    check(bool(torch.isfinite(m).all()), "training returned non-finite vectors")


def _seed_checkpoint() -> List[bytes]:
    buf = io.BytesIO()
    torch.save(_base_state(), buf)
    raw = buf.getvalue()
    # structured seeds: key index, action, 4 argument bytes
    return [b"\x00" + raw, b"\x01", b"\x01" + bytes([3, 8, 0, 1, 0, 0]), b"\x01" + bytes([5, 2, 1, 0, 0, 0]),
            b"\x01" + bytes([0, 7, 2, 0, 0, 0, 9, 8, 1, 2, 0x85, 0])]


# =====================================================================================================
# corpus reader: corpus_build_vocab / corpus_encode
# =====================================================================================================

_WS = b" \t\r\v\f"


def _ref_lines(text: bytes) -> List[List[bytes]]:
    """The documented tokenisation: '\\n' ends a sentence, ' ', '\\t', '\\r', '\\v', '\\f' separate tokens."""
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [ln.split() for ln in lines]  # bytes.split() splits on exactly these bytes (and '\n')


def _words_of(wb: torch.Tensor, wo: torch.Tensor) -> List[bytes]:
    raw = bytes(wb.numpy())
    off = wo.tolist()
    return [raw[off[i]:off[i + 1]] for i in range(len(off) - 1)]


def _check_encode(ids, offs, st, lines, vocab: List[bytes], max_len: int, what: str) -> None:
    from embedfast import ops

    s = dict(zip(ops.ENCODE_STATS, st.tolist()))
    index = {w: i for i, w in enumerate(vocab)}
    want_ids, want_offs = [], [0]
    for toks in lines:
        kept = [index[t] for t in toks if t in index]
        for j in range(0, len(kept), max_len):
            want_ids.extend(kept[j:j + max_len])
            want_offs.append(len(want_ids))
    got_ids, got_offs = ids.tolist(), offs.tolist()
    check(ids.dtype == torch.int32, f"{what}: ids dtype {ids.dtype}")
    check(all(0 <= i < len(vocab) for i in got_ids), f"{what}: an id outside [0, {len(vocab)})")
    check(got_ids == want_ids, f"{what}: ids differ from the reference tokenisation")
    check(got_offs == want_offs, f"{what}: sentence offsets {got_offs[:8]}... != {want_offs[:8]}...")
    check(s["tokens"] == sum(len(t) for t in lines), f"{what}: stats tokens {s['tokens']}")
    check(s["encoded_tokens"] == len(got_ids) and s["oov_tokens"] == s["tokens"] - len(got_ids),
          f"{what}: encoded/oov stats {s['encoded_tokens']}/{s['oov_tokens']}")


def _crafted_vocab(seg: bytes, flags: int):
    """word_bytes / word_offsets as a crafted checkpoint could hold them."""
    n = min(seg[0] % 16, len(seg) - 1) if seg else 0  # words; their lengths are the last n bytes
    wb = np.frombuffer(seg[1:len(seg) - n], np.uint8).copy()
    deltas = np.frombuffer(seg[len(seg) - n:], np.int8).astype(np.int64)
    offs = np.concatenate([[0], np.cumsum(deltas)]) if flags & 1 else np.concatenate([[0], np.cumsum(np.abs(deltas))])
    if flags & 2 and offs.size > 1:
        offs[int(seg[0]) % offs.size if seg else 0] = (10 ** 9, -(10 ** 9), 2 ** 62, -1)[(flags >> 2) & 3]
    word_bytes = torch.from_numpy(wb)
    word_offsets = torch.from_numpy(offs)
    if flags & 16:
        word_offsets = word_offsets.to(torch.int32)
    if flags & 32:
        word_bytes = word_bytes.to(torch.int8)
    if flags & 64 and word_offsets.numel() > 1:
        word_offsets = word_offsets.repeat_interleave(2)[::2]  # non-contiguous, same values
    return word_bytes, word_offsets


def run_corpus(data: bytes) -> None:
    """Bytes 0-5 are options; the rest is the text. Mode (byte 0 % 4): 0 a buffer, 1 a file, 2 a crafted
    vocabulary (word_bytes / word_offsets from the bytes before the first NUL NUL), 3 blocks (start /
    max_bytes) of a file checked against the whole."""
    from embedfast import ops

    if len(data) < 6:
        return
    mode = data[0] % 4
    min_count = 1 + data[1] % 3
    max_vocab = -1 if data[2] % 8 == 0 else data[2] % 8
    max_len = 1 + data[3] % 7 if data[3] < 0x80 else 10000
    block = 1 + data[4] % 64
    threads = 1 + data[5] % 2
    text = data[6:]

    if mode == 2:
        seg, _, text = text.partition(b"\0\0")
        wb, wo = _crafted_vocab(seg, data[1])
        ids, offs, st = ops.corpus_encode(data=torch.frombuffer(bytearray(text), dtype=torch.uint8) if text else
                                          torch.empty(0, dtype=torch.uint8), word_bytes=wb, word_offsets=wo,
                                          max_sentence_length=max_len, num_threads=threads)
        # accepted: the vocabulary must have been a valid one
        vocab = _words_of(wb.to(torch.uint8).contiguous(), wo.to(torch.int64).contiguous())
        check(len(set(vocab)) == len(vocab), "corpus_encode accepted a vocabulary with a repeated word")
        check(all(w and not any(c in w for c in _WS + b"\n") for w in vocab),
              "corpus_encode accepted an empty word or one with whitespace")
        _check_encode(ids, offs, st, _ref_lines(text), vocab, max_len, "crafted vocab")
        return

    buf = torch.frombuffer(bytearray(text), dtype=torch.uint8) if text else torch.empty(0, dtype=torch.uint8)
    path = write_file("corpus.txt", text) if mode in (1, 3) else None
    src = dict(data=buf) if path is None else {}
    wb, wo, counts, st = ops.corpus_build_vocab(path, min_count=min_count, max_vocab=max_vocab, num_threads=threads,
                                                **src)
    s = dict(zip(ops.VOCAB_STATS, st.tolist()))
    lines = _ref_lines(text)
    ref: Dict[bytes, int] = {}
    for toks in lines:
        for t in toks:
            ref[t] = ref.get(t, 0) + 1
    vocab = _words_of(wb, wo)
    c = counts.tolist()
    check(s["tokens"] == sum(ref.values()), f"tokens {s['tokens']} != {sum(ref.values())}")
    check(s["unique_words"] == len(ref), f"unique_words {s['unique_words']} != {len(ref)}")
    check(s["bytes"] == len(text), f"bytes {s['bytes']} != {len(text)}")
    check(len(set(vocab)) == len(vocab), "a word appears twice in the vocabulary")
    check(all(ref.get(w) == n for w, n in zip(vocab, c)), "a vocabulary word's count differs from the text's")
    first = {w: i for i, w in enumerate(ref)}  # ref's keys are in order of first occurrence
    # count descending; equal counts: the word first seen later first (gensim's order)
    want = sorted((w for w, n in ref.items() if n >= min_count), key=lambda w: (-ref[w], -first[w]))
    if max_vocab != -1:
        want = want[:max_vocab]
    check(vocab == want, f"vocabulary {vocab[:5]}... != reference {want[:5]}...")
    check(s["vocab_tokens"] == sum(c), "vocab_tokens != sum of counts")
    if not vocab:
        return
    ids, offs, est = ops.corpus_encode(path, word_bytes=wb, word_offsets=wo, max_sentence_length=max_len,
                                       num_threads=threads, **src)
    _check_encode(ids, offs, est, lines, vocab, max_len, "encode")
    if mode == 3:  # block by block, each starting where the last ended, must give the same
        start, all_ids, n_sent = 0, [], 0
        while start < len(text):
            bi, bo, bst = ops.corpus_encode(path, word_bytes=wb, word_offsets=wo, max_sentence_length=max_len,
                                            num_threads=threads, start=start, max_bytes=block)
            n = int(bst[0])
            check(n > 0, f"block at {start} read {n} bytes")
            check(text[start + n - 1:start + n] == b"\n" or start + n == len(text),
                  f"block [{start}, {start + n}) does not end at a line end")
            all_ids.extend(bi.tolist())
            n_sent += bo.numel() - 1
            start += n
        check(all_ids == ids.tolist(), "blocks' ids differ from the whole text's")
        check(n_sent == offs.numel() - 1, "blocks' sentences differ from the whole text's")


def _seed_corpus() -> List[bytes]:
    t = b"the cat sat on the mat\nthe dog\n\n  a\tcat \r\nsat sat sat\n"
    lat = "caf\u00e9 caf\u00e8 caf\u00ea the\n".encode("latin-1")
    return [bytes([0, 0, 0, 0x7f, 0, 0]) + t, bytes([1, 1, 3, 2, 5, 1]) + t, bytes([3, 0, 0, 1, 3, 0]) + t + lat,
            bytes([0, 0, 0, 0x80, 0, 1]) + lat + b"x",
            bytes([2, 0, 0, 0x7f, 0, 0]) + b"\x03thecatsat" + bytes([3, 3, 3]) + b"\0\0the cat sat\ncat\n",
            bytes([2, 2, 0, 0x7f, 0, 0]) + b"\x03abcde" + bytes([1, 2, 2]) + b"\0\0a bc de\n"]


def run_selftest(data: bytes) -> None:
    """Checks the harness itself (tests/faults/test_fuzz.py): a planted Python bug, a wrong result and a native
    crash, each reached by one of its seeds; must be reported as findings / a crash, never as clean."""
    if data.startswith(b"KEY"):
        {}[data]
    if data.startswith(b"BAD"):
        check(False, "planted wrong result")
    if data.startswith(b"SEGV"):
        import ctypes

        ctypes.string_at(0)
    if data.startswith(b"ERR"):
        raise ValueError("a documented error: not a finding")


# =====================================================================================================

class Target:
    def __init__(self, name: str, run: Callable[[bytes], None], allowed: tuple, seeds: Callable[[], List[bytes]],
                 tokens: List[bytes], allow_index_from: Tuple[str, ...] = ()):
        self.name, self.run, self.allowed, self.seeds, self.tokens = name, run, allowed, seeds, tokens
        self.allow_index_from = allow_index_from

    def is_clean(self, exc: BaseException) -> bool:
        """A documented error (the input was refused the way a user should see)."""
        if isinstance(exc, PropertyViolation):
            return False
        if isinstance(exc, IndexError) and any(str(exc).startswith(op + ":") for op in self.allow_index_from):
            return True  # the op's own range check (TORCH_CHECK_INDEX), naming the op
        if type(exc) is MemoryError:
            return False
        return isinstance(exc, self.allowed) and "std::bad_alloc" not in str(exc)


# =====================================================================================================
# transfer: Pharaoh alignment files and bilingual dictionaries (embedfast.transfer.align)
# =====================================================================================================

def run_alignment_files(data: bytes) -> None:
    """read_pharaoh and read_dictionary on arbitrary bytes: accepted links survive a write/read round trip, an
    accepted dictionary's weights per target word are finite, >= 0 and sum to 1."""
    from embedfast.transfer.align import read_dictionary, read_pharaoh, write_pharaoh

    path = write_file("links.pharaoh", data)
    try:
        links = read_pharaoh(path)
    except ValueError:
        links = None
    if links is not None:
        again = write_file("again.pharaoh", b"")
        write_pharaoh(again, links)
        check(read_pharaoh(again) == links, "pharaoh: write/read round trip changed the links")
        check(all(i >= 0 and j >= 0 for ls in links for i, j in ls), "pharaoh: negative index accepted")
    table = read_dictionary(path)
    for t, row in table.items():
        total = sum(w for _, w in row)
        check(all(np.isfinite(w) and w >= 0 for _, w in row) and abs(total - 1) < 1e-6,
              f"dictionary: weights of {t!r} are {row!r}")


def _seed_alignment() -> List[bytes]:
    return [b"0-0 1-1 2-3\n\n4-0\n", "cat 猫\nkitty 猫 3\n# c\ndog 狗 0.5\n".encode(), b"a b 1e308\nc b 1e308\n"]


_VEC_TOKENS = [b"nan", b"-inf", b"inf", b"1e39", b"-1e-46", b"0x1p3", b"\xef\xbb\xbf", b"\r\n", b"\n", b" ", b"\t",
               b"\xff", b"\xc3\xa9", b"2 3\n", b"1e999", b"-0", b"+.5e-3", b"9999999999"]
_NATIVE_TOKENS = [b'"rows"', b'"dim"', b'"dtype"', b'"float16"', b'"bfloat16"', b'"float64"', b'"unique"', b"true",
                  b"false", b"_offset", b"_nbytes", b'"file_size"', b"-1", b"1e9", b"null", b"4294967295"]
TARGETS: Dict[str, Target] = {
    "text": Target("text", run_text, (ValueError,), lambda: _seed_vectors("text"), _VEC_TOKENS),
    "w2vbin": Target("w2vbin", run_w2vbin, (ValueError,), lambda: _seed_vectors("w2vbin"),
                     _VEC_TOKENS + [b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\n"]),
    "native": Target("native", run_native, (ValueError,), lambda: _seed_vectors("native"), _NATIVE_TOKENS),
    "fasttext": Target("fasttext", run_fasttext, (ValueError,), _seed_fasttext,
                       [b"\xba\x16\x4f\x2f", b"\x0c\x00\x00\x00", b"\x0b\x00\x00\x00", b"\x00\x00\xc0\x7f",
                        b"\xff\xff\xff\x7f", b"\xff\xff\xff\xff\xff\xff\xff\xff", b"\x00", b"\x01",
                        b"__label__", b"</s>"]),
    "checkpoint": Target("checkpoint", run_checkpoint, (ValueError,), _seed_checkpoint,
                         [b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"data.pkl", b"version", b"\x80\x02"]),
    "corpus": Target("corpus", run_corpus, (ValueError, TypeError), _seed_corpus, [b"\n", b" ", b"\t", b"\r", b"\v",
                     b"\f", b"\0\0", b"\xff", b"\xc3\xa9", b"\x7f"], allow_index_from=("corpus_encode",
                                                                                        "corpus_build_vocab")),
    "alignment": Target("alignment", run_alignment_files, (ValueError,), _seed_alignment,
                        [b"-", b"0-0", b" ", b"\n", b"\t", b"#", b"1e999", b"nan", b"-1", b"\xff", b"99999999999999999999"]),
    "selftest": Target("selftest", run_selftest, (ValueError,), lambda: [b"ERR", b"KEY", b"BAD", b"SEGV", b"ok"], []),
}
