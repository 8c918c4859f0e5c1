"""Small server-rendered SVG line charts: no JavaScript, no chart library, no build step.

The scale is chosen so a chart tells the truth at a glance: a few round ticks
with gridlines, a minimum visible span relative to the value (so $88 of fees on a
million-dollar book is a ripple, not a cliff), zero kept in view for quantities
that start there (drawdown, leverage), and no invented range on a flat or empty
series. Each point carries an SVG <title>, so hovering shows its time and value
(the browser's own tooltip: no script, nothing the CSP has to allow).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html import escape

from deskgate.web.filters import leverage, money, pct

Point = tuple[datetime, float]

# Steps for time ticks, smallest first.
TIME_STEPS = [
    timedelta(seconds=s)
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600)
] + [timedelta(days=d) for d in (1, 2, 7, 14, 30, 60, 90, 180, 365)]


HOVER_POINTS = 360  # about one every 3 px of the chart: finer than a pointer, and the page stays small


@dataclass(frozen=True)
class Scale:
    """The value axis: its ends and the round values to tick and grid."""

    lo: float
    hi: float
    ticks: tuple[float, ...]
    step: float


@dataclass(frozen=True)
class ChartStyle:
    """How one kind of series is scaled and written."""

    fmt: Callable[[float], str]  # a value, in the title and on hover
    tick: Callable[[float, float], str]  # a tick value, given the step
    min_span_ratio: float = 0.0  # the smallest visible span, relative to the value's magnitude
    min_span: float = 0.0  # and in absolute terms
    include_zero: bool = False
    risk: bool = False  # drawn in the risk colour


def downsample(points: Sequence[Point], limit: int = 600) -> list[Point]:
    """At most `limit` points, always keeping the first and the last."""
    if len(points) <= limit:
        return list(points)
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def nice_step(span: float, target: int = 5) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `target` intervals over `span`."""
    if not (span > 0 and math.isfinite(span)):
        return 1.0
    raw = span / target
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * power * (1 + 1e-9):
            return m * power
    return 10.0 * power


def y_scale(
    values: Sequence[float], *, min_span_ratio: float = 0.0, min_span: float = 0.0, include_zero: bool = False, target: int = 4
) -> Scale:
    """Round ends and ticks covering `values`, at least the minimum span wide.

    A flat series is centred in its minimum span (or starts at zero when zero is
    included and it is not negative); an empty one is [0, min_span] or [0, 1].
    """
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    need = max(min_span, min_span_ratio * max(abs(lo), abs(hi)))
    if need < 1e-9 and hi - lo < 1e-9:  # flat, with no minimum given: a little either side of it
        need = abs(hi) * 0.02 if abs(hi) > 1e-6 else 1.0
    if hi - lo < need:
        if include_zero and lo >= 0:
            hi = lo + need
        elif include_zero and hi <= 0:
            lo = hi - need
        else:
            mid = (lo + hi) / 2
            lo, hi = mid - need / 2, mid + need / 2
    step = nice_step(hi - lo, target)
    start, end = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    digits = max(0, -math.floor(math.log10(step)) + 2)
    ticks = tuple(round(i * step, digits) + 0.0 for i in range(start, end + 1))
    return Scale(ticks[0], ticks[-1], ticks, step)


def time_ticks(t0: datetime, t1: datetime, target: int = 6) -> list[tuple[datetime, str]]:
    """Ticks at round times (whole minutes, hours, days, in UTC) between t0 and t1, with labels."""
    span = (t1 - t0).total_seconds()
    if span <= 0:
        return [(t0, t0.astimezone(timezone.utc).strftime("%H:%M:%S"))]
    step = next((s for s in TIME_STEPS if span / s.total_seconds() <= target), TIME_STEPS[-1])
    seconds = step.total_seconds()
    first = math.ceil(t0.timestamp() / seconds - 1e-9) * seconds
    if step >= timedelta(days=1):
        fmt = "%Y-%m-%d" if span > 300 * 86_400 else "%b %d"
    elif t0.date() != t1.date():
        fmt = "%b %d %H:%M"
    else:
        fmt = "%H:%M:%S" if step < timedelta(minutes=1) else "%H:%M"
    out = []
    t = first
    while t <= t1.timestamp() + 1e-6:
        at = datetime.fromtimestamp(t, timezone.utc)
        out.append((at, at.strftime(fmt)))
        t += seconds
    return out


def tick_label(value: float, step: float, unit: str = "") -> str:
    """A tick's value with just the decimals its step needs."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    if step > 0 and round(step, decimals) != step:
        decimals += 1  # 2.5, 0.25
    return f"{value:,.{decimals}f}".replace("-", "−") + unit


EQUITY = ChartStyle(
    fmt=lambda v: f"{money(v)} USD", tick=lambda v, step: tick_label(v, step), min_span_ratio=0.01,  # ±0.5% of equity
)
DRAWDOWN = ChartStyle(fmt=pct, tick=lambda v, step: tick_label(v, step, "%"), min_span=1.0, include_zero=True, risk=True)
LEVERAGE = ChartStyle(fmt=leverage, tick=lambda v, step: tick_label(v, step, "x"), min_span=0.5, include_zero=True)


def line_chart(points: Sequence[Point], *, title: str, style: ChartStyle, width: int = 1140, height: int = 200) -> str:
    """An SVG line chart of (time, value) points, with gridlines, round ticks and a value on hover."""
    pad_l, pad_r, pad_t, pad_b = 84, 16, 28, 24
    title_e = escape(title)
    head = f'<svg class="chart" role="img" aria-label="{title_e}" viewBox="0 0 {width} {height}" width="100%">'
    if not points:
        return (
            head + f'<text x="{pad_l}" y="17" class="chart-title">{title_e}</text>'
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="chart-empty">no data in this period</text></svg>'
        )
    pts = downsample(points)
    t0, t1 = pts[0][0].timestamp(), pts[-1][0].timestamp()
    scale = y_scale([v for _, v in pts], min_span_ratio=style.min_span_ratio, min_span=style.min_span, include_zero=style.include_zero)
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    bottom = pad_t + inner_h

    def x(t: float) -> float:
        return pad_l + (inner_w * (t - t0) / (t1 - t0) if t1 > t0 else inner_w)

    def y(v: float) -> float:
        return pad_t + inner_h * (1 - (v - scale.lo) / (scale.hi - scale.lo))

    parts = [head, f'<text x="{pad_l}" y="17" class="chart-title">{title_e}: {escape(style.fmt(pts[-1][1]))}</text>']
    for v in scale.ticks:
        yy = y(v)
        parts.append(f'<line x1="{pad_l}" y1="{yy:.1f}" x2="{pad_l + inner_w}" y2="{yy:.1f}" class="grid"/>')
        label = escape(style.tick(v, scale.step))
        parts.append(f'<text x="{pad_l - 6}" y="{yy + 4:.1f}" text-anchor="end" class="tick y-tick">{label}</text>')
    for at, label in time_ticks(pts[0][0], pts[-1][0], target=8):
        xx = x(at.timestamp())
        parts.append(f'<line x1="{xx:.1f}" y1="{pad_t}" x2="{xx:.1f}" y2="{bottom}" class="grid"/>')
        parts.append(f'<text x="{xx:.1f}" y="{height - 6}" text-anchor="middle" class="tick x-tick">{escape(label)}</text>')
    parts.append(f'<line x1="{pad_l}" y1="{bottom}" x2="{pad_l + inner_w}" y2="{bottom}" class="axis"/>')
    path = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in pts)
    parts.append(f'<polyline class="{"line-risk" if style.risk else "line"}" fill="none" points="{path}"/>')
    # Hover: one column per point, as wide as the gap to its neighbours, with a dot and a title.
    hover = []
    for t, v in downsample(pts, HOVER_POINTS):
        if hover and x(t.timestamp()) - x(hover[-1][0].timestamp()) < 1.0:
            hover[-1] = (t, v)  # within a pixel of the one before: one column, the later value
        else:
            hover.append((t, v))
    xs = [x(t.timestamp()) for t, _ in hover]
    for i, (t, v) in enumerate(hover):
        left = (xs[i - 1] + xs[i]) / 2 if i else pad_l
        right = (xs[i] + xs[i + 1]) / 2 if i + 1 < len(xs) else pad_l + inner_w
        label = escape(f"{t.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC: {style.fmt(v)}")
        parts.append(
            f'<g class="pt"><title>{label}</title>'
            f'<rect x="{left:.1f}" y="{pad_t}" width="{max(right - left, 0.5):.1f}" height="{inner_h}" class="hit"/>'
            f'<circle cx="{xs[i]:.1f}" cy="{y(v):.1f}" r="3" class="dot"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


PNL = ChartStyle(fmt=lambda v: f"{money(v)} USD", tick=lambda v, step: tick_label(v, step), min_span=100.0, include_zero=True)


def reliability_chart(buckets, *, width: int = 420, height: int = 360) -> str:
    """Calibration: each confidence bucket's hit rate against its mean confidence, beside the diagonal a
    calibrated drafter would sit on. A dot's area grows with how many directives it holds."""
    pad_l, pad_r, pad_t, pad_b = 48, 16, 28, 40
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    title = "calibration: hit rate against confidence"
    parts = [f'<svg class="chart reliability" role="img" aria-label="{title}" viewBox="0 0 {width} {height}" width="{width}">',
             f'<text x="{pad_l}" y="17" class="chart-title">{title}</text>']

    def x(v: float) -> float:
        return pad_l + inner_w * v

    def y(v: float) -> float:
        return pad_t + inner_h * (1 - v)

    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{x(0)}" y1="{y(v):.1f}" x2="{x(1)}" y2="{y(v):.1f}" class="grid"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick y-tick">{v:.0%}</text>')
        parts.append(f'<line x1="{x(v):.1f}" y1="{y(0)}" x2="{x(v):.1f}" y2="{y(1)}" class="grid"/>')
        parts.append(f'<text x="{x(v):.1f}" y="{height - 22}" text-anchor="middle" class="tick x-tick">{v:.2f}</text>')
    parts.append(f'<text x="{pad_l + inner_w / 2}" y="{height - 4}" text-anchor="middle" class="tick">confidence as drafted</text>')
    parts.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" class="diagonal"/>')
    filled = [b for b in buckets if b.count]
    if not filled:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="chart-empty">nothing judged yet</text>')
    most = max((b.count for b in filled), default=1)
    for b in filled:
        r = 3 + 9 * math.sqrt(b.count / most)
        label = escape(f"confidence {b.low:.1f}-{b.high:.1f}: {b.count} directives, mean {b.mean_confidence:.2f}, hit rate {b.hit_rate:.0%}")
        parts.append(f'<g class="pt bucket"><title>{label}</title><circle cx="{x(b.mean_confidence):.1f}" cy="{y(b.hit_rate):.1f}" r="{r:.1f}" class="dot"/></g>')
    parts.append("</svg>")
    return "".join(parts)
