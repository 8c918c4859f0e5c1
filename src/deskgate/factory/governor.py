"""The Governor's hold: the lowest damping the agents reported, kept until a principal clears it.

The agents publish the Governor's state, counted only when signed by the desk
agent's current key (any agent identity may publish on the insights subjects).
They cannot lift a damping on their own: the factory holds the lowest damping it
sees (on disk, across restarts) until a principal's clear appears on
approvals.governor.clear, which only the command center may publish. A drifting state that says it has applied every clear read so
far (`applied_clear_seq`, stream order, no clocks) is a new drift and damps again;
one published before the agents applied the latest clear does not. The factor is
always in (0, 1]: it can only lower confidence. The hold is published on
factory.status.governor, so the Command Center can offer the clear.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import nats.errors

from deskgate.audit.keys import principal_signer
from deskgate.audit.signing import Kind, SignatureStatus, verify_headers
from deskgate.bus import subjects as S
from deskgate.bus.reader import ReadError, read_stream
from deskgate.clock import Clock
from deskgate.config import Mission
from deskgate.domain.governor import GOVERNOR_SIGNER, GovernorClear, GovernorHold, GovernorState, signed_governor_state
from deskgate.factory.outbox import Outbox
from deskgate.factory.people import Verifier
from deskgate.factory.state import FactoryState
from deskgate.paths import write_private

log = logging.getLogger("deskgate.factory")

GOVERNOR_REFRESH_EVERY_S = 1.0  # housekeeping's read; at once when a Governor state or clear arrives
GOVERNOR_STALE_AFTER_S = 2.0  # a directive or decision never meets a damping read longer ago than this
# A read waits this long for a stream leader (an election takes seconds): the directive and
# response loops wait on it, so a failed read is tried again at the next batch instead, and
# reads failing for GOVERNOR_FAIL_CLOSED_AFTER_S damp at the configured level.
GOVERNOR_READ_WAIT_S = 2.0
GOVERNOR_FAIL_CLOSED_AFTER_S = 30.0  # reads failing this long: the configured damping, until one succeeds
SEEN_CLEARS = 1000  # clear ids remembered against replays (a clear is a person's rare act)


@dataclass(frozen=True)
class HoldRecord:
    """What `governor.json` keeps: how far the two streams were read, and the hold."""

    state_seq: int = 0  # INSIGHTS: the last Governor state read
    clear_seq: int = 0  # RESPONSES: the last clear read
    hold: float | None = None  # the damping held, or None: not damping
    held_since_seq: int = 0  # the state that set the hold; a clear must name it
    counted_clear_seq: int = 0  # the last clear that lifted the hold
    seen_clears: tuple[str, ...] = ()  # clear ids used, against replays

    @property
    def damping(self) -> float:
        return self.hold or 1.0

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "seen_clears": list(self.seen_clears)})

    @classmethod
    def read(cls, path: Path, fail_closed_at: float) -> HoldRecord:
        """The record on disk; unreadable, it fails closed at the configured damping until a principal's clear."""
        fresh = {f.name for f in dataclasses.fields(cls)}
        try:
            g = json.loads(path.read_text())
            if isinstance(g, dict) and set(g) == fresh - {"counted_clear_seq", "seen_clears"}:
                # Written before clears were checked for replays: every clear read so far counted.
                g = {**g, "counted_clear_seq": g["clear_seq"], "seen_clears": []}
            ok = (
                isinstance(g, dict)
                and set(g) == fresh
                and all(isinstance(g[k], int) and g[k] >= 0 for k in ("state_seq", "clear_seq", "held_since_seq", "counted_clear_seq"))
                and (g["hold"] is None or (isinstance(g["hold"], (int, float)) and 0 < g["hold"] < 1))
                and isinstance(g["seen_clears"], list) and all(isinstance(c, str) for c in g["seen_clears"])
            )
            if not ok:
                raise ValueError("unexpected contents")
            return cls(**{**g, "seen_clears": tuple(g["seen_clears"])})
        except FileNotFoundError:
            return cls()
        except (ValueError, TypeError):
            log.warning("%s is unreadable; holding the Governor's damping until a principal's clear", path)
            return cls(hold=fail_closed_at)


def clear_refusal(clear: GovernorClear, g: HoldRecord) -> str | None:
    """Why a signed clear must not lift the hold: used before (a replay), or made for a
    hold other than the one held now (the principal looked at something else)."""
    if clear.clear_id in g.seen_clears:
        return "its id was used before (a replayed clear)"
    if g.hold is not None and clear.hold_seq != g.held_since_seq:
        return f"it clears the hold set at INSIGHTS seq {clear.hold_seq}, not the one held now (seq {g.held_since_seq})"
    return None


@dataclass(frozen=True)
class Fold:
    record: HoldRecord
    ignored: int  # clears and states read but not applied (unsigned, unreadable, replayed, stale)
    warnings: list[str]


def fold_hold(g: HoldRecord, clears: list[tuple[int, GovernorClear | None]], states: list[tuple[int, GovernorState | None]]) -> Fold:
    """The hold after these clears (None: not a principal's) and states (None: unreadable), in stream order."""
    ignored, warnings = 0, []
    for seq, clear in clears:
        g = dataclasses.replace(g, clear_seq=seq)
        if clear is None:
            ignored += 1  # only the command center can publish here; counted, not applied
            continue
        stale = clear_refusal(clear, g)
        g = dataclasses.replace(g, seen_clears=(*g.seen_clears, clear.clear_id)[-SEEN_CLEARS:])  # used, whatever came of it
        if stale:
            warnings.append(f"SECURITY: the Governor clear {clear.clear_id} at seq {seq} is not applied: {stale}")
            ignored += 1
            continue
        g = dataclasses.replace(g, counted_clear_seq=seq, hold=None, held_since_seq=0)
    for seq, st in states:
        g = dataclasses.replace(g, state_seq=seq)
        if st is None:
            ignored += 1
            continue
        if st.damping >= 1.0 or st.applied_clear_seq < g.counted_clear_seq:
            continue  # not damping, or a drift a principal cleared that the agents had not yet applied
        if g.hold is None or st.damping < g.hold:
            g = dataclasses.replace(g, hold=st.damping, held_since_seq=seq)
    return Fold(g, ignored, warnings)


class GovernorWatch:
    def __init__(self, path: Path, state: FactoryState, verifier: Verifier, mission: Mission, clock: Clock, outbox: Outbox, stats: dict):
        self.path = path
        self.state = state
        self.verifier = verifier
        self.mission = mission
        self.clock = clock
        self.outbox = outbox
        self.stats = stats
        self.record = HoldRecord.read(path, mission.agents.governor.damping)
        self.nc = None
        self._watch: list = []  # live subscriptions that only say "the Governor changed"
        self._lock = asyncio.Lock()
        self._stale = True
        self._reconnects = 0
        self._read_at = 0.0  # the last successful read
        self._tried_at = 0.0  # the last attempt
        self._failing_since: float | None = None  # reads failing since (monotonic), or None
        self._fail_closed: float | None = None  # the damping applied because reads keep failing

    async def start(self, nc) -> None:
        self.nc = nc
        self._watch = [await nc.subscribe(S.GOVERNOR_STATE_SUBJECT), await nc.subscribe(S.GOVERNOR_CLEAR_SUBJECT)]

    async def stop(self) -> None:
        for sub in self._watch:
            await sub.unsubscribe()

    async def up_to_date(self) -> None:
        """Refresh the damping when something may have changed: a state or a clear arrived
        live (the broker delivers it to this connection before any directive published after it), a
        reconnect may have missed one, the last read failed, or no read succeeded for
        `GOVERNOR_STALE_AFTER_S`. One refresh at a time: the directive and response loops both
        ask. The read once a second, in case a signal was lost, is housekeeping's
        (`refresh_if_due`), so it does not delay a directive; the bound here holds when
        housekeeping is late."""
        async with self._lock:
            watching = [s for s in self._watch if s.pending_msgs]
            reconnects = self.nc.stats["reconnects"] if self.nc else 0
            if (
                not watching
                and not self._stale
                and reconnects == self._reconnects
                and time.monotonic() - self._read_at < GOVERNOR_STALE_AFTER_S
            ):
                return
            for sub in watching:  # a signal only: the streams are the record, read below
                while sub.pending_msgs:
                    await sub.next_msg(timeout=0.1)
            await self._read(reconnects)

    async def refresh_if_due(self) -> None:
        """Housekeeping's read, once a second (after a failure too: no faster)."""
        now = time.monotonic()
        if now - max(self._read_at, self._tried_at) < GOVERNOR_REFRESH_EVERY_S:
            return
        async with self._lock:
            await self._read(self.nc.stats["reconnects"] if self.nc else 0)

    async def _read(self, reconnects: int) -> None:
        self._tried_at = time.monotonic()
        self._stale = not await self.refresh()
        if not self._stale:
            self._reconnects = reconnects
            self._read_at = time.monotonic()

    async def refresh(self) -> bool:
        """Read every Governor state and clear published since the last read; False if the bus could not be read."""
        g = self.record
        try:
            clears, states = await asyncio.gather(  # two reads, one round trip's wait
                self._signed_clears(g.clear_seq),
                self._states(g.state_seq),
            )
        except (ReadError, nats.errors.Error, asyncio.TimeoutError) as exc:
            if self._fail_closed_if_long(exc):
                await self.publish()
            return False
        self._failing_since = None
        if self._fail_closed is not None:
            self._fail_closed = None
            log.warning("the Governor is readable again; the fail-closed damping ends")
            await self.publish()
        fold = fold_hold(g, clears, states)
        for warning in fold.warnings:
            log.warning(warning)
        self.stats["bad_governor_states"] += fold.ignored
        self.record = fold.record
        if fold.record != g:
            write_private(self.path, fold.record.to_json())
            if fold.record.hold != g.hold:
                log.info("Governor damping %s", f"held at {fold.record.hold:g}" if fold.record.hold else "lifted by a principal's clear")
                await self.publish()
        self.state.beliefs.confidence_damping = fold.record.damping
        return True

    def _fail_closed_if_long(self, exc: Exception) -> bool:
        """A read that keeps failing (a state that cannot be checked, a bus away) must not
        leave the desk undamped for ever: after GOVERNOR_FAIL_CLOSED_AFTER_S the damping is
        the configured one, as for an unreadable governor.json, until a read succeeds.
        True when that starts now (the hold is published again, saying so)."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        beliefs = self.state.beliefs
        closed = self.mission.agents.governor.damping
        if now - self._failing_since >= GOVERNOR_FAIL_CLOSED_AFTER_S and beliefs.confidence_damping > closed:
            beliefs.confidence_damping = self._fail_closed = closed
            log.warning("the Governor has not been readable for %.0f s (%s); damping x%g until it is", now - self._failing_since, exc, closed)
            return True
        log.warning("could not read the Governor (%s); keeping damping %g", exc, beliefs.confidence_damping)
        return False

    async def _states(self, after: int) -> list:
        """States, each only if the desk's agent signed it with its current key (None: counted, not applied).

        Read from the stream's leader (`current`): the live copy that prompts this read comes from
        the leader, and a follower that has not stored that state yet would answer "nothing new",
        so a directive published after a drift would be evaluated undamped."""
        out = []
        async with aclosing(read_stream(self.nc, "INSIGHTS", S.GOVERNOR_STATE_SUBJECT, start_seq=after + 1, current=True,
                                        timeout=GOVERNOR_READ_WAIT_S)) as stored:
            async for m in stored:
                try:
                    state = signed_governor_state(self.verifier, m.data, m.headers)
                except Exception as exc:  # noqa: BLE001 - e.g. the accounts database busy: read it again later, never skip it
                    raise ReadError(f"the Governor state at INSIGHTS seq {m.seq} cannot be checked now ({exc!r})") from exc
                if state is None:
                    log.warning("SECURITY: a Governor state at INSIGHTS seq %d is not signed by %s's current key; not counted", m.seq, GOVERNOR_SIGNER)
                out.append((m.seq, state))
        return out

    async def _signed_clears(self, after: int) -> list:
        """Clears, each only if signed with the key of the principal it names; from the stream's
        leader, as the states are, so a clear and the states it follows are read alike."""
        out = []
        async for m in read_stream(self.nc, "RESPONSES", S.GOVERNOR_CLEAR_SUBJECT, start_seq=after + 1, current=True,
                                   timeout=GOVERNOR_READ_WAIT_S):
            try:
                clear = GovernorClear.model_validate_json(m.data)
                signer = principal_signer(clear.principal)
            except ValueError:
                out.append((m.seq, None))
                continue
            try:
                unsigned = (
                    verify_headers(self.verifier, Kind.GOVERNOR_CLEAR, m.data, m.headers, expect=signer) is not SignatureStatus.VALID
                    or self.verifier.passkey_problem(clear.principal, Kind.GOVERNOR_CLEAR, m.data, m.headers)
                )
            except Exception as exc:  # noqa: BLE001 - a malformed accounts record refuses the clear, never stops the factory
                log.warning("SECURITY: the Governor clear at seq %d cannot be checked (%r)", m.seq, exc)
                unsigned = True
            if unsigned:
                log.warning("SECURITY: a Governor clear at seq %d is not signed by %s; ignored", m.seq, clear.principal)
                out.append((m.seq, None))
                continue
            out.append((m.seq, clear))
        return out

    async def publish(self) -> None:
        g = self.record
        hold = GovernorHold(
            damping=g.damping, held_since_seq=g.held_since_seq, clears_read=g.clear_seq, fail_closed_damping=self._fail_closed, at=self.clock.now()
        )
        try:
            await self.outbox.publish_now(S.GOVERNOR_HOLD_SUBJECT, hold.to_bytes())
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            log.warning("could not publish the Governor hold: %s", exc)
