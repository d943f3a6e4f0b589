"""How a command ends on a signal: SIGTERM as cleanly as Ctrl-C, and a second signal never a traceback.

Python turns the first Ctrl-C into KeyboardInterrupt, which the run catches to remove or keep its partial
directory (rundir.RunDirectory.abandon) before the command exits 130. SIGTERM (`kill`, a job scheduler, a
container stop) would end the process at once, leaving `runs/.NAME.partial/` behind with no word; here it
raises `Terminated` and takes the same path, exit 143. A second signal while that cleanup runs (an impatient
second Ctrl-C) would raise inside it and print a traceback over a half-removed directory; here it is said and
ignored. Ctrl-\\ (SIGQUIT) and SIGKILL still end a process at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived: a BaseException, like KeyboardInterrupt, so no `except Exception` swallows it."""


@contextmanager
def stopping_cleanly() -> Iterator[None]:
    """While the block runs, the first SIGINT or SIGTERM raises (KeyboardInterrupt, Terminated); any later one
    is said on stderr and ignored, so cleanup finishes. Only the main thread can set handlers: elsewhere (a
    command run from a worker thread) the block runs with the handlers it has."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            print("mikiwame: already stopping, cleaning up (Ctrl-\\ ends at once)", file=sys.stderr)
            return
        stopping = True
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            if stopping:  # the command is exiting: a signal during the interpreter's shutdown is ignored too
                signal.signal(number, signal.SIG_IGN)
            elif handler is not None:  # None: set outside Python, cannot be restored from here
                signal.signal(number, handler)
