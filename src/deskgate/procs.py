"""Child processes that die with the desk that started them."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM this child when its parent dies, even by kill -9.

    Without it a supervisor killed hard would leave nats-server and the services
    running, holding the data directory. Elsewhere it does nothing.
    """
    os.setsid()  # its own session: a Ctrl-C at the terminal reaches only the supervisor
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_desk_process(pid: int | None) -> bool:
    """Alive and one of ours (a pid from an old run file may belong to anything by now)."""
    if not alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
    except OSError:
        return True  # no /proc: assume it is, and refuse rather than share the store
    return b"nats-server" in cmdline or b"deskgate" in cmdline
