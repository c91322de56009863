"""Charts for the operator page, drawn on the server as inline SVG.

figures (numbers) -> **plots** (SVG markup) -> the ``/ops/`` template.

No script and no external library: the page's Content-Security-Policy
allows neither, and an operator's browser behind a bank's proxy may reach
nothing else anyway. Each chart is an ``<svg role="img">`` with an
``aria-label`` and a ``<title>`` on every bar or point, so hovering (or a
screen reader) gives the exact figure. Colours come from tables, one per
kind of series; keys not in a table take the next colour of ``CYCLE``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import cycle

from markupsafe import Markup, escape

CYCLE = ("#0b4f8a", "#e07b00", "#2e8b57", "#b03060", "#6a5acd", "#8b6508", "#008b8b", "#708090")
CHANNEL_COLOURS = {
    "email": "#0b4f8a",
    "webform": "#2e8b57",
    "phone": "#e07b00",
    "sms": "#b03060",
    "whatsapp": "#25a35a",
    "letter": "#8b6508",
    "api": "#6a5acd",
}
OVERDUE = "#c0392b"
DUE = "#0b4f8a"


@dataclass(frozen=True)
class Frame:
    """Plot area inside a ``width`` x ``height`` view box."""

    width: int = 640
    height: int = 240
    left: int = 44
    right: int = 12
    top: int = 12
    bottom: int = 42

    @property
    def inner_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def inner_height(self) -> float:
        return self.height - self.top - self.bottom

    def y(self, value: float, ceiling: float) -> float:
        return self.top + self.inner_height * (1 - value / ceiling)


def colours_for(keys: Sequence[str], table: Mapping[str, str]) -> dict[str, str]:
    spare = iter(colour for colour in CYCLE if colour not in table.values())
    fallback = iter(CYCLE)
    return {key: table.get(key) or next(spare, None) or next(fallback) for key in keys}


def _nice_ceiling(value: int) -> int:
    """A round top for the axis (1, 2, 5, 10, 20, 50...), at least 1."""
    ceiling, steps = 1, cycle((2, 2.5, 2))
    while ceiling < value:
        ceiling = round(ceiling * next(steps))
    return ceiling


def _open(frame: Frame, label: str) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {frame.width} {frame.height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    ]


def _close(parts: list[str]) -> Markup:
    # Every label and key in ``parts`` went through ``escape``; numbers are ours.
    return Markup("".join([*parts, "</svg>"]))  # noqa: S704


def _axis(frame: Frame, ceiling: int) -> list[str]:
    parts = []
    for tick in (0, ceiling // 2, ceiling) if ceiling % 2 == 0 else (0, ceiling):
        y = frame.y(tick, ceiling)
        parts.append(
            f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y:.1f}" '
            f'y2="{y:.1f}" class="grid"/>'
            f'<text x="{frame.left - 6}" y="{y + 4:.1f}" class="tick" '
            f'text-anchor="end">{tick}</text>'
        )
    return parts


def _legend(
    frame: Frame, colours: Mapping[str, str], totals: Mapping[str, int] | None
) -> list[str]:
    parts, x = [], float(frame.left)
    y = frame.height - 8
    for key, colour in colours.items():
        text = key if totals is None else f"{key} ({totals.get(key, 0)})"
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14:.1f}" y="{y}" class="legend">{escape(text)}</text>'
        )
        x += 24 + 7 * len(text)
    return parts


def stacked_bars(
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    title: str,
    colours: Mapping[str, str] | None = None,
    frame: Frame | None = None,
) -> Markup:
    """One bar per label, stacked by series key, with a legend of totals."""
    frame = frame or Frame()
    palette = colours_for(list(series), colours or {})
    stacks = [sum(values[index] for values in series.values()) for index in range(len(labels))]
    ceiling = _nice_ceiling(max(stacks, default=0))
    slot = frame.inner_width / max(1, len(labels))
    parts = _open(frame, title) + _axis(frame, ceiling)
    for index, label in enumerate(labels):
        x = frame.left + slot * index + slot * 0.15
        base = 0
        for key, values in series.items():
            value = values[index]
            if value:
                top, bottom = frame.y(base + value, ceiling), frame.y(base, ceiling)
                parts.append(
                    f'<rect x="{x:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" '
                    f'height="{bottom - top:.1f}" fill="{palette[key]}">'
                    f"<title>{escape(label)} · {escape(key)} : {value}</title></rect>"
                )
                base += value
        # About seven labels, counted back from the last (today) so it always shows.
        if (len(labels) - 1 - index) % max(1, -(-len(labels) // 7)) == 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{frame.height - frame.bottom + 14}" '
                f'class="tick" text-anchor="middle">{escape(label)}</text>'
            )
    totals = {key: sum(values) for key, values in series.items()}
    parts += _legend(frame, palette, totals)
    return _close(parts)


def bars(
    labels: Sequence[str],
    values: Sequence[int],
    *,
    title: str,
    colours: Sequence[str],
    frame: Frame | None = None,
) -> Markup:
    """Single bars, each with its own colour (e.g. overdue in red, then due per day)."""
    frame = frame or Frame(bottom=24)
    ceiling = _nice_ceiling(max(values, default=0))
    slot = frame.inner_width / max(1, len(labels))
    parts = _open(frame, title) + _axis(frame, ceiling)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = frame.left + slot * index + slot * 0.15
        top = frame.y(value, ceiling)
        parts.append(
            f'<rect x="{x:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{frame.y(0, ceiling) - top:.1f}" fill="{colours[index]}">'
            f"<title>{escape(label)} : {value}</title></rect>"
            f'<text x="{x + slot * 0.35:.1f}" y="{frame.height - frame.bottom + 14}" '
            f'class="tick" text-anchor="middle">{escape(label)}</text>'
        )
    return _close(parts)


def line(
    points: Sequence[tuple[str, int]],
    *,
    title: str,
    colour: str = "#0b4f8a",
    frame: Frame | None = None,
) -> Markup:
    """A filled line over time (the outbox backlog), labels at both ends and the middle."""
    frame = frame or Frame(bottom=24)
    ceiling = _nice_ceiling(max((value for _label, value in points), default=0))
    step = frame.inner_width / max(1, len(points) - 1)
    coords = [
        (frame.left + step * index, frame.y(value, ceiling))
        for index, (_label, value) in enumerate(points)
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    floor = frame.y(0, ceiling)
    parts = _open(frame, title) + _axis(frame, ceiling)
    if coords:
        parts.append(
            f'<polygon points="{coords[0][0]:.1f},{floor:.1f} {path} '
            f'{coords[-1][0]:.1f},{floor:.1f}" fill="{colour}" fill-opacity="0.15"/>'
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
    for index, ((label, value), (x, y)) in enumerate(zip(points, coords, strict=True)):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{colour}">'
            f"<title>{escape(label)} : {value}</title></circle>"
        )
        anchor = {0: "start", len(points) // 2: "middle", len(points) - 1: "end"}.get(index)
        if anchor:
            parts.append(
                f'<text x="{x:.1f}" y="{frame.height - frame.bottom + 14}" class="tick" '
                f'text-anchor="{anchor}">{escape(label)}</text>'
            )
    return _close(parts)


def grouped_bars(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    colours: Mapping[str, str] | None = None,
    frame: Frame | None = None,
) -> Markup:
    """Side-by-side bars per label, one per series key (e.g. median and 90th percentile).

    A ``None`` value (nothing to measure) draws no bar; the legend gives each key.
    """
    frame = frame or Frame()
    palette = colours_for(list(series), colours or {})
    highest = max((value or 0 for values in series.values() for value in values), default=0)
    ceiling = _nice_ceiling(math.ceil(highest))
    slot = frame.inner_width / max(1, len(labels))
    width = slot * 0.8 / max(1, len(series))
    parts = _open(frame, title) + _axis(frame, ceiling)
    for index, label in enumerate(labels):
        x = frame.left + slot * index + slot * 0.1
        for offset, (key, values) in enumerate(series.items()):
            value = values[index]
            if value is None:
                continue
            top = frame.y(value, ceiling)
            parts.append(
                f'<rect x="{x + width * offset:.1f}" y="{top:.1f}" width="{width:.1f}" '
                f'height="{frame.y(0, ceiling) - top:.1f}" fill="{palette[key]}">'
                f"<title>{escape(label)} · {escape(key)} : {value:g}</title></rect>"
            )
        parts.append(
            f'<text x="{x + slot * 0.4:.1f}" y="{frame.height - frame.bottom + 14}" '
            f'class="tick" text-anchor="middle">{escape(label)}</text>'
        )
    parts += _legend(frame, palette, None)
    return _close(parts)
