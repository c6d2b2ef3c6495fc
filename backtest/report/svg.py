"""Hand-written SVG charts for the reports: step/line charts with a band, grouped bars and a
waterfall. Output is plain SVG text (no scripts, no external references), deterministic (the
same data gives the same bytes: coordinates rounded to 0.01, no ids from counters or clocks).

Every label passed in is escaped here (:func:`html.escape`, control and bidirectional
characters shown as escapes: :func:`backtest.report.model.visible`), so callers may pass
untrusted strings (token symbols read from the chain).
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .model import visible

__all__ = ["Series", "Band", "line_chart", "bar_chart", "waterfall", "PALETTE", "thin"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
W, H = 760, 310
ML, MR, MT, MB = 78, 20, 46, 46
MID = MT + (H - MT - MB) / 2


def _e(s: object) -> str:
    return html.escape(visible(s), quote=True)


def _r(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


@dataclass(frozen=True)
class Series:
    """A named line: points (x, y) sorted by x; ``step``: hold each value until the next point."""

    name: str
    points: Sequence[tuple[float, float]]
    color: str = PALETTE[0]
    step: bool = True
    dash: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded band between ``lo`` and ``hi`` (points sorted by x, step-wise)."""

    name: str
    lo: Sequence[tuple[float, float]]
    hi: Sequence[tuple[float, float]]
    color: str = "#1f77b4"


def thin(points: Sequence[tuple[float, float]], max_points: int = 1500) -> list[tuple[float, float]]:
    """Keep at most about ``max_points``: per x bucket the first, min, max and last point, so a
    thinned step line keeps every extreme."""
    if len(points) <= max_points:
        return list(points)
    x0, x1 = points[0][0], points[-1][0]
    buckets = max(1, max_points // 4)
    width = (x1 - x0) / buckets or 1
    out: list[tuple[float, float]] = []
    cur: list[tuple[float, float]] = []
    cur_b = None
    for p in points:
        b = min(buckets - 1, int((p[0] - x0) / width))
        if cur_b is not None and b != cur_b:
            out += _keep(cur)
            cur = []
        cur_b = b
        cur.append(p)
    out += _keep(cur)
    return out


def _keep(ps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(ps) <= 4:
        return ps
    lo = min(ps, key=lambda p: p[1])
    hi = max(ps, key=lambda p: p[1])
    mid = sorted({lo, hi}, key=lambda p: p[0])
    return [ps[0], *[p for p in mid if p not in (ps[0], ps[-1])], ps[-1]]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    out = []
    v = start
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def fmt_num(v: float) -> str:
    a = abs(v)
    if a >= 1e4:
        # the unit is chosen after rounding: 999,600 is '1M', not '1e+03k' (1000 thousands)
        for div, unit in ((1e3, "k"), (1e6, "M"), (1e9, "B")):
            s = f"{v / div:.3g}"
            if abs(float(s)) < 1000:
                return s + unit
        return f"{v / 1e9:,.0f}B"
    if a >= 100 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _tick_labels(ticks: Sequence[float]) -> list[str]:
    """:func:`fmt_num` of each tick, or, when two would read the same (a range narrower than 3
    significant digits show: a BTC price between 16,500 and 16,560 gave '16.5k' three times, a
    stablecoin's 0.9996 ... 1.0004 '1' five times), the ticks with as many decimals as it takes
    to tell them apart."""
    ticks = [t + 0.0 for t in ticks]  # no '-0'
    labels = [fmt_num(t) for t in ticks]
    dec = 0
    while len(set(labels)) < len(labels) and dec <= 12:
        labels = [f"{t:,.{dec}f}" for t in ticks]
        dec += 1
    return labels


def _time_labels(ticks: Sequence[float], span: float) -> list[str]:
    """UTC times of ``ticks``: hours and minutes within two days, month and day beyond, with
    seconds, or the time of day, added when two ticks would otherwise read the same."""
    forms = (("%H:%M", "%H:%M:%S", "%m-%d %H:%M:%S") if span <= 2 * 86400
             else ("%m-%d", "%m-%d %H:%M", "%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S"))
    times = [dt.datetime.fromtimestamp(t, dt.UTC) for t in ticks]
    for form in forms:
        labels = [t.strftime(form) for t in times]
        if len(set(labels)) == len(labels):
            break
    return labels


def _frame(title: str, y_label: str, x_label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        f'role="img" aria-label="{_e(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{_e(title)}</title>",
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>',
        f'<text x="{ML}" y="18" font-size="13" font-weight="bold">{_e(title)}</text>',
        f'<text x="14" y="{MID:.0f}" transform="rotate(-90 14 {MID:.0f})" '
        f'text-anchor="middle">{_e(y_label)}</text>',
        f'<text x="{ML + (W - ML - MR) / 2:.0f}" y="{H - 6}" text-anchor="middle">{_e(x_label)}</text>',
    ]


def _y_ticks(ticks: Sequence[float], sy: Callable[[float], float]) -> list[str]:
    """Grid lines and labels of the y axis at ``ticks``."""
    out = []
    for t, label in zip(ticks, _tick_labels(ticks), strict=True):
        out.append(f'<line x1="{ML}" y1="{_r(sy(t))}" x2="{W - MR}" y2="{_r(sy(t))}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{ML - 6}" y="{_r(sy(t) + 4)}" text-anchor="end">{_e(label)}</text>')
    return out


def _legend(items: Sequence[tuple[str, str, bool]]) -> list[str]:
    out: list[str] = []
    x = float(W - MR)
    for name, color, dash in reversed(items):
        label = _e(name)
        width = 26 + 6.2 * len(name)
        x -= width
        out.append(
            f'<line x1="{_r(x)}" y1="30" x2="{_r(x + 18)}" y2="30" stroke="{color}" stroke-width="2.5"'
            + (' stroke-dasharray="5 3"' if dash else "")
            + "/>"
        )
        out.append(f'<text x="{_r(x + 22)}" y="34">{label}</text>')
    return out


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    y_label: str = "",
    x_label: str = "time (UTC)",
    band: Band | None = None,
    time_axis: bool = True,
    y_zero: bool = False,
) -> str:
    """A line (or step) chart of ``series`` with an optional shaded ``band``."""
    pts = [p for s in series for p in s.points] + ([*band.lo, *band.hi] if band else [])
    parts = _frame(title, y_label, x_label)
    if not pts:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text></svg>')
        return "\n".join(parts)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if y_zero:
        y0 = min(0.0, y0)
    if y1 == y0:
        y1 = y0 + (abs(y0) * 0.1 or 1)
    pad = (y1 - y0) * 0.05
    y0, y1 = (y0 - pad if not (y_zero and y0 == 0) else y0), y1 + pad
    if x1 == x0:
        x1 = x0 + 1

    def sx(x: float) -> float:
        return ML + (x - x0) / (x1 - x0) * (W - ML - MR)

    def sy(y: float) -> float:
        return H - MB - (y - y0) / (y1 - y0) * (H - MT - MB)

    parts += _y_ticks(_nice_ticks(y0, y1), sy)
    xt = _nice_ticks(x0, x1, 6)
    for t, label in zip(xt, _time_labels(xt, x1 - x0) if time_axis else _tick_labels(xt), strict=True):
        parts.append(
            f'<line x1="{_r(sx(t))}" y1="{H - MB}" x2="{_r(sx(t))}" y2="{H - MB + 4}" stroke="#555"/>'
        )
        parts.append(f'<text x="{_r(sx(t))}" y="{H - MB + 16}" text-anchor="middle">{_e(label)}</text>')
    parts.append(f'<line x1="{ML}" y1="{H - MB}" x2="{W - MR}" y2="{H - MB}" stroke="#555"/>')
    parts.append(f'<line x1="{ML}" y1="{MT}" x2="{ML}" y2="{H - MB}" stroke="#555"/>')
    if band and band.lo and band.hi:
        upper = _path_points(band.hi, sx, sy, True)
        lower = _path_points(band.lo, sx, sy, True)
        poly = " ".join(f"{_r(x)},{_r(y)}" for x, y in upper + lower[::-1])
        parts.append(f'<polygon points="{poly}" fill="{band.color}" fill-opacity="0.15" stroke="none"/>')
    for s in series:
        if not s.points:
            continue
        xy = _path_points(s.points, sx, sy, s.step)
        d = "M" + " L".join(f"{_r(x)},{_r(y)}" for x, y in xy)
        parts.append(
            f'<path d="{d}" fill="none" stroke="{s.color}" stroke-width="1.6"'
            + (' stroke-dasharray="5 3"' if s.dash else "")
            + "/>"
        )
    legend = [(s.name, s.color, s.dash) for s in series] + ([(band.name, band.color, False)] if band else [])
    parts += _legend(legend)
    parts.append("</svg>")
    return "\n".join(parts)


def _path_points(
    points: Sequence[tuple[float, float]], sx: object, sy: object, step: bool
) -> list[tuple[float, float]]:
    fx, fy = sx, sy
    out: list[tuple[float, float]] = []
    prev_y = None
    for x, y in points:
        px, py = fx(x), fy(y)  # type: ignore[operator]
        if step and prev_y is not None:
            out.append((px, prev_y))
        out.append((px, py))
        prev_y = py
    return out


def bar_chart(
    title: str,
    categories: Sequence[str],
    groups: Sequence[tuple[str, Sequence[float]]],
    *,
    y_label: str = "",
    x_label: str = "",
) -> str:
    """Grouped vertical bars: one group of bars per category, one colour per named group."""
    parts = _frame(title, y_label, x_label)
    vals = [v for _, vs in groups for v in vs]
    top = max(vals, default=0) or 1
    ticks = _nice_ticks(0, top * 1.05)
    y1 = max(ticks[-1], top)

    def sy(y: float) -> float:
        return H - MB - y / y1 * (H - MT - MB)

    parts += _y_ticks(ticks, sy)
    n = max(1, len(categories))
    cw = (W - ML - MR) / n
    bw = cw * 0.8 / max(1, len(groups))
    for i, c in enumerate(categories):
        cx = ML + i * cw
        for g, (_, vs) in enumerate(groups):
            v = vs[i] if i < len(vs) else 0
            x = cx + cw * 0.1 + g * bw
            parts.append(
                f'<rect x="{_r(x)}" y="{_r(sy(v))}" width="{_r(bw)}" height="{_r(sy(0) - sy(v))}" '
                f'fill="{PALETTE[g % len(PALETTE)]}"><title>{_e(c)}: {_e(fmt_num(v))}</title></rect>'
            )
        parts.append(
            f'<text x="{_r(cx + cw / 2)}" y="{H - MB + 14}" text-anchor="middle" font-size="10">'
            f"{_e(c)}</text>"
        )
    parts.append(f'<line x1="{ML}" y1="{H - MB}" x2="{W - MR}" y2="{H - MB}" stroke="#555"/>')
    parts += _legend([(name, PALETTE[g % len(PALETTE)], False) for g, (name, _) in enumerate(groups)])
    parts.append("</svg>")
    return "\n".join(parts)


def waterfall(title: str, steps: Sequence[tuple[str, float, str]], *, y_label: str = "") -> str:
    """A waterfall: ``steps`` = (label, amount, kind) with kind ``total`` (a bar from 0 to the
    amount, resetting the running level) or ``delta`` (a floating bar from the running level)."""
    parts = _frame(title, y_label, "")
    level = 0.0
    bars: list[tuple[str, float, float, str]] = []
    for label, amount, kind in steps:
        if kind == "total":
            bars.append((label, 0.0, amount, "#555555"))
            level = amount
        else:
            bars.append((label, level, level + amount, "#2ca02c" if amount >= 0 else "#d62728"))
            level += amount
    lo = min([0.0] + [min(a, b) for _, a, b, _ in bars])
    hi = max([0.0] + [max(a, b) for _, a, b, _ in bars]) or 1
    ticks = _nice_ticks(lo, hi * 1.05)
    y0, y1 = min(lo, ticks[0]), max(hi, ticks[-1])

    def sy(y: float) -> float:
        return H - MB - (y - y0) / ((y1 - y0) or 1) * (H - MT - MB)

    parts += _y_ticks(ticks, sy)
    n = max(1, len(bars))
    cw = (W - ML - MR) / n
    for i, (label, a, b, color) in enumerate(bars):
        x = ML + i * cw + cw * 0.15
        top, bottom = sy(max(a, b)), sy(min(a, b))
        parts.append(
            f'<rect x="{_r(x)}" y="{_r(top)}" width="{_r(cw * 0.7)}" height="{_r(max(bottom - top, 0.5))}" '
            f'fill="{color}"><title>{_e(label)}: {_e(fmt_num(b - a))}</title></rect>'
        )
        parts.append(
            f'<text x="{_r(x + cw * 0.35)}" y="{_r(top - 4)}" text-anchor="middle" font-size="10">'
            f"{_e(fmt_num(b - a))}</text>"
        )
        parts.append(
            f'<text x="{_r(x + cw * 0.35)}" y="{H - MB + 14}" text-anchor="middle" font-size="10">'
            f"{_e(label)}</text>"
        )
    parts.append(f'<line x1="{ML}" y1="{_r(sy(0))}" x2="{W - MR}" y2="{_r(sy(0))}" stroke="#555"/>')
    parts.append("</svg>")
    return "\n".join(parts)
