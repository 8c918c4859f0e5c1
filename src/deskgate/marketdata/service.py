"""The market-data service: bars on market.data.bars.<ASSET>, and for the agents a
summary per window on market.data.aggregated.<ASSET> and the trend signal on
market.data.signals.<ASSET> (see docs/MARKET_INTELLIGENCE.md), from the simulator, a CSV
replay or a real venue (marketdata/venue_feed.py); and news from the
configured feeds, sanitised and screened (marketdata/news.py).

The simulator resumes from the last price on the bus, so a restart is not a jump.
Summaries and signals start afresh after a restart (their windows refill).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from pathlib import Path

import nats.errors
from pydantic import ValidationError

from deskgate.bus import subjects as S
from deskgate.bus.connect import connect_as
from deskgate.bus.reader import ReadError, last_message
from deskgate.config import Mission
from deskgate.domain.market import Bar
from deskgate.marketdata.csv_replay import load_bars
from deskgate.marketdata.intelligence import Intelligence
from deskgate.marketdata.simulator import Simulator
from deskgate.paths import DataDir
from deskgate.standby import Active, stand_by_on_bus

log = logging.getLogger("deskgate.marketdata")

# Seconds of lease a bar needs left before it is published: more than a publish takes.
PUBLISH_MARGIN_S = 1.0


class MarketDataService:
    def __init__(self, mission: Mission, data_dir: DataDir):
        self.mission = mission
        self.data_dir = data_dir
        self._stop = asyncio.Event()
        self.published = 0
        self.summaries = 0
        self.signals = 0
        self.news = None  # a NewsPoller when the mission names feeds
        self.active: Active | None = None  # with standbys (standby.enabled): held while this instance publishes
        self.intelligence = Intelligence(
            window_s=mission.marketdata.summary_window_seconds, signal_every=mission.marketdata.signal_every_bars,
            sample_seconds=mission.marketdata.signal_sample_seconds,
        )

    def stop(self) -> None:
        self._stop.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        nc, _ = await connect_as(self.data_dir, S.Role.MARKETDATA, name="deskgate-marketdata")
        try:
            if self.mission.standby.enabled:
                # One of several: only the lease holder publishes, from the last bar on the bus.
                self.active = await stand_by_on_bus(nc, "marketdata", str(self.data_dir.root), self._stop, ready)
                if self.active is None:
                    return
                await self.active.run(self._work(nc))
                await self.active.end()
            else:
                if ready is not None:
                    ready.set()
                await self._work(nc)
        finally:
            if self.active is not None and not self.active.keeper.done():
                self.active.keeper.cancel()  # ended by an error: the lease expires by itself
            try:
                await nc.drain()
            except Exception:
                pass

    async def _work(self, nc) -> None:
        md = self.mission.marketdata
        news = None
        if md.news.feeds:
            from deskgate.marketdata.news import NewsPoller  # feedparser and the sanitiser only when there is news

            self.news = NewsPoller(md.news.feeds, md.assets, self.data_dir, Path(self.data_dir.root), screen=md.news.screen,
                                   rp_id=self.mission.web.passkey_rp_id)
            news = asyncio.create_task(self.news.run(nc, self._stop, md.news.poll_seconds))
        try:
            if md.source == "simulator":
                await self._simulate(nc)
            elif md.source == "csv":
                await self._replay(nc)
            elif md.source == "ccxt":
                await self._from_venue(nc)
            else:
                await self._stop.wait()
        finally:
            if news is not None:
                news.cancel()  # asked to stop, or the lease was lost: no item goes out after this
                await asyncio.gather(news, return_exceptions=True)

    async def _last_prices(self, nc) -> dict[str, float]:
        md = self.mission.marketdata
        prices = dict(md.start_prices)
        for asset in md.assets:
            try:
                stored = await last_message(nc, "MARKET", S.bar_subject(asset))
            except (ReadError, nats.errors.Error):
                stored = None
            if stored is not None:
                try:
                    prices[asset] = Bar.model_validate_json(stored.data).close
                except ValidationError:
                    pass
        return prices

    async def _publish(self, nc, bar: Bar, summarise: bool = True) -> None:
        if self.active is not None:
            # A holder frozen past its lease's end, thawing, publishes no bar beside the next holder's.
            self.active.check(PUBLISH_MARGIN_S)
        await nc.publish(S.bar_subject(bar.asset), bar.to_bytes())
        self.published += 1
        if not summarise:
            return
        summary, signal = self.intelligence.add(bar)
        if summary is not None:
            await nc.publish(S.summary_subject(bar.asset), summary.to_bytes(), headers={"Nats-Msg-Id": summary.summary_id})
            self.summaries += 1
        if signal is not None:
            await nc.publish(S.signal_subject(bar.asset), signal.to_bytes())
            self.signals += 1

    async def _simulate(self, nc) -> None:
        md = self.mission.marketdata
        sim = Simulator(
            md.assets,
            await self._last_prices(nc),
            seed=md.seed,
            interval_seconds=md.interval_seconds,
            annual_volatility_pct=md.annual_volatility_pct,
        )
        log.info("simulating %s every %ss", ",".join(md.assets), md.interval_seconds)
        while not self._stop.is_set():
            for bar in sim.step(datetime.now(timezone.utc)):
                await self._publish(nc, bar)
            await nc.flush()
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=md.interval_seconds)
            except asyncio.TimeoutError:
                pass

    async def _from_venue(self, nc) -> None:
        from deskgate.marketdata.venue_feed import VenueFeed

        md = self.mission.marketdata
        feed = VenueFeed(md, self.mission.venues.configured()[md.ccxt.venue])
        log.info("bars for %s from %s every %ss", ",".join(md.assets), feed.source, md.ccxt.poll_seconds)
        try:
            while not self._stop.is_set():
                for bar, summarise in await feed.poll(datetime.now(timezone.utc)):
                    await self._publish(nc, bar, summarise)
                await nc.flush()
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=md.ccxt.poll_seconds)
                except asyncio.TimeoutError:
                    pass
        finally:
            await feed.close()

    async def _replay(self, nc) -> None:
        md = self.mission.marketdata
        bars = load_bars(md.csv.path)
        log.info("replaying %d bars from %s at %gx", len(bars), md.csv.path, md.csv.speed)
        while not self._stop.is_set():
            previous = None
            for bar in bars:
                if self._stop.is_set():
                    return
                if previous is not None:
                    wait = (bar.ts - previous).total_seconds() / md.csv.speed
                    if wait > 0:
                        try:
                            await asyncio.wait_for(self._stop.wait(), timeout=wait)
                            return
                        except asyncio.TimeoutError:
                            pass
                previous = bar.ts
                await self._publish(nc, bar)
            await nc.flush()
            if not md.csv.loop:
                log.info("replay finished")
                await self._stop.wait()
                return
