"""Child processes that die with the desk that started them."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM this child when its parent dies, even by kill -9.

    Without it a supervisor killed hard would leave nats-server and the services
    running, holding the data directory. Elsewhere it does nothing.
    """
    os.setsid()  # its own session: a Ctrl-C at the terminal reaches only the supervisor
    if sys.platform.startswith("linux"):
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def child_subreaper(on: bool) -> bool:
    """Make this process adopt its orphaned descendants (Linux), or stop; returns whether it did before.

    The fork server hands each service it forks to the supervisor this way (forkserver.py).
    """
    libc = _libc()
    before = ctypes.c_int(0)
    if libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(before)) != 0 or libc.prctl(PR_SET_CHILD_SUBREAPER, int(on)) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    return bool(before.value)


def set_name(name: str) -> None:
    """The name `ps -o comm`, top and /proc/PID/comm show (Linux; at most 15 bytes)."""
    if sys.platform.startswith("linux"):
        _libc().prctl(PR_SET_NAME, name.encode()[:15])


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
