"""Charts drawn on the server as SVG text: no JavaScript library, no CDN, nothing fetched
at run time, so a page works in a browser with no internet and a chart is in the HTML
the server sends (a test reads it like any other text).

Two kinds, as the pages need them:

* ``latency_chart`` — per compute-units setting, the distribution of a run's latency
  samples: a histogram strip with a box plot (p10–p90 whiskers, quartile box, median)
  on one shared axis, so the settings compare at a glance;
* ``time_series`` — one value per point in time (a sweep series' median) with a band
  (the baseline's interval) and markers (alerts, "what changed") under the line.

Every bit of text put into the SVG is escaped here; the templates mark the result safe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from orchestrator.stats import percentile

# One colour per compute-units setting, kept the same on every page (the CSS uses them too).
SETTING_COLOURS = {
    "all": "#2f6fb0",
    "cpuAndNeuralEngine": "#2e8b57",
    "cpuAndGPU": "#b8860b",
    "cpuOnly": "#a0522d",
}
OTHER_COLOUR = "#666666"
BINS = 24
ROW_HEIGHT = 34
LEFT = 150  # room for the setting's name
RIGHT = 16
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _num(value: float) -> str:
    return f"{value:.1f}"


def _tick_text(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


@dataclass(frozen=True)
class _Axis:
    low: float
    high: float
    start: float  # pixels
    end: float

    def at(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return self.start + (value - self.low) / span * (self.end - self.start)


def latency_chart(
    samples: Mapping[str, Sequence[float]], *, width: int = 720, title: str = "latency (ms)"
) -> str:
    """Histogram and box plot of each setting's samples on one axis; empty string when no
    setting has samples (the page says so instead of drawing an empty frame)."""
    rows = [(name, sorted(float(v) for v in values)) for name, values in samples.items() if values]
    if not rows:
        return ""
    low = min(values[0] for _, values in rows)
    high = max(values[-1] for _, values in rows)
    if high <= low:
        low, high = low * 0.9, (high * 1.1) or 1.0
    margin = (high - low) * 0.03
    axis = _Axis(max(0.0, low - margin), high + margin, LEFT, width - RIGHT)
    height = 26 + ROW_HEIGHT * len(rows) + 42
    parts = [
        f'<svg class="chart latency" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (name, values) in enumerate(rows):
        top = 18 + index * ROW_HEIGHT
        parts.extend(_latency_row(name, values, axis, top))
    parts.extend(_x_axis(axis, 18 + ROW_HEIGHT * len(rows) + 4, title))
    parts.append("</svg>")
    return "".join(parts)


def _latency_row(name: str, values: list[float], axis: _Axis, top: float) -> list[str]:
    colour = SETTING_COLOURS.get(name, OTHER_COLOUR)
    out = [
        f'<text x="{LEFT - 8}" y="{_num(top + ROW_HEIGHT / 2)}" text-anchor="end" {FONT}>'
        f"{escape(name)}</text>"
    ]
    # Histogram strip: bars in the upper half, heights relative to this setting's tallest bin.
    width = (axis.high - axis.low) / BINS
    counts = [0] * BINS
    for v in values:
        counts[min(BINS - 1, max(0, int((v - axis.low) / width)))] += 1
    tallest = max(counts)
    strip = ROW_HEIGHT * 0.45
    for bin_index, count in enumerate(counts):
        if not count:
            continue
        x0 = axis.at(axis.low + bin_index * width)
        x1 = axis.at(axis.low + (bin_index + 1) * width)
        h = max(1.0, strip * count / tallest)
        out.append(
            f'<rect class="bin" x="{_num(x0)}" y="{_num(top + strip - h)}" width="{_num(max(1.0, x1 - x0 - 1))}"'
            f' height="{_num(h)}" fill="{colour}" fill-opacity="0.35"><title>{count} sample(s)</title></rect>'
        )
    # Box plot in the lower half.
    q = {p: percentile(values, p) for p in (0.1, 0.25, 0.5, 0.75, 0.9)}
    mid = top + strip + ROW_HEIGHT * 0.25
    box_top, box_h = mid - ROW_HEIGHT * 0.18, ROW_HEIGHT * 0.36
    summary = (
        f"{name}: n={len(values)}, p10 {_tick_text(q[0.1])}, median {_tick_text(q[0.5])},"
        f" p90 {_tick_text(q[0.9])} ms"
    )
    out += [
        f'<g class="box"><title>{escape(summary)}</title>',
        f'<line x1="{_num(axis.at(q[0.1]))}" x2="{_num(axis.at(q[0.9]))}" y1="{_num(mid)}" y2="{_num(mid)}" stroke="{colour}"/>',
        f'<rect x="{_num(axis.at(q[0.25]))}" y="{_num(box_top)}" width="{_num(max(1.0, axis.at(q[0.75]) - axis.at(q[0.25])))}"'
        f' height="{_num(box_h)}" fill="white" stroke="{colour}"/>',
        f'<line class="median" x1="{_num(axis.at(q[0.5]))}" x2="{_num(axis.at(q[0.5]))}" y1="{_num(box_top)}"'
        f' y2="{_num(box_top + box_h)}" stroke="{colour}" stroke-width="2"/>',
        "</g>",
    ]
    return out


def _x_axis(axis: _Axis, y: float, label: str) -> list[str]:
    out = [
        f'<line x1="{_num(axis.start)}" x2="{_num(axis.end)}" y1="{_num(y)}" y2="{_num(y)}" stroke="#999"/>'
    ]
    for tick in nice_ticks(axis.low, axis.high):
        x = axis.at(tick)
        out.append(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(y)}" y2="{_num(y + 4)}" stroke="#999"/>'
            f'<text x="{_num(x)}" y="{_num(y + 15)}" text-anchor="middle" {FONT}>{_tick_text(tick)}</text>'
        )
    out.append(
        f'<text x="{_num((axis.start + axis.end) / 2)}" y="{_num(y + 30)}" text-anchor="middle" {FONT}>'
        f"{escape(label)}</text>"
    )
    return out


@dataclass(frozen=True)
class Point:
    """One point of a time series: its label on the x axis (a night), its value (None: no
    point that night — missing is drawn as a gap, not interpolated), the band around the
    expected value, and a status that colours the dot."""

    label: str
    value: float | None
    band: tuple[float, float] | None = None
    status: str = "ok"


@dataclass(frozen=True)
class Marker:
    """A vertical mark at a point (by index): an alert, or a change of sha256/OS/runner."""

    index: int
    text: str
    kind: str = "change"  # change | alert


STATUS_COLOURS = {
    "ok": "#2f6fb0",
    "same": "#2f6fb0",
    "regression": "#c0392b",
    "improvement": "#2e8b57",
}
MARKER_COLOURS = {"change": "#7d5ba6", "alert": "#c0392b"}


def time_series(
    points: Sequence[Point],
    markers: Sequence[Marker] = (),
    *,
    width: int = 900,
    height: int = 260,
    unit: str = "ms",
    title: str = "",
) -> str:
    """The line of values with its band and markers; empty string with no value at all."""
    values = [p.value for p in points if p.value is not None]
    if not values:
        return ""
    band_values = [v for p in points if p.band for v in p.band]
    low = min([*values, *band_values])
    high = max([*values, *band_values])
    if high <= low:
        low, high = low * 0.9, (high * 1.1) or 1.0
    pad = (high - low) * 0.08
    left, right, top, bottom = 56, 12, 14, height - 34
    x_axis = _Axis(0, max(1, len(points) - 1), left, width - right)
    y_axis = _Axis(max(0.0, low - pad), high + pad, bottom, top)  # inverted: larger is higher
    parts = [
        f'<svg class="chart series" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title or 'time series')}</title>",
    ]
    parts.extend(_band(points, x_axis, y_axis))
    for tick in nice_ticks(y_axis.low, y_axis.high, 4):
        y = y_axis.at(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" {FONT}>{_tick_text(tick)}</text>'
        )
    parts.append(
        f'<text x="4" y="{top + 4}" {FONT}>{escape(unit)}</text>'
        f'<line x1="{left}" x2="{width - right}" y1="{bottom}" y2="{bottom}" stroke="#999"/>'
    )
    for marker in markers:
        if 0 <= marker.index < len(points):
            x = x_axis.at(marker.index)
            colour = MARKER_COLOURS.get(marker.kind, OTHER_COLOUR)
            parts.append(
                f'<g class="marker {escape(marker.kind)}"><title>{escape(marker.text)}</title>'
                f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{top}" y2="{bottom}" stroke="{colour}"'
                f' stroke-dasharray="4 3"/><circle cx="{_num(x)}" cy="{top + 2}" r="4" fill="{colour}"/></g>'
            )
    parts.extend(_line(points, x_axis, y_axis))
    step = max(1, math.ceil(len(points) / 8))  # at most ~8 labels under the axis
    for index in range(0, len(points), step):
        parts.append(
            f'<text x="{_num(x_axis.at(index))}" y="{bottom + 16}" text-anchor="middle" {FONT}>'
            f"{escape(points[index].label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _band(points: Sequence[Point], x: _Axis, y: _Axis) -> list[str]:
    """The band as one polygon per run of consecutive points that have one."""
    out: list[str] = []
    run: list[tuple[int, tuple[float, float]]] = []
    for index, point in enumerate([*points, Point("", None)]):
        if point.band is not None:
            run.append((index, point.band))
            continue
        if run:
            upper = [f"{_num(x.at(i))},{_num(y.at(b[1]))}" for i, b in run]
            lower = [f"{_num(x.at(i))},{_num(y.at(b[0]))}" for i, b in reversed(run)]
            if len(run) == 1:  # one point: a short vertical bar instead of a zero-width area
                i, b = run[0]
                out.append(
                    f'<line class="band" x1="{_num(x.at(i))}" x2="{_num(x.at(i))}" y1="{_num(y.at(b[0]))}"'
                    f' y2="{_num(y.at(b[1]))}" stroke="#9ec3e6" stroke-width="6"/>'
                )
            else:
                out.append(
                    f'<polygon class="band" points="{" ".join(upper + lower)}" fill="#9ec3e6" fill-opacity="0.45"/>'
                )
            run = []
    return out


def _line(points: Sequence[Point], x: _Axis, y: _Axis) -> list[str]:
    out: list[str] = []
    segment: list[str] = []
    for index, point in enumerate([*points, Point("", None)]):
        if point.value is not None:
            segment.append(f"{_num(x.at(index))},{_num(y.at(point.value))}")
            continue
        if len(segment) > 1:
            out.append(
                f'<polyline class="line" points="{" ".join(segment)}" fill="none" stroke="#2f6fb0" stroke-width="1.5"/>'
            )
        segment = []
    for index, point in enumerate(points):
        if point.value is None:
            continue
        colour = STATUS_COLOURS.get(point.status, OTHER_COLOUR)
        out.append(
            f'<circle class="point {escape(point.status)}" cx="{_num(x.at(index))}" cy="{_num(y.at(point.value))}"'
            f' r="3" fill="{colour}"><title>{escape(point.label)}: {_tick_text(point.value)}</title></circle>'
        )
    return out


def sample_trace(
    samples: Mapping[str, Sequence[float]], *, width: int = 720, height: int = 180
) -> str:
    """Each setting's samples in the order they were taken, one line per setting on one
    axis: a line that climbs through the run is throttling (the thermal state the
    coordinator does not keep), a step is something else on the device."""
    rows = [(name, [float(v) for v in values]) for name, values in samples.items() if values]
    if not rows:
        return ""
    low = min(min(v) for _, v in rows)
    high = max(max(v) for _, v in rows)
    if high <= low:
        low, high = low * 0.9, (high * 1.1) or 1.0
    left, right, top, bottom = 56, 12, 10, height - 24
    longest = max(len(v) for _, v in rows)
    x_axis = _Axis(0, max(1, longest - 1), left, width - right)
    y_axis = _Axis(max(0.0, low - (high - low) * 0.05), high + (high - low) * 0.05, bottom, top)
    parts = [
        f'<svg class="chart trace" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        "<title>latency of each prediction, in the order taken</title>",
    ]
    for tick in nice_ticks(y_axis.low, y_axis.high, 4):
        y = y_axis.at(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" {FONT}>{_tick_text(tick)}</text>'
        )
    for name, values in rows:
        colour = SETTING_COLOURS.get(name, OTHER_COLOUR)
        points = " ".join(
            f"{_num(x_axis.at(i))},{_num(y_axis.at(v))}" for i, v in enumerate(values)
        )
        parts.append(
            f'<polyline class="trace" points="{points}" fill="none" stroke="{colour}"'
            f' stroke-width="1.2"><title>{escape(name)}: {len(values)} samples</title></polyline>'
        )
    parts.append(
        f'<text x="{_num((left + width - right) / 2)}" y="{height - 6}" text-anchor="middle" {FONT}>'
        "prediction, in the order taken (ms)</text></svg>"
    )
    return "".join(parts)
