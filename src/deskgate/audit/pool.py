"""Checking many signatures at once, on every core.

Verifying Ed25519 signatures bounds `deskgate audit verify`: one core checks about
17,000 a second. Here only the equations go to worker processes, in chunks;
reading keys and deciding each status (`signing.prepare` and `signing.settle`)
stay in the calling process and run in order, so a pooled run gives exactly the
answers a serial one does, and the caller keeps the rest of the work (the hash
chain, the Merkle tree) running beside the workers.

Workers are forked only from a process with no other thread and no event loop
running: fork starts them in milliseconds and runs nothing of `__main__` again, but
a forked child inherits every lock another thread held at that moment, and an
asyncio service's wakeup descriptors. Anywhere else they start with forkserver
(spawn off Unix), which re-imports the main module in each worker, so a script
that verifies from a thread or a loop needs the usual `if __name__ == "__main__":`.
Starting workers costs up to a fraction of a second, so a stream shorter than
`POOL_ABOVE` signatures is checked in the calling process. If the workers cannot
start or die, the rest is checked in the calling process too: slower, same answers.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import chain, islice
from typing import NamedTuple, TypeVar

from deskgate.audit.ed25519 import Check, holds_all
from deskgate.audit.keys import DecidingKeys, KeyStore, PublicKeys
from deskgate.audit.signing import Kind, SignatureStatus, prepare, settle, verify

log = logging.getLogger("deskgate.audit.pool")

T = TypeVar("T")
Keys = KeyStore | DecidingKeys | PublicKeys

# Below this many signatures a pool costs more to start than it saves.
POOL_ABOVE = 5_000
# Signatures per task: large enough that handing it over (a few thread wake-ups in this
# process, each a wait for a core the workers are using) is cheap beside checking it
# (about 60 ms of work), small enough that the workers start early and end together.
CHUNK = 1000


class Signed(NamedTuple):
    """A signed message to check: `signing.verify`'s arguments."""

    kind: Kind | str
    payload: bytes
    signer: str | None
    signature: str | None
    expect: str | tuple[str, ...] | None = None


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class SignaturePool:
    """Worker processes that answer `ed25519.Check`s, while it is open. A service that
    verifies all day keeps one; `verify_stream` opens one for a single long stream."""

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or cores())
        # Ctrl-C is the caller's to handle: it closes the pool, and the workers end quietly.
        self._executor = ProcessPoolExecutor(
            self.workers, mp_context=_start_method(), initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)
        )
        # Start the workers now: a forked pool forks at its first task, and a service may
        # have started threads or its event loop by then.
        self.submit([])

    def submit(self, checks: list[Check]) -> Future[list[bool]]:
        try:
            return self._executor.submit(holds_all, [tuple(c) for c in checks])
        except (BrokenProcessPool, RuntimeError, OSError) as exc:  # dead workers, or no process could start
            return _answered_here(checks, exc)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> SignaturePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _start_method() -> multiprocessing.context.BaseContext:
    """fork where it is safe (see the module's docstring), else forkserver, else spawn."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and not _loop_running():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _answered_here(checks: list[Check], why: BaseException) -> Future[list[bool]]:
    log.warning("signature workers unavailable (%s); checking in this process", why)
    done: Future[list[bool]] = Future()
    done.set_result(holds_all(checks))
    return done


def _answers(future: Future[list[bool]], checks: list[Check]) -> list[bool]:
    try:
        return future.result()
    except BrokenProcessPool as exc:  # a worker was killed (out of memory, say): this chunk again, here
        return _answered_here(checks, exc).result()


def verify_stream(
    keys: Keys,
    items: Iterable[T],
    signed: Callable[[T], Signed | None],
    *,
    workers: int | None = None,
    pool_above: int = POOL_ABOVE,
    chunk: int = CHUNK,
) -> Iterator[tuple[T, SignatureStatus | None]]:
    """Each item with its signature's status, in order, exactly as `signing.verify` gives
    it; `signed(item)` None means nothing to check (status None). Up to `pool_above`
    items are read ahead to see whether a pool is worth starting; with one, a few chunks
    more. The pool ends with the stream, or when the caller closes it early."""
    it = iter(items)
    workers = workers or cores()
    head = list(islice(it, pool_above)) if workers > 1 else []
    if workers <= 1 or len(head) < pool_above:
        for item in chain(head, it):
            yield item, _verify_here(keys, signed(item))
        return
    try:
        pool = SignaturePool(workers)
    except OSError as exc:  # no semaphores or no processes in this sandbox
        log.warning("cannot start signature workers (%s); checking in this process", exc)
        for item in chain(head, it):
            yield item, _verify_here(keys, signed(item))
        return
    # Thousands of entries are in flight at once, and each full pass of the cyclic garbage
    # collector walks them all (6-19 µs an entry on this VM): pause it while the pool runs.
    # Nothing here makes reference cycles, so nothing waits for it; it resumes when the stream ends.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with pool:
            yield from _pooled(keys, chain(head, it), signed, pool, chunk)
    finally:
        if collecting:
            gc.enable()


def _verify_here(keys: Keys, s: Signed | None) -> SignatureStatus | None:
    return None if s is None else verify(keys, s.kind, s.payload, s.signer, s.signature, expect=s.expect)


_Batch = list[tuple[object, Signed | None, SignatureStatus | Check | None]]


def _pooled(keys: Keys, items: Iterator[T], signed, pool: SignaturePool, chunk: int) -> Iterator[tuple[T, SignatureStatus | None]]:
    """Prepare each item here, send the chunk's equations, and yield the oldest chunk's
    answers once more than two chunks per worker are out, so no worker waits for work."""
    window: deque[tuple[_Batch, list[Check], Future[list[bool]]]] = deque()
    batch: _Batch = []

    def send() -> None:
        checks = [step for _, _, step in batch if isinstance(step, Check)]
        window.append((list(batch), checks, pool.submit(checks)))
        batch.clear()

    for item in items:
        s = signed(item)
        step = None if s is None else prepare(keys, s.kind, s.payload, s.signer, s.signature, expect=s.expect)
        batch.append((item, s, step))
        if len(batch) >= chunk:
            send()
            while len(window) > 2 * pool.workers:
                yield from _receive(keys, *window.popleft())
    if batch:
        send()
    while window:
        yield from _receive(keys, *window.popleft())


def _receive(keys: Keys, batch: _Batch, checks: list[Check], future: Future[list[bool]]):
    answers = iter(_answers(future, checks))
    for item, s, step in batch:
        yield item, settle(keys, s.signer, step, next(answers)) if isinstance(step, Check) else step


def verify_many(keys: Keys, requests: Sequence[Signed], *, workers: int | None = None, pool_above: int = POOL_ABOVE) -> list[SignatureStatus]:
    """Each request's status, as `signing.verify` gives it, on every core when there are
    enough of them (a pool started and stopped for this call)."""
    return [status for _, status in verify_stream(keys, requests, lambda r: r, workers=workers, pool_above=pool_above)]


async def verify_many_async(keys: Keys, requests: Sequence[Signed], pool: SignaturePool | None = None) -> list[SignatureStatus]:
    """`verify_many` off the event loop, for a service. Keys are read and statuses decided
    here on the loop, as `verify` does (a key disabled a moment ago is already refused);
    only the equations leave it: to `pool`'s processes, split among them, or without a
    pool to one thread (libsodium lets go of the GIL while it checks, so the loop goes on
    serving; a pool also spares the loop the GIL hand-offs when it is busy)."""
    steps = [prepare(keys, r.kind, r.payload, r.signer, r.signature, expect=r.expect) for r in requests]
    checks = [s for s in steps if isinstance(s, Check)]
    if pool is None:
        answered = [await asyncio.to_thread(holds_all, checks)]
    else:
        size = -(-len(checks) // pool.workers) or 1
        parts = [checks[i : i + size] for i in range(0, len(checks), size)]
        try:
            answered = await asyncio.gather(*(asyncio.wrap_future(pool.submit(part)) for part in parts))
        except BrokenProcessPool as exc:  # a worker was killed: answer here, as verify would
            answered = [_answered_here(part, exc).result() for part in parts]
    answers = iter([a for part in answered for a in part])
    return [settle(keys, r.signer, s, next(answers)) if isinstance(s, Check) else s for r, s in zip(requests, steps)]
