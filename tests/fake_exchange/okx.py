"""okx REST v5 on top of the engine: spot (tdMode cash, "BTC-USDT") and linear perpetual
swaps (instType SWAP, "BTC-USDT-SWAP", tdMode cross or isolated), with the paths,
OK-ACCESS-* signing, the `{"code", "msg", "data"}` envelope, per-order `sCode`/`sMsg`
results and the HTTP statuses okx uses, so ccxt runs its real request building and
parsing against it.

okx answers business errors with HTTP 200 and a non-zero `code` (order placement: code
"1" "All operations failed" with the reason in `data[i].sCode`), authentication errors
with HTTP 401, rate limits with 429 and outages with 503. ccxt maps `code`/`sCode`
through okx.py `exceptions['exact']`.

Perpetual swaps (the account is in net position mode, `posMode` net_mode, and in "Spot and
futures" mode, acctLv 2). A swap's amounts (`sz`, `accFillSz`, `fillSz`, `pos`, `lotSz`,
`minSz`) are CONTRACTS of `ctVal` base; fees and margin are in the settle currency (USDT).
okx has no per-instrument margin-mode setting: every order names its own `tdMode` (cross or
isolated), and the account keeps one leverage per (instrument, margin mode), set by POST
/api/v5/account/set-leverage {instId, lever, mgnMode[, posSide net]} (ccxt's set_margin_mode
calls that same endpoint, and needs params["lever"] or ["leverage"]). Setting a leverage
while the instrument has pending orders in that margin mode is refused, even when the value
does not change: code 59000 for isolated ("Setting failed. Cancel any open orders, close
positions, and stop trading bots first.", as okx answered freqtrade), 59107 for cross (as
it answered passivbot). A position alone does not block it.

What the fake cannot do. Real okx holds a cross and an isolated position on the same swap side
by side; the engine holds one position per symbol, whose margin mode is
`fx.margin_mode[symbol]`. So here an order whose tdMode differs from the symbol's switches the
symbol to that mode when the symbol is flat with no open orders (okx: a new position in that
mode), and is refused with the fake's own sCode FAKE_MIXED_MODES ("59999", which ccxt raises as
a plain ExchangeError) when the symbol holds a position or open orders in the other mode, where
okx would accept it and open a second position. A set-leverage for the other mode then is
accepted and kept for that mode, as okx does. The engine also keeps ONE balance pool per
currency for spot and for margin (okx's trading account is one pool too, but its
availBal/frozenBal split differs in detail): an order's margin is in `frozenBal`/`ordFrozen`,
a position's in `frozenBal` and, for isolated ones, `isoEq`. Positions carry no fees or funding
(`realizedPnl` is the closed profit only), reduceOnly is not enforced, and hedge mode
(long_short_mode) is not modelled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from .engine import (
    DEFAULT_LEVERAGE,
    MAX_LEVERAGE,
    PERP_FEE_RATE,
    Behaviour,
    Market,
    Order,
    Position,
    Refused,
    Trade,
    candles,
    interval_ms,
    stats_24h,
)
from .server import deliver, json_response

if TYPE_CHECKING:
    from . import FakeExchange

Params = dict[str, Any]
Handler = Callable[[web.Request, Params], Awaitable[web.Response]]
CLIENT_ID = re.compile(r"^[a-zA-Z0-9]{1,32}$")
ID_BASE = 700_000_000_000_000_000  # okx ids are long digit strings
ORD_TYPE = {"GTC": "limit", "IOC": "ioc", "FOK": "fok"}
MMR_RATE = Decimal("0.004")  # maintenance margin, share of the notional (okx BTC-USDT-SWAP's first tier)
# The fake's own refusal (not an okx code): an order in the other margin mode than the symbol's
# position or open orders, which okx would hold as a second position. ccxt raises ExchangeError.
FAKE_MIXED_MODES = "59999"


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
    return f"{m.base}-{m.quote}-SWAP" if m.perpetual else f"{m.base}-{m.quote}"


def inst_type(m: Market) -> str:
    return "SWAP" if m.perpetual else "SPOT"


@dataclass
class OkxState:
    """What okx keeps that the engine does not: the leverage of the margin mode a swap's
    position is NOT in (the engine's `leverage[symbol]` is that of `margin_mode[symbol]`), and
    each order's tdMode and leverage as placed. Kept on the FakeExchange, so it outlives a restart."""

    other_leverage: dict[tuple[str, str], int] = field(default_factory=dict)
    orders: dict[int, tuple[str, int]] = field(default_factory=dict)


def okx_state(fx: FakeExchange) -> OkxState:
    return fx.__dict__.setdefault("_okx_state", OkxState())


def leverage_of(fx: FakeExchange, symbol: str, mode: str) -> int:
    """The account's leverage for (symbol, margin mode)."""
    if fx.margin_mode.get(symbol) == mode:
        return fx.leverage.get(symbol, DEFAULT_LEVERAGE)
    return okx_state(fx).other_leverage.get((symbol, mode), DEFAULT_LEVERAGE)


def switch_mode(fx: FakeExchange, symbol: str, mode: str) -> None:
    """Make `mode` the symbol's margin mode, carrying each mode's leverage along.
    Raises Refused("margin_mode_busy") while the symbol has a position or open orders."""
    current = fx.margin_mode.get(symbol)
    if current == mode:
        return
    kept = fx.leverage.get(symbol, DEFAULT_LEVERAGE)
    fx.set_margin_mode(symbol, mode)
    state = okx_state(fx)
    if current is not None:
        state.other_leverage[(symbol, current)] = kept
    fx.set_leverage(symbol, state.other_leverage.pop((symbol, mode), DEFAULT_LEVERAGE))


def order_mode(fx: FakeExchange, o: Order) -> tuple[str, int]:
    """(tdMode, lever) an order was placed with; one placed on the engine directly: the symbol's."""
    if not fx.markets[o.symbol].perpetual:
        return "cash", 0
    return okx_state(fx).orders.get(o.id) or (fx.margin_mode.get(o.symbol, "cross"), fx.leverage.get(o.symbol, DEFAULT_LEVERAGE))


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


def _order(o: Order, m: Market, td_mode: str = "cash", lever: int = 0) -> dict:
    """An order row; a swap's sizes are contracts, its fee is in the settle currency."""
    last = o.trades[-1] if o.trades else None
    quote_sized = o.quote_amount is not None
    swap = m.perpetual
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
        "feeCcy": o.fee_asset or (m.quote if swap or o.side == "sell" else m.base),
        "fillPx": fmt(last.price) if last else "",
        "fillSz": fmt(last.amount) if last else "0",
        "fillTime": str(last.time_ms) if last else "",
        "instId": inst_id(m),
        "instType": inst_type(m),
        "isTpLimit": "false",
        "lever": str(lever) if swap else "",
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
        "rebateCcy": m.quote if swap or o.side == "buy" else m.base,
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
        "tdMode": td_mode if swap else "cash",
        "tgtCcy": ("quote_ccy" if quote_sized else "base_ccy") if o.type == "market" and not swap else "",
        "tpOrdPx": "",
        "tpTriggerPx": "",
        "tpTriggerPxType": "",
        "tradeId": str(last.id) if last else "",
        "tradeQuoteCcy": m.quote,
        "uTime": str(o.updated_ms),
    }


def _fill(t: Trade, o: Order, m: Market) -> dict:
    return {
        "instType": inst_type(m),
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
        "feeRate": fmt(-PERP_FEE_RATE) if m.perpetual else "-0.001",
        "tradeQuoteCcy": m.quote,
    }


def _instrument(m: Market) -> dict:
    """An instruments row. A swap (as okx lists BTC-USDT-SWAP): baseCcy/quoteCcy empty, the pair in
    uly/instFamily, ctVal base per contract, lotSz/minSz in contracts, maximum leverage in lever."""
    swap = m.perpetual
    return {
        "alias": "",
        "auctionEndTime": "",
        "baseCcy": "" if swap else m.base,
        "category": "1",
        "contTdSwTime": "",
        "ctMult": "1" if swap else "",
        "ctType": "linear" if swap else "",
        "ctVal": fmt(m.contract_size) if swap else "",
        "ctValCcy": m.base if swap else "",
        "expTime": "",
        "futureSettlement": False,
        "instFamily": f"{m.base}-{m.quote}" if swap else "",
        "instId": inst_id(m),
        "instIdCode": 10459 if swap else 10000,
        "instType": inst_type(m),
        "lever": str(MAX_LEVERAGE) if swap else "",
        "listTime": "1573557408000" if swap else "1606468572000",
        "lotSz": fmt(m.amount_step),
        "maxIcebergSz": "100000000" if swap else "9999999999",
        "maxLmtAmt": "20000000" if swap else "1000000",
        "maxLmtSz": "100000000" if swap else "9999999999",
        "maxMktAmt": "" if swap else "1000000",
        "maxMktSz": "12000" if swap else "1000000",
        "maxStopSz": "12000" if swap else "1000000",
        "maxTriggerSz": "100000000" if swap else "9999999999",
        "maxTwapSz": "100000000" if swap else "9999999999",
        "minSz": fmt(m.min_amount),
        "openType": "",
        "optType": "",
        "quoteCcy": "" if swap else m.quote,
        "ruleType": "normal",
        "settleCcy": m.quote if swap else "",
        "state": "live",
        "stk": "",
        "tickSz": fmt(m.price_tick),
        "tradeQuoteCcyList": [] if swap else [m.quote],
        "uly": f"{m.base}-{m.quote}" if swap else "",
    }


def _ticker(m: Market, now: int) -> dict:
    s = stats_24h(m, now)
    # a swap's vol24h is contracts and volCcy24h base; a spot pair's vol24h is base, volCcy24h quote
    vol, vol_ccy = (s.volume / m.contract_size, s.volume) if m.perpetual else (s.volume, s.quote_volume)
    return {
        "instType": inst_type(m),
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
        "volCcy24h": fmt(vol_ccy),
        "vol24h": fmt(vol),
        "ts": str(now),
        "sodUtc0": fmt(s.open),
        "sodUtc8": fmt(s.open),
    }


def _position(p: Position, m: Market, mode: str, lever: int, free: Decimal, trade_id: str) -> dict:
    """A /account/positions row in net mode: `pos` is signed contracts, `margin` the isolated
    margin (cross: `imr`), the mark is the market price. The liquidation price is where the
    position's collateral (isolated: its margin; cross: its imr plus the free balance) less the
    loss equals the maintenance margin, as ccxt's position validator checks. The engine keeps no
    opening time: cTime is the last update, like uTime."""
    qty = abs(p.contracts) * m.contract_size  # base
    direction = Decimal(1) if p.contracts > 0 else Decimal(-1)
    mark = m.price
    notional = qty * mark
    upl = (mark - p.entry_price) * qty * direction
    mmr = notional * MMR_RATE
    isolated = mode == "isolated"
    initial = p.margin if isolated else notional / Decimal(lever)
    collateral = initial if isolated else initial + free
    liq = p.entry_price - direction * (collateral - mmr) / qty
    rounded = lambda v: fmt(v.quantize(Decimal("0.00000001")))  # noqa: E731
    return {
        "adl": "1",
        "availPos": "",
        "avgPx": fmt(p.entry_price),
        "baseBal": "",
        "baseBorrowed": "",
        "baseInterest": "",
        "bePx": fmt(p.entry_price),
        "bizRefId": "",
        "bizRefType": "",
        "cTime": str(p.updated_ms),
        "ccy": m.quote,
        "clSpotInUseAmt": "",
        "closeOrderAlgo": [],
        "deltaBS": "",
        "deltaPA": "",
        "fee": "0",
        "fundingFee": "0",
        "gammaBS": "",
        "gammaPA": "",
        "idxPx": fmt(mark),
        "imr": "" if isolated else rounded(initial),
        "instId": inst_id(m),
        "instType": "SWAP",
        "interest": "",
        "last": fmt(mark),
        "lever": str(lever),
        "liab": "",
        "liabCcy": "",
        "liqPenalty": "0",
        "liqPx": rounded(liq) if liq > 0 else "",
        "margin": rounded(initial) if isolated else "",
        "markPx": fmt(mark),
        "maxSpotInUseAmt": "",
        "mgnMode": mode,
        "mgnRatio": rounded((initial + upl) / mmr) if mmr else "",
        "mmr": rounded(mmr),
        "nonSettleAvgPx": "",
        "notionalUsd": rounded(notional),
        "optVal": "",
        "pendingCloseOrdLiabVal": "",
        "pnl": fmt(p.realized),
        "pos": fmt(p.contracts),
        "posCcy": "",
        "posId": str(ID_BASE + zlib.crc32(p.symbol.encode())),  # one net position per instrument
        "posSide": "net",
        "quoteBal": "",
        "quoteBorrowed": "",
        "quoteInterest": "",
        "realizedPnl": fmt(p.realized),
        "settledPnl": "",
        "spotInUseAmt": "",
        "spotInUseCcy": "",
        "thetaBS": "",
        "thetaPA": "",
        "tradeId": trade_id,
        "uTime": str(p.updated_ms),
        "upl": rounded(upl),
        "uplLastPx": rounded(upl),
        "uplRatio": rounded(upl / initial) if initial else "0",
        "uplRatioLastPx": rounded(upl / initial) if initial else "0",
        "usdPx": "",
        "vegaBS": "",
        "vegaPA": "",
    }


# ---- routes ----------------------------------------------------------------------------


def _refusal(reason: str, m: Market | None, side: str) -> tuple[str, str]:
    if m is not None and m.perpetual and reason == "insufficient":
        return "51008", f"Order failed. Insufficient {m.quote} margin in account"
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
        td_mode = item.get("tdMode")
        if td_mode not in (("cross", "isolated") if m.perpetual else ("cash",)):
            return failed("51000", "Parameter tdMode error")  # spot margin is not modelled
        if m.perpetual and (item.get("posSide") or "net") != "net":
            return failed("51000", "Parameter posSide error")  # net mode: long/short are hedge mode's
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
        # spot market orders: sz is in quote for buys unless tgtCcy says base (okx's default); a swap's is contracts
        tgt = item.get("tgtCcy") or ("quote_ccy" if side == "buy" else "base_ccy")
        by_quote = ord_type == "market" and tgt == "quote_ccy" and not m.perpetual
        tif = {"limit": "GTC", "ioc": "IOC", "fok": "FOK", "market": "GTC"}[ord_type]
        if m.perpetual and fx.margin_mode.get(m.symbol) != td_mode:
            try:  # okx: a position in this margin mode; the engine: the symbol switches while it is free
                switch_mode(fx, m.symbol, td_mode)
            except Refused:
                return failed(FAKE_MIXED_MODES, f"fake exchange: okx would open a {td_mode} position on {inst_id(m)} next to "
                                                f"the {fx.margin_mode.get(m.symbol)} one; the fake holds one position per instrument")
        try:
            o = fx.place(
                m.symbol, side, "market" if ord_type == "market" else "limit", None if by_quote else sz,
                None if ord_type == "market" else px, client_id, tif, sz if by_quote else None, check_min_cost=False,
            )
        except Refused as refused:
            if refused.reason == "reject":
                return failed(str(refused.code), str(refused.msg))
            return failed(*_refusal(refused.reason, m, side))
        if m.perpetual:
            okx_state(fx).orders[o.id] = (td_mode, fx.leverage.get(m.symbol, DEFAULT_LEVERAGE))
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

    def render(o: Order, m: Market) -> dict:
        return _order(o, m, *order_mode(fx, o))

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
        return ok([render(o, m)])

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

    def of_type(params: Params) -> str | None:
        """instType, if named: SPOT, MARGIN, SWAP, FUTURES or OPTION (the fake has SPOT and SWAP)."""
        kind = params.get("instType") or None
        if kind is not None and kind not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
            raise Reply("51000", "Parameter instType error", 400)
        return kind

    def listed(params: Params, finished: bool) -> list[dict]:
        kind, m = of_type(params), _market(fx, params.get("instId"), required=False)
        markets = {x.symbol: x for x in fx.market_list()}
        chosen = [
            o for o in fx.orders(m.symbol if m else None)
            if (o.status != "open") == finished and kind in (None, inst_type(markets[o.symbol]))
        ]
        limit = min(int(params.get("limit") or 100), 100)
        after, before = _ord_id(params.get("after")), _ord_id(params.get("before"))  # older than / newer than an ordId
        chosen = [o for o in chosen if (after is None or o.id < after) and (before is None or o.id > before)]
        return [render(o, markets[o.symbol]) for o in reversed(chosen)][:limit]

    async def orders_pending(request: web.Request, params: Params) -> web.Response:
        return ok(listed(params, finished=False))  # no instType: every type's open orders

    async def orders_history(request: web.Request, params: Params) -> web.Response:
        if not params.get("instType"):
            raise Reply("50014", "Parameter instType can not be empty.", 400)
        return ok(listed(params, finished=True))

    async def fills(request: web.Request, params: Params) -> web.Response:
        kind, m = of_type(params), _market(fx, params.get("instId"), required=False)
        order_id = _ord_id(params.get("ordId"))
        markets = {x.symbol: x for x in fx.market_list()}
        rows = [
            _fill(t, o, markets[o.symbol])
            for o in fx.orders(m.symbol if m else None)
            for t in o.trades
            if (order_id is None or o.id == order_id) and kind in (None, inst_type(markets[o.symbol]))
        ]
        rows.sort(key=lambda r: int(r["tradeId"]), reverse=True)
        return ok(rows[: int(params.get("limit") or 100)])

    async def balance(request: web.Request, params: Params) -> web.Response:
        wanted = set(filter(None, str(params.get("ccy", "")).split(",")))
        prices = {m.base: m.price for m in fx.market_list() if m.quote in ("USDT", "USDC", "USD")}
        now = str(fx.now_ms())
        markets = {m.symbol: m for m in fx.market_list()}
        order_frozen: dict[str, Decimal] = {}  # what open orders hold (a swap's: margin in the quote)
        for o in fx.orders(status="open"):
            m = markets[o.symbol]
            ccy = m.quote if o.side == "buy" or m.perpetual else m.base
            order_frozen[ccy] = order_frozen.get(ccy, Decimal(0)) + o.locked
        isolated: dict[str, Decimal] = {}  # isolated positions' margin
        for pos in fx.positions():
            if fx.margin_mode.get(pos.symbol) == "isolated":
                ccy = markets[pos.symbol].quote
                isolated[ccy] = isolated.get(ccy, Decimal(0)) + pos.margin
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
                    "frozenBal": fmt(b["used"]), "imr": "", "interest": "", "isoEq": fmt(isolated.get(ccy, 0)), "isoLiab": "",
                    "isoUpl": "", "liab": "", "maxLoan": "", "mgnRatio": "", "mmr": "", "notionalLever": "",
                    "ordFrozen": fmt(order_frozen.get(ccy, 0)),
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
        kind = of_type(params)
        if kind is None:
            raise Reply("50014", "Parameter instType can not be empty.", 400)
        chosen = [m for m in fx.market_list() if inst_type(m) == kind]  # the fake has spot pairs and swaps only
        return ok([_instrument(m) for m in chosen if params.get("instId") in (None, inst_id(m))])

    async def ticker(request: web.Request, params: Params) -> web.Response:
        return ok([_ticker(_market(fx, params.get("instId")), fx.now_ms())])

    async def tickers(request: web.Request, params: Params) -> web.Response:
        kind = of_type(params)
        if kind is None:
            raise Reply("50014", "Parameter instType can not be empty.", 400)
        return ok([_ticker(m, fx.now_ms()) for m in fx.market_list() if inst_type(m) == kind])

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

    # ---- the account: positions, leverage, configuration ----------------------------------

    def swap(inst: str | None) -> Market:
        m = _market(fx, inst)
        if not m.perpetual:
            raise Reply("51000", "Parameter instId error", 400)  # spot margin leverage is not modelled
        return m

    async def positions(request: web.Request, params: Params) -> web.Response:
        kind = of_type(params)
        if kind == "SPOT":
            raise Reply("51000", "Parameter instType error", 400)
        ids = [i for i in str(params.get("instId") or "").split(",") if i]
        if len(ids) > 10:
            raise Reply("51000", "Parameter instId error", 400)
        wanted = {_market(fx, i).symbol for i in ids}
        if kind not in (None, "SWAP"):
            return ok([])
        free = {ccy: b["free"] for ccy, b in fx.balance_snapshot().items()}
        rows = []
        for pos in sorted(fx.positions(), key=lambda x: x.updated_ms, reverse=True):  # newest first
            if wanted and pos.symbol not in wanted:
                continue
            m = fx.market(pos.symbol)
            mode = fx.margin_mode.get(pos.symbol, "cross")
            trades = fx.trades(pos.symbol)
            rows.append(_position(pos, m, mode, leverage_of(fx, pos.symbol, mode), free.get(m.quote, Decimal(0)),
                                  str(trades[-1].id) if trades else ""))
        return ok(rows)

    async def set_leverage(request: web.Request, params: Params) -> web.Response:
        body = params["body"]
        if not isinstance(body, dict):
            raise Reply("50002", "Json data format error.", 400)
        if not body.get("instId"):
            raise Reply("50014", "Parameter instId can not be empty.", 400)
        m = swap(body.get("instId"))
        mode = body.get("mgnMode")
        if mode not in ("cross", "isolated"):
            raise Reply("51000", "Parameter mgnMode error", 400)
        try:
            lever = Decimal(str(body.get("lever")))
        except InvalidOperation:
            raise Reply("51000", "Parameter lever error", 400) from None
        if not lever.is_finite() or lever < 1 or lever != lever.to_integral_value():
            raise Reply("51000", "Parameter lever error", 400)  # okx takes decimals too; the engine's are whole
        if lever > MAX_LEVERAGE:
            raise Reply("59102", "Leverage exceeds the maximum leverage. Please adjust the leverage")
        if mode == "isolated" and (body.get("posSide") or "net") != "net":
            raise Reply("51000", "Parameter posSide error", 400)  # net mode: long/short are hedge mode's
        if any(order_mode(fx, o)[0] == mode for o in fx.orders(m.symbol, "open")):
            # refused even when the leverage would not change; a position alone does not block it
            if mode == "isolated":
                raise Reply("59000", "Setting failed. Cancel any open orders, close positions, and stop trading bots first.")
            raise Reply("59107", "Leverage can't be modified. Please cancel all pending cross margin orders before adjusting the leverage.")
        try:
            switch_mode(fx, m.symbol, mode)  # a flat symbol without orders: its next orders are this mode's
            fx.set_leverage(m.symbol, int(lever))
        except Refused:  # a position or orders in the other mode: okx keeps this mode's leverage for its own position
            okx_state(fx).other_leverage[(m.symbol, mode)] = int(lever)
        return ok([{"instId": inst_id(m), "lever": fmt(lever), "mgnMode": mode, "posSide": "net" if mode == "isolated" else ""}])

    async def leverage_info(request: web.Request, params: Params) -> web.Response:
        mode = params.get("mgnMode")
        if not params.get("instId"):
            raise Reply("50014", "Parameter instId can not be empty.", 400)
        if not mode:
            raise Reply("50014", "Parameter mgnMode can not be empty.", 400)
        if mode not in ("cross", "isolated"):
            raise Reply("51000", "Parameter mgnMode error", 400)
        rows = []
        for inst in str(params["instId"]).split(","):
            m = swap(inst)
            rows.append({"ccy": "", "instId": inst_id(m), "lever": fmt(leverage_of(fx, m.symbol, mode)), "mgnMode": mode,
                         "posSide": "net" if mode == "isolated" else ""})
        return ok(rows)

    async def account_config(request: web.Request, params: Params) -> web.Response:
        return ok(
            [
                {
                    "acctLv": "2", "acctStpMode": "cancel_maker", "autoLoan": False, "ctIsoMode": "automatic",
                    "enableSpotBorrow": False, "feeType": "0", "greeksType": "PA", "ip": "", "kycLv": "2", "label": "fake",
                    "level": "Lv1", "levelTmp": "", "liquidationGear": "-1", "mainUid": "44705892343619584",
                    "mgnIsoMode": "automatic", "opAuth": "0", "perm": "read_only,trade", "posMode": "net_mode",
                    "roleType": "0", "settleCcy": "USDT", "settleCcyList": ["USD", "USDC", "USDG"], "spotBorrowAutoRepay": False,
                    "spotOffsetType": "", "spotRoleType": "0", "spotTraderInsts": [], "stgyType": "0", "traderInsts": [],
                    "type": "0", "uid": "44705892343619584",
                }
            ]
        )

    async def set_position_mode(request: web.Request, params: Params) -> web.Response:
        body = params["body"] if isinstance(params["body"], dict) else {}
        mode = body.get("posMode")
        if mode not in ("net_mode", "long_short_mode"):
            raise Reply("51000", "Parameter posMode error", 400)
        if mode == "long_short_mode":
            if fx.positions() or any(fx.markets[o.symbol].perpetual for o in fx.orders(status="open")):
                raise Reply("59000", "Setting failed. Cancel any open orders, close positions, and stop trading bots first.")
            raise Reply(FAKE_MIXED_MODES, "fake exchange: long_short_mode (hedge mode) is not modelled")
        return ok([{"posMode": mode}])

    return [
        web.get("/api/v5/public/time", _public(server_time)),
        web.get("/api/v5/public/instruments", _public(instruments)),
        web.get("/api/v5/market/ticker", _public(ticker)),
        web.get("/api/v5/market/tickers", _public(tickers)),
        web.get("/api/v5/market/books", _public(books)),
        web.get("/api/v5/market/candles", _public(market_candles)),
        web.get("/api/v5/market/history-candles", _public(market_candles)),
        web.get("/api/v5/account/balance", private(balance)),
        web.get("/api/v5/account/positions", private(positions)),
        web.get("/api/v5/account/config", private(account_config)),
        web.get("/api/v5/account/leverage-info", private(leverage_info)),
        web.post("/api/v5/account/set-leverage", private(set_leverage)),
        web.post("/api/v5/account/set-position-mode", private(set_position_mode)),
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
