"""binance spot REST (/api/v3) and USD-M futures REST (/fapi/v1, v2, v3) on top of the engine:
the paths, HMAC-SHA256 signing, recvWindow check, JSON shapes, error codes and HTTP statuses
binance uses, so ccxt runs its real request building and parsing against it.

Errors are `{"code": -NNNN, "msg": "..."}` with HTTP 400 (request/filter/order errors),
401 (API key), 429 (rate limit) or 503 (internal error). ccxt maps them by code and by
message (binance.py `exceptions`), which is what the tests check.

Both APIs call BTC/USDT "BTCUSDT": the /api paths see the spot markets only, the /fapi paths
the perpetuals only (ccxt routes by market type, and resolves an order's symbol to the
contract when the order carries `positionSide`/`cumQuote`, which every /fapi order does).

USD-M perpetuals ("BTC/USDT:USDT", `Engine.add_perpetual`):
- Quantities are in the base asset: binance's USD-M exchangeInfo has no contract size and ccxt
  takes 1, so a perpetual added with another `contract_size` is refused (ValueError, HTTP 500).
- One-way position mode (`GET/POST /fapi/v1/positionSide/dual`, dualSidePosition false). It can
  be switched to hedge mode while flat, as binance allows (-4059 unchanged, -4067 open orders,
  -4068 position); then a one-way order is refused (-4061) and hedge-mode orders are not modelled.
- Margin type per symbol (`POST /fapi/v1/marginType`, ISOLATED | CROSSED): -4046 "No need to
  change margin type." when unchanged (ccxt: MarginModeAlreadySet), -4048 with a position,
  -4047 with open orders. Leverage (`POST /fapi/v1/leverage`): the same value again is answered
  again; -4161 lowering it with an isolated position; -2027 beyond the bracket's notional.
- Orders (`/fapi/v1/order`, `openOrder`, `openOrders`, `allOpenOrders`, `allOrders`,
  `userTrades`): -2019 "Margin is insufficient." (initial margin = notional / leverage),
  -4164 under MIN_NOTIONAL (reduce-only exempt), -4004 under minQty, -1111 too many decimals,
  -4014 off the tick, -4016/-4024 outside PERCENT_PRICE (5 % around the mark), -4116 a client id
  already open, -2022 a reduce-only order that would not reduce, -5022 a post-only (GTX) order
  that would cross, -4120 conditional types (binance's algo API, not modelled). binance's order
  answers carry no fee: the fee (0.05 % in USDT) is in userTrades. A cancel's `clientOrderId`
  is the order's own (spot's is the cancel's).
- Positions: `GET /fapi/v3/positionRisk` (ccxt's default; only symbols with a position or open
  orders, no leverage field), `/fapi/v2/positionRisk` (every symbol, with leverage and
  marginType), `/fapi/v2|v3/account`, `/fapi/v2|v3/balance`, `/fapi/v1/leverageBracket`
  (BTCUSDT's brackets, for every symbol), `/fapi/v1/symbolConfig`. Liquidation prices use
  binance's one-way formula with those brackets.

Simplifications: ONE quote balance serves the spot wallet and the futures wallet (binance
keeps two, moved between by transfers), so /api/v3/account shows futures margin as `locked`
and /fapi's walletBalance is that same quote total. The mark price is the engine's price; no
funding. An order that reduces a position still reserves margin (binance reserves none for the
closing part). userTrades' realizedPnl is 0. A cross position's liquidation price counts it
alone against the cross wallet.

ccxt picks binance's futures-only error table (-2019, -2022, -2027, -4116, -4164, -5022 ...) by
the request's host (fapi.binance.com, demo-fapi.binance.com, testnet.binancefuture.com). On the
fake's loopback URL that table would not be consulted (those codes would raise a plain
ExchangeError), but deskgate's `point_at`, which every client here goes through, makes the choice
on binance's own URL; tests/test_fake_perps_binance.py asserts the classes match binance's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from .engine import Market, Order, Refused, Trade, candles, floor_to, interval_ms, stats_24h
from .server import deliver, json_response

if TYPE_CHECKING:
    from . import FakeExchange

Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.Response]]
CLIENT_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
STATUS = {"filled": "FILLED", "canceled": "CANCELED", "expired": "EXPIRED"}


class Reply(Exception):
    """Stop handling and answer with this binance error."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.response = error(status, code, msg)


def error(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"code": code, "msg": msg}, status, headers)


def down() -> web.Response:
    return error(503, -1001, "Internal error; unable to process your request. Please try again.")


def rate_limited() -> web.Response:
    return error(
        429,
        -1003,
        "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
        "Please use the websocket for live updates to avoid polling the API.",
        {"Retry-After": "60"},
    )


def f8(value: Decimal | int) -> str:
    return f"{Decimal(value):.8f}"


def market_id(m: Market) -> str:
    return m.base + m.quote


# ---- request plumbing ------------------------------------------------------------------


def _params(raw_query: str, body: str) -> dict[str, str]:
    return dict(parse_qsl(raw_query, keep_blank_values=True)) | dict(parse_qsl(body, keep_blank_values=True))


def _without_signature(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if p and not p.startswith("signature="))


def _public(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request, _params(request.raw_path.partition("?")[2], ""))
        except Reply as reply:
            return reply.response

    return run


def _signed(fx: FakeExchange, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """binance SIGNED endpoints: X-MBX-APIKEY, then HMAC-SHA256 over query string + body
    (without `signature`), then `timestamp` against the server clock and `recvWindow`."""

    async def run(request: web.Request) -> web.Response:
        raw_query, body = request.raw_path.partition("?")[2], await request.text()
        params = _params(raw_query, body)
        try:
            key = request.headers.get("X-MBX-APIKEY")
            if not key:
                raise Reply(401, -2014, "API-key format invalid.")
            if key != fx.api_key:
                raise Reply(401, -2015, "Invalid API-key, IP, or permissions for action.")
            signature = params.get("signature", "")
            if not signature:
                raise Reply(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
            total = _without_signature(raw_query) + _without_signature(body)
            expected = hmac.new(fx.secret.encode(), total.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature.lower()):
                raise Reply(400, -1022, "Signature for this request is not valid.")
            timestamp, recv_window = _int(params, "timestamp"), _int(params, "recvWindow", 5000)
            if recv_window > 60_000:
                raise Reply(400, -1131, "recvWindow must be less than 60000")
            now = fx.now_ms()
            if timestamp >= now + 1000:
                raise Reply(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
            if now - timestamp > recv_window:
                raise Reply(400, -1021, "Timestamp for this request is outside of the recvWindow.")
            return await handler(request, params)
        except Reply as reply:
            return reply.response

    return run


def _int(params: dict[str, str], name: str, default: int | None = None) -> int:
    value = params.get(name)
    if value in (None, ""):
        if default is not None:
            return default
        raise Reply(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    try:
        return int(value)
    except ValueError:
        raise Reply(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.") from None


def _dec(params: dict[str, str], name: str) -> Decimal | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise Reply(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
        ) from None


def _market(fx: FakeExchange, params: dict[str, str], required: bool = True, perpetual: bool = False) -> Market | None:
    """The market `symbol` names on this API: spot on /api, the perpetuals on /fapi (both say "BTCUSDT")."""
    symbol = params.get("symbol")
    if not symbol:
        if required:
            raise Reply(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        return None
    for m in fx.market_list():
        if market_id(m) == symbol and m.perpetual == perpetual:
            return m
    raise Reply(400, -1121, "Invalid symbol.")


# ---- JSON shapes -----------------------------------------------------------------------


def _status(o: Order) -> str:
    if o.status == "open":
        return "PARTIALLY_FILLED" if o.filled else "NEW"
    return STATUS[o.status]


def _order(o: Order, m: Market) -> dict:
    """The fields every order answer carries (GET /order, openOrders, allOrders, RESULT)."""
    return {
        "symbol": market_id(m),
        "orderId": o.id,
        "orderListId": -1,
        "clientOrderId": o.client_id,
        "price": f8(o.price or 0),
        "origQty": f8(o.amount),
        "executedQty": f8(o.filled),
        "origQuoteOrderQty": f8(o.quote_amount or 0),
        "cummulativeQuoteQty": f8(o.cost),
        "status": _status(o),
        "timeInForce": o.tif,
        "type": o.type.upper(),
        "side": o.side.upper(),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def _queried(o: Order, m: Market) -> dict:
    return _order(o, m) | {
        "stopPrice": f8(0),
        "icebergQty": f8(0),
        "time": o.created_ms,
        "updateTime": o.updated_ms,
        "isWorking": True,
        "workingTime": o.created_ms,
    }


def _fill(t: Trade) -> dict:
    return {"price": f8(t.price), "qty": f8(t.amount), "commission": f8(t.fee), "commissionAsset": t.fee_asset, "tradeId": t.id}


def _my_trade(t: Trade, m: Market) -> dict:
    return {
        "symbol": market_id(m),
        "id": t.id,
        "orderId": t.order_id,
        "orderListId": -1,
        "price": f8(t.price),
        "qty": f8(t.amount),
        "quoteQty": f8(t.cost),
        "commission": f8(t.fee),
        "commissionAsset": t.fee_asset,
        "time": t.time_ms,
        "isBuyer": t.side == "buy",
        "isMaker": t.maker,
        "isBestMatch": True,
    }


def _symbol_info(m: Market) -> dict:
    return {
        "symbol": market_id(m),
        "status": "TRADING",
        "baseAsset": m.base,
        "baseAssetPrecision": 8,
        "quoteAsset": m.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": f8(m.price_tick), "maxPrice": f8(1_000_000), "tickSize": f8(m.price_tick)},
            {"filterType": "LOT_SIZE", "minQty": f8(m.min_amount), "maxQty": f8(9000), "stepSize": f8(m.amount_step)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": f8(0), "maxQty": f8(100), "stepSize": f8(0)},
            {
                "filterType": "NOTIONAL",
                "minNotional": f8(m.min_cost),
                "applyMinToMarket": True,
                "maxNotional": f8(9_000_000),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _ticker(m: Market, now: int) -> dict:
    s = stats_24h(m, now)
    change = s.last - s.open
    return {
        "symbol": market_id(m),
        "priceChange": f8(change),
        "priceChangePercent": f"{change / s.open * 100:.3f}",
        "weightedAvgPrice": f8(s.quote_volume / s.volume),
        "prevClosePrice": f8(s.open),
        "lastPrice": f8(s.last),
        "lastQty": f8(m.amount_step * 10),
        "bidPrice": f8(s.bid),
        "bidQty": f8(1),
        "askPrice": f8(s.ask),
        "askQty": f8(1),
        "openPrice": f8(s.open),
        "highPrice": f8(s.high),
        "lowPrice": f8(s.low),
        "volume": f8(s.volume),
        "quoteVolume": f8(s.quote_volume),
        "openTime": s.open_ms,
        "closeTime": now,
        "firstId": 1,
        "lastId": 1000,
        "count": 1000,
    }


def _kline_rows(m: Market, params: dict[str, str], now: int, max_limit: int) -> list[list]:
    step = interval_ms(params.get("interval", ""))
    if step is None:
        raise Reply(400, -1120, "Invalid interval.")
    limit = min(_int(params, "limit", 500), max_limit)
    start, end = params.get("startTime"), params.get("endTime")
    if start:
        first = -(-int(start) // step)
        last = min(first + limit - 1, int(end) // step if end else first + limit - 1)
    else:
        last = int(end) // step if end else now // step
        first = last - limit + 1
    return [
        [c.open_ms, f8(c.open), f8(c.high), f8(c.low), f8(c.close), f8(c.volume), c.open_ms + step - 1,
         f8(c.quote_volume), 100, f8(c.volume / 2), f8(c.quote_volume / 2), "0"]
        for c in candles(m, step, first, last, now)
    ]


# ---- routes ----------------------------------------------------------------------------

REFUSALS = {
    "unknown_symbol": (-1121, "Invalid symbol."),
    "price_tick": (-1013, "Filter failure: PRICE_FILTER"),
    "amount_step": (-1013, "Filter failure: LOT_SIZE"),
    "amount_min": (-1013, "Filter failure: LOT_SIZE"),
    "cost_min": (-1013, "Filter failure: NOTIONAL"),
    "duplicate": (-2010, "Duplicate order sent."),
    "insufficient": (-2010, "Account has insufficient balance for requested action."),
}


def routes(fx: FakeExchange) -> list[web.RouteDef]:
    def markets() -> list[Market]:
        return [m for m in fx.market_list() if not m.perpetual]

    def spot_symbols() -> set[str]:
        return {m.symbol for m in markets()}

    def signed(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        return _signed(fx, handler)

    async def ping(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response({})

    async def server_time(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response({"serverTime": fx.now_ms()})

    async def exchange_info(request: web.Request, params: dict[str, str]) -> web.Response:
        chosen = [_market(fx, params)] if params.get("symbol") else markets()
        return json_response(
            {
                "timezone": "UTC",
                "serverTime": fx.now_ms(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": [_symbol_info(m) for m in chosen if m is not None],
            }
        )

    async def ticker_24hr(request: web.Request, params: dict[str, str]) -> web.Response:
        m = _market(fx, params, required=False)
        if m is not None:
            return json_response(_ticker(m, fx.now_ms()))
        return json_response([_ticker(x, fx.now_ms()) for x in markets()])

    async def ticker_price(request: web.Request, params: dict[str, str]) -> web.Response:
        m = _market(fx, params, required=False)
        rows = [{"symbol": market_id(x), "price": f8(x.price)} for x in ([m] if m else markets())]
        return json_response(rows[0] if m else rows)

    async def book_ticker(request: web.Request, params: dict[str, str]) -> web.Response:
        m = _market(fx, params, required=False)
        rows = [
            {"symbol": market_id(x), "bidPrice": f8(x.price - x.price_tick), "bidQty": f8(1), "askPrice": f8(x.price + x.price_tick), "askQty": f8(1)}
            for x in ([m] if m else markets())
        ]
        return json_response(rows[0] if m else rows)

    async def depth(request: web.Request, params: dict[str, str]) -> web.Response:
        m = _market(fx, params)
        n = min(_int(params, "limit", 100), 5000)
        return json_response(
            {
                "lastUpdateId": fx.now_ms(),
                "bids": [[f8(m.price - m.price_tick * i), f8(1)] for i in range(1, n + 1)],
                "asks": [[f8(m.price + m.price_tick * i), f8(1)] for i in range(1, n + 1)],
            }
        )

    async def klines(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response(_kline_rows(_market(fx, params), params, fx.now_ms(), 1000))

    async def account(request: web.Request, params: dict[str, str]) -> web.Response:
        omit_zero = params.get("omitZeroBalances") == "true"
        balances = [
            {"asset": c, "free": f8(b["free"]), "locked": f8(b["used"])}
            for c, b in sorted(fx.balance_snapshot().items())
            if not (omit_zero and b["free"] == 0 and b["used"] == 0)
        ]
        return json_response(
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {"maker": f8(Decimal("0.001")), "taker": f8(Decimal("0.001")), "buyer": f8(0), "seller": f8(0)},
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": fx.now_ms(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": 354937868,
            }
        )

    async def new_order(request: web.Request, params: dict[str, str]) -> web.Response:
        m = _market(fx, params)
        side, type_ = params.get("side", "").lower(), params.get("type", "").upper()
        if side not in ("buy", "sell"):
            raise Reply(400, -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        if type_ not in ("LIMIT", "MARKET"):
            raise Reply(400, -1116, "Invalid orderType.")
        tif = params.get("timeInForce")
        amount, price, quote_amount = _dec(params, "quantity"), _dec(params, "price"), _dec(params, "quoteOrderQty")
        if type_ == "LIMIT":
            for name, value in (("timeInForce", tif), ("quantity", amount), ("price", price)):
                if value is None:
                    raise Reply(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
            if tif not in ("GTC", "IOC", "FOK"):
                raise Reply(400, -1115, "Invalid timeInForce.")
        else:
            if tif is not None:
                raise Reply(400, -1106, "Parameter 'timeInForce' sent when not required.")
            if (amount is None) == (quote_amount is None):
                raise Reply(400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
        client_id = params.get("newClientOrderId") or uuid.uuid4().hex[:22]
        if not CLIENT_ID.match(client_id):
            raise Reply(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'.")
        try:
            o = fx.place(m.symbol, side, type_.lower(), amount, price, client_id, tif or "GTC", quote_amount)
        except Refused as refused:
            code, msg = REFUSALS.get(refused.reason, (refused.code, refused.msg))
            raise Reply(400, int(code), str(msg)) from None
        resp_type = params.get("newOrderRespType", "FULL")
        ack = {"symbol": market_id(m), "orderId": o.id, "orderListId": -1, "clientOrderId": o.client_id, "transactTime": o.created_ms}
        if resp_type == "ACK":
            body = ack
        else:
            body = ack | _order(o, m) | {"workingTime": o.created_ms}
            if resp_type == "FULL":
                body["fills"] = [_fill(t) for t in o.trades]
        return await deliver(o.behaviour, json_response(body))

    def _lookup(params: dict[str, str]) -> tuple[Market, int | None, str | None]:
        m = _market(fx, params)
        order_id, client_id = params.get("orderId"), params.get("origClientOrderId")
        if not order_id and not client_id:
            raise Reply(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order_id:  # binance prefers orderId when both are sent
            return m, _int(params, "orderId"), None
        return m, None, client_id

    async def query_order(request: web.Request, params: dict[str, str]) -> web.Response:
        m, order_id, client_id = _lookup(params)
        o = fx.find(m.symbol, order_id, client_id)
        if o is None:
            raise Reply(400, -2013, "Order does not exist.")
        return json_response(_queried(o, m))

    def _canceled(o: Order, m: Market, params: dict[str, str]) -> dict:
        """A cancel answer: `clientOrderId` is the cancel request's own id, the order's is `origClientOrderId`."""
        body = _order(o, m) | {"origClientOrderId": o.client_id, "transactTime": fx.now_ms()}
        body["clientOrderId"] = params.get("newClientOrderId") or uuid.uuid4().hex[:22]
        return body

    async def cancel_order(request: web.Request, params: dict[str, str]) -> web.Response:
        m, order_id, client_id = _lookup(params)
        o = fx.cancel(m.symbol, order_id, client_id)
        if o is None:
            raise Reply(400, -2011, "Unknown order sent.")
        return json_response(_canceled(o, m, params))

    async def open_orders(request: web.Request, params: dict[str, str]) -> web.Response:
        m = _market(fx, params, required=False)
        found = [o for o in fx.orders(m.symbol if m else None, status="open") if o.symbol in spot_symbols()]
        return json_response([_queried(o, fx.market(o.symbol)) for o in found])

    async def cancel_open_orders(request: web.Request, params: dict[str, str]) -> web.Response:
        m = _market(fx, params)
        canceled = [c for c in (fx.cancel(m.symbol, o.id) for o in fx.orders(m.symbol, status="open")) if c is not None]
        if not canceled:
            raise Reply(400, -2011, "Unknown order sent.")
        return json_response([_canceled(o, m, {}) for o in canceled])

    async def all_orders(request: web.Request, params: dict[str, str]) -> web.Response:
        m = _market(fx, params)
        found = [o for o in fx.orders(m.symbol) if o.id >= _int(params, "orderId", 0)]
        return json_response([_queried(o, m) for o in found][: min(_int(params, "limit", 500), 1000)])

    async def my_trades(request: web.Request, params: dict[str, str]) -> web.Response:
        m = _market(fx, params)
        order_id = _int(params, "orderId") if params.get("orderId") else None
        found = [t for t in fx.trades(m.symbol, order_id) if t.id >= _int(params, "fromId", 0)]
        found = [t for t in found if t.time_ms >= _int(params, "startTime", 0)]
        return json_response([_my_trade(t, m) for t in found][-min(_int(params, "limit", 500), 1000):])

    public = _public
    return [
        web.get("/api/v3/ping", public(ping)),
        web.get("/api/v3/time", public(server_time)),
        web.get("/api/v3/exchangeInfo", public(exchange_info)),
        web.get("/api/v3/ticker/24hr", public(ticker_24hr)),
        web.get("/api/v3/ticker", public(ticker_24hr)),
        web.get("/api/v3/ticker/price", public(ticker_price)),
        web.get("/api/v3/ticker/bookTicker", public(book_ticker)),
        web.get("/api/v3/depth", public(depth)),
        web.get("/api/v3/klines", public(klines)),
        web.get("/api/v3/uiKlines", public(klines)),
        web.get("/api/v3/account", signed(account)),
        web.post("/api/v3/order", signed(new_order)),
        web.get("/api/v3/order", signed(query_order)),
        web.delete("/api/v3/order", signed(cancel_order)),
        web.get("/api/v3/openOrders", signed(open_orders)),
        web.delete("/api/v3/openOrders", signed(cancel_open_orders)),
        web.get("/api/v3/allOrders", signed(all_orders)),
        web.get("/api/v3/myTrades", signed(my_trades)),
    ] + fapi_routes(fx)


# ==== USDⓈ-M futures (/fapi) =============================================================
#
# binance's linear perpetuals: the same host conventions, signing and error envelope as spot,
# under /fapi/v1 (v2, v3). Quantities are in the base asset (binance's USDⓈ-M contract is one
# unit of it: no contractSize in exchangeInfo, ccxt takes 1), margin and profit in the quote.

#: PERCENT_PRICE: a limit price must lie within these multiples of the mark (BTCUSDT's filter).
PERCENT_PRICE_UP = Decimal("1.0500")
PERCENT_PRICE_DOWN = Decimal("0.9500")
FAPI_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
CONDITIONAL_TYPES = {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}

# (initial leverage, notional floor, notional cap, maintenance margin ratio): BTCUSDT's brackets.
_BRACKET_ROWS = [
    (125, 0, 50_000, "0.004"),
    (100, 50_000, 600_000, "0.005"),
    (75, 600_000, 3_000_000, "0.0065"),
    (50, 3_000_000, 12_000_000, "0.01"),
    (25, 12_000_000, 70_000_000, "0.02"),
    (20, 70_000_000, 100_000_000, "0.025"),
    (10, 100_000_000, 230_000_000, "0.05"),
    (5, 230_000_000, 480_000_000, "0.1"),
    (4, 480_000_000, 600_000_000, "0.125"),
    (3, 600_000_000, 800_000_000, "0.15"),
    (2, 800_000_000, 1_200_000_000, "0.25"),
    (1, 1_200_000_000, 1_800_000_000, "0.5"),
]


@dataclass(frozen=True)
class Bracket:
    number: int
    leverage: int
    floor: Decimal
    cap: Decimal
    mmr: Decimal
    cum: Decimal  # maintenance amount: maintenance margin = notional * mmr - cum


def _brackets() -> list[Bracket]:
    out, cum, previous = [], Decimal(0), Decimal(0)
    for number, (leverage, floor, cap, mmr) in enumerate(_BRACKET_ROWS, 1):
        ratio = Decimal(mmr)
        cum += Decimal(floor) * (ratio - previous)
        previous = ratio
        out.append(Bracket(number, leverage, Decimal(floor), Decimal(cap), ratio, cum))
    return out


BRACKETS = _brackets()


def bracket_for(notional: Decimal) -> Bracket:
    return next((b for b in BRACKETS if abs(notional) < b.cap), BRACKETS[-1])


def max_notional(leverage: int) -> Decimal:
    """The largest position a symbol may hold at this leverage (binance's maxNotionalValue)."""
    return max(b.cap for b in BRACKETS if b.leverage >= leverage)


def _places(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)


def fixed(value: Decimal | int, places: int) -> str:
    return f"{Decimal(value):.{places}f}"


def _perpetual_checked(m: Market) -> Market:
    if m.contract_size != 1:
        raise ValueError(
            f"binance USDⓈ-M quantities are in {m.base}: add_perpetual({m.symbol!r}, ..., contract_size=1.0), "
            f"not {m.contract_size}"
        )
    return m


def _fapi_symbol_info(m: Market) -> dict:
    _perpetual_checked(m)
    return {
        "symbol": market_id(m),
        "pair": market_id(m),
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": m.base,
        "quoteAsset": m.quote,
        "marginAsset": m.quote,
        "pricePrecision": _places(m.price_tick),
        "quantityPrecision": _places(m.amount_step),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fixed(m.price_tick, _places(m.price_tick)),
             "maxPrice": "4529764", "tickSize": fixed(m.price_tick, _places(m.price_tick))},
            {"filterType": "LOT_SIZE", "minQty": fixed(m.min_amount, _places(m.amount_step)), "maxQty": "1000",
             "stepSize": fixed(m.amount_step, _places(m.amount_step))},
            {"filterType": "MARKET_LOT_SIZE", "minQty": fixed(m.min_amount, _places(m.amount_step)), "maxQty": "120",
             "stepSize": fixed(m.amount_step, _places(m.amount_step))},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": format(m.min_cost.normalize(), "f")},
            {"filterType": "PERCENT_PRICE", "multiplierUp": str(PERCENT_PRICE_UP), "multiplierDown": str(PERCENT_PRICE_DOWN),
             "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSet": ["GRID", "COPY"],
    }


def _fapi_order(o: Order, m: Market, reduce_only: bool, answer: bool = False) -> dict:
    """An order as /fapi answers it: GET order, openOrders, allOrders; `answer`: POST/DELETE order
    (those carry cumQty and no `time`). A cancel's clientOrderId is the order's own (unlike spot)."""
    qp, pp = _places(m.amount_step), _places(m.price_tick)
    body = {
        "orderId": o.id,
        "symbol": market_id(m),
        "status": _status(o),
        "clientOrderId": o.client_id,
        "price": fixed(o.price or 0, pp),
        "avgPrice": fixed(o.average or 0, 8),
        "origQty": fixed(o.amount, qp),
        "executedQty": fixed(o.filled, qp),
        "cumQuote": fixed(o.cost, 8),
        "timeInForce": o.tif,
        "type": o.type.upper(),
        "reduceOnly": reduce_only,
        "closePosition": False,
        "side": o.side.upper(),
        "positionSide": "BOTH",
        "stopPrice": fixed(0, pp),
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": o.type.upper(),
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "updateTime": o.updated_ms,
    }
    if answer:
        body["cumQty"] = body["executedQty"]
    else:
        body["time"] = o.created_ms
    return body


def _fapi_trade(t: Trade, m: Market) -> dict:
    return {
        "buyer": t.side == "buy",
        "commission": fixed(t.fee, 8),
        "commissionAsset": t.fee_asset,
        "id": t.id,
        "maker": t.maker,
        "orderId": t.order_id,
        "price": fixed(t.price, _places(m.price_tick)),
        "qty": fixed(t.amount, _places(m.amount_step)),
        "quoteQty": fixed(t.cost, 8),
        "realizedPnl": fixed(0, 8),  # not kept per trade by the engine (the position's total is)
        "side": t.side.upper(),
        "positionSide": "BOTH",
        "symbol": market_id(m),
        "time": t.time_ms,
    }


@dataclass(frozen=True)
class PositionView:
    """One symbol's position as binance computes it, at the mark (the engine's price)."""

    market: Market
    amount: Decimal  # signed, base
    entry: Decimal
    mark: Decimal
    leverage: int
    isolated: bool
    wallet: Decimal  # isolated wallet (the margin put in), 0 in cross
    cross_wallet: Decimal
    order_margin: Decimal
    updated_ms: int

    @property
    def notional(self) -> Decimal:
        return self.amount * self.mark

    @property
    def unrealized(self) -> Decimal:
        return (self.mark - self.entry) * self.amount

    @property
    def bracket(self) -> Bracket:
        return bracket_for(self.notional)

    @property
    def maint_margin(self) -> Decimal:
        return max(Decimal(0), abs(self.notional) * self.bracket.mmr - self.bracket.cum) if self.amount else Decimal(0)

    @property
    def initial_margin(self) -> Decimal:
        return abs(self.notional) / self.leverage

    @property
    def isolated_margin(self) -> Decimal:
        return self.wallet + self.unrealized if self.isolated and self.amount else Decimal(0)

    @property
    def liquidation(self) -> Decimal:
        """binance's one-way formula: (WB + cum - side*size*entry) / (size*mmr - side*size), WB the
        isolated wallet (or, in cross, the cross wallet: this one position alone); 0 if never."""
        if not self.amount:
            return Decimal(0)
        side, size, b = (Decimal(1) if self.amount > 0 else Decimal(-1)), abs(self.amount), self.bracket
        wallet = self.wallet if self.isolated else self.cross_wallet
        price = (wallet + b.cum - side * size * self.entry) / (size * b.mmr - side * size)
        return max(price, Decimal(0))

    @property
    def break_even(self) -> Decimal:
        side = Decimal(1) if self.amount > 0 else Decimal(-1)
        return self.entry * (1 + side * Decimal("0.0005")) if self.amount else Decimal(0)

    def risk_v2(self) -> dict:
        m = self.market
        return {
            "symbol": market_id(m),
            "positionAmt": fixed(self.amount, _places(m.amount_step)),
            "entryPrice": fixed(self.entry, 8),
            "breakEvenPrice": fixed(self.break_even, 8),
            "markPrice": fixed(self.mark, 8),
            "unRealizedProfit": fixed(self.unrealized, 8),
            "liquidationPrice": fixed(self.liquidation, 8),
            "leverage": str(self.leverage),
            "maxNotionalValue": str(max_notional(self.leverage)),
            "marginType": "isolated" if self.isolated else "cross",
            "isolatedMargin": fixed(self.isolated_margin, 8),
            "isAutoAddMargin": "false",
            "positionSide": "BOTH",
            "notional": fixed(self.notional, 8),
            "isolatedWallet": fixed(self.wallet if self.amount else 0, 8),
            "updateTime": self.updated_ms,
            "isolated": self.isolated,
            "adlQuantile": 0,
        }

    def risk_v3(self) -> dict:
        m = self.market
        return {
            "symbol": market_id(m),
            "positionSide": "BOTH",
            "positionAmt": fixed(self.amount, _places(m.amount_step)),
            "entryPrice": fixed(self.entry, 8),
            "breakEvenPrice": fixed(self.break_even, 8),
            "markPrice": fixed(self.mark, 8),
            "unRealizedProfit": fixed(self.unrealized, 8),
            "liquidationPrice": fixed(self.liquidation, 8),
            "isolatedMargin": fixed(self.isolated_margin, 8),
            "notional": fixed(self.notional, 8),
            "marginAsset": m.quote,
            "isolatedWallet": fixed(self.wallet if self.amount else 0, 8),
            "initialMargin": fixed(self.initial_margin + self.order_margin, 8),
            "maintMargin": fixed(self.maint_margin, 8),
            "positionInitialMargin": fixed(self.initial_margin, 8),
            "openOrderInitialMargin": fixed(self.order_margin, 8),
            "adl": 0,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": self.updated_ms,
        }

    def account_v2(self) -> dict:
        m = self.market
        return {
            "symbol": market_id(m),
            "initialMargin": fixed(self.initial_margin + self.order_margin, 8),
            "maintMargin": fixed(self.maint_margin, 8),
            "unrealizedProfit": fixed(self.unrealized, 8),
            "positionInitialMargin": fixed(self.initial_margin, 8),
            "openOrderInitialMargin": fixed(self.order_margin, 8),
            "leverage": str(self.leverage),
            "isolated": self.isolated,
            "entryPrice": fixed(self.entry, 8),
            "breakEvenPrice": fixed(self.break_even, 8),
            "maxNotional": str(max_notional(self.leverage)),
            "bidNotional": "0",
            "askNotional": "0",
            "positionSide": "BOTH",
            "positionAmt": fixed(self.amount, _places(m.amount_step)),
            "notional": fixed(self.notional, 8),
            "isolatedWallet": fixed(self.wallet if self.amount else 0, 8),
            "updateTime": self.updated_ms,
        }

    def account_v3(self) -> dict:
        m = self.market
        return {
            "symbol": market_id(m),
            "positionSide": "BOTH",
            "positionAmt": fixed(self.amount, _places(m.amount_step)),
            "unrealizedProfit": fixed(self.unrealized, 8),
            "isolatedMargin": fixed(self.isolated_margin, 8),
            "notional": fixed(self.notional, 8),
            "isolatedWallet": fixed(self.wallet if self.amount else 0, 8),
            "initialMargin": fixed(self.initial_margin + self.order_margin, 8),
            "maintMargin": fixed(self.maint_margin, 8),
            "updateTime": self.updated_ms,
        }


FAPI_REFUSALS = {
    "unknown_symbol": (-1121, "Invalid symbol."),
    "price_tick": (-4014, "Price not increased by tick size."),
    "amount_step": (-4023, "Quantity not increased by step size."),
    "amount_min": (-4004, "Quantity less than min quantity."),
    "duplicate": (-4116, "ClientOrderId is duplicated."),
    "insufficient": (-2019, "Margin is insufficient."),
}


def fapi_routes(fx: FakeExchange) -> list[web.RouteDef]:
    """binance USDⓈ-M futures on the engine's perpetuals (one-way position mode by default)."""
    state = {"dual": False}  # the account's position mode: hedge (dualSidePosition) when True
    reduce_only: set[int] = set()  # ids of the orders sent with reduceOnly=true

    def perpetuals() -> list[Market]:
        return [_perpetual_checked(m) for m in fx.market_list() if m.perpetual]

    def perpetual(params: dict[str, str], required: bool = True) -> Market | None:
        m = _market(fx, params, required, perpetual=True)
        return _perpetual_checked(m) if m is not None else None

    def signed(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        return _signed(fx, handler)

    def order_body(o: Order, answer: bool = False) -> dict:
        return _fapi_order(o, fx.market(o.symbol), o.id in reduce_only, answer)

    def open_perpetual_orders(symbol: str | None = None) -> list[Order]:
        perps = {m.symbol for m in perpetuals()}
        return [o for o in fx.orders(symbol, status="open") if o.symbol in perps]

    def view(m: Market) -> PositionView:
        pos = fx.position(m.symbol)
        isolated = fx.margin_mode.get(m.symbol) == "isolated"
        quote = fx.balance_snapshot().get(m.quote, {"free": Decimal(0), "used": Decimal(0)})
        isolated_wallets = sum(
            (p.margin for p in fx.positions() if fx.margin_mode.get(p.symbol) == "isolated"), Decimal(0)
        )
        return PositionView(
            market=m,
            amount=pos.contracts * m.contract_size,
            entry=pos.entry_price,
            mark=m.price,
            leverage=fx.leverage.get(m.symbol, 20),
            isolated=isolated,
            wallet=pos.margin if isolated else Decimal(0),
            cross_wallet=quote["free"] + quote["used"] - isolated_wallets,
            order_margin=sum((o.locked for o in open_perpetual_orders(m.symbol)), Decimal(0)),
            updated_ms=pos.updated_ms,
        )

    def exposure(m: Market, extra: Decimal = Decimal(0)) -> Decimal:
        """Position plus open orders plus `extra` (base), in the quote at the mark."""
        held = abs(fx.position(m.symbol).contracts) + sum((o.remaining for o in open_perpetual_orders(m.symbol)), Decimal(0))
        return (held + extra) * m.contract_size * m.price

    # ---- public ---------------------------------------------------------------------------

    async def ping(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response({})

    async def server_time(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response({"serverTime": fx.now_ms()})

    async def exchange_info(request: web.Request, params: dict[str, str]) -> web.Response:
        chosen = perpetuals()
        return json_response(
            {
                "timezone": "UTC",
                "serverTime": fx.now_ms(),
                "futuresType": "U_MARGINED",
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
                ],
                "exchangeFilters": [],
                "assets": [{"asset": q, "marginAvailable": True, "autoAssetExchange": "-10000"}
                           for q in sorted({m.quote for m in chosen})],
                "symbols": [_fapi_symbol_info(m) for m in chosen],
            }
        )

    def ticker(m: Market, now: int) -> dict:
        s = stats_24h(m, now)
        change = s.last - s.open
        pp = _places(m.price_tick)
        return {
            "symbol": market_id(m),
            "priceChange": fixed(change, pp),
            "priceChangePercent": f"{change / s.open * 100:.3f}",
            "weightedAvgPrice": fixed(s.quote_volume / s.volume, pp),
            "lastPrice": fixed(s.last, pp),
            "lastQty": fixed(m.amount_step * 10, _places(m.amount_step)),
            "openPrice": fixed(s.open, pp),
            "highPrice": fixed(s.high, pp),
            "lowPrice": fixed(s.low, pp),
            "volume": fixed(s.volume, _places(m.amount_step)),
            "quoteVolume": fixed(s.quote_volume, 2),
            "openTime": s.open_ms,
            "closeTime": now,
            "firstId": 1,
            "lastId": 1000,
            "count": 1000,
        }

    async def ticker_24hr(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params, required=False)
        if m is not None:
            return json_response(ticker(m, fx.now_ms()))
        return json_response([ticker(x, fx.now_ms()) for x in perpetuals()])

    async def ticker_price(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params, required=False)
        rows = [{"symbol": market_id(x), "price": fixed(x.price, _places(x.price_tick)), "time": fx.now_ms()}
                for x in ([m] if m else perpetuals())]
        return json_response(rows[0] if m else rows)

    async def book_ticker(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params, required=False)
        rows = [
            {"symbol": market_id(x), "bidPrice": fixed(x.price - x.price_tick, _places(x.price_tick)), "bidQty": "1.000",
             "askPrice": fixed(x.price + x.price_tick, _places(x.price_tick)), "askQty": "1.000", "time": fx.now_ms()}
            for x in ([m] if m else perpetuals())
        ]
        return json_response(rows[0] if m else rows)

    async def premium_index(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params, required=False)
        now = fx.now_ms()
        rows = [
            {"symbol": market_id(x), "markPrice": fixed(x.price, 8), "indexPrice": fixed(x.price, 8),
             "estimatedSettlePrice": fixed(x.price, 8), "lastFundingRate": "0.00010000", "interestRate": "0.00010000",
             "nextFundingTime": (now // 28_800_000 + 1) * 28_800_000, "time": now}
            for x in ([m] if m else perpetuals())
        ]
        return json_response(rows[0] if m else rows)

    async def depth(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params)
        n = min(_int(params, "limit", 500), 1000)
        pp, now = _places(m.price_tick), fx.now_ms()
        return json_response(
            {
                "lastUpdateId": now,
                "E": now,
                "T": now,
                "bids": [[fixed(m.price - m.price_tick * i, pp), "1.000"] for i in range(1, n + 1)],
                "asks": [[fixed(m.price + m.price_tick * i, pp), "1.000"] for i in range(1, n + 1)],
            }
        )

    async def klines(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response(_kline_rows(perpetual(params), params, fx.now_ms(), 1500))

    # ---- account settings -----------------------------------------------------------------

    async def get_position_mode(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response({"dualSidePosition": state["dual"]})

    async def set_position_mode(request: web.Request, params: dict[str, str]) -> web.Response:
        raw = params.get("dualSidePosition", "")
        if raw.lower() not in ("true", "false"):
            raise Reply(400, -1102, "Mandatory parameter 'dualSidePosition' was not sent, was empty/null, or malformed.")
        dual = raw.lower() == "true"
        if dual == state["dual"]:
            raise Reply(400, -4059, "No need to change position side.")
        if open_perpetual_orders():
            raise Reply(400, -4067, "Position side cannot be changed if there exists open orders.")
        if fx.positions():
            raise Reply(400, -4068, "Position side cannot be changed if there exists position.")
        state["dual"] = dual
        return json_response({"code": 200, "msg": "success"})

    async def margin_type(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params)
        raw = params.get("marginType", "")
        if not raw:
            raise Reply(400, -1102, "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed.")
        mode = {"ISOLATED": "isolated", "CROSSED": "cross"}.get(raw.upper())
        if mode is None:
            raise Reply(400, -1130, "Data sent for parameter 'marginType' is not valid.")
        try:
            changed = fx.set_margin_mode(m.symbol, mode)
        except Refused as refused:
            if refused.reason != "margin_mode_busy":
                raise
            if fx.position(m.symbol).contracts:
                raise Reply(400, -4048, "Margin type cannot be changed if there exists position.") from None
            raise Reply(400, -4047, "Margin type cannot be changed if there exists open orders.") from None
        if not changed:
            raise Reply(400, -4046, "No need to change margin type.")
        return json_response({"code": 200, "msg": "success"})

    async def leverage(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params)
        value = _int(params, "leverage")
        if not 1 <= value <= BRACKETS[0].leverage:
            raise Reply(400, -4028, f"Leverage {value} is not valid")
        if fx.margin_mode.get(m.symbol) == "isolated" and fx.position(m.symbol).contracts and value < fx.leverage.get(m.symbol, 20):
            raise Reply(400, -4161, "Leverage reduction is not supported in Isolated Margin Mode with open positions.")
        if exposure(m) > max_notional(value):
            raise Reply(400, -2027, "Exceeded the maximum allowable position at current leverage.")
        fx.set_leverage(m.symbol, value)
        return json_response({"leverage": value, "maxNotionalValue": str(max_notional(value)), "symbol": market_id(m)})

    async def leverage_bracket(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params, required=False)
        rows = [
            {
                "symbol": market_id(x),
                "brackets": [
                    {"bracket": b.number, "initialLeverage": b.leverage, "notionalCap": int(b.cap), "notionalFloor": int(b.floor),
                     "maintMarginRatio": float(b.mmr), "cum": float(b.cum)}
                    for b in BRACKETS
                ],
            }
            for x in ([m] if m else perpetuals())
        ]
        return json_response(rows[0] if m else rows)

    async def symbol_config(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params, required=False)
        return json_response([
            {"symbol": market_id(x), "marginType": "ISOLATED" if fx.margin_mode.get(x.symbol) == "isolated" else "CROSSED",
             "isAutoAddMargin": "false", "leverage": fx.leverage.get(x.symbol, 20),
             "maxNotionalValue": str(max_notional(fx.leverage.get(x.symbol, 20)))}
            for x in ([m] if m else perpetuals())
        ])

    # ---- positions and account --------------------------------------------------------------

    async def position_risk_v2(request: web.Request, params: dict[str, str]) -> web.Response:
        """v2: every symbol (or the one named), flat ones too."""
        m = perpetual(params, required=False)
        return json_response([view(x).risk_v2() for x in ([m] if m else perpetuals())])

    async def position_risk_v3(request: web.Request, params: dict[str, str]) -> web.Response:
        """v3: only symbols with a position or open orders."""
        m = perpetual(params, required=False)
        views = [view(x) for x in ([m] if m else perpetuals())]
        return json_response([v.risk_v3() for v in views if v.amount or v.order_margin])

    def account_body(version: int) -> dict:
        views = [view(m) for m in perpetuals()]
        snapshot = fx.balance_snapshot()
        now = fx.now_ms()
        assets, totals = [], {k: Decimal(0) for k in ("wallet", "upnl", "pos_im", "ord_im", "mm", "cross_wallet", "cross_upnl", "free")}
        for quote in sorted({v.market.quote for v in views} or {"USDT"}):
            mine = [v for v in views if v.market.quote == quote]
            bal = snapshot.get(quote, {"free": Decimal(0), "used": Decimal(0)})
            wallet = bal["free"] + bal["used"]
            upnl = sum((v.unrealized for v in mine), Decimal(0))
            pos_im = sum((v.initial_margin for v in mine), Decimal(0))
            ord_im = sum((v.order_margin for v in mine), Decimal(0))
            mm = sum((v.maint_margin for v in mine), Decimal(0))
            cross_wallet = wallet - sum((v.wallet for v in mine), Decimal(0))
            cross_upnl = sum((v.unrealized for v in mine if not v.isolated), Decimal(0))
            row = {
                "asset": quote,
                "walletBalance": fixed(wallet, 8),
                "unrealizedProfit": fixed(upnl, 8),
                "marginBalance": fixed(wallet + upnl, 8),
                "maintMargin": fixed(mm, 8),
                "initialMargin": fixed(pos_im + ord_im, 8),
                "positionInitialMargin": fixed(pos_im, 8),
                "openOrderInitialMargin": fixed(ord_im, 8),
                "crossWalletBalance": fixed(cross_wallet, 8),
                "crossUnPnl": fixed(cross_upnl, 8),
                "availableBalance": fixed(bal["free"], 8),
                "maxWithdrawAmount": fixed(bal["free"], 8),
                "updateTime": now,
            }
            if version == 2:
                row["marginAvailable"] = True
            assets.append(row)
            for key, value in (("wallet", wallet), ("upnl", upnl), ("pos_im", pos_im), ("ord_im", ord_im), ("mm", mm),
                               ("cross_wallet", cross_wallet), ("cross_upnl", cross_upnl), ("free", bal["free"])):
                totals[key] += value
        if version == 2:
            positions = [v.account_v2() for v in views]
        else:
            positions = [v.account_v3() for v in views if v.amount or v.order_margin]
        body = {
            "totalInitialMargin": fixed(totals["pos_im"] + totals["ord_im"], 8),
            "totalMaintMargin": fixed(totals["mm"], 8),
            "totalWalletBalance": fixed(totals["wallet"], 8),
            "totalUnrealizedProfit": fixed(totals["upnl"], 8),
            "totalMarginBalance": fixed(totals["wallet"] + totals["upnl"], 8),
            "totalPositionInitialMargin": fixed(totals["pos_im"], 8),
            "totalOpenOrderInitialMargin": fixed(totals["ord_im"], 8),
            "totalCrossWalletBalance": fixed(totals["cross_wallet"], 8),
            "totalCrossUnPnl": fixed(totals["cross_upnl"], 8),
            "availableBalance": fixed(totals["free"], 8),
            "maxWithdrawAmount": fixed(totals["free"], 8),
            "assets": assets,
            "positions": positions,
        }
        if version == 2:
            body.update(feeTier=0, canTrade=True, canDeposit=True, canWithdraw=True, feeBurn=False, tradeGroupId=-1,
                        updateTime=0, multiAssetsMargin=False)
        return body

    async def account_v2(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response(account_body(2))

    async def account_v3(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response(account_body(3))

    async def balance(request: web.Request, params: dict[str, str]) -> web.Response:
        return json_response([
            {"accountAlias": "SgsR", "asset": a["asset"], "balance": a["walletBalance"], "crossWalletBalance": a["crossWalletBalance"],
             "crossUnPnl": a["crossUnPnl"], "availableBalance": a["availableBalance"], "maxWithdrawAmount": a["maxWithdrawAmount"],
             "marginAvailable": True, "updateTime": a["updateTime"]}
            for a in account_body(3)["assets"]
        ])

    # ---- orders ---------------------------------------------------------------------------

    async def new_order(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params)
        side, type_ = params.get("side", "").lower(), params.get("type", "").upper()
        if not side:
            raise Reply(400, -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        if side not in ("buy", "sell"):
            raise Reply(400, -1117, "Invalid side.")
        if type_ in CONDITIONAL_TYPES:
            raise Reply(400, -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.")
        if type_ not in ("LIMIT", "MARKET"):
            raise Reply(400, -1116, "Invalid orderType.")
        position_side = params.get("positionSide", "BOTH").upper()
        if position_side not in ("BOTH", "LONG", "SHORT"):
            raise Reply(400, -4060, "Invalid position side.")
        if state["dual"] and position_side != "BOTH":
            raise Reply(400, -1000, "fake exchange: hedge-mode (LONG/SHORT) orders are not modelled")
        if (position_side != "BOTH") != state["dual"]:
            raise Reply(400, -4061, "Order's position side does not match user's setting.")
        tif = params.get("timeInForce")
        amount, price = _dec(params, "quantity"), _dec(params, "price")
        if type_ == "LIMIT":
            for name, value in (("timeInForce", tif), ("quantity", amount), ("price", price)):
                if value is None:
                    raise Reply(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
            if tif not in ("GTC", "IOC", "FOK", "GTX"):
                raise Reply(400, -1115, "Invalid timeInForce.")
        else:
            if amount is None:
                raise Reply(400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
            if price is not None:
                raise Reply(400, -1106, "Parameter 'price' sent when not required.")
            tif = "GTC"
        if -amount.normalize().as_tuple().exponent > _places(m.amount_step):
            raise Reply(400, -1111, "Precision is over the maximum defined for this asset.")
        if amount <= 0:
            raise Reply(400, -4003, "Quantity less than or equal to zero.")
        if price is not None:
            if -price.normalize().as_tuple().exponent > _places(m.price_tick):
                raise Reply(400, -1111, "Precision is over the maximum defined for this asset.")
            if price <= 0:
                raise Reply(400, -4001, "Price less than 0.")
            cap = floor_to(m.price * PERCENT_PRICE_UP, m.price_tick)
            floor = floor_to(m.price * PERCENT_PRICE_DOWN, m.price_tick) + m.price_tick
            if price > cap:
                raise Reply(400, -4016, f"Limit price can't be higher than {fixed(cap, _places(m.price_tick))}.")
            if price < floor:
                raise Reply(400, -4024, f"Limit price can't be lower than {fixed(floor, _places(m.price_tick))}.")
            crosses = price >= m.price if side == "buy" else price <= m.price
            if tif == "GTX" and crosses:
                raise Reply(400, -5022, "Due to the order could not be executed as maker, the Post Only order will be rejected. "
                                        "The order will not be recorded in the order history")
        client_id = params.get("newClientOrderId") or "web_" + uuid.uuid4().hex[:20]
        if not FAPI_CLIENT_ID.match(client_id):
            raise Reply(400, -4015, "Client order id is not valid.")
        reduce = params.get("reduceOnly", "false").lower() == "true"
        if reduce:
            held = fx.position(m.symbol).contracts
            if not held or (held > 0) == (side == "buy") or amount > abs(held):
                raise Reply(400, -2022, "ReduceOnly Order is rejected.")
        elif exposure(m, amount) > max_notional(fx.leverage.get(m.symbol, 20)):
            raise Reply(400, -2027, "Exceeded the maximum allowable position at current leverage.")
        try:
            o = fx.place(m.symbol, side, type_.lower(), amount, price, client_id, tif, check_min_cost=not reduce)
        except Refused as refused:
            if refused.reason == "cost_min":
                raise Reply(400, -4164, f"Order's notional must be no smaller than {format(m.min_cost.normalize(), 'f')} "
                                        "(unless you choose reduce only).") from None
            code, msg = FAPI_REFUSALS.get(refused.reason, (refused.code, refused.msg))
            raise Reply(400, int(code), str(msg)) from None
        if reduce:
            reduce_only.add(o.id)
        if params.get("newOrderRespType", "ACK") == "RESULT":
            body = order_body(o, answer=True)
        else:  # ACK: the order as it was accepted, before matching
            body = order_body(replace(o, status="open", filled=Decimal(0), cost=Decimal(0), updated_ms=o.created_ms), answer=True)
        return await deliver(o.behaviour, json_response(body))

    def lookup(params: dict[str, str]) -> tuple[Market, int | None, str | None]:
        m = perpetual(params)
        order_id, client_id = params.get("orderId"), params.get("origClientOrderId")
        if not order_id and not client_id:
            raise Reply(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order_id:  # binance prefers orderId when both are sent
            return m, _int(params, "orderId"), None
        return m, None, client_id

    async def query_order(request: web.Request, params: dict[str, str]) -> web.Response:
        m, order_id, client_id = lookup(params)
        o = fx.find(m.symbol, order_id, client_id)
        if o is None:
            raise Reply(400, -2013, "Order does not exist.")
        return json_response(order_body(o))

    async def query_open_order(request: web.Request, params: dict[str, str]) -> web.Response:
        m, order_id, client_id = lookup(params)
        o = fx.find(m.symbol, order_id, client_id)
        if o is None or o.status != "open":
            raise Reply(400, -2013, "Order does not exist.")
        return json_response(order_body(o))

    async def cancel_order(request: web.Request, params: dict[str, str]) -> web.Response:
        m, order_id, client_id = lookup(params)
        o = fx.cancel(m.symbol, order_id, client_id)
        if o is None:
            raise Reply(400, -2011, "Unknown order sent.")
        return json_response(order_body(o, answer=True))

    async def open_orders(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params, required=False)
        return json_response([order_body(o) for o in open_perpetual_orders(m.symbol if m else None)])

    async def cancel_all_open_orders(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params)
        for o in open_perpetual_orders(m.symbol):
            fx.cancel(m.symbol, o.id)
        return json_response({"code": 200, "msg": "The operation of cancel all open order is done."})

    async def all_orders(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params)
        found = [o for o in fx.orders(m.symbol) if o.id >= _int(params, "orderId", 0)]
        found = [o for o in found if o.created_ms >= _int(params, "startTime", 0)]
        return json_response([order_body(o) for o in found][: min(_int(params, "limit", 500), 1000)])

    async def user_trades(request: web.Request, params: dict[str, str]) -> web.Response:
        m = perpetual(params)
        order_id = _int(params, "orderId") if params.get("orderId") else None
        found = [t for t in fx.trades(m.symbol, order_id) if t.id >= _int(params, "fromId", 0)]
        found = [t for t in found if t.time_ms >= _int(params, "startTime", 0)]
        return json_response([_fapi_trade(t, m) for t in found][-min(_int(params, "limit", 500), 1000):])

    public = _public
    return [
        web.get("/fapi/v1/ping", public(ping)),
        web.get("/fapi/v1/time", public(server_time)),
        web.get("/fapi/v1/exchangeInfo", public(exchange_info)),
        web.get("/fapi/v1/ticker/24hr", public(ticker_24hr)),
        web.get("/fapi/v1/ticker/price", public(ticker_price)),
        web.get("/fapi/v2/ticker/price", public(ticker_price)),
        web.get("/fapi/v1/ticker/bookTicker", public(book_ticker)),
        web.get("/fapi/v1/premiumIndex", public(premium_index)),
        web.get("/fapi/v1/depth", public(depth)),
        web.get("/fapi/v1/klines", public(klines)),
        web.get("/fapi/v1/positionSide/dual", signed(get_position_mode)),
        web.post("/fapi/v1/positionSide/dual", signed(set_position_mode)),
        web.post("/fapi/v1/marginType", signed(margin_type)),
        web.post("/fapi/v1/leverage", signed(leverage)),
        web.get("/fapi/v1/leverageBracket", signed(leverage_bracket)),
        web.get("/fapi/v1/symbolConfig", signed(symbol_config)),
        web.get("/fapi/v2/positionRisk", signed(position_risk_v2)),
        web.get("/fapi/v3/positionRisk", signed(position_risk_v3)),
        web.get("/fapi/v2/account", signed(account_v2)),
        web.get("/fapi/v3/account", signed(account_v3)),
        web.get("/fapi/v2/balance", signed(balance)),
        web.get("/fapi/v3/balance", signed(balance)),
        web.post("/fapi/v1/order", signed(new_order)),
        web.get("/fapi/v1/order", signed(query_order)),
        web.get("/fapi/v1/openOrder", signed(query_open_order)),
        web.delete("/fapi/v1/order", signed(cancel_order)),
        web.get("/fapi/v1/openOrders", signed(open_orders)),
        web.delete("/fapi/v1/allOpenOrders", signed(cancel_all_open_orders)),
        web.get("/fapi/v1/allOrders", signed(all_orders)),
        web.get("/fapi/v1/userTrades", signed(user_trades)),
    ]
