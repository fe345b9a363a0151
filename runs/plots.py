"""Small server-side SVG charts (no JavaScript, no CDN): they render in share pages, print, and can be
re-sent as HTML fragments by the live run page.

Every value is escaped; every point carries a <title> so hovering shows its exact number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#0f766e", "#1d4ed8", "#b45309", "#7c3aed", "#be123c", "#15803d", "#0369a1", "#a16207"]


@dataclass
class Series:
    label: str
    points: list[tuple[float, float, str]] = field(default_factory=list)  # (x, y, hover text)
    line: bool = True


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v - round(v)) > 1e-9 else str(int(round(v)))


def line_chart(
    series: list[Series],
    *,
    x_label: str,
    y_label: str,
    y_max: float = 1.0,
    percent: bool = True,
    width: int = 560,
    height: int = 240,
    integer_x: bool = True,
    categorical_x: bool = False,
) -> SafeString:
    """Lines (or dots) of several series on shared axes; y from 0 to ``y_max``. With ``categorical_x`` the
    distinct x values are evenly spaced in order (library sizes 0, 1, 2, 4, 8 beside 90 stay readable)."""
    pts = [p for s in series for p in s.points]
    if not pts:
        return mark_safe("")
    left, right, top, bottom = 46, 12, 12, 38
    xs = [p[0] for p in pts]
    x0, x1 = min(xs), max(xs)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    pw, ph = width - left - right, height - top - bottom

    ranks = {x: i for i, x in enumerate(sorted(set(xs)))}

    def sx(x):
        if categorical_x:
            return left + (ranks[x] / (len(ranks) - 1) * pw if len(ranks) > 1 else pw / 2)
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + ph - min(max(y, 0.0), y_max) / y_max * ph

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(y_label)} by '
        f'{escape(x_label)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i in range(5):
        y = y_max * i / 4
        label = f"{y * 100:.0f}%" if percent else _fmt(y)
        out.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{label}</text>'
        )
    ticks = (
        sorted(set(xs))
        if categorical_x or (integer_x and len(set(xs)) <= 12)
        else [x0 + (x1 - x0) * i / 4 for i in range(5)]
    )
    for x in ticks:
        out.append(
            f'<text class="tick" x="{sx(x):.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{escape(_fmt(x))}</text>'
        )
    out.append(
        f'<text class="axis" x="{left + pw / 2:.1f}" y="{height - 4}" text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text class="axis" transform="translate(12 {top + ph / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        ordered = sorted(s.points)
        if s.line and len(ordered) > 1:
            d = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for j, (x, y, _) in enumerate(ordered))
            out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y, text in ordered:
            r = 4 if s.line else 3
            op = "" if s.line else ' fill-opacity="0.55"'
            out.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{r}" '
                f'fill="{color}"{op}><title>{escape(text)}</title></circle>'
            )
    out.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(s.label)}</span>'
        for i, s in enumerate(series)
    )
    return mark_safe(f'<figure class="plot">{"".join(out)}<figcaption class="legend">{legend}</figcaption></figure>')


def bar_chart(
    bars: list[tuple[str, float, str]], *, y_label: str, width: int = 560, bar_height: int = 22
) -> SafeString:
    """Horizontal bars (label, fraction 0..1, hover text), one per row: long task names stay readable."""
    if not bars:
        return mark_safe("")
    label_w, right = 220, 60
    height = bar_height * len(bars) + 28
    pw = width - label_w - right
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(y_label)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value, text) in enumerate(bars):
        y = 4 + i * bar_height
        w = max(0.0, min(1.0, value)) * pw
        out.append(
            f'<text class="tick" x="{label_w - 8}" y="{y + bar_height * 0.65:.1f}" '
            f'text-anchor="end">{escape(label[:34])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{pw}" height="{bar_height - 6}" class="track"/>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_height - 6}" '
            f'fill="{PALETTE[0]}"><title>{escape(text)}</title></rect>'
            f'<text class="tick" x="{label_w + pw + 6}" y="{y + bar_height * 0.65:.1f}">{value * 100:.0f}%</text>'
        )
    out.append(
        f'<text class="axis" x="{label_w + pw / 2:.1f}" y="{height - 4}" '
        f'text-anchor="middle">{escape(y_label)}</text></svg>'
    )
    return mark_safe(f'<figure class="plot">{"".join(out)}</figure>')


def success_by_round(candidates) -> SafeString:
    """Best and mean debug success per round, with every candidate as a dot."""
    rounds: dict[int, list] = {}
    for c in candidates:
        if c.success_rate is not None:
            rounds.setdefault(c.round, []).append(c)
    if not rounds:
        return mark_safe("")
    best = Series("best candidate")
    mean = Series("round mean")
    dots = Series("candidates", line=False)
    for r, cands in sorted(rounds.items()):
        top = max(cands, key=lambda c: c.success_rate)
        best.points.append((r, top.success_rate, f"round {r}: best {top.success_rate:.0%} ({top})"))
        avg = sum(c.success_rate for c in cands) / len(cands)
        mean.points.append((r, avg, f"round {r}: mean {avg:.0%} over {len(cands)} candidates"))
        dots.points += [(r, c.success_rate, f"{c}: {c.success_rate:.0%} ({c.n_success}/{c.n_episodes})") for c in cands]
    series = [best, mean, dots] if len(dots.points) > len(rounds) else [best]
    return line_chart(series, x_label="round", y_label="success on debug seeds")
