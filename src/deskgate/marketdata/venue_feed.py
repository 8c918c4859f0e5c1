"""Bars and prices from a real venue (`marketdata.source: ccxt`), so the desk marks its
book and its bands at the prices where its orders execute.

Each poll reads, per asset, the venue's closed candles since the last one published
(OHLCV, summarised for the agents like any bar) and its latest price (a flat bar with
no volume, for marks only). Public endpoints only: no key. A venue that is down, slow
or answers nonsense is logged and polled again; the service never stops for it.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone

from deskgate.config import MarketData, VenueSettings
from deskgate.domain.market import Bar

log = logging.getLogger("deskgate.marketdata")

TIMEFRAME_S = {"1m": 60.0, "5m": 300.0, "15m": 900.0, "1h": 3600.0}


def _positive(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values)


def candles_to_bars(asset: str, rows, timeframe: str, source: str, after_ms: int, now_ms: int) -> list[Bar]:
    """The closed candles after `after_ms`, as bars; a malformed row is skipped, never published."""
    step_ms = TIMEFRAME_S[timeframe] * 1000
    out = []
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, (list, tuple)) or len(row) < 6:
            continue
        ts, o, h, low, c, v = row[:6]
        if not isinstance(ts, (int, float)) or ts <= after_ms or ts + step_ms > now_ms:
            continue  # already published, or still forming
        if not _positive(o, h, low, c) or not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0) or not low <= min(o, c) <= max(o, c) <= h:
            log.warning("skipped a malformed %s candle for %s: %r", source, asset, row[:6])
            continue
        out.append(Bar(asset=asset, ts=datetime.fromtimestamp(ts / 1000, timezone.utc), open=o, high=h, low=low, close=c, volume=v,
                       interval_seconds=TIMEFRAME_S[timeframe], source=source))
    return sorted(out, key=lambda b: b.ts)


class VenueFeed:
    def __init__(self, md: MarketData, settings: VenueSettings):
        from deskgate.execution.ccxt_venue import make_exchange  # ccxt only for a desk that feeds from a venue

        self.md = md
        self.feed = md.ccxt
        self.source = f"ccxt:{self.feed.venue}"
        # Bars are the spot market's, from the hosts orders go to (binance's demo with derivatives).
        self.exchange = make_exchange(self.feed.venue, settings, None, spot_only=True)
        self.quote = settings.quote
        self.last_ms: dict[str, int] = {}

    async def poll(self, now: datetime) -> list[tuple[Bar, bool]]:
        """New bars: (bar, summarise) — candles are summarised, latest prices only mark."""
        out: list[tuple[Bar, bool]] = []
        now_ms = int(now.timestamp() * 1000)
        for asset in self.md.assets:
            symbol = f"{asset}/{self.quote}"
            try:
                since = self.last_ms.get(asset)
                rows = await self.exchange.fetch_ohlcv(symbol, self.feed.timeframe, since=since + 1 if since else None, limit=100)
                bars = candles_to_bars(asset, rows, self.feed.timeframe, self.source, since or 0, now_ms)
                if bars:
                    self.last_ms[asset] = int(bars[-1].ts.timestamp() * 1000)
                out += [(b, True) for b in bars]
                ticker = await self.exchange.fetch_ticker(symbol)
                last = ticker.get("last") if isinstance(ticker, dict) else None
                if _positive(last):
                    out.append((Bar.at_price(asset, float(last), f"{self.source}:last", interval_seconds=self.feed.poll_seconds), False))
            except Exception as exc:  # noqa: BLE001 - any venue failure: said, and polled again
                log.warning("%s: no market data for %s this time: %s", self.source, symbol, str(exc)[:300])
        return out

    async def close(self) -> None:
        try:
            await self.exchange.close()
        except Exception:  # noqa: BLE001
            pass
