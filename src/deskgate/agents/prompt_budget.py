"""What a model is shown of the desk, in compact rows, cut to a token budget.

A full JSON dump of the view costs tokens a CPU-bound local model reads at tens per
second (an 18k-token view took 76 s just to read). So the view goes out as compact
rows (ids, the few numbers an analyst weighs, rounded), and, with
`agents.model.prompt_tokens` set, the oldest summaries, fills and news and the tail
of the memory text are cut until the whole prompt fits. Tokens are counted by the
model server's own tokenizer where it has one (llama.cpp's `/tokenize`), else
estimated at four characters a token; `TokenCounter.source` says which.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import urllib.request
from collections.abc import Callable

from deskgate.agents.view import DeskView

log = logging.getLogger(__name__)

LLM_SINCE_MAX = 48  # summaries since the last cycle shown to a model (the newest); the offline analyst sees all
LLM_FILLS_MAX = 50
LLM_NEWS_MAX = 10  # the newest news items shown to a model (each at most ~4,000 characters)
MAX_CUTS = 64


def shown(view: DeskView) -> DeskView:
    """The view within the usual caps: the newest summaries, fills and news."""
    return view.model_copy(
        update={"since_last_cycle": view.since_last_cycle[-LLM_SINCE_MAX:], "fills": view.fills[-LLM_FILLS_MAX:], "news": view.news[-LLM_NEWS_MAX:]}
    )


def _summary(s) -> dict:
    return {"id": s.summary_id, "asset": s.asset, "end": f"{s.window_end:%Y-%m-%d %H:%M}", "close": round(s.close, 6),
            "ret_pct": round(s.return_pct, 3), "vol_pct": round(s.realised_vol_pct, 1), "range_pct": round(s.range_pct, 3),
            "volume_x": None if s.volume_vs_norm is None else round(s.volume_vs_norm, 2), "regime": s.regime,
            "changed": s.regime_changed}


def compact(view: DeskView) -> dict:
    """The view as rows: what an analyst reads, without the fields only code uses."""
    return {
        "at": f"{view.at:%Y-%m-%d %H:%M}", "cycle": view.cycle, "equity_usd": round(view.equity_usd, 2),
        "peak_equity_usd": round(view.peak_equity_usd, 2), "drawdown_pct": round(view.drawdown_pct, 3), "leverage": round(view.leverage, 3),
        "day_start_equity_usd": None if view.day_start_equity_usd is None else round(view.day_start_equity_usd, 2),
        "positions": [p.model_dump(mode="json") for p in view.positions],
        "limits": view.limits.model_dump(mode="json"), "venue": view.venue, "model_slippage_bps": view.model_slippage_bps,
        "summaries": [_summary(s) for s in view.summaries],
        "signals": [{"id": g.signal_id, "asset": g.asset, "direction": g.direction, "drift_pct_per_day": round(g.drift_pct_per_day, 3),
                     "drift_std_pct_per_day": round(g.drift_std_pct_per_day, 3), "p_up": round(g.probability_up, 3)} for g in view.signals],
        "since_last_cycle": [_summary(s) for s in view.since_last_cycle],
        "fills": [{"id": f.fill_id, "directive_id": f.directive_id, "asset": f.asset, "side": f.side, "status": f.status,
                   "notional_usd": round(f.notional_usd, 2), "price": f.price, "slippage_bps": round(f.slippage_bps, 2),
                   "fee_usd": round(f.fee_usd, 2), "reason": f.reason} for f in view.fills],
        "news": [n.model_dump(mode="json") for n in view.news],
        "governor": view.governor.model_dump(mode="json"),
        "memory": view.memory,
    }


class TokenCounter:
    """Counts a prompt's tokens with the model server's tokenizer (llama.cpp `/tokenize`) when it has one."""

    def __init__(self, base_url: str | None, timeout: float = 10.0):
        self.root = re.sub(r"/v1/?$", "", base_url.rstrip("/")) if base_url else None
        self.timeout = timeout
        self.server = self.root is not None  # until it turns out not to have one
        self.source = f"the tokenizer at {self.root}/tokenize" if self.server else "an estimate, 4 characters a token"

    async def count(self, text: str) -> int:
        if self.server:
            try:
                return await asyncio.to_thread(self._server_count, text)
            except Exception as exc:  # noqa: BLE001 - no such endpoint, or down: estimate from now on
                self.server = False
                self.source = "an estimate, 4 characters a token"
                log.warning("the model server has no usable /tokenize (%s); prompt tokens are estimated", exc)
        return math.ceil(len(text) / 4)

    def _server_count(self, text: str) -> int:
        req = urllib.request.Request(f"{self.root}/tokenize", data=json.dumps({"content": text}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as answer:  # noqa: S310 - the configured model server
            return len(json.loads(answer.read())["tokens"])


class PromptTooLong(ValueError):
    pass


async def fit(
    view: DeskView, render: Callable[[DeskView], str], budget: int | None, counter: TokenCounter | None, fixed: str = ""
) -> tuple[DeskView, str]:
    """The view as shown and the rendered prompt, cut (oldest first) until the prompt and `fixed` (the
    instructions, which are sent too) are within `budget` tokens."""
    view = shown(view)
    text = render(view)
    if budget is None or counter is None:
        return view, text
    for _ in range(MAX_CUTS):
        n = await counter.count(fixed + "\n" + text if fixed else text)
        if n <= budget:
            return view, text
        cut = _cut(view)
        if cut is None:
            break
        view, text = cut, render(cut)
    raise PromptTooLong(f"the prompt needs {n} tokens ({counter.source}) and cannot be cut to agents.model.prompt_tokens = {budget}: raise it")


def _cut(view: DeskView) -> DeskView | None:
    """Half of whichever is largest as text among the summaries since the last cycle, the fills, the news
    and the recall lines of the memory (the core blocks stay); None when nothing is left to cut."""
    lines = view.memory.splitlines()
    recall_at = next((i for i, line in enumerate(lines) if line.startswith("## recall (")), len(lines))
    options = [
        (sum(len(s.model_dump_json()) for s in view.since_last_cycle), "since_last_cycle"),
        (sum(len(f.model_dump_json()) for f in view.fills), "fills"),
        (sum(len(n.model_dump_json()) for n in view.news), "news"),
        (sum(len(line) for line in lines[recall_at + 1 :]), "memory"),
    ]
    size, what = max(options)
    if size <= 0:
        return None
    if what == "memory":
        kept = lines[: recall_at + 1 + (len(lines) - recall_at - 1) // 2]
        memory = "\n".join(kept)
        ids = [i for i in view.memory_ids if f"[#{i} " in memory]
        return view.model_copy(update={"memory": memory, "memory_ids": ids})
    items = getattr(view, what)
    return view.model_copy(update={what: items[len(items) - len(items) // 2 :] if len(items) > 1 else []})
