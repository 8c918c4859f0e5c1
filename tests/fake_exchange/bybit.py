"""bybit REST v5 (category=spot and category=linear, UNIFIED trading account) on top of
the engine: the paths, X-BAPI-* signing and recv_window check, the `{"retCode", "retMsg",
"result", "retExtInfo", "time"}` envelope and the error codes, so ccxt runs its real request
building and parsing against it.

bybit answers almost everything with HTTP 200 and a non-zero `retCode`: business errors
(spot codes 170xxx, derivatives 110xxx and 10001), a bad signature (10004), a stale
timestamp (10002) and the per-UID rate limit (10006, with the X-Bapi-Limit-* headers). An
unknown API key is HTTP 401 with 10003 ("401: need to use the correct key" in bybit's HTTP
code table). ccxt maps `retCode` through bybit.py `exceptions['exact']` (after a broad match
of the whole body) before it looks at the HTTP status.

Spot and linear perpetuals share symbol ids ("BTCUSDT" is BTC/USDT and BTC/USDT:USDT):
every endpoint routes by `category`, and an order, a list or a lookup of one category never
sees the other's orders. What ccxt 4.5.90 does with linear (asserted in
tests/test_fake_perps_bybit.py):

- markets: `fetchMarkets.types` must name "linear"; ccxt then asks
  /v5/market/instruments-info?category=linear&limit=1000 twice (once with status=PreLaunch).
  A linear contract is ONE UNIT OF THE BASE COIN (ccxt's contractSize 1, `qty` in base): a
  perpetual added with another engine `contract_size` is shown to the wire in base units
  (qty = contracts * contract_size, qtyStep = amount_step * contract_size).
- margin mode: on a unified account (deskgate presets enableUnifiedAccount=True,
  enableUnifiedMargin=False, so no account probe is made) `set_margin_mode(mode, symbol)`
  ignores the symbol and POSTs /v5/account/set-margin-mode {"setMarginMode":
  "ISOLATED_MARGIN" | "REGULAR_MARGIN"}: ACCOUNT-WIDE, every linear perpetual at once. The
  same mode again is accepted again (retCode 0, "Request accepted", reasons []). While any
  linear position or open linear order exists a switch fails with retCode 3400045 "Set margin
  mode failed" and `result.reasons` (3400054 "You have uncancelled USDT perpetual orders" is
  bybit's documented reason for orders; for positions bybit documents no reason code for this
  switch, the fake gives its documented 3400208 "You have unclosed hedge mode or isolated mode
  USDT perpetual positions"); ccxt raises a plain ExchangeError for 3400045.
  /v5/position/switch-isolated (the classic per-symbol call) answers a unified account with
  100028 "unified account is forbidden" (PermissionDenied). The account mode is read back by
  /v5/account/info `marginMode` (ccxt fetch_margin_mode); /v5/position/list does not carry it
  (`tradeMode` is deprecated, always 0) and ccxt's positions have marginMode None.
- leverage: POST /v5/position/set-leverage {category, symbol, buyLeverage, sellLeverage},
  one-way mode so both must be equal; the same leverage again is 110043 "leverage not
  modified", which ccxt raises as BadRequest. The fake takes whole leverages only (engine).
- orders: /v5/order/create with category=linear, `qty` in base, positionIdx 0 (one-way
  mode; another index is 10001 "position idx not match position mode"); GTC/IOC/FOK; market
  orders are IOC. Ids are UUIDs; no orderLinkId sent means "" (bybit makes one up for spot
  only). `reduceOnly` is honoured: its qty is cut to the position, and with nothing to reduce
  it is 110017. Refusals: 110007 "ab not enough for new order" (insufficient margin,
  InsufficientFunds), 10001 "The number of contracts exceeds minimum limit allowed" (under
  minOrderQty, BadRequest), 110094 under minNotionalValue (InvalidOrder), 110072 duplicate
  open orderLinkId (InvalidOrder); cancel of an unknown or finished order is 110001
  "order not exists or too late to cancel" (OrderNotFound). A derivatives order has no
  PartiallyFilledCanceled: what ends with a fill and a remainder is `Cancelled` (ccxt
  "canceled") with cumExecQty > 0. Rows carry `tpslMode` (""), which is how ccxt's
  parse_order tells a contract row from a spot row when no market is passed.
- lists: /v5/order/realtime for linear needs symbol, baseCoin or settleCoin (ccxt adds
  settleCoin=USDT when no symbol is given), unless it names an orderId/orderLinkId;
  /v5/order/history and /v5/execution/list take category=linear as is.
- positions: /v5/position/list?category=linear needs symbol or settleCoin; with a symbol it
  answers that symbol's row even when flat (size "0", side ""), with settleCoin only the
  non-flat ones.

The account has ONE balance pool for spot and perpetual margin (a simplification shared by
every venue of the fake): the wallet shows a coin's reserved amount split into `locked` (spot
orders), `totalOrderIM` (linear open orders) and `totalPositionIM` (linear positions), which
ccxt adds up as `used`. The engine also reserves margin for a reduce-only order.

Not modelled: inverse/option (their instrument lists are empty), spot margin
(isLeverage=1), hedge mode, portfolio margin (refused as bybit's docs example refuses it),
TP/SL and conditional orders (orderFilter other than Order), PostOnly and RPI time in
force, funding. The realtime list's cap on finished orders (500 per category) is
`fx.realtime_keeps_finished` (None: no cap).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from .engine import MAX_LEVERAGE, Market, Order, Position, Refused, Trade, candles, floor_to, round_to, stats_24h
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


def _dec(params: Params, name: str, linear: bool = False) -> Decimal | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        out = None
    if out is None or not out.is_finite():
        if linear:
            raise Reply(10001, f"params error: {name} invalid")
        raise Reply(170130, f"Data sent for paramter '{name}' is not valid.")
    return out


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
    reduce_only: bool = False


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


# ---- linear perpetuals (category=linear) ------------------------------------------------

LINEAR_NAMESPACE = uuid.UUID("5d8a6f0e-2b1c-4c39-9d0e-6b7f3a1c2e44")
MMR = Decimal("0.005")  # maintenance margin rate of the first risk tier (BTCUSDT's 0.5 %)
RISK_LIMIT_VALUE = "2000000"


def linear_order_id(engine_id: int) -> str:
    """Derivatives order ids are UUIDs; the fake derives one from the engine's id."""
    return str(uuid.uuid5(LINEAR_NAMESPACE, f"order/{engine_id}"))


def linear_exec_id(trade_id: int) -> str:
    return str(uuid.uuid5(LINEAR_NAMESPACE, f"exec/{trade_id}"))


def _size(m: Market) -> Decimal:
    return m.contract_size if m.contract_size is not None else Decimal(1)


def _wire(m: Market, contracts: Decimal) -> Decimal:
    """An engine amount (contracts) as bybit's linear qty (base coin)."""
    return contracts * _size(m)


def _linear_instrument(m: Market, max_leverage: int) -> dict:
    return {
        "symbol": market_id(m),
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": m.base,
        "quoteCoin": m.quote,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(max(0, -m.price_tick.normalize().as_tuple().exponent)),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": f"{max_leverage}.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": fmt(m.price_tick), "maxPrice": "1999999.8", "tickSize": fmt(m.price_tick)},
        "lotSizeFilter": {
            "maxOrderQty": "1190",
            "minOrderQty": fmt(_wire(m, m.min_amount)),
            "qtyStep": fmt(_wire(m, m.amount_step)),
            "postOnlyMaxOrderQty": "1190",
            "maxMktOrderQty": "500",
            "minNotionalValue": fmt(m.min_cost),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": m.quote,
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "symbolType": "",
    }


def _linear_ticker(m: Market, now: int) -> dict:
    """A linear ticker: ccxt tells it from a spot one by `openInterestValue`."""
    s = stats_24h(m, now)
    next_funding = (now // 28_800_000 + 1) * 28_800_000
    return {
        "symbol": market_id(m),
        "lastPrice": fmt(s.last),
        "indexPrice": fmt(s.last),
        "markPrice": fmt(s.last),
        "prevPrice24h": fmt(s.open),
        "price24hPcnt": fmt(((s.last - s.open) / s.open).quantize(Decimal("0.000001"))),
        "highPrice24h": fmt(s.high),
        "lowPrice24h": fmt(s.low),
        "prevPrice1h": fmt(s.open),
        "openInterest": "1000",
        "openInterestValue": fmt(s.last * 1000),
        "turnover24h": fmt(s.quote_volume),
        "volume24h": fmt(s.volume),
        "fundingRate": "0.0001",
        "nextFundingTime": str(next_funding),
        "predictedDeliveryPrice": "",
        "basisRate": "",
        "deliveryFeeRate": "",
        "deliveryTime": "0",
        "ask1Size": "1",
        "bid1Price": fmt(s.bid),
        "ask1Price": fmt(s.ask),
        "bid1Size": "1",
        "basis": "",
        "preOpenPrice": "",
        "preQty": "",
        "curPreListingPhase": "",
        "fundingIntervalHour": "8",
        "fundingCap": "0.005",
    }


def _linear_status(o: Order) -> str:
    """Derivatives have no PartiallyFilledCanceled: whatever ends unfilled or with a remainder
    (a cancel, an IOC/FOK/market remainder, the venue ending it) is `Cancelled`."""
    if o.status == "open":
        return "PartiallyFilled" if o.filled else "New"
    return "Filled" if o.status == "filled" else "Cancelled"


def _linear_order(o: Order, m: Market, placed: Placed | None) -> dict:
    """An order of /v5/order/realtime and /v5/order/history as bybit shows a linear one
    (UTA, one-way mode). `tpslMode` is present ("") as on bybit's contract rows."""
    is_market = o.type == "market"
    if placed is None:
        placed = Placed(fmt(_wire(m, o.amount)), "", m.price)
    if is_market:  # bybit shows a market order's protection price: the last price +/- 3 %
        factor = Decimal("1.03") if o.side == "buy" else Decimal("0.97")
        price = round_to(placed.base_price * factor, m.price_tick)
    else:
        price = o.price
    open_ = o.status == "open"
    return {
        "orderId": linear_order_id(o.id),
        "orderLinkId": o.client_id,
        "blockTradeId": "",
        "symbol": market_id(m),
        "price": fmt(price),
        "qty": fmt(_wire(m, o.amount)),
        "side": "Buy" if o.side == "buy" else "Sell",
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": _linear_status(o),
        "createType": "CreateByUser",
        "cancelType": _cancel_type(o),
        "rejectReason": _reject_reason(o),
        "avgPrice": fmt(o.average) if o.average else "",
        "leavesQty": fmt(_wire(m, o.remaining)) if open_ else "0",
        "leavesValue": fmt(_wire(m, o.remaining) * price) if open_ else "0",
        "cumExecQty": fmt(_wire(m, o.filled)),
        "cumExecValue": fmt(o.cost),
        "cumExecFee": fmt(o.fee),
        "timeInForce": "IOC" if is_market else o.tif,
        "orderType": "Market" if is_market else "Limit",
        "stopOrderType": "",
        "orderIv": "",
        "slippageToleranceType": "UNKNOWN",
        "slippageTolerance": "0",
        "triggerPrice": "",
        "takeProfit": "",
        "stopLoss": "",
        "tpslMode": "",
        "tpLimitPrice": "0",
        "slLimitPrice": "0",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": 0,
        "triggerBy": "",
        "lastPriceOnCreated": fmt(placed.base_price),
        "basePrice": "",
        "reduceOnly": placed.reduce_only,
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


def _linear_execution(t: Trade, o: Order, m: Market) -> dict:
    """A linear fill of /v5/execution/list (`createType` is how ccxt tells it from spot's)."""
    return {
        "symbol": market_id(m),
        "orderType": "Market" if o.type == "market" else "Limit",
        "underlyingPrice": "",
        "orderLinkId": o.client_id,
        "side": "Buy" if t.side == "buy" else "Sell",
        "indexPrice": "",
        "orderId": linear_order_id(o.id),
        "stopOrderType": "UNKNOWN",
        "leavesQty": fmt(_wire(m, o.remaining)) if o.status == "open" else "0",
        "execTime": str(t.time_ms),
        "feeCurrency": "",
        "isMaker": t.maker,
        "execFee": fmt(t.fee),
        "feeRate": "0.0005",
        "execId": linear_exec_id(t.id),
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": fmt(t.price),
        "execPrice": fmt(t.price),
        "markIv": "",
        "orderQty": fmt(_wire(m, o.amount)),
        "orderPrice": fmt(o.price) if o.price is not None else "0",
        "execValue": fmt(t.cost),
        "execType": "Trade",
        "execQty": fmt(_wire(m, t.amount)),
        "closedSize": "0",
        "extraFees": "",
        "seq": t.id,
        "createType": "CreateByUser",
        "execPnl": "0",
        "feeCoin": t.fee_asset,
    }


def _position(p: Position, m: Market, leverage: int, now: int) -> dict:
    """One row of /v5/position/list (UTA, one-way mode): size always positive, `side`
    Buy/Sell, or "" and zeros for a flat symbol. `positionIM` is the margin the engine holds
    for it; `liqPrice` is where that margin less the maintenance margin is lost."""
    flat = not p.contracts
    size = _wire(m, abs(p.contracts))
    entry, mark = p.entry_price, m.price
    value = size * entry
    mm = (size * mark * MMR).quantize(Decimal("0.00000001"))
    direction = Decimal(1) if p.contracts > 0 else Decimal(-1)
    upnl = (mark - entry) * size * direction
    liq = ""
    if not flat:
        liq_price = entry - direction * (p.margin - mm) / size
        liq = fmt(max(round_to(liq_price, m.price_tick), Decimal(0))) if liq_price > 0 else ""
    return {
        "positionIdx": 0,
        "riskId": 1,
        "riskLimitValue": RISK_LIMIT_VALUE,
        "symbol": market_id(m),
        "side": "" if flat else ("Buy" if p.contracts > 0 else "Sell"),
        "size": fmt(size),
        "avgPrice": fmt(entry),
        "positionValue": fmt(value),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 0 if flat else 2,
        "leverage": str(leverage),
        "breakEvenPrice": fmt(entry),
        "positionBalance": fmt(p.margin),
        "markPrice": fmt(mark),
        "liqPrice": liq,
        "bustPrice": "",
        "positionMM": "0" if flat else fmt(mm),
        "positionMMByMp": "0" if flat else fmt(mm),
        "positionIM": fmt(p.margin),
        "positionIMByMp": fmt(p.margin),
        "tpslMode": "Full",
        "takeProfit": "0",
        "stopLoss": "0",
        "trailingStop": "0",
        "sessionAvgPrice": "",
        "unrealisedPnl": "0" if flat else fmt(upnl),
        "curRealisedPnl": fmt(p.realized),
        "cumRealisedPnl": fmt(p.realized),
        "seq": p.updated_ms or -1,
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "createdTime": str(p.updated_ms or now),
        "updatedTime": str(p.updated_ms or now),
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

# category=linear refusals (cost_min's message names the market's minimum: see linear_refusal)
LINEAR_REFUSALS = {
    "unknown_symbol": (10001, "params error: symbol invalid"),
    "price_tick": (10001, "params error: price invalid"),
    "amount_step": (10001, "params error: qty invalid"),
    "amount_min": (10001, "The number of contracts exceeds minimum limit allowed"),
    "duplicate": (110072, "OrderLinkedID is duplicate"),
    "insufficient": (110007, "ab not enough for new order"),
}
MARGIN_MODES = {"ISOLATED_MARGIN": "isolated", "REGULAR_MARGIN": "cross"}


def linear_refusal(refused: Refused, m: Market) -> Reply:
    if refused.reason == "cost_min":
        return Reply(110094, f"Order does not meet minimum order value {fmt(m.min_cost)}{m.quote}")
    code, msg = LINEAR_REFUSALS.get(refused.reason, (refused.code, refused.msg))
    return Reply(int(code), str(msg))


def routes(fx: FakeExchange) -> list[web.RouteDef]:
    placed_as: dict[int, Placed] = {}
    link_ids = itertools.count(1)
    account = {"margin_mode": "REGULAR_MARGIN", "updated_ms": 0}

    def public(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        return _public(fx, handler)

    def private(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        return _private(fx, handler)

    def ok(result: dict) -> web.Response:
        return envelope(0, "OK", result, fx.now_ms())

    def markets_of(category: str) -> list[Market]:
        """The instruments of one category: spot markets, or linear perpetuals (inverse and
        option have none here)."""
        if category == "spot":
            return [m for m in fx.market_list() if not m.perpetual]
        if category == "linear":
            return [m for m in fx.market_list() if m.perpetual]
        return []

    def category_of(symbol: str) -> str:
        m = fx.market(symbol)
        return "linear" if m is not None and m.perpetual else "spot"

    def spot_market(params: Params, required: bool = True, public: bool = False) -> Market | None:
        """The spot market `symbol` names. Market data refuses an unknown symbol with 10001,
        trading with spot's 170121."""
        symbol = str(params.get("symbol") or "")
        if not symbol:
            if required:
                raise Reply(10001, "params error: symbol invalid") if public else Reply(170105, "Parameter 'symbol' was empty.")
            return None
        for m in markets_of("spot"):
            if market_id(m) == symbol:
                return m
        raise Reply(10001, "Not supported symbols") if public else Reply(170121, "Invalid symbol.")

    def linear_market(params: Params, required: bool = True, public: bool = False) -> Market | None:
        """The linear perpetual `symbol` names; derivatives refuse an unknown one with 10001."""
        symbol = str(params.get("symbol") or "")
        if not symbol:
            if required:
                raise Reply(10001, "params error: symbol invalid")
            return None
        for m in markets_of("linear"):
            if market_id(m) == symbol:
                return m
        raise Reply(10001, "Not supported symbols" if public else "params error: symbol invalid")

    def market_in(category: str, params: Params, required: bool = True, public: bool = False) -> Market | None:
        if category == "spot":
            return spot_market(params, required, public)
        if category == "linear":
            return linear_market(params, required, public)
        if not params.get("symbol") and not required:
            return None
        raise Reply(10001, "Not supported symbols" if public else "params error: symbol invalid")

    def render(o: Order) -> dict:
        m = fx.market(o.symbol)
        if m.perpetual:
            return _linear_order(o, m, placed_as.get(o.id))
        return _order(o, m, placed_as.get(o.id))

    def orders_in(category: str, symbol: str | None = None) -> list[Order]:
        return [o for o in fx.orders(symbol) if category_of(o.symbol) == category]

    def newest_first(orders: list[Order]) -> list[Order]:
        return sorted(orders, key=lambda o: (o.created_ms, o.id), reverse=True)

    def find_in(category: str, order_id: int | None, client_id: str | None) -> Order | None:
        """The newest order of the category with that id or client id."""
        for o in reversed(orders_in(category)):
            if (order_id is not None and o.id == order_id) or (bool(client_id) and o.client_id == client_id):
                return o
        return None

    def account_margin_mode() -> str:
        """bybit's margin mode is the account's: the fake reads it off the engine's perpetuals
        (isolated when every one of them is), or keeps what was set while there were none."""
        perps = markets_of("linear")
        if perps:
            return "ISOLATED_MARGIN" if all(fx.margin_mode.get(m.symbol) == "isolated" for m in perps) else "REGULAR_MARGIN"
        return account["margin_mode"]

    # ---- public ----

    async def server_time(request: web.Request, params: Params) -> web.Response:
        now = fx.now_ms()
        return ok({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})

    async def instruments(request: web.Request, params: Params) -> web.Response:
        """Trading instruments of the category (all of the fake's are `Trading`: a status
        filter asking for another, as ccxt's PreLaunch request does, lists none)."""
        category = _category(params)
        chosen = markets_of(category) if params.get("status") in (None, "", "Trading") else []
        if category == "linear":
            rows = [_linear_instrument(m, MAX_LEVERAGE) for m in chosen if params.get("symbol") in (None, "", market_id(m))]
        else:
            rows = [_instrument(m) for m in chosen if params.get("symbol") in (None, "", market_id(m))]
        return ok({"category": category, "list": rows, "nextPageCursor": ""})

    async def tickers(request: web.Request, params: Params) -> web.Response:
        category = _category(params)
        if category not in ("spot", "linear"):
            return ok({"category": category, "list": []})
        m = market_in(category, params, required=False, public=True)
        render_ticker = _linear_ticker if category == "linear" else _ticker
        rows = [render_ticker(x, fx.now_ms()) for x in ([m] if m else markets_of(category))]
        return ok({"category": category, "list": rows})

    async def orderbook(request: web.Request, params: Params) -> web.Response:
        category = _category(params)
        if category not in ("spot", "linear"):
            raise Reply(10001, "Not supported symbols")
        m, n = market_in(category, params, public=True), _limit(params, 1, 200 if category == "spot" else 500)
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
        if category not in ("spot", "linear"):
            raise Reply(10001, "Not supported symbols")
        m = market_in(category, params, public=True)
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
        return ok({"symbol": market_id(m), "category": category, "list": rows[::-1]})  # newest first, as bybit sends

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
                    "ContractTrade": ["Order", "Position"], "Spot": ["SpotTrade"], "Wallet": ["AccountTransfer"],
                    "Options": [], "Derivatives": ["DerivativesTrade"], "CopyTrading": [], "BlockTrade": [], "Exchange": [],
                    "NFT": [], "Affiliate": [], "Earn": [],
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
                "marginMode": account_margin_mode(),
                "updatedTime": str(account["updated_ms"] or fx.now_ms()),
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
        prices = {m.base: m.price for m in markets_of("spot") if m.quote in ("USDT", "USDC", "USD")}
        # what the one pool reserves, per coin: linear positions' and open orders' initial margin,
        # the rest being spot orders' `locked`; and the positions' unrealised profit and maintenance
        zero = Decimal(0)
        position_im: dict[str, Decimal] = {}
        position_mm: dict[str, Decimal] = {}
        order_im: dict[str, Decimal] = {}
        upnl: dict[str, Decimal] = {}
        realised: dict[str, Decimal] = {}
        for m in markets_of("linear"):
            p = fx.position(m.symbol)
            realised[m.quote] = realised.get(m.quote, zero) + p.realized
            if p.contracts:
                size = _wire(m, abs(p.contracts))
                position_im[m.quote] = position_im.get(m.quote, zero) + p.margin
                position_mm[m.quote] = position_mm.get(m.quote, zero) + (size * m.price * MMR).quantize(Decimal("0.00000001"))
                direction = Decimal(1) if p.contracts > 0 else Decimal(-1)
                upnl[m.quote] = upnl.get(m.quote, zero) + (m.price - p.entry_price) * size * direction
        for o in fx.orders(status="open"):
            m = fx.market(o.symbol)
            if m.perpetual:
                order_im[m.quote] = order_im.get(m.quote, zero) + o.locked
        coins, total_usd, total_equity, total_available = [], zero, zero, zero
        total_im, total_mm, total_upl = zero, zero, zero
        for ccy, b in sorted(fx.balance_snapshot().items()):
            wallet = b["free"] + b["used"]
            if (wanted and ccy not in wanted) or (not wanted and wallet == 0):
                continue  # without `coin`, bybit lists only coins with assets
            pim, oim, pmm, pnl = position_im.get(ccy, zero), order_im.get(ccy, zero), position_mm.get(ccy, zero), upnl.get(ccy, zero)
            spot_locked = b["used"] - pim - oim
            if spot_locked < 0:  # a position put on by fx.set_position reserved nothing: show what is reserved
                pim, spot_locked = max(pim + spot_locked, zero), zero
            price = prices.get(ccy, Decimal(1))
            usd = wallet * price
            total_usd += usd
            total_equity += (wallet + pnl) * price
            total_available += b["free"] * price
            total_im += (pim + oim) * price
            total_mm += pmm * price
            total_upl += pnl * price
            coins.append(
                {
                    "coin": ccy, "equity": fmt(wallet + pnl), "usdValue": fmt(usd), "walletBalance": fmt(wallet),
                    "locked": fmt(spot_locked),  # reserved by spot open orders
                    "availableToWithdraw": "",  # deprecated for UNIFIED since 2025-01-09: bybit sends ""
                    "availableToBorrow": "", "spotHedgingQty": "0", "borrowAmount": "0", "accruedInterest": "0",
                    "totalOrderIM": fmt(oim), "totalPositionIM": fmt(pim), "totalPositionMM": fmt(pmm), "unrealisedPnl": fmt(pnl),
                    "cumRealisedPnl": fmt(realised.get(ccy, zero)), "bonus": "0", "marginCollateral": True,
                    "collateralSwitch": True, "spotBorrow": "0",
                }
            )
        usd = fmt(total_usd)
        wallet_account = {
            "accountType": "UNIFIED", "accountIMRate": fmt((total_im / total_equity).quantize(Decimal("0.0001"))) if total_equity else "0",
            "accountMMRate": fmt((total_mm / total_equity).quantize(Decimal("0.0001"))) if total_equity else "0",
            "accountIMRateByMp": "0", "accountMMRateByMp": "0", "totalEquity": fmt(total_equity), "totalWalletBalance": usd,
            "totalMarginBalance": fmt(total_equity), "totalAvailableBalance": fmt(total_available), "totalPerpUPL": fmt(total_upl),
            "totalInitialMargin": fmt(total_im), "totalInitialMarginByMp": fmt(total_im), "totalMaintenanceMargin": fmt(total_mm),
            "totalMaintenanceMarginByMp": fmt(total_mm), "accountLTV": "0", "coin": coins,
        }
        return ok({"list": [wallet_account]})

    # ---- orders ----

    async def create(request: web.Request, params: Params) -> web.Response:
        category = _category(params)
        if category == "linear":
            return await create_linear(params)
        if category != "spot":
            raise Reply(10001, "params error: symbol invalid")  # no inverse or option instruments here
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

    async def create_linear(params: Params) -> web.Response:
        """A linear perpetual order: qty in the base coin, one-way mode (positionIdx 0)."""
        m = linear_market(params)
        side, order_type = SIDES.get(str(params.get("side"))), params.get("orderType")
        if side is None:
            raise Reply(10001, "params error: side invalid")
        if order_type not in ("Limit", "Market"):
            raise Reply(10001, "params error: orderType invalid")
        if str(params.get("positionIdx", 0)) != "0":
            raise Reply(10001, "position idx not match position mode")
        if params.get("orderFilter") not in (None, "", "Order") or params.get("triggerPrice") not in (None, ""):
            raise Reply(10001, "params error: conditional orders are not supported by the fake")
        qty, price = _dec(params, "qty", linear=True), _dec(params, "price", linear=True)
        if qty is None:
            raise Reply(10001, "params error: qty invalid")
        if qty <= 0:
            raise Reply(10001, "The number of contracts exceeds minimum limit allowed")
        tif = params.get("timeInForce") or "GTC"
        if tif not in ("GTC", "IOC", "FOK"):  # PostOnly/RPI: the engine has no post-only matching
            raise Reply(10001, "params error: timeInForce invalid")
        client_id = str(params.get("orderLinkId") or "")
        if client_id and not CLIENT_ID.match(client_id):
            raise Reply(10001, "params error: orderLinkId invalid")
        if order_type == "Limit":
            if price is None:
                raise Reply(10001, "params error: price invalid")
        else:
            price, tif = None, "IOC"  # a market order is IOC; its qty is always base on derivatives
        amount = qty / _size(m)
        reduce_only = params.get("reduceOnly") in (True, "true", "True", 1, "1")
        if reduce_only:  # may only shrink the position: cut to its size, refused when there is none
            held = fx.position(m.symbol).contracts
            reducible = -held if side == "buy" else held
            if reducible <= 0:
                raise Reply(110017, "orderQty will be truncated to zero")
            amount = min(amount, reducible)
        try:
            o = fx.place(m.symbol, side, order_type.lower(), amount, price, client_id, tif)
        except Refused as refused:
            raise linear_refusal(refused, m) from None
        placed_as[o.id] = Placed(fmt(_wire(m, amount)), "", m.price, reduce_only)
        response = ok({"orderId": linear_order_id(o.id), "orderLinkId": o.client_id})
        return await deliver(o.behaviour, response)

    def ids(params: Params, category: str = "spot") -> tuple[int | None, str | None]:
        """orderId wins over orderLinkId when both are sent (bybit's rule). An orderId that
        names no order is -1 (found nowhere)."""
        if params.get("orderId"):
            text = str(params["orderId"])
            if category == "linear":
                return next((o.id for o in orders_in("linear") if linear_order_id(o.id) == text), -1), None
            return _ord_id(text) or -1, None
        return None, str(params.get("orderLinkId") or "") or None

    async def cancel(request: web.Request, params: Params) -> web.Response:
        category = _category(params)
        if category == "linear":
            m = linear_market(params)
            order_id, client_id = ids(params, "linear")
            if order_id is None and client_id is None:
                raise Reply(10001, "params error: orderId or orderLinkId is required")
            o = fx.cancel(m.symbol, order_id, client_id)
            if o is None:  # unknown, or already filled/cancelled
                raise Reply(110001, "order not exists or too late to cancel")
            return ok({"orderId": linear_order_id(o.id), "orderLinkId": o.client_id})
        if category != "spot":
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

    def linear_scope(params: Params, required: bool) -> tuple[Market | None, list[Market]]:
        """A linear list's scope: the symbol, else the perpetuals of baseCoin and/or settleCoin
        (one of the three is required where bybit requires it)."""
        m = linear_market(params, required=False)
        if m is not None:
            return m, [m]
        base, settle = params.get("baseCoin") or "", params.get("settleCoin") or ""
        if required and not base and not settle:
            raise Reply(10001, "params error: symbol, baseCoin or settleCoin is required")
        return None, [x for x in markets_of("linear") if base in ("", x.base) and settle in ("", x.quote)]

    async def realtime(request: web.Request, params: Params) -> web.Response:
        """Open orders; a query by orderId or orderLinkId (which win over symbol) finds the
        newest such order whatever its status; openOnly=1 lists recent finished orders."""
        category = _category(params)
        if category not in ("spot", "linear"):
            return ok({"category": category, "list": [], "nextPageCursor": ""})
        order_id, client_id = ids(params, category)
        if order_id is not None or client_id is not None:
            o = find_in(category, order_id, client_id)
            keep = fx.realtime_keeps_finished
            if o is not None and o.status != "open" and keep is not None:  # the newest finished, per category
                newest = newest_first([f for f in orders_in(category) if f.status != "open"])[:keep]
                o = o if o in newest else None
            rows = [render(o)] if o is not None else []
        else:
            if category == "linear":
                symbols = {x.symbol for x in linear_scope(params, required=True)[1]}
            else:
                m = spot_market(params, required=False)
                symbols = {m.symbol} if m else {x.symbol for x in markets_of("spot")}
            finished = str(params.get("openOnly") or "0") != "0"
            chosen = [o for o in fx.orders() if o.symbol in symbols and (o.status != "open") == finished]
            rows = [render(o) for o in newest_first(chosen)]
        return ok({"category": category} | _page(rows, params, 20, 50))

    async def history(request: web.Request, params: Params) -> web.Response:
        """Finished orders, newest first, within startTime..endTime (the last 7 days by default)."""
        category = _category(params)
        if category not in ("spot", "linear"):
            return ok({"category": category, "list": [], "nextPageCursor": ""})
        if category == "linear":
            symbols = {x.symbol for x in linear_scope(params, required=False)[1]}
        else:
            m = spot_market(params, required=False)
            symbols = {m.symbol} if m else {x.symbol for x in markets_of("spot")}
        order_id, client_id = ids(params, category)
        now = fx.now_ms()
        start, end = params.get("startTime"), params.get("endTime")
        end_ms = int(end) if end else (int(start) + SEVEN_DAYS if start else now)
        start_ms = int(start) if start else end_ms - SEVEN_DAYS
        status = params.get("orderStatus")
        chosen = [
            o
            for o in fx.orders()
            if o.symbol in symbols
            and o.status != "open"
            and start_ms <= o.created_ms <= end_ms
            and (order_id is None or o.id == order_id)
            and (client_id is None or o.client_id == client_id)
        ]
        rows = [render(o) for o in newest_first(chosen)]
        rows = [r for r in rows if status in (None, "", r["orderStatus"])]
        return ok({"category": category} | _page(rows, params, 20, 50))

    async def executions(request: web.Request, params: Params) -> web.Response:
        category = _category(params)
        if category not in ("spot", "linear"):
            return ok({"category": category, "list": [], "nextPageCursor": ""})
        if category == "linear":
            symbols = {x.symbol for x in linear_scope(params, required=False)[1]}
        else:
            m = spot_market(params, required=False)
            symbols = {m.symbol} if m else {x.symbol for x in markets_of("spot")}
        order_id, client_id = ids(params, category)
        start, end = int(params.get("startTime") or 0), int(params.get("endTime") or fx.now_ms())
        render_fill = _linear_execution if category == "linear" else _execution
        rows = [
            render_fill(t, o, fx.market(o.symbol))
            for o in fx.orders()
            if o.symbol in symbols
            for t in o.trades
            if (order_id is None or o.id == order_id) and (client_id is None or o.client_id == client_id)
            and start <= t.time_ms <= end
        ]
        rows.sort(key=lambda r: r["seq"], reverse=True)
        return ok({"category": category} | _page(rows, params, 50, 100))

    # ---- positions, leverage, margin mode ----

    async def position_list(request: web.Request, params: Params) -> web.Response:
        """A symbol's row whether or not it holds a position; by settleCoin, the non-flat ones."""
        category = _category(params)
        if category == "spot":
            raise Reply(10001, "params error: Category is invalid")
        if category != "linear":
            return ok({"category": category, "list": [], "nextPageCursor": ""})
        m = linear_market(params, required=False)
        now = fx.now_ms()
        if m is not None:
            chosen = [(m, fx.position(m.symbol))]
        else:
            settle = params.get("settleCoin") or ""
            if not settle:
                raise Reply(10001, "params error: symbol or settleCoin is required")
            chosen = [(x, fx.position(x.symbol)) for x in markets_of("linear") if x.quote == settle]
            chosen = [(x, p) for x, p in chosen if p.contracts]
        rows = [_position(p, x, fx.leverage.get(x.symbol, 1), now) for x, p in chosen]
        return ok({"category": "linear"} | _page(rows, params, 20, 200))

    async def set_leverage(request: web.Request, params: Params) -> web.Response:
        category = _category(params)
        if category not in ("linear", "inverse"):
            raise Reply(10001, "params error: Category is invalid")
        m = linear_market(params)
        buy, sell = _dec(params, "buyLeverage", linear=True), _dec(params, "sellLeverage", linear=True)
        if buy is None or sell is None:
            raise Reply(10001, "params error: buyLeverage and sellLeverage are required")
        if buy != sell:  # one-way mode
            raise Reply(10001, "params error: buyLeverage must be the same as sellLeverage in one-way mode")
        if buy != buy.to_integral_value() or buy < 1:  # the engine keeps whole leverages
            raise Reply(10001, "params error: leverage invalid")
        if int(buy) == fx.leverage.get(m.symbol):
            raise Reply(110043, "leverage not modified")
        try:
            fx.set_leverage(m.symbol, int(buy))
        except Refused:
            raise Reply(10001, "params error: leverage invalid") from None
        return ok({})

    async def set_margin_mode(request: web.Request, params: Params) -> web.Response:
        """The unified account's margin mode, account-wide (every linear perpetual at once)."""
        wanted = params.get("setMarginMode")
        if wanted == "PORTFOLIO_MARGIN":  # not modelled: refused as bybit's own docs example is
            reasons = [{"reasonCode": "3400000", "reasonMsg": "Equity needs to be equal to or greater than 1000 USDC"}]
            return envelope(3400045, "Set margin mode failed", {"reasons": reasons}, fx.now_ms())
        if wanted not in MARGIN_MODES:
            raise Reply(10001, "params error: setMarginMode invalid")
        if account_margin_mode() == wanted:
            return envelope(0, "Request accepted", {"reasons": []}, fx.now_ms())
        perps = markets_of("linear")
        reasons = []
        holding = sorted({m.quote for m in perps if fx.position(m.symbol).contracts})
        for settle in holding:
            reasons.append({"reasonCode": "3400208", "reasonMsg": f"You have unclosed hedge mode or isolated mode {settle} perpetual positions"})
        ordering = sorted({fx.market(o.symbol).quote for o in fx.orders(status="open") if fx.market(o.symbol).perpetual})
        for settle in ordering:
            code = "3400052" if settle == "USDC" else "3400054"
            reasons.append({"reasonCode": code, "reasonMsg": f"You have uncancelled {settle} perpetual orders"})
        if reasons:
            return envelope(3400045, "Set margin mode failed", {"reasons": reasons}, fx.now_ms())
        try:
            for m in perps:
                fx.set_margin_mode(m.symbol, MARGIN_MODES[wanted])
        except Refused:  # a position or an order arrived meanwhile
            reasons = [{"reasonCode": "3400054", "reasonMsg": "You have uncancelled USDT perpetual orders"}]
            return envelope(3400045, "Set margin mode failed", {"reasons": reasons}, fx.now_ms())
        account["margin_mode"], account["updated_ms"] = wanted, fx.now_ms()
        return envelope(0, "Request accepted", {"reasons": []}, fx.now_ms())

    async def switch_isolated(request: web.Request, params: Params) -> web.Response:
        """The classic account's per-symbol switch: a unified account may not use it."""
        raise Reply(100028, "unified account is forbidden")

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
        web.get("/v5/position/list", private(position_list)),
        web.post("/v5/position/set-leverage", private(set_leverage)),
        web.post("/v5/position/switch-isolated", private(switch_isolated)),
        web.post("/v5/account/set-margin-mode", private(set_margin_mode)),
    ]
