"""Submitting directives as the agent role, and collecting the factory's verdicts.

The agent role may publish directives and read statuses; nothing here could
stage, approve or execute anything even if it tried: the broker refuses it.
"""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client

from deskgate.audit.keys import KeyStore
from deskgate.audit.signing import Kind, Signer
from deskgate.bus import subjects as S
from deskgate.bus.connect import SecurityEvents, connect_as
from deskgate.bus.live import read_live
from deskgate.domain.evaluation import PolicyVerdict
from deskgate.domain.review import ReviewRequest
from deskgate.paths import DataDir


def _asset_token(payload: bytes) -> str:
    try:
        data = json.loads(payload)
        asset = data.get("asset") if isinstance(data, dict) else None
    except (ValueError, UnicodeDecodeError):
        asset = None
    return asset if isinstance(asset, str) and asset else "unknown"


class AgentClient:
    """The agent role on the bus. Everything it publishes is signed with the agent's key,
    which the factory checks before evaluating and the executor before filling."""

    def __init__(self, nc: Client, events: SecurityEvents, signer: Signer):
        self.nc = nc
        self.js = nc.jetstream()
        self.events = events
        self.signer = signer

    @classmethod
    async def connect(cls, data_dir: DataDir) -> AgentClient:
        signer = Signer(KeyStore(data_dir.keys), "agent")
        nc, events = await connect_as(data_dir, S.Role.AGENT, name="deskgate-agent-cli", reconnect=False)
        return cls(nc, events, signer)

    async def publish_insight(self, subject: str, payload: bytes) -> None:
        await self.js.publish(subject, payload, headers=self.signer.headers(Kind.INSIGHT, payload))

    async def close(self) -> None:
        await self.nc.drain()

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def submit(self, payloads: list[bytes], *, wait: float = 10.0, sign: bool = True) -> list[PolicyVerdict | None]:
        """Publish each payload as-is, signed (unless `sign` is off, to show what the factory
        does with an unsigned one), and return the factory's verdict for each, in order."""
        verdicts: dict[int, PolicyVerdict] = {}
        arrived = asyncio.Event()

        async def on_verdict(msg) -> None:
            v = read_live(msg, "STATUS", PolicyVerdict)
            if v is not None:
                verdicts[v.seq] = v
                arrived.set()

        sub = await self.nc.subscribe("factory.status.policy.>", cb=on_verdict)
        seqs: list[int] = []
        try:
            for payload in payloads:
                headers = self.signer.headers(Kind.DIRECTIVE, payload) if sign else None
                ack = await self.js.publish(S.directive_subject(_asset_token(payload)), payload, headers=headers)
                seqs.append(ack.seq)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while any(s not in verdicts for s in seqs):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), timeout=remaining)
                except asyncio.TimeoutError:
                    break
        finally:
            await sub.unsubscribe()
        return [verdicts.get(s) for s in seqs]

    async def request_review(self, review: ReviewRequest) -> int:
        """Ask a human to look at something; returns the stream sequence. It can never become an order."""
        ack = await self.js.publish(
            S.review_subject(review.review_id), review.to_bytes(), headers={"Nats-Msg-Id": f"review-{review.review_id}"}
        )
        return ack.seq
