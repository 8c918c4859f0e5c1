"""What `deskgate.client` raises. Every message says what was wrong and, where it can, what to do.

    DeskClientError
    ├── CredentialsError   the credentials file is missing, unreadable, not one, or names no server
    ├── BusRefused         the bus refused the agent's credentials (revoked, rotated, another desk's)
    ├── DeskUnreachable    no bus answered at the address given
    ├── DeskMismatch       the credentials are for another desk than the one this bus serves
    ├── InvalidDirective   a directive, revision, directive id or asset that does not validate; names what
    ├── NotPublished       the factory has not published what was asked for (yet)
    └── VerdictTimeout     no verdict in time; names the directive and its stream sequence

`CredentialsError` is also `deskgate.identity.credentials.CredentialsError`, and
`InvalidDirective` a `ValueError`, so code written against either keeps working.
"""

from __future__ import annotations

from deskgate.identity import credentials as _credentials


class DeskClientError(Exception):
    """Anything `deskgate.client` cannot do; the message names what was wrong."""


class CredentialsError(DeskClientError, _credentials.CredentialsError):
    pass


class BusRefused(DeskClientError):
    pass


class DeskUnreachable(DeskClientError):
    pass


class DeskMismatch(DeskClientError):
    pass


class InvalidDirective(DeskClientError, ValueError):
    pass


class NotPublished(DeskClientError):
    pass


class VerdictTimeout(DeskClientError, TimeoutError):
    def __init__(self, directive_id: str, seq: int, waited: float):
        self.directive_id, self.seq, self.waited = directive_id, seq, waited
        super().__init__(
            f"no verdict on directive {directive_id} (DIRECTIVES seq {seq}) within {waited:g} s: the bus stored it, "
            f"so the factory evaluates it when it runs; read the verdict later with verdict({directive_id!r})"
        )
