"""The desk's own agents' client: `deskgate.client.DeskClient`, as every agent's, plus insights and reviews.

The agent role may publish directives and read statuses; nothing here could
stage, approve or execute anything even if it tried: the broker refuses it.
The desk's built-in agents are one agent identity, `desk`: they sign with the key in
its credentials file (`<data_dir>/agents/desk.json`, made by `deskgate init`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from nats.aio.client import Client

from deskgate.audit.keys import SigningKeyError
from deskgate.audit.signing import Kind, Signer
from deskgate.bus import subjects as S
from deskgate.bus.connect import SecurityEvents, connect_as
from deskgate.bus.live import read_live
from deskgate.bus.publish import publish_stored
from deskgate.client import DeskClient
from deskgate.domain.evaluation import PolicyVerdict
from deskgate.domain.review import ReviewRequest
from deskgate.identity.credentials import CredentialsError, read_credentials
from deskgate.identity.names import BUILT_IN_AGENT, agent_of_signer
from deskgate.identity.registry import default_credentials_path
from deskgate.paths import DataDir


def desk_signer(data_dir: DataDir) -> Signer:
    """The built-in agents' signer: the `desk` identity's own key, from its credentials file.
    A missing or unusable file is a SigningKeyError, as a missing role key is."""
    path = default_credentials_path(data_dir, BUILT_IN_AGENT)
    if not path.exists():
        raise SigningKeyError(f"no credentials file for the desk's own agents ({BUILT_IN_AGENT}) at {path}; `deskgate init` makes it")
    try:
        creds = read_credentials(path)
        return Signer.of(creds.signer, creds.signing_key())
    except CredentialsError as exc:
        raise SigningKeyError(
            f"the desk's own agents ({BUILT_IN_AGENT}) cannot sign: {exc}"
        ) from None


def _asset_token(payload: bytes) -> str:
    try:
        data = json.loads(payload)
        asset = data.get("asset") if isinstance(data, dict) else None
    except (ValueError, UnicodeDecodeError):
        asset = None
    return asset if isinstance(asset, str) and asset else "unknown"


class AgentClient(DeskClient):
    """The desk's own agents on the bus: a `DeskClient` (the one way in for every agent), with
    what only the desk's own agents do besides drafting: publish their insights and ask for
    reviews. Everything it publishes is signed with the agent's own key, which the factory
    checks before evaluating and the executor before filling."""

    def __init__(self, nc: Client, events: SecurityEvents, signer: Signer):
        super().__init__(nc, signer, agent=agent_of_signer(signer.name), events=events)
        # With standbys (standby.py): raises LeaseLost unless this instance surely holds the
        # agents' lease, asked before each publish, so a holder that thaws after losing it drafts nothing.
        self.guard: Callable[[], None] | None = None

    def check(self) -> None:
        """LeaseLost unless this instance may publish (always, without standbys)."""
        if self.guard is not None:
            self.guard()

    async def submit(self, directive, *, wait: float = 10.0):  # type: ignore[override]
        self.check()
        return await super().submit(directive, wait=wait)

    @classmethod
    async def connect(cls, data_dir: DataDir, signer: Signer | None = None) -> AgentClient:  # type: ignore[override]
        """As the desk's own `desk` agent, unless another agent's `signer` is given."""
        signer = signer or desk_signer(data_dir)
        nc, events = await connect_as(data_dir, S.Role.AGENT, name="deskgate-agent-cli", reconnect=False)
        return cls(nc, events, signer)

    async def publish_insight(self, subject: str, payload: bytes) -> None:
        self.check()
        await self.js.publish(subject, payload, headers=self.signer.headers(Kind.INSIGHT, payload))

    async def __aenter__(self) -> AgentClient:
        return self

    async def submit_payloads(self, payloads: list[bytes], *, wait: float = 10.0, sign: bool = True) -> list[PolicyVerdict | None]:
        """Publish each payload as-is (not validated first, unlike `submit`), signed unless `sign`
        is off (to show what the factory does with an unsigned one), and return the factory's
        verdict for each, in order: for `deskgate directive submit` and tests of the gate."""
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
                ack = await publish_stored(self.js, S.directive_subject(_asset_token(payload)), payload, headers)
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
        """Ask a human to look at something, signed like everything the agent publishes;
        returns the stream sequence. It can never become an order. No Nats-Msg-Id: any
        agent can set that header, and one taken first would have this request dropped as
        a duplicate; the Command Center shows one request per agent and id, so one asked
        again (a cycle run again) is shown once."""
        self.check()
        payload = review.to_bytes()
        ack = await self.js.publish(S.review_subject(review.review_id), payload, headers=self.signer.headers(Kind.REVIEW, payload))
        return ack.seq
