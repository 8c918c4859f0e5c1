"""The command center's side of the bus: what a principal reads and decides.

Used by the CLI and the web Command Center. It connects with the command_center
role only, so everything it can do is what that role may do: read the queues and
statuses, publish decisions, write the breaker's reset key. It holds no person's
key: every decision method takes the deciding principal's `Signer`, which only
that person's own secret (their password, or their session's cookie) can open
(people/principals.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from nats.aio.client import Client
from nats.errors import Error as NatsError

from deskgate.agents.published import AgentsStatus
from deskgate.approvals.review_authors import ReviewAuthors
from deskgate.audit.keys import AGENT_SIGNERS, KeyStore, principal_signer
from deskgate.audit.signing import (
    Kind,
    SignatureStatus,
    Signer,
    digest,
    kind_of,
    verify_headers,
    verify_signed,
)
from deskgate.bus import subjects as S
from deskgate.bus.breaker import read_breaker_state, write_key
from deskgate.bus.connect import SecurityEvents, connect_as
from deskgate.bus.live import read_live
from deskgate.bus.publish import NO_RESPONDERS_WITHIN_S, publish_stored
from deskgate.bus.reader import last_message, newest_accepted, read_parsed, read_stream
from deskgate.config import CCXT_VENUES
from deskgate.domain.approval import ApprovalOutcome, ApprovalResponse, StagedDirective
from deskgate.domain.base import utcnow
from deskgate.domain.breaker import BreakerReset, BreakerState
from deskgate.domain.directive import Directive
from deskgate.domain.evaluation import PolicyVerdict
from deskgate.domain.execution import Fill
from deskgate.domain.funnel import Funnel
from deskgate.domain.governor import (
    GOVERNOR_SIGNER,
    GovernorClear,
    GovernorHold,
    GovernorState,
    signed_governor_state,
)
from deskgate.domain.market import Bar
from deskgate.domain.news import QuarantinedItem, QuarantineRelease, text_digest
from deskgate.domain.portfolio import PortfolioSnapshot
from deskgate.domain.review import ReviewAck, ReviewRequest
from deskgate.domain.venue import VenueAck, VenueStatus
from deskgate.paths import DataDir

log = logging.getLogger("deskgate.command_center")

DIRECTIVE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_EARLY = 10_000  # outcomes kept while their staged record is not read yet (oldest dropped)

TERMINAL = {"ordered", "executed", "venue_rejected", "invalidated", "expired", "rejected"}


def _payload_id(kind: str, payload: bytes) -> str:
    """A Nats-Msg-Id for a decision that has no id of its own: the same signed message sent
    twice within the stream's duplicate window is kept once; a new decision (a new time) is new."""
    return f"{kind}-{hashlib.sha256(payload).hexdigest()[:32]}"


class CommandCenterError(RuntimeError):
    pass


class AmbiguousReview(CommandCenterError):
    """More than one agent asked under this review id: the acknowledgement must name whose."""


@dataclass
class QueueItem:
    staged: StagedDirective
    state: str  # staged | awaiting_second_approval | one of TERMINAL
    outcomes: list[ApprovalOutcome]

    @property
    def directive_id(self) -> str:
        return self.staged.directive.directive_id

    @property
    def pending(self) -> bool:
        return self.state in ("staged", "awaiting_second_approval")


class VerdictSummary(NamedTuple):
    directive_id: str | None
    decision: str
    primary_reason: str | None
    at: datetime
    agent: str | None = None  # the verified author (PolicyVerdict.agent)


@dataclass
class ReviewItem:
    request: ReviewRequest
    acks: list[ReviewAck] = field(default_factory=list)
    agent: str | None = None  # the agent identity whose key signed it (request.agent is only its claim)
    current_key: bool = True  # False: signed with a key since revoked or rotated out

    @property
    def acknowledged(self) -> bool:
        return bool(self.acks)


class CommandCenter:
    rp_id = "localhost"  # the site a principal's passkey confirms decisions for (web.passkey_rp_id)

    def __init__(self, nc: Client, events: SecurityEvents, keys: KeyStore):
        self.nc = nc
        self.keys = keys  # the roles' public keys: what a principal is shown must verify
        self.js = nc.jetstream()
        self.events = events
        self._agents_status: AgentsStatus | None = None  # the newest status seen (agents_status)
        # What has been read of the streams so far (see queue()).
        self._reading = asyncio.Lock()
        self._seen = {"staged": 0, "outcomes": 0, "verdicts": 0}
        self._items: dict[str, QueueItem] = {}
        self._early: dict[str, list[ApprovalOutcome]] = {}  # outcomes read before their staged record
        self._verdicts: list[VerdictSummary] = []

    @classmethod
    async def connect(cls, data_dir: DataDir, *, reconnect: bool = False) -> CommandCenter:
        """`reconnect`: for a long-lived Command Center (the web service), which then outlives a bus
        restart and, on a cluster, the death of its node; the CLI's calls fail fast instead."""
        nc, events = await connect_as(data_dir, S.Role.COMMAND_CENTER, name="deskgate-command-center", reconnect=reconnect)
        return cls(nc, events, KeyStore.for_desk(data_dir))

    @staticmethod
    def principal_of(signer: Signer) -> str:
        """The person a signer is; only a principal's own key decides anything."""
        if signer.principal is None:
            raise CommandCenterError(f"decisions are signed with a principal's own key, not {signer.name}'s")
        return signer.principal

    @staticmethod
    def _signed_headers(signer: Signer, subject: str, payload: bytes, msg_id: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        more = {"Nats-Msg-Id": msg_id} if msg_id else {}
        more.update(extra or {})
        return signer.headers(kind_of(subject), payload, more or None)

    async def _publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        """A principal's decision, asked again while no stream answers (bus/publish.py
        `publish_stored`): on a cluster, for the seconds a new stream leader is being elected.
        Each carries a Nats-Msg-Id, so a copy asked again is dropped by the stream."""
        if "Nats-Msg-Id" not in headers:
            raise CommandCenterError(f"a decision on {subject} must carry a Nats-Msg-Id")
        await publish_stored(self.js, subject, payload, headers)

    async def close(self) -> None:
        """Drain an open connection; one the bus already closed (it restarted, and this
        connection does not reconnect) or that is still reconnecting has nothing to drain."""
        if self.nc.is_closed:
            return
        if self.nc.is_connected:
            try:
                await self.nc.drain()
                return
            except NatsError as exc:  # the bus went away while draining
                log.info("bus lost while closing the command center's connection: %s", exc)
        await self.nc.close()

    async def __aenter__(self) -> CommandCenter:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- the queue ------------------------------------------------------------------

    async def queue(self) -> dict[str, QueueItem]:
        """Every staged directive with its outcomes, by id.

        Read incrementally: the first call reads the streams from the start, later
        calls only what was stored since (streams only grow), so a long history
        costs once per connection rather than on every page. The items returned are
        this client's own view; callers read them and never change them.
        """
        async with self._reading:
            async for staged in self._stored_since("staged", "APPROVALS", "approvals.queue.directive.>", StagedDirective):
                did = staged.directive.directive_id
                if did not in self._items:
                    self._items[did] = QueueItem(staged, "staged", [])
                    for early in self._early.pop(did, []):
                        self._apply(self._items[did], early)
            async for outcome in self._stored_since("outcomes", "STATUS", "factory.status.approval.>", ApprovalOutcome):
                item = self._items.get(outcome.directive_id)
                if item is not None:
                    self._apply(item, outcome)
                else:
                    # Two streams, published side by side: an outcome can be stored before
                    # its staged record. Keep it until the record arrives.
                    self._early.setdefault(outcome.directive_id, []).append(outcome)
                    while len(self._early) > MAX_EARLY:
                        self._early.pop(next(iter(self._early)))
        return self._items

    async def _stored_since(self, key: str, stream: str, subject: str, model):
        """What `stream` stored on `subject` since this client last read it, parsed; unreadable ones skipped."""
        async for seq, parsed in read_parsed(self.nc, stream, subject, model, after=self._seen[key]):
            self._seen[key] = seq
            if parsed is None:
                log.warning("unreadable %s at %s seq %d skipped", model.__name__, stream, seq)
                continue
            yield parsed

    @staticmethod
    def _apply(item: QueueItem, outcome: ApprovalOutcome) -> None:
        item.outcomes.append(outcome)
        if outcome.outcome == "refused":
            return  # a refused decision changes nothing
        if item.state in TERMINAL and outcome.outcome not in ("executed", "venue_rejected"):
            return
        item.state = outcome.outcome

    async def pending(self) -> list[QueueItem]:
        return sorted((i for i in (await self.queue()).values() if i.pending), key=lambda i: i.staged.staged_at)

    async def item(self, directive_id: str) -> QueueItem:
        """One staged directive and its outcomes, reading only its own subjects."""
        if not DIRECTIVE_ID.fullmatch(directive_id):
            raise CommandCenterError(f"no staged directive {directive_id!r} (not a directive id)")
        m = await last_message(self.nc, "APPROVALS", S.staged_subject(directive_id))
        if m is None:
            raise CommandCenterError(f"no staged directive {directive_id}")
        try:
            staged = StagedDirective.model_validate_json(m.data)
        except ValueError:
            raise CommandCenterError(f"the staged record of {directive_id} cannot be read") from None
        if staged.directive.directive_id != directive_id:
            raise CommandCenterError(f"the staged record on {m.subject} names another directive")
        item = QueueItem(staged, "staged", [])
        async for o in read_stream(self.nc, "STATUS", S.approval_status_subject(directive_id)):
            try:
                self._apply(item, ApprovalOutcome.model_validate_json(o.data))
            except ValueError:
                continue
        return item

    async def decide(
        self,
        directive_id: str,
        decision: str,
        signer: Signer,
        reason: str = "",
        *,
        batch_id: str | None = None,
        wait: float = 10.0,
        until_fill: bool = True,
    ) -> list[ApprovalOutcome]:
        """Publish a decision, signed by the principal over the digest of the exact directive
        they were shown, and return the factory's answers to it (ordered, then executed)."""
        response = await self.prepare_decision(directive_id, decision, self.principal_of(signer), reason, batch_id=batch_id)
        return await self.send(response, signer, wait=wait, until_fill=until_fill)

    async def prepare_decision(
        self, directive_id: str, decision: str, principal: str, reason: str = "", *, batch_id: str | None = None
    ) -> ApprovalResponse:
        """The decision a principal is about to sign, after what can be checked first: an
        approval names the digest of the directive shown, and is refused while the breaker
        is tripped (the directive then stays pending)."""
        if decision == "approve" and (tripped := await self.breaker_refusal(directive_id)):
            raise CommandCenterError(tripped)
        # A rejection needs no proof of what was shown: it can only stop a directive.
        shown = await self._directive_digest(directive_id, strict=decision == "approve")
        return ApprovalResponse(
            approval_id=f"ap-{uuid.uuid4().hex}",
            directive_id=directive_id,
            decision=decision,  # type: ignore[arg-type]
            principal=principal,
            decided_at=utcnow(),
            reason=reason,
            batch_id=batch_id,
            directive_digest=shown,
        )

    async def breaker_refusal(self, what: str) -> str | None:
        """Why nothing can be approved now (the breaker is tripped), or None."""
        breaker = await self.breaker()
        if breaker.state != "tripped":
            return None
        why = breaker.trip.reason if breaker.trip else (breaker.note or "no trip record yet")
        return (
            f"the circuit breaker is tripped ({why}): nothing can be approved until a principal resets it; "
            f"{what} stays pending until then or until it expires"
        )

    async def _directive_digest(self, directive_id: str, *, strict: bool = True) -> str | None:
        """SHA-256 of the directive exactly as the agent signed it, from its staged record
        (None when there is none: the factory then refuses the decision and says why).

        The staged record must carry the factory's signature, the directive in it the
        agent's, and what a person is shown (the staged directive) must be exactly the
        signed directive: otherwise nobody is asked to sign for something they did not see.
        Read from the stream's leader: a follower may not hold a directive staged a moment ago.
        """
        if not DIRECTIVE_ID.fullmatch(directive_id):
            return None
        m = await last_message(self.nc, "APPROVALS", S.staged_subject(directive_id), current=True)
        if m is None:
            return None
        try:
            staged = StagedDirective.model_validate_json(m.data)
        except ValueError:
            return None
        signed = staged.signed_directive
        problem = None
        status = verify_headers(self.keys, Kind.STAGED, m.data, m.headers, expect="factory")
        if status is not SignatureStatus.VALID:
            problem = f"the staged record's signature is {status.value}"
        elif signed is None:
            problem = "the staged record carries no signed directive"
        # Against every key the agent ever had: a directive staged before its agent was
        # revoked or rotated may still be decided (revocation is for new directives).
        elif (status := verify_signed(self.keys, Kind.DIRECTIVE, signed, expect=AGENT_SIGNERS)) is not SignatureStatus.VALID:
            problem = f"the directive's signature is {status.value}"
        else:
            try:
                shown_is_signed = Directive.model_validate_json(signed.payload) == staged.directive
            except ValueError:
                shown_is_signed = False
            if not shown_is_signed:
                problem = "the directive shown is not the one the agent signed"
        if problem and not strict:
            return None
        if problem:
            self.events.counts["unverifiable_staged"] += 1
            log.warning("SECURITY: %s cannot be decided: %s", directive_id, problem)
            raise CommandCenterError(f"{directive_id} cannot be decided: {problem}")
        return digest(signed.data)

    async def send(
        self, response: ApprovalResponse, signer: Signer, *, wait: float = 10.0, until_fill: bool = True, headers: dict[str, str] | None = None
    ) -> list[ApprovalOutcome]:
        """Sign and publish a prepared decision; `headers` carries e.g. a passkey assertion."""
        if self.principal_of(signer) != response.principal:
            raise CommandCenterError(f"{signer.name} cannot sign a decision that names {response.principal}")
        got: list[ApprovalOutcome] = []
        done = asyncio.Event()
        order_id: list[str] = []

        async def on_outcome(msg) -> None:
            outcome = read_live(msg, "STATUS", ApprovalOutcome)
            if outcome is None:
                return
            mine = outcome.approval_id == response.approval_id
            fill_of_mine = order_id and outcome.order_id == order_id[0] and outcome.outcome in ("executed", "venue_rejected")
            if not (mine or fill_of_mine):
                return
            got.append(outcome)
            if outcome.outcome == "ordered" and until_fill:
                order_id.append(outcome.order_id or "")
                return
            done.set()

        sub = await self.nc.subscribe(S.approval_status_subject(response.directive_id), cb=on_outcome)
        try:
            subject = S.response_subject(response.directive_id)
            payload = response.to_bytes()
            # Its approval id is its Nats-Msg-Id: whatever is asked again, the stream keeps it once.
            await self._publish(subject, payload, self._signed_headers(signer, subject, payload, response.approval_id, headers))
            if wait > 0:
                try:
                    await asyncio.wait_for(done.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass
        finally:
            await sub.unsubscribe()
        return got

    # -- review requests (never orders) ----------------------------------------------

    async def reviews(self) -> list[ReviewItem]:
        """Review requests an agent signed with a key good at the time, each with the agent
        that key names (approvals/review_authors.py): any agent may ask for a review, so what
        a principal is shown says which one did. Requests are told apart by their author and
        id, so no agent can take the place of another's request by using its id first; an
        acknowledgement counts for the request of the agent it names (one made before
        acknowledgements named an agent counts for each request under its id)."""
        items: dict[tuple[str, str], ReviewItem] = {}
        authors = ReviewAuthors(self.keys)
        async with aclosing(self._review_requests()) as stored:
            requests = [m async for m in stored]
        for m in requests:
            try:
                req = ReviewRequest.model_validate_json(m.data)
            except ValueError:
                log.warning("unreadable review request at %s seq %d skipped", m.stream, m.seq)
                continue
            if m.subject != S.review_subject(req.review_id):
                continue
            try:
                author = authors.author(m.data, m.headers, m.time)
            except Exception as exc:  # noqa: BLE001 - a malformed accounts record hides the request, never the page
                author = f"its author cannot be checked ({exc!r})"
            if isinstance(author, str):
                log.warning("SECURITY: the review request %s at %s seq %d is not shown: %s", req.review_id, m.stream, m.seq, author)
                continue
            items.setdefault((author.agent, req.review_id), ReviewItem(req, agent=author.agent, current_key=author.current_key))
        by_id: dict[str, list[ReviewItem]] = {}
        for item in items.values():
            by_id.setdefault(item.request.review_id, []).append(item)
        async for m in read_stream(self.nc, "RESPONSES", "approvals.acknowledged.>"):
            try:
                ack = ReviewAck.model_validate_json(m.data)
                signer = principal_signer(ack.principal)
            except ValueError:
                continue
            if verify_headers(self.keys, Kind.REVIEW_ACK, m.data, m.headers, expect=signer) is not SignatureStatus.VALID:
                log.warning("SECURITY: an acknowledgement of %s at RESPONSES seq %d is not signed by %s; not shown", ack.review_id, m.seq, ack.principal)
                continue  # anyone with the command center's credentials could have sent it
            for item in by_id.get(ack.review_id, ()):
                if ack.agent in (None, item.agent):
                    item.acks.append(ack)
        return list(items.values())  # in the order they arrived on the stream

    async def _review_requests(self):
        """The REVIEWS stream, after what APPROVALS kept from before it had one (desks
        upgraded from then: those requests stay where they were stored)."""
        for stream in ("APPROVALS", "REVIEWS"):
            async with aclosing(read_stream(self.nc, stream, "approvals.queue.review.>")) as stored:
                async for m in stored:
                    yield m

    async def quarantine(self, limit: int = 200) -> list[QuarantinedItem]:
        """The newest news the screen held back, newest first, with the reasons (never shown
        to an agent). Reads only the last `limit` messages, however long the stream is."""
        last = await last_message(self.nc, "QUARANTINE", S.QUARANTINE_SUBJECT)
        if last is None:
            return []
        after = max(0, last.seq - limit)
        items = [q async for _, q in read_parsed(self.nc, "QUARANTINE", S.QUARANTINE_SUBJECT, QuarantinedItem, after=after) if q is not None]
        return items[::-1][:limit]

    async def quarantined(self, news_id: str) -> QuarantinedItem | None:
        """The quarantined item with this id, as the market-data service signed it (the whole
        stream is read: it is kept a year)."""
        found = None
        async for m in read_stream(self.nc, "QUARANTINE", S.QUARANTINE_SUBJECT):
            try:
                q = QuarantinedItem.model_validate_json(m.data)
            except ValueError:
                continue
            if q.news_id == news_id and verify_headers(self.keys, Kind.QUARANTINE, m.data, m.headers, expect="marketdata") is SignatureStatus.VALID:
                found = q
        return found

    async def releases(self) -> list[QuarantineRelease]:
        """Every release that counts, oldest first: signed with the current key of the enabled
        principal it names (and their passkey's answer, when they have one), as the market-data
        service checks before it publishes anything. Anything else is not shown."""
        from deskgate.people.principals import decision_problem

        out = []
        async for m in read_stream(self.nc, "QUARANTINE", S.RELEASE_SUBJECT):
            try:
                release = QuarantineRelease.model_validate_json(m.data)
            except ValueError:
                continue
            if (problem := decision_problem(self.keys, Kind.RELEASE, m.data, m.headers, release.principal, self.rp_id)) is not None:
                log.warning("SECURITY: a release of %s at QUARANTINE seq %d does not count (%s); not shown", release.news_id, m.seq, problem)
                continue
            out.append(release)
        return out

    async def prepare_release(self, principal: str, news_id: str, reason: str, *, at: datetime | None = None) -> QuarantineRelease:
        """The release a principal is about to sign: the item must be in quarantine and not released yet."""
        if not reason.strip():
            raise CommandCenterError("releasing a quarantined item needs a reason (what the screen got wrong)")
        if (held := await self.quarantined(news_id)) is None:
            raise CommandCenterError(f"no quarantined item {news_id!r}")
        if any(r.news_id == news_id and r.text_sha256 == text_digest(held.text) for r in await self.releases()):
            raise CommandCenterError(f"{news_id} has already been released")
        return QuarantineRelease(release_id=f"rel-{uuid.uuid4().hex}", news_id=news_id, text_sha256=text_digest(held.text),
                                 principal=principal, reason=reason.strip(), at=at or utcnow())

    async def send_release(self, release: QuarantineRelease, signer: Signer, *, headers: dict[str, str] | None = None) -> QuarantineRelease:
        if self.principal_of(signer) != release.principal:
            raise CommandCenterError(f"{signer.name} cannot sign a release that names {release.principal}")
        payload = release.to_bytes()
        await self._publish(S.RELEASE_SUBJECT, payload, self._signed_headers(signer, S.RELEASE_SUBJECT, payload, release.release_id, headers))
        return release

    async def release(self, signer: Signer, news_id: str, reason: str, *, headers: dict[str, str] | None = None) -> QuarantineRelease:
        release = await self.prepare_release(self.principal_of(signer), news_id, reason)
        return await self.send_release(release, signer, headers=headers)

    async def acknowledge(self, review_id: str, signer: Signer, note: str = "", *, agent: str | None = None) -> ReviewAck:
        """`agent` names whose request, when more than one agent asked under this id."""
        principal = self.principal_of(signer)
        asked = [i for i in await self.reviews() if i.request.review_id == review_id and agent in (None, i.agent)]
        if not asked:
            raise CommandCenterError(f"no review request {review_id}" + (f" from agent {agent}" if agent else ""))
        if len(asked) > 1:
            raise AmbiguousReview(f"agents {', '.join(i.agent or '?' for i in asked)} each asked under review id {review_id}: name the agent")
        ack = ReviewAck(review_id=review_id, principal=principal, at=utcnow(), note=note, agent=asked[0].agent)
        payload = ack.to_bytes()
        subject = S.review_ack_subject(review_id)
        await self._publish(subject, payload, self._signed_headers(signer, subject, payload, _payload_id("ack", payload)))
        return ack

    # -- real venues ------------------------------------------------------------------

    async def venue_status(self, venue: str, *, current: bool = False) -> VenueStatus | None:
        """The factory's latest verdict on a real venue (None before it first published one);
        `current`: from the stream's leader, for a decision prepared from it."""
        return await self._last_readable("STATUS", S.venue_status_subject(venue), VenueStatus, f"the factory's status of {venue}", current)

    async def venues(self) -> list[VenueStatus]:
        """Every real venue the factory has a verdict on, by name."""
        out = []
        for name in CCXT_VENUES:
            st = await self.venue_status(name)
            if st is not None:
                out.append(st)
        return out

    async def prepare_venue_ack(self, venue: str, review: int, principal: str, note: str = "") -> VenueAck:
        """The acknowledgement a principal is about to sign: it names the open review it accepts."""
        st = await self.venue_status(venue, current=True)
        if st is None or st.review is None:
            raise CommandCenterError(f"no review is open for {venue}")
        if st.review != review:
            raise CommandCenterError(f"review {review} is not open: the open review of {venue} is {st.review}")
        return VenueAck(venue=venue, review=review, opened_at=st.review_opened_at or "", principal=principal, at=utcnow(), note=note)

    async def send_venue_ack(self, ack: VenueAck, signer: Signer, *, headers: dict[str, str] | None = None) -> VenueAck:
        if self.principal_of(signer) != ack.principal:
            raise CommandCenterError(f"{signer.name} cannot sign an acknowledgement that names {ack.principal}")
        payload = ack.to_bytes()
        subject = S.venue_ack_subject(ack.venue)
        await self._publish(subject, payload, self._signed_headers(signer, subject, payload, _payload_id("venue-ack", payload), headers))
        return ack

    async def acknowledge_venue(self, venue: str, review: int, signer: Signer, note: str = "", *,
                                headers: dict[str, str] | None = None) -> VenueAck:
        """Accept a venue's balances as they were in the open review: the difference is held outside deskgate."""
        ack = await self.prepare_venue_ack(venue, review, self.principal_of(signer), note)
        return await self.send_venue_ack(ack, signer, headers=headers)

    # -- the Governor -----------------------------------------------------------------

    async def governor(self) -> GovernorState | None:
        """The Governor's state as the desk's agents last published it (None before their first directive):
        the newest one signed with the desk agent's current key, whatever another agent published after it."""
        keys = self.keys.deciding

        def genuine(m) -> GovernorState | None:
            try:
                return signed_governor_state(keys, m.data, m.headers)
            except Exception as exc:  # noqa: BLE001 - e.g. the accounts database busy: said, and the factory's hold decides
                raise CommandCenterError(f"the Governor's state cannot be checked now ({exc!r})") from exc

        # From the stream's leader: a principal's clear is prepared from it.
        state, forged = await newest_accepted(self.nc, "INSIGHTS", S.GOVERNOR_STATE_SUBJECT, genuine, current=True)
        if forged:
            log.warning("SECURITY: %d Governor state(s) not signed by %s's current key; not shown", forged, GOVERNOR_SIGNER)
        return state

    async def agents_status(self) -> AgentsStatus | None:
        """The desk agents' latest status (None before their first cycle): only one signed by the desk
        identity's current key counts, whatever another agent published after it."""
        keys = self.keys.deciding

        def genuine(m) -> AgentsStatus | None:
            if verify_headers(keys, Kind.INSIGHT, m.data, m.headers, expect=GOVERNOR_SIGNER) is not SignatureStatus.VALID:
                return None
            try:
                return AgentsStatus.model_validate_json(m.data)
            except ValueError:
                return None

        status, forged = await newest_accepted(self.nc, "INSIGHTS", S.insight_subject("agents"), genuine)
        if forged:
            log.warning("SECURITY: %d status message(s) on %s not signed by %s's current key; ignored", forged, S.insight_subject("agents"), GOVERNOR_SIGNER)
        # Any agent may publish here, so a genuine status can be sent again later to pass for the latest:
        # what this connection has seen never goes back in time.
        if status is not None and self._agents_status is not None and status.at < self._agents_status.at:
            return self._agents_status
        self._agents_status = status or self._agents_status
        return self._agents_status

    async def governor_hold(self, *, current: bool = False) -> GovernorHold | None:
        """The damping the factory applies and holds until a principal's clear (None before it first
        published); `current`: from the stream's leader, since a clear names the hold it lifts."""
        return await self._last_readable("STATUS", S.GOVERNOR_HOLD_SUBJECT, GovernorHold, "the factory's Governor hold", current)

    async def _last_readable(self, stream: str, subject: str, model, what: str, current: bool = False):
        """The newest message on `subject`, parsed; `current` reads it from the stream's leader, for
        a state a principal's decision is prepared from (a hold, a venue's open review). Pages and
        metrics take any replica's answer, which does not wait through an election."""
        m = await last_message(self.nc, stream, subject, current=current)
        if m is None:
            return None
        try:
            return model.model_validate_json(m.data)
        except ValueError:
            raise CommandCenterError(f"{what} at {stream} seq {m.seq} is unreadable") from None

    async def clear_governor(self, signer: Signer, reason: str, *, at: datetime | None = None, headers: dict[str, str] | None = None) -> GovernorClear:
        """A principal clears the drift alarm: the factory lifts its hold, the agents take a new baseline."""
        clear = await self.prepare_governor_clear(self.principal_of(signer), reason, at=at)
        return await self.send_governor_clear(clear, signer, headers=headers)

    async def prepare_governor_clear(self, principal: str, reason: str, *, at: datetime | None = None) -> GovernorClear:
        if not reason.strip():
            raise CommandCenterError("clearing the Governor needs a reason")
        try:
            state = await self.governor()
        except CommandCenterError:
            state = None  # what the agents say is unreadable: the factory's hold decides
        hold = await self.governor_hold(current=True)
        if not ((state is not None and state.state == "drifting") or (hold is not None and hold.damping < 1.0)):
            raise CommandCenterError("the Governor is not damping anything: there is nothing to clear")
        held = hold.held_since_seq if hold is not None and hold.damping < 1.0 else None
        return GovernorClear(clear_id=f"gc-{uuid.uuid4().hex}", principal=principal, reason=reason.strip(), at=at or utcnow(), hold_seq=held)

    async def send_governor_clear(self, clear: GovernorClear, signer: Signer, *, headers: dict[str, str] | None = None) -> GovernorClear:
        if self.principal_of(signer) != clear.principal:
            raise CommandCenterError(f"{signer.name} cannot sign a clear that names {clear.principal}")
        payload = clear.to_bytes()
        await self._publish(S.GOVERNOR_CLEAR_SUBJECT, payload, self._signed_headers(signer, S.GOVERNOR_CLEAR_SUBJECT, payload, clear.clear_id, headers))
        return clear

    # -- the breaker ------------------------------------------------------------------

    async def breaker(self) -> BreakerState:
        return await read_breaker_state(self.nc)

    async def reset_breaker(self, signer: Signer, reason: str, *, headers: dict[str, str] | None = None) -> BreakerState:
        reset = await self.prepare_reset(self.principal_of(signer), reason)
        return await self.send_reset(reset, signer, headers=headers)

    async def prepare_reset(self, principal: str, reason: str) -> BreakerReset:
        """The reset a principal is about to sign: it names the trip it resets."""
        if not reason.strip():
            raise CommandCenterError("a breaker reset needs a reason")
        state = await self.breaker()
        if state.state != "tripped":
            raise CommandCenterError("the circuit breaker is not tripped")
        if state.trip_revision is None or state.trip is None:
            raise CommandCenterError(
                f"the trip record cannot be read ({state.note}); the factory writes a readable one within seconds, try again"
            )
        return BreakerReset(
            resets_revision=state.trip_revision,
            resets_trip_id=state.trip.trip_id,
            at=utcnow(),
            principal=principal,
            reason=reason,
        )

    async def send_reset(self, reset: BreakerReset, signer: Signer, *, headers: dict[str, str] | None = None) -> BreakerState:
        if self.principal_of(signer) != reset.principal:
            raise CommandCenterError(f"{signer.name} cannot sign a reset that names {reset.principal}")
        payload = reset.to_bytes()
        extra = {"Nats-Msg-Id": _payload_id("reset", payload), **(headers or {})}
        await write_key(self.js, S.BREAKER_RESET_KEY, payload, signer.headers(Kind.BREAKER, payload, extra), within=NO_RESPONDERS_WITHIN_S)
        return await self.breaker()

    # -- the book ------------------------------------------------------------------------

    async def portfolio(self) -> PortfolioSnapshot | None:
        m = await last_message(self.nc, "STATUS", S.PORTFOLIO_SUBJECT)
        return PortfolioSnapshot.model_validate_json(m.data) if m else None

    async def portfolio_history(self, since: datetime | None = None) -> list[PortfolioSnapshot]:
        """Every portfolio snapshot the factory published since `since` (all kept, if None)."""
        out = []
        async for m in read_stream(self.nc, "STATUS", S.PORTFOLIO_SUBJECT, start_time=since):
            try:
                out.append(PortfolioSnapshot.model_validate_json(m.data))
            except ValueError:
                continue
        return out

    async def price(self, asset: str) -> Bar | None:
        """The latest bar for an asset, or None if none was published."""
        m = await last_message(self.nc, "MARKET", S.bar_subject(asset))
        if m is None:
            return None
        try:
            return Bar.model_validate_json(m.data)
        except ValueError:
            return None

    async def verdicts(self, since: datetime | None = None) -> list[VerdictSummary]:
        """The policy engine's verdicts (what the funnel needs of them), read incrementally."""
        async with self._reading:
            async for v in self._stored_since("verdicts", "STATUS", "factory.status.policy.>", PolicyVerdict):
                self._verdicts.append(VerdictSummary(v.directive_id, v.decision, v.primary_reason, v.at, v.agent))
        return [v for v in self._verdicts if since is None or v.at >= since]

    async def outcomes(self, since: datetime | None = None) -> list[ApprovalOutcome]:
        """Every outcome of a staged directive, from the queue's view."""
        items = await self.queue()
        return [o for item in items.values() for o in item.outcomes if since is None or o.at >= since]

    async def funnel(self) -> Funnel | None:
        m = await last_message(self.nc, "STATUS", S.FUNNEL_SUBJECT)
        return Funnel.model_validate_json(m.data) if m else None

    async def fills(self, limit: int = 50) -> list[Fill]:
        out = []
        async for m in read_stream(self.nc, "FILLS", "factory.execution.fills.>"):
            out.append(Fill.model_validate_json(m.data))
        return out[-limit:]
