"""How an agent identity is named on the bus and in signatures, in one place."""

from __future__ import annotations

import re

# Lower-case ASCII, no dots: the name becomes a token of the agent's inbox subject.
AGENT_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
AGENT_SIGNER_PREFIX = "agent:"
BUILT_IN_AGENT = "desk"


class AgentNameError(ValueError):
    pass


def check_agent_name(name: str) -> str:
    if not isinstance(name, str) or not AGENT_NAME_PATTERN.fullmatch(name):
        raise AgentNameError(
            f"agent name {name!r} is not allowed: use 1-64 lower-case letters, digits, '_' or '-', starting with a letter or digit"
        )
    return name


def agent_signer(name: str) -> str:
    """The signer name an agent's signatures carry (`Deskgate-Signer`)."""
    return AGENT_SIGNER_PREFIX + check_agent_name(name)


def agent_of_signer(signer: str | None) -> str | None:
    """The agent a signer name stands for, or None when it is not a well-formed agent signer."""
    if not signer or not signer.startswith(AGENT_SIGNER_PREFIX):
        return None
    name = signer.removeprefix(AGENT_SIGNER_PREFIX)
    return name if AGENT_NAME_PATTERN.fullmatch(name) else None


def agent_user(name: str) -> str:
    """The agent's NATS user, alone in its own account (bus/accounts.py)."""
    return "agent-" + check_agent_name(name)


def agent_inbox_prefix(name: str) -> str:
    """Each agent reads only its own replies: its inbox is under the agent role's, one token down."""
    return "_INBOX_agent." + check_agent_name(name)
