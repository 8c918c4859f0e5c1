"""Small server-rendered SVG line charts: no JavaScript, no chart library, no build step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape


def downsample(points: Sequence[tuple[datetime, float]], limit: int = 600) -> list[tuple[datetime, float]]:
    """At most `limit` points, always keeping the first and the last."""
    if len(points) <= limit:
        return list(points)
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def line_chart(
    points: Sequence[tuple[datetime, float]],
    *,
    title: str,
    fmt: Callable[[float], str] = lambda v: f"{v:,.2f}",
    width: int = 720,
    height: int = 200,
    invert_fill: bool = False,
) -> str:
    """An SVG line chart of (time, value) points with min/max labels and the time span."""
    pad_l, pad_r, pad_t, pad_b = 90, 12, 24, 26
    title_e = escape(title)
    if not points:
        return (
            f'<svg class="chart" role="img" aria-label="{title_e}" viewBox="0 0 {width} {height}" width="100%">'
            f'<text x="{pad_l}" y="16" class="chart-title">{title_e}</text>'
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="chart-empty">no data yet</text></svg>'
        )
    pts = downsample(points)
    t0, t1 = pts[0][0].timestamp(), pts[-1][0].timestamp()
    values = [v for _, v in pts]
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b

    def x(t: float) -> float:
        return pad_l + (inner_w * (t - t0) / (t1 - t0) if t1 > t0 else inner_w)

    def y(v: float) -> float:
        return pad_t + inner_h * (1 - (v - lo) / (hi - lo))

    path = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in pts)
    last = pts[-1][1]
    return (
        f'<svg class="chart" role="img" aria-label="{title_e}" viewBox="0 0 {width} {height}" width="100%">'
        f'<text x="{pad_l}" y="16" class="chart-title">{title_e}: {escape(fmt(last))}</text>'
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + inner_h}" class="axis"/>'
        f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{pad_l + inner_w}" y2="{pad_t + inner_h}" class="axis"/>'
        f'<text x="{pad_l - 6}" y="{pad_t + 10}" text-anchor="end" class="tick">{escape(fmt(hi))}</text>'
        f'<text x="{pad_l - 6}" y="{pad_t + inner_h}" text-anchor="end" class="tick">{escape(fmt(lo))}</text>'
        f'<text x="{pad_l}" y="{height - 6}" class="tick">{pts[0][0]:%Y-%m-%d %H:%M:%S}</text>'
        f'<text x="{pad_l + inner_w}" y="{height - 6}" text-anchor="end" class="tick">{pts[-1][0]:%Y-%m-%d %H:%M:%S} UTC</text>'
        f'<polyline class="{"line-risk" if invert_fill else "line"}" fill="none" points="{path}"/>'
        "</svg>"
    )
