"""Symbol and venue normalisation for the guardrails.

An agent (or whatever steers it) must not be able to trade a forbidden asset by
spelling it differently: `luna`, ` LUNA `, `LUNA/USDT`, `LUNAUSDT`, full-width `ＬＵＮＡ`,
Greek `LUΝA`, or `LU\u200bNA` with a zero-width space. The rule is: NFKC-normalise,
drop invisible characters, and then the symbol must be plain ASCII; anything else
is refused outright (a look-alike is reported as such, never mapped and accepted).
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

# Quote currencies recognised in concatenated pair notation (LUNAUSDT, BTCUSD).
USD_QUOTES: frozenset[str] = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDE"})
OTHER_QUOTES: frozenset[str] = frozenset({"BTC", "ETH", "BNB", "EUR", "GBP", "TRY", "JPY"})
KNOWN_QUOTES: frozenset[str] = USD_QUOTES | OTHER_QUOTES

_PAIR_SEPARATORS = "/-_:."
_MAX_LEN = 32


class SymbolError(ValueError):
    """A symbol that cannot be normalised; `lookalike` is the ASCII it imitates, if any."""

    def __init__(self, message: str, lookalike: str | None = None):
        super().__init__(message)
        self.lookalike = lookalike


@dataclass(frozen=True, slots=True)
class Symbol:
    canonical: str  # "BTC", or "LUNA/USDT" for a pair
    base: str  # the traded asset: "BTC", "LUNA"
    quote: str | None  # "USDT" for a pair, None for a bare asset
    # Every leg under every plausible reading of the symbol, for the forbidden check.
    candidates: frozenset[str]


def _is_invisible(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # Cf: format (zero-width, bidi controls, BOM); Cc: control; Z*: separators;
    # Mn/Me: combining marks and variation selectors, which only decorate a letter.
    return cat in ("Cf", "Cc", "Zs", "Zl", "Zp", "Mn", "Me") or ch.isspace()


@functools.cache
def _ascii_lookalikes() -> dict[str, str]:
    """Map from a confusable character to the ASCII letter or digit it imitates."""
    from confusable_homoglyphs import confusables

    table: dict[str, str] = {}
    for char, glyphs in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in glyphs:
            c = glyph["c"]
            if len(c) == 1 and c.isascii() and c.isalnum():
                table[char] = c
                break
    return table


def _strip(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in text if not _is_invisible(ch))


def _non_ascii_error(raw: str, text: str, what: str) -> SymbolError:
    bad = next(ch for ch in text if not ch.isascii())
    pos = text.index(bad)
    try:
        name = unicodedata.name(bad)
    except ValueError:
        name = "UNNAMED CHARACTER"
    table = _ascii_lookalikes()
    skeleton = "".join(table.get(ch, ch) for ch in text)
    lookalike = skeleton.upper() if skeleton.isascii() else None
    hint = f"; it looks like {lookalike!r}" if lookalike else ""
    return SymbolError(
        f"{what} {raw!r} is not plain ASCII after normalisation "
        f"(U+{ord(bad):04X} {name} at position {pos}){hint}",
        lookalike=lookalike,
    )


@functools.lru_cache(maxsize=8192)
def normalise_symbol(raw: str) -> Symbol:
    if not isinstance(raw, str):
        raise SymbolError(f"asset must be a string, not {type(raw).__name__}")
    text = _strip(raw)
    if not text:
        raise SymbolError(f"asset {raw!r} is empty after removing whitespace and invisible characters")
    if not text.isascii():
        raise _non_ascii_error(raw, text, "asset")
    text = text.upper()
    if len(text) > _MAX_LEN:
        raise SymbolError(f"asset {raw!r} is longer than {_MAX_LEN} characters")
    for ch in text:
        if not (ch.isalnum() or ch in _PAIR_SEPARATORS):
            raise SymbolError(f"asset {raw!r} contains {ch!r}; only letters, digits and a pair separator are allowed")
    legs = [text]
    for sep in _PAIR_SEPARATORS:
        if sep in text:
            legs = text.split(sep)
            break
    if any(sep in leg for leg in legs for sep in _PAIR_SEPARATORS):
        raise SymbolError(f"asset {raw!r} mixes pair separators")
    if len(legs) > 2 or not all(legs):
        raise SymbolError(f"asset {raw!r} is not an asset or a BASE/QUOTE pair")
    if len(legs) == 2:
        base, quote = legs
        return Symbol(f"{base}/{quote}", base, quote, frozenset(legs))
    (single,) = legs
    candidates = {single}
    base, quote = single, None
    for q in sorted(KNOWN_QUOTES, key=len, reverse=True):
        if len(single) > len(q) and single.endswith(q):
            candidates.update((single[: -len(q)], q))
            if quote is None:
                base, quote = single[: -len(q)], q
        if len(single) > len(q) and single.startswith(q):
            candidates.update((q, single[len(q) :]))
    return Symbol(single, base, quote, frozenset(candidates))


@functools.lru_cache(maxsize=8192)
def forbidden_leg(symbol: Symbol, forbidden: frozenset[str]) -> str | None:
    """The forbidden asset this symbol trades, under any reading of it, or None.

    A leg counts when it equals a forbidden asset, including legs found by splitting
    concatenated notation on a known quote currency or on a forbidden asset itself
    (LUNAUSDT, USDTLUNA, BTCUST). A concatenated symbol ending in a forbidden asset
    is read as quoted in it and refused (so DUST is refused when UST is forbidden:
    the cheaper mistake). Distinct tickers that merely start with one, such as USTC
    or LUNA2, are not matched: list them in `forbidden_assets` if the desk refuses them.
    """
    hit = symbol.candidates & forbidden
    if hit:
        return min(hit)
    if symbol.quote is None or symbol.canonical == symbol.base + symbol.quote:
        text = symbol.canonical
        for f in sorted(forbidden):
            if len(text) > len(f):
                if text.startswith(f) and text[len(f) :] in KNOWN_QUOTES | forbidden:
                    return f
                if text.endswith(f):  # quoted in the forbidden asset: BTCUST
                    return f
    return None


@functools.lru_cache(maxsize=1024)
def normalise_venue(raw: str) -> str:
    if not isinstance(raw, str):
        raise SymbolError(f"venue must be a string, not {type(raw).__name__}")
    text = _strip(raw)
    if not text:
        raise SymbolError(f"venue {raw!r} is empty after removing whitespace and invisible characters")
    if not text.isascii():
        raise _non_ascii_error(raw, text, "venue")
    text = text.lower()
    if len(text) > _MAX_LEN or not all(ch.isalnum() or ch in "_-" for ch in text):
        raise SymbolError(f"venue {raw!r} must be at most {_MAX_LEN} letters, digits, '-' or '_'")
    return text
