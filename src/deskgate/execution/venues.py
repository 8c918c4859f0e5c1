"""The executor's venues by name, and what it last saw of each.

A venue under `venues:` in mission.yaml is reached through ccxt; any other name fills
on the paper venue. A venue whose keys cannot be read is still a venue: every call to
it fails with the reason (`missing key: ...`), so its orders are refused with that
reason and the executor keeps running instead of crash-looping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from deskgate.config import Mission
from deskgate.execution.credentials import CredentialsError, read_credentials
from deskgate.execution.venue import MarketRules, OrderTicket, Venue, VenueAuthFailed, VenueReport, VenueUnreachable

log = logging.getLogger("deskgate.executor")


class UnusableVenue:
    """A configured venue that cannot be used (its keys are missing or unreadable)."""

    local = False

    def __init__(self, name: str, problem: str):
        self.name = name
        self.problem = problem

    def _fail(self):
        raise VenueAuthFailed(self.problem)

    async def rules(self, symbol: str) -> MarketRules:
        self._fail()

    async def prepare(self, ticket: OrderTicket) -> OrderTicket | None:
        self._fail()

    async def place(self, ticket: OrderTicket) -> VenueReport:
        self._fail()

    async def lookup(self, client_id: str, symbol: str, since: datetime | None = None) -> VenueReport | None:
        self._fail()

    async def cancel(self, client_id: str, symbol: str, since: datetime | None = None) -> VenueReport | None:
        self._fail()

    async def balances(self) -> dict[str, float]:
        self._fail()

    async def positions(self) -> dict[str, float]:
        self._fail()

    async def open_orders(self) -> list[str]:
        self._fail()

    async def clock_skew_ms(self) -> float:
        self._fail()

    async def close(self) -> None:
        pass


@dataclass
class Seen:
    """The last word from a venue: whether its last call worked, and why not."""

    ok: bool = True
    problem: str = ""
    rate_limited_in_a_row: int = 0
    failures_in_a_row: int = 0
    auth_failed: bool = False


class VenueBook:
    def __init__(self, mission: Mission, paper: Venue, *, environ: dict[str, str] | None = None):
        self.mission = mission
        self.paper = paper
        self.environ = environ
        self.venues: dict[str, Venue] = {}
        self.seen: dict[str, Seen] = {}

    async def open(self) -> None:
        from deskgate.execution.ccxt_venue import CcxtVenue  # ccxt is large: only a desk with real venues loads it

        for name, settings in self.mission.venues.configured().items():
            try:
                creds = read_credentials(name, settings, self.environ)
            except CredentialsError as exc:
                log.error("venue %s cannot be used: %s", name, exc)
                self.venues[name] = UnusableVenue(name, str(exc))
                self.seen[name] = Seen(ok=False, problem=str(exc), auth_failed=True)
                continue
            self.venues[name] = CcxtVenue(name, settings, creds)
            self.seen[name] = Seen()
            log.info("venue %s: %s", name, "sandbox" if settings.sandbox else "LIVE")

    def get(self, name: str) -> Venue:
        return self.venues.get(name, self.paper)

    def real(self) -> list[Venue]:
        """The venues reached over the network (not paper, not one whose keys could not be read)."""
        return [v for v in self.venues.values() if hasattr(v, "guard")]

    def describe(self) -> str:
        real = [f"{n} ({'sandbox' if s.sandbox else 'live'})" for n, s in self.mission.venues.configured().items()]
        return f"{', '.join(real)}; any other on paper" if real else "paper only"

    def saw(self, name: str, exc: Exception | None, *, private: bool = True) -> None:
        """Note how a call to `name` went: None for an answer, else the failure. Only an answer
        to a signed (`private`) call shows the key works again."""
        seen = self.seen.setdefault(name, Seen())
        if exc is None:
            if seen.auth_failed and not private:
                return  # the venue answers, but our key is still refused
            seen.ok, seen.problem = True, ""
            seen.rate_limited_in_a_row = seen.failures_in_a_row = 0
            seen.auth_failed = False
            return
        seen.ok, seen.problem = False, str(exc)[:500]
        seen.failures_in_a_row += 1
        if isinstance(exc, VenueUnreachable) and exc.rate_limited:
            seen.rate_limited_in_a_row += 1
        elif isinstance(exc, VenueAuthFailed):
            seen.auth_failed = True
        elif not isinstance(exc, VenueUnreachable):
            seen.ok, seen.failures_in_a_row = True, 0  # a refusal is an answer

    async def close(self) -> None:
        for venue in self.venues.values():
            await venue.close()
