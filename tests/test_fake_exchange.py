"""The local fake exchange (tests/fake_exchange) against real ccxt 4.5.90: everything it
answers parses, passes ccxt's own structure validators, and every failure reaches the
client as the exception ccxt really raises for that venue's payload."""

from __future__ import annotations

import ccxt
import pytest
from ccxt.test.exchange.base.test_balance import test_balance as check_balance
from ccxt.test.exchange.base.test_market import test_market as check_market
from ccxt.test.exchange.base.test_ohlcv import test_ohlcv as check_ohlcv
from ccxt.test.exchange.base.test_order import test_order as check_order
from ccxt.test.exchange.base.test_ticker import test_ticker as check_ticker
from ccxt.test.exchange.base.test_trade import test_trade as check_trade

from fake_exchange import Behaviour, FakeExchange, ccxt_client, raised

SYMBOL = "BTC/USDT"
VENUE_IDS = {"binance": "BTCUSDT", "okx": "BTC-USDT", "bybit": "BTCUSDT"}
# The `fx` fixture runs binance and okx; tests whose calls work unchanged on bybit too say so.
# (bybit's look-ups by client id are other ccxt calls: see the bybit tests below.)
EVERY_VENUE = pytest.mark.parametrize("fx", ["binance", "okx", "bybit"], indirect=True)
BYBIT = pytest.mark.parametrize("fx", ["bybit"], indirect=True)


@pytest.fixture(params=["binance", "okx"])
def fx(request: pytest.FixtureRequest):
    fake = FakeExchange(request.param, api_key="test-key", secret="test-secret", passphrase="test-pass")
    fake.add_market(SYMBOL, price=65_000.0, amount_step=0.00001, price_tick=0.01, min_amount=0.0001, min_cost=5.0)
    fake.set_balance("USDT", 100_000.0)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
async def ex(fx: FakeExchange):
    exchange = ccxt_client(fx)
    await exchange.load_markets()
    yield exchange
    await exchange.close()


def validate_order(ex, order: dict, method: str) -> None:
    check_order(ex, {}, method, order, SYMBOL, ex.milliseconds())


# ---- 1. public data and balance ----------------------------------------------------------


@EVERY_VENUE
async def test_markets_time_ticker_ohlcv_balance_pass_ccxt_validators(fx: FakeExchange, ex) -> None:
    market = ex.market(SYMBOL)
    check_market(ex, {}, "loadMarkets", market)
    assert market["id"] == VENUE_IDS[fx.venue] and market["spot"] and market["active"]
    assert market["precision"] == {**market["precision"], "amount": 0.00001, "price": 0.01}
    assert market["limits"]["amount"]["min"] == 0.0001
    if fx.venue != "okx":  # okx spot instruments carry no minimum notional
        assert market["limits"]["cost"]["min"] == 5.0

    server_time = await ex.fetch_time()
    assert isinstance(server_time, int) and abs(server_time - ex.milliseconds()) < 60_000

    ticker = await ex.fetch_ticker(SYMBOL)
    check_ticker(ex, {}, "fetchTicker", ticker, SYMBOL)
    assert ticker["last"] == 65_000.0 and ticker["bid"] < ticker["last"] < ticker["ask"]

    candles = await ex.fetch_ohlcv(SYMBOL, "1m", limit=5)
    assert len(candles) == 5 and candles[-1][4] == 65_000.0
    for candle in candles:
        check_ohlcv(ex, {}, "fetchOHLCV", candle, SYMBOL, ex.milliseconds())
    hourly = await ex.fetch_ohlcv(SYMBOL, "1h", limit=24)
    assert [c[0] for c in hourly] == sorted(c[0] for c in hourly) and all(c[0] % 3_600_000 == 0 for c in hourly)

    balance = await ex.fetch_balance()
    check_balance(ex, {}, "fetchBalance", balance)
    debt = {"debt": 0.0} if fx.venue == "bybit" else {}  # a unified account reports borrowing too
    assert balance["USDT"] == {"free": 100_000.0, "used": 0.0, "total": 100_000.0, **debt}


# ---- 2. a crossing limit buy fills -------------------------------------------------------


async def test_limit_buy_that_crosses_fills_and_moves_balances(fx: FakeExchange, ex) -> None:
    placed = await ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "fill1"})
    validate_order(ex, placed, "createOrder")
    assert placed["clientOrderId"] == "fill1" and placed["id"]
    if fx.venue == "binance":  # newOrderRespType FULL: the answer carries the fills
        assert placed["status"] == "closed" and placed["filled"] == 0.01 and placed["trades"]

    order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "fill1"})
    validate_order(ex, order, "fetchOrder")
    assert order["id"] == placed["id"] and order["clientOrderId"] == "fill1"
    assert order["status"] == "closed" and order["filled"] == order["amount"] == 0.01
    assert order["average"] == 65_000.0  # a crossing limit fills at the market, not at its limit

    assert fx.balances == {"BTC": {"free": 0.00999, "used": 0.0}, "USDT": {"free": 99_350.0, "used": 0.0}}
    balance = await ex.fetch_balance()
    assert balance["BTC"]["free"] == 0.00999 and balance["USDT"]["total"] == 99_350.0  # fee 0.1 % in BTC

    trades = await ex.fetch_my_trades(SYMBOL)
    assert [(t["amount"], t["price"], t["order"]) for t in trades] == [(0.01, 65_000.0, placed["id"])]
    check_trade(ex, {}, "fetchMyTrades", trades[0], SYMBOL, ex.milliseconds(), False)
    assert [(o["client_id"], o["status"]) for o in fx.orders_for("fill1")] == [("fill1", "filled")]


async def test_market_orders_fill_at_the_current_price(fx: FakeExchange, ex) -> None:
    bought = await ex.create_order(SYMBOL, "market", "buy", 0.01)
    await ex.create_order(SYMBOL, "market", "sell", 0.005)
    order = await ex.fetch_order(bought["id"], SYMBOL)
    validate_order(ex, order, "fetchOrder")
    assert order["status"] == "closed" and order["filled"] == 0.01 and order["type"] == "market"
    assert fx.balances["BTC"]["free"] == pytest.approx(0.00499)
    assert fx.balances["USDT"]["free"] == pytest.approx(100_000 - 650 + 325 * 0.999)
    # sized in quote: binance quoteOrderQty, okx tgtCcy=quote_ccy
    by_cost = await ex.create_market_buy_order_with_cost(SYMBOL, 650.0)
    order = await ex.fetch_order(by_cost["id"], SYMBOL)
    assert order["status"] == "closed" and order["filled"] == 0.01 and order["cost"] == 650.0


# ---- 3. partial fill, then the rest ------------------------------------------------------


async def test_partial_fill_rests_then_fill_open_closes_it(fx: FakeExchange, ex) -> None:
    fx.next_orders.append(Behaviour.partial(0.4))
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "part1"})
    order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "part1"})
    validate_order(ex, order, "fetchOrder")
    assert order["status"] == "open" and order["filled"] == 0.004 and order["remaining"] == 0.006
    assert fx.balances["USDT"]["used"] == pytest.approx(0.006 * 65_100)  # the rest stays reserved at its limit
    open_orders = await ex.fetch_open_orders(SYMBOL)
    assert [o["clientOrderId"] for o in open_orders] == ["part1"]
    validate_order(ex, open_orders[0], "fetchOpenOrders")

    fx.fill_open("part1")
    order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "part1"})
    validate_order(ex, order, "fetchOrder")
    assert order["status"] == "closed" and order["filled"] == 0.01
    assert fx.balances["USDT"]["used"] == 0.0 and await ex.fetch_open_orders(SYMBOL) == []


async def test_resting_order_fills_at_its_limit_when_the_price_moves(fx: FakeExchange, ex) -> None:
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "rest1"})
    assert (await ex.fetch_order(None, SYMBOL, {"clientOrderId": "rest1"}))["status"] == "open"
    assert fx.balances["USDT"] == {"free": 99_360.0, "used": 640.0}
    fx.set_price(SYMBOL, 63_900.0)
    order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "rest1"})
    assert order["status"] == "closed" and order["average"] == 64_000.0
    assert (await ex.fetch_ticker(SYMBOL))["last"] == 63_900.0


async def test_cancel_and_expire_by_client_id(fx: FakeExchange, ex) -> None:
    fx.next_orders.append(Behaviour.rest())  # crosses, yet stays open
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "cxl1"})
    await ex.cancel_order(None, SYMBOL, {"clientOrderId": "cxl1"})
    order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "cxl1"})
    validate_order(ex, order, "fetchOrder")
    assert order["status"] == "canceled" and order["filled"] == 0
    assert fx.balances["USDT"] == {"free": 100_000.0, "used": 0.0}

    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "exp1"})
    fx.expire("exp1")
    order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "exp1"})
    assert order["status"] == {"binance": "expired", "okx": "canceled"}[fx.venue]  # okx has no expired state
    assert fx.balances["USDT"] == {"free": 100_000.0, "used": 0.0}


async def test_ioc_that_does_not_cross_ends_unfilled(fx: FakeExchange, ex) -> None:
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "ioc1", "timeInForce": "IOC"})
    order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "ioc1"})
    assert order["timeInForce"] == "IOC" and order["filled"] == 0
    assert order["status"] == {"binance": "expired", "okx": "canceled"}[fx.venue]


# ---- 4. refused orders -------------------------------------------------------------------


@EVERY_VENUE
async def test_insufficient_balance_and_below_minimum_are_refused(fx: FakeExchange, ex) -> None:
    assert type(await raised(ex.create_order(SYMBOL, "limit", "buy", 2, 65_000.0))) is ccxt.InsufficientFunds
    assert type(await raised(ex.create_order(SYMBOL, "limit", "sell", 0.01, 65_000.0))) is ccxt.InsufficientFunds
    # 0.00005 is on the step but under the minimum: binance LOT_SIZE, okx 51020, bybit 170136
    assert type(await raised(ex.create_order(SYMBOL, "limit", "buy", 0.00005, 65_000.0))) is ccxt.InvalidOrder
    assert fx.placed == [] and fx.balances["USDT"] == {"free": 100_000.0, "used": 0.0}


async def test_binance_below_min_notional_is_bad_request_not_invalid_order() -> None:
    """binance -1013 "Filter failure: NOTIONAL": ccxt maps -1013 to BadRequest, and only
    LOT_SIZE / PRICE_FILTER messages to InvalidOrder."""
    fake = FakeExchange("binance")
    fake.add_market(SYMBOL, price=65_000.0, min_amount=0.0001, min_cost=5.0)
    fake.set_balance("USDT", 1_000.0)
    fake.start()
    ex = ccxt_client(fake)
    try:
        error = await raised(ex.create_order(SYMBOL, "limit", "buy", 0.0001, 40_000.0))
        assert type(error) is ccxt.BadRequest and "NOTIONAL" in str(error)
        assert fake.placed == []
    finally:
        await ex.close()
        fake.stop()


REJECTIONS = {
    "binance": (Behaviour.reject(-1013, "Market is closed."), ccxt.MarketClosed),
    "okx": (Behaviour.reject("51008", "Order failed. Insufficient BTC balance in account."), ccxt.InsufficientFunds),
    "bybit": (Behaviour.reject(170210, "New order rejected."), ccxt.InvalidOrder),
}


@EVERY_VENUE
async def test_rejected_behaviour_answers_with_the_venue_error(fx: FakeExchange, ex) -> None:
    behaviour, expected = REJECTIONS[fx.venue]
    fx.next_orders.append(behaviour)
    error = await raised(ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_000.0, {"clientOrderId": "rej1"}))
    assert type(error) is expected and behaviour.msg in str(error)
    assert fx.orders_for("rej1") == [] and not fx.next_orders
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_000.0, {"clientOrderId": "rej1"})  # consumed: next one fills
    assert [o["status"] for o in fx.orders_for("rej1")] == ["filled"]


# ---- 5. unknown client id ----------------------------------------------------------------


async def test_unknown_client_id_is_order_not_found(fx: FakeExchange, ex) -> None:
    assert type(await raised(ex.fetch_order(None, SYMBOL, {"clientOrderId": "nope"}))) is ccxt.OrderNotFound
    assert type(await raised(ex.cancel_order(None, SYMBOL, {"clientOrderId": "nope"}))) is ccxt.OrderNotFound


# ---- 6. outcome unknown to the client ----------------------------------------------------


async def test_timeout_leaves_exactly_one_order_found_by_client_id(fx: FakeExchange, ex) -> None:
    ex.timeout = 500
    fx.next_orders.append(Behaviour.timeout(2.0))
    error = await raised(ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "slow1"}))
    assert type(error) is ccxt.RequestTimeout
    ex.timeout = 10_000
    order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "slow1"})
    assert order["status"] == "closed" and order["filled"] == 0.01
    assert len(fx.orders_for("slow1")) == 1


@pytest.mark.parametrize("status, expected", [(502, ccxt.ExchangeNotAvailable), (504, ccxt.RequestTimeout)])
async def test_lost_answer_hides_a_filled_order(fx: FakeExchange, ex, status: int, expected: type) -> None:
    fx.next_orders.append(Behaviour.lost(status))
    error = await raised(ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "lost1"}))
    assert type(error) is expected
    order = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "lost1"})
    assert order["status"] == "closed" and len(fx.orders_for("lost1")) == 1


# ---- 7. authentication and venue conditions ----------------------------------------------


@EVERY_VENUE
@pytest.mark.parametrize("credentials", [{"secret": "wrong-secret"}, {"api_key": "wrong-key"}, {"passphrase": "wrong-pass"}])
async def test_wrong_credentials_are_authentication_errors(fx: FakeExchange, credentials: dict) -> None:
    if "passphrase" in credentials and fx.venue != "okx":
        credentials = {"secret": "other-secret"}
    ex = ccxt_client(fx, **credentials)
    try:
        assert type(await raised(ex.fetch_balance())) is ccxt.AuthenticationError
        assert type(await raised(ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_000.0))) is ccxt.AuthenticationError
        assert fx.placed == []
    finally:
        await ex.close()


async def test_binance_invalid_key_after_a_success_becomes_ddos_protection() -> None:
    """ccxt treats -2015 as a temporary ban once the key has worked (binance.py handle_errors),
    so a revoked key looks retryable."""
    fake = FakeExchange("binance")
    fake.add_market(SYMBOL, price=65_000.0)
    fake.start()
    ex = ccxt_client(fake)
    try:
        await ex.fetch_balance()
        ex.apiKey = "revoked-key"
        assert type(await raised(ex.fetch_balance())) is ccxt.DDoSProtection
    finally:
        await ex.close()
        fake.stop()


DOWN = {"binance": ccxt.OperationFailed, "okx": ccxt.OnMaintenance, "bybit": ccxt.ExchangeNotAvailable}
RATE_LIMITED = {"binance": ccxt.DDoSProtection, "okx": ccxt.RateLimitExceeded, "bybit": ccxt.RateLimitExceeded}
# the first private request of fetch_balance; bybit's asks whether the account is unified
# (/v5/user/query-api with /v5/account/info) until one answer says so, then reads the wallet
BALANCE_PATH = {"binance": "/api/v3/account", "okx": "/api/v5/account/balance", "bybit": "/v5/user/query-api"}


@EVERY_VENUE
async def test_down_and_rate_limited_raise_the_classes_ccxt_maps_them_to(fx: FakeExchange, ex) -> None:
    fx.down = True
    assert type(await raised(ex.fetch_balance())) is DOWN[fx.venue]
    assert type(await raised(ex.fetch_ticker(SYMBOL))) is DOWN[fx.venue]
    fx.down = False
    fx.rate_limited = True
    assert type(await raised(ex.fetch_balance())) is RATE_LIMITED[fx.venue]
    fx.rate_limited = False
    assert (await ex.fetch_balance())["USDT"]["free"] == 100_000.0
    assert not issubclass(ccxt.OperationFailed, ccxt.NetworkError)  # binance's 503 is not a NetworkError
    assert fx.requests.count(("GET", BALANCE_PATH[fx.venue])) == 3


async def test_garbage_with_http_200_raises_nothing_in_ccxt(fx: FakeExchange, ex) -> None:
    """ccxt does not raise on a 200 body that is not JSON: it parses the text as if it were the
    answer and hands back empty structures. The order behind the garbage was still placed."""
    fx.garbage = 2
    balance = await ex.fetch_balance()
    assert balance["total"] == {} and isinstance(balance["info"], str)
    order = await ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "junk1"})
    assert order["id"] is None and order["status"] is None
    assert fx.garbage == 0 and [o["status"] for o in fx.orders_for("junk1")] == ["filled"]
    assert (await ex.fetch_order(None, SYMBOL, {"clientOrderId": "junk1"}))["status"] == "closed"


# ---- 8. client id reuse ------------------------------------------------------------------


async def test_duplicate_client_id_refused_while_open_accepted_once_filled(fx: FakeExchange, ex) -> None:
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "dup1"})
    error = await raised(ex.create_order(SYMBOL, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "dup1"}))
    assert type(error) is ccxt.InvalidOrder and {"binance": "Duplicate order sent.", "okx": "51016"}[fx.venue] in str(error)
    assert len(fx.orders_for("dup1")) == 1

    fx.fill_open("dup1")
    again = await ex.create_order(SYMBOL, "limit", "buy", 0.02, 64_000.0, {"clientOrderId": "dup1"})
    assert [o["status"] for o in fx.orders_for("dup1")] == ["filled", "open"]
    newest = await ex.fetch_order(None, SYMBOL, {"clientOrderId": "dup1"})
    assert newest["id"] == again["id"] and newest["amount"] == 0.02 and newest["status"] == "open"


# ---- 9. clock skew -----------------------------------------------------------------------

SKEW = {"binance": 10_000, "okx": 60_000}  # okx accepts OK-ACCESS-TIMESTAMP within 30 s


async def test_clock_skew_is_invalid_nonce_unless_ccxt_adjusts(fx: FakeExchange) -> None:
    fx.clock_skew_ms = SKEW[fx.venue]
    ex = ccxt_client(fx)
    ex.options["recvWindow"] = 5_000  # binance's own default; ccxt sends 10 000
    adjusted = ccxt_client(fx)
    adjusted.options["adjustForTimeDifference"] = True
    try:
        skew = await ex.fetch_time() - ex.milliseconds()
        assert SKEW[fx.venue] - 5_000 < skew < SKEW[fx.venue] + 5_000
        assert type(await raised(ex.fetch_balance())) is ccxt.InvalidNonce
        await adjusted.load_markets()  # measures the difference (fetch_time) before signing anything
        assert (await adjusted.fetch_balance())["USDT"]["free"] == 100_000.0
    finally:
        await ex.close()
        await adjusted.close()


async def test_binance_client_ahead_of_server_is_invalid_nonce_with_ccxt_defaults() -> None:
    fake = FakeExchange("binance")
    fake.add_market(SYMBOL, price=65_000.0)
    fake.clock_skew_ms = -10_000
    fake.start()
    ex = ccxt_client(fake)
    try:
        error = await raised(ex.fetch_balance())
        assert type(error) is ccxt.InvalidNonce and "ahead of the server" in str(error)
    finally:
        await ex.close()
        fake.stop()


# ---- 10. bybit: client ids live in the order lists ---------------------------------------
#
# With a unified account ccxt 4.5.90's fetch_order cannot name a client id (see the last test
# of this section), so a bybit order is found by its orderLinkId in the lists:
#   fetch_open_orders(symbol, None, None, {"orderLinkId": cid})
#       GET /v5/order/realtime?category=spot&symbol=…&orderLinkId=… : the newest order with that
#       id in ANY status (bybit ignores "open only" when an id is named), so it may be closed;
#   fetch_canceled_and_closed_orders(symbol, None, None, {"orderLinkId": cid})
#       GET /v5/order/history?…&orderLinkId=… : finished orders only.


async def bybit_order(ex, cid: str) -> dict:
    """The order with client id `cid`, whatever its state, as bybit's live list answers it."""
    found = await ex.fetch_open_orders(SYMBOL, None, None, {"orderLinkId": cid})
    assert len(found) == 1 and found[0]["clientOrderId"] == cid
    validate_order(ex, found[0], "fetchOpenOrders")
    return found[0]


async def bybit_history(ex, cid: str) -> list[dict]:
    return await ex.fetch_canceled_and_closed_orders(SYMBOL, None, None, {"orderLinkId": cid})


@BYBIT
async def test_bybit_load_markets_reads_currencies_with_keys_and_probes_the_account(fx: FakeExchange, ex) -> None:
    """With keys set, load_markets signs a request before anything else (the currency list),
    and the first account call asks twice whether the account is unified."""
    assert fx.requests == [("GET", "/v5/asset/coin/query-info"), ("GET", "/v5/market/instruments-info")]
    market = ex.market(SYMBOL)
    assert market["precision"]["amount"] == 0.00001 and market["precision"]["price"] == 0.01  # basePrecision, tickSize
    assert market["limits"]["amount"]["min"] == 0.0001 and market["limits"]["cost"]["min"] == 5.0  # minOrderQty, minOrderAmt
    assert market["spot"] and not market["margin"]
    await ex.fetch_balance()
    assert sorted(fx.requests[2:4]) == [("GET", "/v5/account/info"), ("GET", "/v5/user/query-api")]
    assert fx.requests[4:] == [("GET", "/v5/account/wallet-balance")]
    assert ex.options["enableUnifiedAccount"] is True
    await ex.fetch_balance()
    assert fx.requests[5:] == [("GET", "/v5/account/wallet-balance")]  # the answer is kept


@BYBIT
async def test_bybit_limit_buy_fills_and_is_found_by_order_link_id_in_both_lists(fx: FakeExchange, ex) -> None:
    placed = await ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "fill-1", "timeInForce": "GTC"})
    validate_order(ex, placed, "createOrder")
    assert placed["clientOrderId"] == "fill-1" and placed["id"] and placed["status"] is None  # the answer has ids only

    order = await bybit_order(ex, "fill-1")  # "open orders" hands back a filled one when asked by id
    assert order["id"] == placed["id"] and order["status"] == "closed" and order["info"]["orderStatus"] == "Filled"
    assert order["filled"] == order["amount"] == 0.01 and order["average"] == 65_000.0 and order["cost"] == 650.0
    assert order["fee"] == {"cost": 0.00001, "currency": "BTC"} and order["fees"] == [order["fee"]]  # in the asset received
    assert order["info"]["cumFeeDetail"] == {"BTC": "0.00001"}
    assert await ex.fetch_open_orders(SYMBOL) == []  # without an id the live list holds open orders only

    history = await bybit_history(ex, "fill-1")
    assert [(o["id"], o["status"], o["fee"]) for o in history] == [(placed["id"], "closed", order["fee"])]
    validate_order(ex, history[0], "fetchCanceledAndClosedOrders")

    assert fx.balances == {"BTC": {"free": 0.00999, "used": 0.0}, "USDT": {"free": 99_350.0, "used": 0.0}}
    balance = await ex.fetch_balance()
    assert balance["BTC"]["free"] == 0.00999 and balance["USDT"]["total"] == 99_350.0
    trades = await ex.fetch_my_trades(SYMBOL)
    assert [(t["amount"], t["price"], t["order"], t["fee"]["currency"]) for t in trades] == [(0.01, 65_000.0, placed["id"], "BTC")]
    check_trade(ex, {}, "fetchMyTrades", trades[0], SYMBOL, ex.milliseconds(), False)


@BYBIT
async def test_bybit_partial_fill_is_open_in_the_live_list_and_in_history_once_filled(fx: FakeExchange, ex) -> None:
    fx.next_orders.append(Behaviour.partial(0.4))
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "part_1", "timeInForce": "GTC"})
    order = await bybit_order(ex, "part_1")
    assert order["status"] == "open" and order["info"]["orderStatus"] == "PartiallyFilled"
    assert order["filled"] == 0.004 and order["remaining"] == 0.006 and order["fee"]["cost"] == 0.000004
    assert fx.balances["USDT"]["used"] == pytest.approx(0.006 * 65_100)
    assert [o["clientOrderId"] for o in await ex.fetch_open_orders(SYMBOL)] == ["part_1"]
    assert [o["clientOrderId"] for o in await ex.fetch_open_orders()] == ["part_1"]  # no symbol: category=spot, all pairs
    assert await bybit_history(ex, "part_1") == []  # history holds finished orders only

    fx.fill_open("part_1")
    order = await bybit_order(ex, "part_1")
    assert order["status"] == "closed" and order["filled"] == 0.01 and order["fee"]["cost"] == 0.00001
    assert [o["status"] for o in await bybit_history(ex, "part_1")] == ["closed"]
    assert fx.balances["USDT"]["used"] == 0.0 and await ex.fetch_open_orders(SYMBOL) == []


@BYBIT
async def test_bybit_resting_order_reaches_history_when_the_price_moves(fx: FakeExchange, ex) -> None:
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "rest1", "timeInForce": "GTC"})
    order = await bybit_order(ex, "rest1")
    assert order["status"] == "open" and order["info"]["orderStatus"] == "New" and order["average"] is None
    assert fx.balances["USDT"] == {"free": 99_360.0, "used": 640.0}
    assert (await ex.fetch_balance())["USDT"] == {"free": 99_360.0, "used": 640.0, "total": 100_000.0, "debt": 0.0}
    assert await bybit_history(ex, "rest1") == []
    fx.set_price(SYMBOL, 63_900.0)
    order = await bybit_order(ex, "rest1")
    assert order["status"] == "closed" and order["average"] == 64_000.0
    assert [o["average"] for o in await bybit_history(ex, "rest1")] == [64_000.0]


@BYBIT
async def test_bybit_cancel_by_order_link_id_then_both_lists_show_it_cancelled(fx: FakeExchange, ex) -> None:
    fx.next_orders.append(Behaviour.rest())  # crosses, yet stays open
    placed = await ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "cxl1", "timeInForce": "GTC"})
    canceled = await ex.cancel_order(None, SYMBOL, {"orderLinkId": "cxl1"})  # POST /v5/order/cancel, ids only back
    assert canceled["id"] == placed["id"] and canceled["clientOrderId"] == "cxl1" and canceled["status"] is None
    order = await bybit_order(ex, "cxl1")
    assert order["status"] == "canceled" and order["filled"] == 0
    assert (order["info"]["orderStatus"], order["info"]["cancelType"]) == ("Cancelled", "CancelByUser")
    assert [o["status"] for o in await bybit_history(ex, "cxl1")] == ["canceled"]
    assert fx.balances["USDT"] == {"free": 100_000.0, "used": 0.0}
    # a finished order cannot be cancelled: bybit says it does not exist (170213)
    assert type(await raised(ex.cancel_order(None, SYMBOL, {"orderLinkId": "cxl1"}))) is ccxt.OrderNotFound


@BYBIT
async def test_bybit_cancel_with_client_order_id_is_not_translated_by_ccxt(fx: FakeExchange, ex) -> None:
    """create_order maps clientOrderId to orderLinkId; cancel_order does not: it sends
    `clientOrderId` as is, with neither orderId nor orderLinkId, and bybit refuses it."""
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "keep1"})
    error = await raised(ex.cancel_order(None, SYMBOL, {"clientOrderId": "keep1"}))
    assert type(error) is ccxt.BadRequest and "orderLinkId" in str(error)
    assert (await bybit_order(ex, "keep1"))["status"] == "open"


@BYBIT
async def test_bybit_spot_ends_orders_as_cancelled_and_a_partly_filled_cancel_is_closed(fx: FakeExchange, ex) -> None:
    """bybit spot has no Expired status, and ccxt maps PartiallyFilledCanceled to closed."""
    fx.next_orders.append(Behaviour.partial(0.4))
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "pfc1"})
    await ex.cancel_order(None, SYMBOL, {"orderLinkId": "pfc1"})
    order = await bybit_order(ex, "pfc1")
    assert order["info"]["orderStatus"] == "PartiallyFilledCanceled" and order["status"] == "closed"
    assert order["filled"] == 0.004 and order["remaining"] == 0.0

    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "exp1"})
    fx.expire("exp1")
    order = await bybit_order(ex, "exp1")
    assert order["status"] == "canceled" and order["info"]["cancelType"] == "CancelByAdmin"

    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "ioc1", "timeInForce": "IOC"})
    order = await bybit_order(ex, "ioc1")
    assert order["status"] == "canceled" and order["timeInForce"] == "IOC" and order["filled"] == 0
    assert order["info"]["rejectReason"] == "EC_NoImmediateQtyToFill"
    finished = await ex.fetch_canceled_and_closed_orders(SYMBOL)  # bybit sends newest first, ccxt sorts oldest first
    assert [o["clientOrderId"] for o in finished] == ["pfc1", "exp1", "ioc1"]
    assert fx.balances["USDT"] == {"free": pytest.approx(100_000 - 0.004 * 65_000), "used": 0.0}


@BYBIT
async def test_bybit_market_orders_are_sized_as_ccxt_says(fx: FakeExchange, ex) -> None:
    """A market buy with an amount goes out with marketUnit=baseCoin; by cost it goes out
    without one, and bybit reads a spot market buy's qty in the quote currency."""
    await ex.create_order(SYMBOL, "market", "buy", 0.01, None, {"clientOrderId": "mkt1"})
    order = await bybit_order(ex, "mkt1")
    assert (order["type"], order["status"], order["filled"], order["timeInForce"]) == ("market", "closed", 0.01, "IOC")
    assert order["info"]["marketUnit"] == "baseCoin"
    await ex.create_order(SYMBOL, "market", "sell", 0.005, None, {"clientOrderId": "mkt2"})
    assert (await bybit_order(ex, "mkt2"))["cost"] == 325.0
    await ex.create_market_buy_order_with_cost(SYMBOL, 650.0, {"clientOrderId": "mkt3"})
    order = await bybit_order(ex, "mkt3")
    assert order["info"]["qty"] == "650" and order["info"]["marketUnit"] == "quoteCoin"
    assert order["filled"] == 0.01 and order["cost"] == 650.0 and order["amount"] == 0.01
    assert fx.balances["USDT"]["free"] == pytest.approx(100_000 - 650 + 325 * 0.999 - 650)


@BYBIT
async def test_bybit_duplicate_order_link_id_refused_while_open_accepted_once_filled(fx: FakeExchange, ex) -> None:
    first = await ex.create_order(SYMBOL, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "dup1"})
    error = await raised(ex.create_order(SYMBOL, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "dup1"}))
    assert type(error) is ccxt.InvalidOrder and "170141" in str(error)
    assert len(fx.orders_for("dup1")) == 1

    fx.fill_open("dup1")
    again = await ex.create_order(SYMBOL, "limit", "buy", 0.02, 64_000.0, {"clientOrderId": "dup1"})
    assert [o["status"] for o in fx.orders_for("dup1")] == ["filled", "open"]
    newest = await bybit_order(ex, "dup1")  # the live list answers with the newest order of that id
    assert newest["id"] == again["id"] and newest["amount"] == 0.02 and newest["status"] == "open"
    assert [o["id"] for o in await bybit_history(ex, "dup1")] == [first["id"]]


@BYBIT
async def test_bybit_order_value_and_client_id_rules(fx: FakeExchange, ex) -> None:
    # 0.0001 BTC at 40 000 is 4 USDT, under minOrderAmt 5: 170140
    error = await raised(ex.create_order(SYMBOL, "limit", "buy", 0.0001, 40_000.0))
    assert type(error) is ccxt.InvalidOrder and "170140" in str(error)
    # orderLinkId: up to 36 letters, digits, '-' and '_'
    for bad in ("x" * 37, "has space", "dot.ted"):
        assert type(await raised(ex.create_order(SYMBOL, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": bad}))) is ccxt.BadRequest
    assert fx.placed == []
    placed = await ex.create_order(SYMBOL, "limit", "buy", 0.01, 60_000.0)  # none sent: bybit makes one up
    assert placed["clientOrderId"] and placed["clientOrderId"].isdigit()


@BYBIT
async def test_bybit_unknown_order_link_id_is_an_empty_list_and_fetch_order_cannot_find_by_client_id(fx: FakeExchange, ex) -> None:
    assert await ex.fetch_open_orders(SYMBOL, None, None, {"orderLinkId": "nope"}) == []
    assert await bybit_history(ex, "nope") == []
    assert type(await raised(ex.cancel_order(None, SYMBOL, {"orderLinkId": "nope"}))) is ccxt.OrderNotFound
    # fetch_order insists on params["acknowledged"] for a unified account, then sends orderId=None,
    # which bybit ranks above orderLinkId: even an existing order is not found that way
    await ex.create_order(SYMBOL, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "there"})
    assert type(await raised(ex.fetch_order(None, SYMBOL, {"orderLinkId": "there"}))) is ccxt.ArgumentsRequired
    error = await raised(ex.fetch_order(None, SYMBOL, {"orderLinkId": "there", "acknowledged": True}))
    assert type(error) is ccxt.OrderNotFound
    by_id = await ex.fetch_order((await bybit_order(ex, "there"))["id"], SYMBOL, {"acknowledged": True})
    assert by_id["clientOrderId"] == "there" and by_id["status"] == "open"


@BYBIT
@pytest.mark.parametrize(
    "behaviour, expected",
    [(Behaviour.timeout(2.0), ccxt.RequestTimeout), (Behaviour.lost(502), ccxt.ExchangeNotAvailable), (Behaviour.lost(504), ccxt.RequestTimeout)],
)
async def test_bybit_unknown_outcome_leaves_one_order_found_by_order_link_id(fx: FakeExchange, ex, behaviour, expected) -> None:
    await ex.fetch_balance()  # the account probe is done before the order, as a running client has it
    ex.timeout = 500
    fx.next_orders.append(behaviour)
    error = await raised(ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "slow1"}))
    assert type(error) is expected
    ex.timeout = 10_000
    order = await bybit_order(ex, "slow1")
    assert order["status"] == "closed" and order["filled"] == 0.01
    assert len(fx.orders_for("slow1")) == 1


@BYBIT
async def test_bybit_clock_skew_fails_load_markets_even_with_adjust_for_time_difference(fx: FakeExchange) -> None:
    """bybit accepts server_time - recv_window <= timestamp < server_time + 1000. With keys set,
    load_markets signs its currency request before fetch_markets measures the clock, so
    adjustForTimeDifference does not help; measuring first (load_time_difference) does."""
    behind, ahead, adjusted, measured = (ccxt_client(fx) for _ in range(4))
    adjusted.options["adjustForTimeDifference"] = True
    try:
        fx.clock_skew_ms = 10_000  # the server is 10 s ahead: the client's stamps are too old
        skew = await behind.fetch_time() - behind.milliseconds()
        assert 5_000 < skew < 15_000
        error = await raised(behind.load_markets())
        assert type(error) is ccxt.InvalidNonce and "recv_window" in str(error)
        assert type(await raised(adjusted.load_markets())) is ccxt.InvalidNonce
        assert type(await raised(adjusted.fetch_balance())) is ccxt.InvalidNonce
        await measured.load_time_difference()
        assert (await measured.fetch_balance())["USDT"]["free"] == 100_000.0
        fx.clock_skew_ms = -2_000  # the client 2 s ahead: over bybit's 1 s allowance
        assert type(await raised(ahead.fetch_balance())) is ccxt.InvalidNonce
    finally:
        for exchange in (behind, ahead, adjusted, measured):
            await exchange.close()


@BYBIT
async def test_bybit_garbage_answer_to_the_account_probe_is_kept_as_a_classic_account(fx: FakeExchange, ex) -> None:
    """ccxt remembers the first answer to "is this a unified account?", garbage included: it
    then asks for a SPOT wallet, which a unified account refuses (BadRequest), for good."""
    fx.garbage = 2  # /v5/user/query-api and /v5/account/info
    assert type(await raised(ex.fetch_balance())) is ccxt.BadRequest
    assert ex.options["enableUnifiedAccount"] is False
    assert type(await raised(ex.fetch_balance())) is ccxt.BadRequest
    fx.garbage = 1
    order = await ex.create_order(SYMBOL, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "junk1"})
    assert order["id"] is None and order["status"] is None
    assert [o["status"] for o in fx.orders_for("junk1")] == ["filled"]
    assert (await bybit_order(ex, "junk1"))["status"] == "closed"


@BYBIT
async def test_bybit_order_lists_come_in_pages_of_twenty(fx: FakeExchange, ex) -> None:
    """Without a limit bybit answers 20 orders and a cursor; ccxt follows it only when told."""
    for i in range(21):
        await ex.create_order(SYMBOL, "limit", "buy", 0.001, 60_000.0 + i, {"clientOrderId": f"page{i}"})
    assert len(await ex.fetch_open_orders()) == 20
    assert len(await ex.fetch_open_orders(None, None, None, {"paginate": True})) == 21
    assert len(await ex.fetch_open_orders(SYMBOL, None, 50)) == 21
