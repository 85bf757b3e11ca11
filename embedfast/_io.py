"""File handling shared by every writer and reader of embedfast: atomic saves, output and input checks, and
the byte <-> str rule for words.

- Saves: :func:`atomic_write` writes to a temporary file with a unique name in the target's own folder and
  renames it over the target only when everything was written (and flushed to disk). Two processes saving to
  one path never mix their bytes (the last rename wins, whole), a failed save (full disk, Ctrl-C, an
  exception) leaves the previous file untouched and no stray temporary file.
- Outputs are checked before long work starts (:func:`check_output_path`): the folder exists and is
  writable, the target is not a folder and not one of the inputs.
- Inputs that are not regular files (a named pipe, a socket, a folder, a device) are refused with a clear
  error (:func:`check_input_file`) instead of blocking or failing deep inside a reader.
- Words are bytes on disk. They are decoded as UTF-8; bytes that are not valid UTF-8 are kept as lone
  surrogates (Python's ``surrogateescape``), so distinct byte strings stay distinct words and are written
  back byte for byte (:func:`encode_word`). :func:`decode_blob` counts how many words needed it.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import stat
import tempfile
from typing import IO, Callable, Iterator, Sequence, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

WORD_ERRORS = "surrogateescape"  # the error handler of every word decode/encode in embedfast


# ---- words --------------------------------------------------------------------------------------------------
def decode_word(raw: bytes) -> str:
    """One word's bytes -> str (invalid UTF-8 bytes kept as lone surrogates U+DC80..U+DCFF)."""
    return raw.decode("utf-8", WORD_ERRORS)


def encode_word(word: str) -> bytes:
    """The inverse of :func:`decode_word`: the word's original bytes."""
    try:
        return word.encode("utf-8", WORD_ERRORS)
    except UnicodeEncodeError as exc:
        raise ValueError(f"word {word!r} cannot be written as UTF-8 (it holds a lone surrogate "
                         f"{word[exc.start]!r} that no byte decodes to)") from None


def decode_blob(blob: bytes) -> Tuple[str, int]:
    """Decode bytes holding words separated by newlines; returns the text and how many words held bytes that
    are not UTF-8 (0 on the fast path: one strict decode)."""
    try:
        return blob.decode("utf-8"), 0
    except UnicodeDecodeError:
        text = blob.decode("utf-8", WORD_ERRORS)
        bad = sum(1 for w in text.split("\n") if any("\udc80" <= ch <= "\udcff" for ch in w))
        return text, bad


def count_non_utf8(words: Sequence[str]) -> int:
    """How many of these words hold bytes that were not UTF-8 (kept as surrogates)."""
    return sum(1 for w in words if any("\udc80" <= ch <= "\udcff" for ch in w))


# ---- inputs -------------------------------------------------------------------------------------------------
def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_input_file(path: PathLike, what: str = "input") -> str:
    """``path`` as str after checking that it is an existing regular file (symlinks followed).

    Raises FileNotFoundError / PermissionError / ValueError naming the path; never opens the file, so a named
    pipe without a writer cannot block the caller.
    """
    p = os.fsdecode(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {p!r}: no such file") from None
    except PermissionError:
        raise PermissionError(f"{what} {p!r}: permission denied") from None
    except OSError as exc:
        raise ValueError(f"{what} {p!r}: cannot stat: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {p!r} is {_kind(st.st_mode)}; embedfast reads regular files only "
                         "(save the stream to a file first)")
    if not os.access(p, os.R_OK):
        raise PermissionError(f"{what} {p!r}: permission denied (not readable)")
    return p


# ---- outputs ------------------------------------------------------------------------------------------------
def check_output_path(path: PathLike, *, inputs: Sequence[PathLike] = (), what: str = "output") -> str:
    """``path`` as str after checking, before any long work, that a file can be saved there.

    The folder must exist and be writable, the target must not be a folder or a non-regular file, and it must
    not be one of ``inputs`` (same file by inode, or by resolved path when it does not exist yet).
    """
    p = os.fsdecode(path)
    if not p:
        raise ValueError(f"{what}: empty path")
    folder = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{what} {p!r}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {p!r}: folder {folder!r} is not writable")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ValueError(f"{what} {p!r}: cannot stat: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {p!r} is {_kind(st.st_mode)}, not a file that can be replaced")
    for inp in inputs:
        q = os.fsdecode(inp)
        same = False
        if st is not None:
            try:
                same = os.path.samefile(p, q)
            except OSError:
                same = False
        else:
            same = os.path.realpath(p) == os.path.realpath(q)
        if same:
            raise ValueError(f"{what} {p!r} is the input {q!r}; refusing to overwrite an input")
    return p


def _temp_next_to(p: str) -> Tuple[int, str]:
    """A unique temporary file in ``p``'s folder, with the permissions a plain ``open(p, "w")`` would give
    (0666 minus the umask), or those of the file it will replace. Removed again if anything (even a
    KeyboardInterrupt) interrupts this function after it was created."""
    folder = os.path.dirname(os.path.abspath(p))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(p)}.", suffix=".tmp", dir=folder)
    try:
        try:
            perm = stat.S_IMODE(os.stat(p).st_mode)
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            perm = 0o666 & ~umask
        os.fchmod(fd, perm)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, tmp


@contextlib.contextmanager
def _staged(path: PathLike) -> Iterator[Tuple[int, str]]:
    """(fd, tmp) of a unique temporary file next to ``path``; the body writes it, closes fd and makes it durable;
    on a normal exit tmp is renamed over ``path``, on any exception it is removed and ``path`` is untouched."""
    p = os.fsdecode(path)
    fd, tmp = _temp_next_to(p)
    done = False
    try:  # nothing between the call above and this line can raise but an asynchronous signal
        yield fd, tmp
        os.replace(tmp, p)
        done = True
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a unique temporary file next to ``path`` for writing; on success flush, fsync and rename it over
    ``path`` (atomic on POSIX); on any failure remove it and leave ``path`` as it was.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    with _staged(path) as (fd, _tmp):
        with os.fdopen(fd, mode, encoding="utf-8" if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_save_with(path: PathLike, write_to_path: Callable[[str], object]) -> None:
    """For writers that need a path rather than a file object (``torch.save``, ``gzip.open``): call
    ``write_to_path(tmp_path)`` on a unique temporary path next to ``path``, then rename it over ``path``
    (same guarantees as :func:`atomic_write`)."""
    with _staged(path) as (fd, tmp):
        os.close(fd)
        write_to_path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())


def atomic_write_binary(path: PathLike, write: Callable[[IO], object]) -> None:
    """``write(f)`` into a binary file object whose bytes land in ``path`` atomically (as :func:`atomic_write`),
    gzip-compressed when ``path`` ends in ``.gz``."""
    if os.fsdecode(path).endswith(".gz"):
        def write_gz(tmp: str) -> None:
            with gzip.open(tmp, "wb") as g:
                write(g)
        atomic_save_with(path, write_gz)
    else:
        with atomic_write(path, "wb") as f:
            write(f)
