"""Venue-neutral state of the fake exchange: markets, balances, orders, trades and one
tiny matching rule, all behind one `threading.Lock` because tests poke it from their
own thread while the HTTP server runs in another.

Amounts are `Decimal` inside, so a step of 0.00001 times a tick of 0.01 stays exact and
balances never drift; venues format them as their wire protocol wants. Public methods
return snapshots (copies), so a venue can render an order without holding the lock.
"""

from __future__ import annotations

import copy
import itertools
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

FEE_RATE = Decimal("0.001")  # 0.1 %, charged in the asset received (as binance and okx do on spot)
PERP_FEE_RATE = Decimal("0.0005")  # 0.05 % of the notional, in the settle (quote) currency
DEFAULT_LEVERAGE = 20  # what a venue sets on a perpetual nobody has touched (binance's default)
MAX_LEVERAGE = 125


def dec(value: float | int | str | Decimal) -> Decimal:
    """Decimal from a float via its shortest repr, so 0.1 is 0.1 and not 0.1000000000000000055."""
    return value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else str(value))


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


@dataclass(frozen=True)
class Behaviour:
    """What the venue does with the next accepted order (consumed FIFO, one per order).

    kind: fill | partial | rest | timeout | lost | reject. `timeout` and `lost` decide
    only how the answer reaches the client; the order itself is matched with `then`."""

    kind: str = "fill"
    fraction: float = 1.0
    seconds: float = 0.0
    then: Behaviour | None = None
    code: int | str | None = None
    msg: str | None = None
    status: int = 502

    @classmethod
    def fill(cls) -> Behaviour:
        """Default: a crossing limit (or a market order) fills fully at the current price, else it rests."""
        return cls("fill")

    @classmethod
    def partial(cls, fraction: float) -> Behaviour:
        """Fill `fraction` of the amount (rounded down to the step); the rest rests (market/IOC: expires)."""
        return cls("partial", fraction=fraction)

    @classmethod
    def rest(cls) -> Behaviour:
        """Stay open and unfilled even if the price crosses (a market order expires unfilled)."""
        return cls("rest")

    @classmethod
    def timeout(cls, seconds: float, then: Behaviour | None = None) -> Behaviour:
        """Accept and match with `then` (default fill) but answer only after `seconds`."""
        return cls("timeout", seconds=seconds, then=then or cls.fill())

    @classmethod
    def lost(cls, status: int = 502) -> Behaviour:
        """Accept and fill, but answer with a gateway error (HTML body): outcome unknown to the client."""
        return cls("lost", status=status, then=cls.fill())

    @classmethod
    def reject(cls, code: int | str, msg: str) -> Behaviour:
        """Refuse the order with this venue-native error code and message; nothing is placed."""
        return cls("reject", code=code, msg=msg)

    @property
    def matching(self) -> Behaviour:
        """The behaviour that decides fills (timeout/lost delegate to `then`)."""
        return self.then.matching if self.then is not None else self


@dataclass
class Market:
    symbol: str  # unified, "BTC/USDT"
    base: str
    quote: str
    price: Decimal
    amount_step: Decimal
    price_tick: Decimal
    min_amount: Decimal
    min_cost: Decimal
    # A linear perpetual ("BTC/USDT:USDT"): amounts are contracts of this much base, margin and
    # profit are in the quote. None: spot.
    contract_size: Decimal | None = None

    @property
    def perpetual(self) -> bool:
        return self.contract_size is not None

    def base_of(self, amount: Decimal) -> Decimal:
        """An order amount in the base currency (a perpetual's amounts are contracts)."""
        return amount * self.contract_size if self.contract_size is not None else amount


@dataclass
class Position:
    """One perpetual's position, one-way (net) mode: contracts are signed, + long, - short."""

    symbol: str
    contracts: Decimal = Decimal(0)
    entry_price: Decimal = Decimal(0)
    margin: Decimal = Decimal(0)  # isolated margin held for it, in the quote
    realized: Decimal = Decimal(0)
    updated_ms: int = 0

    @property
    def side(self) -> str:
        return "long" if self.contracts > 0 else "short" if self.contracts < 0 else ""


@dataclass
class Trade:
    id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_asset: str
    maker: bool
    time_ms: int
    contract_size: Decimal = Decimal(1)  # a perpetual's trade: `amount` is contracts of this much base

    @property
    def cost(self) -> Decimal:
        return self.price * self.amount * self.contract_size


@dataclass
class Order:
    """One accepted order. status: open | filled | canceled | expired."""

    id: int
    client_id: str
    symbol: str
    side: str  # buy | sell
    type: str  # limit | market
    tif: str  # GTC | IOC | FOK
    amount: Decimal
    price: Decimal | None  # limit price; None for market orders
    created_ms: int
    behaviour: Behaviour
    quote_amount: Decimal | None = None  # market buy sized in quote (binance quoteOrderQty, okx tgtCcy=quote_ccy)
    status: str = "open"
    filled: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    fee_asset: str = ""
    locked: Decimal = Decimal(0)  # still reserved in the lock currency (quote for buys, base for sells)
    lock_price: Decimal = Decimal(0)  # price the buy's quote was reserved at
    updated_ms: int = 0
    trades: list[Trade] = field(default_factory=list)
    # A perpetual's order: amounts are contracts of this much base; `cost` is in the quote either way.
    contract_size: Decimal = Decimal(1)

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def average(self) -> Decimal | None:
        return self.cost / (self.filled * self.contract_size) if self.filled else None

    def as_placed(self) -> dict:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
            "amount": float(self.amount),
            "price": float(self.price) if self.price is not None else None,
            "filled": float(self.filled),
            "status": self.status,
        }


class Refused(Exception):
    """The venue refuses an order. reason: unknown_symbol | price_tick | amount_step | amount_min |
    cost_min | duplicate | insufficient | reject (then code/msg are the venue's own)."""

    def __init__(self, reason: str, code: int | str | None = None, msg: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.code, self.msg = reason, code, msg


class Engine:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.markets: dict[str, Market] = {}
        self._balances: dict[str, dict[str, Decimal]] = {}
        self._orders: list[Order] = []
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self.next_orders: deque[Behaviour] = deque()
        self.requests: list[tuple[str, str]] = []
        # venue conditions, read by the HTTP layer on every request
        self.down = False
        self.rate_limited = False
        self.clock_skew_ms = 0
        self.garbage = 0
        # bybit's realtime list keeps only the newest finished orders (500 on a unified account);
        # None: every one. A lookup past it must go to the history.
        self.realtime_keeps_finished: int | None = None
        # perpetuals: positions, and each symbol's leverage and margin mode as the account set them
        self._positions: dict[str, Position] = {}
        self.leverage: dict[str, int] = {}
        self.margin_mode: dict[str, str] = {}
        self._last_created_ms = 0

    # ---- time and venue conditions -------------------------------------------------

    def now_ms(self) -> int:
        """The venue's clock: real time plus `clock_skew_ms`."""
        return int(time.time() * 1000) + self.clock_skew_ms

    def take_garbage(self) -> bool:
        """Count one garbage answer down; True if this answer must be garbage."""
        with self.lock:
            if self.garbage > 0:
                self.garbage -= 1
                return True
            return False

    # ---- setup ---------------------------------------------------------------------

    def add_market(
        self,
        symbol: str,
        price: float,
        amount_step: float = 0.00001,
        price_tick: float = 0.01,
        min_amount: float = 0.00001,
        min_cost: float = 5.0,
    ) -> None:
        base, quote = symbol.split("/")
        with self.lock:
            self.markets[symbol] = Market(
                symbol, base, quote, dec(price), dec(amount_step), dec(price_tick), dec(min_amount), dec(min_cost)
            )
            for ccy in (base, quote):
                self._balances.setdefault(ccy, {"free": Decimal(0), "used": Decimal(0)})

    def add_perpetual(
        self,
        symbol: str,
        price: float,
        contract_size: float = 1.0,
        amount_step: float = 0.001,
        price_tick: float = 0.1,
        min_amount: float = 0.001,
        min_cost: float = 5.0,
    ) -> None:
        """A linear perpetual, e.g. "BTC/USDT:USDT" (amounts in contracts of `contract_size` base)."""
        pair, settle = symbol.split(":")
        base, quote = pair.split("/")
        if settle != quote:
            raise ValueError(f"{symbol}: only linear perpetuals (settled in the quote) are modelled")
        with self.lock:
            self.markets[symbol] = Market(
                symbol, base, quote, dec(price), dec(amount_step), dec(price_tick), dec(min_amount), dec(min_cost),
                contract_size=dec(contract_size),
            )
            self._balances.setdefault(quote, {"free": Decimal(0), "used": Decimal(0)})
            self.leverage.setdefault(symbol, DEFAULT_LEVERAGE)
            self.margin_mode.setdefault(symbol, "cross")

    def set_leverage(self, symbol: str, leverage: int) -> None:
        """Raises Refused("unknown_symbol" | "leverage_range")."""
        with self.lock:
            m = self.markets.get(symbol)
            if m is None or not m.perpetual:
                raise Refused("unknown_symbol")
            if not 1 <= leverage <= MAX_LEVERAGE:
                raise Refused("leverage_range")
            self.leverage[symbol] = int(leverage)

    def set_margin_mode(self, symbol: str, mode: str) -> bool:
        """"isolated" or "cross"; False when it already was. Raises Refused("margin_mode_busy")
        while the symbol has a position or open orders (venues refuse a switch then)."""
        with self.lock:
            m = self.markets.get(symbol)
            if m is None or not m.perpetual:
                raise Refused("unknown_symbol")
            if mode not in ("isolated", "cross"):
                raise Refused("margin_mode")
            if self.margin_mode.get(symbol) == mode:
                return False
            pos = self._positions.get(symbol)
            if (pos is not None and pos.contracts) or any(o.symbol == symbol and o.status == "open" for o in self._orders):
                raise Refused("margin_mode_busy")
            self.margin_mode[symbol] = mode
            return True

    def positions(self) -> list[Position]:
        """Every perpetual's position that is not flat (copies)."""
        with self.lock:
            return [copy.copy(p) for p in self._positions.values() if p.contracts]

    def position(self, symbol: str) -> Position:
        with self.lock:
            return copy.copy(self._positions.get(symbol) or Position(symbol))

    def set_position(self, symbol: str, contracts: float, entry_price: float | None = None) -> None:
        """Put a position on the account directly (someone traded by hand): for reconciliation tests."""
        with self.lock:
            m = self.markets[symbol]
            entry = dec(entry_price) if entry_price is not None else m.price
            lev = Decimal(self.leverage.get(symbol, DEFAULT_LEVERAGE))
            self._positions[symbol] = Position(symbol, dec(contracts), entry, abs(m.base_of(dec(contracts))) * entry / lev,
                                               updated_ms=self.now_ms())

    def set_balance(self, currency: str, free: float) -> None:
        with self.lock:
            self._balances.setdefault(currency, {"free": Decimal(0), "used": Decimal(0)})["free"] = dec(free)

    @property
    def balances(self) -> dict[str, dict[str, float]]:
        with self.lock:
            return {c: {"free": float(b["free"]), "used": float(b["used"])} for c, b in self._balances.items()}

    def balance_snapshot(self) -> dict[str, dict[str, Decimal]]:
        with self.lock:
            return copy.deepcopy(self._balances)

    def market_list(self) -> list[Market]:
        with self.lock:
            return [copy.copy(m) for m in self.markets.values()]

    def market(self, symbol: str) -> Market | None:
        with self.lock:
            m = self.markets.get(symbol)
            return copy.copy(m) if m else None

    def set_price(self, symbol: str, price: float) -> None:
        """Move the market; resting orders that now cross fill fully at their limit price."""
        with self.lock:
            m = self.markets[symbol]
            m.price = dec(price)
            for o in self._orders:
                if o.symbol == symbol and o.status == "open" and self._crosses(o, m.price):
                    self._fill(o, o.remaining, o.price, maker=True)

    # ---- inspection ----------------------------------------------------------------

    @property
    def placed(self) -> list[dict]:
        with self.lock:
            return [o.as_placed() for o in self._orders]

    def orders_for(self, client_id: str) -> list[dict]:
        return [o for o in self.placed if o["client_id"] == client_id]

    def find(self, symbol: str | None, order_id: int | None = None, client_id: str | None = None) -> Order | None:
        """The latest order matching id or client id (a reused client id finds the newest)."""
        with self.lock:
            for o in reversed(self._orders):
                if symbol is not None and o.symbol != symbol:
                    continue
                if (order_id is not None and o.id == order_id) or (bool(client_id) and o.client_id == client_id):
                    return copy.deepcopy(o)
            return None

    def orders(self, symbol: str | None = None, status: str | None = None) -> list[Order]:
        with self.lock:
            return [
                copy.deepcopy(o)
                for o in self._orders
                if (symbol is None or o.symbol == symbol) and (status is None or o.status == status)
            ]

    def trades(self, symbol: str | None = None, order_id: int | None = None) -> list[Trade]:
        with self.lock:
            return [
                copy.copy(t)
                for o in self._orders
                for t in o.trades
                if (symbol is None or t.symbol == symbol) and (order_id is None or t.order_id == order_id)
            ]

    # ---- the matching rule ---------------------------------------------------------

    def place(
        self,
        symbol: str,
        side: str,
        order_type: str,
        amount: Decimal | None,
        price: Decimal | None,
        client_id: str,
        tif: str = "GTC",
        quote_amount: Decimal | None = None,
        check_min_cost: bool = True,
    ) -> Order:
        """Validate, consume one behaviour, accept, lock funds and match. Raises `Refused`."""
        with self.lock:
            m = self.markets.get(symbol)
            if m is None:
                raise Refused("unknown_symbol")
            if order_type == "limit" and (price is None or price <= 0 or price % m.price_tick != 0):
                raise Refused("price_tick")
            if amount is None:  # a market buy sized in quote: what the quote buys now, down to the step
                amount = floor_to(quote_amount / m.price, m.amount_step)
            if amount % m.amount_step != 0:
                raise Refused("amount_step")
            if amount < m.min_amount or amount <= 0:
                raise Refused("amount_min")
            ref_price = price if order_type == "limit" else m.price
            if check_min_cost and m.base_of(amount) * ref_price < m.min_cost:
                raise Refused("cost_min")
            if client_id and any(o.client_id == client_id and o.status == "open" for o in self._orders):
                raise Refused("duplicate")
            if m.perpetual:  # initial margin at the symbol's leverage, in the quote, whichever the side
                lock_ccy, need = m.quote, m.base_of(amount) * ref_price / Decimal(self.leverage.get(symbol, DEFAULT_LEVERAGE))
            else:
                lock_ccy, need = (m.quote, amount * ref_price) if side == "buy" else (m.base, amount)
            bal = self._balances.setdefault(lock_ccy, {"free": Decimal(0), "used": Decimal(0)})
            if bal["free"] < need:
                raise Refused("insufficient")
            behaviour = self.next_orders.popleft() if self.next_orders else Behaviour.fill()
            if behaviour.kind == "reject":
                raise Refused("reject", behaviour.code, behaviour.msg)
            # One order a millisecond at most: clients sort open orders by creation time, and a tie
            # would leave two orders' order to chance.
            now = self._last_created_ms = max(self.now_ms(), self._last_created_ms + 1)
            o = Order(
                next(self._order_ids), client_id, symbol, side, order_type, tif, amount, price, now, behaviour,
                quote_amount=quote_amount, updated_ms=now, contract_size=m.contract_size or Decimal(1),
            )
            bal["free"] -= need
            bal["used"] += need
            o.locked, o.lock_price = need, ref_price
            self._orders.append(o)
            self._match(o, m, behaviour.matching)
            return copy.deepcopy(o)

    def _match(self, o: Order, m: Market, b: Behaviour) -> None:
        crosses = self._crosses(o, m.price)
        px = m.price if crosses else o.price
        if b.kind == "fill" and crosses:
            self._fill(o, o.amount, m.price, maker=False)
        elif b.kind == "partial" and not (o.tif == "FOK"):
            qty = floor_to(o.amount * dec(b.fraction), self.markets[o.symbol].amount_step)
            if qty > 0:
                self._fill(o, min(qty, o.amount), px, maker=not crosses)
        if o.status == "open" and (o.type == "market" or o.tif in ("IOC", "FOK")):
            self._close(o, "expired")

    @staticmethod
    def _crosses(o: Order, price: Decimal) -> bool:
        if o.type == "market":
            return True
        return o.price >= price if o.side == "buy" else o.price <= price

    def _fill(self, o: Order, qty: Decimal, px: Decimal, maker: bool) -> None:
        m = self.markets[o.symbol]
        if m.perpetual:
            return self._fill_perpetual(o, m, qty, px, maker)
        b, q = self._balances[m.base], self._balances[m.quote]
        cost = qty * px
        if o.side == "buy":
            release = min(o.locked, qty * o.lock_price)
            q["used"] -= release
            q["free"] += release - cost
            fee, fee_asset = qty * FEE_RATE, m.base
            b["free"] += qty - fee
        else:
            release = min(o.locked, qty)
            b["used"] -= release
            fee, fee_asset = cost * FEE_RATE, m.quote
            q["free"] += cost - fee
        o.locked -= release
        now = self.now_ms()
        o.trades.append(Trade(next(self._trade_ids), o.id, o.symbol, o.side, px, qty, fee, fee_asset, maker, now))
        o.filled += qty
        o.cost += cost
        o.fee += fee
        o.fee_asset = fee_asset
        o.updated_ms = now
        if o.filled >= o.amount:
            self._close(o, "filled")

    def _fill_perpetual(self, o: Order, m: Market, qty: Decimal, px: Decimal, maker: bool) -> None:
        """A perpetual's fill moves the position: what it closes realises profit and frees its
        margin, what it opens takes margin at the symbol's leverage; the fee is in the quote."""
        q = self._balances[m.quote]
        release = o.locked if qty >= o.remaining else min(o.locked, o.locked * qty / o.remaining)
        q["used"] -= release
        q["free"] += release
        o.locked -= release
        pos = self._positions.setdefault(o.symbol, Position(o.symbol))
        signed = qty if o.side == "buy" else -qty
        lev = Decimal(self.leverage.get(o.symbol, DEFAULT_LEVERAGE))
        if pos.contracts and (pos.contracts > 0) != (signed > 0):  # closes (part of) the position
            closing = min(abs(signed), abs(pos.contracts))
            direction = Decimal(1) if pos.contracts > 0 else Decimal(-1)
            pnl = (px - pos.entry_price) * m.base_of(closing) * direction
            freed = pos.margin * closing / abs(pos.contracts)
            pos.margin -= freed
            q["used"] -= freed
            q["free"] += freed + pnl
            pos.realized += pnl
            pos.contracts += closing * (Decimal(1) if signed > 0 else Decimal(-1))
            signed -= closing * (Decimal(1) if signed > 0 else Decimal(-1))
            if not pos.contracts:
                pos.entry_price, pos.margin = Decimal(0), Decimal(0)
        if signed:  # opens or adds
            total = pos.contracts + signed
            pos.entry_price = (pos.entry_price * abs(pos.contracts) + px * abs(signed)) / abs(total)
            margin = m.base_of(abs(signed)) * px / lev
            pos.margin += margin
            q["free"] -= margin
            q["used"] += margin
            pos.contracts = total
        cost = m.base_of(qty) * px
        fee = cost * PERP_FEE_RATE
        q["free"] -= fee
        now = self.now_ms()
        pos.updated_ms = now
        o.trades.append(Trade(next(self._trade_ids), o.id, o.symbol, o.side, px, qty, fee, m.quote, maker, now, m.contract_size))
        o.filled += qty
        o.cost += cost
        o.fee += fee
        o.fee_asset = m.quote
        o.updated_ms = now
        if o.filled >= o.amount:
            self._close(o, "filled")

    def _close(self, o: Order, status: str) -> None:
        """Finish an order and give back whatever it still had reserved."""
        m = self.markets[o.symbol]
        bal = self._balances[m.quote if o.side == "buy" or m.perpetual else m.base]
        bal["used"] -= o.locked
        bal["free"] += o.locked
        o.locked = Decimal(0)
        o.status = status
        o.updated_ms = self.now_ms()

    # ---- later events --------------------------------------------------------------

    def _open_by_client_id(self, client_id: str) -> Order:
        for o in reversed(self._orders):
            if o.client_id == client_id and o.status == "open":
                return o
        raise KeyError(f"no open order with client id {client_id!r}")

    def fill_open(self, client_id: str, fraction: float = 1.0) -> None:
        """Fill `fraction` of what remains of a resting order, at its limit price (as a maker)."""
        with self.lock:
            o = self._open_by_client_id(client_id)
            qty = o.remaining if fraction >= 1 else floor_to(o.remaining * dec(fraction), self.markets[o.symbol].amount_step)
            if qty > 0:
                self._fill(o, qty, o.price if o.price is not None else self.markets[o.symbol].price, maker=True)

    def expire(self, client_id: str) -> None:
        """The venue expires a resting order (binance EXPIRED, okx canceled)."""
        with self.lock:
            self._close(self._open_by_client_id(client_id), "expired")

    def cancel(self, symbol: str, order_id: int | None = None, client_id: str | None = None) -> Order | None:
        """Cancel an open order; None if there is no such order or it is no longer open."""
        with self.lock:
            for o in reversed(self._orders):
                if o.symbol == symbol and ((order_id is not None and o.id == order_id) or (bool(client_id) and o.client_id == client_id)):
                    if o.status != "open":
                        return None
                    self._close(o, "canceled")
                    return copy.deepcopy(o)
            return None


# ---- synthetic market data, deterministic around the current price -------------------

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "M": 2_592_000_000}


def interval_ms(interval: str) -> int | None:
    """'1m', '4h', '1d' (binance) or '1H', '6Hutc', '1Dutc' (okx) in milliseconds; None if unknown."""
    text = interval.removesuffix("utc")
    count, unit = text[:-1], text[-1]
    if not count.isdigit():
        return None
    unit = unit if unit in ("m", "M") else unit.lower()
    return int(count) * _UNIT_MS[unit] if unit in _UNIT_MS else None


def _wiggle(n: int) -> Decimal:
    return Decimal(1) + dec(round(math.sin(n * 0.7) * 0.002, 9))


def round_to(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value() * step


@dataclass(frozen=True)
class Candle:
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @property
    def quote_volume(self) -> Decimal:
        return self.volume * (self.open + self.close) / 2


def candles(m: Market, step_ms: int, first: int, last: int, now_ms: int) -> list[Candle]:
    """Candles number `first`..`last` (open time = n * step_ms), oldest first, on a smooth
    deterministic path whose newest candle (the one holding `now_ms`) closes at the price."""
    current = now_ms // step_ms

    def close(n: int) -> Decimal:
        return round_to(m.price * _wiggle(n) / _wiggle(current), m.price_tick)

    out = []
    for n in range(first, min(last, current) + 1):
        o, c = close(n - 1), close(n)
        hi = floor_to(max(o, c) * Decimal("1.0005"), m.price_tick) + m.price_tick
        lo = floor_to(min(o, c) * Decimal("0.9995"), m.price_tick)
        vol = Decimal(1) + Decimal(n % 7) / 4
        out.append(Candle(n * step_ms, o, hi, lo, c, vol))
    return out


@dataclass(frozen=True)
class Stats24h:
    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    bid: Decimal
    ask: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_ms: int


def stats_24h(m: Market, now_ms: int) -> Stats24h:
    """24 h statistics consistent with the hourly candles and the current price."""
    hour = 3_600_000
    cs = candles(m, hour, now_ms // hour - 23, now_ms // hour, now_ms)
    return Stats24h(
        open=cs[0].open,
        high=max(max(c.high for c in cs), m.price),
        low=min(min(c.low for c in cs), m.price),
        last=m.price,
        bid=m.price - m.price_tick,
        ask=m.price + m.price_tick,
        volume=sum((c.volume for c in cs), Decimal(0)),
        quote_volume=sum((c.quote_volume for c in cs), Decimal(0)),
        open_ms=now_ms - 24 * hour,
    )
