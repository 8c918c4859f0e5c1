"""Keeping insights honest: every citation must name a data point the agent was shown."""

from __future__ import annotations

from dataclasses import dataclass

from deskgate.agents.outputs import Insight


@dataclass(frozen=True)
class CitationCheck:
    kept: list[Insight]
    invented: list[str]  # cited ids that were not in the view
    dropped: int  # insights left with no real citation


def check_citations(insights: list[Insight], citable: set[str]) -> CitationCheck:
    """Drop invented ids from each insight; drop an insight whose every citation was invented."""
    kept: list[Insight] = []
    invented: list[str] = []
    dropped = 0
    for insight in insights:
        real = [e for e in insight.evidence if e in citable]
        invented.extend(e for e in insight.evidence if e not in citable)
        if not real:
            dropped += 1
            continue
        kept.append(insight if len(real) == len(insight.evidence) else insight.model_copy(update={"evidence": real}))
    return CitationCheck(kept, invented, dropped)
