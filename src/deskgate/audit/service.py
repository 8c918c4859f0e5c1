"""The audit service: reads every stream of the decision chain, appends to the log.

It connects with the read-only observer role and publishes nothing, so it can neither
lose nor invent a message of the chain; what it writes is the log in its own store (with
standbys, its lease too: store_lease.py). Each stream is read from where the log says it stopped, in order, and
each message is recorded with the signature it arrived with and that signature's
status, so a forged or unsigned message is kept, as such, not dropped.
"""

from __future__ import annotations

import asyncio
import logging

import nats.errors
import sqlalchemy.exc

from deskgate.audit.chain import EXPECTED_SIGNER
from deskgate.audit.keys import KeyStore, check_signer
from deskgate.audit.log import AuditLog, Record
from deskgate.audit.signing import SIGNATURE_HEADER, SIGNER_HEADER, Kind, verify
from deskgate.bus import subjects as S
from deskgate.bus.breaker import BREAKER_STREAM
from deskgate.bus.connect import SecurityEvents, connect_as
from deskgate.bus.lease import LeaseLost, holder_id
from deskgate.bus.reader import ReadError, StoredMessage, read_stream
from deskgate.clock import Clock, SystemClock
from deskgate.config import Mission
from deskgate.domain.jsonkeys import without_repeats
from deskgate.paths import DataDir
from deskgate.standby import stand_by
from deskgate.store_lease import shared

log = logging.getLogger("deskgate.audit")

# (stream, subject filter, kind): what the log records, in the order it is read.
SOURCES: tuple[tuple[str, str, Kind], ...] = (
    ("INSIGHTS", "consciousness.insights.>", Kind.INSIGHT),
    ("DIRECTIVES", "consciousness.directives.>", Kind.DIRECTIVE),
    ("STATUS", "factory.status.policy.>", Kind.EVALUATION),
    ("APPROVALS", "approvals.queue.directive.>", Kind.STAGED),
    ("RESPONSES", "approvals.response.>", Kind.APPROVAL),
    ("STATUS", "factory.status.approval.>", Kind.OUTCOME),
    ("ORDERS", "factory.execution.orders.>", Kind.ORDER),
    ("FILLS", "factory.execution.fills.>", Kind.FILL),
    (BREAKER_STREAM, f"$KV.{S.BREAKER_BUCKET}.>", Kind.BREAKER),
    ("QUARANTINE", S.QUARANTINE_SUBJECT, Kind.QUARANTINE),
    ("QUARANTINE", S.RELEASE_SUBJECT, Kind.RELEASE),
    ("RESPONSES", "approvals.venues.>", Kind.VENUE_ACK),
)

IDLE_CHECKPOINT_SECONDS = 2.0


def ref_of(kind: Kind, payload: bytes) -> str | None:
    """The directive (or breaker trip) a message belongs to, for `audit trace`; none when
    the message gives its id twice (it would belong to two)."""
    try:
        data = without_repeats(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    if kind is Kind.STAGED:
        data = data.get("directive") if isinstance(data.get("directive"), dict) else {}
    if kind is Kind.BREAKER:
        ref = data.get("trip_id") or data.get("resets_trip_id")
    elif kind in (Kind.QUARANTINE, Kind.RELEASE):
        ref = data.get("news_id")
    elif kind is Kind.VENUE_ACK:
        ref = data.get("venue")
    else:
        ref = data.get("directive_id")
    return ref[:128] if isinstance(ref, str) and ref else None


def record_of(keys: KeyStore, kind: Kind, m: StoredMessage, stream: str) -> Record:
    """One message as an entry. Whoever published it chose its headers and bytes: a signer
    or signature that cannot be one is recorded as absent, and bytes a database cannot
    hold as text (invalid UTF-8, NUL) are replaced; the status is computed on exactly
    what is stored, so verifying the entry later gives the same answer."""
    h = m.headers or {}
    signer, signature = h.get(SIGNER_HEADER), h.get(SIGNATURE_HEADER)
    try:
        check_signer(signer or "")
        ok_headers = signature is not None and len(signature) <= 200
    except ValueError:
        ok_headers = False
    if not ok_headers:
        signer = signature = None
    payload = m.data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    status = verify(keys, kind, payload.encode(), signer, signature, expect=EXPECTED_SIGNER.get(kind))
    return Record(kind.value, m.subject, ref_of(kind, payload.encode()), f"{stream}:{m.seq}", signer, signature, status.value, payload)


class AuditService:
    def __init__(self, mission: Mission, data_dir: DataDir, *, clock: Clock | None = None, poll_seconds: float = 0.25):
        self.mission = mission
        self.data_dir = data_dir
        self.clock = clock or SystemClock()
        self.poll_seconds = poll_seconds
        self.keys = KeyStore.for_desk(data_dir)
        # One database with the factory's in a shared deployment: the audit tables have their own names.
        self.log = AuditLog.open(data_dir, mission.storage.url)
        self.events = SecurityEvents()
        self._stop = asyncio.Event()
        self.nc = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        self.nc, _ = await connect_as(self.data_dir, S.Role.OBSERVER, events=self.events, name="deskgate-audit")
        active = None
        try:
            if self.mission.standby.enabled:
                # One of several audit services: only the lease holder appends, after what the last one
                # did. The lease is in the log's store: the observer role writes nothing in the bus.
                if not shared(self.log.engine):
                    raise SystemExit("standby.enabled needs the audit log in the shared store (storage.url)")
                lease = self.log.new_lease(holder_id("audit", str(self.data_dir.root)))
                active = await stand_by(lease, self._stop, ready)
                if active is None:
                    return
                # Reading a long chain back takes a while: off the loop, so the lease is renewed meanwhile.
                await asyncio.to_thread(self.log.take_over, lease)
            elif (epoch := self.log.fence_epoch()) > 0:
                raise SystemExit(f"this audit log was last written by a standby audit service (lease epoch {epoch}): one "
                                 "without standby.enabled would append beside whichever holds the lease; set standby.enabled "
                                 "on every audit service")
            if ready is not None:
                ready.set()
            log.info("audit log at %d entries", self.log.size)
            await (active.run(self._follow()) if active is not None else self._follow())
            self._checkpoint_at_stop()
            if active is not None:
                await active.end()
        finally:
            if active is not None and not active.keeper.done():
                active.keeper.cancel()  # ended by an error: the lease expires by itself
            self.log.close()
            try:
                await self.nc.drain()
            except Exception:
                pass

    def _checkpoint_at_stop(self) -> None:
        try:
            self.log.checkpoint(self.clock.now())
        except (sqlalchemy.exc.SQLAlchemyError, LeaseLost) as exc:
            log.error("could not sign the last checkpoint: %s", exc)

    async def _follow(self) -> None:
        """Read and append until asked to stop; a quiet desk still gets its tail signed."""
        idle_since: float | None = None
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                added = await self.read_once()
            except sqlalchemy.exc.SQLAlchemyError as exc:
                # The log's database refused a write: nothing of it was committed and the
                # cursors did not move, so the same messages are read again after a pause.
                log.error("audit log write failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            if added:
                idle_since = None
            elif idle_since is None:
                idle_since = loop.time()
            elif loop.time() - idle_since >= IDLE_CHECKPOINT_SECONDS:
                try:
                    self.log.checkpoint(self.clock.now())
                except sqlalchemy.exc.SQLAlchemyError as exc:
                    log.error("could not sign a checkpoint yet: %s", exc)
                idle_since = loop.time()
            if not added:
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=self.poll_seconds)
                except asyncio.TimeoutError:
                    pass

    async def read_once(self) -> int:
        """Read every source from its cursor to its end; returns entries appended."""
        added = 0
        for stream, subject, kind in SOURCES:
            name = f"{stream}:{subject}"
            after = self.log.cursor(name)
            batch = []
            last = after
            try:
                async for m in read_stream(self.nc, stream, subject, start_seq=after + 1):
                    batch.append(record_of(self.keys, kind, m, stream))
                    last = m.seq
                    if len(batch) >= 500:
                        added += self.log.append(batch, self.clock.now(), cursor=(name, last))
                        batch = []
            except (ReadError, nats.errors.Error, asyncio.TimeoutError) as exc:
                log.warning("could not read %s %s yet: %s", stream, subject, exc)
            if batch or last != after:
                added += self.log.append(batch, self.clock.now(), cursor=(name, last))
        return added

