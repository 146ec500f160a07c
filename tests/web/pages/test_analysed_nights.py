"""The sweep, series and alerts pages on nights analysed by the real regress core
(``tests.alerts.nightfarm``: nights as ingest leaves them, ``analyse_night`` after each):
seven quiet nights, then one device class 15 % slower for two nights."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from orchestrator.web.app import create_app
from tests.alerts.nightfarm import CLASSES, SERIES, Point, make_sweep

SLOW = CLASSES[1]


def test_pages_show_what_the_analysis_found(sessions, tmp_path):
    sweep = make_sweep(sessions, tmp_path)
    for night in range(9):
        median = 11.5 if night >= 7 else 10.0
        sweep.add_night(lambda s, c, m=median: Point(median=m if c == SLOW else 10.0))
        assert sweep.analyse().state == "analysed"
    settings = sweep.settings.model_copy(update={"open_reads": True})
    with TestClient(create_app(settings, sessions=sessions, bound_host="127.0.0.1")) as client:
        grid = client.get("/sweeps/nightly").text
        for series in SERIES:
            for cls in CLASSES:
                line = re.search(
                    rf">{series}</a>.*?<td>{re.escape(cls)}</td>(.*?)</tr>", grid, re.S
                )
                assert line, (series, cls)
                words = re.findall(
                    r'<td class="cell [^"]+" title="[^"]*">(?:<a [^>]+>)?([A-Z_]+)', line.group(1)
                )
                assert len(words) == 9
                expected = "REGRESSION" if cls == SLOW else "SAME"
                assert words[-2:] == [expected, expected], (series, cls, words)
        page = client.get(f"/series/nightly/{SERIES[0]}/{SLOW}?units=all").text
        svg = re.search(r'<div id="series-chart">(.*?)</div>', page, re.S)
        assert svg and svg.group(1).count('class="point regression"') == 2
        assert 'class="band"' in svg.group(1) and 'class="marker alert"' in svg.group(1)
        alerts = client.get("/alerts").text
        assert alerts.count('<section class="card alert"') == 1 and SLOW in alerts
        assert 'value="ack"' in alerts
