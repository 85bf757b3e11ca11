"""Interrupts during training: SIGINT / SIGTERM held back while a chunk's step is recorded (:class:`SignalGuard`)
and :class:`Terminated`, raised on SIGTERM when there is a checkpoint to write."""
from __future__ import annotations

import signal
import threading

__all__ = ["Terminated", "SignalGuard"]


class Terminated(KeyboardInterrupt):
    """Raised by ``Word2Vec.train(checkpoint=...)`` (and the ``embedfast`` command line) on SIGTERM, after the
    running chunk is recorded, so the checkpoint is written and ``finally`` blocks run; a KeyboardInterrupt
    subclass, so code that handles Ctrl-C handles it too."""


class SignalGuard:
    """Holds SIGINT (and SIGTERM) back while ``critical`` is set, and raises it at ``safe_point()``.

    Installed for one ``train`` call, in the main thread only (signals are delivered there). The previous
    Python-level handler is kept and called at the safe point (for SIGINT that is ``default_int_handler``, which
    raises KeyboardInterrupt); SIGTERM with its default action (terminate) is taken over only when there is a
    checkpoint to write, and then raises :class:`Terminated`. Handlers set to SIG_IGN are left alone.
    """

    def __init__(self, terminate: bool) -> None:
        self.terminate = terminate
        self.critical = False
        self.pending = None
        self._saved: dict = {}

    def __enter__(self) -> "SignalGuard":
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in (signal.SIGINT, signal.SIGTERM):
            prev = signal.getsignal(sig)
            if callable(prev) or (sig == signal.SIGTERM and prev == signal.SIG_DFL and self.terminate):
                self._saved[sig] = prev
                signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, prev in self._saved.items():
            signal.signal(sig, prev)
        self._saved.clear()
        self.critical = False

    def _deliver(self, signum: int, frame) -> None:
        prev = self._saved.get(signum)
        if callable(prev):
            prev(signum, frame)
        elif signum == signal.SIGTERM:
            raise Terminated("terminated by SIGTERM")
        else:
            raise KeyboardInterrupt

    def _handler(self, signum: int, frame) -> None:
        if self.critical:
            self.pending = signum
            return
        self._deliver(signum, frame)

    def safe_point(self) -> None:
        """End of the critical step: deliver a signal that arrived during it."""
        self.critical = False
        if self.pending is not None:
            signum, self.pending = self.pending, None
            self._deliver(signum, None)
