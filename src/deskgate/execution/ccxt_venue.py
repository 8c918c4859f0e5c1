"""binance, bybit and okx through ccxt: the `Venue` the executor sends real orders to.

Limit orders under our client id: spot, and linear perpetuals (settled in the quote, on
isolated margin, one-way position mode) where `derivatives` is set. ccxt's exceptions are sorted into what
the executor can do next (execution/venue.py): a definite no (`VenueRefused`), a
refused key (`VenueAuthFailed`), or an unknown outcome (`VenueUnreachable`) that is
settled by looking the order up by its client id, never by sending it again blind.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

import ccxt.async_support as ccxt_async
from ccxt.base import errors as E
from ccxt.base.decimal_to_precision import TICK_SIZE

from deskgate.bus.lease import LeaseLost
from deskgate.config import VenueSettings
from deskgate.execution.ccxt_endpoint import point_at
from deskgate.execution.credentials import VenueCredentials
from deskgate.execution.venue import (
    MarketRules,
    OrderTicket,
    VenueAuthFailed,
    VenueOrderState,
    VenueRefused,
    VenueReport,
    VenueUnreachable,
)

log = logging.getLogger("deskgate.executor")

# Venue error codes that mean "your key or signature is wrong", whatever ccxt maps them to
# (binance reports a bad signature as a plain bad request).
_AUTH_CODES = {
    "binance": {"-1022", "-2014", "-2015"},
    "bybit": {"10003", "10004", "10005", "33004"},
    "okx": {"50100", "50101", "50103", "50104", "50105", "50111", "50113"},
}
# ... and codes that mean "your clock is off": not placed, and a health problem.
_CLOCK_CODES = {"binance": {"-1021"}, "bybit": {"10002"}, "okx": {"50102"}}
_CODE = re.compile(r'"(?:code|sCode|retCode)"\s*:\s*"?(-?\d+)')



@dataclass(frozen=True)
class Dialect:
    """Where the three venues differ in how ccxt must be asked, in one place."""

    #: The parameter a cancel names our client id by (ccxt's bybit does not translate `clientOrderId`).
    cancel_by: str = "clientOrderId"
    #: Looked up through the order lists by client id: bybit's single-order call cannot name one.
    lookup_in_lists: bool = False
    #: The most open orders one request lists (None: all of them), and the parameter that asks for
    #: the page after a given order id; a venue whose lists page by cursor (bybit) is read raw.
    open_orders_page: int | None = None
    open_orders_after: str | None = None
    open_orders_by_cursor: bool = False
    options: dict = field(default_factory=dict)
    # -- linear perpetuals --
    #: The market type ccxt's fetchMarkets lists them under.
    perpetual_type: str = "linear"
    #: How isolated margin is asked for: per "symbol" (binance), for the whole "account" (bybit's unified
    #: account), or by each "order" itself (okx: no switch, every order names its margin mode).
    margin_by: str = "symbol"
    #: Extra parameters a perpetual's order carries.
    perpetual_order_params: dict = field(default_factory=dict)
    #: Parameters the leverage call needs (okx: the margin mode the leverage is for).
    leverage_params: dict = field(default_factory=dict)
    #: The leverage is read first and set only when it differs (okx refuses even an unchanged
    #: setting while an order is open on the symbol).
    leverage_read_first: bool = False
    #: Venue codes that answer "it already is so" to a margin-mode or leverage call.
    unchanged_codes: frozenset = frozenset()
    #: The open-order list's parameters for perpetuals, when the spot list does not show them (None: it does).
    perpetual_open_orders: dict | None = None
    #: A perpetual order's fee is only in its trades (binance's futures orders carry none).
    fees_from_trades: bool = False
    #: Its sandbox for perpetuals is its demo trading (binance retired its futures testnet).
    demo_for_perpetuals: bool = False
    #: A position row's market id and signed-or-not size, as the venue names them (each must be there).
    position_fields: tuple[str, str] = ("symbol", "positionAmt")


#: bybit's history is searched from this long before the send (clocks differ).
HISTORY_SLACK_MS = 5 * 60 * 1000

#: Pages of open orders read at most: more open orders than this many pages hold is an error, never a cut list.
OPEN_ORDER_PAGES = 40

DIALECTS = {
    # Margin type -4046 "No need to change margin type", which ccxt raises (MarginModeAlreadySet).
    "binance": Dialect(unchanged_codes=frozenset({"-4046"}), perpetual_open_orders={"type": "swap"}, fees_from_trades=True,
                       demo_for_perpetuals=True),
    # One order, one request (ccxt's default sends okx's batch endpoint); open orders 100 a page, older after an ordId.
    # Its pending list shows every instrument type; positions come from one list too.
    "okx": Dialect(open_orders_page=100, open_orders_after="after", options={"createOrder": "privatePostTradeOrder"},
                   perpetual_type="swap", margin_by="order", perpetual_order_params={"marginMode": "isolated"},
                   leverage_params={"marginMode": "isolated"}, leverage_read_first=True, position_fields=("instId", "pos")),
    # A unified trading account, the only kind the desk supports on bybit (docs/VENUES.md): ccxt would
    # otherwise ask on the first private call, and take an answer it cannot read for "classic", for good.
    # Leverage 110043 "leverage not modified".
    "bybit": Dialect(cancel_by="orderLinkId", lookup_in_lists=True, open_orders_page=50, open_orders_by_cursor=True,
                     options={"enableUnifiedAccount": True, "enableUnifiedMargin": False},
                     margin_by="account", unchanged_codes=frozenset({"110043"}), perpetual_open_orders={"category": "linear"},
                     position_fields=("symbol", "size")),
}

#: Codes that refuse a setting whatever ccxt makes of them (a plain ExchangeError would read as "no answer"):
#: binance -4047/-4048 margin type with open orders / a position, -4161 leverage lowered under an isolated
#: position; okx 59000/59107 a setting while orders are open; bybit 3400045 the account's margin mode
#: with positions or orders open.
_SETTING_REFUSED = {"binance": {"-4047", "-4048", "-4161"}, "okx": {"59000", "59107"}, "bybit": {"3400045"}}

_STATES = {
    "canceled": VenueOrderState.CANCELLED,
    "cancelled": VenueOrderState.CANCELLED,
    "expired": VenueOrderState.EXPIRED,
    "rejected": VenueOrderState.REJECTED,
}


def _codes(exc: Exception) -> set[str]:
    return set(_CODE.findall(str(exc)))


_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")


def _short(exc: Exception) -> str:
    """The venue's own words, without ccxt's prefix, bounded; never a signed query string."""
    text = _QUERY.sub(r"\1?…", str(exc))
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
            msg = body.get("msg") or body.get("retMsg") or ""
            data = body.get("data")
            if isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("sMsg"):
                msg = data[0]["sMsg"]
            code = data[0].get("sCode") if isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("sCode") else body.get("code", body.get("retCode"))
            if msg:
                return f"{msg} (code {code})"[:500]
        except (ValueError, AttributeError):
            pass
    return f"{type(exc).__name__}: {text}"[:500]


def classify(venue: str, exc: Exception) -> Exception:
    """The executor's view of a ccxt exception."""
    codes = _codes(exc)
    if isinstance(exc, (E.AuthenticationError, E.AccountSuspended)) or codes & _AUTH_CODES.get(venue, set()):
        return VenueAuthFailed(f"{venue} refused the API key: {_short(exc)}")
    if codes & _CLOCK_CODES.get(venue, set()):
        return VenueUnreachable(f"{venue} says our clock is off: {_short(exc)}")
    if isinstance(exc, (E.RateLimitExceeded, E.DDoSProtection)):
        return VenueUnreachable(f"{venue} is rate-limiting us: {_short(exc)}", rate_limited=True)
    if isinstance(exc, (E.NetworkError, E.BadResponse, E.OperationFailed)):
        return VenueUnreachable(f"{venue} gave no usable answer: {_short(exc)}")
    if isinstance(exc, E.DuplicateOrderId) or "duplicate" in str(exc).lower():
        return VenueUnreachable(f"{venue} already has an order under this client id: {_short(exc)}")
    if isinstance(exc, (E.InsufficientFunds, E.InvalidOrder, E.BadRequest, E.OperationRejected, E.NotSupported)):
        return VenueRefused(f"{venue} refused the order: {_short(exc)}")
    if isinstance(exc, E.ExchangeError):
        return VenueUnreachable(f"{venue} answered with an error: {_short(exc)}")
    text = _QUERY.sub(r"\1?…", str(exc))
    return VenueUnreachable(f"{venue}: {type(exc).__name__}: {text[:300]}")


def _num(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return out if out == out and out not in (float("inf"), float("-inf")) else 0.0


# A fee in a third currency priced above this share of the cost is not believed (an odd ticker
# would otherwise make the factory refuse a real fill for its fee): it is logged, not counted.
THIRD_CURRENCY_FEE_CAP = 0.005


def _fees(order: dict, venue: str | None = None) -> list[tuple[float, str | None, bool]]:
    """(amount, currency, guessed) of every fee on the order. bybit's own `cumFeeDetail` names every
    coin it charged in (ccxt keeps only the first); without it, its `cumExecFee` is taken in the coin
    bybit charges a spot order in (the asset bought, the quote sold for): a guess, which is counted
    only within THIRD_CURRENCY_FEE_CAP of the cost. A negative amount (a maker's rebate) is no fee."""
    info = order.get("info") if isinstance(order.get("info"), dict) else {}
    if venue == "bybit":
        detail = info.get("cumFeeDetail")
        if isinstance(detail, dict) and detail:
            return [(max(0.0, _num(cost)), str(coin), False) for coin, cost in detail.items()]
        if _num(info.get("cumExecFee")) > 0:
            base, _, quote = str(order.get("symbol") or "").partition("/")
            quote, _, settle = quote.partition(":")
            if settle:  # a perpetual's fee is in its settle coin, not a guess
                return [(_num(info["cumExecFee"]), settle, False)]
            return [(_num(info["cumExecFee"]), base if order.get("side") == "buy" else quote, True)]
    # ccxt's unified fee is positive when paid; a negative one is a maker's rebate: no fee.
    return [(max(0.0, _num((f or {}).get("cost"))), (f or {}).get("currency"), False)
            for f in order.get("fees") or ([order["fee"]] if order.get("fee") else [])]


def _reason(order: dict) -> str:
    """The venue's own reason for a rejection: okx's `sMsg`, bybit's `rejectReason`."""
    info = order.get("info") if isinstance(order.get("info"), dict) else {}
    text = info.get("sMsg") or (info.get("rejectReason") if info.get("rejectReason") not in (None, "", "EC_NoError") else "")
    return str(text or "")[:500]


def _okx_leverage_is(answer, inst_id: str, leverage: int | None) -> bool:
    """okx's leverage answer (set or read) says `inst_id` is isolated at exactly `leverage`
    (ccxt's own reading truncates "5.5" to 5)."""
    info = answer.get("info") if isinstance(answer, dict) and "info" in answer else answer
    rows = info.get("data") if isinstance(info, dict) else info
    if not isinstance(rows, list) or not rows or (isinstance(info, dict) and str(info.get("code")) != "0"):
        return False
    try:
        return all(isinstance(r, dict) and r.get("instId") == inst_id and r.get("mgnMode") == "isolated"
                   and Decimal(str(r.get("lever"))) == Decimal(leverage) for r in rows)
    except (ArithmeticError, ValueError, TypeError):
        return False


def _usd_like(currency: str | None, quote: str) -> bool:
    return currency == quote or currency in ("USD", "USDT", "USDC")


def report_from(order: dict, client_id: str, quote: str, fee_prices: dict[str, float] | None = None, *,
                venue: str | None = None, contract_size: float | None = None) -> VenueReport:
    """A ccxt unified order as the executor's cumulative report.

    ccxt parses a body that is not JSON into an order of Nones rather than failing: an
    order without the venue's id is not an answer. A fee in a third currency (BNB on
    binance) is counted at its price in `fee_prices` (in the quote currency). A
    perpetual's (`contract_size`) amounts are contracts: filled is reported in base, and
    its cost is the base filled at the average price, whatever ccxt made of it."""
    if not order.get("id"):
        raise ValueError("the answer names no order id")
    filled = _num(order.get("filled")) * (contract_size or 1.0)
    average = _num(order.get("average")) or _num(order.get("price"))
    if contract_size is not None:
        cost = filled * average
    else:
        cost = _num(order.get("cost")) or filled * average
    status = order.get("status")
    if status == "open" or status is None:
        state = VenueOrderState.PARTIALLY_FILLED if filled > 0 else VenueOrderState.NEW
    elif status == "closed" and (order.get("info") or {}).get("orderStatus") == "PartiallyFilledCanceled":
        state = VenueOrderState.CANCELLED  # bybit: the rest cancelled, which ccxt calls "closed"
    elif status == "closed":
        state = VenueOrderState.FILLED
    elif status in _STATES:
        state = _STATES[status]
    else:
        raise VenueUnreachable(f"unknown order status {status!r} from the venue")
    base = str(order.get("symbol") or "").split("/")[0]
    fee_usd = 0.0
    for amount, currency, guessed in _fees(order, venue):
        if _usd_like(currency, quote):
            usd = amount
        elif currency == base:
            # Counted in USD. The account then holds a little less than the book (the venue
            # took it in the asset): reconciliation's tolerance must cover it (docs/VENUES.md).
            usd = amount * average
        elif amount and (fee_prices or {}).get(currency):
            usd, guessed = amount * fee_prices[currency], True
        else:
            if amount:
                log.warning("fee of %s %s on order %s is not counted: no price for it", amount, currency, client_id)
            continue
        if guessed and usd > THIRD_CURRENCY_FEE_CAP * cost:
            log.warning("fee of %s %s on order %s is not counted: priced at %.2f, over %.1f%% of the cost",
                        amount, currency, client_id, usd, THIRD_CURRENCY_FEE_CAP * 100)
            continue
        fee_usd += usd
    return VenueReport(
        client_id=client_id,
        venue_order_id=str(order.get("id") or ""),
        state=state,
        filled=filled,
        cost=cost,
        fee_usd=fee_usd,
        reason=_reason(order) if state is VenueOrderState.REJECTED else "",
        side=order.get("side") if order.get("side") in ("buy", "sell") else None,
        amount=_num(order.get("amount")) or None,
    )


def make_exchange(name: str, settings: VenueSettings, credentials: VenueCredentials | None, *, spot_only: bool = False):
    """A ccxt async exchange for `name`: spot (and its linear perpetuals when `derivatives`, unless
    `spot_only`), its sandbox (or demo) when set, pointed at `api_url` when set."""
    types = ["spot", DIALECTS[name].perpetual_type] if settings.derivatives and not spot_only else ["spot"]
    base = {"fetchMarkets": {"types": types}, "defaultType": "spot", "warnOnFetchOpenOrdersWithoutSymbol": False, "recvWindow": 5000}
    config = {"timeout": int(settings.timeout_seconds * 1000), "enableRateLimit": True, "options": {**base, **DIALECTS[name].options}}
    if credentials is not None:
        config.update(apiKey=credentials.api_key, secret=credentials.secret, password=credentials.passphrase or None)
    exchange = getattr(ccxt_async, name)(config)
    if exchange.precisionMode != TICK_SIZE:  # rules() reads precision as steps
        raise ValueError(f"ccxt reports {name}'s precision in mode {exchange.precisionMode}, not as tick sizes")
    if settings.sandbox and settings.derivatives and DIALECTS[name].demo_for_perpetuals:
        exchange.enable_demo_trading(True)  # ccxt refuses binance's (retired) futures testnet
    else:
        exchange.set_sandbox_mode(settings.sandbox)
    if settings.api_url:
        point_at(exchange, settings.api_url)
    return exchange


class CcxtVenue:
    """One venue account through ccxt (async)."""

    local = False

    def __init__(self, name: str, settings: VenueSettings, credentials: VenueCredentials):
        self.name = name
        self.settings = settings
        self.dialect = DIALECTS[name]
        self.exchange = make_exchange(name, settings, credentials)
        # With standbys, the executor's lease check, run as each request is signed: nothing it
        # does after that can stop a request, and the venue's receive window bounds what follows.
        self.guard: Callable[[], None] | None = None
        signing = self.exchange.sign

        def sign(*args, **kwargs):
            if self.guard is not None:
                self.guard()
            return signing(*args, **kwargs)

        self.exchange.sign = sign
        self._markets_loaded = False
        self._fee_prices: dict[str, tuple[float, float]] = {}  # currency -> (price in quote, monotonic time read)

    async def _call(self, fn, *args, **kwargs):
        try:
            return await fn(*args, **kwargs)
        except (VenueAuthFailed, VenueRefused, VenueUnreachable, LeaseLost):
            raise
        except Exception as exc:  # every ccxt failure is sorted, none escapes as a crash
            raise classify(self.name, exc) from exc

    async def load_markets(self) -> None:
        if not self._markets_loaded:
            await self._call(self.exchange.load_markets, True)
            if not self.exchange.markets:  # an answer that did not parse reads as no markets at all
                raise VenueUnreachable(f"{self.name} listed no markets: its answer did not parse")
            self._markets_loaded = True

    async def rules(self, symbol: str) -> MarketRules:
        await self.load_markets()
        market = self.exchange.markets.get(symbol)
        perpetual = ":" in symbol
        if market is None:
            raise VenueRefused(f"{self.name} has no {'linear perpetual' if perpetual else 'spot market'} {symbol}")
        if perpetual and not (market.get("swap") and market.get("linear") and market.get("settle") == self.settings.quote
                              and _num(market.get("contractSize")) > 0):
            raise VenueRefused(f"{self.name} {symbol} is not a linear perpetual settled in {self.settings.quote} with a contract size")
        if not perpetual and not market.get("spot"):
            raise VenueRefused(f"{self.name} {symbol} is not a spot market")
        precision, limits = market.get("precision") or {}, market.get("limits") or {}
        step = lambda v: _num(v) or None  # noqa: E731
        return MarketRules(
            symbol=symbol,
            amount_step=step(precision.get("amount")),
            price_step=step(precision.get("price")),
            min_amount=step((limits.get("amount") or {}).get("min")),
            min_cost=step((limits.get("cost") or {}).get("min")),
            contract_size=_num(market["contractSize"]) if perpetual else None,
        )

    async def prepare(self, ticket: OrderTicket) -> OrderTicket | None:
        """A perpetual: isolated margin and a leverage no higher than the ticket's on its symbol,
        before the send, and the ticket to send. An order that only reduces an isolated position
        needs neither (no margin is taken) and goes reduce-only; a position's leverage is never
        raised (its margin would shrink). Only an answer that confirms the setting is a yes;
        "already so" is one; a venue's no (a position held in cross margin) refuses the order."""
        if not ticket.perpetual:
            return None
        await self.load_markets()
        d = self.dialect
        # The positions the order's margin meets: on okx, where one symbol can hold a cross and an
        # isolated position side by side, the isolated ones only.
        rows = [(q, lev, mode) for sym, q, lev, mode in await self._position_list()
                if sym == ticket.symbol and q and (d.margin_by != "order" or mode == "isolated")]
        held = sum(q for q, _, _ in rows)  # contracts, signed
        account_mode = None
        if d.margin_by == "account":
            account_mode = await self._call(self.exchange.fetch_margin_mode, ticket.symbol)
        account_isolated = isinstance(account_mode, dict) and account_mode.get("marginMode") == "isolated"
        isolated = account_isolated if d.margin_by == "account" else all(mode == "isolated" for _, _, mode in rows)
        if held and isolated and (ticket.side == "buy") != (held > 0) and ticket.amount <= abs(held) + 1e-12:
            return ticket.model_copy(update={"reduce_only": True})  # the venue refuses it if it would open anything
        target = ticket.leverage
        if held:
            if any(lev is None for _, lev, _ in rows):
                raise VenueUnreachable(f"{self.name}: the leverage of the position on {ticket.symbol} cannot be read; "
                                       "it is never raised, so the order waits")
            target = min(target, *(math.floor(lev) for _, lev, _ in rows))
        if d.margin_by != "order" and not account_isolated:
            answer = await self._setting("margin mode", self.exchange.set_margin_mode, "isolated", ticket.symbol, {})
            self._confirm("margin mode", ticket.symbol, answer, None)
        to_send = ticket.model_copy(update={"reduce_only": False})
        if d.leverage_read_first:
            now = await self._call(self.exchange.fetch_leverage, ticket.symbol, dict(d.leverage_params))
            if _okx_leverage_is(now, self.exchange.market(ticket.symbol)["id"], target):
                return to_send
        answer = await self._setting("leverage", self.exchange.set_leverage, target, ticket.symbol, dict(d.leverage_params))
        self._confirm("leverage", ticket.symbol, answer, target)
        return to_send

    async def _setting(self, what: str, fn, *args):
        """One of a perpetual's settings, and the venue's answer: "already so" answers None, a venue's no refuses the order."""
        try:
            return await self._call(fn, *args)
        except (VenueRefused, VenueUnreachable) as exc:
            codes = _codes(exc.__cause__) if exc.__cause__ is not None else set()
            if codes & self.dialect.unchanged_codes:
                return None
            if isinstance(exc, VenueRefused) or codes & _SETTING_REFUSED.get(self.name, set()):
                raise VenueRefused(f"{self.name} would not set the {what} of {args[1]}: {exc}") from exc
            raise

    def _confirm(self, what: str, symbol: str, answer, leverage: int | None) -> None:
        """An answer to a setting that does not say it was done is no answer (ccxt hands back
        whatever body came): the order waits, and nothing was placed."""
        if answer is None:
            return  # "already so"
        ok = False
        if isinstance(answer, dict):
            if self.name == "binance":  # -4046: "already so", should ccxt hand it back instead of raising
                ok = str(answer.get("code")) in ("200", "-4046") if leverage is None else _num(answer.get("leverage")) == leverage
            elif self.name == "okx":
                ok = _okx_leverage_is(answer, self.exchange.market(symbol)["id"], leverage)
            elif self.name == "bybit":
                result = answer.get("result")
                ok = str(answer.get("retCode")) == "0" and isinstance(result, dict) and not result.get("reasons")
        if not ok:
            raise VenueUnreachable(f"{self.name}: an answer to setting the {what} of {symbol} that does not confirm it")

    async def place(self, ticket: OrderTicket) -> VenueReport:
        await self.load_markets()
        params = {"clientOrderId": ticket.client_id, "timeInForce": "GTC"}
        if ticket.perpetual:
            params.update(self.dialect.perpetual_order_params)
        if ticket.reduce_only:
            params["reduceOnly"] = True
        order = await self._call(self.exchange.create_order, ticket.symbol, "limit", ticket.side, ticket.amount, ticket.price, params)
        return await self._report(order, ticket.client_id, ticket.symbol)

    async def fee_prices(self, order: dict) -> dict[str, float]:
        """Prices, in the quote currency, of the fee currencies that are neither the quote nor
        the order's asset (BNB on binance), read from the venue's ticker and kept 5 minutes.
        A price that cannot be read leaves that fee uncounted, logged: the fill is booked anyway."""
        base = str(order.get("symbol") or "").split("/")[0] if isinstance(order, dict) else ""
        out: dict[str, float] = {}
        for amount, currency, _ in _fees(order, self.name) if isinstance(order, dict) else []:
            if not amount or not currency or currency == base or _usd_like(currency, self.settings.quote):
                continue
            cached = self._fee_prices.get(currency)
            if cached is not None and time.monotonic() - cached[1] < 300:
                out[currency] = cached[0]
                continue
            symbol = f"{currency}/{self.settings.quote}"
            if symbol not in (self.exchange.markets or {}):
                continue
            try:
                price = _num((await self._call(self.exchange.fetch_ticker, symbol) or {}).get("last"))
            except (VenueRefused, VenueUnreachable, VenueAuthFailed, AttributeError) as exc:
                log.warning("no %s price for a fee on %s: %s", symbol, self.name, exc)
                continue
            if price > 0:
                self._fee_prices[currency] = (price, time.monotonic())
                out[currency] = price
        return out

    async def _report(self, order: dict, client_id: str, symbol: str) -> VenueReport:
        """`symbol`: the one the order was sent on; an answer about another market is no answer."""
        if isinstance(order, dict) and order.get("id") and order.get("symbol") != symbol:
            raise VenueUnreachable(f"{self.name}: the answer for {client_id} is about {order.get('symbol')}, not {symbol}")
        try:
            market = (self.exchange.markets or {}).get(symbol) or {}
            size = _num(market.get("contractSize")) if market.get("swap") else None
            if market.get("swap") and not size:
                raise ValueError(f"the order's market {order.get('symbol')} has no contract size")
            if size and self.dialect.fees_from_trades and _num(order.get("filled")) > 0 and not order.get("fees") and not order.get("fee"):
                order = {**order, "fees": await self._trade_fees(order)}
            prices = await self.fee_prices(order)
            return report_from(order, client_id, self.settings.quote, prices, venue=self.name, contract_size=size)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise VenueUnreachable(f"{self.name}: an order answer that does not parse: {exc}") from exc

    async def _trade_fees(self, order: dict) -> list[dict]:
        """The fees of a perpetual order's trades (binance's futures orders name none). Trades that
        do not add up to what the order says filled are no answer: the fee would be short."""
        since = int(_num(order.get("timestamp"))) or None
        trades = await self._call(self.exchange.fetch_my_trades, order["symbol"], since, 1000, {"orderId": order["id"]})
        if not isinstance(trades, list) or not all(isinstance(t, dict) and t.get("id") for t in trades):
            raise VenueUnreachable(f"{self.name}: the trades of order {order['id']} do not parse")
        trades = [t for t in trades if str(t.get("order")) == str(order["id"])]
        traded = sum(_num(t.get("amount")) for t in trades)
        if abs(traded - _num(order.get("filled"))) > 1e-9 * max(1.0, traded):
            raise VenueUnreachable(f"{self.name}: the trades of order {order['id']} add up to {traded:g}, "
                                   f"the order says {_num(order.get('filled')):g} filled")
        return [t["fee"] for t in trades if isinstance(t.get("fee"), dict)]

    async def lookup(self, client_id: str, symbol: str, since: datetime | None = None) -> VenueReport | None:
        await self.load_markets()
        if self.dialect.lookup_in_lists:
            order = await self._find_in_lists(client_id, symbol, since)
            return None if order is None else await self._report(order, client_id, symbol)
        try:
            order = await self._call(self.exchange.fetch_order, None, symbol, {"clientOrderId": client_id})
        except VenueRefused as exc:
            if isinstance(exc.__cause__, E.OrderNotFound):
                return None
            raise VenueUnreachable(f"{self.name}: could not look up {client_id}: {exc}") from exc
        return await self._report(order, client_id, symbol)

    async def _find_in_lists(self, client_id: str, symbol: str, since: datetime | None) -> dict | None:
        """bybit's single-order call cannot name a client id, its order lists can (`orderLinkId`):
        the live list first (it also holds recently finished orders), then the history, which
        bybit searches 7 days at a time (the last 7 without a start): the week from the send,
        when known, then the last 7 days (an order older than the send on record: a restored store).
        Read raw, so that an answer that is not bybit's envelope is never taken for an empty list."""
        try:
            market = self.exchange.market(symbol)
        except Exception as exc:  # noqa: BLE001 - ccxt's BadSymbol
            raise VenueUnreachable(f"{self.name}: cannot look up {client_id}: no market {symbol}") from exc
        request = {"category": "linear" if market.get("swap") else "spot", "symbol": market["id"], "orderLinkId": client_id}
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)  # the store's times are UTC, read back naive from SQLite
        asks = [(self.exchange.privateGetV5OrderRealtime, {})]
        if since is not None:
            asks.append((self.exchange.privateGetV5OrderHistory, {"startTime": int(since.timestamp() * 1000) - HISTORY_SLACK_MS}))
        asks.append((self.exchange.privateGetV5OrderHistory, {}))
        for endpoint, extra in asks:
            try:
                body = await self._call(endpoint, {**request, **extra})
            except VenueRefused as exc:  # a lookup the venue will not answer is not "no such order"
                raise VenueUnreachable(f"{self.name}: could not look up {client_id}: {exc}") from exc
            rows = [r for r in self._rows(body, "orders") if r.get("orderLinkId") == client_id]
            for r in rows:  # a row we cannot read whole is no answer, never an ended order
                if not r.get("orderId") or r.get("side") not in ("Buy", "Sell") or r.get("symbol") != market["id"] or not _num(r.get("qty")):
                    raise VenueUnreachable(f"{self.name}: an order row for {client_id} that does not parse")
            try:
                mine = [self.exchange.parse_order(r, market) for r in rows]
            except Exception as exc:  # noqa: BLE001 - ccxt's parser on a venue's answer
                raise VenueUnreachable(f"{self.name}: an order row for {client_id} that does not parse: {exc}") from exc
            if mine:
                return max(mine, key=lambda o: _num(o.get("timestamp")))
        return None

    async def cancel(self, client_id: str, symbol: str, since: datetime | None = None) -> VenueReport | None:
        await self.load_markets()
        try:
            await self._call(self.exchange.cancel_order, None, symbol, {self.dialect.cancel_by: client_id})
        except VenueRefused as exc:
            if not isinstance(exc.__cause__, E.OrderNotFound):
                log.warning("cancel of %s on %s refused: %s", client_id, self.name, exc)
        return await self.lookup(client_id, symbol, since)

    async def balances(self) -> dict[str, float]:
        data = await self._call(self.exchange.fetch_balance)
        total = data.get("total") if isinstance(data, dict) else None
        info = data.get("info") if isinstance(data, dict) else None
        if not isinstance(total, dict) or not isinstance(info, (dict, list)) or not info:
            raise VenueUnreachable(f"{self.name}: a balance answer that does not parse")
        return {str(k): _num(v) for k, v in total.items() if _num(v)}

    async def open_orders(self) -> list[str]:
        """Client ids of every open order on the account (ours and anyone else's), every page of them:
        a list cut short would show our own open orders as gone. More than OPEN_ORDER_PAGES pages is an error."""
        await self.load_markets()
        d, page = self.dialect, self.dialect.open_orders_page
        too_many = VenueUnreachable(f"{self.name}: more open orders than the desk reads ({OPEN_ORDER_PAGES} × {page}); "
                                    "reconciliation cannot see them all")
        perps = self.settings.derivatives and d.perpetual_open_orders is not None
        if d.open_orders_by_cursor:
            ids = await self._open_by_cursor(page, too_many, {"category": "spot"})
            if perps:
                ids += await self._open_by_cursor(page, too_many, {**d.perpetual_open_orders, "settleCoin": self.settings.quote})
            return ids
        ids = await self._open_orders(page, too_many, {})
        if perps:
            ids += await self._open_orders(page, too_many, dict(d.perpetual_open_orders))
        return ids

    async def _open_orders(self, page: int | None, too_many: VenueUnreachable, base: dict) -> list[str]:
        d = self.dialect
        orders, params, seen = [], dict(base), set()
        for _ in range(OPEN_ORDER_PAGES):
            got = await self._call(self.exchange.fetch_open_orders, None, None, page, params)
            if not isinstance(got, list) or not all(isinstance(o, dict) and o.get("id") for o in got):
                raise VenueUnreachable(f"{self.name}: an open-orders answer that does not parse")
            new = [o for o in got if o["id"] not in seen]
            orders += new
            seen.update(o["id"] for o in new)
            if page is None or len(got) < page:
                return [str(o.get("clientOrderId") or o["id"]) for o in orders]
            if not new:  # a full page of orders already read: the venue did not move on, so the rest is unknown
                raise VenueUnreachable(f"{self.name}: the next page of open orders repeated the last one")
            # The next page: older than the oldest order of this one (ccxt sorts a page by time, not by id).
            params = {**base, d.open_orders_after: min((o["id"] for o in got), key=lambda i: (len(str(i)), str(i)))}
        raise too_many

    async def _open_by_cursor(self, page: int, too_many: VenueUnreachable, base: dict) -> list[str]:
        """bybit's open orders, read raw page by page (`nextPageCursor`), so that a page that failed
        is an error rather than the end of the list."""
        ids, cursor = [], ""
        for _ in range(OPEN_ORDER_PAGES):
            body = await self._call(self.exchange.privateGetV5OrderRealtime,
                                    {**base, "limit": page, **({"cursor": cursor} if cursor else {})})
            rows = self._rows(body, "open orders")
            if not all(r.get("orderId") for r in rows):
                raise VenueUnreachable(f"{self.name}: an open-orders row that does not parse")
            ids += [str(r.get("orderLinkId") or r["orderId"]) for r in rows]
            cursor = body["result"].get("nextPageCursor") or ""
            if not cursor:
                return ids
        raise too_many

    async def positions(self) -> dict[str, float]:
        """Each asset's linear perpetual position settled in the quote, in base units, signed: read raw
        (an answer that is not the venue's is an error, never "no positions") and parsed by ccxt."""
        if not self.settings.derivatives:
            return {}
        await self.load_markets()
        out: dict[str, float] = {}
        for symbol, contracts, _, _ in await self._position_list():
            market = self.exchange.markets[symbol]
            out[market["base"]] = out.get(market["base"], 0.0) + contracts * _num(market["contractSize"])
        return out

    async def _position_list(self) -> list[tuple[str, float, float | None, str | None]]:
        """(symbol, signed contracts, leverage, margin mode) of every linear perpetual position settled in the quote.
        A row without its market id or a readable size, or on a market the venue does not list, is
        an error: never read as no position."""
        id_field, size_field = self.dialect.position_fields
        out = []
        for row in await self._position_rows():
            try:
                size = float(row.get(size_field))
            except (TypeError, ValueError, OverflowError):
                size = float("nan")
            if not row.get(id_field) or not math.isfinite(size):
                raise VenueUnreachable(f"{self.name}: a position row without its {id_field} or a readable {size_field}")
            try:
                p = self.exchange.parse_position_risk(row) if self.name == "binance" else self.exchange.parse_position(row)
            except Exception as exc:  # noqa: BLE001 - ccxt's parser on a venue's answer
                raise VenueUnreachable(f"{self.name}: a position row that does not parse: {exc}") from exc
            market = self.exchange.markets.get(p.get("symbol")) if isinstance(p, dict) else None
            if market is None:
                raise VenueUnreachable(f"{self.name}: a position on {row.get(id_field)}, a market it does not list")
            if not (market.get("swap") and market.get("linear") and market.get("settle") == self.settings.quote):
                continue  # not a linear perpetual settled in the quote: not the book's
            contracts = p.get("contracts")
            if not isinstance(contracts, (int, float)) or contracts != contracts or contracts < 0:
                raise VenueUnreachable(f"{self.name}: a position on {p['symbol']} without a readable size")
            if self.name == "binance":  # its rows are signed; ccxt's side comes from a notional that may be 0
                signed = size
            elif not contracts:
                signed = 0.0
            elif p.get("side") in ("long", "short"):
                signed = contracts if p["side"] == "long" else -contracts
            else:
                raise VenueUnreachable(f"{self.name}: a position on {p['symbol']} without a readable side")
            leverage = _num(p.get("leverage")) or None
            out.append((p["symbol"], signed, leverage, p.get("marginMode")))
        return out

    async def _position_rows(self) -> list[dict]:
        if self.name == "binance":  # every USD-M position, one row per symbol and side, unpaged
            body = await self._call(self.exchange.fapiPrivateV2GetPositionRisk, {})
            if not isinstance(body, list) or not all(isinstance(r, dict) and r.get("symbol") for r in body):
                raise VenueUnreachable(f"{self.name}: a positions answer that does not parse")
            return [r for r in body if r.get("positionAmt") in (None, "") or _num(r.get("positionAmt"))]
        if self.name == "okx":
            body = await self._call(self.exchange.privateGetAccountPositions, {"instType": "SWAP"})
            if not (isinstance(body, dict) and str(body.get("code")) == "0" and isinstance(body.get("data"), list)):
                raise VenueUnreachable(f"{self.name}: a positions answer that does not parse")
            return [r for r in body["data"] if isinstance(r, dict)]
        rows, cursor = [], ""  # bybit: page by cursor, as its order lists
        for _ in range(OPEN_ORDER_PAGES):
            body = await self._call(self.exchange.privateGetV5PositionList, {"category": "linear", "settleCoin": self.settings.quote,
                                                                              "limit": 200, **({"cursor": cursor} if cursor else {})})
            rows += self._rows(body, "positions")
            cursor = body["result"].get("nextPageCursor") or ""
            if not cursor:
                return rows
        raise VenueUnreachable(f"{self.name}: more positions than the desk reads")

    def _rows(self, body, what: str) -> list[dict]:
        """The rows of one of bybit's lists, or VenueUnreachable: an answer that is not bybit's
        envelope is never taken for an empty list."""
        ok = isinstance(body, dict) and str(body.get("retCode")) == "0" and isinstance(body.get("result"), dict)
        rows = body["result"].get("list") if ok else None
        if not isinstance(rows, list):
            raise VenueUnreachable(f"{self.name}: a list of {what} that does not parse")
        return [r for r in rows if isinstance(r, dict)]

    async def clock_skew_ms(self) -> float:
        start = time.time() * 1000
        server = _num(await self._call(self.exchange.fetch_time))
        end = time.time() * 1000
        return server - (start + end) / 2

    async def close(self) -> None:
        try:
            await self.exchange.close()
        except Exception:  # closing a session that never opened
            pass
