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

    def walk(value):
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, str) and "://" in value:
            return _rebased(value, hostname, base_url)
        return value

    exchange.urls["api"] = walk(exchange.urls["api"])
