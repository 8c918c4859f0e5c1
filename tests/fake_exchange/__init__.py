"""A local fake crypto exchange that speaks a venue's real REST protocol on loopback, so
ccxt (and deskgate's execution on top of it) runs unmodified with no internet.

    fx = FakeExchange("binance")                     # or "okx" or "bybit"
    fx.add_market("BTC/USDT", price=65000.0)
    fx.set_balance("USDT", 100_000.0)
    fx.start()
    exchange = ccxt_client(fx)                       # ccxt.async_support.<venue>, sandbox, pointed at fx.url
    ...
    await exchange.close(); fx.stop()

Venues: binance spot (REST /api/v3, symbols "BTCUSDT"), okx v5 (spot, tdMode cash,
symbols "BTC-USDT") and bybit v5 (category=spot, unified trading account, symbols
"BTCUSDT"). Each checks signatures the way the venue does and answers with its JSON
shapes, error payloads and HTTP statuses.

Linear perpetuals too (`fx.add_perpetual("BTC/USDT:USDT", price, contract_size=...)`):
binance USD-M futures (/fapi, "BTCUSDT"), okx SWAP ("BTC-USDT-SWAP", amounts in
contracts of ctVal) and bybit category=linear ("BTCUSDT"), in one-way (net) position
mode, with leverage and margin mode as each venue sets them (binance per symbol, bybit
for the whole unified account, okx per order's tdMode). Each venue's module says what
its calls are and how ccxt maps its errors; tests/test_fake_perps_<venue>.py checks
them. One quote balance serves spot and margin alike, and there is no funding.

Client order ids with ccxt 4.5.90 on binance and okx:

    await ex.create_order("BTC/USDT", "limit", "buy", 0.01, 64000, {"clientOrderId": cid})
    await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": cid})   # symbol is required
    await ex.cancel_order(None, "BTC/USDT", {"clientOrderId": cid})  # symbol is required

binance sends `newClientOrderId` / `origClientOrderId` (legal: ^[a-zA-Z0-9-_]{1,36}$);
okx sends `clOrdId` (legal: 1-32 letters and digits, no '-' or '_'). A client id is
refused while an order with it is still open (binance -2010 "Duplicate order sent.",
okx sCode 51016, bybit 170141); once that order is finished, all three accept the id again
and a lookup returns the newest order with it. That is real venue behaviour, and why a
client retrying an order must look it up by client id first instead of re-sending blindly.
binance's cancel answer carries the cancel's own id in `clientOrderId` (the order's is
`origClientOrderId`), so ccxt's parsed cancel shows a clientOrderId that is not yours.

bybit (unified account) is different. create_order maps clientOrderId to `orderLinkId`
(legal: 1-36 letters, digits, '-', '_'), but nothing else does:

    await ex.fetch_open_orders("BTC/USDT", None, None, {"orderLinkId": cid})
        # GET /v5/order/realtime: naming an id finds the newest such order in ANY status
    await ex.fetch_canceled_and_closed_orders("BTC/USDT", None, None, {"orderLinkId": cid})
        # GET /v5/order/history: finished orders only
    await ex.cancel_order(None, "BTC/USDT", {"orderLinkId": cid})     # POST /v5/order/cancel

cancel_order passes a `clientOrderId` param through untranslated, so bybit gets neither
orderId nor orderLinkId and refuses. fetch_order wants params["acknowledged"] and then
sends orderId=None, which bybit ranks above orderLinkId: it never finds by client id.
An unknown orderLinkId is an empty list, not an error (bybit's "unknown client id"
row below: [] from the lists, OrderNotFound from cancel). Spot has no Expired status (what
the engine expires is `Cancelled`), and a partly filled order that is cancelled is
`PartiallyFilledCanceled`, which ccxt calls "closed". The fee is read from cumFeeDetail.

okx's and bybit's create_order answers have ids only (ccxt status None); fetch the order.

What ccxt 4.5.90 raises for each condition (asserted in tests/test_fake_exchange.py):

    condition                      binance                           okx                               bybit
    wrong secret / key / passphr.  AuthenticationError (-1022/-2015) AuthenticationError (50113/50111/ AuthenticationError (10004;
                                                                       50105)                            10003 with HTTP 401)
    key rejected after a success   DDoSProtection (-2015, ccxt's "temporary ban" guess)
    insufficient balance           InsufficientFunds (-2010 + msg)   InsufficientFunds (51008)         InsufficientFunds (170131)
    under min amount / off step    InvalidOrder (LOT_SIZE)           InvalidOrder (51020 / 51121)      InvalidOrder (170136)
    under min notional             BadRequest (-1013 NOTIONAL)       (okx spot has no min notional)    InvalidOrder (170140)
    duplicate open client id       InvalidOrder (-2010)              InvalidOrder (51016)              InvalidOrder (170141)
    unknown client id              OrderNotFound (-2013 / -2011)     OrderNotFound (51603 / 51400)     [] / OrderNotFound (170213)
    cancel by {"clientOrderId"}    (works)                           (works)                           BadRequest (10001, no id sent)
    fx.down                        OperationFailed (503, -1001)      OnMaintenance (503, 50001)        ExchangeNotAvailable (503, HTML)
    fx.rate_limited                DDoSProtection (429, -1003)       RateLimitExceeded (429, 50011)    RateLimitExceeded (200, 10006)
    clock skew                     InvalidNonce (-1021)              InvalidNonce (50102, beyond 30 s) InvalidNonce (10002: client
                                                                                                         > 5 s behind / >= 1 s ahead)
    Behaviour.timeout > timeout    RequestTimeout                    RequestTimeout                    RequestTimeout
    Behaviour.lost() / lost(504)   ExchangeNotAvailable / RequestTimeout (all three)
    fx.garbage (HTTP 200)          nothing: ccxt returns empty/None-filled structures (all three; bybit: see below)

Note OperationFailed and DDoSProtection: binance's 503 is not a NetworkError, and its 429
is not RateLimitExceeded. ccxt sends recvWindow=10000 to binance, so a skew of exactly
10 s sits on the edge of the window; use a larger skew or options['recvWindow']=5000.

bybit with keys set signs a request (/v5/asset/coin/query-info) in load_markets before
fetch_markets measures the clock, so options['adjustForTimeDifference'] cannot save a
skewed client; call load_time_difference() first. Its first account call asks whether the
account is unified (/v5/user/query-api and /v5/account/info) and ccxt keeps the answer:
garbage there is kept as "classic account", and every later fetch_balance asks for a SPOT
wallet, which a unified account refuses (BadRequest).
"""

from __future__ import annotations

import ccxt.async_support as ccxt_async
from aiohttp import web

from deskgate.execution.ccxt_endpoint import point_at

from . import binance, bybit, okx
from .engine import Behaviour, Engine
from .server import BackgroundServer, garbage_response

__all__ = ["PERPETUAL_TYPE", "Behaviour", "FakeExchange", "ccxt_client", "raised"]

VENUES = {"binance": binance, "okx": okx, "bybit": bybit}


class FakeExchange(Engine):
    """The engine's state served over one venue's REST protocol on 127.0.0.1."""

    def __init__(
        self, venue: str, api_key: str = "test-key", secret: str = "test-secret", passphrase: str = "test-pass"
    ) -> None:
        if venue not in VENUES:
            raise ValueError(f"unknown venue {venue!r}; have {sorted(VENUES)}")
        super().__init__()
        self.venue, self.api_key, self.secret, self.passphrase = venue, api_key, secret, passphrase
        self._server: BackgroundServer | None = None
        self.url = ""

    def app(self) -> web.Application:
        protocol = VENUES[self.venue]

        @web.middleware
        async def conditions(request: web.Request, handler):  # type: ignore[no-untyped-def]
            """Record every request; answer for the venue when it is down or rate limiting;
            replace the (already processed) answer with garbage while `garbage` counts down."""
            with self.lock:
                self.requests.append((request.method, request.path))
            if self.down:
                return protocol.down()
            if self.rate_limited:
                return protocol.rate_limited()
            response = await handler(request)
            return garbage_response() if self.take_garbage() else response

        app = web.Application(middlewares=[conditions])
        app.add_routes(protocol.routes(self))
        return app

    def start(self) -> str:
        self._server = BackgroundServer(self.app())
        self.url = self._server.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


#: The market type ccxt lists each venue's linear perpetuals under.
PERPETUAL_TYPE = {"binance": "linear", "okx": "swap", "bybit": "linear"}


async def raised(coro) -> BaseException:
    """The exception `coro` raises (the test fails if it returns)."""
    import pytest

    with pytest.raises(Exception) as info:
        await coro
    return info.value


def ccxt_client(
    fx: FakeExchange, *, api_key: str | None = None, secret: str | None = None, passphrase: str | None = None,
    perpetuals: bool = False, options: dict | None = None,
) -> ccxt_async.Exchange:
    """A `ccxt.async_support` client for `fx`'s venue: sandbox mode, every URL pointed at
    the fake, markets restricted to spot (and the linear perpetuals with `perpetuals`;
    defaultType stays spot), keys defaulting to the fake's own, then `options` on top.
    ccxt's own throttle is off (the fake does not need it and it would slow tests down)."""
    config = {
        "apiKey": fx.api_key if api_key is None else api_key,
        "secret": fx.secret if secret is None else secret,
        "enableRateLimit": False,
    }
    if fx.venue == "okx":
        config["password"] = fx.passphrase if passphrase is None else passphrase
    exchange = getattr(ccxt_async, fx.venue)(config)
    exchange.set_sandbox_mode(True)
    point_at(exchange, fx.url)
    types = ["spot", PERPETUAL_TYPE[fx.venue]] if perpetuals else ["spot"]
    exchange.options["fetchMarkets"] = {**exchange.options.get("fetchMarkets", {}), "types": types}
    exchange.options["defaultType"] = "spot"  # bybit's is "swap": calls without a symbol would ask for linear
    exchange.options.update(options or {})
    return exchange
