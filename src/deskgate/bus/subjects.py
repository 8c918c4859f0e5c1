"""The NATS subject map: every subject family, its stream, who may publish and who may read.

This table is the single source of truth. Broker permissions (bus/permissions.py),
streams (bus/streams.py) and the docs are all generated from it, so a subject
cannot be added without deciding who may touch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    AGENT = "agent"
    FACTORY = "factory"
    EXECUTOR = "executor"
    COMMAND_CENTER = "command_center"
    MARKETDATA = "marketdata"
    OBSERVER = "observer"
    # Creates streams, consumers and the KV bucket at start-up; never given to a service.
    PROVISIONER = "provisioner"


SERVICE_ROLES: tuple[Role, ...] = (
    Role.AGENT,
    Role.FACTORY,
    Role.EXECUTOR,
    Role.COMMAND_CENTER,
    Role.MARKETDATA,
    Role.OBSERVER,
)

A, F, X, C, M, O = Role.AGENT, Role.FACTORY, Role.EXECUTOR, Role.COMMAND_CENTER, Role.MARKETDATA, Role.OBSERVER
EVERYONE = frozenset(SERVICE_ROLES)
LEASE_READERS = EVERYONE - {A}

BREAKER_BUCKET = "deskgate_breaker"
LEASE_BUCKET = "deskgate_leases"
BREAKER_TRIP_KEY = "trip"
BREAKER_RESET_KEY = "reset"
GOVERNOR_CLEAR_SUBJECT = "approvals.governor.clear"
RELEASE_SUBJECT = "quarantine.release"


@dataclass(frozen=True)
class SubjectFamily:
    pattern: str
    stream: str | None
    publishers: frozenset[Role]
    readers: frozenset[Role]
    about: str


# fmt: off
SUBJECTS: tuple[SubjectFamily, ...] = (
    SubjectFamily("market.data.bars.>", "MARKET", frozenset({M}), EVERYONE,
                  "price bars per asset: market.data.bars.<ASSET>"),
    SubjectFamily("market.data.aggregated.>", "MARKET", frozenset({M}), EVERYONE,
                  "window summaries for the agents (30 minutes): market.data.aggregated.<ASSET>"),
    SubjectFamily("market.data.signals.>", "MARKET", frozenset({M}), EVERYONE,
                  "signal model output per asset: market.data.signals.<ASSET>"),
    SubjectFamily("market.data.news", "MARKET", frozenset({M}), EVERYONE,
                  "news items that passed the injection screen, wrapped and datamarked (NewsItem)"),
    SubjectFamily("quarantine.news", "QUARANTINE", frozenset({M}), frozenset({M, C, O}),
                  "news items the screen flagged, kept with their reasons for a person; never readable by the agent"),
    SubjectFamily(RELEASE_SUBJECT, "QUARANTINE", frozenset({C}), frozenset({M, C, O}),
                  "a principal releases a quarantined item the screen got wrong (signed); the market-data"
                  " service then publishes it, wrapped, and keeps it as labelled data for the next training run"),
    SubjectFamily("consciousness.directives.>", "DIRECTIVES", frozenset({A}), frozenset({A, F, C, O}),
                  "directives drafted by agents: consciousness.directives.<ASSET>"),
    SubjectFamily("consciousness.insights.>", "INSIGHTS", frozenset({A}), frozenset({A, F, C, O}),
                  "agent output: consciousness.insights.<kind> (morning_brief, intraday, eod_review, governor);"
                  " the factory reads only the Governor's damping, which can only lower confidence"),
    SubjectFamily("approvals.queue.directive.>", "APPROVALS", frozenset({F}), frozenset({C, O}),
                  "directives staged by the policy engine, awaiting a principal"),
    SubjectFamily("approvals.queue.review.>", "REVIEWS", frozenset({A}), frozenset({C, O}),
                  "agent requests for a human look; never lead to an order. A stream of their own: no"
                  " agent writes where the factory stages (its Nats-Msg-Id would pre-empt a staging)"),
    SubjectFamily("approvals.acknowledged.>", "RESPONSES", frozenset({C}), frozenset({A, F, C, O}),
                  "a person has seen a review request: approvals.acknowledged.<id>; outside the factory's consumer"),
    SubjectFamily(GOVERNOR_CLEAR_SUBJECT, "RESPONSES", frozenset({C}), frozenset({A, F, C, O}),
                  "a principal clears the Governor's drift alarm; outside the factory's consumer"),
    SubjectFamily("approvals.response.>", "RESPONSES", frozenset({C}), frozenset({A, F, C, O}),
                  "a principal's decision on a staged directive: approvals.response.<id>"),
    SubjectFamily("factory.status.>", "STATUS", frozenset({F}), EVERYONE,
                  "policy verdicts, approval outcomes, portfolio, funnel, the desk's facts for agents"),
    SubjectFamily("factory.execution.orders.>", "ORDERS", frozenset({F}), frozenset({A, F, X, C, O}),
                  "orders after approval: factory.execution.orders.<VENUE>"),
    SubjectFamily("factory.execution.fills.>", "FILLS", frozenset({X}), frozenset({A, F, X, C, O}),
                  "fills from the venue: factory.execution.fills.<VENUE>"),
    SubjectFamily("factory.execution.venues.>", "VENUES", frozenset({X}), frozenset({F, X, C, O}),
                  "the executor's look at each real venue (health, balances, open orders), signed:"
                  " factory.execution.venues.<VENUE>; the factory reconciles it with its book"),
    SubjectFamily("approvals.venues.>", "RESPONSES", frozenset({C}), frozenset({A, F, C, O}),
                  "a principal acknowledges a venue's mismatch with the book (signed): approvals.venues.<VENUE>;"
                  " outside the factory's decision consumer"),
    SubjectFamily(f"$KV.{BREAKER_BUCKET}.{BREAKER_TRIP_KEY}", f"KV_{BREAKER_BUCKET}", frozenset({F}), EVERYONE,
                  "circuit breaker trips, written only by the factory"),
    SubjectFamily(f"$KV.{BREAKER_BUCKET}.{BREAKER_RESET_KEY}", f"KV_{BREAKER_BUCKET}", frozenset({C}), EVERYONE,
                  "circuit breaker resets, written only by a principal through the command center"),
    # Read whole by direct get, so one set of readers for every lease (a holder's name, its host
    # and data directory, is no secret among the desk's services); each lease is written only by
    # its own service's role. Never the agent role's (it may write no `$KV.` key at all, DESIGN §3)
    # nor the observer's (read-only, and handed to outside tools): the desk's own agents and the
    # audit service hold their leases in their stores (store_lease.py).
    SubjectFamily(f"$KV.{LEASE_BUCKET}.factory", f"KV_{LEASE_BUCKET}", frozenset({F}), LEASE_READERS,
                  "which factory instance is the active one (bus/lease.py): standbys wait for it to expire"),
    SubjectFamily(f"$KV.{LEASE_BUCKET}.executor", f"KV_{LEASE_BUCKET}", frozenset({X}), LEASE_READERS,
                  "which executor instance is the active one, the only one that takes orders and speaks to venues"),
    SubjectFamily(f"$KV.{LEASE_BUCKET}.marketdata", f"KV_{LEASE_BUCKET}", frozenset({M}), LEASE_READERS,
                  "which market-data instance is the active one, the only one that publishes bars and news"),
    SubjectFamily(f"$KV.{LEASE_BUCKET}.web", f"KV_{LEASE_BUCKET}", frozenset({C}), LEASE_READERS,
                  "which Command Center instance is the active one, the only one that serves"),
)
# fmt: on


# Concrete subjects, built in one place.
def directive_subject(asset: str) -> str:
    return f"consciousness.directives.{_token(asset)}"


def policy_status_subject(directive_id: str) -> str:
    return f"factory.status.policy.{directive_id}"


def approval_status_subject(directive_id: str) -> str:
    return f"factory.status.approval.{directive_id}"


def staged_subject(directive_id: str) -> str:
    return f"approvals.queue.directive.{directive_id}"


def review_subject(review_id: str) -> str:
    return f"approvals.queue.review.{review_id}"


def review_ack_subject(review_id: str) -> str:
    return f"approvals.acknowledged.{review_id}"


def response_subject(directive_id: str) -> str:
    return f"approvals.response.{directive_id}"


def order_subject(venue: str) -> str:
    return f"factory.execution.orders.{_token(venue)}"


def venue_observation_subject(venue: str) -> str:
    return f"factory.execution.venues.{_token(venue)}"


def venue_status_subject(venue: str) -> str:
    return f"factory.status.venue.{_token(venue)}"


def venue_ack_subject(venue: str) -> str:
    return f"approvals.venues.{_token(venue)}"


def fill_subject(venue: str) -> str:
    return f"factory.execution.fills.{_token(venue)}"


BARS = "market.data.bars.>"


def bar_subject(asset: str) -> str:
    return f"market.data.bars.{_token(asset)}"


def summary_subject(asset: str) -> str:
    return f"market.data.aggregated.{_token(asset)}"


def signal_subject(asset: str) -> str:
    return f"market.data.signals.{_token(asset)}"


def insight_subject(kind: str) -> str:
    return f"consciousness.insights.{_token(kind)}"


NEWS_SUBJECT = "market.data.news"
QUARANTINE_SUBJECT = "quarantine.news"
GOVERNOR_STATE_SUBJECT = "consciousness.insights.governor"
GOVERNOR_HOLD_SUBJECT = "factory.status.governor"
PORTFOLIO_SUBJECT = "factory.status.portfolio"
FUNNEL_SUBJECT = "factory.status.funnel"
BREAKER_STATUS_SUBJECT = "factory.status.breaker"
# The desk's id, guardrails, approval settings and mandates, for the agents (domain/desk.py).
DESK_SUBJECT = "factory.status.desk"


def lease_subject(service: str) -> str:
    return f"$KV.{LEASE_BUCKET}.{service}"


def breaker_kv_subject(key: str) -> str:
    return f"$KV.{BREAKER_BUCKET}.{key}"


def _token(text: str) -> str:
    """One safe subject token: anything that is not [A-Za-z0-9_-] becomes '_'."""
    out = "".join(ch if (ch.isascii() and (ch.isalnum() or ch in "_-")) else "_" for ch in text)
    return out or "_"
