"""bybit linear perpetuals (v5, unified trading account, category=linear) through real ccxt
4.5.90 against the local fake: markets, account-wide margin mode, leverage, orders by
orderLinkId in the lists, positions, and what ccxt raises for each refusal.

"BTCUSDT" is both the spot pair and the perpetual: every call is routed by `category`, which
ccxt derives from the market (or from params["type"] when no symbol is given, since the
client's defaultType stays "spot")."""

from __future__ import annotations

import ccxt
import pytest
from ccxt.test.exchange.base.test_market import test_market as check_market
from ccxt.test.exchange.base.test_order import test_order as check_order
from ccxt.test.exchange.base.test_position import test_position as check_position
from ccxt.test.exchange.base.test_trade import test_trade as check_trade

from fake_exchange import Behaviour, FakeExchange, ccxt_client, raised

SPOT, PERP, PERP_ID = "BTC/USDT", "BTC/USDT:USDT", "BTCUSDT"
# what deskgate's Dialect sets for bybit: a unified account, so ccxt never probes the account kind
DESKGATE_OPTIONS = {"enableUnifiedAccount": True, "enableUnifiedMargin": False}
# ccxt's bybit positions never say marginMode (tradeMode is deprecated) nor percentage
POSITION_SKIPS = {"marginMode": True, "percentage": True}


@pytest.fixture
def fx():
    fake = FakeExchange("bybit")
    fake.add_market(SPOT, price=65_000.0, amount_step=0.00001, price_tick=0.01, min_amount=0.0001, min_cost=5.0)
    fake.add_perpetual(PERP, price=65_000.0, amount_step=0.001, price_tick=0.1, min_amount=0.001, min_cost=5.0)
    fake.set_balance("USDT", 100_000.0)
    fake.start()
    yield fake
    fake.stop()



@pytest.fixture
async def ex(fx: FakeExchange):
    exchange = ccxt_client(fx, perpetuals=True, options=DESKGATE_OPTIONS)
    await exchange.load_markets(True)
    fx.requests.clear()
    yield exchange
    await exchange.close()



def validate_order(ex, order: dict, method: str) -> None:
    check_order(ex, {}, method, order, PERP, ex.milliseconds())


async def find_in_lists(ex, cid: str, symbol: str = PERP) -> dict | None:
    """deskgate's CcxtVenue._find_in_lists with category=linear: the live list, then the
    history, read raw by orderLinkId and parsed with the market."""
    market = ex.market(symbol)
    request = {"category": "linear" if market["contract"] else "spot", "symbol": market["id"], "orderLinkId": cid}
    for endpoint in (ex.privateGetV5OrderRealtime, ex.privateGetV5OrderHistory):
        body = await endpoint(request)
        assert str(body["retCode"]) == "0"
        rows = [r for r in body["result"]["list"] if r.get("orderLinkId") == cid]
        if rows:
            return max((ex.parse_order(r, market) for r in rows), key=lambda o: o["timestamp"])
    return None


# ---- 1. markets ----------------------------------------------------------------------------


async def test_load_markets_lists_spot_and_the_linear_perpetual_with_the_same_id(fx: FakeExchange) -> None:
    ex = ccxt_client(fx, perpetuals=True)
    try:
        await ex.load_markets(True)
        linear_asks = [p for p in fx.requests if p == ("GET", "/v5/market/instruments-info")]
        assert len(linear_asks) == 3  # spot, linear, linear status=PreLaunch
        spot, perp = ex.market(SPOT), ex.market(PERP)
        for market in (spot, perp):
            check_market(ex, {}, "loadMarkets", market)
        assert spot["id"] == perp["id"] == PERP_ID and spot["spot"] and not spot["contract"]
        assert (perp["type"], perp["swap"], perp["linear"], perp["settle"], perp["contractSize"]) == ("swap", True, True, "USDT", 1.0)
        assert perp["precision"] == {**perp["precision"], "amount": 0.001, "price": 0.1}  # qtyStep, tickSize
        assert perp["limits"]["amount"]["min"] == 0.001 and perp["limits"]["cost"]["min"] == 5.0  # minNotionalValue
        assert perp["limits"]["leverage"] == {"min": 1.0, "max": 125.0}
        assert perp["active"] and perp["info"]["contractType"] == "LinearPerpetual"
        ticker = await ex.fetch_ticker(PERP)
        assert ticker["symbol"] == PERP and ticker["last"] == 65_000.0 and ticker["markPrice"] == 65_000.0
        assert (await ex.fetch_ticker(SPOT))["symbol"] == SPOT
        candles = await ex.fetch_ohlcv(PERP, "1h", limit=3)
        assert len(candles) == 3 and candles[-1][4] == 65_000.0
    finally:
        await ex.close()


async def test_a_contract_size_other_than_one_is_shown_in_base_units(fx: FakeExchange) -> None:
    """bybit's linear qty is in the base coin (ccxt's contractSize is always 1): an engine
    perpetual of 0.01-ETH contracts is listed, ordered and held in ETH."""
    fx.add_perpetual("ETH/USDT:USDT", price=3_000.0, contract_size=0.01, amount_step=1, price_tick=0.01, min_amount=1)
    ex = ccxt_client(fx, perpetuals=True, options=DESKGATE_OPTIONS)
    try:
        await ex.load_markets(True)
        eth = ex.market("ETH/USDT:USDT")
        assert eth["contractSize"] == 1.0 and eth["precision"]["amount"] == 0.01 and eth["limits"]["amount"]["min"] == 0.01
        await ex.create_order("ETH/USDT:USDT", "limit", "buy", 0.05, 3_001.0, {"clientOrderId": "eth1"})
        assert fx.position("ETH/USDT:USDT").contracts == 5
        order = await find_in_lists(ex, "eth1", "ETH/USDT:USDT")
        assert (order["amount"], order["filled"], order["cost"], order["average"]) == (0.05, 0.05, 150.0, 3_000.0)
        (position,) = await ex.fetch_positions(["ETH/USDT:USDT"])
        assert position["contracts"] == 0.05 and position["notional"] == 150.0
    finally:
        await ex.close()


# ---- 2. margin mode and leverage -----------------------------------------------------------


async def test_set_margin_mode_is_account_wide_and_accepted_again_when_unchanged(fx: FakeExchange, ex) -> None:
    assert (await ex.fetch_margin_mode(PERP))["marginMode"] == "cross"  # REGULAR_MARGIN, bybit's default
    answer = await ex.set_margin_mode("isolated", PERP)
    assert answer["retMsg"] == "Request accepted" and answer["result"] == {"reasons": []}
    assert fx.requests == [("GET", "/v5/account/info"), ("POST", "/v5/account/set-margin-mode")]  # no account probe
    assert fx.margin_mode[PERP] == "isolated"
    again = await ex.set_margin_mode("isolated", PERP)  # idempotent: the same answer, no error
    assert str(again["retCode"]) == "0"
    margin_mode = await ex.fetch_margin_mode(PERP)
    assert margin_mode["marginMode"] == "isolated" and margin_mode["info"]["marginMode"] == "ISOLATED_MARGIN"
    assert (await ex.set_margin_mode("cross", None))["retMsg"] == "Request accepted"  # the symbol is not even needed
    assert fx.margin_mode[PERP] == "cross"
    assert type(await raised(ex.set_margin_mode("portfolio"))) is ccxt.ExchangeError  # not modelled: refused
    assert type(await raised(ex.set_margin_mode("fixed", PERP))) is ccxt.NotSupported  # ccxt's own check


async def test_set_margin_mode_without_the_preset_options_probes_the_account_first(fx: FakeExchange) -> None:
    ex = ccxt_client(fx, perpetuals=True)  # ccxt's defaults: enableUnifiedAccount None
    try:
        await ex.load_markets(True)
        fx.requests.clear()
        await ex.set_margin_mode("isolated", PERP)
        assert sorted(fx.requests[:2]) == [("GET", "/v5/account/info"), ("GET", "/v5/user/query-api")]
        assert fx.requests[2:] == [("POST", "/v5/account/set-margin-mode")] and fx.margin_mode[PERP] == "isolated"
    finally:
        await ex.close()


async def test_margin_mode_switch_is_refused_while_a_linear_order_or_position_exists(fx: FakeExchange, ex) -> None:
    await ex.set_margin_mode("isolated", PERP)
    fx.next_orders.append(Behaviour.rest())
    await ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "busy1"})
    error = await raised(ex.set_margin_mode("cross", PERP))
    assert type(error) is ccxt.ExchangeError  # 3400045 is in ccxt's exact map as a plain ExchangeError
    assert '"retCode":3400045' in str(error) and '"reasonCode":"3400054"' in str(error) and "uncancelled USDT perpetual orders" in str(error)
    assert fx.margin_mode[PERP] == "isolated"
    await ex.set_margin_mode("isolated", PERP)  # asking for the mode it already has is fine, even now

    await ex.cancel_order(None, PERP, {"orderLinkId": "busy1"})
    fx.set_position(PERP, 0.02, 65_000.0)
    error = await raised(ex.set_margin_mode("cross", PERP))
    assert type(error) is ccxt.ExchangeError and '"reasonCode":"3400208"' in str(error)
    assert fx.margin_mode[PERP] == "isolated"

    fx.set_position(PERP, 0)
    await ex.set_margin_mode("cross", PERP)
    assert fx.margin_mode[PERP] == "cross"
    # a spot order does not stand in the way
    await ex.create_order(SPOT, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "spot-rest"})
    await ex.set_margin_mode("isolated", PERP)
    assert fx.margin_mode[PERP] == "isolated"


async def test_the_classic_per_symbol_switch_is_forbidden_to_a_unified_account(fx: FakeExchange, ex) -> None:
    """What ccxt would send with enableUnifiedAccount=False: /v5/position/switch-isolated."""
    ex.options["enableUnifiedAccount"] = False
    error = await raised(ex.set_margin_mode("isolated", PERP, {"leverage": 5}))
    assert type(error) is ccxt.PermissionDenied and "100028" in str(error)
    assert fx.requests[-1] == ("POST", "/v5/position/switch-isolated") and fx.margin_mode[PERP] == "cross"


async def test_set_leverage_and_the_same_leverage_again_is_110043(fx: FakeExchange, ex) -> None:
    assert fx.leverage[PERP] == 20
    answer = await ex.set_leverage(5, PERP)
    assert str(answer["retCode"]) == "0" and fx.leverage[PERP] == 5
    assert fx.requests == [("POST", "/v5/position/set-leverage")]
    error = await raised(ex.set_leverage(5, PERP))
    assert type(error) is ccxt.BadRequest and '"retCode":110043' in str(error) and "leverage not modified" in str(error)
    (position,) = await ex.fetch_positions([PERP])
    assert position["leverage"] == 5.0 and position["contracts"] == 0.0  # a flat symbol's row
    for bad in (0, 200):  # outside [1, maxLeverage]
        assert type(await raised(ex.set_leverage(bad, PERP))) is ccxt.BadRequest
    # bybit's leverageStep is 0.01; the fake (its engine) keeps whole leverages and refuses 2.5
    assert type(await raised(ex.set_leverage(2.5, PERP))) is ccxt.BadRequest
    error = await raised(ex.set_leverage(5, PERP, {"sellLeverage": "6"}))  # one-way mode: both sides alike
    assert type(error) is ccxt.BadRequest and fx.leverage[PERP] == 5
    assert type(await raised(ex.set_leverage(5, SPOT))) is ccxt.NotSupported  # ccxt refuses spot itself
    # the leverage sets the margin an order reserves
    fx.next_orders.append(Behaviour.rest())
    await ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "lev1"})
    assert fx.balances["USDT"]["used"] == pytest.approx(640.0 / 5)


# ---- 3. orders -----------------------------------------------------------------------------


async def test_crossing_limit_buy_fills_opens_a_position_and_is_found_by_order_link_id(fx: FakeExchange, ex) -> None:
    await ex.set_margin_mode("isolated", PERP)
    await ex.set_leverage(10, PERP)
    placed = await ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "perp-fill1", "timeInForce": "GTC"})
    assert placed["clientOrderId"] == "perp-fill1" and placed["status"] is None and placed["symbol"] == PERP
    assert len(placed["id"]) == 36 and placed["id"].count("-") == 4  # derivatives order ids are UUIDs

    order = await find_in_lists(ex, "perp-fill1")
    validate_order(ex, order, "fetchOpenOrders")
    assert order["id"] == placed["id"] and order["status"] == "closed" and order["info"]["orderStatus"] == "Filled"
    assert (order["amount"], order["filled"], order["remaining"]) == (0.01, 0.01, 0.0)  # contracts = BTC
    assert order["average"] == 65_000.0 and order["cost"] == 650.0  # cumExecValue, in USDT
    assert order["fee"] == {"cost": 0.325, "currency": "USDT"} and order["fees"] == [order["fee"]]  # 0.05 % of 650
    assert order["type"] == "limit" and order["side"] == "buy" and order["timeInForce"] == "GTC" and order["reduceOnly"] is False

    same = await ex.fetch_open_orders(PERP, None, None, {"orderLinkId": "perp-fill1"})  # the ccxt call for it
    assert [o["id"] for o in same] == [placed["id"]] and same[0]["symbol"] == PERP
    history = await ex.fetch_canceled_and_closed_orders(PERP, None, None, {"orderLinkId": "perp-fill1"})
    assert [(o["id"], o["status"]) for o in history] == [(placed["id"], "closed")]

    position = fx.position(PERP)
    assert (float(position.contracts), float(position.entry_price), float(position.margin)) == (0.01, 65_000.0, 65.0)
    assert fx.balances["USDT"] == {"free": pytest.approx(100_000 - 65 - 0.325), "used": 65.0}
    balance = await ex.fetch_balance()
    assert balance["USDT"]["used"] == 65.0 and balance["USDT"]["total"] == pytest.approx(100_000 - 0.325)

    trades = await ex.fetch_my_trades(PERP)
    assert [(t["amount"], t["price"], t["cost"], t["order"], t["fee"]["currency"]) for t in trades] == [
        (0.01, 65_000.0, 650.0, placed["id"], "USDT")
    ]
    check_trade(ex, {}, "fetchMyTrades", trades[0], PERP, ex.milliseconds(), False)
    assert await ex.fetch_my_trades(SPOT) == []  # category=spot sees no linear fill


async def test_partial_fill_rests_then_a_cancel_leaves_it_cancelled_with_its_fill(fx: FakeExchange, ex) -> None:
    """Derivatives have no PartiallyFilledCanceled: unlike spot, ccxt calls it canceled."""
    fx.next_orders.append(Behaviour.partial(0.4))
    await ex.create_order(PERP, "limit", "sell", 0.01, 64_900.0, {"clientOrderId": "part1", "timeInForce": "GTC"})
    order = await find_in_lists(ex, "part1")
    assert order["status"] == "open" and order["info"]["orderStatus"] == "PartiallyFilled"
    assert (order["filled"], order["remaining"], order["cost"]) == (0.004, 0.006, 0.004 * 65_000.0)
    assert float(fx.position(PERP).contracts) == -0.004  # a short

    canceled = await ex.cancel_order(None, PERP, {"orderLinkId": "part1"})  # POST /v5/order/cancel: ids only back
    assert canceled["id"] == order["id"] and canceled["clientOrderId"] == "part1" and canceled["status"] is None
    order = await find_in_lists(ex, "part1")
    assert order["status"] == "canceled" and order["filled"] == 0.004 and order["remaining"] == 0.0
    assert (order["info"]["orderStatus"], order["info"]["cancelType"]) == ("Cancelled", "CancelByUser")
    error = await raised(ex.cancel_order(None, PERP, {"orderLinkId": "part1"}))
    assert type(error) is ccxt.OrderNotFound and "110001" in str(error)
    assert type(await raised(ex.cancel_order(None, PERP, {"orderLinkId": "nope"}))) is ccxt.OrderNotFound
    assert await find_in_lists(ex, "nope") is None  # an unknown orderLinkId is an empty list


async def test_resting_order_fills_when_the_price_moves_and_ioc_remainders_are_cancelled(fx: FakeExchange, ex) -> None:
    await ex.create_order(PERP, "limit", "buy", 0.01, 64_000.0, {"clientOrderId": "rest1"})
    order = await find_in_lists(ex, "rest1")
    assert order["status"] == "open" and order["info"]["orderStatus"] == "New" and order["average"] is None and order["fee"] is None
    assert fx.balances["USDT"]["used"] == pytest.approx(640.0 / 20)  # the default 20x
    assert (await ex.fetch_balance())["USDT"]["used"] == pytest.approx(32.0)  # totalOrderIM
    fx.set_price(PERP, 63_900.0)
    order = await find_in_lists(ex, "rest1")
    assert order["status"] == "closed" and order["average"] == 64_000.0 and order["cost"] == 640.0

    await ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "ioc1", "timeInForce": "IOC"})
    order = await find_in_lists(ex, "ioc1")
    assert order["status"] == "canceled" and order["info"]["rejectReason"] == "EC_NoImmediateQtyToFill"
    await ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "exp1"})
    fx.expire("exp1")
    order = await find_in_lists(ex, "exp1")
    assert order["status"] == "canceled" and order["info"]["cancelType"] == "CancelByAdmin"


async def test_market_orders_and_reduce_only_close_the_position(fx: FakeExchange, ex) -> None:
    await ex.create_order(PERP, "market", "buy", 0.02, None, {"clientOrderId": "mkt1"})
    order = await find_in_lists(ex, "mkt1")
    assert (order["type"], order["status"], order["filled"], order["timeInForce"]) == ("market", "closed", 0.02, "IOC")
    assert order["average"] == 65_000.0 and order["cost"] == 1_300.0 and "marketUnit" not in order["info"]
    assert float(fx.position(PERP).contracts) == 0.02

    # reduce-only: cut to the position's size
    await ex.create_order(PERP, "market", "sell", 0.05, None, {"clientOrderId": "close1", "reduceOnly": True})
    order = await find_in_lists(ex, "close1")
    assert order["reduceOnly"] is True and order["amount"] == 0.02 and order["filled"] == 0.02
    assert fx.position(PERP).contracts == 0 and fx.balances["USDT"]["used"] == 0.0
    # with nothing to reduce: 110017
    error = await raised(ex.create_order(PERP, "market", "sell", 0.01, None, {"reduceOnly": True}))
    assert type(error) is ccxt.InvalidOrder and "110017" in str(error)


async def test_refusals_insufficient_margin_minimums_duplicates_and_position_index(fx: FakeExchange, ex) -> None:
    fx.set_balance("USDT", 100.0)
    # 0.1 BTC at 65 000 and 20x needs 325 USDT of margin
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.1, 65_000.0, {"clientOrderId": "big1"}))
    assert type(error) is ccxt.InsufficientFunds and '"retCode":110007' in str(error)
    fx.set_balance("USDT", 100_000.0)
    fx.markets[PERP].min_amount = fx.markets[PERP].amount_step * 2  # minOrderQty 0.002
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.001, 60_000.0))
    assert type(error) is ccxt.BadRequest and "minimum limit allowed" in str(error)  # 10001
    fx.markets[PERP].min_amount = fx.markets[PERP].amount_step
    # 0.001 BTC at 4 000 is 4 USDT, under minNotionalValue 5
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.001, 4_000.0))
    assert type(error) is ccxt.InvalidOrder and "110094" in str(error) and "5USDT" in str(error)
    # one-way mode only
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0, {"positionIdx": 1}))
    assert type(error) is ccxt.BadRequest and "position idx not match position mode" in str(error)
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0, {"hedged": True}))
    assert type(error) is ccxt.BadRequest  # ccxt sends positionIdx 1 for a hedged buy
    # an open orderLinkId cannot be reused
    await ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "dup1"})
    error = await raised(ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "dup1"}))
    assert type(error) is ccxt.InvalidOrder and "110072" in str(error)
    # a venue-side rejection with bybit's own code
    fx.next_orders.append(Behaviour.reject(110004, "Wallet balance is insufficient"))
    assert type(await raised(ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0))) is ccxt.InsufficientFunds
    assert [o["client_id"] for o in fx.placed] == ["dup1"]
    no_id = await ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0)
    assert no_id["clientOrderId"] is None  # bybit makes one up for spot orders only


async def test_unknown_outcome_leaves_one_order_found_by_order_link_id(fx: FakeExchange, ex) -> None:
    ex.timeout = 500
    fx.next_orders.append(Behaviour.timeout(2.0))
    assert type(await raised(ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "slow1"}))) is ccxt.RequestTimeout
    ex.timeout = 10_000
    order = await find_in_lists(ex, "slow1")
    assert order["status"] == "closed" and order["filled"] == 0.01 and len(fx.orders_for("slow1")) == 1


# ---- 4. the two categories do not see each other's orders ----------------------------------


async def test_spot_and_linear_lookups_are_separate_though_the_symbol_id_is_the_same(fx: FakeExchange, ex) -> None:
    await ex.create_order(SPOT, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "same-id"})  # fills
    assert await find_in_lists(ex, "same-id") is None  # category=linear
    spot = await find_in_lists(ex, "same-id", SPOT)
    assert spot["symbol"] == SPOT and spot["status"] == "closed"
    await ex.create_order(PERP, "limit", "buy", 0.01, 65_100.0, {"clientOrderId": "same-id"})
    perp = await find_in_lists(ex, "same-id")
    assert perp["symbol"] == PERP and perp["id"] != spot["id"]
    assert (await find_in_lists(ex, "same-id", SPOT))["id"] == spot["id"]
    # a spot cancel cannot reach a linear order, nor the other way round
    fx.next_orders.append(Behaviour.rest())
    await ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "only-perp"})
    assert type(await raised(ex.cancel_order(None, SPOT, {"orderLinkId": "only-perp"}))) is ccxt.OrderNotFound
    assert (await find_in_lists(ex, "only-perp"))["status"] == "open"


# ---- 5. open orders of the whole account ---------------------------------------------------


async def test_open_orders_of_the_account_need_a_linear_call_besides_the_spot_one(fx: FakeExchange, ex) -> None:
    await ex.create_order(SPOT, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "spot-open"})
    for i in range(3):
        await ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0 + i, {"clientOrderId": f"perp-open{i}"})
    assert [o["clientOrderId"] for o in await ex.fetch_open_orders()] == ["spot-open"]  # defaultType spot
    linear = await ex.fetch_open_orders(None, None, None, {"type": "swap"})  # category=linear&settleCoin=USDT
    assert sorted(o["clientOrderId"] for o in linear) == ["perp-open0", "perp-open1", "perp-open2"]
    assert all(o["symbol"] == PERP for o in linear)
    # deskgate's raw, cursor-paged read (CcxtVenue._open_by_cursor) with category=linear
    ids, cursor = [], ""
    for _ in range(5):
        body = await ex.privateGetV5OrderRealtime({"category": "linear", "settleCoin": "USDT", "limit": 2, **({"cursor": cursor} if cursor else {})})
        ids += [r["orderLinkId"] for r in body["result"]["list"]]
        cursor = body["result"]["nextPageCursor"]
        if not cursor:
            break
    assert sorted(ids) == ["perp-open0", "perp-open1", "perp-open2"]
    # without symbol, baseCoin or settleCoin bybit refuses a linear list
    error = await raised(ex.privateGetV5OrderRealtime({"category": "linear"}))
    assert type(error) is ccxt.BadRequest and "10001" in str(error)


# ---- 6. positions --------------------------------------------------------------------------


async def test_fetch_positions_by_symbol_or_by_settle_coin(fx: FakeExchange, ex) -> None:
    await ex.set_margin_mode("isolated", PERP)
    await ex.set_leverage(10, PERP)
    await ex.create_order(PERP, "limit", "buy", 0.02, 65_100.0, {"clientOrderId": "long1"})
    fx.set_price(PERP, 66_000.0)
    (position,) = await ex.fetch_positions([PERP])
    check_position(ex, POSITION_SKIPS, "fetchPositions", position, PERP, ex.milliseconds())
    assert fx.requests[-1] == ("GET", "/v5/position/list")
    assert (position["symbol"], position["side"], position["contracts"], position["contractSize"]) == (PERP, "long", 0.02, 1.0)
    assert position["entryPrice"] == 65_000.0 and position["leverage"] == 10.0 and position["markPrice"] == 66_000.0
    assert position["notional"] == 1_300.0  # positionValue: size x entry price
    assert position["initialMargin"] == 130.0 and position["unrealizedPnl"] == 20.0
    assert position["marginMode"] is None and position["hedged"] is False  # ccxt reads neither from bybit
    assert position["liquidationPrice"] < position["entryPrice"]

    everything = await ex.fetch_positions(None, {"type": "swap"})  # settleCoin=USDT: non-flat only
    assert [p["symbol"] for p in everything] == [PERP]
    error = await raised(ex.fetch_positions())  # defaultType spot: category=spot
    assert type(error) is ccxt.BadRequest

    fx.set_position(PERP, -0.005, 66_000.0)  # someone traded by hand: a short
    (position,) = await ex.fetch_positions([PERP])
    assert (position["side"], position["contracts"], position["entryPrice"]) == ("short", 0.005, 66_000.0)
    balance = await ex.fetch_balance()  # used is the engine's (set_position moves no margin in the balance)
    assert balance["USDT"]["used"] == fx.balances["USDT"]["used"] == 130.0
    coin = balance["info"]["result"]["list"][0]["coin"][0]
    assert (coin["totalPositionIM"], coin["totalOrderIM"]) == ("33", "0")  # 0.005 x 66 000 / 10
    fx.set_position(PERP, 0)
    (flat,) = await ex.fetch_positions([PERP])  # a symbol's row comes back even when flat
    assert flat["contracts"] == 0.0 and flat["side"] is None and flat["info"]["side"] == ""
    assert await ex.fetch_positions(None, {"type": "swap"}) == []
    pos = await ex.fetch_position(PERP)
    assert pos["symbol"] == PERP and pos["contracts"] == 0.0


# ---- 7. conditions and signing on the new endpoints ----------------------------------------


async def test_new_endpoints_are_signed_and_answer_the_venue_conditions(fx: FakeExchange, ex) -> None:
    fx.down = True
    assert type(await raised(ex.set_leverage(5, PERP))) is ccxt.ExchangeNotAvailable
    assert type(await raised(ex.fetch_positions([PERP]))) is ccxt.ExchangeNotAvailable
    fx.down = False
    fx.rate_limited = True
    assert type(await raised(ex.set_margin_mode("isolated", PERP))) is ccxt.RateLimitExceeded
    assert type(await raised(ex.create_order(PERP, "limit", "buy", 0.01, 60_000.0))) is ccxt.RateLimitExceeded
    fx.rate_limited = False
    assert fx.placed == [] and fx.leverage[PERP] == 20 and fx.margin_mode[PERP] == "cross"

    fx.garbage = 1
    assert await ex.fetch_positions([PERP]) == []  # ccxt parses the junk into no positions at all
    fx.garbage = 1
    answer = await ex.set_leverage(7, PERP)  # applied; ccxt hands back the junk text, no error
    assert isinstance(answer, str) and fx.leverage[PERP] == 7

    bad_secret, bad_key = ccxt_client(fx, perpetuals=True, options=DESKGATE_OPTIONS), ccxt_client(fx, perpetuals=True, options=DESKGATE_OPTIONS)
    bad_secret.secret, bad_key.apiKey = "wrong-secret", "wrong-key"
    try:
        bad_secret.markets, bad_secret.markets_by_id = ex.markets, ex.markets_by_id
        bad_key.markets, bad_key.markets_by_id = ex.markets, ex.markets_by_id
        for client in (bad_secret, bad_key):
            for call in (client.fetch_positions([PERP]), client.set_leverage(3, PERP), client.set_margin_mode("isolated", PERP),
                         client.privateGetV5OrderRealtime({"category": "linear", "settleCoin": "USDT"})):
                assert type(await raised(call)) is ccxt.AuthenticationError
    finally:
        await bad_secret.close()
        await bad_key.close()
    assert fx.leverage[PERP] == 7 and fx.margin_mode[PERP] == "cross"
