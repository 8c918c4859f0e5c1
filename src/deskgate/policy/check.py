"""One check's result, and what "within a limit" means: shared by the desk's guardrail
checks (policy/engine.py) and an agent's mandate checks (policy/mandate.py)."""

from __future__ import annotations

from dataclasses import dataclass

# Relative slack on inclusive limits, so 25.000000000000004% (float noise on an
# exact 25%) is not refused. It is far below any amount a desk would notice.
LIMIT_TOLERANCE = 1e-9


def within(observed: float, limit: float) -> bool:
    return observed <= limit + LIMIT_TOLERANCE * max(1.0, abs(limit))


@dataclass(slots=True)
class Check:
    name: str
    passed: bool
    observed: object
    limit: object
    reason: str
