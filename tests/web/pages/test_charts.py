"""The server-drawn SVG charts: what they draw is read back from the SVG text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from orchestrator.web.charts import (
    Marker,
    Point,
    latency_chart,
    nice_ticks,
    sample_trace,
    time_series,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def test_no_samples_draws_nothing():
    assert latency_chart({}) == ""
    assert latency_chart({"all": []}) == ""
    assert time_series([Point("n1", None), Point("n2", None)]) == ""


def test_the_histogram_counts_every_sample_once_per_setting():
    samples = {"all": [1.0, 1.1, 1.2, 5.0], "cpuOnly": [10.0, 10.5, 11.0]}
    root = parse(latency_chart(samples))
    counts = [
        int(re.match(r"(\d+) sample", t.text or "").group(1))
        for t in root.iter(f"{SVG}title")
        if "sample(s)" in (t.text or "")
    ]
    assert sum(counts) == 7
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "all" in labels and "cpuOnly" in labels
    # One box plot per setting, its median drawn where the median is.
    boxes = [t.text for t in root.iter(f"{SVG}title") if "median" in (t.text or "")]
    assert any("all: n=4" in b and "median 1.15" in b for b in boxes), boxes
    assert any("cpuOnly: n=3" in b and "median 10.5" in b for b in boxes), boxes


def test_a_single_value_still_draws_a_readable_axis():
    root = parse(latency_chart({"all": [2.0, 2.0, 2.0]}))
    ticks = [t.text for t in root.iter(f"{SVG}text")]
    assert any(t and t.replace(".", "").isdigit() for t in ticks)


def test_text_is_escaped():
    svg = latency_chart({"<script>": [1.0, 2.0]}, title="a & b")
    assert "<script>" not in svg
    parse(svg)


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0.13, 0.91, 4) == [0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(5, 5) == [5]


def test_a_time_series_leaves_a_gap_for_a_missing_night_and_draws_band_and_markers():
    points = [
        Point("n1", 1.0, (0.9, 1.1)),
        Point("n2", 1.05, (0.9, 1.1)),
        Point("n3", None),
        Point("n4", 1.6, (0.9, 1.1), status="regression"),
        Point("n5", 1.55, (0.9, 1.1), status="regression"),
    ]
    root = parse(time_series(points, [Marker(3, "iOS 18.2 (22C152)", "change")]))
    lines = [e for e in root.iter(f"{SVG}polyline") if e.get("class") == "line"]
    assert len(lines) == 2  # n1–n2 and n4–n5: the gap is not bridged
    assert len([e for e in root.iter(f"{SVG}circle") if "point" in (e.get("class") or "")]) == 4
    assert (
        len([e for e in root.iter(f"{SVG}circle") if "regression" in (e.get("class") or "")]) == 2
    )
    assert len([e for e in root.iter(f"{SVG}polygon") if e.get("class") == "band"]) == 2
    markers = [g for g in root.iter(f"{SVG}g") if "marker" in (g.get("class") or "")]
    assert [m.find(f"{SVG}title").text for m in markers] == ["iOS 18.2 (22C152)"]


def test_the_sample_trace_draws_every_sample_in_order_per_setting():
    root = parse(sample_trace({"all": [1.0, 1.2, 1.4, 1.6], "cpuOnly": [3.0, 3.0]}))
    lines = {
        line.find(f"{SVG}title").text: line.get("points") for line in root.iter(f"{SVG}polyline")
    }
    assert set(lines) == {"all: 4 samples", "cpuOnly: 2 samples"}
    ys = [float(p.split(",")[1]) for p in lines["all: 4 samples"].split()]
    assert ys == sorted(ys, reverse=True)  # rising latency is drawn going up (smaller y)
    assert sample_trace({}) == ""
