"""Where a ccxt exchange sends its requests: the venue's own hosts, its sandbox, or a
REST base a desk names (a regional mirror, a proxy, or a local test exchange).

ccxt keeps each venue's URLs in `exchange.urls['api']`, a string or a (nested) dict
of bases that may contain `{hostname}`. Pointing a venue elsewhere keeps every path
and swaps only scheme and host, so requests, signing and parsing stay the venue's.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def _rebased(url: str, hostname: str, base: str) -> str:
    parts = urlsplit(url.replace("{hostname}", hostname))
    target = urlsplit(base)
    path = target.path.rstrip("/") + parts.path
    return urlunsplit((target.scheme, target.netloc, path, parts.query, parts.fragment))


def point_at(exchange, base_url: str) -> None:
    """Send every REST call of `exchange` to `base_url`, keeping the venue's paths.

    Call after `set_sandbox_mode`, which swaps the URL table."""
    target = urlsplit(base_url)
    if target.scheme not in ("http", "https") or not target.netloc:
        raise ValueError(f"api_url must be an http(s) URL with a host, got {base_url!r}")
    hostname = str(getattr(exchange, "hostname", "") or "")

    originals: dict[str, str] = {}  # each rebased URL base -> the venue's own

    def walk(value):
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, str) and "://" in value:
            rebased = _rebased(value, hostname, base_url)
            originals.setdefault(rebased, value.replace("{hostname}", hostname))
            return rebased
        return value

    exchange.urls["api"] = walk(exchange.urls["api"])
    # Some venues read error codes from a table chosen by the request's host (binance: its futures
    # codes only for fapi hosts): that choice is made on the venue's own URL, as if not rebased.
    by_url = getattr(exchange, "get_exceptions_by_url", None)
    if by_url is not None:
        bases = sorted(originals, key=len, reverse=True)

        def exceptions_by_url(url, exact_or_broad):
            for base in bases:
                if isinstance(url, str) and url.startswith(base):
                    url = originals[base] + url[len(base):]
                    break
            return by_url(url, exact_or_broad)

        exchange.get_exceptions_by_url = exceptions_by_url
