"""Replay OHLCV bars from a CSV file.

Columns (header required, any order): timestamp, asset, open, high, low, close,
volume. timestamp is ISO 8601 (2026-11-23T05:30:00Z) or Unix seconds. Rows are
replayed in timestamp order. A bad row stops the load with its line number:
a replay with silent gaps would be a different market.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from deskgate.domain.market import Bar
from deskgate.policy.symbols import SymbolError, normalise_symbol

REQUIRED = ("timestamp", "asset", "open", "high", "low", "close", "volume")


class CsvError(ValueError):
    pass


def _timestamp(text: str) -> datetime:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    if not math.isfinite(value):
        raise ValueError("timestamp is not finite")
    return datetime.fromtimestamp(value, timezone.utc)


def load_bars(path: str | Path, interval_seconds: float | None = None) -> list[Bar]:
    path = Path(path)
    try:
        fh = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise CsvError(f"CSV replay file {path} does not exist") from None
    with fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise CsvError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED)}")
        reader.fieldnames = header
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                ts = _timestamp(row["timestamp"])
                asset = normalise_symbol(row["asset"]).base
                values = {k: float(row[k]) for k in ("open", "high", "low", "close", "volume")}
                if not all(math.isfinite(v) for v in values.values()):
                    raise ValueError("prices and volume must be finite")
                if values["low"] > min(values["open"], values["close"]) or values["high"] < max(values["open"], values["close"]):
                    raise ValueError("high/low do not contain open and close")
                rows.append((ts, asset, values))
            except (ValueError, TypeError, KeyError, SymbolError) as exc:
                raise CsvError(f"{path}, line {line}: {exc}") from None
    rows.sort(key=lambda r: r[0])
    bars = []
    previous: dict[str, datetime] = {}
    for ts, asset, v in rows:
        gap = interval_seconds or ((ts - previous[asset]).total_seconds() if asset in previous else 60.0) or 60.0
        previous[asset] = ts
        try:
            bars.append(Bar(asset=asset, ts=ts, interval_seconds=gap, source=f"csv:{path.name}", **v))
        except ValidationError as exc:
            raise CsvError(f"{path}: bar for {asset} at {ts.isoformat()}: {exc.errors(include_url=False)[0]['msg']}") from None
    if not bars:
        raise CsvError(f"{path} has no bars")
    return bars
