"""One meaning for signed bytes: no JSON object the desk reads may repeat a key.

`{"asset": "BTC", "asset": "LUNA"}` is LUNA to pydantic and `json.loads` (the last
wins), BTC to a parser that keeps the first, and an error to a strict one: a
signature over it would vouch for two different trades. So a message that repeats
a key anywhere (also nested, inside `memo`) is refused as malformed, whoever reads it.

jiter (pydantic's own JSON parser) finds a repeat exactly; `json` then names where
it is. The policy engine first asks `may_repeat_keys`, a bound that costs a few byte
counts, and pays for the exact parse only when that bound allows a repeat.
"""

from __future__ import annotations

import json
import re
from collections import deque

import jiter

KeyPath = tuple[str | int, ...]  # where a key is: ("memo", "signal_evidence")

REPEATED_KEY_MESSAGE = "the key appears more than once; each key may appear once, so that the signed bytes mean the same to every reader"
_JITER_REPEAT = re.compile(r'^Detected duplicate key "(.*)" at line')
_JSON_WHITESPACE = b" \t\r\n"  # all that JSON (and jiter) allows between a key and its colon


def may_repeat_keys(raw: bytes | str, distinct: int) -> bool:
    """False when `raw`, JSON that already parsed with `distinct` different keys in all,
    cannot hold any key twice.

    Every key is followed by a colon, so the colons bound the number of keys from above:
    at or below `distinct`, nothing repeats. When values hold colons too (a timestamp,
    prose), the keys are bounded by the quote-colon pairs once JSON whitespace is
    removed: a key ends in a quote with only whitespace before its colon, while a
    timestamp's or a sentence's colon follows a digit or a letter. So the desk's own
    directives pass here in about 1 us, without the full parse.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw.count(b":") <= distinct:
        return False
    return raw.translate(None, _JSON_WHITESPACE).count(b'":') > distinct


def repeated_key(raw: bytes | str) -> KeyPath | None:
    """Where the first repeated key is (`("memo", "signal_evidence")`), or None when no
    object repeats a key or `raw` is not JSON at all (the validator then says why)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    try:
        jiter.from_json(data, catch_duplicate_keys=True, cache_mode=False)
        return None
    except ValueError as exc:
        detected = str(exc)
    found = _first_repeat(data)
    if found is not None:
        return found
    named = _JITER_REPEAT.match(detected)  # jiter saw one that `json` could not parse to find
    return (named.group(1),) if named else None


def without_repeats(raw: bytes | str) -> object:
    """`raw` parsed, leaving out every key an object repeats: it has no one value, so a
    reader picking a field (the id a verdict is filed under, an audit entry's directive)
    finds none rather than one of two. Raises ValueError when `raw` is not JSON."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    try:
        return jiter.from_json(data, catch_duplicate_keys=True, cache_mode=False)
    except ValueError:
        return json.loads(data, object_pairs_hook=_drop_repeated)


def _drop_repeated(pairs: list[tuple[str, object]]) -> dict:
    kept: dict[str, object] = {}
    repeated: set[str] = set()
    for key, value in pairs:
        if key in kept:
            repeated.add(key)
        kept[key] = value
    for key in repeated:
        del kept[key]
    return kept


def describe(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


class _Pairs(list):
    """An object as `json` read it: its (key, value) pairs in order, repeats kept."""


def _first_repeat(data: bytes) -> KeyPath | None:
    try:
        tree = json.loads(data, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return None
    queue: deque[tuple[object, KeyPath]] = deque([(tree, ())])  # outer objects before inner ones
    while queue:
        node, path = queue.popleft()
        if isinstance(node, _Pairs):
            seen: set[str] = set()
            for key, value in node:
                if key in seen:
                    return (*path, key)
                seen.add(key)
                queue.append((value, (*path, key)))
        elif isinstance(node, list):
            queue.extend((value, (*path, i)) for i, value in enumerate(node))
    return None
