"""Charts drawn on the server as inline SVG: loss curves, the dataset lineage graph, a tune-prompt heatmap.

    svg = line_chart([Series("run-1 train", points)])          # Markup, safe to put in a template
    svg = lineage_graph(nodes)                                  # boxes linked to /data/<name>
    svg = heatmap(rows, columns, grid)                          # grid[row][column]: 0..1, red -> green

No script and no CDN: a page shows its charts as soon as it loads, offline, and a live page swaps in a newly
rendered chart (studio/live.py). Colours are SVG presentation attributes, which the pages' Content-Security-Policy
allows (it refuses inline `style`). Every text drawn is escaped.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

PALETTE = ("#3355dd", "#e4572e", "#17a673", "#9c27b0", "#f0a202", "#0096c7", "#6d4c41", "#d81b60", "#546e7a",
           "#7cb342")


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


@dataclass
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    colour: str = PALETTE[0]
    dashed: bool = False
    markers: bool = False


@dataclass
class Frame:
    """The plot area of a chart and the scales from data to pixels."""

    width: int
    height: int
    x: tuple[float, float]
    y: tuple[float, float]
    left: int = 52
    right: int = 16
    top: int = 26
    bottom: int = 34
    ticks: dict[str, list[float]] = field(default_factory=dict)

    def px(self, x: float) -> float:
        lo, hi = self.x
        return self.left + (x - lo) / (hi - lo) * (self.width - self.left - self.right)

    def py(self, y: float) -> float:
        lo, hi = self.y
        return self.height - self.bottom - (y - lo) / (hi - lo) * (self.height - self.top - self.bottom)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    return [round(first + i * step, 10) for i in range(int(math.ceil((hi - first) / step)) + 1)]


def _span(values: list[float], pad: float = 0.0) -> tuple[float, float]:
    """The data's range (widened by `pad` of it on each side); one value gets a range of 2 around it."""
    lo, hi = min(values), max(values)
    if lo == hi:
        return lo - 1, hi + 1
    return lo - pad * (hi - lo), hi + pad * (hi - lo)


def line_chart(series: Sequence[Series], width: int = 720, height: int = 300, x_label: str = "step",
               y_label: str = "loss", empty: str = "no points yet") -> Markup:
    """Lines (with markers where asked) over shared axes; `data-points` says how many points are drawn."""
    points = [p for s in series for p in s.points]
    if not points:
        return Markup(f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" data-points="0">'
                      f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="muted">{escape(empty)}'
                      "</text></svg>")
    x_range, y_range = _span([p[0] for p in points]), _span([p[1] for p in points], pad=0.05)
    frame = Frame(width, height, x_range, y_range)
    inside = lambda ticks, lo, hi: [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]  # noqa: E731
    parts = [_axes(frame, inside(nice_ticks(*x_range, 8), *x_range), inside(nice_ticks(*y_range, 7), *y_range),
                   x_label, y_label)]
    for s in series:
        parts.append(_line(frame, s))
    title = escape(", ".join(s.name for s in series))
    return Markup(f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{title}" '
                  f'data-points="{len(points)}">{"".join(parts)}</svg>')


def _axes(frame: Frame, x_ticks: list[float], y_ticks: list[float], x_label: str, y_label: str) -> str:
    out = []
    bottom, left = frame.height - frame.bottom, frame.left
    for y in y_ticks:
        py = frame.py(y)
        out.append(f'<line x1="{left}" x2="{frame.width - frame.right}" y1="{py:.1f}" y2="{py:.1f}" '
                   f'stroke="#e3e6eb"/><text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end" '
                   f'class="tick">{_label(y)}</text>')
    for x in x_ticks:
        px = frame.px(x)
        out.append(f'<text x="{px:.1f}" y="{bottom + 16}" text-anchor="middle" class="tick">{_label(x)}</text>')
    out.append(f'<line x1="{left}" x2="{frame.width - frame.right}" y1="{bottom}" y2="{bottom}" stroke="#98a2b3"/>')
    out.append(f'<text x="{frame.width - frame.right}" y="{frame.height - 2}" text-anchor="end" class="tick">'
               f"{escape(x_label)}</text>")
    out.append(f'<text x="{left}" y="{frame.top - 12}" text-anchor="middle" class="tick">{escape(y_label)}</text>')
    return "".join(out)


def _line(frame: Frame, s: Series) -> str:
    coords = [(frame.px(x), frame.py(y)) for x, y in s.points]
    if not coords:
        return ""
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    path = "M" + " L".join(f"{x:.1f} {y:.1f}" for x, y in coords)
    out = [f'<path d="{path}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}>'
           f"<title>{escape(s.name)}</title></path>"]
    if s.markers or len(coords) == 1:
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.colour}"/>' for x, y in coords]
    return "".join(out)


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.0e}"


# -- the dataset lineage -----------------------------------------------------------------------------------------
NODE_W, NODE_H, GAP_X, GAP_Y = 200, 50, 24, 36


def lineage_graph(nodes: Sequence[tuple[str, list[str], str]]) -> Markup:
    """(name, parents, subtitle) per dataset version, drawn top-down by generation, each box a link."""
    if not nodes:
        return Markup("")
    names = [n for n, _, _ in nodes]
    depth: dict[str, int] = {}
    for name, parents, _ in nodes:  # oldest first: a parent is placed before its children
        depth[name] = 1 + max((depth[p] for p in parents if p in depth), default=-1)
    rows: dict[int, list[str]] = {}
    for name in names:
        rows.setdefault(depth[name], []).append(name)
    columns = max(len(r) for r in rows.values())
    width = columns * (NODE_W + GAP_X) + GAP_X
    height = len(rows) * (NODE_H + GAP_Y) + GAP_Y
    parents = {name: ps for name, ps, _ in nodes}
    place: dict[str, tuple[float, float]] = {}
    for d in sorted(rows):  # each generation ordered by where its parents stand: fewer crossing lines
        row = sorted(rows[d], key=lambda n: statistics.fmean([place[p][0] for p in parents[n] if p in place] or [0]))
        for i, name in enumerate(row):
            place[name] = (GAP_X + i * (NODE_W + GAP_X) + (columns - len(row)) * (NODE_W + GAP_X) / 2,
                           GAP_Y + d * (NODE_H + GAP_Y))
    edges = []
    for name, parents, _ in nodes:
        x, y = place[name]
        for p in parents:
            if p in place:
                px, py = place[p]
                a, b = (px + NODE_W / 2, py + NODE_H), (x + NODE_W / 2, y)
                middle = (a[1] + b[1]) / 2
                edges.append(f'<path d="M{a[0]:.0f} {a[1]:.0f} C{a[0]:.0f} {middle:.0f} {b[0]:.0f} {middle:.0f} '
                             f'{b[0]:.0f} {b[1]:.0f}" fill="none" stroke="#98a2b3" stroke-width="1.5"/>')
    boxes = [_node(name, subtitle, *place[name]) for name, _, subtitle in nodes]
    return Markup(f'<svg class="lineage" viewBox="0 0 {width} {height}" width="{width}" role="img" '
                  f'aria-label="dataset lineage">{"".join(edges)}{"".join(boxes)}</svg>')


def _node(name: str, subtitle: str, x: float, y: float) -> str:
    short = name if len(name) <= 26 else name[:25] + "…"
    sub = subtitle if len(subtitle) <= 28 else subtitle[:27] + "…"
    return (f'<a href="/data/{escape(name)}"><title>{escape(name)}: {escape(subtitle)}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="8" fill="#ffffff" '
            f'stroke="#3355dd"/><text x="{x + 10:.0f}" y="{y + 20:.0f}" class="node">{escape(short)}</text>'
            f'<text x="{x + 10:.0f}" y="{y + 38:.0f}" class="tick">{escape(sub)}</text></a>')


# -- heatmap -----------------------------------------------------------------------------------------------------
CELL_W, CELL_H, LABEL_W = 96, 34, 150


def heat_colour(value: float) -> str:
    """Red (0) through yellow (0.5) to green (1)."""
    value = min(max(value, 0.0), 1.0)
    red, green = (1.0, value * 2) if value < 0.5 else (2 - value * 2, 1.0)
    return f"#{int(215 * red + 40):02x}{int(190 * green + 40):02x}70"


def heatmap(rows: Sequence[str], columns: Sequence[str], grid: Sequence[Sequence[float | None]]) -> Markup:
    """One coloured, labelled cell per (row, column) of `grid`; a missing value (None) is left blank. A column
    label may hold a line break ("T=0.3\ntop_p=0.9")."""
    width = LABEL_W + CELL_W * len(columns) + 8
    head = CELL_H + 8  # column labels: one line per "\n"-separated part
    height = head + CELL_H * len(rows) + 8
    out = []
    for j, c in enumerate(columns):
        x = LABEL_W + CELL_W * j + CELL_W / 2
        lines = "".join(f'<tspan x="{x:.0f}" dy="{0 if k == 0 else 14}">{escape(part)}</tspan>'
                        for k, part in enumerate(c.split("\n")))
        out.append(f'<text x="{x:.0f}" y="18" text-anchor="middle" class="tick">{lines}</text>')
    for i, r in enumerate(rows):
        y = head + CELL_H * i
        label = r if len(r) <= 20 else r[:19] + "…"
        out.append(f'<text x="{LABEL_W - 8}" y="{y + 22}" text-anchor="end" class="tick"><title>{escape(r)}'
                   f"</title>{escape(label)}</text>")
        for j, v in enumerate(grid[i]):
            if v is None:
                continue
            x = LABEL_W + CELL_W * j
            out.append(f'<rect x="{x + 1}" y="{y + 1}" width="{CELL_W - 2}" height="{CELL_H - 2}" rx="4" '
                       f'fill="{heat_colour(v)}"/><text x="{x + CELL_W / 2:.0f}" y="{y + 22}" text-anchor="middle" '
                       f'class="cell">{100 * v:.0f}%</text>')
    return Markup(f'<svg class="heatmap" viewBox="0 0 {width} {height}" width="{width}" role="img" '
                  f'aria-label="win rate per prompt and sampling">{"".join(out)}</svg>')
