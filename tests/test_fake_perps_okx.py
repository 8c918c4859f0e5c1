"""okx linear perpetual swaps (v5, instType SWAP, net position mode) through real ccxt 4.5.90
against the local fake: markets, leverage per margin mode, orders with tdMode isolated by
clOrdId, the account's open orders of every type, positions, and what ccxt raises for each
refusal.

"BTC-USDT" is the spot pair and "BTC-USDT-SWAP" the perpetual, in CONTRACTS of ctVal 0.01 BTC.
okx has no per-instrument margin-mode switch: each order names its tdMode, and the account
keeps one leverage per (instrument, margin mode). ccxt's set_margin_mode and set_leverage
both POST /api/v5/account/set-leverage."""

from __future__ import annotations

import json

import ccxt
import pytest
from ccxt.test.exchange.base.test_market import test_market as check_market
from ccxt.test.exchange.base.test_order import test_order as check_order
from ccxt.test.exchange.base.test_position import test_position as check_position
from ccxt.test.exchange.base.test_trade import test_trade as check_trade

from fake_exchange import Behaviour, FakeExchange, ccxt_client, raised

SPOT, PERP, PERP_ID = "BTC/USDT", "BTC/USDT:USDT", "BTC-USDT-SWAP"
ETH_PERP = "ETH/USDT:USDT"  # minSz 1 contract, lotSz 0.1: the server-side minimum
ISOLATED = {"marginMode": "isolated"}  # what a swap order needs: without it ccxt sends tdMode "cross"
SET_LEVER = "/api/v5/account/set-leverage"
FAKE_MIXED_MODES = "59999"  # the fake's own code (okx would hold a second position): see fake_exchange/okx.py


@pytest.fixture
def fx():
    fake = FakeExchange("okx")
    fake.add_market(SPOT, price=65_000.0, amount_step=0.00001, price_tick=0.01, min_amount=0.0001, min_cost=5.0)
    fake.add_perpetual(PERP, price=65_000.0, contract_size=0.01, amount_step=0.01, price_tick=0.1, min_amount=0.01)
    fake.add_perpetual(ETH_PERP, price=3_000.0, contract_size=0.1, amount_step=0.1, price_tick=0.01, min_amount=1)
    fake.set_balance("USDT", 100_000.0)
    fake.start()
    yield fake
    fake.stop()



@pytest.fixture
async def ex(fx: FakeExchange):
    # deskgate's okx Dialect: one order, one request (ccxt's default is the batch endpoint)
    exchange = ccxt_client(fx, perpetuals=True, options={"createOrder": "privatePostTradeOrder"})
    await exchange.load_markets(True)
    fx.requests.clear()
    yield exchange
    await exchange.close()



def validate_order(ex, order: dict, method: str, symbol: str = PERP) -> None:
    check_order(ex, {}, method, order, symbol, ex.milliseconds())


def sent(ex) -> dict:
    """The JSON body of ccxt's last POST."""
    return json.loads(ex.last_request_body)


async def buy(ex, cid: str, contracts: float, price: float, **params) -> dict:
    return await ex.create_order(PERP, "limit", "buy", contracts, price,
                                 {"clientOrderId": cid, "timeInForce": "GTC", **ISOLATED, **params})


# ---- 1. markets ----------------------------------------------------------------------------


async def test_load_markets_lists_spot_and_the_swap_with_contract_sizes(fx: FakeExchange) -> None:
    ex = ccxt_client(fx, perpetuals=True)
    try:
        await ex.load_markets(True)
        assert fx.requests == [("GET", "/api/v5/public/instruments")] * 2  # instType SPOT, then SWAP
        spot, perp = ex.market(SPOT), ex.market(PERP)
        for market in (spot, perp, ex.market(ETH_PERP)):
            check_market(ex, {}, "loadMarkets", market)
        assert spot["id"] == "BTC-USDT" and spot["spot"] and not spot["contract"] and spot["contractSize"] is None
        assert perp["id"] == PERP_ID and (perp["type"], perp["swap"], perp["linear"], perp["inverse"]) == ("swap", True, True, False)
        assert (perp["settle"], perp["contractSize"], perp["base"], perp["quote"]) == ("USDT", 0.01, "BTC", "USDT")
        assert perp["precision"] == {**perp["precision"], "amount": 0.01, "price": 0.1}  # lotSz, tickSz: contracts
        assert perp["limits"]["amount"]["min"] == 0.01 and perp["limits"]["cost"]["min"] is None  # no minimum notional
        assert perp["limits"]["leverage"] == {"min": 1.0, "max": 125.0} and perp["active"]
        assert perp["info"]["uly"] == "BTC-USDT" and perp["info"]["baseCcy"] == "" and perp["info"]["ctType"] == "linear"
        assert ex.market(ETH_PERP)["limits"]["amount"]["min"] == 1.0 and ex.market(ETH_PERP)["contractSize"] == 0.1

        ticker = await ex.fetch_ticker(PERP)
        assert ticker["symbol"] == PERP and ticker["last"] == 65_000.0 and ticker["info"]["instType"] == "SWAP"
        assert ticker["quoteVolume"] is None and ticker["baseVolume"] > 0  # a swap's vol24h is contracts
        assert set(await ex.fetch_tickers(None, {"instType": "SWAP"})) == {PERP, ETH_PERP}
        candles = await ex.fetch_ohlcv(PERP, "1h", limit=3)
        assert len(candles) == 3 and candles[-1][4] == 65_000.0
    finally:
        await ex.close()


async def test_account_is_in_net_position_mode(fx: FakeExchange, ex) -> None:
    mode = await ex.fetch_position_mode(PERP)
    assert mode["hedged"] is False and mode["info"]["posMode"] == "net_mode" and mode["info"]["acctLv"] == "2"
    assert fx.requests == [("GET", "/api/v5/account/config")]
    assert (await ex.set_position_mode(False))["data"] == [{"posMode": "net_mode"}]  # already so: accepted


# ---- 2. margin mode and leverage -----------------------------------------------------------


async def test_set_margin_mode_is_set_leverage_and_needs_a_lever(fx: FakeExchange, ex) -> None:
    error = await raised(ex.set_margin_mode("isolated", PERP))
    assert type(error) is ccxt.BadRequest and 'params["lever"]' in str(error) and fx.requests == []  # ccxt's own check

    answer = await ex.set_margin_mode("isolated", PERP, {"lever": 5})
    assert answer["data"] == [{"instId": PERP_ID, "lever": "5", "mgnMode": "isolated", "posSide": "net"}]
    assert sent(ex) == {"lever": 5, "mgnMode": "isolated", "instId": PERP_ID} and fx.requests == [("POST", SET_LEVER)]
    assert (fx.margin_mode[PERP], fx.leverage[PERP]) == ("isolated", 5)

    answer = await ex.set_leverage(5, PERP, ISOLATED)
    assert sent(ex) == {"lever": 5, "mgnMode": "isolated", "instId": PERP_ID, "posSide": "net"}
    assert answer["code"] == "0"
    # the same values again: accepted (while no order is pending in that margin mode, see below)
    await ex.set_margin_mode("isolated", PERP, {"leverage": 5})
    await ex.set_leverage(5, PERP, ISOLATED)
    assert fx.requests == [("POST", SET_LEVER)] * 4
    leverage = await ex.fetch_leverage(PERP, ISOLATED)
    assert (leverage["marginMode"], leverage["longLeverage"], leverage["shortLeverage"]) == ("isolated", 5, 5)
    assert fx.requests[-1] == ("GET", "/api/v5/account/leverage-info")

    for bad in (0, 126):  # ccxt checks 1..125 itself
        assert type(await raised(ex.set_leverage(bad, PERP, ISOLATED))) is ccxt.BadRequest
    assert len(fx.requests) == 5
    error = await raised(ex.set_leverage(5, SPOT, ISOLATED))  # spot margin leverage is not modelled
    assert type(error) is ccxt.BadRequest and "Parameter instId error" in str(error)


async def test_set_leverage_without_margin_mode_sets_the_cross_leverage(fx: FakeExchange, ex) -> None:
    """ccxt's set_leverage defaults mgnMode to cross: the isolated leverage is untouched."""
    await ex.set_leverage(5, PERP, ISOLATED)
    await ex.set_leverage(7, PERP)
    assert sent(ex) == {"lever": 7, "mgnMode": "cross", "instId": PERP_ID}
    assert (await ex.fetch_leverage(PERP, ISOLATED))["longLeverage"] == 5
    assert (await ex.fetch_leverage(PERP))["longLeverage"] == 7  # fetch_leverage defaults to cross too
    # an isolated order uses the isolated leverage: 2 contracts × 0.01 × 65 000 / 5 = 260 USDT of margin
    fx.next_orders.append(Behaviour.rest())
    await buy(ex, "lev5", 2, 65_100.0)
    assert fx.balances["USDT"] == {"free": 100_000.0 - 2 * 0.01 * 65_100 / 5, "used": pytest.approx(260.4)}
    assert (fx.margin_mode[PERP], fx.leverage[PERP]) == ("isolated", 5)
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "lev5"})
    assert (order["info"]["tdMode"], order["info"]["lever"]) == ("isolated", "5")


async def test_leverage_is_refused_while_orders_are_pending_in_that_mode_even_unchanged(fx: FakeExchange, ex) -> None:
    await ex.set_margin_mode("isolated", PERP, {"lever": 5})
    fx.next_orders.append(Behaviour.rest())
    await buy(ex, "busy1", 1, 60_000.0)
    for call in (lambda: ex.set_leverage(5, PERP, ISOLATED), lambda: ex.set_margin_mode("isolated", PERP, {"lever": 5}),
                 lambda: ex.set_leverage(10, PERP, ISOLATED)):
        error = await raised(call())
        assert type(error) is ccxt.ExchangeError  # 59000 is a plain ExchangeError in ccxt's map
        assert '"code":"59000"' in str(error) and "Cancel any open orders" in str(error)
    assert fx.leverage[PERP] == 5
    await ex.set_leverage(9, PERP)  # the cross leverage has no pending order: accepted
    assert (await ex.fetch_leverage(PERP))["longLeverage"] == 9 and fx.leverage[PERP] == 5

    await ex.cancel_order(None, PERP, {"clientOrderId": "busy1"})
    await buy(ex, "pos1", 1, 65_100.0)  # fills: a position alone does not block a leverage change
    await ex.set_leverage(10, PERP, ISOLATED)
    assert fx.leverage[PERP] == 10 and fx.position(PERP).contracts == 1
    (position,) = await ex.fetch_positions([PERP])
    assert position["leverage"] == 10.0 and position["marginMode"] == "isolated"


async def test_cross_leverage_with_pending_cross_orders_is_59107(fx: FakeExchange, ex) -> None:
    fx.next_orders.append(Behaviour.rest())
    await ex.create_order(PERP, "limit", "sell", 1, 70_000.0, {"clientOrderId": "xrest"})  # no marginMode: cross
    assert sent(ex)["tdMode"] == "cross" and fx.margin_mode[PERP] == "cross"
    error = await raised(ex.set_leverage(3, PERP))
    assert type(error) is ccxt.ExchangeError and '"code":"59107"' in str(error) and "pending cross margin orders" in str(error)
    await ex.set_leverage(3, PERP, ISOLATED)  # the other margin mode's leverage: accepted, kept for it
    assert (await ex.fetch_leverage(PERP, ISOLATED))["longLeverage"] == 3 and fx.leverage[PERP] == 20


async def test_isolated_next_to_a_cross_position(fx: FakeExchange, ex) -> None:
    """okx takes the margin mode per order: with a cross position held, setting the isolated
    leverage succeeds (there is nothing to switch), and real okx would open a second, isolated
    position for an isolated order. The fake holds one position per instrument and refuses that
    order with its own code 59999 (ccxt: ExchangeError); a cross order still adds to the cross one."""
    fx.set_position(PERP, 3, 64_000.0)  # traded by hand, in cross (the engine's default mode)
    await ex.set_margin_mode("isolated", PERP, {"lever": 5})
    await ex.set_leverage(5, PERP, ISOLATED)
    assert (fx.margin_mode[PERP], fx.leverage[PERP]) == ("cross", 20)
    assert (await ex.fetch_leverage(PERP, ISOLATED))["longLeverage"] == 5

    error = await raised(buy(ex, "iso1", 1, 65_100.0))
    assert type(error) is ccxt.ExchangeError and FAKE_MIXED_MODES in str(error) and "one position per instrument" in str(error)
    assert fx.orders_for("iso1") == []
    await ex.create_order(PERP, "limit", "buy", 1, 65_100.0, {"clientOrderId": "cross1", "marginMode": "cross"})
    (position,) = await ex.fetch_positions([PERP])
    assert (position["marginMode"], position["contracts"], position["leverage"]) == ("cross", 4.0, 20.0)

    fx.set_position(PERP, 0)  # flat, no orders: the next isolated order opens an isolated position
    await buy(ex, "iso2", 1, 65_100.0)
    assert (fx.margin_mode[PERP], fx.leverage[PERP]) == ("isolated", 5)
    (position,) = await ex.fetch_positions([PERP])
    assert (position["marginMode"], position["contracts"], position["leverage"]) == ("isolated", 1.0, 5.0)


# ---- 3. orders by client id ----------------------------------------------------------------


async def test_limit_buy_fills_in_contracts_with_quote_cost_and_usdt_fee(fx: FakeExchange, ex) -> None:
    await ex.set_margin_mode("isolated", PERP, {"lever": 5})
    placed = await buy(ex, "pfill1", 2, 65_100.0)
    assert sent(ex) == {"instId": PERP_ID, "side": "buy", "ordType": "limit", "sz": "2", "tdMode": "isolated",
                        "px": "65100", "clOrdId": "pfill1"}  # no posSide in net mode, no tgtCcy on a swap
    assert fx.requests[-1] == ("POST", "/api/v5/trade/order")
    assert placed["id"] and placed["clientOrderId"] == "pfill1" and placed["status"] is None  # ids only

    order = await ex.fetch_order(None, PERP, {"clientOrderId": "pfill1"})
    validate_order(ex, order, "fetchOrder")
    assert (order["id"], order["symbol"], order["status"], order["side"], order["type"]) == (placed["id"], PERP, "closed", "buy", "limit")
    assert order["amount"] == order["filled"] == 2.0 and order["remaining"] == 0.0  # contracts
    assert order["average"] == 65_000.0 and order["price"] == 65_100.0
    assert order["cost"] == 1_300.0  # ccxt: filled × contractSize × average, in USDT
    assert order["fee"] == {"cost": 0.65, "currency": "USDT"} and order["fees"] == [{"cost": 0.65, "currency": "USDT"}]
    info = order["info"]
    assert (info["instType"], info["tdMode"], info["lever"], info["posSide"], info["accFillSz"]) == ("SWAP", "isolated", "5", "net", "2")

    assert fx.position(PERP).contracts == 2 and fx.position(PERP).margin == 260
    assert fx.balances["USDT"] == {"free": 100_000.0 - 260 - 0.65, "used": 260.0}
    trades = await ex.fetch_my_trades(PERP)
    assert [(t["amount"], t["price"], t["cost"], t["fee"]["cost"], t["fee"]["currency"]) for t in trades] == [(2.0, 65_000.0, 1_300.0, 0.65, "USDT")]
    check_trade(ex, {}, "fetchMyTrades", trades[0], PERP, ex.milliseconds(), False)
    assert trades[0]["info"]["instType"] == "SWAP"


async def test_td_mode_param_and_the_batch_endpoint_work_too(fx: FakeExchange) -> None:
    ex = ccxt_client(fx, perpetuals=True)  # ccxt's default createOrder: POST /api/v5/trade/batch-orders
    try:
        await ex.load_markets(True)
        await ex.create_order(PERP, "limit", "sell", 1, 64_900.0, {"clientOrderId": "batch1", "tdMode": "isolated"})
        assert fx.requests[-1] == ("POST", "/api/v5/trade/batch-orders") and sent(ex)[0]["tdMode"] == "isolated"
        order = await ex.fetch_order(None, PERP, {"clientOrderId": "batch1"})
        assert (order["status"], order["filled"], order["info"]["tdMode"]) == ("closed", 1.0, "isolated")
        assert fx.position(PERP).contracts == -1 and fx.margin_mode[PERP] == "isolated"
    finally:
        await ex.close()


async def test_a_market_buy_on_a_swap_is_sized_in_contracts(fx: FakeExchange, ex) -> None:
    """A spot market buy's sz is quote by default (tgtCcy); a swap's is contracts, always."""
    placed = await ex.create_order(PERP, "market", "buy", 3, None, {"clientOrderId": "mkt1", **ISOLATED})
    assert "tgtCcy" not in sent(ex) and "px" not in sent(ex)
    order = await ex.fetch_order(placed["id"], PERP)
    validate_order(ex, order, "fetchOrder")
    assert (order["type"], order["status"], order["filled"], order["cost"]) == ("market", "closed", 3.0, 1_950.0)
    assert fx.position(PERP).contracts == 3


async def test_partial_fill_rests_then_fills(fx: FakeExchange, ex) -> None:
    fx.next_orders.append(Behaviour.partial(0.4))
    await buy(ex, "ppart1", 5, 65_100.0)
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "ppart1"})
    validate_order(ex, order, "fetchOrder")
    assert order["status"] == "open" and order["filled"] == 2.0 and order["remaining"] == 3.0
    assert order["cost"] == 2 * 0.01 * 65_000.0
    assert fx.position(PERP).contracts == 2
    (listed,) = await ex.fetch_open_orders(PERP)
    validate_order(ex, listed, "fetchOpenOrders")
    assert listed["clientOrderId"] == "ppart1" and listed["filled"] == 2.0

    fx.fill_open("ppart1")
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "ppart1"})
    assert order["status"] == "closed" and order["filled"] == 5.0 and order["average"] == pytest.approx(65_060.0)
    assert fx.position(PERP).contracts == 5 and await ex.fetch_open_orders(PERP) == []


async def test_resting_order_is_cancelled_by_client_id_and_its_margin_released(fx: FakeExchange, ex) -> None:
    await ex.set_margin_mode("isolated", PERP, {"lever": 10})
    await buy(ex, "prest1", 3, 60_000.0)
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "prest1"})
    assert order["status"] == "open" and order["filled"] == 0.0 and order["cost"] == 0.0
    assert fx.balances["USDT"] == {"free": 100_000.0 - 180.0, "used": 180.0}  # 3 × 0.01 × 60 000 / 10

    cancelled = await ex.cancel_order(None, PERP, {"clientOrderId": "prest1"})
    assert sent(ex) == {"instId": PERP_ID, "clOrdId": "prest1"} and fx.requests[-1] == ("POST", "/api/v5/trade/cancel-order")
    assert cancelled["id"] == order["id"] and cancelled["clientOrderId"] == "prest1"
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "prest1"})
    validate_order(ex, order, "fetchOrder")
    assert order["status"] == "canceled" and order["filled"] == 0.0
    assert fx.balances["USDT"] == {"free": 100_000.0, "used": 0.0}

    assert type(await raised(ex.cancel_order(None, PERP, {"clientOrderId": "prest1"}))) is ccxt.OrderNotFound  # 51400
    assert type(await raised(ex.fetch_order(None, PERP, {"clientOrderId": "nope"}))) is ccxt.OrderNotFound  # 51603
    assert type(await raised(ex.fetch_order(None, SPOT, {"clientOrderId": "prest1"}))) is ccxt.OrderNotFound  # per instId


async def test_selling_closes_the_position_and_realises_the_profit(fx: FakeExchange, ex) -> None:
    await ex.set_margin_mode("isolated", PERP, {"lever": 5})
    await buy(ex, "open1", 2, 65_100.0)
    fx.set_price(PERP, 66_000.0)
    await ex.create_order(PERP, "limit", "sell", 2, 65_900.0, {"clientOrderId": "close1", **ISOLATED})
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "close1"})
    assert order["status"] == "closed" and order["average"] == 66_000.0 and order["cost"] == 1_320.0
    assert fx.position(PERP).contracts == 0 and await ex.fetch_positions([PERP]) == []
    assert fx.balances["USDT"]["used"] == 0 and fx.balances["USDT"]["free"] == pytest.approx(100_000 + 20 - 0.65 - 0.66)


# ---- 4. refusals ---------------------------------------------------------------------------


async def test_insufficient_margin_is_51008(fx: FakeExchange, ex) -> None:
    fx.set_balance("USDT", 100.0)
    await ex.set_margin_mode("isolated", PERP, {"lever": 5})
    error = await raised(buy(ex, "poor1", 2, 65_000.0))  # 260 USDT of margin needed
    assert type(error) is ccxt.InsufficientFunds and '"sCode":"51008"' in str(error) and "Insufficient USDT margin" in str(error)
    await ex.set_margin_mode("isolated", PERP, {"lever": 125})
    await buy(ex, "poor2", 2, 65_000.0)  # 10.4 USDT at 125x
    assert fx.position(PERP).contracts == 2 and fx.orders_for("poor1") == []


async def test_sizes_off_the_lot_or_under_the_minimum_are_invalid_orders(fx: FakeExchange, ex) -> None:
    # under one lot: ccxt's amount_to_precision truncates to 0 and raises before sending
    error = await raised(buy(ex, "tiny1", 0.005, 65_000.0))
    assert type(error) is ccxt.InvalidOrder and "minimum amount precision" in str(error) and fx.requests == []
    # on the lot but under minSz (1 contract of ETH-USDT-SWAP): okx 51020
    error = await raised(ex.create_order(ETH_PERP, "limit", "buy", 0.5, 3_000.0, {"clientOrderId": "tiny2", **ISOLATED}))
    assert type(error) is ccxt.InvalidOrder and '"sCode":"51020"' in str(error)
    # off the lot, sent raw (ccxt would round it): 51121
    body = {"instId": PERP_ID, "tdMode": "isolated", "side": "buy", "ordType": "limit", "sz": "1.005", "px": "65000"}
    error = await raised(ex.privatePostTradeOrder(body))
    assert type(error) is ccxt.InvalidOrder and '"sCode":"51121"' in str(error)
    assert fx.placed == []


async def test_wrong_td_mode_or_pos_side_is_51000(fx: FakeExchange, ex) -> None:
    # ccxt keeps a tdMode param as given: "cash" reaches okx, which refuses it on a swap
    error = await raised(ex.create_order(PERP, "limit", "buy", 1, 65_000.0, {"tdMode": "cash"}))
    assert type(error) is ccxt.BadRequest and "Parameter tdMode error" in str(error) and sent(ex)["tdMode"] == "cash"
    error = await raised(ex.create_order(PERP, "limit", "buy", 1, 65_000.0, {**ISOLATED, "hedged": True}))
    assert sent(ex)["posSide"] == "long"  # hedge mode's posSide, refused in net mode
    assert type(error) is ccxt.BadRequest and "Parameter posSide error" in str(error)
    error = await raised(ex.create_order(SPOT, "limit", "buy", 0.01, 65_000.0, ISOLATED))  # spot margin: not modelled
    assert type(error) is ccxt.BadRequest and "Parameter tdMode error" in str(error)
    assert fx.placed == []


async def test_duplicate_open_client_id_and_rejected_behaviour(fx: FakeExchange, ex) -> None:
    fx.next_orders.append(Behaviour.rest())
    await buy(ex, "pdup1", 1, 60_000.0)
    error = await raised(buy(ex, "pdup1", 1, 60_000.0))
    assert type(error) is ccxt.InvalidOrder and '"sCode":"51016"' in str(error)
    fx.next_orders.append(Behaviour.reject("51008", "Order failed. Insufficient USDT margin in account"))
    assert type(await raised(buy(ex, "prej1", 1, 60_000.0))) is ccxt.InsufficientFunds
    assert [o["client_id"] for o in fx.placed] == ["pdup1"]


async def test_a_lost_answer_hides_a_filled_swap_order_found_by_client_id(fx: FakeExchange, ex) -> None:
    fx.next_orders.append(Behaviour.lost(502))
    assert type(await raised(buy(ex, "plost1", 2, 65_100.0))) is ccxt.ExchangeNotAvailable
    order = await ex.fetch_order(None, PERP, {"clientOrderId": "plost1"})
    assert (order["status"], order["filled"], order["info"]["tdMode"]) == ("closed", 2.0, "isolated")
    assert len(fx.orders_for("plost1")) == 1 and fx.position(PERP).contracts == 2


# ---- 5. the account's open orders ----------------------------------------------------------


async def test_open_orders_without_a_symbol_list_spot_and_swap_together(fx: FakeExchange, ex) -> None:
    await ex.create_order(SPOT, "limit", "buy", 0.01, 60_000.0, {"clientOrderId": "spotrest"})
    await buy(ex, "swaprest", 1, 60_000.0)
    await ex.create_order(ETH_PERP, "limit", "sell", 2, 3_500.0, {"clientOrderId": "ethrest", **ISOLATED})
    orders = await ex.fetch_open_orders(None, None, 100)
    assert "instType" not in ex.last_request_url and fx.requests[-1] == ("GET", "/api/v5/trade/orders-pending")
    assert [(o["clientOrderId"], o["symbol"]) for o in orders] == [("spotrest", SPOT), ("swaprest", PERP), ("ethrest", ETH_PERP)]
    for o in orders:
        validate_order(ex, o, "fetchOpenOrders", o["symbol"])
    assert [o["amount"] for o in orders] == [0.01, 1.0, 2.0]  # base for spot, contracts for swaps

    only_swaps = await ex.fetch_open_orders(None, None, None, {"instType": "SWAP"})
    assert [o["clientOrderId"] for o in only_swaps] == ["swaprest", "ethrest"]
    assert [o["clientOrderId"] for o in await ex.fetch_open_orders(PERP)] == ["swaprest"]
    # deskgate's paging: older than the oldest id of the page (the list is newest first)
    newest_two = await ex.fetch_open_orders(None, None, 2)
    older = await ex.fetch_open_orders(None, None, 2, {"after": min(o["id"] for o in newest_two)})
    assert [o["clientOrderId"] for o in newest_two + older] == ["swaprest", "ethrest", "spotrest"]
    closed = await ex.fetch_closed_orders(None, None, None, {"instType": "SWAP"})
    assert closed == []


# ---- 6. positions --------------------------------------------------------------------------


async def test_positions_are_listed_for_swap_and_pass_ccxt_validators(fx: FakeExchange, ex) -> None:
    assert await ex.fetch_positions() == [] and await ex.fetch_positions([PERP]) == []
    await ex.set_margin_mode("isolated", PERP, {"lever": 5})
    await buy(ex, "long1", 2, 65_100.0)
    await ex.set_margin_mode("isolated", ETH_PERP, {"lever": 10})
    await ex.create_order(ETH_PERP, "limit", "sell", 3, 2_990.0, {"clientOrderId": "short1", **ISOLATED})
    fx.set_price(PERP, 66_000.0)

    every = await ex.fetch_positions(None, {"instType": "SWAP"})
    assert "instType=SWAP" in ex.last_request_url and fx.requests[-1] == ("GET", "/api/v5/account/positions")
    assert sorted(p["symbol"] for p in every) == [PERP, ETH_PERP]
    assert sorted(p["symbol"] for p in await ex.fetch_positions()) == [PERP, ETH_PERP]  # no instType: every type
    assert await ex.fetch_positions(None, {"instType": "MARGIN"}) == []
    (btc,) = await ex.fetch_positions([PERP])
    assert f"instId={PERP_ID}" in ex.last_request_url
    check_position(ex, {}, "fetchPositions", btc, PERP, ex.milliseconds())
    assert (btc["side"], btc["contracts"], btc["contractSize"], btc["entryPrice"], btc["markPrice"]) == ("long", 2.0, 0.01, 65_000.0, 66_000.0)
    assert (btc["marginMode"], btc["leverage"], btc["hedged"]) == ("isolated", 5.0, False)
    assert btc["notional"] == 1_320.0 and btc["unrealizedPnl"] == 20.0  # 2 × 0.01 × (66 000 − 65 000)
    assert btc["initialMargin"] == btc["positionMargin"] == 260.0 and btc["collateral"] == 280.0
    assert btc["liquidationPrice"] < 65_000.0 and btc["info"]["pos"] == "2"

    (eth,) = await ex.fetch_positions([ETH_PERP])
    check_position(ex, {}, "fetchPositions", eth, ETH_PERP, ex.milliseconds())
    assert (eth["side"], eth["contracts"], eth["entryPrice"], eth["leverage"]) == ("short", 3.0, 3_000.0, 10.0)
    assert eth["info"]["pos"] == "-3" and eth["notional"] == 900.0 and eth["liquidationPrice"] > 3_000.0

    balance = await ex.fetch_balance()
    assert balance["USDT"]["used"] == 260.0 + 90.0  # isolated margins
    assert balance["info"]["data"][0]["details"][0]["isoEq"] == "350"


async def test_a_cross_position_passes_the_validator(fx: FakeExchange, ex) -> None:
    fx.set_position(PERP, -4, 66_000.0)
    (position,) = await ex.fetch_positions([PERP], {"instType": "SWAP"})
    check_position(ex, {}, "fetchPositions", position, PERP, ex.milliseconds())
    assert (position["marginMode"], position["side"], position["contracts"], position["leverage"]) == ("cross", "short", 4.0, 20.0)
    assert position["initialMargin"] == 130.0 and position["info"]["margin"] == "" and position["info"]["imr"] == "130"
    assert position["unrealizedPnl"] == 40.0


# ---- 7. venue conditions on the new endpoints ----------------------------------------------


async def test_down_rate_limited_garbage_and_bad_keys_on_the_account_endpoints(fx: FakeExchange, ex) -> None:
    fx.down = True
    assert type(await raised(ex.fetch_positions([PERP]))) is ccxt.OnMaintenance
    assert type(await raised(ex.set_leverage(5, PERP, ISOLATED))) is ccxt.OnMaintenance
    fx.down = False
    fx.rate_limited = True
    assert type(await raised(ex.set_margin_mode("isolated", PERP, {"lever": 5}))) is ccxt.RateLimitExceeded
    fx.rate_limited = False
    assert fx.leverage[PERP] == 20

    fx.garbage = 2  # ccxt parses a 200 body that is not JSON as empty: no error, no positions, no answer
    assert await ex.fetch_positions([PERP]) == []
    answer = await ex.set_leverage(5, PERP, ISOLATED)
    assert isinstance(answer, str) and fx.leverage[PERP] == 5  # applied all the same

    for credentials, code in (({"secret": "wrong"}, "50113"), ({"api_key": "wrong"}, "50111"), ({"passphrase": "wrong"}, "50105")):
        bad = ccxt_client(fx, **credentials)
        bad.options["fetchMarkets"] = {"types": ["spot", "swap"]}
        try:
            await bad.load_markets()
            for call in (lambda: bad.fetch_positions([PERP]), lambda: bad.set_leverage(3, PERP, ISOLATED),
                         lambda: bad.fetch_leverage(PERP, ISOLATED), bad.fetch_position_mode):
                error = await raised(call())
                assert type(error) is ccxt.AuthenticationError and code in str(error)
        finally:
            await bad.close()
    assert fx.leverage[PERP] == 5


async def test_clock_skew_is_invalid_nonce_on_set_leverage(fx: FakeExchange, ex) -> None:
    fx.clock_skew_ms = 60_000
    assert type(await raised(ex.set_leverage(5, PERP, ISOLATED))) is ccxt.InvalidNonce
    assert fx.leverage[PERP] == 20
