"""What a model is shown: compact rows, cut oldest first to a token budget."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from test_agents import T0, summary, view

from deskgate.agents.prompt_budget import PromptTooLong, TokenCounter, compact, fit, shown


def many(n: int):
    return view(since_last_cycle=[summary("BTC", end=T0 - timedelta(minutes=30 * i)) for i in range(n)][::-1])


def test_the_view_goes_out_as_compact_rows_with_every_citable_id():
    v = many(10)
    rows = compact(v)
    assert set(rows["since_last_cycle"][0]) == {"id", "asset", "end", "close", "ret_pct", "vol_pct", "range_pct", "volume_x", "regime", "changed"}
    text = json.dumps(rows)
    assert all(i in text for i in v.citable() if not i.startswith("recall:"))
    assert len(text) < len(v.model_dump_json()) / 1.5


async def test_a_prompt_is_cut_oldest_first_until_it_fits_and_says_when_it_cannot():
    v = many(48)
    counter = TokenCounter(None)  # no server: estimated
    render = lambda x: json.dumps(compact(x))  # noqa: E731
    full = await counter.count(render(shown(v)))
    kept, text = await fit(v, render, full // 3, counter)
    assert await counter.count(text) <= full // 3
    assert 0 < len(kept.since_last_cycle) < 48 and kept.since_last_cycle[-1] == v.since_last_cycle[-1]  # the newest stay
    assert all(s.summary_id in text for s in kept.since_last_cycle)
    unchanged, same = await fit(v, render, None, None)
    assert same == render(shown(v)) and len(unchanged.since_last_cycle) == 48
    with pytest.raises(PromptTooLong, match="cannot be cut to agents.model.prompt_tokens = 10: raise it"):
        await fit(v, render, 10, counter)
    assert counter.source == "an estimate, 4 characters a token"
