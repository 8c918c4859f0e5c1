"""The book: fills and bars applied to the ledger, the ledger kept saved, and the
beliefs' prices, positions and equity kept equal to it.

The book trusts fills the executor signed for orders the factory sent, and refuses
the implausible ones (a broken venue adapter) for a human to look at.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime

import nats.errors
from pydantic import ValidationError

from deskgate.audit.keys import KeyStore
from deskgate.audit.signing import Kind, SignatureStatus, verify_headers
from deskgate.bus import subjects as S
from deskgate.bus.reader import ReadError, last_message
from deskgate.clock import Clock, MarketClock
from deskgate.config import Mission
from deskgate.domain.approval import ApprovalOutcome, IntentionState
from deskgate.domain.execution import Fill
from deskgate.domain.market import Bar
from deskgate.factory import intentions
from deskgate.factory.outbox import Effects
from deskgate.factory.state import FactoryState
from deskgate.factory.store import FactoryStore
from deskgate.portfolio.ledger import Ledger

log = logging.getLogger("deskgate.factory")

EQUITY_POINT_EVERY_S = 10.0
LEDGER_SAVE_EVERY_S = 2.0
# A fill further from the order's reference price than this many approval price
# bands is refused as implausible (a broken venue adapter), and kept for a human.
FILL_DEVIATION_BANDS = 5.0
# A fee above this share of the notional is refused as implausible too.
MAX_FEE_SHARE = 0.01


class Book:
    def __init__(self, store: FactoryStore, state: FactoryState, keys: KeyStore, mission: Mission, clock: Clock, stats: dict):
        self.store = store
        self.state = state
        self.keys = keys
        self.mission = mission
        self.clock = clock
        self.stats = stats
        self.peak_dirty = False  # a new peak moved the breaker's reference: save soon
        self._last_ledger_save = 0.0
        self._last_equity_point = 0.0

    def load(self, conn) -> Ledger:
        """The stored ledger (or a fresh one, saved at once)."""
        stored = self.store.load_ledger(conn)
        ledger = Ledger.from_state(stored) if stored else Ledger.opening(self.mission.paper.starting_equity_usd)
        if stored is None:
            self.store.save_ledger(conn, ledger.to_state(), self.clock.now())
        return ledger

    async def load_prices(self, nc) -> None:
        """The latest stored bar of every asset the desk trades, holds or reserves."""
        led, b = self.state.ledger, self.state.beliefs
        assets = set(self.mission.marketdata.assets) | {a for a, _ in led.holdings} | {r.asset for r in b.pending.values()}
        for asset in sorted(assets):
            try:
                stored = await last_message(nc, "MARKET", S.bar_subject(asset))
            except (ReadError, nats.errors.Error) as exc:
                log.warning("could not read last price for %s: %s", asset, exc)
                continue
            if stored is not None:
                self.apply_bar(stored.data)

    def apply_fill(self, seq: int, data: bytes, headers: dict | None, effects: Effects) -> ApprovalOutcome | None:
        now = self.clock.now()
        self.stats["fills"] += 1
        with self.store.begin() as conn:
            signature = verify_headers(self.keys, Kind.FILL, data, headers, expect="executor")
            if signature is not SignatureStatus.VALID:
                self.store.refuse(conn, "FILLS", seq, f"the fill's signature is {signature.value}; fills must be signed by the executor", data, now)
                log.warning("SECURITY: refused a fill at seq %d whose signature is %s", seq, signature.value)
                return None
            try:
                fill = Fill.model_validate_json(data)
            except ValidationError as exc:
                self.store.refuse(conn, "FILLS", seq, f"invalid fill: {exc.errors(include_url=False)[:3]}", data, now)
                log.warning("refused invalid fill at seq %d", seq)
                return None
            if self.store.fill_seen(conn, fill.fill_id):
                return None
            order = self.store.order(conn, fill.order_id)
            earlier = [f for f in self.store.fills_of_order(conn, fill.order_id) if f.get("status") == "filled"]
            mismatch = fill_mismatch(fill, order, FILL_DEVIATION_BANDS * self.mission.approvals.price_band_pct, earlier)
            if mismatch:
                self.store.refuse(conn, "FILLS", seq, mismatch, data, now)
                log.warning("refused fill %s: %s", fill.fill_id, mismatch)
                return None
            intention = self.store.intention(conn, fill.directive_id)
            if intention is None or intention["state"] != IntentionState.ORDERED:
                self.store.refuse(conn, "FILLS", seq, f"fill for directive not awaiting a fill ({intention and intention['state']})", data, now)
                return None
            self.store.add_fill(conn, fill.model_dump(mode="json"), now)
            if fill.status == "filled":
                self.state.ledger.apply_fill(fill)
                self.sync_beliefs(fill.asset)
            outcome = None
            if fill.final:
                self.state.beliefs.release(fill.directive_id)
                filled_usd = sum(f["notional_usd"] for f in earlier) + (fill.notional_usd if fill.status == "filled" else 0.0)
                if fill.status == "filled":
                    state, reason = IntentionState.EXECUTED, ""
                elif filled_usd > 0:
                    state = IntentionState.EXECUTED
                    reason = f"partly filled: {filled_usd:.2f} of {order['notional_usd']:.2f} USD; {fill.reason}"[:2000]
                else:
                    state, reason = IntentionState.VENUE_REJECTED, fill.reason
                intentions.move(self.store, self.state.counter, conn, fill.directive_id, intention["state"], state, reason or None, now)
                outcome = ApprovalOutcome(
                    directive_id=fill.directive_id, outcome=state.value, at=now, reason=reason, order_id=fill.order_id, fill=fill
                )
                intentions.emit(self.store, conn, outcome, f"{state}-{fill.directive_id}", now, effects)
            else:
                # A part filled: it is a position now, and only the rest is still reserved.
                held = self.state.beliefs.release(fill.directive_id)
                if held is not None and held.notional_usd - fill.notional_usd > 0:
                    self.state.beliefs.reserve(replace(held, notional_usd=held.notional_usd - fill.notional_usd))
            self.store.save_ledger(conn, self.state.ledger.to_state(), now)
            self.record_equity(conn, now)
        effects.funnel_changed = effects.portfolio_changed = True
        return outcome

    def apply_bar(self, data: bytes) -> bool:
        """Mark a price; False for a bar that does not parse (counted, ignored)."""
        try:
            bar = Bar.model_validate_json(data)
        except ValidationError:
            self.stats["bad_bars"] += 1
            return False
        self.stats["bars"] += 1
        if isinstance(self.clock, MarketClock):
            self.clock.observe(bar.ts)
        led = self.state.ledger
        peak = led.breaker_peak_equity_usd
        self.state.beliefs.prices[bar.asset] = bar.close
        led.mark(bar.asset, bar.close)
        self.sync_beliefs(bar.asset)
        if led.breaker_peak_equity_usd > peak:
            # A new peak moves the breaker's reference: keep it, so a crash cannot understate drawdown.
            self.peak_dirty = True
        return True

    def rebase_breaker_peak(self) -> None:
        """A principal reset the breaker: drawdown is measured afresh from here."""
        self.state.ledger.rebase_breaker_peak()
        self.sync_beliefs()

    def sync_beliefs(self, asset: str | None = None) -> None:
        b, led = self.state.beliefs, self.state.ledger
        b.equity_usd = led.equity_usd
        b.peak_equity_usd = led.breaker_peak_equity_usd
        if asset is None:
            b.replace_positions(led.positions_by_asset())
        else:
            b.set_position(asset, led.positions_by_asset().get(asset, 0.0))

    def record_equity(self, conn, now: datetime) -> None:
        if isinstance(self.clock, MarketClock) and not self.clock.known:
            return  # no market time yet: a point stamped now would sit outside the replay's days
        led = self.state.ledger
        self.store.add_equity_point(conn, now, led.equity_usd, led.cash_usd, led.gross_exposure_usd, led.drawdown_pct)
        self._last_equity_point = time.monotonic()

    def save_ledger(self, force: bool = False) -> None:
        now_m = time.monotonic()
        if not force and not self.peak_dirty and now_m - self._last_ledger_save < LEDGER_SAVE_EVERY_S:
            return
        self._last_ledger_save = now_m
        self.peak_dirty = False
        now = self.clock.now()
        with self.store.begin() as conn:
            self.store.save_ledger(conn, self.state.ledger.to_state(), now)
            if force or now_m - self._last_equity_point > EQUITY_POINT_EVERY_S:
                self.record_equity(conn, now)


def fill_mismatch(fill: Fill, order: dict | None, max_deviation_pct: float, earlier: list[dict] = ()) -> str | None:
    """Why a fill cannot be for this order, or None. `earlier`: the order's parts already filled.

    An order may fill in parts, and a real venue rounds amounts and may fill at a better
    price than the reference, so the checks are on the parts together and on the side
    that would hurt: a buy never spends more than its notional; a sell never sells more
    than its notional at the reference (plus the deviation allowed); the average price is
    never worse than the reference by more than `max_deviation_pct`; fees stay under 1%."""
    if order is None:
        return f"fill {fill.fill_id} is for unknown order {fill.order_id}"
    for key in ("directive_id", "venue", "asset", "side"):
        if getattr(fill, key) != order[key]:
            return f"fill {fill.fill_id} {key} {getattr(fill, key)!r} does not match order {order[key]!r}"
    if fill.status != "filled":
        return None
    qty = sum(f["quantity"] for f in earlier) + fill.quantity
    cost = sum(f["notional_usd"] for f in earlier) + fill.notional_usd
    fee = sum(f.get("fee_usd", 0.0) for f in earlier) + fill.fee_usd
    ref, notional, buy = order["reference_price"], order["notional_usd"], fill.side == "buy"
    if buy and cost > notional * (1 + 1e-6):
        return f"fill {fill.fill_id} brings what the order spent to {cost} USD, above its notional {notional}"
    if not buy and qty * ref > notional * (1 + max_deviation_pct / 100.0) * (1 + 1e-6):
        return f"fill {fill.fill_id} brings what the order sold to {qty * ref:.2f} USD at its reference, above its notional {notional}"
    if fee > MAX_FEE_SHARE * cost:
        return f"fill {fill.fill_id} fee {fee} is more than {MAX_FEE_SHARE:.0%} of its notional"
    average = cost / qty
    worse = (average - ref) / ref * 100.0 * (1.0 if buy else -1.0)
    if worse > max_deviation_pct:
        return f"fill {fill.fill_id} price {average} is {worse:.1f}% from the order's reference {ref}, against the desk"
    return None
