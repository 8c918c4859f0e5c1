"""Submitting directives as the agent role, and collecting the factory's verdicts.

The agent role may publish directives and read statuses; nothing here could
stage, approve or execute anything even if it tried: the broker refuses it.
"""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client

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
    def __init__(self, nc: Client, events: SecurityEvents):
        self.nc = nc
        self.js = nc.jetstream()
        self.events = events

    @classmethod
    async def connect(cls, data_dir: DataDir) -> AgentClient:
        nc, events = await connect_as(data_dir, S.Role.AGENT, name="deskgate-agent-cli", reconnect=False)
        return cls(nc, events)

    async def close(self) -> None:
        await self.nc.drain()

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def submit(self, payloads: list[bytes], *, wait: float = 10.0) -> list[PolicyVerdict | None]:
        """Publish each payload as-is and return the factory's verdict for each, in order."""
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
                ack = await self.js.publish(S.directive_subject(_asset_token(payload)), payload)
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
