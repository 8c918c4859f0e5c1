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
from datetime import datetime
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
    reviews_opened: int = 0
    review_mismatches: tuple[dict, ...] = ()
    review_unknown_orders: tuple[str, ...] = ()
    held: bool = False
    mismatches: tuple[dict, ...] = ()  # as of the last reconciliation
    reconciled_at: str | None = None
    # What differed at the last reconciliation (assets, unknown orders): a difference counts
    # only when the next one, a period later, still shows it. A fill on its way to the book
    # when the venue was read differs once; a real difference persists.
    suspect: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Cursors:
    observations: int = 0  # VENUES stream
    acks: int = 0  # RESPONSES stream (approvals.venues.>)


def fold_observation(
    rec: VenueRecord, obs: VenueObservation, *, book: dict[str, float], prices: dict[str, float], assets: set[str],
    tolerance_usd: float, hold_above_usd: float,
) -> VenueRecord:
    """The record after one observation: reconciled when it carries balances."""
    rec = dataclasses.replace(rec, observation=obs.model_dump(mode="json"))
    if obs.balances is None:
        return rec
    found = reconcile(book, obs.balances, rec.baseline, prices, assets | set(obs.balances), tolerance_usd)
    differs = tuple(sorted({m.asset for m in found} | {f"order:{c}" for c in obs.unknown_orders}))
    confirmed = bool(differs) and set(differs) <= set(rec.suspect)
    rec = dataclasses.replace(
        rec, mismatches=tuple(m.model_dump() for m in found), reconciled_at=obs.observed_at.isoformat(), suspect=differs
    )
    if not confirmed:
        return rec
    serious = bool(obs.unknown_orders) or any(m.difference_usd is None or m.difference_usd > hold_above_usd for m in found)
    if rec.review is None:
        rec = dataclasses.replace(
            rec,
            review=rec.reviews_opened + 1,
            reviews_opened=rec.reviews_opened + 1,
            review_mismatches=tuple(m.model_dump() for m in found),
            review_unknown_orders=tuple(obs.unknown_orders),
            held=serious,
        )
    elif serious and not rec.held:
        rec = dataclasses.replace(rec, held=True)  # it grew past the hold while waiting
    return rec


def fold_ack(rec: VenueRecord, ack: VenueAck) -> tuple[VenueRecord, str | None]:
    """The record after a principal's (verified) acknowledgement, or why it does not apply."""
    if rec.review is None:
        return rec, f"no review is open for {ack.venue}"
    if ack.review != rec.review:
        return rec, f"acknowledges review {ack.review}, but the open review of {ack.venue} is {rec.review}"
    baseline = dict(rec.baseline)
    for m in rec.review_mismatches:
        baseline[m["asset"]] = m["venue"] - m["book"]  # what the venue holds beyond the book, as the principal saw it
    return dataclasses.replace(rec, baseline=baseline, review=None, review_mismatches=(), review_unknown_orders=(), held=False), None


def verdict(rec: VenueRecord, *, age_s: float | None, health_seconds: float) -> tuple[str, VenueProblem | None]:
    """(state, problem): problem None means orders may be staged for the venue."""
    if rec.observation is None or age_s is None:
        return "unknown", VenueProblem("unknown", "no report from the executor yet", "a report every "
                                       f"{health_seconds:g} s", "the executor has not reported on this venue since the factory started")
    if age_s > STALE_AFTER_PERIODS * health_seconds:
        return "stale", VenueProblem("stale", f"last report {age_s:.0f} s ago", f"within {STALE_AFTER_PERIODS * health_seconds:g} s",
                                     "no report from the executor: it may be down")
    obs = rec.observation
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
        self.received: dict[str, float] = {}  # monotonic time of each venue's latest report, this run
        self.nc = None
        self._last_refresh = 0.0
        self._published: dict[str, tuple] = {}

    @staticmethod
    def _read(path: Path, names) -> tuple[dict[str, VenueRecord], Cursors]:
        try:
            data = json.loads(path.read_text())
            records = {n: VenueRecord(**{**r, "review_mismatches": tuple(r.get("review_mismatches", ())),
                                         "review_unknown_orders": tuple(r.get("review_unknown_orders", ())),
                                         "mismatches": tuple(r.get("mismatches", ())),
                                         "suspect": tuple(r.get("suspect", ()))})
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

    def apply_to_beliefs(self) -> None:
        now = time.monotonic()
        health = {}
        for n in self.names:
            age = now - self.received[n] if n in self.received else None
            health[n] = verdict(self.records[n], age_s=age, health_seconds=self.mission.venues.health_seconds)[1]
        self.state.beliefs.venue_health = health

    def problem(self, venue: str) -> VenueProblem | None:
        return self.state.beliefs.venue_health.get(venue) if self.state.beliefs is not None else None

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
                self.records[obs.venue], obs, book=book, prices=dict(led.marks), assets=set(self.mission.marketdata.assets),
                tolerance_usd=venues.reconcile_tolerance_usd,
                hold_above_usd=venues.hold_above_usd,
            )
            self.received[obs.venue] = time.monotonic()
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
        age = time.monotonic() - self.received[name] if name in self.received else None
        state, problem = verdict(rec, age_s=age, health_seconds=self.mission.venues.health_seconds)
        obs = rec.observation or {}
        return VenueStatus(
            venue=name, state=state, healthy=problem is None, at=now,
            observed=(problem.observed if problem else obs.get("observed", ""))[:500],
            limit=(problem.limit if problem else "")[:500], reason=(problem.reason if problem else "")[:1000],
            observed_at=obs.get("observed_at"), clock_skew_ms=obs.get("clock_skew_ms"),
            mismatches=[Mismatch(**m) for m in (rec.review_mismatches or rec.mismatches)],
            unknown_orders=list(rec.review_unknown_orders), review=rec.review, held=rec.held, baseline=rec.baseline,
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
