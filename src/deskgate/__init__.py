"""deskgate: LLM agents draft, deterministic guardrails decide what reaches a human,
a human decides what executes."""

__version__ = "0.1.0"

from deskgate import _nats_transport

_nats_transport.install()
