"""The operator page's charts: SVG drawn on the server, every figure readable on hover."""

import re

from gateway.ops import plots


def test_stacked_bars_draw_one_segment_per_nonzero_count_with_its_figure() -> None:
    svg = plots.stacked_bars(
        ["24/11", "25/11"], {"email": [3, 0], "webform": [1, 2]}, title="par canal"
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert len(re.findall(r"<rect [^>]*><title>", svg)) == 3
    assert "<title>24/11 · email : 3</title>" in svg
    assert "email (3)" in svg and "webform (3)" in svg  # legend with totals


def test_labels_and_keys_are_escaped() -> None:
    svg = plots.stacked_bars(["<b>"], {"<script>x</script>": [1]}, title='a"b')
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'aria-label="a&#34;b"' in svg


def test_axis_top_is_a_round_number_above_the_largest_value() -> None:
    svg = plots.bars(["a", "b"], [0, 37], title="t", colours=["#000", "#111"])
    assert ">50</text>" in svg


def test_empty_series_still_draw_an_axis() -> None:
    svg = plots.line([], title="vide")
    assert svg.count("<line ") >= 2


def test_grouped_bars_draw_a_bar_per_measured_value_side_by_side() -> None:
    svg = plots.grouped_bars(
        ["api", "email"], {"médiane": [8.5, None], "p90": [15.0, 3.0]}, title="délais"
    )
    assert len(re.findall(r"<rect [^>]*><title>", svg)) == 3  # None draws nothing
    assert "<title>api · médiane : 8.5</title>" in svg
    assert "<title>email · p90 : 3</title>" in svg
    assert ">20</text>" in svg  # the axis tops the largest value (15) with a round number
    assert "médiane (" not in svg  # a legend without totals
    medians, p90s = (
        [float(x) for x in re.findall(rf'<rect x="([\d.]+)"[^>]*><title>api · {key} ', svg)]
        for key in ("médiane", "p90")
    )
    assert medians[0] < p90s[0]  # side by side, in the series' order
