"""The factory's read model, shared by its components and never replaced.

`Beliefs` is what the policy engine sees. Who writes which part:
- prices, positions, `equity_usd`, `peak_equity_usd`: the book (the breaker keeper
  only through `Book.rebase_breaker_peak` on a principal's reset);
- `pending` reservations: intake (stage), approvals (release, reserve) and the book
  (release on a fill);
- `breaker_tripped`: the breaker keeper;
- `confidence_damping`: the Governor watch.

`load` refills the holder from the database; components keep the holder, never
what is inside it, so a reload reaches all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deskgate.factory.funnel import FunnelCounter
from deskgate.policy.beliefs import Beliefs
from deskgate.portfolio.ledger import Ledger


@dataclass
class FactoryState:
    beliefs: Beliefs | None = None
    ledger: Ledger | None = None
    counter: FunnelCounter = field(default_factory=FunnelCounter)
