"""`DeskClient`: one agent on the desk's bus, with exactly that agent's rights.

It connects with the agent's own NATS user (from its credentials file), signs every
directive with the agent's own key, and reads only what the agent role may read:
verdicts, outcomes, the book, the desk's facts and market data, by JetStream direct
get (no consumers) and live subscriptions. Nothing here can stage, approve or
execute anything even if it tried: the broker refuses it.

    async with await DeskClient.connect("agents/research.json") as desk:
        verdict = await desk.submit({"asset": "BTC", "venue": "binance", "side": "buy",
                                     "notional_usd": 10_000, "confidence": 0.8, "memo": {...}})
        if verdict.staged:
            outcome = await desk.outcome(verdict.directive_id, wait=600)
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nats.errors
from nats.aio.client import Client
from pydantic import BaseModel, ValidationError

from deskgate.audit.signing import Kind, Signer
from deskgate.bus import subjects as S
from deskgate.bus.connect import SecurityEvents, connect_with
from deskgate.bus.live import read_live
from deskgate.bus.publish import publish_stored
from deskgate.bus.reader import ReadError, StoredMessage, last_message, read_stream
from deskgate.client.dryrun import dry_run
from deskgate.config import Mandate
from deskgate.client.errors import (
    BusRefused,
    CredentialsError,
    DeskMismatch,
    DeskUnreachable,
    InvalidDirective,
    NotPublished,
    VerdictTimeout,
)
from deskgate.client.models import (
    Book,
    DeskFacts,
    DirectiveDraft,
    MarketView,
    Outcome,
    Revision,
    Verdict,
    describe_errors,
)
from deskgate.domain.approval import ApprovalOutcome
from deskgate.domain.desk import DeskStatus
from deskgate.domain.directive import Directive
from deskgate.domain.evaluation import PolicyVerdict
from deskgate.domain.market import Bar, MarketSummary, Signal
from deskgate.identity import credentials as identity_credentials
from deskgate.identity.credentials import AgentCredentials
from deskgate.identity.names import BUILT_IN_AGENT, agent_of_signer
from deskgate.policy.symbols import SymbolError, normalise_symbol

UNIDENTIFIED = S.policy_status_subject("unidentified")  # verdicts on directives whose id cannot be trusted
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # DirectiveId's: one token of a subject
MAX_REMEMBERED = 1_000  # directives this client sent, kept so `revise` can start from an id


class DeskClient:
    """One agent's way in. Make it with `connect` (a credentials file), or from a connection
    and a signer the caller already holds (the desk's own agents)."""

    def __init__(
        self,
        nc: Client,
        signer: Signer,
        *,
        agent: str | None = None,
        desk_id: str | None = None,
        events: SecurityEvents | None = None,
    ):
        self.nc = nc
        self.js = nc.jetstream()
        self.signer = signer
        self.agent = agent or agent_of_signer(signer.name) or BUILT_IN_AGENT
        self.desk_id = desk_id  # from the credentials; None: not checked
        self.events = events or SecurityEvents()
        self._sent: dict[str, Directive] = {}

    # -- connecting ------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        credentials: str | os.PathLike | AgentCredentials,
        *,
        servers: list[str] | None = None,
        reconnect: bool = True,
        connect_timeout: float = 5.0,
    ) -> DeskClient:
        """Connect as the agent a credentials file (or its loaded `AgentCredentials`) names.

        `servers` overrides the bus URLs in the file (the desk's own `desk` identity names
        none). The connection reconnects after a bus restart unless `reconnect` is off.
        Raises `CredentialsError`, `BusRefused`, `DeskUnreachable` or `DeskMismatch`.
        """
        creds = _load(credentials)
        try:
            kwargs = creds.connect_kwargs(servers)
            signer = Signer.of(creds.signer, creds.signing_key())
        except identity_credentials.CredentialsError as exc:
            raise CredentialsError(str(exc)) from None
        nc, events = await _open(kwargs, creds.agent, reconnect=reconnect, timeout=connect_timeout)
        client = cls(nc, signer, agent=creds.agent, desk_id=creds.desk_id, events=events)
        try:
            await client.verify_desk()
        except BaseException:
            await client.close()
            raise
        return client

    async def verify_desk(self) -> None:
        """Refuse a bus that serves another desk than the credentials' (when its factory has said which)."""
        if self.desk_id is None:
            return
        m = await self._last("STATUS", S.DESK_SUBJECT)
        if m is None:
            return  # the factory has not published yet: nothing to compare with
        try:
            published = DeskStatus.model_validate_json(m.data).desk_id
        except ValidationError:
            return
        if published != self.desk_id:
            raise DeskMismatch(f"credentials for desk {self.desk_id}, this bus serves desk {published}")

    async def close(self) -> None:
        if self.nc.is_closed:
            return
        try:
            await self.nc.drain()
        except nats.errors.Error:
            await self.nc.close()

    async def __aenter__(self) -> DeskClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- directives --------------------------------------------------------------------

    def prepare(self, directive: Directive | DirectiveDraft | Mapping[str, Any]) -> Directive:
        """The directive this client would send: validated, with an id and this agent's name
        where the draft left them out. Raises `InvalidDirective` naming each bad field."""
        if isinstance(directive, Directive):
            return directive if directive.agent is not None else directive.model_copy(update={"agent": self.agent})
        try:
            draft = directive if isinstance(directive, DirectiveDraft) else DirectiveDraft.model_validate(dict(directive))
            return draft.to_directive(self.agent)
        except ValidationError as exc:
            raise InvalidDirective(describe_errors(exc)) from None
        except (TypeError, ValueError) as exc:
            raise InvalidDirective(f"a directive is a mapping of its fields, not {type(directive).__name__}: {exc}") from None

    async def submit(self, directive: Directive | DirectiveDraft | Mapping[str, Any], *, wait: float = 10.0) -> Verdict:
        """Sign and publish a directive; return the factory's verdict with every check.

        Raises `InvalidDirective` before sending anything that would fail the schema,
        and `VerdictTimeout` (naming the directive and its stream sequence) when no
        verdict came within `wait` seconds; the directive is stored all the same.
        """
        d = self.prepare(directive)
        payload = d.model_dump_json().encode()
        got: dict[int, PolicyVerdict] = {}
        arrived = asyncio.Event()

        async def on_verdict(msg) -> None:
            v = read_live(msg, "STATUS", PolicyVerdict)
            if v is not None:
                got[v.seq] = v
                arrived.set()

        subs = [await self._subscribe(subject, on_verdict) for subject in (S.policy_status_subject(d.directive_id), UNIDENTIFIED)]
        try:
            try:
                ack = await publish_stored(self.js, S.directive_subject(d.asset), payload, self.signer.headers(Kind.DIRECTIVE, payload))
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                raise DeskUnreachable(f"directive {d.directive_id} was not stored: the bus said {exc!r}") from None
            self._remember(d)
            if not await _until(lambda: ack.seq in got, arrived, wait):
                raise VerdictTimeout(d.directive_id, ack.seq, wait)
        finally:
            await _unsubscribe(subs)
        return Verdict.of(got[ack.seq], d)

    async def revise(self, previous: Verdict | Directive | str, *, wait: float = 10.0, **changes) -> Verdict:
        """Submit a revised copy of an earlier directive under a new id (`<id>-r<n>`).

        `previous` is a verdict from this client, a directive, or the id of a directive this
        client sent; `changes` are directive fields (`memo` may change some memo fields only):
        `await desk.revise(verdict, notional_usd=5_000)`.
        """
        base = previous.directive if isinstance(previous, Verdict) else previous
        if isinstance(base, str):
            base = self._sent.get(base)
            if base is None:
                raise InvalidDirective(f"this client sent no directive {previous!r}; pass the directive itself")
        if base is None:
            raise InvalidDirective(f"the verdict on {previous.directive_id} carries no directive; pass the directive itself")
        try:
            revised = Revision.model_validate(changes).apply(base)
        except ValidationError as exc:
            raise InvalidDirective(describe_errors(exc, "the revision")) from None
        return await self.submit(revised, wait=wait)

    async def check(self, directive: Directive | DirectiveDraft | Mapping[str, Any]) -> Verdict:
        """A dry run: the policy engine's verdict against the beliefs the factory last published,
        staging and sending nothing. Raises `NotPublished` while the factory has not published them."""
        d = self.prepare(directive)
        book, facts = await self.book(), await self.desk()
        if book.policy is None:
            raise NotPublished("the factory publishes its book without the policy view a dry run needs: it is older than this client")
        seen = await self._decisive_verdict(d.directive_id)
        mandate = Mandate.model_validate(facts.mandate) if facts.mandate else None
        ev = dry_run(d.model_dump_json().encode(), book, facts.guardrails, max_bytes=facts.max_directive_bytes,
                     already_evaluated=d.directive_id if seen is not None else None, mandate=mandate)
        notes = [f"dry run against the book of {book.at.isoformat()}; the factory also checks the signature"]
        if mandate is not None and mandate.daily_directives is not None:
            notes.append("the mandate's daily budget is counted by the factory; the dry run does not count your directives today")
        return Verdict(
            directive_id=ev.directive_id,
            decision="duplicate" if seen is not None else ev.decision,
            primary_reason="duplicate" if seen is not None else ev.primary_reason,
            explicit_approval=ev.explicit_approval,
            checks=ev.to_model().checks,
            at=book.at,
            dry_run=True,
            notes=notes,
            directive=d,
        )

    async def verdict(self, directive_id: str) -> Verdict | None:
        """The verdict that decided `directive_id` (later duplicates do not), or None if there is none yet."""
        v = await self._decisive_verdict(_directive_id(directive_id))
        return Verdict.of(v, self._sent.get(directive_id)) if v is not None else None

    async def outcome(self, directive_id: str, *, wait: float = 0.0, until_fill: bool = True) -> Outcome:
        """Where a directive stands, waiting up to `wait` seconds for it to end.

        It ends `executed` (with the fill), `venue_rejected`, `rejected`, `expired`,
        `invalidated` or `not_staged`; with `until_fill` off, `approved` ends the wait too.
        After `wait` the current state comes back with `final` false: nothing is raised,
        so a caller can simply ask again.
        """
        directive_id = _directive_id(directive_id)
        outcomes: dict[int, ApprovalOutcome] = {}
        verdicts: dict[int, PolicyVerdict] = {}
        arrived = asyncio.Event()

        async def on_message(msg) -> None:
            model = ApprovalOutcome if msg.subject == S.approval_status_subject(directive_id) else PolicyVerdict
            parsed = read_live(msg, "STATUS", model)
            if parsed is not None:
                (outcomes if model is ApprovalOutcome else verdicts)[int(msg.headers["Nats-Sequence"])] = parsed
                arrived.set()

        subjects = (S.approval_status_subject(directive_id), S.policy_status_subject(directive_id))
        subs = [await self._subscribe(s, on_message) for s in subjects]
        try:
            async for m in self._read("STATUS", subjects[0]):
                parsed = _parse(ApprovalOutcome, m.data)
                if parsed is not None:
                    outcomes[m.seq] = parsed
            async for m in self._read("STATUS", subjects[1]):
                parsed = _parse(PolicyVerdict, m.data)
                if parsed is not None:
                    verdicts[m.seq] = parsed

            def current() -> Outcome:
                decisive = next((verdicts[s] for s in sorted(verdicts) if verdicts[s].decision != "duplicate"), None)
                return Outcome.fold(directive_id, decisive, [outcomes[s] for s in sorted(outcomes)])

            def ended() -> bool:
                o = current()
                return o.final or (not until_fill and o.state == "approved")

            await _until(ended, arrived, wait)
            return current()
        finally:
            await _unsubscribe(subs)

    # -- reading the desk ------------------------------------------------------------------

    async def book(self) -> Book:
        """The factory's latest portfolio snapshot: equity, positions, reservations, and the policy view."""
        return await self._latest("STATUS", S.PORTFOLIO_SUBJECT, Book, "the book (factory.status.portfolio)")

    async def desk(self) -> DeskFacts:
        """The desk's id, guardrails, approval settings and this agent's mandate, as the factory states them."""
        status = await self._latest("STATUS", S.DESK_SUBJECT, DeskStatus, "the desk's facts (factory.status.desk)")
        return DeskFacts(
            desk_id=status.desk_id, desk_name=status.desk_name, agent=self.agent, guardrails=status.guardrails,
            approvals=status.approvals, mandate=status.mandates.get(self.agent), assets=status.assets,
            max_directive_bytes=status.max_directive_bytes, at=status.at,
        )

    async def market(self, asset: str) -> MarketView:
        """The latest price, window summary and signal of one asset (`BTC`, `btc`, `BTC/USDT`)."""
        try:
            base = normalise_symbol(asset).base
        except SymbolError as exc:
            raise InvalidDirective(str(exc)) from None
        bar = await self._maybe("MARKET", S.bar_subject(base), Bar)
        return MarketView(
            asset=base,
            price=bar.close if bar else None,
            price_at=bar.ts if bar else None,
            summary=await self._maybe("MARKET", S.summary_subject(base), MarketSummary),
            signal=await self._maybe("MARKET", S.signal_subject(base), Signal),
        )

    async def markets(self, assets: list[str] | None = None) -> list[MarketView]:
        """`market` for each asset, by default each the desk's market data publishes."""
        if assets is None:
            assets = list((await self.desk()).assets)
        return [await self.market(a) for a in assets]

    # -- reading helpers -----------------------------------------------------------------

    async def _subscribe(self, subject: str, cb):
        if self.nc.is_closed:
            raise DeskUnreachable(
                f"agent {self.agent}'s connection is closed (closed by this client, or by the bus: a revoked or "
                "rotated agent is disconnected); connect again with a current credentials file"
            )
        try:
            return await self.nc.subscribe(subject, cb=cb)
        except nats.errors.Error as exc:
            raise DeskUnreachable(f"cannot listen on {subject}: {exc!r}") from None

    async def _decisive_verdict(self, directive_id: str) -> PolicyVerdict | None:
        """The first verdict on the id that was not a duplicate: the one that decided it."""
        last = None
        async for m in self._read("STATUS", S.policy_status_subject(directive_id)):
            v = _parse(PolicyVerdict, m.data)
            if v is not None and v.decision != "duplicate":
                return v
            last = v or last
        return last

    async def _latest(self, stream: str, subject: str, model: type[BaseModel], what: str):
        m = await self._last(stream, subject)
        if m is None:
            raise NotPublished(f"the factory has not published {what} yet: is the desk running?")
        parsed = _parse(model, m.data)
        if parsed is None:
            raise NotPublished(f"{what} at {stream} seq {m.seq} cannot be read by this client (a different deskgate version?)")
        return parsed

    async def _maybe(self, stream: str, subject: str, model: type[BaseModel]):
        m = await self._last(stream, subject)
        return _parse(model, m.data) if m is not None else None

    async def _last(self, stream: str, subject: str) -> StoredMessage | None:
        try:
            return await last_message(self.nc, stream, subject)
        except (ReadError, nats.errors.Error) as exc:
            raise DeskUnreachable(f"cannot read {subject} from the bus: {exc}") from None

    async def _read(self, stream: str, subject: str):
        try:
            async for m in read_stream(self.nc, stream, subject):
                yield m
        except (ReadError, nats.errors.Error) as exc:
            raise DeskUnreachable(f"cannot read {subject} from the bus: {exc}") from None

    def _remember(self, directive: Directive) -> None:
        self._sent[directive.directive_id] = directive
        while len(self._sent) > MAX_REMEMBERED:
            self._sent.pop(next(iter(self._sent)))


# -- module helpers ---------------------------------------------------------------------


def _load(credentials: str | os.PathLike | AgentCredentials) -> AgentCredentials:
    if isinstance(credentials, AgentCredentials):
        return credentials
    try:
        return identity_credentials.read_credentials(Path(credentials))
    except identity_credentials.CredentialsError as exc:
        raise CredentialsError(str(exc)) from None


async def _open(kwargs: dict, agent: str, *, reconnect: bool, timeout: float) -> tuple[Client, SecurityEvents]:
    """Connect once without retrying, so a refusal is told at once; then, if asked, again with
    reconnection on (nats-py retries a refused first connection forever when it may reconnect)."""
    servers = ", ".join(kwargs["servers"])
    try:
        nc, events = await connect_with(kwargs, reconnect=False, connect_timeout=timeout)
    except nats.errors.Error as exc:
        if "authorization violation" in str(exc).lower():
            raise BusRefused(
                f"the bus refused agent {agent}'s credentials: the agent was revoked or rotated, or the file is for another desk"
            ) from None
        raise DeskUnreachable(f"cannot reach the desk's bus at {servers}: {exc}") from None
    except ssl.SSLCertVerificationError as exc:
        raise DeskUnreachable(
            f"the bus at {servers} is not the desk's: its TLS certificate does not come from the CA in agent {agent}'s "
            f"credentials ({exc.verify_message})"
        ) from None
    except (OSError, asyncio.TimeoutError) as exc:
        hint = ""
        if kwargs.get("tls_handshake_first") and isinstance(exc, (TimeoutError, asyncio.TimeoutError, ssl.SSLError)):
            hint = "; this client starts TLS first, so a bus with TLS needs `handshake_first` in its tls block (deskgate bus-config writes it)"
        raise DeskUnreachable(f"cannot reach the desk's bus at {servers}: {exc!r}{hint}") from None
    if not reconnect:
        return nc, events
    await nc.close()
    try:
        return await asyncio.wait_for(connect_with(kwargs, events=events, reconnect=True, connect_timeout=timeout), timeout * 2)
    except (nats.errors.Error, OSError, asyncio.TimeoutError) as exc:
        raise DeskUnreachable(f"the desk's bus at {servers} went away while connecting: {exc!r}") from None


async def _until(done, arrived: asyncio.Event, wait: float) -> bool:
    """Wait until `done()` (checked whenever `arrived` is set), at most `wait` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        arrived.clear()
        try:
            await asyncio.wait_for(arrived.wait(), timeout=remaining)
        except asyncio.TimeoutError:
            return done()
    return True


async def _unsubscribe(subs) -> None:
    """Leave live subjects; on a connection already closed there is nothing to leave."""
    for sub in subs:
        try:
            await sub.unsubscribe()
        except nats.errors.Error:
            pass


def _parse(model: type[BaseModel], data: bytes):
    try:
        return model.model_validate_json(data)
    except ValidationError:
        return None


def _directive_id(directive_id: str) -> str:
    """An id is one token of a subject: refuse anything else before it reaches one."""
    if not isinstance(directive_id, str) or not _ID_PATTERN.fullmatch(directive_id):
        raise InvalidDirective(f"{directive_id!r} is not a directive id (1-64 letters, digits, '_' or '-')")
    return directive_id
