"""One interpreter with the shared libraries imported, forking the desk's services (Linux).

Every service is a Python interpreter that imports mostly the same code: pydantic,
nats-py, SQLAlchemy, cryptography, and the desk's own config, bus, domain and
signing modules. Started each as its own `python -m deskgate service NAME`, every
service builds its own copy of those modules on its heap, about 30 MB each. The
fork server imports them once and forks each service from itself, so those pages
are shared copy-on-write: a service pays only for what it writes and for what it
imports alone (the Command Center its web stack, the agents their memory).

**No secrets before the fork.** The supervisor holds every role's bus credentials
(it writes the server's configuration), so a service forked from it would carry
all of them. The fork server is a fresh interpreter, exec'd with only the socket
it is asked on; it imports modules and reads nothing under the data directory: no
credentials, no key, not the mission. Each service loads its own role's
credentials and key after the fork, as it did when it was exec'd. The environment
is the supervisor's, as it always was for every service.

**Only what two or more services import.** Whatever the fork server imports, every
service has; it imports nothing only one service needs, so the factory holds no
web framework and no model SDK (tests/test_forkserver.py).

**The services stay the supervisor's children,** so restarts, kill -9, exit codes
and the death signal behave exactly as with a plain subprocess: the fork server
forks an intermediate process that forks the service and exits at once; the
orphaned service is adopted by the supervisor, which is a child subreaper
(PR_SET_CHILD_SUBREAPER) only for the milliseconds of that hand-over. Only then
does the service ask to be signalled when the supervisor dies. The fork server
itself dies with the supervisor; killed alone, it costs nothing running, and the
supervisor starts another for the next spawn. Whenever forking fails, the
supervisor starts the service as its own interpreter, as before.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Imported by two or more services; never anything that reads a file under the
# data directory at import time.
PRELOAD = (
    "deskgate.services",  # the mission (pydantic, yaml), logs, paths
    "deskgate.bus.connect",
    "deskgate.bus.breaker",
    "deskgate.bus.live",
    "deskgate.bus.publish",
    "deskgate.bus.pull",
    "deskgate.bus.reader",
    "deskgate.bus.streams",
    "nats.js",
    "deskgate.audit.keys",
    "deskgate.audit.signing",
    "deskgate.storage",  # SQLAlchemy
    "sqlalchemy.dialects.sqlite.pysqlite",
    "deskgate.domain.approval",
    "deskgate.domain.breaker",
    "deskgate.domain.directive",
    "deskgate.domain.evaluation",
    "deskgate.domain.execution",
    "deskgate.domain.funnel",
    "deskgate.domain.governor",
    "deskgate.domain.market",
    "deskgate.domain.news",
    "deskgate.domain.portfolio",
    "deskgate.domain.review",
    "deskgate.policy.beliefs",
    "deskgate.policy.breaker",
    "deskgate.policy.engine",
    "deskgate.people.pins",
    "deskgate.clock",
)


class ForkServerError(RuntimeError):
    pass


# -- the supervisor's side --------------------------------------------------------------


def supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "fork")


class ForkedProcess:
    """A forked service, handled like a `subprocess.Popen` (pid, poll, wait, send_signal,
    terminate, kill, returncode); it is the supervisor's own child, so waitpid works."""

    def __init__(self, pid: int, args: list[str]):
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def _reap(self, flags: int) -> bool:
        """Whether the process is our child (running, or reaped now); False while it is not (yet)."""
        if self.returncode is not None:
            return True
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:
            return False
        if pid:
            self.returncode = os.waitstatus_to_exitcode(status)
        return True

    def poll(self) -> int | None:
        if not self._reap(os.WNOHANG) and self.returncode is None:
            self.returncode = 255  # reaped elsewhere: gone, its status unknown
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.05)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        # Until it is reaped its pid cannot be reused, so this never signals a stranger.
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The supervisor's handle on its fork server: start it, ask it for services, stop it."""

    def __init__(self, log_path: Path, env: dict[str, str] | None = None):
        self.log_path = log_path
        self.env = env  # its own environment: without what only one service may hold (the model's key)
        self.process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._reader = None
        self._lock = threading.Lock()

    def start(self) -> None:
        from deskgate.procs import die_with_parent

        ours, theirs = socket.socketpair()
        try:
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "deskgate.forkserver", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent,  # noqa: PLW1509 - as for every child of the supervisor (stack.py)
                    env=self.env,
                )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock, self._reader = ours, ours.makefile("rb")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(
        self, name: str, data_dir: Path, out: Path, timeout: float = 60.0, tracked: frozenset[int] = frozenset(),
        env: dict[str, str] | None = None,
    ) -> ForkedProcess:
        """Fork service NAME, its stdout and stderr appended to OUT; it is this process's child when this returns.
        `tracked`: the services the caller already runs, which a failure here must leave alone.

        The first spawn waits for the fork server's imports (a second or two)."""
        from deskgate.procs import child_subreaper

        request = {
            "name": name,
            "data_dir": str(data_dir),
            "out": str(out),
            "supervisor": os.getpid(),
            "cwd": _cwd(),
            "env": dict(os.environ) if env is None else env,
        }
        with self._lock:
            if not self.alive():
                self.stop()
                self.start()
            was_subreaper = child_subreaper(True)
            try:
                try:
                    self._sock.settimeout(timeout)
                    self._sock.sendall(json.dumps(request).encode() + b"\n")
                    reply = json.loads(self._reader.readline() or b"null")
                except (OSError, ValueError) as exc:
                    self._abandon(tracked)
                    raise ForkServerError(f"the fork server did not answer: {exc}") from None
                pid = reply.get("pid") if isinstance(reply, dict) else None
                if not isinstance(pid, int) or pid <= 1 or pid in (os.getpid(), self.process.pid) or _parent_of(pid) not in (os.getpid(), None):
                    self._abandon(tracked)
                    error = reply.get("error", f"pid {pid!r}") if isinstance(reply, dict) else reply
                    raise ForkServerError(f"the fork server could not fork {name}: {error}")
                child = ForkedProcess(pid, ["deskgate", "service", name, "--data-dir", str(data_dir)])
                # The intermediate has exited before the reply, so the service is ours by now.
                deadline = time.monotonic() + 5
                while not child._reap(os.WNOHANG):
                    if time.monotonic() > deadline:
                        self._abandon(tracked)
                        raise ForkServerError(f"{name} (pid {child.pid}) was not handed to the supervisor")
                    time.sleep(0.001)
            finally:
                if not was_subreaper:
                    child_subreaper(False)
        return child

    def _abandon(self, tracked: frozenset[int]) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self.stop()
        # A service forked just before the fork server failed may already be ours: before
        # the caller starts another, none may be left running beside it.
        kill_untracked_services(tracked)

    def stop(self, timeout: float = 5.0) -> None:
        """Close its socket (it exits at end of input); kill it if it lingers."""
        for closable in (self._reader, self._sock):
            if closable is not None:
                closable.close()
        self._reader = self._sock = None
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None  # deleted: the service keeps the fork server's directory


def _parent_of(pid: int) -> int | None:
    """The parent pid of a live process, or None if it cannot be read (already reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def kill_untracked_services(tracked: set[int] = frozenset()) -> list[int]:
    """Kill and reap this process's children named dg-* (forked services) that are not `tracked`."""
    me, killed = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in tracked:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        comm = stat[stat.index(b"(") + 1 : stat.rindex(b")")]
        if comm.startswith(b"dg-") and _parent_of(int(entry)) == me:
            try:
                os.kill(int(entry), signal.SIGKILL)
                os.waitpid(int(entry), 0)
                killed.append(int(entry))
            except (ProcessLookupError, ChildProcessError):
                pass
    return killed


# -- the fork server's side -------------------------------------------------------------


@dataclass
class _Service:
    """What a forked process runs once it has left the fork server's loop."""

    request: dict
    intermediate: int

    def run(self) -> int:
        from deskgate.procs import die_with_parent, set_name

        supervisor = self.request["supervisor"]
        deadline = time.monotonic() + 10
        while os.getppid() == self.intermediate:  # until the intermediate has exited
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.0005)
        die_with_parent()
        if os.getppid() != supervisor:
            return 1  # adopted by someone else, or the supervisor is gone: never run unsupervised
        _redirect(self.request["out"])
        try:
            if self.request["cwd"] is not None:
                os.chdir(self.request["cwd"])
        except OSError:
            pass  # the supervisor's directory is gone: keep the fork server's, as an inherited one would be
        os.environ.clear()
        os.environ.update(self.request["env"])
        name, data_dir = self.request["name"], self.request["data_dir"]
        sys.argv = ["deskgate", "service", name, "--data-dir", data_dir]
        set_name(f"dg-{name}")
        gc.enable()

        from deskgate.paths import DataDir
        from deskgate.services import run_service

        run_service(name, DataDir.at(data_dir))
        return 0


def _redirect(out: str) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _fork(request: dict) -> int | _Service:
    """In the fork server: the service's pid. In the service: what it runs."""
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    intermediate = os.fork()
    if intermediate == 0:
        try:
            os.close(r)
            me = os.getpid()
            pid = os.fork()
        except BaseException:  # noqa: BLE001 - the intermediate never returns into the server's loop
            os._exit(1)
        if pid == 0:
            os.close(w)
            return _Service(request, me)
        try:
            os.write(w, str(pid).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        pid = fh.read()
    os.waitpid(intermediate, 0)
    if not pid:
        raise ForkServerError("fork failed")
    return int(pid)


def serve(fd: int) -> _Service | None:
    """Import PRELOAD, then fork a service for each request. Returns None in the fork server
    when the supervisor closes the socket, and the service to run in each forked service."""
    sock = socket.socket(fileno=fd)
    gc.disable()  # nothing collected until the fork: the shared pages stay untouched
    for module in PRELOAD:
        importlib.import_module(module)
    gc.freeze()  # what is imported now is never scanned by a child's collector, so its pages stay shared
    reader = sock.makefile("rb")
    try:
        for line in reader:
            try:
                result = _fork(json.loads(line))
            except Exception as exc:  # noqa: BLE001 - answered, and the server goes on
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            else:
                if isinstance(result, _Service):
                    return result
                reply = {"pid": result}
            sock.sendall(json.dumps(reply).encode() + b"\n")
    finally:
        # In a service: its copies of the fork server's socket, closed now while the
        # objects still own these fd numbers.
        reader.close()
        sock.close()
    return None


def main() -> int:
    service = serve(int(sys.argv[1]))
    return 0 if service is None else service.run()


if __name__ == "__main__":
    sys.exit(main())
