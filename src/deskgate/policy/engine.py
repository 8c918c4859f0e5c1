"""The BDI policy engine: every guardrail check, in one file, as pure functions.

No LLM, no network, no clock. Given a directive, the beliefs and the guardrails,
`evaluate` runs every check and reports each one with what it observed, the limit
and why it passed or failed. A directive is staged only if all pass. Limits are
inclusive; "above" thresholds are strict.

The factory and `deskgate policy check` both call `evaluate_payload` and then
`stage`, so the offline tool and the running desk cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from deskgate.config import Guardrails, Mandate
from deskgate.domain.directive import DecisionMemo, Directive
from deskgate.domain.evaluation import CheckResult, PolicyEvaluation
from deskgate.domain.jsonkeys import REPEATED_KEY_MESSAGE, KeyPath, describe, may_repeat_keys, repeated_key, without_repeats
from deskgate.policy.beliefs import Beliefs, Reservation
from deskgate.policy.check import LIMIT_TOLERANCE, Check, within
from deskgate.policy.mandate import mandate_checks, require_now
from deskgate.policy.symbols import USD_QUOTES, SymbolError, forbidden_leg, normalise_symbol, normalise_venue

_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(slots=True)
class Evaluation:
    directive_id: str | None
    checks: list[Check]
    directive: Directive | None = None
    asset: str | None = None  # normalised base asset
    venue: str | None = None  # normalised venue
    explicit_approval: bool = False

    @property
    def staged(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def decision(self) -> str:
        return "staged" if self.staged else "rejected"

    @property
    def primary_reason(self) -> str | None:
        for c in self.checks:
            if not c.passed:
                return c.name
        return None

    def reservation(self) -> Reservation:
        assert self.directive is not None and self.asset is not None
        return Reservation(self.directive.directive_id, self.asset, self.directive.side, self.directive.notional_usd)

    def to_dict(self) -> dict:
        return {
            "directive_id": self.directive_id,
            "decision": self.decision,
            "explicit_approval": self.explicit_approval,
            "checks": [
                {"name": c.name, "passed": c.passed, "observed": c.observed, "limit": c.limit, "reason": c.reason}
                for c in self.checks
            ],
        }

    def to_model(self) -> PolicyEvaluation:
        return PolicyEvaluation(
            directive_id=self.directive_id,
            decision=self.decision,  # type: ignore[arg-type]
            explicit_approval=self.explicit_approval,
            checks=[CheckResult(name=c.name, passed=c.passed, observed=c.observed, limit=c.limit, reason=c.reason) for c in self.checks],
        )


# -- decoding -------------------------------------------------------------------


def _describe_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:8]:
        loc = ".".join(str(p) for p in err["loc"]) or "(message)"
        if err["type"] == "extra_forbidden":
            parts.append(f"{loc}: unknown field (position and risk are computed by the factory, not taken from the agent)")
            continue
        if err["type"] == "json_invalid":
            parts.append(f"not valid JSON: {err['msg']}")
            continue
        shown = ""
        if err["type"] not in ("missing",) and not isinstance(err.get("input"), (dict, list)):
            shown = f" (got {_short(err.get('input'))})"
        parts.append(f"{loc}: {err['msg']}{shown}")
    return "; ".join(parts)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def id_claimed(raw: bytes | str) -> str | None:
    """Best effort: the directive id of an invalid directive, so the sender can match it;
    none when the id is given twice."""
    try:
        data = without_repeats(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(data, dict):
        value = data.get("directive_id")
        if isinstance(value, str) and _ID_PATTERN.match(value):
            return value
    return None


def schema_rejection(directive_id: str | None, reason: str, beliefs: Beliefs) -> Evaluation:
    return Evaluation(
        directive_id,
        [
            Check("schema", False, None, "directive schema", reason),
            _breaker(beliefs),
        ],
    )


def repeated_key_rejection(raw: bytes | str, where: KeyPath, beliefs: Beliefs) -> Evaluation:
    """A directive that repeats a key means different trades to different readers."""
    return schema_rejection(id_claimed(raw), f"{describe(where)}: {REPEATED_KEY_MESSAGE}", beliefs)


def duplicate_rejection(directive_id: str) -> Evaluation:
    """A directive id is evaluated once; every later directive with it is refused."""
    return Evaluation(
        directive_id,
        [
            Check(
                "duplicate",
                False,
                directive_id,
                "unique directive id",
                f"directive {directive_id} was already evaluated; a directive id is evaluated once",
            )
        ],
    )


def signature_rejection(status: str, signer: str | None, reason: str | None = None) -> Evaluation:
    """A directive not signed with an agent's current key is not that agent's: refused
    before any check, and its id is not taken from anyone (factory/authors.py)."""
    return Evaluation(
        None,
        [Check(
            "signature", False, f"{status} ({(signer or 'no signer')[:80]})", "signed with the current key of an agent of this desk",
            reason or f"the directive's signature is {status}; only directives signed with an agent's own current key are evaluated",
        )],
    )


def agent_rejection(status: str, signer: str, reason: str) -> Evaluation:
    """Signed as an agent that may not draft now (unknown, or revoked): refused before any check."""
    return Evaluation(None, [Check("agent", False, f"{status} ({signer[:80]})", "an agent of this desk, not revoked", reason)])


def with_check_first(ev: Evaluation, check: Check) -> Evaluation:
    """`ev` with one more check, run first: it is the primary reason when it fails."""
    return Evaluation(ev.directive_id, [check, *ev.checks], ev.directive, ev.asset, ev.venue, ev.explicit_approval)


_validate_json = Directive.__pydantic_validator__.validate_json
# Every memo field is required, so a valid memo has exactly these keys (tests/test_repeated_keys.py).
MEMO_KEYS = len(DecisionMemo.model_fields)


def evaluate_payload(
    raw: bytes | str,
    beliefs: Beliefs,
    guardrails: Guardrails,
    max_bytes: int = 65_536,
    mandate: Mandate | None = None,
    mandate_now: datetime | None = None,
    used_today: int = 0,
) -> Evaluation:
    """Decode, validate and evaluate one directive as it arrived on the wire.

    `mandate` is the verified sending agent's (None: the desk's guardrails alone);
    see `evaluate` for `mandate_now` and `used_today`.
    """
    if mandate is not None:
        require_now(mandate, mandate_now)  # a missing clock is the caller's bug, whatever the bytes
    size = len(raw)
    if size > max_bytes:
        return schema_rejection(None, f"message is {size} bytes; directives are limited to {max_bytes}", beliefs)
    try:
        directive = _validate_json(raw)
    except ValidationError as exc:
        where = repeated_key(raw)
        if where is not None:
            return repeated_key_rejection(raw, where, beliefs)
        return schema_rejection(id_claimed(raw), _describe_errors(exc), beliefs)
    # pydantic kept the last of any repeated key. A valid directive's keys are its fields
    # (no extras), so the cheap bound rules out a repeat for nearly every directive.
    if may_repeat_keys(raw, len(directive.model_fields_set) + MEMO_KEYS):
        where = repeated_key(raw)
        if where is not None:
            return repeated_key_rejection(raw, where, beliefs)
    if mandate is None:
        return evaluate(directive, beliefs, guardrails)
    return evaluate(directive, beliefs, guardrails, mandate, mandate_now=mandate_now, used_today=used_today)


# -- the checks -----------------------------------------------------------------

# Checks that read nothing but a flag are shared; a Check is never changed after it is made.
SCHEMA_OK = Check("schema", True, "valid", "directive schema", "")
BREAKER_ARMED = Check("breaker", True, "armed", "armed", "")
BREAKER_TRIPPED = Check("breaker", False, "tripped", "armed", "circuit breaker is tripped; only a principal can reset it")


def _breaker(beliefs: Beliefs) -> Check:
    return BREAKER_TRIPPED if beliefs.breaker_tripped else BREAKER_ARMED


@dataclass(frozen=True)
class Limits:
    """What the checks need from the guardrails, worked out once per mission, not per directive."""

    max_drawdown: float
    max_position: float
    min_confidence: float
    max_leverage: float
    explicit_above: float
    forbidden: frozenset[str]
    forbidden_text: str
    allowed_venues: frozenset[str]
    allowed_list: tuple[str, ...]

    @staticmethod
    def slack(limit: float) -> float:
        return limit + LIMIT_TOLERANCE * max(1.0, abs(limit))


_limits_cache: dict[int, tuple[Guardrails, Limits]] = {}


def limits_of(g: Guardrails) -> Limits:
    """Guardrails are frozen, so their limits can be kept by identity (cheaper than hashing)."""
    hit = _limits_cache.get(id(g))
    if hit is not None and hit[0] is g:
        return hit[1]
    if len(_limits_cache) > 64:
        _limits_cache.clear()
    limits = _make_limits(g)
    _limits_cache[id(g)] = (g, limits)
    return limits


def _make_limits(g: Guardrails) -> Limits:
    return Limits(
        max_drawdown=Limits.slack(g.max_drawdown_pct),
        max_position=Limits.slack(g.max_position_pct),
        min_confidence=g.min_confidence - LIMIT_TOLERANCE,
        max_leverage=Limits.slack(g.max_leverage),
        explicit_above=g.require_human_approval_above_usd,
        forbidden=frozenset(g.forbidden_assets),
        forbidden_text="not " + ", ".join(g.forbidden_assets) if g.forbidden_assets else "any",
        allowed_venues=frozenset(g.allowed_venues),
        allowed_list=tuple(g.allowed_venues),
    )


def evaluate(
    directive: Directive,
    beliefs: Beliefs,
    guardrails: Guardrails,
    mandate: Mandate | None = None,
    *,
    mandate_now: datetime | None = None,
    used_today: int | None = 0,
) -> Evaluation:
    """Every guardrail check, then the drafting agent's mandate checks (policy/mandate.py) if it has one.

    `mandate_now` (timezone-aware) is required when the mandate expires; `used_today` is how
    many directives of the agent were evaluated before this one today (UTC), None to leave
    the daily budget out (at approval time).
    """
    g = guardrails
    lim = limits_of(g)
    checks: list[Check] = [SCHEMA_OK, _breaker(beliefs)]
    equity = beliefs.equity_usd

    # Drawdown: the breaker trips when it exceeds the limit; until the factory has
    # tripped it, refuse here too.
    dd = beliefs.drawdown_pct
    if dd <= lim.max_drawdown:
        checks.append(Check("drawdown", True, dd, g.max_drawdown_pct, ""))
    else:
        checks.append(Check("drawdown", False, dd, g.max_drawdown_pct, f"drawdown {dd:.2f}% exceeds {g.max_drawdown_pct}%"))

    # Asset: normalised, plain ASCII, not forbidden in any leg, USD-quoted.
    asset: str | None = None
    try:
        symbol = normalise_symbol(directive.asset)
    except SymbolError as exc:
        hit = exc.lookalike and _lookalike_hit(exc.lookalike, lim.forbidden)
        reason = str(exc) + (f" (look-alike of forbidden {hit})" if hit else "")
        checks.append(Check("asset", False, directive.asset, lim.forbidden_text, reason))
    else:
        leg = forbidden_leg(symbol, lim.forbidden)
        if leg is not None:
            checks.append(
                Check("asset", False, symbol.canonical, lim.forbidden_text, f"{symbol.canonical} trades forbidden asset {leg}")
            )
        elif symbol.quote is not None and symbol.quote not in USD_QUOTES:
            checks.append(
                Check("asset", False, symbol.canonical, "USD-quoted", f"{symbol.canonical} is quoted in {symbol.quote}, not USD")
            )
        else:
            asset = symbol.base
            checks.append(Check("asset", True, asset, lim.forbidden_text, ""))

    # Venue.
    venue: str | None = None
    try:
        normalised_venue = normalise_venue(directive.venue)
    except SymbolError as exc:
        checks.append(Check("venue", False, directive.venue, lim.allowed_list, str(exc)))
    else:
        if normalised_venue in lim.allowed_venues:
            venue = normalised_venue
            checks.append(Check("venue", True, normalised_venue, lim.allowed_list, ""))
            # A real venue takes orders only while the executor reports it healthy and the
            # book agrees with it (factory/venues.py); the paper venue is always there.
            if venue in beliefs.venue_health:
                problem = beliefs.venue_health[venue]
                if problem is None:
                    checks.append(Check("venue_health", True, "healthy", "healthy", ""))
                else:
                    checks.append(Check("venue_health", False, f"{problem.state}: {problem.observed}", problem.limit or "healthy",
                                        f"{venue} is {problem.state}: {problem.reason}"))
        else:
            checks.append(Check("venue", False, normalised_venue, lim.allowed_list, f"venue {normalised_venue} is not allowed"))

    # Confidence, after Governor damping.
    damping = beliefs.confidence_damping
    confidence = directive.confidence * damping
    if confidence >= lim.min_confidence:
        checks.append(Check("confidence", True, confidence, g.min_confidence, ""))
    else:
        note = f" (damped x{damping:g} by the Governor from {directive.confidence:g})" if damping != 1.0 else ""
        checks.append(
            Check("confidence", False, confidence, g.min_confidence, f"confidence {confidence:g}{note} is below {g.min_confidence:g}")
        )

    # Position after the trade, worst case over pending intentions, from beliefs
    # only; and the portfolio's gross leverage after it, counted the same way.
    notional = directive.notional_usd
    buy = directive.side == "buy"
    if asset is None or equity <= 0:
        pct = None
        why = "not computable: the asset is not valid" if asset is None else f"equity is {equity:.2f}; nothing fits"
        checks.append(Check("position", False, None, g.max_position_pct, why))
    else:
        p = beliefs.position(asset)
        pending_buy, pending_sell = beliefs.pending_buy(asset), beliefs.pending_sell(asset)
        post = p + pending_buy + notional if buy else p - pending_sell - notional
        pct = abs(post) / equity * 100.0
        if pct <= lim.max_position:
            checks.append(Check("position", True, pct, g.max_position_pct, ""))
        else:
            checks.append(
                Check(
                    "position",
                    False,
                    pct,
                    g.max_position_pct,
                    f"{asset} would reach {pct:.2f}% of equity (position {p:,.0f}, pending "
                    f"{pending_buy if buy else -pending_sell:,.0f}, this {notional if buy else -notional:,.0f} USD)",
                )
            )

    lev = directive.leverage
    if lev <= lim.max_leverage:
        checks.append(Check("order_leverage", True, lev, g.max_leverage, ""))
    else:
        checks.append(Check("order_leverage", False, lev, g.max_leverage, f"order leverage {lev:g}x exceeds {g.max_leverage:g}x"))

    if asset is None or equity <= 0:
        why = "not computable: the asset is not valid" if asset is None else f"equity is {equity:.2f}"
        checks.append(Check("portfolio_leverage", False, None, g.max_leverage, why))
    else:
        worst_after = max(abs(p + pending_buy + notional), abs(p - pending_sell)) if buy else max(
            abs(p + pending_buy), abs(p - pending_sell - notional)
        )
        leverage = (beliefs.gross_exposure - beliefs.worst_exposure(asset) + worst_after) / equity
        if leverage <= lim.max_leverage:
            checks.append(Check("portfolio_leverage", True, leverage, g.max_leverage, ""))
        else:
            checks.append(Check("portfolio_leverage", False, leverage, g.max_leverage, f"gross leverage would reach {leverage:.3f}x"))

    # Market price: the factory needs one to stage (it is the reference for the
    # stale-approval band). Offline beliefs without prices skip this check.
    if beliefs.prices is not None:
        price = beliefs.prices.get(asset) if asset is not None else None
        if price is not None and price > 0:
            checks.append(Check("market_price", True, price, "known", ""))
        else:
            checks.append(Check("market_price", False, None, "known", f"no market price known for {asset or directive.asset}"))

    # The agent's mandate: extra checks, so it can only tighten what came before.
    if mandate is not None:
        checks.extend(
            mandate_checks(mandate, asset=asset, venue=venue, notional=notional, position_pct=pct, now=mandate_now, used_today=used_today)
        )

    # Explicit approval above the threshold: not a refusal, a flag.
    explicit = notional > lim.explicit_above
    checks.append(
        Check("explicit_approval", True, notional, g.require_human_approval_above_usd, EXPLICIT_REASON if explicit else "")
    )
    return Evaluation(directive.directive_id, checks, directive, asset, venue, explicit)


EXPLICIT_REASON = "explicit: above the threshold, approved one by one"


def _lookalike_hit(lookalike: str, forbidden: frozenset[str]) -> str | None:
    try:
        return forbidden_leg(normalise_symbol(lookalike), forbidden)
    except SymbolError:
        return None


def stage(evaluation: Evaluation, beliefs: Beliefs) -> bool:
    """Reserve exposure for a staged directive; the next evaluation sees it."""
    if not evaluation.staged:
        return False
    beliefs.reserve(evaluation.reservation())
    return True


# -- at approval time ----------------------------------------------------------


def expiry_check(expires_at, now) -> Check:
    """`now` is passed in: the engine never reads a clock."""
    if now <= expires_at:
        return Check("expiry", True, now.isoformat(), expires_at.isoformat(), "")
    return Check("expiry", False, now.isoformat(), expires_at.isoformat(), f"approval came after the directive expired at {expires_at.isoformat()}")


def price_band_check(price_at_staging: float, price_now: float | None, band_pct: float) -> Check:
    if price_now is None or not price_now > 0:
        return Check("price_band", False, None, band_pct, "no current market price to compare with the price at staging")
    moved = abs(price_now - price_at_staging) / price_at_staging * 100.0
    shown = round(moved, 6)
    if within(moved, band_pct):
        return Check("price_band", True, shown, band_pct, "")
    return Check(
        "price_band",
        False,
        shown,
        band_pct,
        f"price moved {moved:.2f}% since staging ({price_at_staging:g} -> {price_now:g}), beyond the {band_pct:g}% band",
    )


def reevaluate(
    directive: Directive,
    beliefs_without_it: Beliefs,
    guardrails: Guardrails,
    *,
    price_at_staging: float,
    expires_at,
    now,
    band_pct: float,
    mandate: Mandate | None = None,
) -> Evaluation:
    """Time-of-use check: every guardrail against current beliefs, plus expiry and price band.

    `beliefs_without_it` must not hold this directive's own reservation. With the agent's
    `mandate`, its checks run again at `now` too, except the daily budget, which counts
    drafting, not approving; an approval after the mandate expired is invalidated.
    """
    evaluation = evaluate(directive, beliefs_without_it, guardrails, mandate, mandate_now=now, used_today=None)
    price_now = beliefs_without_it.prices.get(evaluation.asset) if (beliefs_without_it.prices and evaluation.asset) else None
    evaluation.checks.append(expiry_check(expires_at, now))
    evaluation.checks.append(price_band_check(price_at_staging, price_now, band_pct))
    return evaluation
