"""Text in the report's SVG: how wide it is, and legends laid out so that nothing overlaps.

Widths are estimated (``text_width``) from DejaVu Sans' advances, the widest of the usual
sans-serif fonts, so that text laid out with them fits whatever font a browser picks. A
chart's legend goes right of its title when it all fits there, else on rows of its own
below the title, wrapped within the chart's width, each item whole on one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = 'font-family="system-ui,sans-serif" font-size="12"'
_ADVANCES = {
    3.5: "'IJijl",
    4.0: " ,./:;\\f|",
    4.5: "()-[]rt",
    5.0: "!",
    5.5: '"',
    6.0: "*_`s",
    6.5: "?Lcz",
    7.0: "FPTkvxy",
    7.5: "0123456789$ESYabdeghnopqu{}",
    8.0: "BKVXZ",
    8.5: "ACR",
    9.0: "DHNU",
    9.5: "&GOQ",
    10.0: "#+<=>^w~",
    10.5: "M",
    11.5: "%m",
    12.0: "@W",
}
"""Advance widths (px) of DejaVu Sans at 12px, measured in Chromium, rounded up to 0.5."""
_ADVANCE = {char: width for width, chars in _ADVANCES.items() for char in chars}
_BOLD = 1.2  # DejaVu Sans Bold is at most ~20% wider, character for character
_OTHER = 9.0  # any character not in the table (signs, dashes, arrows)


def text_width(text: str, *, bold: bool = False) -> float:
    """The width of ``text`` in 12px sans-serif, an estimate on the wide side."""
    width = sum(_ADVANCE.get(char, _OTHER) for char in text)
    return width * _BOLD if bold else width


LEGEND_ROW = 18
_SWATCH, _SWATCH_GAP, _ITEM_GAP = 18, 4, 16

LegendItem = tuple[str, str, str]
"""(label, colour, kind): kind is a dash pattern ("" solid), "mark", "band" or "point"."""


@dataclass(frozen=True)
class LegendLayout:
    items: tuple[tuple[float, float, LegendItem], ...]
    """(x, baseline y, item) per item."""
    rows_below: int
    """Rows the legend takes below the title row (0: it fits beside the title)."""


def layout_legend(
    items: Sequence[LegendItem], *, title_width: float | None, left: float, right: float
) -> LegendLayout:
    """Right of the title, right-aligned, when it all fits there; else left-aligned rows
    below the title, each item whole on one row. With no title (``None``), left-aligned
    rows from the first."""
    widths = [_SWATCH + _SWATCH_GAP + text_width(label) for label, _, _ in items]
    total = sum(widths) + _ITEM_GAP * max(0, len(items) - 1)
    placed: list[tuple[float, float, LegendItem]] = []
    if not items:
        return LegendLayout((), 0)
    if title_width is not None and left + title_width + 2 * _ITEM_GAP + total <= right:
        x = right - total
        for item, width in zip(items, widths, strict=True):
            placed.append((x, 16.0, item))
            x += width + _ITEM_GAP
        return LegendLayout(tuple(placed), 0)
    first = 0 if title_width is None else 1
    row, x = first, left
    for item, width in zip(items, widths, strict=True):
        if x > left and x + width > right:
            row, x = row + 1, left
        placed.append((x, 16.0 + row * LEGEND_ROW, item))
        x += width + _ITEM_GAP
    return LegendLayout(tuple(placed), row)


def legend_strip(items: Sequence[LegendItem], width: int, *, left: float, right: float) -> str:
    """A legend alone, as an ``<svg>`` ``width`` wide, its rows between ``left`` and
    ``width - right``: one legend for the charts below it."""
    layout = layout_legend(items, title_width=None, left=left, right=width - right)
    height = 24 + layout.rows_below * LEGEND_ROW
    return "\n".join(
        [
            f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
            'aria-label="legend" class="chart legend-strip">',
            *draw_legend(layout),
            "</svg>",
        ]
    )


def draw_legend(layout: LegendLayout) -> list[str]:
    parts = ['<g class="legend">']
    for x, y, (label, color, kind) in layout.items:
        if kind == "mark":
            parts.append(
                f'<rect x="{x:.1f}" y="{y - 7:.1f}" width="{_SWATCH}" height="5" fill="{color}"/>'
            )
        elif kind == "band":
            parts.append(
                f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="{_SWATCH}" height="10" '
                f'fill="{color}" fill-opacity="0.35"/>'
            )
        elif kind == "point":
            parts.append(
                f'<circle cx="{x + _SWATCH / 2:.1f}" cy="{y - 4:.1f}" r="4" fill="{color}"/>'
            )
        else:
            dashes = f' stroke-dasharray="{kind}"' if kind else ""
            parts.append(
                f'<line x1="{x:.1f}" x2="{x + _SWATCH:.1f}" y1="{y - 4:.1f}" y2="{y - 4:.1f}" '
                f'stroke="{color}" stroke-width="2"{dashes}/>'
            )
        parts.append(
            f'<text x="{x + _SWATCH + _SWATCH_GAP:.1f}" y="{y:.1f}" {FONT} fill="#333">'
            f"{escape(label)}</text>"
        )
    parts.append("</g>")
    return parts
