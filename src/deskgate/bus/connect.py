"""Connecting to the bus as one role, and counting what the broker refuses.

A publish the broker refuses never reaches anyone; nats-server reports it to the
client asynchronously through `error_cb`. We log every refusal as a security
event and count it, so a misbehaving agent shows up in metrics and tests.

Connection arguments are JSON (`deskgate creds`, a credentials file); on a bus with TLS
they carry the CA's PEM as `tls_ca`, made into an SSL context here (bus/tls.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client

from deskgate.bus.credentials import connect_kwargs
from deskgate.bus.subjects import Role
from deskgate.bus.tls import nats_options
from deskgate.paths import DataDir

log = logging.getLogger("deskgate.bus")


@dataclass
class SecurityEvents:
    """Permission violations reported by the server to this connection."""

    violations: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    other_errors: list[str] = field(default_factory=list)

    async def on_error(self, exc: Exception) -> None:
        text = str(exc)
        if "permissions violation" in text.lower():
            self.violations.append(text)
            self.counts["permission_violation"] += 1
            log.warning("security event: broker refused %s", text)
        else:
            self.other_errors.append(text)
            log.info("bus error: %s", text)

    def refused(self, subject: str) -> bool:
        # nats-py lower-cases the server's message.
        needle = f'"{subject.lower()}"'
        return any(needle in v.lower() for v in self.violations)


async def connect_as(
    data_dir: DataDir | str,
    role: Role | str,
    *,
    events: SecurityEvents | None = None,
    name: str | None = None,
    connect_timeout: float = 5.0,
    reconnect: bool = True,
    **overrides,
) -> tuple[Client, SecurityEvents]:
    data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir.at(data_dir)
    kwargs = connect_kwargs(data_dir, role)
    if name:
        kwargs["name"] = name
    kwargs.update(overrides)
    return await connect_with(kwargs, events=events, connect_timeout=connect_timeout, reconnect=reconnect)


async def connect_with(
    kwargs: dict,
    *,
    events: SecurityEvents | None = None,
    connect_timeout: float = 5.0,
    reconnect: bool = True,
) -> tuple[Client, SecurityEvents]:
    events = events or SecurityEvents()

    async def disconnected() -> None:
        log.info("bus disconnected")

    async def reconnected() -> None:
        log.info("bus reconnected")

    nc = await nats.connect(
        **nats_options(kwargs),
        error_cb=events.on_error,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        connect_timeout=connect_timeout,
        allow_reconnect=reconnect,
        # nats-py reads 0 as "no limit" when picking a server, so a client that must not
        # reconnect would retry a dead bus forever; 1 gives up after a second try.
        max_reconnect_attempts=-1 if reconnect else 1,
        reconnect_time_wait=0.25,
    )
    return nc, events
