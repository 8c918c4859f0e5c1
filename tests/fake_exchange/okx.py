"""okx REST v5 (spot, tdMode cash) on top of the engine: the paths, OK-ACCESS-* signing,
the `{"code", "msg", "data"}` envelope, per-order `sCode`/`sMsg` results and the HTTP
statuses okx uses, so ccxt runs its real request building and parsing against it.

okx answers business errors with HTTP 200 and a non-zero `code` (order placement: code
"1" "All operations failed" with the reason in `data[i].sCode`), authentication errors
with HTTP 401, rate limits with 429 and outages with 503. ccxt maps `code`/`sCode`
through okx.py `exceptions['exact']`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from .engine import Behaviour, Market, Order, Refused, Trade, candles, interval_ms, stats_24h
from .server import deliver, json_response

if TYPE_CHECKING:
    from . import FakeExchange

Params = dict[str, Any]
Handler = Callable[[web.Request, Params], Awaitable[web.Response]]
CLIENT_ID = re.compile(r"^[a-zA-Z0-9]{1,32}$")
ID_BASE = 700_000_000_000_000_000  # okx ids are long digit strings
ORD_TYPE = {"GTC": "limit", "IOC": "ioc", "FOK": "fok"}


class Reply(Exception):
    """Stop handling and answer with this okx envelope."""

    def __init__(self, code: str, msg: str, status: int = 200, data: list | None = None) -> None:
        super().__init__(msg)
        self.response = envelope(code, msg, data or [], status)


def envelope(code: str, msg: str, data: list, status: int = 200, **extra: str) -> web.Response:
    return json_response({"code": code, "msg": msg, "data": data} | extra, status)


def ok(data: list) -> web.Response:
    return envelope("0", "", data)


def down() -> web.Response:
    return envelope("50001", "Service temporarily unavailable. Please try again later.", [], 503)


def rate_limited() -> web.Response:
    return envelope("50011", "Rate limit reached. Please refer to API documentation and throttle requests accordingly.", [], 429)


def fmt(value: Decimal | int) -> str:
    """okx prints numbers plainly, without padding zeros."""
    value = Decimal(value)
    return "0" if value == 0 else format(value.normalize(), "f")


def inst_id(m: Market) -> str:
    return f"{m.base}-{m.quote}"


# ---- request plumbing ------------------------------------------------------------------


def _public(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request, dict(request.query))
        except Reply as reply:
            return reply.response

    return run


def _private(fx: FakeExchange, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """okx private endpoints: OK-ACCESS-KEY / -PASSPHRASE / -TIMESTAMP (within 30 s of the
    server clock) / -SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + path?query + body))."""

    async def run(request: web.Request) -> web.Response:
        body = await request.text()
        h = request.headers
        try:
            for name, code in (("KEY", "50103"), ("PASSPHRASE", "50104"), ("SIGN", "50106"), ("TIMESTAMP", "50107")):
                if not h.get(f"OK-ACCESS-{name}"):
                    raise Reply(code, f"Request header OK-ACCESS-{name} cannot be empty.", 401)
            if h["OK-ACCESS-KEY"] != fx.api_key:
                raise Reply("50111", "Invalid OK-ACCESS-KEY.", 401)
            if h["OK-ACCESS-PASSPHRASE"] != fx.passphrase:
                raise Reply("50105", "OK-ACCESS-PASSPHRASE incorrect.", 401)
            stamp = h["OK-ACCESS-TIMESTAMP"]
            try:
                sent = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            except ValueError:
                raise Reply("50112", "Invalid OK-ACCESS-TIMESTAMP.", 401) from None
            if abs(fx.now_ms() - sent.timestamp() * 1000) > 30_000:
                raise Reply("50102", "Timestamp request expired.", 401)
            prehash = stamp + request.method + request.raw_path + body
            expected = base64.b64encode(hmac.new(fx.secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(expected, h["OK-ACCESS-SIGN"]):
                raise Reply("50113", "Invalid Sign", 401)
            if request.method == "GET":
                params: Params = dict(request.query)
            else:
                try:
                    params = {"body": json.loads(body or "{}")}
                except ValueError:
                    raise Reply("50002", "Json data format error.", 400) from None
            return await handler(request, params)
        except Reply as reply:
            return reply.response

    return run


def _market(fx: FakeExchange, inst: str | None, required: bool = True) -> Market | None:
    if not inst:
        if required:
            raise Reply("50014", "Parameter instId can not be empty.", 400)
        return None
    for m in fx.market_list():
        if inst_id(m) == inst:
            return m
    raise Reply("51001", "Instrument ID does not exist.")


def _ord_id(text: str | None) -> int | None:
    return int(text) - ID_BASE if text and text.isdigit() else None


# ---- JSON shapes -----------------------------------------------------------------------


def _state(o: Order) -> str:
    if o.status == "open":
        return "partially_filled" if o.filled else "live"
    return "filled" if o.status == "filled" else "canceled"  # okx has no "expired": it cancels


def _order(o: Order, m: Market) -> dict:
    last = o.trades[-1] if o.trades else None
    quote_sized = o.quote_amount is not None
    return {
        "accFillSz": fmt(o.filled),
        "algoClOrdId": "",
        "algoId": "",
        "attachAlgoClOrdId": "",
        "attachAlgoOrds": [],
        "avgPx": fmt(o.average) if o.average else "",
        "cTime": str(o.created_ms),
        "cancelSource": "",
        "cancelSourceReason": "",
        "category": "normal",
        "ccy": "",
        "clOrdId": o.client_id,
        "fee": fmt(-o.fee),
        "feeCcy": o.fee_asset or (m.base if o.side == "buy" else m.quote),
        "fillPx": fmt(last.price) if last else "",
        "fillSz": fmt(last.amount) if last else "0",
        "fillTime": str(last.time_ms) if last else "",
        "instId": inst_id(m),
        "instType": "SPOT",
        "isTpLimit": "false",
        "lever": "",
        "linkedAlgoOrd": {"algoId": ""},
        "ordId": str(ID_BASE + o.id),
        "ordType": "market" if o.type == "market" else ORD_TYPE[o.tif],
        "pnl": "0",
        "posSide": "net",
        "px": fmt(o.price) if o.price is not None else "",
        "pxType": "",
        "pxUsd": "",
        "pxVol": "",
        "quickMgnType": "",
        "rebate": "0",
        "rebateCcy": m.quote if o.side == "buy" else m.base,
        "reduceOnly": "false",
        "side": o.side,
        "slOrdPx": "",
        "slTriggerPx": "",
        "slTriggerPxType": "",
        "source": "",
        "state": _state(o),
        "stpId": "",
        "stpMode": "cancel_maker",
        "sz": fmt(o.quote_amount if quote_sized else o.amount),
        "tag": "",
        "tdMode": "cash",
        "tgtCcy": ("quote_ccy" if quote_sized else "base_ccy") if o.type == "market" else "",
        "tpOrdPx": "",
        "tpTriggerPx": "",
        "tpTriggerPxType": "",
        "tradeId": str(last.id) if last else "",
        "tradeQuoteCcy": m.quote,
        "uTime": str(o.updated_ms),
    }


def _fill(t: Trade, o: Order, m: Market) -> dict:
    return {
        "instType": "SPOT",
        "instId": inst_id(m),
        "tradeId": str(t.id),
        "ordId": str(ID_BASE + o.id),
        "clOrdId": o.client_id,
        "billId": str(ID_BASE + t.id),
        "subType": "1" if t.side == "buy" else "2",
        "tag": "",
        "fillPx": fmt(t.price),
        "fillSz": fmt(t.amount),
        "fillIdxPx": "",
        "fillPnl": "0",
        "fillPxVol": "",
        "fillPxUsd": "",
        "fillMarkVol": "",
        "fillFwdPx": "",
        "fillMarkPx": "",
        "side": t.side,
        "posSide": "net",
        "execType": "M" if t.maker else "T",
        "feeCcy": t.fee_asset,
        "fee": fmt(-t.fee),
        "ts": str(t.time_ms),
        "fillTime": str(t.time_ms),
        "feeRate": "-0.001",
        "tradeQuoteCcy": m.quote,
    }


def _instrument(m: Market) -> dict:
    return {
        "alias": "",
        "auctionEndTime": "",
        "baseCcy": m.base,
        "category": "1",
        "ctMult": "",
        "ctType": "",
        "ctVal": "",
        "ctValCcy": "",
        "expTime": "",
        "instFamily": "",
        "instId": inst_id(m),
        "instType": "SPOT",
        "lever": "",
        "listTime": "1606468572000",
        "lotSz": fmt(m.amount_step),
        "maxIcebergSz": "9999999999",
        "maxLmtAmt": "1000000",
        "maxLmtSz": "9999999999",
        "maxMktAmt": "1000000",
        "maxMktSz": "1000000",
        "maxStopSz": "1000000",
        "maxTriggerSz": "9999999999",
        "maxTwapSz": "9999999999",
        "minSz": fmt(m.min_amount),
        "optType": "",
        "quoteCcy": m.quote,
        "ruleType": "normal",
        "settleCcy": "",
        "state": "live",
        "stk": "",
        "tickSz": fmt(m.price_tick),
        "uly": "",
    }


def _ticker(m: Market, now: int) -> dict:
    s = stats_24h(m, now)
    return {
        "instType": "SPOT",
        "instId": inst_id(m),
        "last": fmt(s.last),
        "lastSz": fmt(m.amount_step * 10),
        "askPx": fmt(s.ask),
        "askSz": "1",
        "bidPx": fmt(s.bid),
        "bidSz": "1",
        "open24h": fmt(s.open),
        "high24h": fmt(s.high),
        "low24h": fmt(s.low),
        "volCcy24h": fmt(s.quote_volume),
        "vol24h": fmt(s.volume),
        "ts": str(now),
        "sodUtc0": fmt(s.open),
        "sodUtc8": fmt(s.open),
    }


# ---- routes ----------------------------------------------------------------------------


def _refusal(reason: str, m: Market | None, side: str) -> tuple[str, str]:
    short = (m.quote if side == "buy" else m.base) if m else ""
    return {
        "unknown_symbol": ("51001", "Instrument ID does not exist."),
        "price_tick": ("51000", "Parameter px error"),
        "amount_step": ("51121", "Order quantity must be a multiple of the lot size."),
        "amount_min": ("51020", "Your order should meet or exceed the minimum order amount."),
        "duplicate": ("51016", "Duplicated clOrdId"),
        "insufficient": ("51008", f"Order failed. Insufficient {short} balance in account."),
    }[reason]


def _batch_envelope(results: list[dict]) -> tuple[str, str]:
    failed = sum(r["sCode"] != "0" for r in results)
    if failed == 0:
        return "0", ""
    return ("1", "All operations failed") if failed == len(results) else ("2", "Bulk operation partially succeeded.")


def routes(fx: FakeExchange) -> list[web.RouteDef]:
    def private(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        return _private(fx, handler)

    def place_one(item: Params) -> tuple[dict, Order | None]:
        """One order of /trade/order or /trade/batch-orders: its sCode result and the order, if accepted."""
        client_id, tag, now = str(item.get("clOrdId") or ""), str(item.get("tag") or ""), str(fx.now_ms())

        def failed(code: str, msg: str) -> tuple[dict, None]:
            return {"clOrdId": client_id, "ordId": "", "tag": tag, "ts": now, "sCode": str(code), "sMsg": msg}, None

        def number(name: str) -> Decimal | None:
            try:
                return Decimal(str(item[name])) if item.get(name) not in (None, "") else None
            except InvalidOperation:
                return None

        try:
            m = _market(fx, item.get("instId"))
        except Reply:
            return failed("51001", "Instrument ID does not exist.")
        side, ord_type, sz, px = item.get("side"), item.get("ordType"), number("sz"), number("px")
        if item.get("tdMode") != "cash":
            return failed("51000", "Parameter tdMode error")
        if side not in ("buy", "sell"):
            return failed("51000", "Parameter side error")
        if ord_type not in ("market", "limit", "ioc", "fok"):
            return failed("51000", "Parameter ordType error")
        if sz is None or sz <= 0:
            return failed("51000", "Parameter sz error")
        if ord_type != "market" and px is None:
            return failed("51000", "Parameter px error")
        if client_id and not CLIENT_ID.match(client_id):
            return failed("51000", "Parameter clOrdId error")
        # spot market orders: sz is in quote for buys unless tgtCcy says base (okx's default)
        tgt = item.get("tgtCcy") or ("quote_ccy" if side == "buy" else "base_ccy")
        by_quote = ord_type == "market" and tgt == "quote_ccy"
        tif = {"limit": "GTC", "ioc": "IOC", "fok": "FOK", "market": "GTC"}[ord_type]
        try:
            o = fx.place(
                m.symbol, side, "market" if ord_type == "market" else "limit", None if by_quote else sz,
                None if ord_type == "market" else px, client_id, tif, sz if by_quote else None, check_min_cost=False,
            )
        except Refused as refused:
            if refused.reason == "reject":
                return failed(str(refused.code), str(refused.msg))
            return failed(*_refusal(refused.reason, m, side))
        return {"clOrdId": client_id, "ordId": str(ID_BASE + o.id), "tag": tag, "ts": now, "sCode": "0", "sMsg": "Order placed"}, o

    async def place(request: web.Request, params: Params) -> web.Response:
        items = params["body"] if isinstance(params["body"], list) else [params["body"]]
        if request.path.endswith("batch-orders") and not isinstance(params["body"], list):
            raise Reply("50002", "Json data format error.", 400)
        start = fx.now_ms() * 1000
        placed = [place_one(item) for item in items]
        results = [r for r, _ in placed]
        code, msg = _batch_envelope(results)
        behaviour = next((o.behaviour for _, o in placed if o is not None), Behaviour.fill())
        response = envelope(code, msg, results, inTime=str(start), outTime=str(fx.now_ms() * 1000))
        return await deliver(behaviour, response)

    def lookup(item: Params) -> tuple[Market, int | None, str | None]:
        m = _market(fx, item.get("instId"))
        order_id, client_id = item.get("ordId"), item.get("clOrdId")
        if not order_id and not client_id:
            raise Reply("51000", "Parameter ordId error", 400)
        return m, _ord_id(order_id) if order_id else None, None if order_id else client_id

    async def get_order(request: web.Request, params: Params) -> web.Response:
        m, order_id, client_id = lookup(params)
        o = fx.find(m.symbol, order_id, client_id) if (order_id is not None or client_id) else None
        if o is None:
            raise Reply("51603", "Order does not exist")
        return ok([_order(o, m)])

    def cancel_one(item: Params) -> dict:
        m, order_id, client_id = lookup(item)
        o = fx.cancel(m.symbol, order_id, client_id) if (order_id is not None or client_id) else None
        result = {"clOrdId": item.get("clOrdId", ""), "ordId": item.get("ordId", ""), "ts": str(fx.now_ms())}
        if o is None:
            return result | {"sCode": "51400", "sMsg": "Order cancellation failed as the order has been filled, canceled or does not exist."}
        return result | {"clOrdId": o.client_id, "ordId": str(ID_BASE + o.id), "sCode": "0", "sMsg": ""}

    async def cancel_order(request: web.Request, params: Params) -> web.Response:
        items = params["body"] if isinstance(params["body"], list) else [params["body"]]
        results = [cancel_one(item) for item in items]
        code, msg = _batch_envelope(results)
        return envelope(code, msg, results, inTime=str(fx.now_ms() * 1000), outTime=str(fx.now_ms() * 1000))

    def listed(params: Params, finished: bool) -> list[dict]:
        m = _market(fx, params.get("instId"), required=False)
        chosen = [o for o in fx.orders(m.symbol if m else None) if (o.status != "open") == finished]
        limit = min(int(params.get("limit") or 100), 100)
        after, before = _ord_id(params.get("after")), _ord_id(params.get("before"))  # older than / newer than an ordId
        chosen = [o for o in chosen if (after is None or o.id < after) and (before is None or o.id > before)]
        return [_order(o, fx.market(o.symbol)) for o in reversed(chosen)][:limit]

    async def orders_pending(request: web.Request, params: Params) -> web.Response:
        return ok(listed(params, finished=False))

    async def orders_history(request: web.Request, params: Params) -> web.Response:
        if not params.get("instType"):
            raise Reply("50014", "Parameter instType can not be empty.", 400)
        return ok(listed(params, finished=True))

    async def fills(request: web.Request, params: Params) -> web.Response:
        m = _market(fx, params.get("instId"), required=False)
        order_id = _ord_id(params.get("ordId"))
        rows = [
            _fill(t, o, fx.market(o.symbol))
            for o in fx.orders(m.symbol if m else None)
            for t in o.trades
            if order_id is None or o.id == order_id
        ]
        rows.sort(key=lambda r: int(r["tradeId"]), reverse=True)
        return ok(rows[: int(params.get("limit") or 100)])

    async def balance(request: web.Request, params: Params) -> web.Response:
        wanted = set(filter(None, str(params.get("ccy", "")).split(",")))
        prices = {m.base: m.price for m in fx.market_list() if m.quote in ("USDT", "USDC", "USD")}
        now = str(fx.now_ms())
        details, total_usd = [], Decimal(0)
        for ccy, b in sorted(fx.balance_snapshot().items()):
            eq = b["free"] + b["used"]
            if eq == 0 or (wanted and ccy not in wanted):
                continue  # okx lists only currencies the account holds
            usd = eq * prices.get(ccy, Decimal(1))
            total_usd += usd
            details.append(
                {
                    "availBal": fmt(b["free"]), "availEq": "", "borrowFroz": "", "cashBal": fmt(eq), "ccy": ccy,
                    "crossLiab": "", "disEq": fmt(usd), "eq": fmt(eq), "eqUsd": fmt(usd), "fixedBal": "0",
                    "frozenBal": fmt(b["used"]), "imr": "", "interest": "", "isoEq": "", "isoLiab": "", "isoUpl": "",
                    "liab": "", "maxLoan": "", "mgnRatio": "", "mmr": "", "notionalLever": "", "ordFrozen": fmt(b["used"]),
                    "rewardBal": "0", "spotInUseAmt": "", "spotIsoBal": "0", "stgyEq": "0", "twap": "0", "uTime": now,
                    "upl": "", "uplLiab": "",
                }
            )
        return ok(
            [
                {
                    "adjEq": "", "availEq": "", "borrowFroz": "", "details": details, "imr": "", "isoEq": "",
                    "mgnRatio": "", "mmr": "", "notionalUsd": "", "ordFroz": "", "totalEq": fmt(total_usd),
                    "uTime": now, "upl": "",
                }
            ]
        )

    async def server_time(request: web.Request, params: Params) -> web.Response:
        return ok([{"ts": str(fx.now_ms())}])

    async def instruments(request: web.Request, params: Params) -> web.Response:
        inst_type = params.get("instType")
        if not inst_type:
            raise Reply("50014", "Parameter instType can not be empty.", 400)
        chosen = fx.market_list() if inst_type == "SPOT" else []  # the fake lists spot only
        return ok([_instrument(m) for m in chosen if params.get("instId") in (None, inst_id(m))])

    async def ticker(request: web.Request, params: Params) -> web.Response:
        return ok([_ticker(_market(fx, params.get("instId")), fx.now_ms())])

    async def tickers(request: web.Request, params: Params) -> web.Response:
        return ok([_ticker(m, fx.now_ms()) for m in fx.market_list()] if params.get("instType") == "SPOT" else [])

    async def books(request: web.Request, params: Params) -> web.Response:
        m, n = _market(fx, params.get("instId")), min(int(params.get("sz") or 1), 400)
        return ok(
            [
                {
                    "asks": [[fmt(m.price + m.price_tick * i), "1", "0", "1"] for i in range(1, n + 1)],
                    "bids": [[fmt(m.price - m.price_tick * i), "1", "0", "1"] for i in range(1, n + 1)],
                    "ts": str(fx.now_ms()),
                }
            ]
        )

    async def market_candles(request: web.Request, params: Params) -> web.Response:
        m = _market(fx, params.get("instId"))
        step = interval_ms(params.get("bar") or "1m")
        if step is None:
            raise Reply("51000", "Parameter bar error", 400)
        now, limit = fx.now_ms(), min(int(params.get("limit") or 100), 300)
        after, before = params.get("after"), params.get("before")  # older than `after`, newer than `before`
        last = (int(after) - 1) // step if after else now // step
        first = last - limit + 1
        if before:
            first = max(first, int(before) // step + 1)
        rows = [
            [str(c.open_ms), fmt(c.open), fmt(c.high), fmt(c.low), fmt(c.close), fmt(c.volume),
             fmt(c.quote_volume), fmt(c.quote_volume), "0" if c.open_ms + step > now else "1"]
            for c in candles(m, step, first, last, now)
        ]
        return ok(rows[::-1])  # newest first, as okx sends them

    return [
        web.get("/api/v5/public/time", _public(server_time)),
        web.get("/api/v5/public/instruments", _public(instruments)),
        web.get("/api/v5/market/ticker", _public(ticker)),
        web.get("/api/v5/market/tickers", _public(tickers)),
        web.get("/api/v5/market/books", _public(books)),
        web.get("/api/v5/market/candles", _public(market_candles)),
        web.get("/api/v5/market/history-candles", _public(market_candles)),
        web.get("/api/v5/account/balance", private(balance)),
        web.post("/api/v5/trade/order", private(place)),
        web.post("/api/v5/trade/batch-orders", private(place)),
        web.get("/api/v5/trade/order", private(get_order)),
        web.post("/api/v5/trade/cancel-order", private(cancel_order)),
        web.post("/api/v5/trade/cancel-batch-orders", private(cancel_order)),
        web.get("/api/v5/trade/orders-pending", private(orders_pending)),
        web.get("/api/v5/trade/orders-history", private(orders_history)),
        web.get("/api/v5/trade/orders-history-archive", private(orders_history)),
        web.get("/api/v5/trade/fills", private(fills)),
        web.get("/api/v5/trade/fills-history", private(fills)),
    ]
