"""The forest plot's margin and zero labels never overlap, however small the margin or wide the axis."""

from __future__ import annotations

import re

import pytest

from equiv.report.html import LABEL_CHAR_PX, render_html
from equiv.schema import Interval

from .factory import make_pairs, make_verdict

PAIRS = make_pairs(12)


def _label_extent(svg: str, cls: str) -> tuple[float, float, str]:
    m = re.search(rf'<text x="([\d.]+)" y="[\d.]+" class="axis-label {cls}" text-anchor="(\w+)">([^<]+)</text>', svg)
    assert m, cls
    x, anchor, text = float(m.group(1)), m.group(2), m.group(3)
    width = len(text) * LABEL_CHAR_PX  # the renderer's own generous glyph width of these 11px labels
    start = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
    return start, start + width, text


def _line_x(svg: str, cls: str) -> float:
    m = re.search(rf'<line x1="([\d.]+)" x2="[\d.]+" y1="[\d.]+" y2="[\d.]+" class="{cls}"/>', svg)
    assert m, cls
    return float(m.group(1))


@pytest.mark.parametrize("wide_axis", [False, True])
@pytest.mark.parametrize("margin", [0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5])
def test_margin_and_zero_labels_do_not_overlap(margin: float, wide_axis: bool) -> None:
    verdict = make_verdict()
    verdict.margin = margin
    if wide_axis:  # intervals across the whole scale squeeze the margin and zero lines together
        verdict.prompt_types[0].quality_diff = Interval(estimate=0.0, ci_low=-1.0, ci_high=1.0)
    page = render_html(verdict, PAIRS)
    svg = page[page.index('<svg class="forest"') : page.index("</svg>", page.index('<svg class="forest"'))]
    m_start, m_end, m_text = _label_extent(svg, "margin-label")
    z_start, z_end, z_text = _label_extent(svg, "zero-label")
    assert m_text == f"margin -{margin:.2f}" and z_text == "0 = equal"
    assert m_end < z_start, (margin, m_start, m_end, z_start, z_end)  # the margin's label left of zero's, apart
    x_margin, x_zero = _line_x(svg, "margin"), _line_x(svg, "zero")
    assert m_start <= x_margin + 1 and z_end >= x_zero - 1  # each label still at its own line
    width = float(re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1))  # type: ignore[union-attr]
    assert m_start >= 0 and z_end <= width  # and inside the picture
