"""News and research feeds: read, sanitise, screen, publish or quarantine.

Feeds are files the market-data service polls (JSON lines, RSS or Atom), so a
desk can point it at whatever its vendors drop. Every new item goes through
`sanitize` (DESIGN §6): what passes is published on `market.data.news` as a
`NewsItem` (structured fields, plus the text wrapped and datamarked), what the
screen flags is published on `quarantine.news` as a `QuarantinedItem` with its
reasons, where only people (the Command Center) can read it. Nothing is silently
dropped: an item that cannot be read is logged with its file and line. Which
items were handled is kept in `state/news.db`, written only after the bus
acknowledged the item, so a restart neither loses nor repeats one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import nats.errors
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, select, update

from deskgate.audit.keys import KeyStore
from deskgate.audit.signing import Kind, SignatureStatus, Signer, verify_headers
from deskgate.bus import subjects as S
from deskgate.bus.reader import ReadError, read_stream
from deskgate.config import NewsFeed, ScreenSettings
from deskgate.domain.news import NewsItem, QuarantinedItem, QuarantineRelease, text_digest
from deskgate.paths import DataDir
from deskgate.sanitize.item import MAX_WRAPPED_CHARS, RawItem, sanitize_with_text, source_name, wrap
from deskgate.sanitize.judge import judge_for
from deskgate.sanitize.model import shared_screen
from deskgate.storage import make_engine

log = logging.getLogger("deskgate.news")

# Names that mean an asset in news text, beside its ticker.
ASSET_NAMES = {"BTC": ("bitcoin",), "ETH": ("ether", "ethereum"), "SOL": ("solana",), "DOGE": ("dogecoin",), "XRP": ("ripple",),
               "ADA": ("cardano",), "AVAX": ("avalanche",), "LINK": ("chainlink",), "DOT": ("polkadot",), "LTC": ("litecoin",)}


@dataclass(frozen=True)
class FeedItem:
    id: str
    text: str
    published_at: datetime | None = None


@dataclass(frozen=True)
class FeedProblem:
    where: str
    what: str


def read_jsonl(path: Path) -> tuple[list[FeedItem], list[FeedProblem]]:
    items, problems = [], []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                raw = RawItem.model_validate(data)
            except (ValueError, ValidationError, RecursionError) as exc:
                problems.append(FeedProblem(f"{path}:{n}", str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__))
                continue
            published = None
            if isinstance(data.get("published_at"), str):
                try:
                    published = datetime.fromisoformat(data["published_at"].replace("Z", "+00:00"))
                    if published.tzinfo is None:
                        published = published.replace(tzinfo=timezone.utc)
                except ValueError:
                    problems.append(FeedProblem(f"{path}:{n}", f"published_at {data['published_at']!r} is not ISO 8601; kept without it"))
            items.append(FeedItem(raw.id, raw.text, published))
    return items, problems


def read_feed(path: Path) -> tuple[list[FeedItem], list[FeedProblem]]:
    """RSS or Atom, through feedparser (which never fetches anything for a local file)."""
    parsed = feedparser.parse(path.read_bytes())
    problems = []
    if parsed.get("bozo") and not parsed.entries:
        problems.append(FeedProblem(str(path), f"not a readable feed: {parsed.get('bozo_exception')}"))
    items = []
    for e in parsed.entries:
        title, summary = e.get("title", "") or "", e.get("summary", "") or ""
        ident = e.get("id") or e.get("link") or hashlib.sha256((title + summary).encode()).hexdigest()[:24]
        published = None
        stamp = e.get("published_parsed") or e.get("updated_parsed")
        if stamp:
            try:
                published = datetime(*stamp[:6], tzinfo=timezone.utc)
            except (ValueError, TypeError, OverflowError):
                problems.append(FeedProblem(f"{path}: entry {str(ident)[:60]!r}", "its date cannot be read; kept without it"))
        text = f"{title}. {summary}" if summary and summary != title else title
        if text.strip():
            items.append(FeedItem(str(ident)[:200], text, published))
    return items, problems


def read_items(feed: NewsFeed, base: Path) -> tuple[list[FeedItem], list[FeedProblem]]:
    path = Path(feed.path)
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        return [], [FeedProblem(str(path), "no such file (yet)")]
    try:
        return read_jsonl(path) if feed.format == "jsonl" else read_feed(path)
    except OSError as exc:
        return [], [FeedProblem(str(path), exc.strerror or str(exc))]


def news_id(source: str, raw_id: str) -> str:
    """`<source>:<id>`, safe to show anywhere (a model's prompt, a log line, a citation):
    the feed's id in [a-z0-9_.-] only, at most 120 characters in all; an id that had to
    change keeps a hash of the original, so two different ids never collide."""
    room = 120 - len(source) - 1
    ident = _SAFE_ID.sub("-", raw_id.lower()).strip("-")
    if ident != raw_id or len(ident) > room or not ident:
        ident = f"{ident[: max(room - 13, 0)]}-{hashlib.sha256(raw_id.encode()).hexdigest()[:12]}".lstrip("-")
    return f"{source}:{ident}"


_SAFE_ID = re.compile(r"[^a-z0-9_.-]+")


def assets_mentioned(text: str, assets: tuple[str, ...]) -> list[str]:
    """The mission's assets a text names, by ticker (as a word) or common name."""
    found = []
    lower = text.lower()
    for asset in assets:
        base = asset.split("/")[0]
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(base)}(?![A-Za-z0-9])", text) or any(
            re.search(rf"\b{name}\b", lower) for name in ASSET_NAMES.get(base, ())
        ):
            found.append(base)
    return found


metadata = MetaData()
handled = Table(
    "news_handled",
    metadata,
    Column("news_id", String(300), primary_key=True),
    Column("outcome", String(16), nullable=False),  # published | quarantined
    Column("at", DateTime(timezone=True), nullable=False),
)


releases = Table(
    "news_releases",  # quarantined items a principal released: labelled false positives for the screen's next training
    metadata,
    Column("news_id", String(300), primary_key=True),
    Column("release_id", String(128), nullable=False),
    Column("principal", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=False),
    Column("source", String(64), nullable=False),
    Column("text", Text, nullable=False),  # cleaned, as it was quarantined
    Column("flagged_by", String(64), nullable=False),
    Column("reasons", Text, nullable=False),  # JSON list
)
cursors = Table("news_cursors", metadata, Column("name", String(64), primary_key=True), Column("seq", Integer, nullable=False))


class NewsPoller:
    def __init__(self, feeds: tuple[NewsFeed, ...], assets: tuple[str, ...], data_dir: DataDir, base: Path, *, clock=None,
                 screen: ScreenSettings | None = None, rp_id: str = "localhost"):
        self.feeds = feeds
        self.data_dir = data_dir
        self.rp_id = rp_id  # a principal's passkey, when they have one, must have confirmed a release for this site
        self.refused_releases = 0
        settings = screen or ScreenSettings()
        self.model = shared_screen() if settings.model else None
        self.judge = judge_for(settings.judge)
        self.assets = assets
        self.base = base
        self.engine = make_engine(data_dir.sqlite_url("news"))
        metadata.create_all(self.engine)
        self.role_keys = KeyStore(data_dir.keys)
        self.signer = Signer(self.role_keys, "marketdata")
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.published = 0
        self.quarantined = 0
        self._reported: set[tuple[str, str]] = set()

    def _seen(self, ids: list[str]) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(handled.c.news_id).where(handled.c.news_id.in_(ids))).scalars()) if ids else set()

    async def poll_once(self, js) -> int:
        """Handle every new item of every feed; returns how many."""
        done = 0
        for feed in self.feeds:
            source = source_name(feed.name)
            items, problems = read_items(feed, self.base)
            for p in problems:
                self._report(source, p.where, p.what)
            by_id: dict[str, FeedItem] = {}
            for item in items:
                nid = news_id(source, item.id)
                if nid in by_id:
                    self._report(source, nid, "the same id appears again in this feed; the first is kept")
                    continue
                by_id[nid] = item
            seen = self._seen(list(by_id))
            for nid, item in by_id.items():
                if nid in seen:
                    continue
                await self._handle(js, source, nid, item)
                done += 1
        return done

    def _report(self, source: str, where: str, what: str) -> None:
        if (where, what) not in self._reported:  # say it once, not every poll
            self._reported.add((where, what))
            log.warning("news feed %s: %s: %s", source, where, what)

    def _message(self, source: str, nid: str, item: FeedItem, now: datetime):
        """The item sanitised and screened (CPU work, run off the event loop)."""
        if not item.text.strip():
            raise ValueError("its text is empty")
        result, cleaned = sanitize_with_text(RawItem.model_construct(id=item.id, text=item.text), source, model=self.model, judge=self.judge)
        if result.flagged:
            msg = QuarantinedItem(news_id=nid, source=source, published_at=item.published_at, received_at=now,
                                  score=result.score, reasons=result.reasons, flagged_by=result.flagged_by, text=cleaned[:20_000])
            return msg, S.QUARANTINE_SUBJECT, Kind.QUARANTINE, "quarantined", result
        msg = NewsItem(news_id=nid, source=source, published_at=item.published_at, received_at=now,
                       assets=assets_mentioned(cleaned, self.assets), screen_score=result.score, text=result.text)
        return msg, S.NEWS_SUBJECT, Kind.NEWS, "published", result

    async def _handle(self, js, source: str, news_id: str, item: FeedItem) -> None:
        now = self.clock()
        try:
            msg, subject, kind, outcome, result = await asyncio.to_thread(self._message, source, news_id, item, now)
        except (ValueError, ValidationError, RecursionError) as exc:
            # Kept out, said once, and marked handled: the next poll must not stall on it again.
            self._report(source, news_id, f"cannot be sanitised ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}); skipped")
            with self.engine.begin() as conn:
                conn.execute(insert(handled).values(news_id=news_id, outcome="unreadable", at=now))
            return
        if outcome == "quarantined":
            log.warning("quarantined %s (score %.2f): %s", news_id, result.score, "; ".join(result.reasons))
        payload = msg.to_bytes()
        await js.publish(subject, payload, headers=self.signer.headers(kind, payload, {"Nats-Msg-Id": f"news-{hashlib.sha256(news_id.encode()).hexdigest()[:32]}"}))
        with self.engine.begin() as conn:
            conn.execute(insert(handled).values(news_id=news_id, outcome=outcome, at=now))
        if outcome == "published":
            self.published += 1
        else:
            self.quarantined += 1

    # -- releases: a principal says the screen got an item wrong -----------------------------------

    def _cursor(self, name: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(cursors.c.seq).where(cursors.c.name == name)).scalar() or 0

    def _set_cursor(self, conn, name: str, seq: int) -> None:
        if conn.execute(update(cursors).where(cursors.c.name == name).values(seq=seq)).rowcount == 0:
            conn.execute(insert(cursors).values(name=name, seq=seq))

    async def apply_releases(self, nc) -> int:
        """Publish every quarantined item a principal released since the last look; returns how many.
        A release counts only signed with that principal's own current key (and their passkey's
        answer, when they have one); anything else is a security event, logged and counted."""
        from deskgate.people.principals import decision_problem

        done = 0
        after = self._cursor("releases")
        async for m in read_stream(nc, "QUARANTINE", S.RELEASE_SUBJECT, start_seq=after + 1):
            try:
                release = QuarantineRelease.model_validate_json(m.data)
            except ValidationError as exc:
                release, problem = None, f"it cannot be read ({str(exc).splitlines()[0][:120]})"
            else:
                keys = KeyStore.for_desk(self.data_dir)
                problem = decision_problem(keys, Kind.RELEASE, m.data, m.headers, release.principal, self.rp_id)
            if problem is not None:
                self.refused_releases += 1
                log.warning("SECURITY: release at QUARANTINE seq %d not applied: %s", m.seq, problem)
            elif release is not None:
                done += await self._release(nc, release)
            with self.engine.begin() as conn:
                self._set_cursor(conn, "releases", m.seq)
        return done

    async def _release(self, nc, release: QuarantineRelease) -> int:
        with self.engine.connect() as conn:
            if conn.execute(select(releases.c.news_id).where(releases.c.news_id == release.news_id)).first():
                return 0  # released before (a second release of the same item changes nothing)
        held = None
        async for m in read_stream(nc, "QUARANTINE", S.QUARANTINE_SUBJECT):
            try:
                q = QuarantinedItem.model_validate_json(m.data)
            except ValidationError:
                continue
            # Only what this service quarantined, and exactly the text the principal read.
            if q.news_id == release.news_id and text_digest(q.text) == release.text_sha256 and \
                    verify_headers(self.role_keys, Kind.QUARANTINE, m.data, m.headers, expect="marketdata") is SignatureStatus.VALID:
                held = q
        if held is None:
            log.warning("release %s names %s with a text this service did not quarantine (or no longer keeps); nothing published",
                        release.release_id, release.news_id)
            return 0
        news = NewsItem(news_id=held.news_id, source=held.source, published_at=held.published_at, received_at=self.clock(),
                        assets=assets_mentioned(held.text, self.assets), screen_score=held.score,
                        text=wrap(held.text[:MAX_WRAPPED_CHARS], held.source, held.news_id), released_by=release.principal)
        payload = news.to_bytes()
        msg_id = f"news-release-{hashlib.sha256(held.news_id.encode()).hexdigest()[:32]}"
        await nc.jetstream().publish(S.NEWS_SUBJECT, payload, headers=self.signer.headers(Kind.NEWS, payload, {"Nats-Msg-Id": msg_id}))
        with self.engine.begin() as conn:
            conn.execute(insert(releases).values(
                news_id=held.news_id, release_id=release.release_id, principal=release.principal, reason=release.reason,
                released_at=release.at, source=held.source, text=held.text, flagged_by=",".join(held.flagged_by) or "rules",
                reasons=json.dumps(held.reasons)))
            conn.execute(update(handled).where(handled.c.news_id == held.news_id).values(outcome="released"))
        log.info("released %s by %s: published to the agents, kept as a labelled false positive", held.news_id, release.principal)
        self.published += 1
        return 1

    async def run(self, nc, stop: asyncio.Event, poll_seconds: float) -> None:
        js = nc.jetstream()
        log.info("polling %d news feed(s) every %gs", len(self.feeds), poll_seconds)
        while not stop.is_set():
            try:
                await self.apply_releases(nc)
            except (ReadError, nats.errors.Error, asyncio.TimeoutError) as exc:
                log.warning("news: could not read releases yet (%s); will retry", exc)
            except Exception:
                log.exception("news: applying releases failed; trying again at the next poll")
            try:
                await self.poll_once(js)
            except (nats.errors.Error, asyncio.TimeoutError) as exc:
                log.warning("news: could not publish yet (%s); will retry", exc)
            except Exception:  # a feed must never stop the market-data service
                log.exception("news: this poll failed; trying again at the next")
            try:
                await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
            except asyncio.TimeoutError:
                pass
