"""bybit REST v5 (spot only, category=spot, UNIFIED trading account) on top of the engine:
the paths, X-BAPI-* signing and recv_window check, the `{"retCode", "retMsg", "result",
"retExtInfo", "time"}` envelope and the spot error codes, so ccxt runs its real request
building and parsing against it.

bybit answers almost everything with HTTP 200 and a non-zero `retCode`: business errors
(spot codes 170xxx), a bad signature (10004), a stale timestamp (10002) and the per-UID
rate limit (10006, with the X-Bapi-Limit-* headers). An unknown API key is HTTP 401 with
10003 ("401: need to use the correct key" in bybit's HTTP code table). ccxt maps `retCode`
through bybit.py `exceptions['exact']` before it looks at the HTTP status.

Not modelled: linear/inverse/option (their instrument lists are empty), spot margin
(isLeverage=1), TP/SL and conditional orders (orderFilter other than Order), PostOnly
and RPI time in force. The realtime list's cap on finished orders (500) is
`fx.realtime_keeps_finished` (None: no cap).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from .engine import Market, Order, Refused, Trade, candles, floor_to, stats_24h
from .server import deliver, json_response

if TYPE_CHECKING:
    from . import FakeExchange

Params = dict[str, Any]
Handler = Callable[[web.Request, Params], Awaitable[web.Response]]
CLIENT_ID = re.compile(r"^[a-zA-Z0-9_-]{1,36}$")
ID_BASE = 1_800_000_000_000_000_000  # bybit spot order ids are 19-digit strings
DEFAULT_RECV_WINDOW = 5000
CATEGORIES = ("spot", "linear", "inverse", "option")
SIDES = {"Buy": "buy", "Sell": "sell"}
INTERVALS = {str(n): n * 60_000 for n in (1, 3, 5, 15, 30, 60, 120, 240, 360, 720)} | {
    "D": 86_400_000,
    "W": 604_800_000,
    "M": 2_592_000_000,
}
SEVEN_DAYS = 7 * 86_400_000

DOWN_BODY = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n"
)


class Reply(Exception):
    """Stop handling and answer with this bybit envelope (rendered with the venue clock)."""

    def __init__(self, code: int, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def response(self, now_ms: int) -> web.Response:
        return envelope(self.code, self.msg, {}, now_ms, self.status)


def envelope(
    code: int, msg: str, result: dict, now_ms: int, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response({"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms}, status, headers)


def down() -> web.Response:
    """An outage is answered by bybit's edge, not its API: HTTP 503 with an HTML page and no
    retCode envelope. ccxt then maps the status alone (503 → ExchangeNotAvailable); a JSON
    body with retCode 10016 "Server error." would instead become a plain ExchangeError."""
    return web.Response(status=503, text=DOWN_BODY, content_type="text/html")


def rate_limited() -> web.Response:
    """The per-UID API limit: HTTP 200, retCode 10006 and the X-Bapi-Limit-* headers (the
    per-IP limit is an HTTP 403 ban that ccxt would only see as ExchangeNotAvailable)."""
    now = int(time.time() * 1000)
    headers = {"X-Bapi-Limit": "20", "X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": str(now + 1000)}
    return envelope(10006, "Too many visits!", {}, now, 200, headers)


def fmt(value: Decimal | int) -> str:
    """bybit prints numbers as strings; the fake prints them plainly, without padding zeros."""
    value = Decimal(value)
    return "0" if value == 0 else format(value.normalize(), "f")


def market_id(m: Market) -> str:
    return m.base + m.quote


# ---- request plumbing ------------------------------------------------------------------


def _public(fx: FakeExchange, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request, dict(parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True)))
        except Reply as reply:
            return reply.response(fx.now_ms())

    return run


def _private(fx: FakeExchange, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """bybit v5 private endpoints: X-BAPI-API-KEY, X-BAPI-TIMESTAMP within
    [server_time - recv_window, server_time + 1000), X-BAPI-RECV-WINDOW (default 5000) and
    X-BAPI-SIGN = hex(HMAC-SHA256(secret, timestamp + key + recv_window + query string (GET)
    or raw JSON body (POST)))."""

    async def run(request: web.Request) -> web.Response:
        raw_query, body = request.raw_path.partition("?")[2], await request.text()
        h = request.headers
        key, stamp, sign = h.get("X-BAPI-API-KEY", ""), h.get("X-BAPI-TIMESTAMP", ""), h.get("X-BAPI-SIGN", "")
        recv_window = h.get("X-BAPI-RECV-WINDOW") or str(DEFAULT_RECV_WINDOW)
        try:
            if not key or not stamp or not sign:
                raise Reply(10001, f"empty value: apiTimestamp[{stamp}] apiKey[{key}] apiSignature[{sign}]")
            if key != fx.api_key:
                raise Reply(10003, "API key is invalid.", 401)
            if not stamp.isdigit() or not recv_window.isdigit():
                raise Reply(10001, "params error: timestamp or recv_window invalid")
            now = fx.now_ms()
            if not (now - int(recv_window) <= int(stamp) < now + 1000):
                raise Reply(
                    10002,
                    "invalid request, please check your server timestamp or recv_window param. "
                    f"req_timestamp[{stamp}],server_timestamp[{now}],recv_window[{recv_window}]",
                )
            prehash = stamp + key + recv_window + (body if request.method == "POST" else raw_query)
            expected = hmac.new(fx.secret.encode(), prehash.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, sign.lower()):
                raise Reply(10004, f"error sign! origin_string[{prehash}]")
            if request.method == "POST":
                try:
                    params = json.loads(body or "{}")
                except ValueError:
                    raise Reply(10001, "request params type error") from None
                if not isinstance(params, dict):
                    raise Reply(10001, "request params type error")
            else:
                params = dict(parse_qsl(raw_query, keep_blank_values=True))
            return await handler(request, params)
        except Reply as reply:
            return reply.response(fx.now_ms())

    return run


def _category(params: Params) -> str:
    category = str(params.get("category") or "")
    if category not in CATEGORIES:
        raise Reply(10001, "params error: Category is invalid")
    return category


def _dec(params: Params, name: str) -> Decimal | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise Reply(170130, f"Data sent for paramter '{name}' is not valid.") from None


def _limit(params: Params, default: int, most: int) -> int:
    try:
        return max(1, min(int(params.get("limit") or default), most))
    except ValueError:
        raise Reply(10001, "params error: limit invalid") from None


def _ord_id(text: Any) -> int | None:
    text = str(text or "")
    return int(text) - ID_BASE if text.isdigit() and int(text) > ID_BASE else None


def _page(rows: list[dict], params: Params, default: int, most: int) -> dict:
    """One page of a newest-first list and the cursor to the next: an offset, sent
    percent-encoded as bybit's are and read back decoded from the query string."""
    limit, cursor = _limit(params, default, most), str(params.get("cursor") or "").removeprefix("page_args=")
    start = int(cursor) if cursor.isdigit() else 0
    more = start + limit < len(rows)
    return {"list": rows[start : start + limit], "nextPageCursor": f"page_args%3D{start + limit}" if more else ""}


# ---- JSON shapes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """What bybit echoes about an order that the engine does not keep: the qty and its unit
    as sent (a market buy is sized in quote by default) and the last price when placed."""

    qty: str
    market_unit: str
    base_price: Decimal


def _immediate(o: Order) -> bool:
    return o.type == "market" or o.tif in ("IOC", "FOK")


def _status(o: Order) -> str:
    """Spot has no Expired status: what ends unfilled or partly filled without the user
    (IOC/FOK/market remainder, or the venue ending a resting order) is reported like a
    cancel, `Cancelled` or `PartiallyFilledCanceled` (spot only, and ccxt calls it closed)."""
    if o.status == "open":
        return "PartiallyFilled" if o.filled else "New"
    if o.status == "filled":
        return "Filled"
    return "PartiallyFilledCanceled" if o.filled else "Cancelled"


def _cancel_type(o: Order) -> str:
    if o.status == "canceled":
        return "CancelByUser"
    if o.status == "expired" and not _immediate(o):
        return "CancelByAdmin"
    return "UNKNOWN"  # IOC/FOK/market remainders carry the reason in rejectReason


def _reject_reason(o: Order) -> str:
    if o.status == "expired" and _immediate(o):
        return "EC_NoEnoughQtyToFill" if o.tif == "FOK" else "EC_NoImmediateQtyToFill"
    return "EC_NoError"


def _order(o: Order, m: Market, placed: Placed | None) -> dict:
    """An order of /v5/order/realtime and /v5/order/history as bybit shows a spot order: no
    createType, and no tpslMode (ccxt takes an order with that key for a contract's). The fee is in `cumFeeDetail`
    keyed by the coin it was charged in (what ccxt 4.5.90 parses); `cumExecFee` is deprecated
    for spot but still sent."""
    is_market = o.type == "market"
    if placed is None:
        placed = Placed(fmt(o.quote_amount if o.quote_amount is not None else o.amount), "", m.price)
    price = o.price if o.price is not None else Decimal(0)
    return {
        "orderId": str(ID_BASE + o.id),
        "orderLinkId": o.client_id,
        "blockTradeId": "",
        "symbol": market_id(m),
        "price": fmt(price),
        "qty": placed.qty if is_market else fmt(o.amount),
        "side": "Buy" if o.side == "buy" else "Sell",
        "isLeverage": "0",
        "positionIdx": 0,
        "orderStatus": _status(o),
        "cancelType": _cancel_type(o),
        "rejectReason": _reject_reason(o),
        "avgPrice": fmt(o.average) if o.average else "",
        "leavesQty": fmt(o.remaining) if o.status == "open" else "0",
        "leavesValue": fmt(o.remaining * price) if o.status == "open" else "0",
        "cumExecQty": fmt(o.filled),
        "cumExecValue": fmt(o.cost),
        "cumExecFee": fmt(o.fee),
        "timeInForce": "IOC" if is_market else o.tif,
        "orderType": "Market" if is_market else "Limit",
        "stopOrderType": "",
        "orderIv": "",
        "marketUnit": placed.market_unit if is_market else "",
        "slippageToleranceType": "UNKNOWN",
        "slippageTolerance": "0",
        "triggerPrice": "0",
        "takeProfit": "0",
        "stopLoss": "0",
        "ocoTriggerBy": "OcoTriggerByUnknown",
        "tpLimitPrice": "0",
        "slLimitPrice": "0",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": 0,
        "triggerBy": "",
        "lastPriceOnCreated": "",
        "basePrice": fmt(placed.base_price),
        "reduceOnly": False,
        "closeOnTrigger": False,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": str(o.created_ms),
        "updatedTime": str(o.updated_ms),
        "cumFeeDetail": {o.fee_asset: fmt(o.fee)} if o.fee_asset else {},
        "extraFees": "",
    }


def _execution(t: Trade, o: Order, m: Market) -> dict:
    return {
        "symbol": market_id(m),
        "orderType": "Market" if o.type == "market" else "Limit",
        "underlyingPrice": "",
        "orderLinkId": o.client_id,
        "side": "Buy" if t.side == "buy" else "Sell",
        "indexPrice": "",
        "orderId": str(ID_BASE + o.id),
        "stopOrderType": "",
        "leavesQty": fmt(o.remaining) if o.status == "open" else "0",
        "execTime": str(t.time_ms),
        "feeCurrency": t.fee_asset,
        "isMaker": t.maker,
        "execFee": fmt(t.fee),
        "feeRate": "0.001",
        "execId": f"{ID_BASE + t.id}",
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": "",
        "execPrice": fmt(t.price),
        "markIv": "",
        "orderQty": fmt(o.amount),
        "orderPrice": fmt(o.price) if o.price is not None else "0",
        "execValue": fmt(t.cost),
        "execType": "Trade",
        "execQty": fmt(t.amount),
        "closedSize": "",
        "extraFees": "",
        "seq": t.id,
    }


def _instrument(m: Market) -> dict:
    return {
        "symbol": market_id(m),
        "baseCoin": m.base,
        "quoteCoin": m.quote,
        "innovation": "0",
        "status": "Trading",
        "marginTrading": "none",  # the fake trades cash only; ccxt reads this as market['margin']
        "stTag": "0",
        "lotSizeFilter": {
            "basePrecision": fmt(m.amount_step),
            "quotePrecision": "0.00000001",
            "minOrderQty": fmt(m.min_amount),
            "maxOrderQty": "9000",
            "minOrderAmt": fmt(m.min_cost),
            "maxOrderAmt": "9000000",
            "maxLimitOrderQty": "9000",
            "maxMarketOrderQty": "100",
            "postOnlyMaxLimitOrderSize": "9000",
        },
        "priceFilter": {"tickSize": fmt(m.price_tick)},
        "riskParameters": {"priceLimitRatioX": "0.005", "priceLimitRatioY": "0.01"},
        "symbolType": "",
    }


def _ticker(m: Market, now: int) -> dict:
    s = stats_24h(m, now)
    return {
        "symbol": market_id(m),
        "bid1Price": fmt(s.bid),
        "bid1Size": "1",
        "ask1Price": fmt(s.ask),
        "ask1Size": "1",
        "lastPrice": fmt(s.last),
        "prevPrice24h": fmt(s.open),
        "price24hPcnt": fmt(((s.last - s.open) / s.open).quantize(Decimal("0.0001"))),
        "highPrice24h": fmt(s.high),
        "lowPrice24h": fmt(s.low),
        "turnover24h": fmt(s.quote_volume),
        "volume24h": fmt(s.volume),
        "usdIndexPrice": fmt(s.last),
    }


def _coin_info(ccy: str) -> dict:
    chain = {"USDT": "ETH", "USDC": "ETH"}.get(ccy, ccy)
    return {
        "name": ccy,
        "coin": ccy,
        "remainAmount": "1000000",
        "chains": [
            {
                "chainType": chain,
                "confirmation": "6",
                "withdrawFee": "0",
                "depositMin": "0",
                "withdrawMin": "0",
                "chain": chain,
                "chainDeposit": "1",
                "chainWithdraw": "1",
                "minAccuracy": "8",
                "withdrawPercentageFee": "0",
                "contractAddress": "",
                "safeConfirmNumber": "6",
            }
        ],
    }


# ---- routes ----------------------------------------------------------------------------

REFUSALS = {
    "unknown_symbol": (170121, "Invalid symbol."),
    "price_tick": (170134, "Order price decimal too long."),
    "amount_step": (170137, "Order volume decimal too long."),
    "amount_min": (170136, "Order quantity lower than the minimum."),
    "cost_min": (170140, "Order value exceeded lower limit."),
    "duplicate": (170141, "Duplicate clientOrderId."),
    "insufficient": (170131, "Insufficient balance."),
}


def routes(fx: FakeExchange) -> list[web.RouteDef]:
    placed_as: dict[int, Placed] = {}
    link_ids = itertools.count(1)

    def public(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        return _public(fx, handler)

    def private(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        return _private(fx, handler)

    def ok(result: dict) -> web.Response:
        return envelope(0, "OK", result, fx.now_ms())

    def spot_market(params: Params, required: bool = True, public: bool = False) -> Market | None:
        """The spot market `symbol` names; only category=spot has any instruments here.
        Market data refuses an unknown symbol with 10001, trading with spot's 170121."""
        symbol = str(params.get("symbol") or "")
        if not symbol:
            if required:
                raise Reply(10001, "params error: symbol invalid") if public else Reply(170105, "Parameter 'symbol' was empty.")
            return None
        for m in fx.market_list():
            if market_id(m) == symbol:
                return m
        raise Reply(10001, "Not supported symbols") if public else Reply(170121, "Invalid symbol.")

    def render(o: Order) -> dict:
        return _order(o, fx.market(o.symbol), placed_as.get(o.id))

    # ---- public ----

    async def server_time(request: web.Request, params: Params) -> web.Response:
        now = fx.now_ms()
        return ok({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})

    async def instruments(request: web.Request, params: Params) -> web.Response:
        category = _category(params)
        chosen = fx.market_list() if category == "spot" else []  # the fake lists spot only
        rows = [_instrument(m) for m in chosen if params.get("symbol") in (None, "", market_id(m))]
        return ok({"category": category, "list": rows, "nextPageCursor": ""})

    async def tickers(request: web.Request, params: Params) -> web.Response:
        category = _category(params)
        if category != "spot":
            return ok({"category": category, "list": []})
        m = spot_market(params, required=False, public=True)
        return ok({"category": "spot", "list": [_ticker(x, fx.now_ms()) for x in ([m] if m else fx.market_list())]})

    async def orderbook(request: web.Request, params: Params) -> web.Response:
        if _category(params) != "spot":
            raise Reply(10001, "Not supported symbols")
        m, n = spot_market(params, public=True), _limit(params, 1, 200)
        now = fx.now_ms()
        return ok(
            {
                "s": market_id(m),
                "b": [[fmt(m.price - m.price_tick * i), "1"] for i in range(1, n + 1)],
                "a": [[fmt(m.price + m.price_tick * i), "1"] for i in range(1, n + 1)],
                "ts": now,
                "u": now,
                "seq": now,
                "cts": now,
            }
        )

    async def kline(request: web.Request, params: Params) -> web.Response:
        category = params.get("category") or "linear"  # bybit's default when category is absent
        if category != "spot":
            raise Reply(10001, "Not supported symbols")
        m = spot_market(params, public=True)
        step = INTERVALS.get(str(params.get("interval") or ""))
        if step is None:
            raise Reply(10001, "Invalid period!")
        limit, now = _limit(params, 200, 1000), fx.now_ms()
        start, end = params.get("start"), params.get("end")
        if start:
            first = int(start) // step
            last = min(first + limit - 1, int(end) // step if end else now // step)
        else:
            last = int(end) // step if end else now // step
            first = last - limit + 1
        rows = [
            [str(c.open_ms), fmt(c.open), fmt(c.high), fmt(c.low), fmt(c.close), fmt(c.volume), fmt(c.quote_volume)]
            for c in candles(m, step, first, last, now)
        ]
        return ok({"symbol": market_id(m), "category": "spot", "list": rows[::-1]})  # newest first, as bybit sends

    # ---- account ----

    async def query_api(request: web.Request, params: Params) -> web.Response:
        return ok(
            {
                "id": "13770661",
                "note": "fake exchange key",
                "apiKey": fx.api_key,
                "readOnly": 0,
                "secret": "",
                "permissions": {
                    "ContractTrade": [], "Spot": ["SpotTrade"], "Wallet": ["AccountTransfer"], "Options": [],
                    "Derivatives": [], "CopyTrading": [], "BlockTrade": [], "Exchange": [], "NFT": [], "Affiliate": [], "Earn": [],
                },
                "ips": ["*"],
                "type": 1,
                "deadlineDay": 90,
                "expiredAt": "",
                "createdAt": "2024-01-01T00:00:00Z",
                "unified": 0,  # the old unified margin account
                "uta": 1,  # a unified trading account: ccxt's is_unified_enabled reads this
                "userID": 24617703,
                "inviterID": 0,
                "vipLevel": "No VIP",
                "mktMakerLevel": "0",
                "affiliateID": 0,
                "rsaPublicKey": "",
                "isMaster": True,
                "parentUid": "0",
                "kycLevel": "LEVEL_DEFAULT",
                "kycRegion": "",
            }
        )

    async def account_info(request: web.Request, params: Params) -> web.Response:
        return ok(
            {
                "marginMode": "REGULAR_MARGIN",
                "updatedTime": str(fx.now_ms()),
                "unifiedMarginStatus": 6,  # UTA 2.0 Pro
                "dcpStatus": "OFF",
                "timeWindow": 10,
                "smpGroup": 0,
                "isMasterTrader": False,
                "spotHedgingStatus": "OFF",
            }
        )

    async def coin_info(request: web.Request, params: Params) -> web.Response:
        coins = sorted({c for m in fx.market_list() for c in (m.base, m.quote)} | set(fx.balance_snapshot()))
        wanted = params.get("coin")
        return ok({"rows": [_coin_info(c) for c in coins if wanted in (None, "", c)]})

    async def wallet_balance(request: web.Request, params: Params) -> web.Response:
        if params.get("accountType") != "UNIFIED":
            raise Reply(10001, "accountType only support UNIFIED.")
        wanted = set(filter(None, str(params.get("coin") or "").split(",")))
        prices = {m.base: m.price for m in fx.market_list() if m.quote in ("USDT", "USDC", "USD")}
        coins, total_usd = [], Decimal(0)
        for ccy, b in sorted(fx.balance_snapshot().items()):
            wallet = b["free"] + b["used"]
            if (wanted and ccy not in wanted) or (not wanted and wallet == 0):
                continue  # without `coin`, bybit lists only coins with assets
            usd = wallet * prices.get(ccy, Decimal(1))
            total_usd += usd
            coins.append(
                {
                    "coin": ccy, "equity": fmt(wallet), "usdValue": fmt(usd), "walletBalance": fmt(wallet),
                    "locked": fmt(b["used"]),  # reserved by spot open orders
                    "availableToWithdraw": "",  # deprecated for UNIFIED since 2025-01-09: bybit sends ""
                    "availableToBorrow": "", "spotHedgingQty": "0", "borrowAmount": "0", "accruedInterest": "0",
                    "totalOrderIM": "0", "totalPositionIM": "0", "totalPositionMM": "0", "unrealisedPnl": "0",
                    "cumRealisedPnl": "0", "bonus": "0", "marginCollateral": True, "collateralSwitch": True,
                    "spotBorrow": "0",
                }
            )
        usd = fmt(total_usd)
        account = {
            "accountType": "UNIFIED", "accountIMRate": "0", "accountMMRate": "0", "accountIMRateByMp": "0",
            "accountMMRateByMp": "0", "totalEquity": usd, "totalWalletBalance": usd, "totalMarginBalance": usd,
            "totalAvailableBalance": usd, "totalPerpUPL": "0", "totalInitialMargin": "0", "totalInitialMarginByMp": "0",
            "totalMaintenanceMargin": "0", "totalMaintenanceMarginByMp": "0", "accountLTV": "0", "coin": coins,
        }
        return ok({"list": [account]})

    # ---- orders ----

    async def create(request: web.Request, params: Params) -> web.Response:
        category = _category(params)
        if category != "spot":
            raise Reply(10001, "params error: symbol invalid")  # no derivative instruments here
        m = spot_market(params)
        side, order_type = SIDES.get(str(params.get("side"))), params.get("orderType")
        if side is None:
            raise Reply(170117, "Invalid side.")
        if order_type not in ("Limit", "Market"):
            raise Reply(170116, "Invalid orderType.")
        if str(params.get("isLeverage", "0")) != "0":
            raise Reply(170036, "You haven't enabled Cross Margin Trading yet. To do so, please head to the PC trading site or the Bybit app")
        if params.get("orderFilter", "Order") != "Order":
            raise Reply(170227, "This feature is not supported.")
        qty, price = _dec(params, "qty"), _dec(params, "price")
        if qty is None:
            raise Reply(170105, "Parameter 'qty' was empty.")
        if qty <= 0:
            raise Reply(170130, "Data sent for paramter 'qty' is not valid.")
        tif = params.get("timeInForce") or "GTC"
        if tif not in ("GTC", "IOC", "FOK"):  # PostOnly/RPI: the engine has no post-only matching
            raise Reply(170115, "Invalid timeInForce.")
        client_id = str(params.get("orderLinkId") or "")
        if client_id and not CLIENT_ID.match(client_id):
            raise Reply(170130, "Data sent for paramter 'orderLinkId' is not valid.")
        if not client_id:  # spot orders always carry one: bybit makes it up when none is sent
            client_id = f"{fx.now_ms()}{next(link_ids) % 1000:03d}"
        amount, quote_amount, unit = qty, None, ""
        if order_type == "Limit":
            if price is None:
                raise Reply(170105, "Parameter 'price' was empty.")
        else:
            price, tif = None, "IOC"  # a market order is always IOC; its qty is quote for buys by default
            unit = str(params.get("marketUnit") or ("quoteCoin" if side == "buy" else "baseCoin"))
            if unit not in ("baseCoin", "quoteCoin"):
                raise Reply(170130, "Data sent for paramter 'marketUnit' is not valid.")
            if unit == "quoteCoin" and side == "buy":
                amount, quote_amount = None, qty
            elif unit == "quoteCoin":
                amount = floor_to(qty / m.price, m.amount_step)
        try:
            o = fx.place(m.symbol, side, order_type.lower(), amount, price, client_id, tif, quote_amount)
        except Refused as refused:
            code, msg = REFUSALS.get(refused.reason, (refused.code, refused.msg))
            raise Reply(int(code), str(msg)) from None
        placed_as[o.id] = Placed(fmt(qty), unit, m.price)
        response = ok({"orderId": str(ID_BASE + o.id), "orderLinkId": o.client_id})
        return await deliver(o.behaviour, response)

    def ids(params: Params) -> tuple[int | None, str | None]:
        """orderId wins over orderLinkId when both are sent (bybit's rule)."""
        if params.get("orderId"):
            return _ord_id(params["orderId"]) or -1, None
        return None, str(params.get("orderLinkId") or "") or None

    async def cancel(request: web.Request, params: Params) -> web.Response:
        if _category(params) != "spot":
            raise Reply(10001, "params error: symbol invalid")
        m = spot_market(params)
        if params.get("orderFilter", "Order") != "Order":
            raise Reply(170227, "This feature is not supported.")
        order_id, client_id = ids(params)
        if order_id is None and client_id is None:  # bybit's docs require one; its exact answer is not documented
            raise Reply(10001, "params error: orderId or orderLinkId is required")
        o = fx.cancel(m.symbol, order_id, client_id)
        if o is None:  # unknown, or already filled/cancelled: both are gone from the order book
            raise Reply(170213, "Order does not exist.")
        return ok({"orderId": str(ID_BASE + o.id), "orderLinkId": o.client_id})

    async def realtime(request: web.Request, params: Params) -> web.Response:
        """Open orders; a query by orderId or orderLinkId (which win over symbol) finds the
        newest such order whatever its status; openOnly=1 lists recent finished orders."""
        category = _category(params)
        if category != "spot":
            return ok({"category": category, "list": [], "nextPageCursor": ""})
        order_id, client_id = ids(params)
        if order_id is not None or client_id is not None:
            o = fx.find(None, order_id, client_id)
            keep = fx.realtime_keeps_finished
            if o is not None and o.status != "open" and keep is not None:
                newest = sorted((f for f in fx.orders() if f.status != "open"), key=lambda f: (f.created_ms, f.id), reverse=True)[:keep]
                o = o if o in newest else None
            rows = [render(o)] if o is not None else []
        else:
            m = spot_market(params, required=False)
            finished = str(params.get("openOnly") or "0") != "0"
            chosen = [o for o in fx.orders(m.symbol if m else None) if (o.status != "open") == finished]
            rows = [render(o) for o in sorted(chosen, key=lambda o: (o.created_ms, o.id), reverse=True)]
        return ok({"category": "spot"} | _page(rows, params, 20, 50))

    async def history(request: web.Request, params: Params) -> web.Response:
        """Finished orders, newest first, within startTime..endTime (the last 7 days by default)."""
        category = _category(params)
        if category != "spot":
            return ok({"category": category, "list": [], "nextPageCursor": ""})
        m = spot_market(params, required=False)
        order_id, client_id = ids(params)
        now = fx.now_ms()
        start, end = params.get("startTime"), params.get("endTime")
        end_ms = int(end) if end else (int(start) + SEVEN_DAYS if start else now)
        start_ms = int(start) if start else end_ms - SEVEN_DAYS
        status = params.get("orderStatus")
        chosen = [
            o
            for o in fx.orders(m.symbol if m else None)
            if o.status != "open"
            and start_ms <= o.created_ms <= end_ms
            and (order_id is None or o.id == order_id)
            and (client_id is None or o.client_id == client_id)
        ]
        rows = [render(o) for o in sorted(chosen, key=lambda o: (o.created_ms, o.id), reverse=True)]
        rows = [r for r in rows if status in (None, "", r["orderStatus"])]
        return ok({"category": "spot"} | _page(rows, params, 20, 50))

    async def executions(request: web.Request, params: Params) -> web.Response:
        category = _category(params)
        if category != "spot":
            return ok({"category": category, "list": [], "nextPageCursor": ""})
        m = spot_market(params, required=False)
        order_id, client_id = ids(params)
        start, end = int(params.get("startTime") or 0), int(params.get("endTime") or fx.now_ms())
        rows = [
            _execution(t, o, fx.market(o.symbol))
            for o in fx.orders(m.symbol if m else None)
            for t in o.trades
            if (order_id is None or o.id == order_id) and (client_id is None or o.client_id == client_id)
            and start <= t.time_ms <= end
        ]
        rows.sort(key=lambda r: r["seq"], reverse=True)
        return ok({"category": "spot"} | _page(rows, params, 50, 100))

    return [
        web.get("/v5/market/time", public(server_time)),
        web.get("/v5/market/instruments-info", public(instruments)),
        web.get("/v5/market/tickers", public(tickers)),
        web.get("/v5/market/orderbook", public(orderbook)),
        web.get("/v5/market/kline", public(kline)),
        web.get("/v5/user/query-api", private(query_api)),
        web.get("/v5/account/info", private(account_info)),
        web.get("/v5/asset/coin/query-info", private(coin_info)),
        web.get("/v5/account/wallet-balance", private(wallet_balance)),
        web.post("/v5/order/create", private(create)),
        web.post("/v5/order/cancel", private(cancel)),
        web.get("/v5/order/realtime", private(realtime)),
        web.get("/v5/order/history", private(history)),
        web.get("/v5/execution/list", private(executions)),
    ]
