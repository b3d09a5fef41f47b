"""Line charts as inline SVG text, for report.html: no plotting library, no network, selectable text.

One chart is one metric against rate: each series a polyline with markers, a <title> on every marker
(what a reader hovers to read the exact point), axes with rounded ticks, and a legend below the plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

# matplotlib's tab10: distinct, and familiar from rd.png
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
DASHES = {"solid": "", "dashed": "6 4", "dotted": "2 3"}


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float]
    colour: str = PALETTE[0]
    line: str = "solid"  # key of DASHES
    marker: str = "circle"  # "circle" or "square"
    notes: list[str] = field(default_factory=list)  # one hover text per point (optional)


def ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values within [lo, hi], about ``count`` of them: steps of 1, 2 or 5 times a power of ten."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    power = 10 ** math.floor(math.log10((hi - lo) / count))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda s: abs((hi - lo) / s - count))
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(v: float, step: float) -> str:
    digits = max(0, -math.floor(math.log10(step))) if step > 0 else 2
    return f"{v:.{min(digits, 6)}f}"


def line_chart(
    series: list[Series], x_label: str, y_label: str, title: str, width: int = 370, height: int = 290
) -> str:
    """An <svg> element of width x height pixels (the legend adds rows below)."""
    pts = [(x, y) for s in series for x, y in zip(s.xs, s.ys, strict=False)]
    pts = [(x, y) for x, y in pts if math.isfinite(x) and math.isfinite(y)]
    left, right, top, bottom = 56, 12, 24, 40
    legend_rows = math.ceil(len(series) / 2)
    total_h = height + 16 * legend_rows + 4
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{total_h}" '
        f'viewBox="0 0 {width} {total_h}" role="img" aria-label="{escape(title)}">',
        f'<text x="{width / 2}" y="15" text-anchor="middle" class="chart-title">{escape(title)}</text>',
    ]
    pw, ph = width - left - right, height - top - bottom
    if not pts:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data yet</text></svg>')
        return "".join(out)
    xlo, xhi = min(p[0] for p in pts), max(p[0] for p in pts)
    ylo, yhi = min(p[1] for p in pts), max(p[1] for p in pts)
    xpad = (xhi - xlo) * 0.05 or abs(xlo) * 0.05 or 1.0
    ypad = (yhi - ylo) * 0.05 or abs(ylo) * 0.05 or 1.0
    xlo, xhi, ylo, yhi = xlo - xpad, xhi + xpad, ylo - ypad, yhi + ypad

    def sx(x: float) -> float:
        return left + (x - xlo) / (xhi - xlo) * pw

    def sy(y: float) -> float:
        return top + ph - (y - ylo) / (yhi - ylo) * ph

    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot"/>')
    xt, yt = ticks(xlo, xhi), ticks(ylo, yhi)
    for v in xt:
        x = sx(v)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" class="grid"/>')
        label = _label(v, xt[1] - xt[0] if len(xt) > 1 else 1)
        out.append(f'<text x="{x:.1f}" y="{top + ph + 14}" text-anchor="middle">{label}</text>')
    for v in yt:
        y = sy(v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" class="grid"/>')
        label = _label(v, yt[1] - yt[0] if len(yt) > 1 else 1)
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(
        f'<text x="{left + pw / 2}" y="{top + ph + 32}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text transform="translate(13 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    for s in series:
        xy = [
            (sx(x), sy(y), i)
            for i, (x, y) in enumerate(zip(s.xs, s.ys, strict=False))
            if math.isfinite(x) and math.isfinite(y)
        ]
        xy.sort()
        dash = DASHES[s.line]
        if len(xy) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in xy)
            out.append(
                f'<polyline points="{d}" fill="none" stroke="{s.colour}" stroke-width="1.6"'
                + (f' stroke-dasharray="{dash}"' if dash else "")
                + "/>"
            )
        for x, y, i in xy:
            note = escape(s.notes[i] if i < len(s.notes) else f"{s.label}: {s.xs[i]:.4g}, {s.ys[i]:.4g}")
            shape = (
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"'
                if s.marker == "circle"
                else f'<rect x="{x - 2.8:.1f}" y="{y - 2.8:.1f}" width="5.6" height="5.6"'
            )
            out.append(f'{shape} fill="{s.colour}"><title>{note}</title></{shape.split()[0][1:]}>')
    for k, s in enumerate(series):
        lx, ly = 8 + (k % 2) * (width // 2), height + 12 + 16 * (k // 2)
        dash = DASHES[s.line]
        out.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" stroke="{s.colour}" stroke-width="2"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + f'/><text x="{lx + 27}" y="{ly}">{escape(s.label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
