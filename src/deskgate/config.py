"""mission.yaml: the desk's guardrails and settings, validated before anything starts.

Every section refuses unknown keys and wrong types, so a typo in a guardrail is an
error at start-up rather than a silently ignored limit.
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import date, datetime, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deskgate.identity.names import check_agent_name
from deskgate.policy.symbols import USD_QUOTES, SymbolError, forbidden_leg, normalise_symbol, normalise_venue


class MissionError(ValueError):
    """A mission file that cannot be used; the message names every bad key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


PositiveFloat = Annotated[float, Field(gt=0)]


def _normalised(values, normalise, what: str) -> tuple[str, ...]:
    """Normalise each symbol or venue, naming the bad one; duplicates collapse."""
    out = []
    for raw in values:
        try:
            out.append(normalise(raw))
        except SymbolError as exc:
            raise ValueError(f"{what} {raw!r}: {exc}") from None
    return tuple(dict.fromkeys(out))
NonNegativeFloat = Annotated[float, Field(ge=0)]


class Guardrails(_Section):
    """The article's limits. Limits are inclusive; the breaker trips when drawdown exceeds."""

    max_drawdown_pct: float = Field(15.0, gt=0, le=100)
    max_position_pct: float = Field(25.0, gt=0)
    min_confidence: float = Field(0.65, ge=0, le=1)
    forbidden_assets: tuple[str, ...] = Field(("LUNA", "UST"), strict=False)
    allowed_venues: tuple[str, ...] = Field(("binance", "bybit", "okx"), min_length=1, strict=False)
    max_leverage: float = Field(3.0, gt=0)
    require_human_approval_above_usd: float = Field(50_000.0, ge=0)

    @field_validator("forbidden_assets", mode="after")
    @classmethod
    def _normalise_assets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _normalised(value, lambda raw: normalise_symbol(raw).canonical, "forbidden asset")

    @field_validator("allowed_venues", mode="after")
    @classmethod
    def _normalise_venues(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _normalised(value, normalise_venue, "venue")


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIGHTEN_ONLY = "a mandate can only tighten the desk's guardrails"
EXPIRES_FORMAT = "must be a date (2026-12-31, in force to the end of that UTC day) or a date and time (2026-12-31T18:00:00Z)"


class Mandate(_Section):
    """What one agent may draft, inside the desk's guardrails (mission.yaml `mandates.<agent>`).

    Every key only tightens: a key left out leaves the desk's guardrail as it is, and
    `Mission` refuses a key that would loosen one (a mandate alone cannot see the
    guardrails). The policy engine enforces each key as a `mandate_*` check
    (policy/mandate.py).
    """

    # Base assets the agent may trade; a pair names its base (BTC/USDT is BTC).
    assets: tuple[str, ...] | None = Field(None, strict=False)
    # Venues it may send to, each one of guardrails.allowed_venues.
    venues: tuple[str, ...] | None = Field(None, strict=False)
    # Largest notional of one directive (the desk has no such limit; any value tightens).
    max_notional_usd: PositiveFloat | None = None
    # Largest post-trade position (percent of equity), at most guardrails.max_position_pct.
    max_position_pct: PositiveFloat | None = None
    # Directives of this agent the factory may evaluate per UTC day; 0 lets it draft none.
    daily_directives: int | None = Field(None, ge=0)
    # In force up to and including this instant (UTC). A bare date runs to the END of
    # that day: `2026-12-31` still allows a directive at 23:59:59 UTC on the 31st.
    expires: datetime | date | None = None

    @field_validator("assets", mode="after")
    @classmethod
    def _base_assets(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must not be empty: leave the key out to allow every asset the desk allows, or set daily_directives: 0")
        out = []
        for raw in value:
            try:
                symbol = normalise_symbol(raw)
            except SymbolError as exc:
                raise ValueError(f"asset {raw!r}: {exc}") from None
            if symbol.quote is not None and symbol.quote not in USD_QUOTES:
                raise ValueError(f"asset {raw!r} is quoted in {symbol.quote}; the desk trades only USD-quoted assets, so name the base asset")
            out.append(symbol.base)
        return tuple(dict.fromkeys(out))

    @field_validator("venues", mode="after")
    @classmethod
    def _venues(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must not be empty: leave the key out to allow every venue the desk allows, or set daily_directives: 0")
        return _normalised(value, normalise_venue, "venue")

    @field_validator("expires", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        """YAML gives a date or a datetime; JSON and quoted YAML give a string. A naive time is UTC."""
        if value is None or isinstance(value, date):
            parsed = value
        elif isinstance(value, str):
            text = value.strip()
            try:
                parsed = date.fromisoformat(text) if _DATE_ONLY.match(text) else datetime.fromisoformat(text)
            except ValueError:
                parsed = None
            if parsed is None:
                raise ValueError(EXPIRES_FORMAT)
        else:
            raise ValueError(EXPIRES_FORMAT)
        if isinstance(parsed, datetime):
            return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
        return parsed

    @property
    def expires_at(self) -> datetime | None:
        """The last instant the mandate is in force, in UTC (a bare date: 23:59:59.999999 that day)."""
        e = self.expires
        if e is None or isinstance(e, datetime):
            return e
        return datetime.combine(e, dtime.max, tzinfo=timezone.utc)


def mandate_loosenings(agent: str, mandate: Mandate, guardrails: Guardrails) -> list[str]:
    """Every key of `mandate` that would loosen `guardrails`, as `mandates.<agent>.<key>: why`."""
    at = f"mandates.{agent}"
    problems = []
    forbidden = frozenset(guardrails.forbidden_assets)
    for asset in mandate.assets or ():
        leg = forbidden_leg(normalise_symbol(asset), forbidden)
        if leg is not None:
            problems.append(f"{at}.assets: {asset} is forbidden by guardrails.forbidden_assets ({leg}); {TIGHTEN_ONLY}")
    for venue in mandate.venues or ():
        if venue not in guardrails.allowed_venues:
            allowed = ", ".join(guardrails.allowed_venues)
            problems.append(f"{at}.venues: {venue} is not in guardrails.allowed_venues ({allowed}); {TIGHTEN_ONLY}")
    pct = mandate.max_position_pct
    if pct is not None and pct > guardrails.max_position_pct:
        problems.append(
            f"{at}.max_position_pct: {pct:g} is looser than guardrails.max_position_pct ({guardrails.max_position_pct:g}); {TIGHTEN_ONLY}"
        )
    return problems


class ApprovalSettings(_Section):
    expiry_seconds: float = Field(900.0, gt=0)
    price_band_pct: float = Field(2.0, gt=0)
    # Above this notional an explicit directive needs two different principals; null = never.
    four_eyes_above_usd: NonNegativeFloat | None = None


class PaperVenue(_Section):
    starting_equity_usd: PositiveFloat = 1_000_000.0
    slippage_bps: NonNegativeFloat = 5.0
    fee_bps: NonNegativeFloat = 10.0


#: Venues deskgate can reach through ccxt. Any other name under `venues:` is an error.
CCXT_VENUES = ("binance", "bybit", "okx")


class VenueSettings(_Section):
    """A real venue, reached through ccxt. A venue not configured here fills on the paper venue.

    Keys come from the environment (`key_env`, `secret_env`, `passphrase_env`) or from a
    0600 secrets file; they never appear in mission.yaml itself."""

    # The venue's testnet/sandbox until a principal sets this to false in mission.yaml.
    sandbox: bool = True
    # Perpetuals (orders with leverage above 1) only when this says so.
    derivatives: bool = False
    key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    secret_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    passphrase_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # A YAML or JSON file of {api_key, secret, passphrase}, readable by its owner alone (0600).
    secrets_file: str | None = None
    # Send every REST call here instead of the venue's hosts, keeping its paths: a
    # regional mirror, a proxy, or a local test exchange.
    api_url: str | None = Field(None, pattern=r"^https?://[^/@\s]+(/\S*)?$")
    quote: str = Field("USDT", pattern=r"^[A-Z0-9]{2,10}$")  # each asset trades against this
    timeout_seconds: PositiveFloat = 10.0  # one REST call; past it, the outcome is unknown and is looked up
    poll_seconds: PositiveFloat = 1.0  # how often an open order is looked at
    # An order still open this long after it was sent has its remainder cancelled.
    order_ttl_seconds: PositiveFloat = 300.0
    # An approved order older than this when the executor comes to send it (it was down,
    # or the venue was) is not sent: the price the principal saw is too old.
    max_order_age_seconds: PositiveFloat = 300.0
    # Health: a venue whose clock is further off than this, or that answered with rate
    # limits more than `max_rate_limited` times in a row, is unhealthy.
    max_clock_skew_ms: PositiveFloat = 1000.0
    max_rate_limited: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _live_over_tls(self) -> VenueSettings:
        if not self.sandbox and self.api_url and self.api_url.startswith("http://"):
            host = self.api_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
            if host not in ("127.0.0.1", "localhost", "[::1]"):
                raise ValueError(f"api_url {self.api_url} is plain http: a live venue's keys go over https only")
        return self

    def env_names(self, venue: str) -> tuple[str, str, str]:
        """The environment variables holding this venue's key, secret and passphrase."""
        prefix = f"DESKGATE_{venue.upper()}_API"
        return (
            self.key_env or f"{prefix}_KEY",
            self.secret_env or f"{prefix}_SECRET",
            self.passphrase_env or f"{prefix}_PASSPHRASE",
        )


class Venues(_Section):
    """`venues:` in mission.yaml: the real venues and how often they are reconciled."""

    reconcile_seconds: PositiveFloat = 60.0
    # How often the executor reports each venue's health; a venue with no report for
    # three of these is unhealthy (the executor may be down).
    health_seconds: PositiveFloat = 10.0
    # A position that differs from the venue's by more than this (USD at the latest
    # price) is shown to a principal; by more than `hold_above_usd`, new staging for that
    # venue is held until a principal acknowledges it.
    reconcile_tolerance_usd: NonNegativeFloat = 10.0
    hold_above_usd: NonNegativeFloat = 1_000.0
    binance: VenueSettings | None = None
    bybit: VenueSettings | None = None
    okx: VenueSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                if key not in cls.model_fields:
                    raise ValueError(
                        f"unknown venue {key!r}: deskgate reaches {', '.join(CCXT_VENUES)} through ccxt "
                        "(any other venue in guardrails.allowed_venues fills on the paper venue); "
                        "the other keys here are reconcile_seconds, health_seconds, reconcile_tolerance_usd, hold_above_usd"
                    )
        return value

    @model_validator(mode="after")
    def _hold_above_tolerance(self) -> Venues:
        if self.hold_above_usd < self.reconcile_tolerance_usd:
            raise ValueError(
                f"hold_above_usd ({self.hold_above_usd:g}) must be at least reconcile_tolerance_usd ({self.reconcile_tolerance_usd:g})"
            )
        return self

    def configured(self) -> dict[str, VenueSettings]:
        """The real venues, by name."""
        return {name: s for name in CCXT_VENUES if (s := getattr(self, name)) is not None}


class CsvReplay(_Section):
    path: str | None = None
    speed: PositiveFloat = 60.0
    loop: bool = False


class NewsFeed(_Section):
    """A file the market-data service polls for news: JSON lines ({"id", "text", ...}) or RSS/Atom."""

    name: str = Field(min_length=1, max_length=64)
    path: str = Field(min_length=1)
    format: Literal["jsonl", "rss", "atom"] = "jsonl"


class JudgeSettings(_Section):
    """An LLM asked about what the rules and the model both passed (any OpenAI-compatible server)."""

    base_url: str = Field(min_length=1)  # e.g. https://api.openai.com/v1, http://127.0.0.1:8080/v1 (llama.cpp)
    model: str = Field(min_length=1)
    api_key_env: str | None = None  # the environment variable holding the key; given to the market-data service only
    calls_per_hour: int = Field(120, ge=1, le=100_000)  # past this, items pass on the first two layers until the hour rolls on
    timeout_seconds: float = Field(10.0, gt=0, le=120)


class ScreenSettings(_Section):
    """The injection screen's layers (docs/SECURITY.md): the rules always run."""

    model: bool = True  # the learned layer (MiniLM embeddings and a trained head); off only with a reason
    judge: JudgeSettings | None = None  # optional third opinion


class NewsSettings(_Section):
    feeds: tuple[NewsFeed, ...] = Field((), strict=False)
    poll_seconds: PositiveFloat = 30.0
    screen: ScreenSettings = ScreenSettings()

    @field_validator("feeds", mode="after")
    @classmethod
    def _unique_names(cls, value: tuple[NewsFeed, ...]) -> tuple[NewsFeed, ...]:
        from deskgate.sanitize.item import source_name

        seen = set()
        for feed in value:
            name = source_name(feed.name)
            if name in seen:
                raise ValueError(f"two news feeds are named {feed.name!r}")
            seen.add(name)
        return value


class VenueFeed(_Section):
    """`marketdata.source: ccxt`: bars and prices from a real venue, so marks come from where orders execute.

    Public market data only: the market-data service never holds the venue's keys."""

    venue: Literal["binance", "bybit", "okx"] = "binance"
    timeframe: Literal["1m", "5m", "15m", "1h"] = "1m"
    poll_seconds: PositiveFloat = 5.0  # candles and the latest price, this often


class MarketData(_Section):
    source: Literal["simulator", "csv", "ccxt", "none"] = "simulator"
    assets: tuple[str, ...] = Field(("BTC", "ETH", "SOL"), min_length=1, strict=False)
    interval_seconds: PositiveFloat = 1.0
    seed: int = 7
    start_prices: dict[str, PositiveFloat] = Field(
        default_factory=lambda: {"BTC": 65_000.0, "ETH": 3_500.0, "SOL": 150.0}
    )
    annual_volatility_pct: PositiveFloat = 60.0
    csv: CsvReplay = CsvReplay()
    ccxt: VenueFeed = VenueFeed()
    # Summaries for the agents on market.data.aggregated.<ASSET>, one per window (clock-aligned),
    # and the trend signal on market.data.signals.<ASSET> every signal_every_bars bars.
    summary_window_seconds: PositiveFloat = 1800.0
    signal_every_bars: int = Field(60, ge=1)
    signal_sample_seconds: PositiveFloat = 300.0  # the trend model reads one close per this much bar time
    # News and research, screened for injected instructions before any agent sees them.
    news: NewsSettings = NewsSettings()

    @field_validator("assets", mode="after")
    @classmethod
    def _normalise_assets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _normalised(value, lambda raw: normalise_symbol(raw).canonical, "asset")

    @field_validator("start_prices", mode="after")
    @classmethod
    def _normalise_prices(cls, value: dict[str, float]) -> dict[str, float]:
        out = {}
        for raw, price in value.items():
            try:
                out[normalise_symbol(raw).canonical] = price
            except SymbolError as exc:
                raise ValueError(f"asset {raw!r}: {exc}") from None
        return out


_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class BusSettings(_Section):
    # An external NATS (cluster) to use instead of starting one: one address, or a list (in YAML,
    # or comma-separated) of a cluster's nodes; see docs/BUS.md and docs/DEPLOY.md.
    url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)  # 0 = a free port chosen at start
    max_payload_bytes: int = Field(1_048_576, ge=1024, le=64 * 1_048_576)
    # How often nats-server fsyncs JetStream files: a duration like "1s" or "always".
    sync_interval: str = "1s"
    # Nodes of the embedded bus: 1, or an odd number (3, 5, 7) for a cluster on this machine,
    # routed to each other, whose replicated streams survive the loss of a node (docs/DEPLOY.md).
    cluster: int = Field(1, ge=1, le=7)
    # Copies of each stream: 1 by default on one node, 3 on a cluster; at most the nodes there are.
    replicas: int | None = Field(None, ge=1, le=5)
    # TLS between clients and the bus, and between a cluster's nodes. Embedded: deskgate makes a
    # CA and a server certificate under <data_dir>/bus/tls/ (bus/tls.py). With url: the operator's
    # servers speak TLS, and clients trust tls_ca (a PEM file), or the system's CAs when it is null.
    tls: bool = False
    tls_ca: str | None = None
    # Embedded bus with tls: more DNS names and IP addresses for its server certificate (beside
    # localhost, 127.0.0.1, ::1 and host), so remote clients can reach it by the machine's name.
    tls_names: tuple[str, ...] = Field((), strict=False)

    @field_validator("tls_names", mode="after")
    @classmethod
    def _tls_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for raw in value:
            name = raw.strip().lower()
            try:
                ip = ipaddress.ip_address(name)
            except ValueError:
                ip = None
            if ip is not None and ip.is_unspecified:
                raise ValueError(f"{raw!r} is a wildcard address, which no client connects to: name the machine's own address or DNS name")
            if ip is None and (len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in name.split("."))):
                raise ValueError(f"{raw!r} is neither an IP address nor a DNS name (letters, digits, hyphens and dots, "
                                 "such as desk1.example.com; no scheme, port or wildcard)")
            name = str(ip) if ip is not None else name
            if name not in out:
                out.append(name)
        return tuple(out)

    @model_validator(mode="after")
    def _tls(self) -> BusSettings:
        if self.tls_names and self.url:
            raise ValueError("tls_names names the embedded bus's certificate; an operator-run bus (url) has its own certificates")
        if self.tls_names and not self.tls:
            raise ValueError("tls_names adds names to the bus's TLS certificate: set tls: true as well")
        if self.tls_ca is not None and not self.url:
            raise ValueError("tls_ca names the CA of an operator-run bus (with url); the embedded bus makes its own CA with tls: true")
        if self.tls_ca is not None and not self.tls:
            raise ValueError("tls_ca is the CA clients trust for the bus's TLS: set tls: true as well")
        if self.tls and self.url and any(s.split("://", 1)[0] in ("ws", "wss") for s in self.servers() if "://" in s):
            raise ValueError("tls applies to nats:// or tls:// addresses; a websocket bus takes wss:// without tls")
        return self

    @model_validator(mode="after")
    def _cluster(self) -> BusSettings:
        if self.cluster > 1 and self.cluster % 2 == 0:
            raise ValueError(f"cluster must be 1 or an odd number of nodes (3, 5, 7), so a majority survives a loss; got {self.cluster}")
        if self.cluster > 1 and self.url:
            raise ValueError("cluster starts an embedded cluster; with url set the operator runs the bus (and its cluster)")
        if self.cluster > 1 and self.port:
            raise ValueError("port pins one server's port; a cluster keeps its nodes' ports in <data_dir>/bus/cluster-ports.json")
        if not self.url and self.replicas is not None and self.replicas > self.cluster:
            raise ValueError(f"replicas {self.replicas} is more than the embedded bus's {self.cluster} node(s)")
        return self

    def stream_replicas(self) -> int:
        return self.replicas or (3 if self.cluster >= 3 else 1)

    def servers(self) -> list[str]:
        """`url` as the list of server addresses clients are given."""
        return self.url.split(",") if self.url else []

    @field_validator("url", mode="before")
    @classmethod
    def _servers(cls, value):
        if value is None:
            return None
        items = value if isinstance(value, list) else str(value).split(",")
        items = [str(i).strip() for i in items if str(i).strip()]
        if not items:
            raise ValueError("must name at least one server, such as nats://host:4222")
        for item in items:
            if any(c.isspace() for c in item) or item.endswith("://"):
                raise ValueError(f"{item!r} is not a NATS server address such as nats://host:4222")
        return ",".join(items)

    @field_validator("sync_interval")
    @classmethod
    def _sync(cls, value: str) -> str:
        import re

        if value != "always" and not re.fullmatch(r"\d+(ms|s|m|h)", value):
            raise ValueError('must be "always" or a duration such as "500ms", "1s", "2m"')
        return value


class StorageSettings(_Section):
    # A PostgreSQL URL shared by the desk's stores, each in a schema of its own (storage.py);
    # null = SQLite files under the data directory.
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _postgresql(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError:
            raise ValueError("is not a database URL; expected postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE") from None
        if backend != "postgresql":
            raise ValueError(
                f"names a {backend} database; a shared store is PostgreSQL (postgresql+psycopg://...). "
                "Leave storage.url unset for SQLite files under the data directory"
            )
        return value


class StandbySettings(_Section):
    """Several instances of each service (factory, executor, audit, market data, agents, Command
    Center) on one bus and one store (storage.url): of each, one holds its lease and works, the
    others wait to take over when it dies (bus/lease.py, standby.py, docs/DEPLOY.md)."""

    enabled: bool = False


class WebSettings(_Section):
    """The Command Center web application, served by `deskgate up`."""

    host: str = "127.0.0.1"
    port: int = Field(8700, ge=0, le=65535)  # 0 = a free port chosen at start
    # A session ends after this long without a request, and after max_hours in any case.
    session_idle_minutes: float = Field(30.0, gt=0)
    session_max_hours: float = Field(12.0, gt=0)
    # Failed logins allowed (per account and per client address) before each further
    # attempt must wait, doubling from 1 s up to lockout_max_seconds.
    login_failures_allowed: int = Field(5, ge=1)
    lockout_max_seconds: float = Field(900.0, gt=0)
    # Set when a TLS-terminating proxy serves the Command Center over https.
    secure_cookies: bool = False
    # Addresses of reverse proxies whose X-Forwarded-For is believed; without them,
    # every client behind a proxy shares the proxy's address for login throttling.
    trusted_proxies: tuple[str, ...] = Field((), strict=False)
    # The host name principals open the Command Center at: a passkey (WebAuthn) is bound
    # to it, and the factory checks every passkey assertion against it. A name, never an
    # IP address (browsers refuse those); served over https unless it is localhost.
    passkey_rp_id: str = Field("localhost", pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")

    @field_validator("passkey_rp_id")
    @classmethod
    def _a_name_not_an_address(cls, value: str) -> str:
        import ipaddress

        try:
            ipaddress.ip_address(value)
        except ValueError:
            return value
        raise ValueError(f"{value} is an IP address: browsers bind a passkey to a host name (e.g. localhost, desk.example.com)")


class ModelSettings(_Section):
    """Which analyst drafts. `offline` needs no key and no network; the others go through pydantic-ai."""

    provider: Literal["offline", "openai", "anthropic", "ollama", "openai-compatible"] = "offline"
    name: str | None = None  # e.g. gpt-4o-mini, claude-sonnet-4-5, llama3.1
    base_url: str | None = None  # ollama, or any OpenAI-compatible server (vLLM, llama.cpp)
    api_key_env: str | None = None  # the environment variable holding the key
    output_retries: int = Field(2, ge=0, le=10)  # re-asks when an answer does not validate
    timeout_seconds: float = Field(60.0, gt=0)
    # How the model returns structured answers: `tool` (a tool call; hosted models), `native` (a JSON
    # schema in response_format; llama.cpp, vLLM, Ollama) or `prompted` (the schema in the prompt).
    output_mode: Literal["tool", "native", "prompted"] = "tool"
    max_output_tokens: int | None = Field(None, ge=64, le=32_768)  # per call; None: each step's own default
    prompt_tokens: int | None = Field(None, ge=512)  # the desk's data is cut to fit this, counted by the server's tokenizer where it has one
    check_at_start: bool = True  # one tiny structured call when the agents start, so a dead endpoint shows at once
    # Memory tools (search, insert, core edits) at every step; None: on in `tool` mode, off otherwise (a model
    # that cannot call tools still updates core memory through the end-of-day review's own fields).
    memory_tools: bool | None = None
    # Tighter answers for small models: every text field at most this many characters, every list at most
    # this many items, in the schema the model is given (a constrained decoder then cannot run on).
    temperature: float | None = Field(None, ge=0, le=2)  # None: the provider's default; 0 for repeatable answers
    answer_chars: int | None = Field(None, ge=40, le=600)
    answer_items: int | None = Field(None, ge=1, le=30)
    input_usd_per_million: float | None = Field(None, ge=0)  # token prices for cost accounting
    output_usd_per_million: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> ModelSettings:
        if self.provider != "offline" and not self.name:
            raise ValueError(f"agents.model.name is required for provider {self.provider!r}")
        if self.provider == "openai-compatible" and not self.base_url:
            raise ValueError("agents.model.base_url is required for an openai-compatible server")
        return self


class CycleTimes(_Section):
    morning_utc: str = "05:30"
    intraday_minutes: int = Field(30, ge=1, le=1440)
    eod_utc: str = "23:00"

    @field_validator("morning_utc", "eod_utc")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        try:
            t = dtime.fromisoformat(v)
        except ValueError:
            raise ValueError(f"must be a time of day as HH:MM (UTC), got {v!r}") from None
        if t.tzinfo is not None:
            raise ValueError(f"times are UTC: give HH:MM without an offset, got {v!r}")
        return v


class GovernorSettings(_Section):
    """The Governor's drift statistic (see agents/governor.py and docs/AGENTS.md)."""

    baseline: int = Field(8, ge=2)  # directives that set the baseline
    k: float = Field(0.5, ge=0)  # CUSUM allowance, in standard deviations
    h: float = Field(5.0, gt=0)  # CUSUM threshold
    damping: float = Field(0.8, gt=0, lt=1)  # confidence multiplier while drifting
    min_sd_proximity: float = Field(0.05, gt=0)
    min_sd_confidence: float = Field(0.03, gt=0)


class AgentSettings(_Section):
    model: ModelSettings = ModelSettings()
    venue: str = "binance"  # where the Dispatcher sends its directives
    max_revisions: int = Field(2, ge=0, le=5)  # after a policy rejection
    outcome_horizon_hours: int = Field(24, ge=1, le=24 * 90)  # a fill's realised outcome is judged this long after it
    schedule: CycleTimes = CycleTimes()
    governor: GovernorSettings = GovernorSettings()


class EmbedderSettings(_Section):
    """What gives recall entries their vectors (memory/embedding.py). `minilm` runs offline, on one core."""

    kind: Literal["minilm", "openai", "none"] = "minilm"
    model: str | None = None  # for `openai`: the endpoint's embedding model, e.g. text-embedding-3-small
    base_url: str | None = None  # any OpenAI-compatible server; OpenAI's own when unset
    api_key_env: str | None = None  # the environment variable holding the key
    timeout_seconds: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> EmbedderSettings:
        if self.kind == "openai" and not self.model:
            raise ValueError("memory.embedder.model is required for kind 'openai' (the endpoint's embedding model)")
        if self.kind != "openai" and (self.model or self.base_url or self.api_key_env):
            raise ValueError(f"memory.embedder.model, base_url and api_key_env are for kind 'openai', not {self.kind!r}")
        return self


class MemorySettings(_Section):
    context_tokens: int = Field(3000, ge=500)  # budget for core + recall in each agent step
    embedder: EmbedderSettings = EmbedderSettings()
    relevant_entries: int = Field(8, ge=0, le=50)  # recall entries chosen for relevance to each cycle, before the newest
    recall_window: int = Field(120, ge=1)  # newest recall entries considered before summarising
    core_limits: dict[str, int] = Field(
        default_factory=lambda: {"desk_state": 2000, "regime": 1000, "hypotheses": 2000, "instructions": 2000}
    )

    @field_validator("core_limits")
    @classmethod
    def _limits(cls, v: dict[str, int]) -> dict[str, int]:
        for label, limit in v.items():
            if not label.isidentifier() or limit < 50:
                raise ValueError(f"core block {label!r}: a name of letters and _ and a limit of at least 50 characters")
        missing = {"desk_state", "regime", "hypotheses"} - set(v)
        if missing:
            raise ValueError(f"the agents write core blocks {', '.join(sorted(missing))}: give them a limit")
        return v


class Mission(_Section):
    desk_name: str = "deskgate desk"
    guardrails: Guardrails = Guardrails()
    approvals: ApprovalSettings = ApprovalSettings()
    paper: PaperVenue = PaperVenue()
    venues: Venues = Venues()
    marketdata: MarketData = MarketData()
    bus: BusSettings = BusSettings()
    storage: StorageSettings = StorageSettings()
    standby: StandbySettings = StandbySettings()
    web: WebSettings = WebSettings()
    agents: AgentSettings = AgentSettings()
    memory: MemorySettings = MemorySettings()
    data_dir: str = "./deskgate-data"
    # What the factory and the executor take as now: the system clock, or (for a replay,
    # whose bars carry simulated time) the newest market bar's timestamp.
    clock: Literal["system", "market"] = "system"
    # Largest directive the factory will decode; larger ones are rejected unread.
    max_directive_bytes: int = Field(65_536, ge=1024)
    # Per agent (by name), limits tighter than the guardrails for what that agent drafts.
    mandates: dict[str, Mandate] = Field(default_factory=dict)

    @field_validator("mandates", mode="before")
    @classmethod
    def _none_is_no_mandates(cls, value: Any) -> Any:
        """`mandates:` with every entry commented out (as in the template) is YAML null."""
        return {} if value is None else value

    @field_validator("mandates", mode="after")
    @classmethod
    def _agent_names(cls, value: dict[str, Mandate]) -> dict[str, Mandate]:
        for name in value:
            check_agent_name(name)
        return value

    @model_validator(mode="after")
    def _standby_needs_a_shared_store(self) -> Mission:
        if self.standby.enabled and not self.storage.url:
            raise ValueError("standby.enabled needs storage.url: every instance of a service must read and write one shared store "
                             "(a standby on its own SQLite file would take over from a stale copy)")
        return self

    @model_validator(mode="after")
    def _csv_needs_path(self) -> Mission:
        if self.marketdata.source == "csv" and not self.marketdata.csv.path:
            raise ValueError("marketdata.csv.path is required when marketdata.source is 'csv'")
        feed = self.marketdata.ccxt.venue
        if self.marketdata.source == "ccxt" and feed not in self.venues.configured():
            raise ValueError(f"marketdata.ccxt.venue {feed} must be configured under venues: (its sandbox and api_url are used)")
        return self

    @model_validator(mode="after")
    def _venues_allowed(self) -> Mission:
        unused = [n for n in self.venues.configured() if n not in self.guardrails.allowed_venues]
        if unused:
            raise ValueError(
                f"venues.{unused[0]} is configured but not in guardrails.allowed_venues "
                f"({', '.join(self.guardrails.allowed_venues)}): no order could reach it"
            )
        return self

    @model_validator(mode="after")
    def _mandates_only_tighten(self) -> Mission:
        problems = [p for name, m in self.mandates.items() for p in mandate_loosenings(name, m, self.guardrails)]
        if problems:
            raise ValueError("\n  - ".join(problems))
        return self

    def mandate_for(self, agent: str) -> Mandate | None:
        """The agent's mandate, or None when it has none (the desk's guardrails alone apply)."""
        return self.mandates.get(agent)


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"{source} is not a valid mission:"]
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            if len(err["loc"]) == 3 and err["loc"][0] == "mandates":
                msg += f" (a mandate takes {', '.join(Mandate.model_fields)})"
        elif err["type"] == "too_short":
            msg = "must not be empty"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        got = err.get("input")
        secret = any("url" in str(part) for part in err["loc"])  # a URL may hold a password: never repeated
        shown = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) or secret else f" (got {_without_passwords(repr(got))})"
        # A check across sections names its own keys.
        lines.append(f"  - {loc}: {msg}{shown}" if loc else f"  - {msg}")
    return "\n".join(lines)


def _without_passwords(shown: str) -> str:
    """A URL's password is never repeated in an error (storage.url, bus.url, a venue's api_url)."""
    import re

    return re.sub(r"(://[^:/@\s'\"]*:)[^@\s'\"]*@", r"\1***@", shown)


def parse_mission(data: Any, source: str = "mission") -> Mission:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MissionError(f"{source} must be a mapping of settings, not {type(data).__name__}")
    try:
        return Mission.model_validate(data)
    except ValidationError as exc:
        raise MissionError(_format_errors(source, exc)) from None


def load_mission(path: str | Path) -> Mission:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissionError(f"mission file {path} does not exist (create one with `deskgate init`)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MissionError(f"{path} is not valid YAML: {exc}") from None
    _reject_non_finite(data, path)
    mission = parse_mission(data, str(path))
    # Relative paths are relative to the mission file, not to wherever the CLI runs.
    if not Path(mission.data_dir).is_absolute():
        mission = mission.model_copy(update={"data_dir": str((path.parent / mission.data_dir).resolve())})
    csv = mission.marketdata.csv
    if csv.path and not Path(csv.path).is_absolute():
        csv = csv.model_copy(update={"path": str((path.parent / csv.path).resolve())})
        mission = mission.model_copy(update={"marketdata": mission.marketdata.model_copy(update={"csv": csv})})
    if mission.bus.tls_ca:
        ca = Path(mission.bus.tls_ca).expanduser()
        bus = mission.bus.model_copy(update={"tls_ca": str(ca if ca.is_absolute() else (path.parent / ca).resolve())})
        mission = mission.model_copy(update={"bus": bus})
    news = mission.marketdata.news
    if any(not Path(f.path).is_absolute() for f in news.feeds):
        feeds = tuple(f if Path(f.path).is_absolute() else f.model_copy(update={"path": str((path.parent / f.path).resolve())}) for f in news.feeds)
        md = mission.marketdata.model_copy(update={"news": news.model_copy(update={"feeds": feeds})})
        mission = mission.model_copy(update={"marketdata": md})
    return mission


def _reject_non_finite(data: Any, path: Path, loc: str = "") -> None:
    """YAML has .inf and .nan; a limit of infinity is not a limit."""
    if isinstance(data, dict):
        for key, value in data.items():
            _reject_non_finite(value, path, f"{loc}.{key}" if loc else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _reject_non_finite(value, path, f"{loc}.{i}")
    elif isinstance(data, float) and not math.isfinite(data):
        raise MissionError(f"{path} is not a valid mission:\n  - {loc}: must be a finite number (got {data!r})")


MISSION_TEMPLATE = """\
# deskgate mission: the guardrails the policy engine enforces and the desk's settings.
# Every key is checked when the desk starts; an unknown key or a bad value stops it.

desk_name: "{desk_name}"

guardrails:
  # The circuit breaker trips when drawdown from peak equity EXCEEDS this (percent).
  max_drawdown_pct: 15.0
  # Largest position in one asset, after the trade and counting every pending
  # (staged or ordered) directive, as a percent of equity. Inclusive.
  max_position_pct: 25.0
  # Lowest confidence (after Governor damping) a directive may carry. Inclusive.
  min_confidence: 0.65
  # Never traded, in any notation: LUNA, luna, LUNA/USDT, LUNAUSDT, look-alikes.
  forbidden_assets: ["LUNA", "UST"]
  # The only venues orders may go to.
  allowed_venues: ["binance", "bybit", "okx"]
  # Largest order leverage, and largest gross portfolio leverage after the trade.
  max_leverage: 3.0
  # Directives with a notional above this (USD) are explicit: approved one by one.
  require_human_approval_above_usd: 50000

approvals:
  # A staged directive not decided within this many seconds expires.
  expiry_seconds: 900
  # An approval is invalidated if the price moved more than this (percent) since staging.
  price_band_pct: 2.0
  # Explicit directives above this notional need two different principals (null = never).
  four_eyes_above_usd: null

paper:
  # The paper venue: starting cash, slippage against the latest price, and fees.
  starting_equity_usd: 1000000
  slippage_bps: 5
  fee_bps: 10

# Real venues through ccxt (docs/VENUES.md). An allowed venue not configured here fills
# on the paper venue, as the demo does. Keys come from the environment (or a 0600
# secrets file), never from this file. Check a venue with `deskgate venues check`.
venues:
  reconcile_seconds: 60         # the executor compares the venue's balances with the book
  health_seconds: 10            # how often it reports each venue's health
  reconcile_tolerance_usd: 10   # a larger difference is shown to a principal...
  hold_above_usd: 1000          # ...and above this, staging for the venue is held until one acknowledges it
  # binance:
  #   sandbox: true             # the venue's testnet until a principal sets false
  #   key_env: DESKGATE_BINANCE_API_KEY
  #   secret_env: DESKGATE_BINANCE_API_SECRET
  #   order_ttl_seconds: 300    # an order still open after this has its rest cancelled
  # okx:
  #   sandbox: true
  #   passphrase_env: DESKGATE_OKX_API_PASSPHRASE

marketdata:
  # simulator (seeded random walk), csv (replay of OHLCV bars), ccxt (a venue under
  # venues:, see marketdata.ccxt and docs/VENUES.md) or none.
  source: simulator
  assets: [BTC, ETH, SOL]
  interval_seconds: 1.0
  seed: 7
  start_prices: {{BTC: 65000, ETH: 3500, SOL: 150}}
  annual_volatility_pct: 60
  summary_window_seconds: 1800   # the agents' summaries: market.data.aggregated.<ASSET>
  signal_every_bars: 60          # the trend signal: market.data.signals.<ASSET>
  signal_sample_seconds: 300     # the trend model reads one close per 5 minutes of bar time (believable drifts)
  news:
    # Files polled for news and research (format jsonl: {{"id", "text"}} per line; or rss, atom).
    # Every item is sanitised and screened; what passes goes to the agents on market.data.news,
    # wrapped and datamarked, what is flagged is quarantined with its reasons (docs/SECURITY.md).
    feeds: []        # e.g. [{{name: wire, path: ./news/wire.jsonl, format: jsonl}}]
    poll_seconds: 30
    screen:
      model: true    # the learned layer beside the rules (offline MiniLM and a trained head)
      judge: null    # optional LLM third opinion: {{base_url: ..., model: ..., api_key_env: ..., calls_per_hour: 120}}
  csv:
    # columns: timestamp,asset,open,high,low,close,volume (see README)
    path: null
    speed: 60        # replay this many bar-seconds per wall second
    loop: false

bus:
  # Set url to use an existing NATS cluster instead of starting one: one address or a
  # list of its nodes (apply the server config written to <data_dir>/bus/nats-server.conf).
  url: null
  host: 127.0.0.1
  port: 0            # 0 = pick a free port at start
  max_payload_bytes: 1048576
  sync_interval: 1s  # JetStream fsync interval, or "always"
  cluster: 1         # 3 (5, 7): that many nats-server nodes on this machine (docs/DEPLOY.md)
  replicas: null     # copies of each stream; null = 1 on one node, 3 on a cluster
  tls: false         # TLS for clients and between nodes; embedded: a CA made in <data_dir>/bus/tls
  tls_ca: null       # with url and tls: the CA file clients trust (null = the system's CAs)
  tls_names: []      # embedded bus with tls: more DNS names/IPs for its certificate (remote clients)

storage:
  # null = SQLite under data_dir; or e.g. postgresql+psycopg://user@host/db
  url: null

standby:
  # true on every instance of the desk's services that share one store (storage.url) and
  # one bus: of each service, one works, the others take over when it dies (docs/DEPLOY.md).
  enabled: false

web:
  # The Command Center (`deskgate up --web-port` overrides the port; 0 = a free one).
  # Accounts: `deskgate user add NAME --role viewer|principal|admin`.
  host: 127.0.0.1
  port: 8700
  session_idle_minutes: 30
  session_max_hours: 12
  login_failures_allowed: 5   # then each attempt waits, doubling up to lockout_max_seconds
  lockout_max_seconds: 900
  secure_cookies: false       # true behind an https proxy
  trusted_proxies: []         # proxy addresses whose X-Forwarded-For is believed
  passkey_rp_id: localhost    # the host name principals open it at (passkeys are bound to it; https unless localhost)

agents:
  model:
    # offline: the deterministic offline analyst (no key, no network; the default).
    # openai | anthropic | ollama | openai-compatible: an LLM through pydantic-ai.
    provider: offline
    name: null            # e.g. gpt-4o-mini, claude-sonnet-4-5, llama3.1
    base_url: null        # ollama or an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
    api_key_env: null     # variable holding the key (default OPENAI_API_KEY / ANTHROPIC_API_KEY)
    output_retries: 2     # re-asks when an answer does not validate
    timeout_seconds: 60   # per call; on a CPU a long prompt takes a while just to read
    output_mode: tool     # tool (hosted models) | native (JSON schema: llama.cpp, vLLM, Ollama) | prompted
    max_output_tokens: null        # per call (null: each step's default, 300 to 900)
    prompt_tokens: null   # cut the desk's data to fit this many tokens (null: no cut beyond the usual caps)
    check_at_start: true  # one tiny structured call at start, so a dead or unsuitable endpoint shows at once
    memory_tools: null    # search/insert/edit memory as tools at every step (null: only in tool mode)
    temperature: null     # null: the provider's default; 0 for repeatable answers
    answer_chars: null    # small models: cap every text field of an answer (e.g. 120) and every list (answer_items, e.g. 3)
    answer_items: null
    input_usd_per_million: null    # token prices for cost accounting (null = unknown)
    output_usd_per_million: null
  venue: binance          # where the Dispatcher sends its directives
  max_revisions: 2        # revisions after a policy rejection, then it records "outside the guardrails"
  outcome_horizon_hours: 24  # each fill is judged this long after it (post-trade analysis, `deskgate scorecard`)
  schedule:
    morning_utc: "05:30"  # morning brief on consciousness.insights.morning_brief
    intraday_minutes: 30  # intraday evaluation
    eod_utc: "23:00"      # end-of-day review: to archival, regime to core memory
  governor:
    # Drift: two one-sided CUSUMs (proximity to the position limit, confidence) against
    # a baseline of the first `baseline` directives; above h, confidence is damped until
    # a principal clears it (`deskgate governor clear`).
    baseline: 8
    k: 0.5
    h: 5.0
    damping: 0.8
    min_sd_proximity: 0.05
    min_sd_confidence: 0.03

memory:
  context_tokens: 3000    # core blocks + recall per agent step; the rest is summarised into recall
  recall_window: 120
  relevant_entries: 8     # recall entries most relevant to the cycle (assets, regime, positions), before the newest
  core_limits: {{desk_state: 2000, regime: 1000, hypotheses: 2000, instructions: 2000}}
  # Vectors for semantic recall. minilm: offline, all-MiniLM-L6-v2 (int8) on one core.
  # openai: any OpenAI-compatible /v1/embeddings (add model, base_url, api_key_env). none: words only.
  embedder: {{kind: minilm}}

# Mandates: per agent (by its name, `deskgate agent add NAME`), limits that only TIGHTEN
# the guardrails above for what that agent drafts. Every key is optional; a key that
# would loosen a guardrail, or an unknown key, stops the desk at start (docs/POLICY.md).
mandates:
#   quant-bot:
#     assets: [BTC, ETH]        # only these base assets (none of forbidden_assets)
#     venues: [binance]         # only these venues (each one of allowed_venues)
#     max_notional_usd: 20000   # largest notional of one directive
#     max_position_pct: 10      # post-trade position, at most guardrails.max_position_pct
#     daily_directives: 50      # directives evaluated per UTC day (0 = none)
#     expires: 2026-12-31       # in force through the END of that day (UTC), or e.g. 2026-12-31T18:00:00Z

# Where the desk keeps its state (relative to this file).
data_dir: "{data_dir}"
"""


def render_mission_template(data_dir: str = "./deskgate-data", desk_name: str = "deskgate desk") -> str:
    return MISSION_TEMPLATE.format(data_dir=data_dir, desk_name=desk_name)
