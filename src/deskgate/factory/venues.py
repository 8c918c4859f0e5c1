"""The factory's view of each real venue: the executor's latest look at it, reconciled
with the book, and whether it may take orders.

The executor reports each venue every `venues.health_seconds`
(factory.execution.venues.<VENUE>, signed). The factory reads those reports and
principals' acknowledgements (approvals.venues.<VENUE>, signed) once a second,
folds them into one record per venue (kept in state/venues.json), and sets
`beliefs.venue_health`, which the policy engine's `venue_health` check reads:

- no report since the factory started, or none for three periods: unhealthy
  ("unknown", "stale") — the executor may be down;
- the executor saw it unreachable, rate-limited past its budget, with a skewed clock
  or refusing our key: unhealthy, with what it saw;
- its balances differ from the book (plus the baseline a principal acknowledged) by more
  than `reconcile_tolerance_usd`: a review for a principal (shown on the Venues page);
  by more than `hold_above_usd`, or with open orders this desk never sent: staging for
  the venue is held until a principal acknowledges that review.

The fold is pure (`fold_observation`, `fold_ack`, `verdict`); the watch around it
reads the bus, checks signatures, persists and publishes factory.status.venue.<VENUE>.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import nats.errors
from pydantic import ValidationError

from deskgate.audit.keys import principal_signer
from deskgate.audit.signing import Kind, SignatureStatus, verify_headers
from deskgate.bus import subjects as S
from deskgate.bus.reader import ReadError, read_stream
from deskgate.clock import Clock
from deskgate.config import Mission
from deskgate.domain.venue import Mismatch, VenueAck, VenueObservation, VenueStatus
from deskgate.factory.outbox import Outbox
from deskgate.factory.people import Verifier
from deskgate.factory.state import FactoryState
from deskgate.paths import write_private
from deskgate.policy.beliefs import VenueProblem
from deskgate.portfolio.reconcile import reconcile

log = logging.getLogger("deskgate.factory")

VENUES_REFRESH_EVERY_S = 1.0
STALE_AFTER_PERIODS = 3


@dataclasses.dataclass(frozen=True)
class VenueRecord:
    """One venue, as kept on disk."""

    observation: dict | None = None  # the latest VenueObservation (JSON)
    baseline: dict[str, float] = dataclasses.field(default_factory=dict)  # held outside deskgate, acknowledged
    review: int | None = None  # the open review a principal must acknowledge
    review_opened_at: str | None = None  # with the number, what an acknowledgement must name
    reviews_opened: int = 0
    review_mismatches: tuple[dict, ...] = ()
    review_unknown_orders: tuple[str, ...] = ()
    held: bool = False
    mismatches: tuple[dict, ...] = ()  # as of the last reconciliation
    reconciled_at: str | None = None
    # Open orders on the account this desk did not send, which a principal acknowledged.
    acknowledged_orders: tuple[str, ...] = ()
    # What differed at the last reconciliation (assets; "orders" for open orders this desk
    # never sent): a difference counts only when the next reading, a period later, still
    # shows it. A fill on its way to the book when the venue was read differs once; a real
    # difference persists. An asset not read this time (an order of ours open on it) keeps
    # its place here.
    suspect: tuple[str, ...] = ()


# JSON keeps tuples as lists: these fields are read back as tuples.
_TUPLE_FIELDS = frozenset(f.name for f in dataclasses.fields(VenueRecord) if str(f.type).startswith("tuple"))


@dataclasses.dataclass(frozen=True)
class Cursors:
    observations: int = 0  # VENUES stream
    acks: int = 0  # RESPONSES stream (approvals.venues.>)


def _review_key(mismatches, unknown: bool, held: bool) -> tuple:
    """What a principal is shown: a review whose contents change is a new review."""
    return (tuple(sorted((m["asset"], round(m["difference"], 12)) for m in mismatches)), unknown, held)


def fold_observation(
    rec: VenueRecord, obs: VenueObservation, *, book: dict[str, float], prices: dict[str, float], assets: set[str],
    tolerance_usd: float, hold_above_usd: float,
) -> VenueRecord:
    """The record after one observation: reconciled when it carries balances."""
    rec = dataclasses.replace(rec, observation=obs.model_dump(mode="json"))
    if obs.balances is None:
        return rec
    strangers = [c for c in obs.unknown_orders if c not in rec.acknowledged_orders]
    found = reconcile(book, obs.balances, rec.baseline, prices, assets, tolerance_usd)
    differs = {m.asset for m in found} | ({"orders"} if strangers else set())
    not_read = {a for a in rec.suspect if a != "orders" and a not in obs.balances}
    confirmed = [m for m in found if m.asset in rec.suspect]
    unknown = bool(strangers) and "orders" in rec.suspect
    rec = dataclasses.replace(
        rec, mismatches=tuple(m.model_dump() for m in found), reconciled_at=obs.observed_at.isoformat(),
        suspect=tuple(sorted(differs | not_read)),
    )
    if not confirmed and not unknown:
        return rec
    shown = tuple(m.model_dump() for m in confirmed)
    held = unknown or any(m.difference_usd is None or m.difference_usd > hold_above_usd for m in confirmed)
    held = held or rec.held  # a hold is lifted by a principal only
    if rec.review is not None and _review_key(rec.review_mismatches, bool(rec.review_unknown_orders), rec.held) == _review_key(shown, unknown, held):
        return rec  # the open review still says what the venue says
    # A new review (or the open one changed): a new number, so an acknowledgement of what
    # a principal saw earlier cannot accept what they have not seen.
    return dataclasses.replace(
        rec,
        review=rec.reviews_opened + 1,
        review_opened_at=obs.observed_at.isoformat(),
        reviews_opened=rec.reviews_opened + 1,
        review_mismatches=shown,
        review_unknown_orders=tuple(strangers) if unknown else (),
        held=held,
    )


def fold_ack(rec: VenueRecord, ack: VenueAck) -> tuple[VenueRecord, str | None]:
    """The record after a principal's (verified) acknowledgement, or why it does not apply."""
    if rec.review is None:
        return rec, f"no review is open for {ack.venue}"
    if ack.review != rec.review or ack.opened_at != rec.review_opened_at:
        return rec, f"acknowledges review {ack.review} ({ack.opened_at}), but the open review of {ack.venue} is {rec.review} ({rec.review_opened_at})"
    baseline = dict(rec.baseline)
    for m in rec.review_mismatches:
        baseline[m["asset"]] = m["venue"] - m["book"]  # what the venue holds beyond the book, as the principal saw it
    acknowledged = tuple(sorted(set(rec.acknowledged_orders) | set(rec.review_unknown_orders)))
    return dataclasses.replace(rec, baseline=baseline, review=None, review_opened_at=None, review_mismatches=(), review_unknown_orders=(),
                               held=False, suspect=(), acknowledged_orders=acknowledged), None


def verdict(
    rec: VenueRecord, *, age_s: float | None, health_seconds: float, reconciled_age_s: float = 0.0, reconcile_seconds: float = 60.0
) -> tuple[str, VenueProblem | None]:
    """(state, problem): problem None means orders may be staged for the venue."""
    if rec.observation is None or age_s is None:
        return "unknown", VenueProblem("unknown", "no report from the executor yet", "a report every "
                                       f"{health_seconds:g} s", "the executor has not reported on this venue since the factory started")
    if age_s > STALE_AFTER_PERIODS * health_seconds:
        return "stale", VenueProblem("stale", f"last report {age_s:.0f} s ago", f"within {STALE_AFTER_PERIODS * health_seconds:g} s",
                                     "no report from the executor: it may be down")
    obs = rec.observation
    if obs["state"] == "healthy" and reconciled_age_s > STALE_AFTER_PERIODS * reconcile_seconds:
        return "stale", VenueProblem("stale", f"last reconciliation {reconciled_age_s:.0f} s ago",
                                     f"within {STALE_AFTER_PERIODS * reconcile_seconds:g} s",
                                     "the venue's balances have not been compared with the book lately")
    if obs["state"] != "healthy":
        return obs["state"], VenueProblem(obs["state"], obs["observed"], obs["limit"], obs["reason"] or obs["state"])
    if rec.held:
        what = ", ".join(f"{m['asset']} {m['difference']:+g}" for m in rec.review_mismatches) or "none"
        unknown = f"; {len(rec.review_unknown_orders)} open orders this desk never sent" if rec.review_unknown_orders else ""
        return "held", VenueProblem("held", f"differences {what}{unknown}", "acknowledged by a principal",
                                    f"the venue's balances differ from the book (review {rec.review}); "
                                    "staging is held until a principal acknowledges it")
    if rec.review is not None:
        return "mismatch", None
    return "healthy", None


def _age_of(stored_time: str) -> float:
    """Seconds since a JetStream stored timestamp (RFC 3339, nanoseconds); large when unreadable."""
    try:
        text = stored_time.rstrip("Z")
        head, _, frac = text.partition(".")
        at = datetime.fromisoformat(head).replace(tzinfo=timezone.utc)
        seconds = float(f"0.{frac}") if frac else 0.0
        return (datetime.now(timezone.utc) - at).total_seconds() - seconds
    except (ValueError, AttributeError):
        return 1e9


class VenueWatch:
    def __init__(self, path: Path, state: FactoryState, verifier: Verifier, mission: Mission, clock: Clock, outbox: Outbox):
        self.path = path
        self.state = state
        self.verifier = verifier
        self.mission = mission
        self.clock = clock
        self.outbox = outbox
        self.names = tuple(mission.venues.configured())
        self.records, self.cursors = self._read(path, self.names)
        self.received: dict[str, float] = {}  # monotonic time each venue's latest report was made (as stored), this run
        self.reconciled: dict[str, float] = {}  # monotonic time of each venue's latest reconciliation, this run
        self.started = time.monotonic()
        self.nc = None
        self._last_refresh = 0.0
        self._published: dict[str, tuple] = {}

    @staticmethod
    def _read(path: Path, names) -> tuple[dict[str, VenueRecord], Cursors]:
        try:
            data = json.loads(path.read_text())
            records = {n: VenueRecord(**{k: tuple(v) if k in _TUPLE_FIELDS else v for k, v in r.items()})
                       for n, r in data["records"].items()}
            cursors = Cursors(**data["cursors"])
        except FileNotFoundError:
            records, cursors = {}, Cursors()
        except (ValueError, TypeError, KeyError) as exc:
            # Unreadable: start over from the streams; every venue is unknown until reported, and
            # an open review is opened again by the next reconciliation that still differs.
            log.warning("SECURITY: %s is unreadable (%r); venue records are rebuilt from the bus", path, exc)
            records, cursors = {}, Cursors()
        for n in names:
            records.setdefault(n, VenueRecord())
        return records, cursors

    def _write(self) -> None:
        data = {"records": {n: dataclasses.asdict(r) for n, r in self.records.items()}, "cursors": dataclasses.asdict(self.cursors)}
        write_private(self.path, json.dumps(data))

    def _verdict(self, name: str) -> tuple[str, VenueProblem | None]:
        now, venues = time.monotonic(), self.mission.venues
        age = now - self.received[name] if name in self.received else None
        reconciled = now - self.reconciled.get(name, self.started)
        return verdict(self.records[name], age_s=age, health_seconds=venues.health_seconds, reconciled_age_s=reconciled,
                       reconcile_seconds=venues.reconcile_seconds)

    def apply_to_beliefs(self) -> None:
        self.state.beliefs.venue_health = {n: self._verdict(n)[1] for n in self.names}

    async def start(self, nc) -> None:
        self.nc = nc
        self.apply_to_beliefs()

    async def refresh_if_due(self) -> None:
        if not self.names or time.monotonic() - self._last_refresh < VENUES_REFRESH_EVERY_S:
            return
        self._last_refresh = time.monotonic()
        try:
            await self.refresh()
        except (ReadError, nats.errors.Error, OSError) as exc:
            log.warning("could not read the venues' reports: %s", exc)
        self.apply_to_beliefs()
        await self.publish()

    async def refresh(self) -> None:
        changed = False
        venues = self.mission.venues
        led = self.state.ledger
        async for m in read_stream(self.nc, "VENUES", "factory.execution.venues.>", start_seq=self.cursors.observations + 1):
            self.cursors = dataclasses.replace(self.cursors, observations=m.seq)
            changed = True
            if verify_headers(self.verifier, Kind.STATUS, m.data, m.headers, expect="executor") is not SignatureStatus.VALID:
                log.warning("SECURITY: a venue report at VENUES seq %d is not signed by the executor; ignored", m.seq)
                continue
            try:
                obs = VenueObservation.model_validate_json(m.data)
            except ValidationError:
                log.warning("an unreadable venue report at VENUES seq %d; ignored", m.seq)
                continue
            if obs.venue not in self.records or m.subject != S.venue_observation_subject(obs.venue):
                continue  # a venue no longer configured, or a report on another venue's subject
            book = {a: q for (a, v), q in led.holdings.items() if v == obs.venue}
            self.records[obs.venue] = fold_observation(
                self.records[obs.venue], obs, book=book, prices=dict(led.marks), assets=set(self.mission.marketdata.assets) | set(book),
                tolerance_usd=venues.reconcile_tolerance_usd,
                hold_above_usd=venues.hold_above_usd,
            )
            # Fresh by when the report was stored, not when it was read: a backlog read after a
            # restart says nothing about now.
            made = time.monotonic() - max(0.0, _age_of(m.time))
            self.received[obs.venue] = max(self.received.get(obs.venue, made), made)
            if obs.balances is not None:
                self.reconciled[obs.venue] = max(self.reconciled.get(obs.venue, made), made)
        async for m in read_stream(self.nc, "RESPONSES", "approvals.venues.>", start_seq=self.cursors.acks + 1):
            self.cursors = dataclasses.replace(self.cursors, acks=m.seq)
            changed = True
            ack, problem = self._verified_ack(m)
            if ack is None:
                log.warning("SECURITY: a venue acknowledgement at RESPONSES seq %d is refused: %s", m.seq, problem)
                continue
            self.records[ack.venue], problem = fold_ack(self.records[ack.venue], ack)
            if problem:
                log.warning("venue acknowledgement at seq %d ignored: %s", m.seq, problem)
            else:
                log.info("%s acknowledged review of %s: baseline %s", ack.principal, ack.venue, self.records[ack.venue].baseline)
        if changed:
            self._write()

    def _verified_ack(self, m) -> tuple[VenueAck | None, str]:
        try:
            ack = VenueAck.model_validate_json(m.data)
            signer = principal_signer(ack.principal)
        except ValueError as exc:
            return None, f"unreadable: {str(exc)[:200]}"
        if ack.venue not in self.records or m.subject != S.venue_ack_subject(ack.venue):
            return None, f"names venue {ack.venue!r} on {m.subject}"
        try:
            if verify_headers(self.verifier, Kind.VENUE_ACK, m.data, m.headers, expect=signer) is not SignatureStatus.VALID:
                return None, f"not signed with {ack.principal}'s current key"
            passkey = self.verifier.passkey_problem(ack.principal, Kind.VENUE_ACK, m.data, m.headers)
        except Exception as exc:  # noqa: BLE001 - a malformed accounts record refuses the ack, never stops the factory
            return None, f"cannot be checked ({exc!r})"
        return (None, passkey) if passkey else (ack, "")

    def status(self, name: str, now: datetime) -> VenueStatus:
        rec = self.records[name]
        state, problem = self._verdict(name)
        obs = rec.observation or {}
        return VenueStatus(
            venue=name, state=state, healthy=problem is None, at=now,
            observed=(problem.observed if problem else obs.get("observed", ""))[:500],
            limit=(problem.limit if problem else "")[:500], reason=(problem.reason if problem else "")[:1000],
            observed_at=obs.get("observed_at"), clock_skew_ms=obs.get("clock_skew_ms"),
            mismatches=[Mismatch(**m) for m in (rec.review_mismatches or rec.mismatches)],
            unknown_orders=list(rec.review_unknown_orders), review=rec.review, review_opened_at=rec.review_opened_at, held=rec.held,
            baseline=rec.baseline,
            reconciled_at=rec.reconciled_at,
        )

    async def publish(self, force: bool = False) -> None:
        """factory.status.venue.<VENUE>, when what a principal would see has changed."""
        if self.outbox.js is None:
            return
        now = self.clock.now()
        for name in self.names:
            st = self.status(name, now)
            key = (st.state, st.healthy, st.review, st.held, st.observed, tuple(m.asset for m in st.mismatches), st.reconciled_at)
            if not force and self._published.get(name) == key:
                continue
            try:
                await self.outbox.publish_now(S.venue_status_subject(name), st.to_bytes())
                self._published[name] = key
            except (nats.errors.Error, OSError) as exc:
                log.warning("could not publish the status of %s: %s", name, exc)
