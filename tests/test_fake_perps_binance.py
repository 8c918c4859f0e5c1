"""binance USD-M linear perpetuals on the local fake exchange (tests/fake_exchange/binance.py),
through a real ccxt 4.5.90 async client: markets, margin mode and leverage, orders found and
cancelled by client id, open orders of the whole account, positions, and every failure as the
exception ccxt raises for it.

ccxt chooses binance's futures-only error table by the request's host. `point_at` (which the
client here uses, as deskgate does for any `api_url`) makes that choice on binance's own URL, so
for the codes only that table knows (-2019, -4164, -4116, -2022, -5022) the tests assert that
ccxt raises here what it raises for the very same answer from fapi.binance.com (`on_binance`)."""

from __future__ import annotations

import json

import ccxt
import ccxt.async_support as ccxt_async
import pytest
from ccxt.test.exchange.base.test_market import test_market as check_market
from ccxt.test.exchange.base.test_order import test_order as check_order
from ccxt.test.exchange.base.test_position import test_position as check_position
from ccxt.test.exchange.base.test_ticker import test_ticker as check_ticker
from ccxt.test.exchange.base.test_trade import test_trade as check_trade

from deskgate.execution.ccxt_endpoint import point_at
from fake_exchange import Behaviour, FakeExchange, ccxt_client, raised

SPOT = "BTC/USDT"
PERP = "BTC/USDT:USDT"
ETH_PERP = "ETH/USDT:USDT"  # minimum quantity above its step, so -4004 can be reached through ccxt
REAL_FAPI_ORDER = "https://fapi.binance.com/fapi/v1/order"


@pytest.fixture
def fx():
    fake = FakeExchange("binance", api_key="test-key", secret="test-secret")
    fake.add_market(SPOT, price=65_000.0, amount_step=0.00001, price_tick=0.01, min_amount=0.0001, min_cost=5.0)
    fake.add_perpetual(PERP, price=65_000.0, amount_step=0.001, price_tick=0.1, min_amount=0.001, min_cost=100.0)
    fake.add_perpetual(ETH_PERP, price=3_000.0, amount_step=0.001, price_tick=0.01, min_amount=0.01, min_cost=20.0)
    fake.set_balance("USDT", 100_000.0)
    fake.start()
    yield fake
    fake.stop()


def perp_client(fx: FakeExchange, **credentials) -> ccxt_async.Exchange:
    """`ccxt_client` with binance's USD-M markets listed too ("linear"), defaultType still spot,
    and the open-orders-without-symbol warning off (as deskgate's make_exchange sets it)."""
    exchange = ccxt_client(fx, perpetuals=True, **credentials)
    exchange.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
    return exchange


@pytest.fixture
async def ex(fx: FakeExchange):
    exchange = perp_client(fx)
    await exchange.load_markets(True)
    yield exchange
    await exchange.close()



def on_binance(ex, error: BaseException, url: str = REAL_FAPI_ORDER) -> type:
    """The exception class ccxt raises for the same answer when it comes from binance's own
    futures host (ccxt picks its futures error table by the URL)."""
    text = str(error)
    body = text[text.index("{"):]
    with pytest.raises(Exception) as info:
        ex.handle_errors(400, "Bad Request", url, "POST", {}, body, json.loads(body), {}, "")
    return type(info.value)


def validate_order(ex, order: dict, method: str, symbol: str = PERP) -> None:
    check_order(ex, {}, method, order, symbol, ex.milliseconds())


def paths(fx: FakeExchange, since: int = 0) -> list[tuple[str, str]]:
    return fx.requests[since:]


async def isolated(ex, leverage: int = 10, symbol: str = PERP) -> None:
    """What deskgate's prepare() does before a perpetual order."""
    await ex.set_margin_mode("isolated", symbol)
    await ex.set_leverage(leverage, symbol)


# ---- 1. markets ------------------------------------------------------------------------------


async def test_load_markets_lists_the_spot_market_and_the_linear_perpetual(fx: FakeExchange, ex) -> None:
    assert sorted(fx.requests) == [("GET", "/api/v3/exchangeInfo"), ("GET", "/fapi/v1/exchangeInfo")]
    spot, perp = ex.market(SPOT), ex.market(PERP)
    for market in (spot, perp, ex.market(ETH_PERP)):
        check_market(ex, {}, "loadMarkets", market)
    assert spot["spot"] and not spot["contract"] and spot["id"] == "BTCUSDT"
    assert perp["id"] == "BTCUSDT" and perp["type"] == "swap" and perp["swap"] and perp["contract"]
    assert (perp["linear"], perp["inverse"], perp["settle"], perp["subType"]) == (True, False, "USDT", "linear")
    assert perp["contractSize"] == 1.0 and perp["expiry"] is None and perp["active"]
    assert (perp["precision"]["amount"], perp["precision"]["price"]) == (0.001, 0.1)  # LOT_SIZE stepSize, tickSize
    assert perp["limits"]["amount"]["min"] == 0.001 and perp["limits"]["cost"]["min"] == 100.0  # MIN_NOTIONAL
    assert perp["marginModes"] == {"cross": True, "isolated": True}
    assert ex.market(ETH_PERP)["limits"]["amount"]["min"] == 0.01
    assert sorted(m["symbol"] for m in ex.markets_by_id["BTCUSDT"]) == [SPOT, PERP]  # one id, two markets
    assert not any(m["spot"] for m in ex.markets.values() if m["symbol"] == ETH_PERP)

    since = len(fx.requests)
    ticker = await ex.fetch_ticker(PERP)
    check_ticker(ex, {}, "fetchTicker", ticker, PERP)
    assert ticker["last"] == 65_000.0 and ticker["symbol"] == PERP
    candles = await ex.fetch_ohlcv(PERP, "1m", limit=5)
    assert len(candles) == 5 and candles[-1][4] == 65_000.0
    assert paths(fx, since) == [("GET", "/fapi/v1/ticker/24hr"), ("GET", "/fapi/v1/klines")]
    assert (await ex.fetch_ticker(SPOT))["symbol"] == SPOT and fx.requests[-1] == ("GET", "/api/v3/ticker/24hr")


async def test_a_perpetual_with_another_contract_size_is_refused() -> None:
    """binance USD-M counts in the base asset; the fake will not pretend otherwise."""
    fake = FakeExchange("binance")
    fake.add_perpetual(PERP, price=65_000.0, contract_size=0.01)
    fake.start()
    exchange = perp_client(fake)
    try:
        assert type(await raised(exchange.load_markets(True))) is ccxt.ExchangeNotAvailable  # HTTP 500
    finally:
        await exchange.close()
        fake.stop()


# ---- 2. margin mode and leverage -----------------------------------------------------------


async def test_margin_mode_and_leverage_are_set_and_answer_again_when_unchanged(fx: FakeExchange, ex) -> None:
    assert fx.margin_mode[PERP] == "cross" and fx.leverage[PERP] == 20  # binance's defaults
    since = len(fx.requests)
    assert await ex.set_margin_mode("isolated", PERP) == {"code": 200, "msg": "success"}
    assert fx.margin_mode[PERP] == "isolated" and paths(fx, since) == [("POST", "/fapi/v1/marginType")]

    # unchanged: binance answers -4046, which ccxt raises as MarginModeAlreadySet by default ...
    error = await raised(ex.set_margin_mode("isolated", PERP))
    assert type(error) is ccxt.MarginModeAlreadySet and '"code":-4046' in str(error)
    assert isinstance(error, ccxt.OperationRejected) and not isinstance(error, ccxt.InvalidOrder)
    # ... and returns as an answer when told not to
    ex.options["setMarginMode"]["throwMarginModeAlreadySet"] = False
    assert await ex.set_margin_mode("isolated", PERP) == {"code": -4046, "msg": "No need to change margin type."}

    since = len(fx.requests)
    answer = await ex.set_leverage(5, PERP)
    assert answer == {"leverage": 5, "maxNotionalValue": "480000000", "symbol": "BTCUSDT"} and fx.leverage[PERP] == 5
    assert await ex.set_leverage(5, PERP) == answer  # the same leverage again: the same answer
    assert paths(fx, since) == [("POST", "/fapi/v1/leverage")] * 2

    margin_mode, leverage = await ex.fetch_margin_mode(PERP), await ex.fetch_leverage(PERP)  # GET /fapi/v1/symbolConfig
    assert margin_mode["marginMode"] == "isolated" and margin_mode["info"]["marginType"] == "ISOLATED"
    assert (leverage["marginMode"], leverage["longLeverage"], leverage["shortLeverage"]) == ("isolated", 5, 5)
    assert fx.margin_mode[ETH_PERP] == "cross" and fx.leverage[ETH_PERP] == 20  # per symbol

    since = len(fx.requests)
    for bad in (0, 126):  # ccxt refuses before asking
        assert type(await raised(ex.set_leverage(bad, PERP))) is ccxt.BadRequest
    assert paths(fx, since) == [] and fx.leverage[PERP] == 5


async def test_margin_mode_cannot_change_with_an_open_order_or_a_position(fx: FakeExchange, ex) -> None:
    await isolated(ex, 10)
    await ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "busy1", "timeInForce": "GTC"})
    error = await raised(ex.set_margin_mode("cross", PERP))
    assert type(error) is ccxt.OperationRejected and '"code":-4047' in str(error)
    assert "open orders" in str(error) and on_binance(ex, error) is ccxt.OperationRejected
    await ex.cancel_order(None, PERP, {"clientOrderId": "busy1"})

    fx.set_position(PERP, 0.01, 65_000.0)
    error = await raised(ex.set_margin_mode("cross", PERP))
    assert type(error) is ccxt.OperationRejected and '"code":-4048' in str(error)
    assert "exists position" in str(error) and on_binance(ex, error) is ccxt.OperationRejected
    assert fx.margin_mode[PERP] == "isolated"
    # the same mode is still "no need to change", position or not
    assert type(await raised(ex.set_margin_mode("isolated", PERP))) is ccxt.MarginModeAlreadySet

    # with an isolated position, leverage may go up but not down: -4161, which no ccxt table names
    assert (await ex.set_leverage(12, PERP))["leverage"] == 12
    error = await raised(ex.set_leverage(3, PERP))
    assert type(error) is ccxt.ExchangeError and '"code":-4161' in str(error)
    assert on_binance(ex, error) is ccxt.ExchangeError and fx.leverage[PERP] == 12
    assert (await ex.set_leverage(12, PERP))["leverage"] == 12  # unchanged is fine


async def test_the_account_is_in_one_way_position_mode(fx: FakeExchange, ex) -> None:
    mode = await ex.fetch_position_mode(PERP)
    assert mode["hedged"] is False and fx.requests[-1] == ("GET", "/fapi/v1/positionSide/dual")
    error = await raised(ex.set_position_mode(False, PERP))
    assert type(error) is ccxt.OperationRejected and '"code":-4059' in str(error)
    await ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "mode1"})
    error = await raised(ex.set_position_mode(True, PERP))
    assert type(error) is ccxt.OperationRejected and '"code":-4067' in str(error)
    # a hedge-mode order on a one-way account
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"positionSide": "LONG"}))
    assert type(error) is ccxt.OperationRejected and '"code":-4061' in str(error)
    assert (await ex.fetch_position_mode(PERP))["hedged"] is False


# ---- 3. orders ------------------------------------------------------------------------------


async def test_a_crossing_limit_order_fills_and_opens_an_isolated_position(fx: FakeExchange, ex) -> None:
    await isolated(ex, 10)
    since = len(fx.requests)
    placed = await ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "perp-fill1", "timeInForce": "GTC"})
    assert paths(fx, since) == [("POST", "/fapi/v1/order")]
    validate_order(ex, placed, "createOrder")
    # ccxt sends newOrderRespType=RESULT for futures: the answer is the matched order
    assert (placed["symbol"], placed["clientOrderId"], placed["status"]) == (PERP, "perp-fill1", "closed")
    assert placed["filled"] == placed["amount"] == 0.01 and placed["average"] == 65_000.0
    assert placed["cost"] == 650.0  # cumQuote: base x price (binance's contract is 1 BTC-unit)
    assert placed["fee"] is None and placed["fees"] == [] and placed["trades"] == []  # fapi orders carry no fee
    assert placed["info"]["positionSide"] == "BOTH" and placed["info"]["cumQty"] == "0.010"

    order = await ex.fetch_order(None, PERP, {"clientOrderId": "perp-fill1"})
    validate_order(ex, order, "fetchOrder")
    assert fx.requests[-1] == ("GET", "/fapi/v1/order")
    assert (order["id"], order["status"], order["filled"]) == (placed["id"], "closed", 0.01)
    assert (order["average"], order["cost"]) == (65_000.0, 650.0)
    assert order["fee"] is None and order["timeInForce"] == "GTC" and order["reduceOnly"] is False

    position = fx.position(PERP)
    assert (float(position.contracts), float(position.entry_price), float(position.margin)) == (0.01, 65_000.0, 65.0)
    assert fx.balances["USDT"] == {"free": pytest.approx(100_000 - 65 - 0.325), "used": 65.0}  # margin 650/10, fee 0.05 %

    trades = await ex.fetch_my_trades(PERP, None, None, {"orderId": placed["id"]})  # GET /fapi/v1/userTrades
    assert fx.requests[-1] == ("GET", "/fapi/v1/userTrades")
    assert [(t["amount"], t["price"], t["cost"]) for t in trades] == [(0.01, 65_000.0, 650.0)]
    assert trades[0]["fee"] == {"currency": "USDT", "cost": 0.325}  # the fee is here, not on the order
    check_trade(ex, {}, "fetchMyTrades", trades[0], PERP, ex.milliseconds(), False)

    futures = await ex.fetch_balance({"type": "swap"})  # GET /fapi/v3/account: the same USDT pool (see binance.py)
    assert fx.requests[-1] == ("GET", "/fapi/v3/account")
    assert futures["USDT"] == {"free": pytest.approx(99_934.675), "used": 65.0, "total": pytest.approx(99_999.675)}
    spot = await ex.fetch_balance()
    assert spot["USDT"]["used"] == 65.0 and fx.requests[-1] == ("GET", "/api/v3/account")


async def test_market_orders_and_closing_a_position(fx: FakeExchange, ex) -> None:
    await isolated(ex, 10)
    bought = await ex.create_order(PERP, "market", "buy", 0.02, None, {"clientOrderId": "mkt-1"})
    assert (bought["type"], bought["status"], bought["filled"], bought["average"]) == ("market", "closed", 0.02, 65_000.0)
    fx.set_price(PERP, 66_000.0)
    sold = await ex.create_order(PERP, "market", "sell", 0.02, None, {"clientOrderId": "mkt-2", "reduceOnly": True})
    assert sold["status"] == "closed" and sold["reduceOnly"] is True and sold["cost"] == 1_320.0
    assert fx.position(PERP).contracts == 0 and await ex.fetch_positions([PERP]) == []
    fees = 1_300 * 0.0005 + 1_320 * 0.0005
    assert fx.balances["USDT"] == {"free": pytest.approx(100_000 + 20 - fees), "used": 0.0}


async def test_partial_fill_rests_and_is_listed_only_by_the_futures_open_orders(fx: FakeExchange, ex) -> None:
    await isolated(ex, 10)
    fx.next_orders.append(Behaviour.partial(0.4))
    await ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "perp-part1", "timeInForce": "GTC"})
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "perp-part1"})
    validate_order(ex, order, "fetchOrder")
    assert order["status"] == "open" and order["filled"] == 0.004 and order["remaining"] == 0.006
    assert fx.balances["USDT"]["used"] == pytest.approx(0.006 * 65_100 / 10 + 0.004 * 65_000 / 10)
    await ex.create_order(SPOT, "limit", "buy", 0.001, 60_000.0, {"clientOrderId": "spot-rest1"})

    since = len(fx.requests)
    by_symbol = await ex.fetch_open_orders(PERP)
    assert [o["clientOrderId"] for o in by_symbol] == ["perp-part1"] and by_symbol[0]["symbol"] == PERP
    validate_order(ex, by_symbol[0], "fetchOpenOrders")
    # the whole account: ccxt's default type is spot, so one call per API
    assert [o["clientOrderId"] for o in await ex.fetch_open_orders()] == ["spot-rest1"]
    assert [o["clientOrderId"] for o in await ex.fetch_open_orders(None, None, None, {"type": "swap"})] == ["perp-part1"]
    assert [o["clientOrderId"] for o in await ex.fetch_open_orders(None, None, None, {"subType": "linear"})] == ["perp-part1"]
    assert paths(fx, since) == [("GET", "/fapi/v1/openOrders"), ("GET", "/api/v3/openOrders")] + [("GET", "/fapi/v1/openOrders")] * 2
    assert [o["clientOrderId"] for o in await ex.fetch_open_orders(SPOT)] == ["spot-rest1"]

    fx.fill_open("perp-part1")
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "perp-part1"})
    assert order["status"] == "closed" and order["filled"] == 0.01
    assert order["average"] == pytest.approx(65_060.0)  # 0.004 at 65 000, 0.006 at its limit
    assert await ex.fetch_open_orders(None, None, None, {"type": "swap"}) == []


async def test_resting_order_fills_at_its_limit_when_the_mark_moves(fx: FakeExchange, ex) -> None:
    await isolated(ex, 10)
    await ex.create_order(PERP, "limit", "sell", 0.01, 65_500.0, {"clientOrderId": "perp-rest1"})
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "perp-rest1"})
    assert order["status"] == "open" and order["average"] is None and order["info"]["avgPrice"] == "0.00000000"
    assert fx.balances["USDT"] == {"free": 100_000 - 65.5, "used": 65.5}
    fx.set_price(PERP, 65_600.0)
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "perp-rest1"})
    assert order["status"] == "closed" and order["average"] == 65_500.0 and order["side"] == "sell"
    assert float(fx.position(PERP).contracts) == -0.01


# ---- 4. cancel and look up by client id ---------------------------------------------------------


async def test_cancel_by_client_id_and_unknown_ids(fx: FakeExchange, ex) -> None:
    await isolated(ex, 10)
    fx.next_orders.append(Behaviour.rest())  # crosses, yet stays open
    placed = await ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "perp-cxl1", "timeInForce": "GTC"})
    assert placed["status"] == "open" and fx.balances["USDT"]["used"] == 65.1
    since = len(fx.requests)
    canceled = await ex.cancel_order(None, PERP, {"clientOrderId": "perp-cxl1"})  # DELETE ...origClientOrderId=
    assert paths(fx, since) == [("DELETE", "/fapi/v1/order")]
    # unlike spot, the futures cancel answer carries the order's own client id
    assert (canceled["id"], canceled["clientOrderId"], canceled["status"]) == (placed["id"], "perp-cxl1", "canceled")
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "perp-cxl1"})
    validate_order(ex, order, "fetchOrder")
    assert order["status"] == "canceled" and order["filled"] == 0 and order["cost"] == 0
    assert fx.balances["USDT"] == {"free": 100_000.0, "used": 0.0}

    error = await raised(ex.cancel_order(None, PERP, {"clientOrderId": "perp-cxl1"}))  # no longer open: -2011
    assert type(error) is ccxt.OrderNotFound and on_binance(ex, error) is ccxt.OrderNotFound
    error = await raised(ex.fetch_order(None, PERP, {"clientOrderId": "nope"}))  # -2013
    assert type(error) is ccxt.OrderNotFound and on_binance(ex, error) is ccxt.OrderNotFound
    assert type(await raised(ex.cancel_order(None, PERP, {"clientOrderId": "nope"}))) is ccxt.OrderNotFound
    # a spot order with that id is not the perpetual's, and the other way round
    await ex.create_order(SPOT, "limit", "buy", 0.001, 60_000.0, {"clientOrderId": "spot-only"})
    assert type(await raised(ex.fetch_order(None, PERP, {"clientOrderId": "spot-only"}))) is ccxt.OrderNotFound
    assert type(await raised(ex.fetch_order(None, SPOT, {"clientOrderId": "perp-cxl1"}))) is ccxt.OrderNotFound

    await ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "perp-exp1"})
    fx.expire("perp-exp1")
    assert (await ex.fetch_order(None, PERP, {"clientOrderId": "perp-exp1"}))["status"] == "expired"
    await ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "perp-ioc1", "timeInForce": "IOC"})
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "perp-ioc1"})
    assert (order["status"], order["timeInForce"], order["filled"]) == ("expired", "IOC", 0.0)


async def test_a_client_id_is_refused_while_open_and_found_newest_once_reused(fx: FakeExchange, ex) -> None:
    await isolated(ex, 10)
    await ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "perp-dup1"})
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "perp-dup1"}))
    assert type(error) is ccxt.InvalidOrder and '"code":-4116' in str(error) and "duplicated" in str(error)
    assert on_binance(ex, error) is ccxt.InvalidOrder
    assert len(fx.orders_for("perp-dup1")) == 1
    fx.fill_open("perp-dup1")
    again = await ex.create_order(PERP, "limit", "buy", 0.02, 64_000.0, {"clientOrderId": "perp-dup1"})
    newest = await ex.fetch_order(None, PERP, {"clientOrderId": "perp-dup1"})
    assert newest["id"] == again["id"] and newest["amount"] == 0.02 and newest["status"] == "open"


# ---- 3. refusals ------------------------------------------------------------------------------


async def test_insufficient_margin_and_below_minimum_refusals(fx: FakeExchange, ex) -> None:
    await isolated(ex, 1)
    error = await raised(ex.create_order(PERP, "limit", "buy", 2, 65_000.0, {"clientOrderId": "big1"}))  # 130 000 at 1x
    assert type(error) is ccxt.InsufficientFunds and '{"code":-2019,"msg":"Margin is insufficient."}' in str(error)
    assert on_binance(ex, error) is ccxt.InsufficientFunds
    await ex.set_leverage(2, PERP)
    await ex.create_order(PERP, "limit", "buy", 2, 65_000.0, {"clientOrderId": "big2"})  # 65 000 at 2x
    assert fx.balances["USDT"]["used"] == 65_000.0

    error = await raised(ex.create_order(PERP, "limit", "buy", 0.001, 65_000.0))  # 65 USDT < MIN_NOTIONAL 100
    assert type(error) is ccxt.InvalidOrder and '"code":-4164' in str(error)
    assert "Order's notional must be no smaller than 100 (unless you choose reduce only)." in str(error)
    assert on_binance(ex, error) is ccxt.InvalidOrder

    error = await raised(ex.create_order(ETH_PERP, "limit", "buy", 0.005, 3_000.0))  # on the step, under minQty 0.01
    assert type(error) is ccxt.BadRequest and '"code":-4004' in str(error) and on_binance(ex, error) is ccxt.BadRequest
    # ccxt truncates to the step before sending: under one step it refuses by itself
    assert type(await raised(ex.create_order(PERP, "limit", "buy", 0.0004, 65_000.0))) is ccxt.InvalidOrder

    # PERCENT_PRICE: within 5 % of the mark
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.01, 70_000.0))
    assert type(error) is ccxt.BadRequest and "Limit price can't be higher than 68250.0." in str(error)
    error = await raised(ex.create_order(PERP, "limit", "sell", 0.01, 60_000.0))
    assert type(error) is ccxt.BadRequest and "Limit price can't be lower than 61750.1." in str(error)
    assert on_binance(ex, error) is ccxt.BadRequest
    assert [o["client_id"] for o in fx.placed] == ["big2"]


async def test_reduce_only_and_post_only_refusals(fx: FakeExchange, ex) -> None:
    await isolated(ex, 10)
    error = await raised(ex.create_order(PERP, "limit", "sell", 0.01, 65_000.0, {"reduceOnly": True}))  # nothing to reduce
    assert type(error) is ccxt.InvalidOrder and '"code":-2022' in str(error) and on_binance(ex, error) is ccxt.InvalidOrder
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"postOnly": True}))  # GTX that would cross
    assert type(error) is ccxt.OrderNotFillable and '"code":-5022' in str(error) and on_binance(ex, error) is ccxt.OrderNotFillable
    resting = await ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"postOnly": True, "clientOrderId": "po1"})
    assert resting["status"] == "open" and resting["postOnly"] is True and resting["timeInForce"] == "PO"
    assert [o["client_id"] for o in fx.placed] == ["po1"]


REJECTIONS = [
    (Behaviour.reject(-2019, "Margin is insufficient."), ccxt.InsufficientFunds, ccxt.InsufficientFunds),
    (Behaviour.reject(-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit."),
     ccxt.OperationRejected, ccxt.OperationRejected),
    (Behaviour.reject(-1008, "Server is currently overloaded with other requests. Please try again in a few minutes."),
     ccxt.OperationFailed, ccxt.OperationFailed),
]


@pytest.mark.parametrize("behaviour, here, there", REJECTIONS)
async def test_rejected_behaviour_answers_with_the_venue_error(fx: FakeExchange, ex, behaviour, here, there) -> None:
    fx.next_orders.append(behaviour)
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.01, 65_000.0, {"clientOrderId": "rej1"}))
    assert type(error) is here and behaviour.msg in str(error) and on_binance(ex, error) is there
    assert fx.orders_for("rej1") == [] and not fx.next_orders


# ---- 6. positions -----------------------------------------------------------------------------


async def test_positions_through_position_risk_v3_by_default_and_v2_for_leverage(fx: FakeExchange, ex) -> None:
    assert await ex.fetch_positions([PERP]) == []
    await isolated(ex, 10)
    await ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "pos1"})
    await ex.create_order(ETH_PERP, "limit", "buy", 0.01, 2_900.0, {"clientOrderId": "eth-rest"})  # an order, no position

    since = len(fx.requests)
    positions = await ex.fetch_positions([PERP])  # GET /fapi/v3/positionRisk (brackets were read by the first call)
    assert paths(fx, since) == [("GET", "/fapi/v3/positionRisk")]
    assert ("GET", "/fapi/v1/leverageBracket") in fx.requests and fx.requests.count(("GET", "/fapi/v1/leverageBracket")) == 1
    assert len(positions) == 1
    p = positions[0]
    check_position(ex, {"leverage": True}, "fetchPositions", p, PERP, ex.milliseconds())
    assert (p["symbol"], p["contracts"], p["contractSize"], p["side"], p["entryPrice"]) == (PERP, 0.01, 1.0, "long", 65_000.0)
    assert (p["marginMode"], p["notional"], p["markPrice"], p["hedged"]) == ("isolated", 650.0, 65_000.0, False)
    assert p["leverage"] is None and p["initialMarginPercentage"] == 0.1  # v3 has no leverage field
    assert p["collateral"] == p["positionMargin"] == 65.0 and p["maintenanceMargin"] == 2.6  # 650 x 0.4 %
    assert 58_000 < p["liquidationPrice"] < 59_000
    assert [x["symbol"] for x in await ex.fetch_positions()] == [PERP]  # every symbol; ETH's order makes no position

    since = len(fx.requests)
    v2 = await ex.fetch_positions([PERP], {"useV2": True})
    assert paths(fx, since) == [("GET", "/fapi/v2/positionRisk")]
    check_position(ex, {}, "fetchPositions", v2[0], PERP, ex.milliseconds())
    assert (v2[0]["leverage"], v2[0]["marginMode"], v2[0]["contracts"], v2[0]["entryPrice"]) == (10.0, "isolated", 0.01, 65_000.0)
    assert v2[0]["info"]["marginType"] == "isolated"

    account = await ex.fetch_positions(None, {"method": "account"})  # GET /fapi/v3/account
    assert fx.requests[-1] == ("GET", "/fapi/v3/account")
    held = [(a["symbol"], a["contracts"], a["side"], a["marginMode"]) for a in account if a["contracts"]]
    assert held == [(PERP, 0.01, "long", "isolated")]

    fx.set_price(PERP, 66_000.0)
    p = (await ex.fetch_positions([PERP]))[0]
    assert (p["markPrice"], p["notional"], p["unrealizedPnl"], p["collateral"]) == (66_000.0, 660.0, 10.0, 75.0)
    check_position(ex, {"leverage": True}, "fetchPositions", p, PERP, ex.milliseconds())


async def test_a_short_and_a_cross_position(fx: FakeExchange, ex) -> None:
    await isolated(ex, 10)
    await ex.create_order(PERP, "limit", "sell", 0.01, 64_900.0, {"clientOrderId": "short1"})
    p = (await ex.fetch_positions([PERP], {"useV2": True}))[0]
    check_position(ex, {}, "fetchPositions", p, PERP, ex.milliseconds())
    assert (p["side"], p["contracts"], p["notional"], p["info"]["positionAmt"]) == ("short", 0.01, 650.0, "-0.010")
    assert p["liquidationPrice"] > p["entryPrice"]

    fx.set_position(ETH_PERP, 2.0, 3_000.0)  # someone traded by hand, in cross margin (the symbol's default)
    eth = (await ex.fetch_positions([ETH_PERP], {"useV2": True}))[0]
    assert (eth["marginMode"], eth["side"], eth["contracts"], eth["leverage"]) == ("cross", "long", 2.0, 20.0)
    assert eth["liquidationPrice"] is None  # a 100 000 USDT cross wallet never liquidates it: binance says 0
    assert {x["symbol"] for x in await ex.fetch_positions()} == {PERP, ETH_PERP}


# ---- 7. signing and venue conditions on the futures API ------------------------------------------


@pytest.mark.parametrize("credentials", [{"secret": "wrong-secret"}, {"api_key": "wrong-key"}])
async def test_futures_endpoints_are_signed_and_checked(fx: FakeExchange, credentials: dict) -> None:
    exchange = perp_client(fx, **credentials)
    try:
        await exchange.load_markets(True)  # public
        for call in (exchange.set_margin_mode("isolated", PERP), exchange.set_leverage(5, PERP), exchange.fetch_positions([PERP]),
                     exchange.create_order(PERP, "limit", "buy", 0.01, 65_000.0), exchange.fetch_open_orders(PERP),
                     exchange.fetch_order(None, PERP, {"clientOrderId": "x"}), exchange.fetch_position_mode(PERP)):
            assert type(await raised(call)) is ccxt.AuthenticationError
        assert fx.placed == [] and fx.margin_mode[PERP] == "cross" and fx.leverage[PERP] == 20
    finally:
        await exchange.close()


async def test_down_rate_limited_skewed_and_garbage_on_the_futures_api(fx: FakeExchange, ex) -> None:
    await isolated(ex, 10)
    fx.down = True
    assert type(await raised(ex.fetch_positions([PERP]))) is ccxt.OperationFailed
    assert type(await raised(ex.create_order(PERP, "limit", "buy", 0.01, 65_000.0))) is ccxt.OperationFailed
    fx.down = False
    fx.rate_limited = True
    assert type(await raised(ex.set_leverage(10, PERP))) is ccxt.DDoSProtection
    fx.rate_limited = False
    fx.clock_skew_ms = 20_000
    assert type(await raised(ex.fetch_open_orders(PERP))) is ccxt.InvalidNonce
    fx.clock_skew_ms = 0

    await ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "junk-pos"})
    assert [p["contracts"] for p in await ex.fetch_positions([PERP])] == [0.01]  # the brackets are read once, then kept
    fx.garbage = 1
    assert await ex.fetch_positions([PERP]) == []  # garbage reads as "no positions", not an error
    fx.garbage = 1
    order = await ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "junk1"})
    assert order["id"] is None and order["status"] is None
    assert [o["status"] for o in fx.orders_for("junk1")] == ["filled"]
    assert (await ex.fetch_order(None, PERP, {"clientOrderId": "junk1"}))["status"] == "closed"
    assert [p["contracts"] for p in await ex.fetch_positions([PERP])] == [0.02]


@pytest.mark.parametrize(
    "behaviour, expected",
    [(Behaviour.timeout(2.0), ccxt.RequestTimeout), (Behaviour.lost(502), ccxt.ExchangeNotAvailable),
     (Behaviour.lost(504), ccxt.RequestTimeout)],
)
async def test_unknown_outcome_leaves_one_order_found_by_client_id(fx: FakeExchange, ex, behaviour, expected) -> None:
    ex.timeout = 500
    fx.next_orders.append(behaviour)
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "slow1"}))
    assert type(error) is expected
    ex.timeout = 10_000
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "slow1"})
    assert order["status"] == "closed" and order["filled"] == 0.01 and len(fx.orders_for("slow1")) == 1


# ---- where requests go -----------------------------------------------------------------------


async def test_sandbox_futures_are_refused_by_ccxt_and_demo_trading_reaches_the_fake(fx: FakeExchange, ex) -> None:
    """set_sandbox_mode points fapi at testnet.binancefuture.com, whose private calls ccxt 4.5.90
    refuses before sending (binance retired the futures testnet for demo trading). point_at
    swaps the host, so through the fake (or an api_url) they go out; demo trading points
    them at demo-fapi.binance.com, which point_at rewrites the same way."""
    testnet = perp_client(fx)
    testnet.markets, testnet.markets_by_id = ex.markets, ex.markets_by_id
    testnet.urls["api"] = dict(testnet.urls["test"])  # sandbox, not pointed at the fake
    demo = ccxt_async.binance({"apiKey": fx.api_key, "secret": fx.secret, "enableRateLimit": False})
    demo.enable_demo_trading(True)
    assert demo.urls["api"]["fapiPrivate"] == "https://demo-fapi.binance.com/fapi/v1"
    point_at(demo, fx.url)
    demo.options["fetchMarkets"] = {"types": ["spot", "linear"]}
    try:
        since = len(fx.requests)
        error = await raised(testnet.set_leverage(5, PERP))
        assert type(error) is ccxt.NotSupported and "not supported for futures anymore" in str(error)
        assert paths(fx, since) == []
        await demo.load_markets(True)
        assert (await demo.set_leverage(5, PERP))["leverage"] == 5 and fx.leverage[PERP] == 5
        assert demo.urls["api"]["fapiPrivate"] == fx.url + "/fapi/v1"
    finally:
        await testnet.close()
        await demo.close()


async def test_spot_keeps_working_next_to_the_perpetual(fx: FakeExchange, ex) -> None:
    placed = await ex.create_order(SPOT, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "spot1"})
    assert placed["symbol"] == SPOT and placed["status"] == "closed" and fx.requests[-1] == ("POST", "/api/v3/order")
    validate_order(ex, placed, "createOrder", SPOT)
    assert placed["fee"] == {"cost": 0.00001, "currency": "BTC"}  # spot's FULL answer has fills
    order = await ex.fetch_order(None, SPOT, {"clientOrderId": "spot1"})
    assert order["symbol"] == SPOT and order["id"] == placed["id"] and order["status"] == "closed"
    assert fx.balances["BTC"]["free"] == 0.00999 and fx.position(PERP).contracts == 0
    await ex.create_order(SPOT, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "spot2"})
    await ex.cancel_order(None, SPOT, {"clientOrderId": "spot2"})
    assert (await ex.fetch_order(None, SPOT, {"clientOrderId": "spot2"}))["status"] == "canceled"
    assert await ex.fetch_open_orders(None, None, None, {"type": "swap"}) == []
