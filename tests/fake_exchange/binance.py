"""binance spot REST (/api/v3) on top of the engine: the paths, HMAC-SHA256 signing,
recvWindow check, JSON shapes, error codes and HTTP statuses binance uses, so ccxt runs
its real request building and parsing against it.

Errors are `{"code": -NNNN, "msg": "..."}` with HTTP 400 (request/filter/order errors),
401 (API key), 429 (rate limit) or 503 (internal error). ccxt maps them by code and by
message (binance.py `exceptions`), which is what the tests check.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from .engine import Market, Order, Refused, Trade, candles, interval_ms, stats_24h
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


def _market(fx: FakeExchange, params: dict[str, str], required: bool = True) -> Market | None:
    symbol = params.get("symbol")
    if not symbol:
        if required:
            raise Reply(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        return None
    for m in fx.market_list():
        if market_id(m) == symbol:
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
    markets = fx.market_list

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
        m = _market(fx, params)
        step = interval_ms(params.get("interval", ""))
        if step is None:
            raise Reply(400, -1120, "Invalid interval.")
        limit, now = min(_int(params, "limit", 500), 1000), fx.now_ms()
        start, end = params.get("startTime"), params.get("endTime")
        if start:
            first = -(-int(start) // step)
            last = min(first + limit - 1, int(end) // step if end else first + limit - 1)
        else:
            last = int(end) // step if end else now // step
            first = last - limit + 1
        rows = [
            [c.open_ms, f8(c.open), f8(c.high), f8(c.low), f8(c.close), f8(c.volume), c.open_ms + step - 1,
             f8(c.quote_volume), 100, f8(c.volume / 2), f8(c.quote_volume / 2), "0"]
            for c in candles(m, step, first, last, now)
        ]
        return json_response(rows)

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
        found = fx.orders(m.symbol if m else None, status="open")
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
    ]
